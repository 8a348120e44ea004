// cri-stop stops and removes every pod sandbox of a CRI runtime, so that the runtime runs
// CNI DEL for each (veth, IP lease, portmap rules) and removes its network namespace.
// It replaces `crictl rmp --all --force`, whose build pulls in far more than the CRI API.
//
// Usage: cri-stop unix:///path/to/containerd.sock
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: cri-stop unix:///path/to/socket")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := grpc.NewClient(os.Args[1], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail("connect", err)
	}
	defer conn.Close()
	client := cri.NewRuntimeServiceClient(conn)
	sandboxes, err := client.ListPodSandbox(ctx, &cri.ListPodSandboxRequest{})
	if err != nil {
		fail("list sandboxes", err)
	}
	failed := 0
	for _, sandbox := range sandboxes.Items {
		id := sandbox.Id
		// Stop first: removal of a running sandbox is refused by some runtimes.
		if _, err := client.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			fmt.Fprintf(os.Stderr, "stop %s: %v\n", id, err)
			failed++
			continue
		}
		if _, err := client.RemovePodSandbox(ctx, &cri.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			fmt.Fprintf(os.Stderr, "remove %s: %v\n", id, err)
			failed++
		}
	}
	fmt.Printf("removed %d of %d pod sandboxes\n", len(sandboxes.Items)-failed, len(sandboxes.Items))
	if failed > 0 {
		os.Exit(1)
	}
}

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "cri-stop: %s: %v\n", what, err)
	os.Exit(1)
}
