package gosuite

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/namespaces"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Settings of TestStress.
const (
	envStressDuration = "CARGOHOLD_STRESS_DURATION"     // seconds of load (default 60)
	envStressRefs     = "CARGOHOLD_STRESS_REFS"         // shared refs (default 12)
	envStressWriters  = "CARGOHOLD_STRESS_WRITERS"      // concurrent writers (default 6)
	envCallTimeout    = "CARGOHOLD_STRESS_CALL_TIMEOUT" // deadline of every call (default 20)
	// envServerPID, when set, makes the test send SIGTERM to the server while writers still
	// hold open streams, once the load is over (the caller checks that it exits in time).
	envServerPID = "CARGOHOLD_STRESS_SERVER_PID"
)

// Generated blobs are at most smallBlob bytes, or one in ten up to maxBlob; chunks are at most
// 1 MiB, as containerd's content.Copy sends.
const (
	smallBlob = 3 << 20
	maxBlob   = 12 << 20
	maxChunk  = 1 << 20
)

// stress is the shared state of one TestStress run.
type stress struct {
	t           *testing.T
	cs          content.Store
	base        context.Context
	callTimeout time.Duration
	refs        []string
	stop        chan struct{}
	ledger      *ledger
	tally       *tally
}

// TestStress races writers on shared refs (commit; close half-way and resume; cancel
// mid-stream; truncate and rewrite) with loops of ListStatuses, Status, Walk and Abort, all
// through containerd's proxy client, every call under a deadline. It fails on any deadline run
// into, any error outside Unavailable, AlreadyExists, NotFound, FailedPrecondition and Canceled,
// any resumed ingestion whose bytes differ from what was written, and any committed blob that
// does not read back with its digest.
func TestStress(t *testing.T) {
	cs := connect(t)
	duration := envDuration(t, envStressDuration, 60*time.Second)
	s := &stress{
		t:           t,
		cs:          cs,
		base:        namespaces.WithNamespace(context.Background(), "stress"),
		callTimeout: envDuration(t, envCallTimeout, 20*time.Second),
		stop:        make(chan struct{}),
		ledger:      newLedger(),
		tally:       newTally(),
	}
	for i := 0; i < envInt(t, envStressRefs, 12); i++ {
		s.refs = append(s.refs, fmt.Sprintf("stress/%d", i))
	}
	writers := envInt(t, envStressWriters, 6)
	t.Logf("%d writers on %d refs for %s, every call under a %s deadline",
		writers, len(s.refs), duration, s.callTimeout)

	var wg sync.WaitGroup
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			s.writerLoop(rand.New(rand.NewSource(seed)))
		}(int64(i + 1))
	}
	for i, loop := range []func(*rand.Rand){s.listLoop, s.statusLoop, s.walkLoop, s.abortLoop} {
		wg.Add(1)
		go func(loop func(*rand.Rand), seed int64) {
			defer wg.Done()
			loop(rand.New(rand.NewSource(seed)))
		}(loop, int64(100+i))
	}
	time.Sleep(duration)
	shutdown := s.openStreamsForShutdown()
	close(s.stop)
	if !waitTimeout(&wg, s.callTimeout+10*time.Second) {
		t.Errorf("workers still running %s after the load ended (each call has a %s deadline)",
			s.callTimeout+10*time.Second, s.callTimeout)
	}
	s.verifyCommitted()
	s.report()
	shutdown()
}

// waitTimeout waits for wg for at most d and says whether it finished.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

func (s *stress) stopped() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// call returns a context with the per-call deadline.
func (s *stress) call() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.base, s.callTimeout)
}

// pause sleeps up to max, returning early when the load ends.
func (s *stress) pause(rng *rand.Rand, max time.Duration) {
	select {
	case <-s.stop:
	case <-time.After(time.Duration(rng.Int63n(int64(max)))):
	}
}

func (s *stress) listLoop(rng *rand.Rand) {
	for !s.stopped() {
		ctx, cancel := s.call()
		started := time.Now()
		statuses, err := s.cs.ListStatuses(ctx)
		s.tally.took("ListStatuses", time.Since(started))
		cancel()
		s.tally.record("ListStatuses", err)
		for _, st := range statuses {
			if st.Offset < 0 || (st.Total > 0 && st.Offset > st.Total) {
				s.tally.fail("ListStatuses: %q has offset %d of total %d", st.Ref, st.Offset, st.Total)
			}
		}
		s.pause(rng, 20*time.Millisecond)
	}
}

func (s *stress) statusLoop(rng *rand.Rand) {
	for !s.stopped() {
		ref := s.refs[rng.Intn(len(s.refs))]
		ctx, cancel := s.call()
		started := time.Now()
		st, err := s.cs.Status(ctx, ref)
		s.tally.took("Status", time.Since(started))
		cancel()
		s.tally.record("Status", err)
		if err == nil && st.Ref != ref {
			s.tally.fail("Status(%q) answered for ref %q", ref, st.Ref)
		}
		s.pause(rng, 10*time.Millisecond)
	}
}

func (s *stress) walkLoop(rng *rand.Rand) {
	for !s.stopped() {
		ctx, cancel := s.call()
		started := time.Now()
		err := s.cs.Walk(ctx, func(info content.Info) error {
			if info.Digest.Validate() != nil || info.Size < 0 {
				s.tally.fail("Walk returned %q of size %d", info.Digest, info.Size)
			}
			return nil
		})
		s.tally.took("Walk", time.Since(started))
		cancel()
		s.tally.record("Walk", err)
		s.pause(rng, 50*time.Millisecond)
	}
}

