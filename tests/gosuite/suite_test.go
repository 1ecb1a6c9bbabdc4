package gosuite

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/content/testsuite"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"
)

// Settings of TestContentSuite (seconds).
const (
	// envCaseTimeout bounds each case: every call of the case carries this deadline.
	envCaseTimeout = "CARGOHOLD_GOSUITE_CASE_TIMEOUT"
	// envProbeTimeout bounds the clean-up after each case (ListStatuses and Abort).
	envProbeTimeout = "CARGOHOLD_GOSUITE_PROBE_TIMEOUT"
)

// hangGuard remembers that the server stopped answering, so later cases fail at once instead
// of each waiting for its own deadline.
type hangGuard struct {
	mu     sync.Mutex
	reason error
}

func (g *hangGuard) set(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.reason == nil {
		g.reason = err
	}
}

func (g *hangGuard) err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reason
}

// TestContentSuite runs containerd's ContentSuite against `cargohold serve` through containerd's
// proxy content store. All 12 cases apply to a proxy store; none is skipped.
func TestContentSuite(t *testing.T) {
	cs := connect(t)
	caseTimeout := envDuration(t, envCaseTimeout, 30*time.Second)
	probeTimeout := envDuration(t, envProbeTimeout, 10*time.Second)
	var guard hangGuard
	var seq int64
	run := time.Now().UnixNano()

	storeFn := func(ctx context.Context, _ string) (context.Context, content.Store, func() error, error) {
		if err := guard.err(); err != nil {
			return nil, nil, nil, fmt.Errorf("not run: %w", err)
		}
		// A fresh namespace per case, as containerd's metadata tests give each case. The proxy
		// client sends it as the gRPC header containerd-namespace.
		ns := fmt.Sprintf("gosuite-%d-%d", run, atomic.AddInt64(&seq, 1))
		ctx, cancel := context.WithTimeout(namespaces.WithNamespace(ctx, ns), caseTimeout)
		cleanup := func() error {
			defer cancel()
			return abortLeftovers(cs, ns, probeTimeout, &guard)
		}
		return ctx, cs, cleanup, nil
	}
	testsuite.ContentSuite(t, "cargohold", storeFn)
}

// abortLeftovers aborts every ingestion a case left open (as a fresh store would start the next
// case without them) and notes a server that no longer answers within probeTimeout.
func abortLeftovers(cs content.Store, ns string, probeTimeout time.Duration, guard *hangGuard) error {
	ctx, cancel := context.WithTimeout(
		namespaces.WithNamespace(context.Background(), ns), probeTimeout)
	defer cancel()
	started := time.Now()
	statuses, err := cs.ListStatuses(ctx)
	if err != nil {
		if errdefs.IsDeadlineExceeded(err) {
			guard.set(fmt.Errorf("the server stopped answering: ListStatuses after a case ran "+
				"past its %s deadline: %v", probeTimeout, err))
		}
		return fmt.Errorf("clean-up ListStatuses: %s", describe(err))
	}
	for _, st := range statuses {
		for {
			err := cs.Abort(ctx, st.Ref)
			if err == nil || errdefs.IsNotFound(err) {
				break
			}
			if errdefs.IsDeadlineExceeded(err) {
				guard.set(fmt.Errorf("the server stopped answering: Abort(%q) after a case "+
					"ran past its %s deadline: %v", st.Ref, probeTimeout, err))
				return fmt.Errorf("clean-up Abort(%q): %s", st.Ref, describe(err))
			}
			if !errdefs.IsUnavailable(err) {
				return fmt.Errorf("clean-up Abort(%q): %s", st.Ref, describe(err))
			}
			// Still locked by a writer the server is closing: retry within the deadline.
			if time.Since(started) > probeTimeout/2 {
				return fmt.Errorf("clean-up Abort(%q) still locked after %s: %v",
					st.Ref, time.Since(started).Round(time.Millisecond), err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}
