package gosuite

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"time"

	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ledger is the client's record of what was written: the recent contents of each ref (a
// cancelled truncation leaves it open whether the old or the new bytes are stored, so a resume
// picks the one whose prefix has the digest the server reports) and every committed blob.
type ledger struct {
	mu        sync.Mutex
	contents  map[string][][]byte
	committed map[digest.Digest]int64
}

// keptContents is how many recent contents of a ref a resume may match.
const keptContents = 3

func newLedger() *ledger {
	return &ledger{contents: map[string][][]byte{}, committed: map[digest.Digest]int64{}}
}

// begin records that the writer holding ref now writes data from offset 0.
func (l *ledger) begin(ref string, data []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	kept := append(l.contents[ref], data)
	if len(kept) > keptContents {
		kept = kept[len(kept)-keptContents:]
	}
	l.contents[ref] = kept
}

// resolve finds the content whose first offset bytes have digest dgst; nil at offset 0.
func (l *ledger) resolve(ref string, offset int64, dgst digest.Digest) ([]byte, error) {
	if offset == 0 {
		return nil, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	kept := l.contents[ref]
	for i := len(kept) - 1; i >= 0; i-- {
		if int64(len(kept[i])) >= offset && digest.FromBytes(kept[i][:offset]) == dgst {
			return kept[i], nil
		}
	}
	return nil, fmt.Errorf("ref %q resumes at offset %d with digest %q, which matches none "+
		"of the last %d contents written to it", ref, offset, dgst, len(kept))
}

func (l *ledger) commit(desc ocispec.Descriptor) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.committed[desc.Digest] = desc.Size
}

func (l *ledger) committedBlobs() []ocispec.Descriptor {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]ocispec.Descriptor, 0, len(l.committed))
	for d, size := range l.committed {
		out = append(out, ocispec.Descriptor{Digest: d, Size: size})
	}
	return out
}

// session is one open writer and the bytes its ingestion is made of.
type session struct {
	w      content.Writer
	ref    string
	data   []byte
	offset int64
}

// randomBlob is mostly small, often a few MiB (several WRITEs), sometimes larger than two
// 5 MiB parts (multipart uploads with parts in flight on object stores).
func randomBlob(rng *rand.Rand) []byte {
	var size int
	switch roll := rng.Intn(10); {
	case roll < 5:
		size = rng.Intn(64<<10) + 1
	case roll < 9:
		size = rng.Intn(smallBlob) + 1
	default:
		size = rng.Intn(maxBlob-smallBlob) + smallBlob
	}
	data := make([]byte, size)
	rng.Read(data)
	return data
}

func (s *stress) writerLoop(rng *rand.Rand) {
	for !s.stopped() {
		ref := s.refs[rng.Intn(len(s.refs))]
		switch rng.Intn(4) {
		case 0:
			s.commitSession(rng, ref)
		case 1:
			s.resumeSession(rng, ref)
		case 2:
			s.cancelSession(rng, ref)
		default:
			s.truncateSession(rng, ref)
		}
	}
}

// open opens a writer on ref and works out which bytes its ingestion holds.
func (s *stress) open(ctx context.Context, rng *rand.Rand, op, ref string) *session {
	started := time.Now()
	w, err := s.cs.Writer(ctx, content.WithRef(ref))
	s.tally.took(op+"/open", time.Since(started))
	s.tally.record(op+"/open", err)
	if err != nil {
		return nil
	}
	st, err := w.Status()
	s.tally.record(op+"/stat", err)
	if err != nil {
		w.Close()
		return nil
	}
	data, err := s.ledger.resolve(ref, st.Offset, w.Digest())
	if err != nil {
		s.tally.fail("%s: %v", op, err)
		w.Close()
		return nil
	}
	if data == nil {
		data = randomBlob(rng)
		s.ledger.begin(ref, data)
	}
	return &session{w: w, ref: ref, data: data, offset: st.Offset}
}

// write sends data[offset:upto] in chunks of up to 1 MiB.
func (sess *session) write(rng *rand.Rand, upto int64) error {
	for sess.offset < upto {
		end := sess.offset + int64(rng.Intn(maxChunk)+1)
		if end > upto {
			end = upto
		}
		n, err := sess.w.Write(sess.data[sess.offset:end])
		sess.offset += int64(n)
		if err != nil {
			return err
		}
	}
	return nil
}