func (s *stress) abortLoop(rng *rand.Rand) {
	for !s.stopped() {
		ref := s.refs[rng.Intn(len(s.refs))]
		ctx, cancel := s.call()
		started := time.Now()
		err := s.cs.Abort(ctx, ref)
		s.tally.took("Abort", time.Since(started))
		cancel()
		s.tally.record("Abort", err)
		// Slower than the writers, so that most ingestions get to a commit.
		s.pause(rng, 400*time.Millisecond)
	}
}

// verifyCommitted reads back every blob a commit was answered for.
func (s *stress) verifyCommitted() {
	committed := s.ledger.committedBlobs()
	for _, desc := range committed {
		if _, err := s.readBack(desc); err != nil {
			s.tally.fail("after the load: %v", err)
		}
	}
	s.t.Logf("read back %d committed blobs after the load", len(committed))
	if len(committed) == 0 {
		s.tally.fail("no blob was committed during the load")
	}
}

// readBack reads a whole blob and checks its size and digest; it returns the blob's Info.
func (s *stress) readBack(desc ocispec.Descriptor) (content.Info, error) {
	ctx, cancel := s.call()
	defer cancel()
	info, err := s.cs.Info(ctx, desc.Digest)
	if err != nil {
		return info, fmt.Errorf("Info(%s): %s", desc.Digest, describe(err))
	}
	if info.Size != desc.Size {
		return info, fmt.Errorf("Info(%s): size %d, committed %d", desc.Digest, info.Size, desc.Size)
	}
	data, err := content.ReadBlob(ctx, s.cs, desc)
	if err != nil {
		return info, fmt.Errorf("read %s: %s", desc.Digest, describe(err))
	}
	if got := digest.FromBytes(data); got != desc.Digest || int64(len(data)) != desc.Size {
		return info, fmt.Errorf("read %s: got %d bytes with digest %s", desc.Digest, len(data), got)
	}
	return info, nil
}

// openStreamsForShutdown leaves a few writers mid-stream and, if the server's PID is known,
// returns a function that sends it SIGTERM while those streams are still open.
func (s *stress) openStreamsForShutdown() func() {
	pidText := os.Getenv(envServerPID)
	if pidText == "" {
		return func() {}
	}
	var pid int
	if _, err := fmt.Sscan(pidText, &pid); err != nil || pid <= 0 {
		s.t.Fatalf("%s=%q: want a process id", envServerPID, pidText)
	}
	ctx, cancel := context.WithCancel(s.base)
	var open []content.Writer
	for i := 0; i < 3; i++ {
		w, err := s.cs.Writer(ctx, content.WithRef(fmt.Sprintf("shutdown/%d", i)))
		if err != nil {
			s.tally.fail("open a writer before SIGTERM: %s", describe(err))
			continue
		}
		if _, err := w.Write(make([]byte, 4096)); err != nil {
			s.tally.fail("write before SIGTERM: %s", describe(err))
		}
		open = append(open, w)
	}
	return func() {
		defer cancel()
		// The caller compares this moment with the moment the server exits.
		fmt.Printf("cargohold-stress: SIGTERM at %d with %d writers open\n",
			time.Now().UnixNano(), len(open))
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			s.t.Errorf("SIGTERM to %d: %v", pid, err)
		}
		// Keep the streams open a moment so the server has open writers while it stops.
		time.Sleep(500 * time.Millisecond)
		for _, w := range open {
			w.Close()
		}
	}
}

// tally counts outcomes per operation and collects failures.
type tally struct {
	mu       sync.Mutex
	counts   map[string]map[string]int
	slowest  map[string]time.Duration
	failures []string
	failed   int
}

func newTally() *tally {
	return &tally{counts: map[string]map[string]int{}, slowest: map[string]time.Duration{}}
}

// took notes how long one call of op took (the report shows the slowest).
func (y *tally) took(op string, d time.Duration) {
	y.mu.Lock()
	defer y.mu.Unlock()
	if d > y.slowest[op] {
		y.slowest[op] = d
	}
}

// record counts one call; a disallowed outcome (a deadline included) is a failure.
func (y *tally) record(op string, err error) {
	class := errorClass(err)
	y.mu.Lock()
	if y.counts[op] == nil {
		y.counts[op] = map[string]int{}
	}
	y.counts[op][class]++
	y.mu.Unlock()
	if !allowedClass(class) {
		y.fail("%s: %s", op, describe(err))
	}
}

func (y *tally) fail(format string, args ...interface{}) {
	y.mu.Lock()
	defer y.mu.Unlock()
	y.failed++
	if len(y.failures) < 40 {
		stamp := time.Now().UTC().Format("15:04:05.000")
		y.failures = append(y.failures, stamp+" "+fmt.Sprintf(format, args...))
	}
}

// report logs the outcome counts and fails the test with the first failures.
func (s *stress) report() {
	y := s.tally
	y.mu.Lock()
	defer y.mu.Unlock()
	ops := make([]string, 0, len(y.counts))
	for op := range y.counts {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	for _, op := range ops {
		classes := make([]string, 0, len(y.counts[op]))
		for class, n := range y.counts[op] {
			classes = append(classes, fmt.Sprintf("%s=%d", class, n))
		}
		sort.Strings(classes)
		if slowest, ok := y.slowest[op]; ok {
			classes = append(classes, "slowest="+slowest.Round(time.Millisecond).String())
		}
		s.t.Logf("%-14s %s", op, strings.Join(classes, " "))
	}
	if y.failed > 0 {
		s.t.Errorf("%d failures; the first %d:\n  %s", y.failed, len(y.failures),
			strings.Join(y.failures, "\n  "))
	}
}
