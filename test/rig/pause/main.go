// Command pause is the infra process of the rig's pause images, a stand-in
// for Kubernetes' pause: it holds a pod's namespaces open by existing, exits 0
// on SIGTERM or SIGINT, and reaps zombies, since it is PID 1 when the pod
// shares one PID namespace and orphans get reparented to it.
//
// The rig embeds this file and builds it with CGO_ENABLED=0, so the image
// needs no libc; it is also compiled here as an ordinary package so that
// `go vet ./...` checks it.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const version = "berth-rig-pause"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println(version)
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "Warning: pause should be the first process")
	}
	// Buffered: SIGCHLDs coalesce anyway, and reap drains every exited child
	// whenever one arrives.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range sigs {
		if sig == syscall.SIGCHLD {
			reap()
			continue
		}
		fmt.Fprintf(os.Stderr, "Shutting down, got signal: %v\n", sig)
		os.Exit(0)
	}
}

// reap collects every child that has exited, without blocking.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