// finish writes the rest, commits, and reads the blob back.
func (s *stress) finish(ctx context.Context, rng *rand.Rand, op string, sess *session) {
	if err := sess.write(rng, int64(len(sess.data))); err != nil {
		s.tally.record(op+"/write", err)
		sess.w.Close()
		return
	}
	desc := ocispec.Descriptor{Digest: digest.FromBytes(sess.data), Size: int64(len(sess.data))}
	started := time.Now()
	err := sess.w.Commit(ctx, desc.Size, desc.Digest) // closes the writer
	finished := time.Now()
	s.tally.took(op+"/commit", finished.Sub(started))
	s.tally.record(op+"/commit", err)
	if err != nil && !errdefs.IsAlreadyExists(err) {
		return
	}
	s.ledger.commit(desc)
	info, readErr := s.readBack(desc)
	if readErr != nil {
		s.tally.fail("%s: committed %s of %q: %v", op, desc.Digest, sess.ref, readErr)
		return
	}
	// As containerd's suite checks: a blob this commit created is dated within the commit.
	// A blob assembled by a multipart upload carries the service's own time, which S3 and
	// Azure keep in whole seconds (cargohold records an exact time only on single-put
	// commits), so the window opens at the start of the commit's second.
	if err == nil && (info.CreatedAt.Before(started.Truncate(time.Second)) || info.CreatedAt.After(finished)) {
		s.tally.fail("%s: %s (%d bytes) created at %s, committed between %s and %s",
			op, desc.Digest, desc.Size, info.CreatedAt.UTC().Format(stampFormat),
			started.UTC().Format(stampFormat), finished.UTC().Format(stampFormat))
	}
}

// stampFormat shows times to the microsecond in failure messages.
const stampFormat = "15:04:05.000000"

// commitSession writes a ref to the end (resuming whatever it holds) and commits it.
func (s *stress) commitSession(rng *rand.Rand, ref string) {
	ctx, cancel := s.call()
	defer cancel()
	if sess := s.open(ctx, rng, "commit", ref); sess != nil {
		s.finish(ctx, rng, "commit", sess)
	}
}

// resumeSession writes half of what is left, closes, reopens the ref and finishes it.
func (s *stress) resumeSession(rng *rand.Rand, ref string) {
	ctx, cancel := s.call()
	defer cancel()
	sess := s.open(ctx, rng, "resume", ref)
	if sess == nil {
		return
	}
	half := sess.offset + (int64(len(sess.data))-sess.offset)/2
	err := sess.write(rng, half)
	s.tally.record("resume/write-half", err)
	sess.w.Close()
	if err != nil {
		return
	}
	// containerd's proxy writer closes by half-closing its stream and returns at once; the
	// reopen may still find the ref locked (Unavailable), so it retries for a short while.
	for attempt := 0; ; attempt++ {
		reopened := s.open(ctx, rng, "resume/reopen", ref)
		if reopened != nil {
			s.finish(ctx, rng, "resume", reopened)
			return
		}
		if attempt == 20 || s.stopped() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// cancelSession cancels the stream at a random moment while it writes.
func (s *stress) cancelSession(rng *rand.Rand, ref string) {
	ctx, cancel := s.call()
	defer cancel()
	streamCtx, cancelStream := context.WithCancel(ctx)
	defer cancelStream()
	sess := s.open(streamCtx, rng, "cancel", ref)
	if sess == nil {
		return
	}
	timer := time.AfterFunc(time.Duration(rng.Intn(30)+1)*time.Millisecond, cancelStream)
	defer timer.Stop()
	err := sess.write(rng, int64(len(sess.data)))
	if streamEnded(err) && errors.Is(streamCtx.Err(), context.Canceled) {
		err = streamCtx.Err() // the stream ended because we cancelled it
	}
	s.tally.record("cancel/write", err)
	sess.w.Close()
}

// truncateSession writes part of a ref, truncates it to 0 and writes new bytes to a commit.
func (s *stress) truncateSession(rng *rand.Rand, ref string) {
	ctx, cancel := s.call()
	defer cancel()
	sess := s.open(ctx, rng, "truncate", ref)
	if sess == nil {
		return
	}
	part := sess.offset + rng.Int63n(int64(len(sess.data))-sess.offset+1)
	if err := sess.write(rng, part); err != nil {
		s.tally.record("truncate/write-part", err)
		sess.w.Close()
		return
	}
	if err := sess.w.Truncate(0); err != nil {
		s.tally.record("truncate/truncate", err)
		sess.w.Close()
		return
	}
	sess.data = randomBlob(rng)
	sess.offset = 0
	s.ledger.begin(ref, sess.data)
	s.finish(ctx, rng, "truncate", sess)
}
