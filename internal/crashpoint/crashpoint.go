// Package crashpoint lets tests kill the daemon at a named step of an
// operation, to prove that a crash there leaves nothing half-made. It is
// off unless BERTH_CRASH_POINT names a point; nothing else changes the
// daemon's behaviour.
package crashpoint

import (
	"log/slog"
	"os"
	"syscall"
)

// EnvVar names the crash point a test arms.
const EnvVar = "BERTH_CRASH_POINT"

var armed = os.Getenv(EnvVar)

// Hit kills the process with SIGKILL, as an OOM kill or power loss would,
// when name is the armed point.
func Hit(name string) {
	if armed == "" || armed != name {
		return
	}
	slog.Warn("crash point reached: killing the daemon", "point", name)
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL cannot be caught; never return into the operation
}
