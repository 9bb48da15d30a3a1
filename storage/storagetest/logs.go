package storagetest

import (
	"log/slog"
	"strings"
	"testing"
)

// Logs captures a slog logger's text output.
type Logs struct {
	buf SyncBuffer
}

// NewLogger returns a debug-level text logger and what it wrote.
func NewLogger(t testing.TB) (*slog.Logger, *Logs) {
	l := &Logs{}
	return slog.New(slog.NewTextHandler(&l.buf, &slog.HandlerOptions{Level: slog.LevelDebug})), l
}

// Count counts the lines with message msg that contain every one of parts.
func (l *Logs) Count(msg string, parts ...string) int {
	n := 0
	for _, line := range strings.Split(l.buf.String(), "\n") {
		if !strings.Contains(line, "msg="+quote(msg)) {
			continue
		}
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			n++
		}
	}
	return n
}

// String is everything logged.
func (l *Logs) String() string { return l.buf.String() }

func quote(msg string) string {
	if strings.ContainsAny(msg, " =\"") {
		return `"` + msg + `"`
	}
	return msg
}
