package integration

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// waitTimeout bounds every wait of this package. A wait ends as soon as its
// condition holds, so a passing test never spends it: it only decides how
// long a broken one takes to say so, and is long enough that a node with
// both CPUs busy cannot miss a condition that does come true.
const waitTimeout = time.Minute

// waitFor polls cond until it holds or waitTimeout passes, and reports
// whether it held. cond runs on the caller's goroutine (it may call
// t.Fatal); the caller asserts what it waited for, with its own message.
func waitFor(cond func() bool) bool {
	deadline := time.Now().Add(waitTimeout)
	// Quick first polls for what is nearly there, then a pace that leaves
	// the CPUs to the daemon and its containers.
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(delay)
	}
}

// exited returns a condition that holds once process pid has exited. It
// holds a pidfd, so a process that later gets the same pid is not taken for
// it, and a zombie nobody reaps counts as exited.
func exited(t *testing.T, pid int) func() bool {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatalf("pidfd of process %d: %v", pid, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return func() bool {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
		return err == nil && n > 0
	}
}
