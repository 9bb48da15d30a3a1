package oci

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// WatchExits calls fn with the container id of every exit file that appears
// in exitDir (Runtime.ExitDir), using inotify, so an exit is seen within
// milliseconds. Once the watch is in place it also calls fn for each exit
// file already there, so an exit that happened while Berth was down is not
// missed; fn must therefore be idempotent. It returns when the watch is set
// up; fn runs on one goroutine, which stops when ctx ends.
func WatchExits(ctx context.Context, exitDir string, fn func(id string)) error {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return fmt.Errorf("watch exits in %s: %w", exitDir, err)
	}
	// conmon writes exit files atomically (g_file_set_contents: a temporary
	// "<id>.XXXXXX", then rename), so a rename into the directory is the event.
	if _, err := unix.InotifyAddWatch(fd, exitDir, unix.IN_MOVED_TO); err != nil {
		unix.Close(fd)
		return fmt.Errorf("watch exits in %s: %w", exitDir, err)
	}
	// A non-blocking fd in an *os.File goes through Go's poller: Close from
	// another goroutine unblocks Read.
	f := os.NewFile(uintptr(fd), "inotify:"+exitDir)
	existing, err := os.ReadDir(exitDir)
	if err != nil {
		f.Close()
		return fmt.Errorf("watch exits in %s: %w", exitDir, err)
	}
	go func() {
		<-ctx.Done()
		f.Close()
	}()
	go func() {
		for _, e := range existing {
			if isExitFileName(exitDir, e.Name()) {
				fn(e.Name())
			}
		}
		readExitEvents(f, exitDir, fn)
	}()
	return nil
}

func readExitEvents(f *os.File, exitDir string, fn func(id string)) {
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := f.Read(buf)
		if err != nil {
			return // closed: ctx ended
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameBytes := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				slog.Warn("exit watch overflowed; rescanning", "dir", exitDir)
				rescan(exitDir, fn)
				continue
			}
			name := string(bytes.TrimRight(nameBytes, "\x00"))
			if name != "" && isExitFileName(exitDir, name) {
				fn(name)
			}
		}
	}
}

// isExitFileName reports whether name in exitDir is (still) a regular file;
// this skips entries renamed away again and anything but files.
func isExitFileName(exitDir, name string) bool {
	fi, err := os.Lstat(exitDir + "/" + name)
	return err == nil && fi.Mode().IsRegular()
}

func rescan(exitDir string, fn func(id string)) {
	entries, err := os.ReadDir(exitDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if isExitFileName(exitDir, e.Name()) {
			fn(e.Name())
		}
	}
}
