package conmon

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Control message types conmon reads from its ctl fifo ("<type> <h> <w>\n").
const (
	ctlResize    = 1
	ctlReopenLog = 2
)

// ErrNoConmon is returned by WriteCtl when no conmon reads the fifo.
var ErrNoConmon = errors.New("conmon is not running")

// ReadExitFile reads an exit file: the exit code conmon wrote and, from the
// file's mtime, when the container finished. A missing file is returned as
// an error satisfying errors.Is(err, fs.ErrNotExist).
func ReadExitFile(path string) (code int32, finished time.Time, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, time.Time{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, time.Time{}, err
	}
	b := make([]byte, 32)
	n, err := f.Read(b)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("read exit file %s: %w", path, err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b[:n])), 10, 32)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("parse exit file %s: %w", path, err)
	}
	return int32(v), fi.ModTime(), nil
}

// ReadPidFile reads a pid file written by conmon or an OCI runtime.
func ReadPidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("parse pid file %s: bad content %q", path, b)
	}
	return pid, nil
}

// IsConmon reports whether pid is a live conmon monitoring container id. It
// checks the command line, so a recycled pid is not mistaken for conmon.
func IsConmon(pid int, id string) bool {
	if pid <= 0 {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	args := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
	if len(args) == 0 || !bytes.HasSuffix(args[0], []byte("conmon")) {
		return false
	}
	for i := 1; i+1 < len(args); i++ {
		if string(args[i]) == "-c" && string(args[i+1]) == id {
			return !isZombie(pid)
		}
	}
	return false
}

// ProcessAlive reports whether pid exists and is not a zombie.
func ProcessAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := unix.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	return !isZombie(pid)
}

func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses and may
	// itself contain spaces or parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] == 'Z' || b[i+2] == 'X'
}

// Resize asks conmon to resize the container's terminal.
func Resize(ctlPath string, height, width uint16) error {
	return writeCtl(ctlPath, ctlResize, int(height), int(width))
}

// ReopenLog asks conmon to close and reopen the container's log file.
func ReopenLog(ctlPath string) error {
	return writeCtl(ctlPath, ctlReopenLog, 0, 0)
}

// writeCtl writes one control message. The fifo is opened non-blocking so a
// dead conmon (no reader) is an error, ErrNoConmon, instead of a hang.
func writeCtl(path string, typ, h, w int) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("open %s: %w", path, ErrNoConmon)
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if _, err := fmt.Fprintf(f, "%d %d %d\n", typ, h, w); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ParseLog splits a CRI-format log ("<time> <stream> <P|F> <text>\n" lines)
// into the bytes written to stdout and to stderr. Partial lines (P) are
// joined without the newline conmon added when splitting them.
func ParseLog(log []byte) (stdout, stderr []byte) {
	for _, line := range bytes.SplitAfter(log, []byte{'\n'}) {
		parts := bytes.SplitN(line, []byte{' '}, 4)
		if len(parts) < 4 {
			continue
		}
		content := parts[3]
		if string(parts[2]) == "P" {
			content = bytes.TrimSuffix(content, []byte{'\n'})
		}
		switch string(parts[1]) {
		case "stdout":
			stdout = append(stdout, content...)
		case "stderr":
			stderr = append(stderr, content...)
		}
	}
	return stdout, stderr
}
