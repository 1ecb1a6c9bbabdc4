// Command gofloor serves containerd's own content service (its Go gRPC server over its own
// local content store on disk) on a unix socket, as a proxy content plugin.
//
// bench_pull.py --floor pulls through it: no object store, no Python, no network behind the
// plugin. What a pull costs through it is what containerd's proxy path itself costs, the
// floor under any proxy content plugin.
//
//	gofloor SOCKET ROOT
package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	contentapi "github.com/containerd/containerd/api/services/content/v1"
	"github.com/containerd/containerd/content/local"
	"github.com/containerd/containerd/services/content/contentserver"
	"google.golang.org/grpc"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: gofloor SOCKET ROOT")
		os.Exit(2)
	}
	store, err := local.NewStore(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "gofloor:", err)
		os.Exit(1)
	}
	listener, err := net.Listen("unix", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "gofloor:", err)
		os.Exit(1)
	}
	server := grpc.NewServer()
	contentapi.RegisterContentServer(server, contentserver.New(store))
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		server.Stop()
	}()
	if err := server.Serve(listener); err != nil {
		fmt.Fprintln(os.Stderr, "gofloor:", err)
		os.Exit(1)
	}
}
