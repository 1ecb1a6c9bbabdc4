// Command goread reads one blob through containerd's proxy content store client, one ReadAt
// (so one Read RPC) per piece, one after another: what containerd's unpack does through a
// proxy content plugin, whose decompressor reads 32 KiB at a time.
//
//	goread SOCKET DIGEST SIZE PIECE
//
// It checks the digest of what it read and prints "RPCS SECONDS" on success.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	contentapi "github.com/containerd/containerd/api/services/content/v1"
	"github.com/containerd/containerd/content/proxy"
	"github.com/containerd/containerd/namespaces"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
)

func fail(err error) {
	fmt.Fprintln(os.Stderr, "goread:", err)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: goread SOCKET DIGEST SIZE PIECE")
		os.Exit(2)
	}
	want := digest.Digest(os.Args[2])
	size, err := strconv.ParseInt(os.Args[3], 10, 64)
	if err != nil {
		fail(err)
	}
	piece, err := strconv.Atoi(os.Args[4])
	if err != nil {
		fail(err)
	}
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", addr)
	}
	conn, err := grpc.Dial(os.Args[1], grpc.WithInsecure(), grpc.WithContextDialer(dial))
	if err != nil {
		fail(err)
	}
	defer conn.Close()
	store := proxy.NewContentStore(contentapi.NewContentClient(conn))
	ctx := namespaces.WithNamespace(context.Background(), "bench")
	start := time.Now()
	ra, err := store.ReaderAt(ctx, ocispec.Descriptor{Digest: want, Size: size})
	if err != nil {
		fail(err)
	}
	defer ra.Close()
	digester := want.Algorithm().Digester()
	buf := make([]byte, piece)
	rpcs := 0
	for off := int64(0); off < size; {
		n := int64(piece)
		if size-off < n {
			n = size - off
		}
		got, err := ra.ReadAt(buf[:n], off)
		if err != nil || int64(got) != n {
			fail(fmt.Errorf("read at %d: %d of %d bytes: %v", off, got, n, err))
		}
		digester.Hash().Write(buf[:n])
		off += n
		rpcs++
	}
	elapsed := time.Since(start)
	if digester.Digest() != want {
		fail(fmt.Errorf("read %s, want %s", digester.Digest(), want))
	}
	fmt.Printf("%d %.6f\n", rpcs, elapsed.Seconds())
}
