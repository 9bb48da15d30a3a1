// Command nnp stands in for the nnp program of Kubernetes'
// e2e-test-images/nonewprivs: installed setuid root and started as a
// non-root user, it prints its effective uid. With no_new_privs set the
// setuid bit has no effect ("Effective uid: 1000"); without it, the exec
// makes the process root ("Effective uid: 0"). critest's NoNewPrivs specs
// compare that line.
//
// The rig builds it with CGO_ENABLED=0 (a static binary, so the setuid exec
// involves no dynamic loader); it is also compiled here as an ordinary
// package so that `go vet ./...` checks it.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Printf("Effective uid: %d\n", os.Geteuid())
}
