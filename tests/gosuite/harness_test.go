package gosuite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	contentapi "github.com/containerd/containerd/api/services/content/v1"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/content/proxy"
	"github.com/containerd/containerd/errdefs"
	"google.golang.org/grpc"
)

// envSocket names the environment variable holding the path of the plugin's unix socket.
const envSocket = "CARGOHOLD_GOSUITE_SOCKET"

// maxMessage matches the plugin's limit: containerd sends WRITE chunks of up to 8 MiB.
const maxMessage = 64 << 20

// envDuration reads a number of seconds (fractions allowed) from the environment.
func envDuration(t *testing.T, name string, fallback time.Duration) time.Duration {
	t.Helper()
	value := os.Getenv(name)
	if value == "" {
		return fallback
	}
	seconds, err := strconv.ParseFloat(value, 64)
	if err != nil || seconds <= 0 {
		t.Fatalf("%s=%q: want a positive number of seconds", name, value)
	}
	return time.Duration(seconds * float64(time.Second))
}

// envInt reads a positive integer from the environment.
func envInt(t *testing.T, name string, fallback int) int {
	t.Helper()
	value := os.Getenv(name)
	if value == "" {
		return fallback
	}
	n, err := strconv.Atoi(value)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, value)
	}
	return n
}

// connect returns containerd's proxy content store on a connection to the socket named by
// CARGOHOLD_GOSUITE_SOCKET; the connection is closed when the test ends. It connects lazily:
// every call carries a deadline, so a server that accepts but never answers fails calls in
// bounded time, the same way whether it stopped before or after the first call.
func connect(t *testing.T) content.Store {
	t.Helper()
	socket := os.Getenv(envSocket)
	if socket == "" {
		t.Fatalf("%s is not set: it names the unix socket of a running `cargohold serve`", envSocket)
	}
	conn, err := grpc.Dial(socket,
		grpc.WithInsecure(),
		grpc.WithContextDialer(func(ctx context.Context, path string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(maxMessage), grpc.MaxCallSendMsgSize(maxMessage)),
	)
	if err != nil {
		t.Fatalf("dial %s: %v", socket, err)
	}
	t.Cleanup(func() { conn.Close() })
	return proxy.NewContentStore(contentapi.NewContentClient(conn))
}

// errorClass names the containerd error category of err ("ok" for nil).
func errorClass(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errdefs.IsDeadlineExceeded(err):
		return "DeadlineExceeded"
	case errdefs.IsCanceled(err):
		return "Canceled"
	case errdefs.IsUnavailable(err):
		return "Unavailable"
	case errdefs.IsAlreadyExists(err):
		return "AlreadyExists"
	case errdefs.IsNotFound(err):
		return "NotFound"
	case errdefs.IsFailedPrecondition(err):
		return "FailedPrecondition"
	case errdefs.IsInvalidArgument(err):
		return "InvalidArgument"
	case streamEnded(err):
		return "EOF"
	default:
		return "Unknown"
	}
}

// streamEnded says whether a proxy writer's Send found its stream already over. grpc-go's Send
// returns io.EOF then (the status is left for Recv, which the proxy writer does not reach), and
// errdefs.FromGRPC keeps only its text, so the text is all there is to go by.
func streamEnded(err error) bool {
	return errors.Is(err, io.EOF) || (errors.Is(err, errdefs.ErrUnknown) && strings.Contains(err.Error(), "EOF"))
}

// allowedClass says whether a failed call of the stress test is one of the outcomes a
// concurrent client must expect (everything else, deadlines included, is a defect).
func allowedClass(class string) bool {
	switch class {
	case "ok", "Unavailable", "AlreadyExists", "NotFound", "FailedPrecondition", "Canceled":
		return true
	}
	return false
}

// describe formats an error with its class, for failure messages.
func describe(err error) string {
	return fmt.Sprintf("%s (%v)", errorClass(err), err)
}
