// Package conmon speaks to conmon 2.1.x, the per-container monitor Berth runs
// like CRI-O does: it builds conmon's command line, launches it with the
// _OCI_SYNCPIPE/_OCI_STARTPIPE handshake, and reads and writes the files
// conmon leaves behind (exit files, pid files, the ctl fifo, exec logs).
//
// Where conmon 2.1.6 puts things, given the flags built here:
//
//   - <ExitDir>/<id>: the exit code as text, written atomically (rename) when
//     the container's init process is gone; its mtime is the finish time.
//   - <PersistDir>/exit: the same code, and <PersistDir>/oom: an empty file
//     written when the kernel OOM-killed something in the container's cgroup.
//   - <Bundle>/ctl and <Bundle>/winsz: fifos conmon reads control messages from.
//   - <Bundle>/attach: the SOCK_SEQPACKET attach socket, reached through the
//     symlink <SocketDir>/<id> -> <Bundle> to stay under the 108-byte limit of
//     unix socket paths. conmon removes the symlink when it exits.
//   - ConmonPidFile and ContainerPidFile: the daemonised conmon's pid and the
//     container's init pid (written by the OCI runtime).
package conmon

import (
	"math"
	"path/filepath"
	"strconv"
	"time"
)

// Binary is what every launch of conmon shares for one runtime handler.
type Binary struct {
	// Path of the conmon binary.
	Path string
	// RuntimePath is the OCI runtime conmon runs (-r).
	RuntimePath string
	// RuntimeRoot is the runtime's state directory, passed as --root.
	RuntimeRoot string
	// SystemdCgroup makes conmon pass --systemd-cgroup to the runtime.
	SystemdCgroup bool
	// LogLevel is conmon's own log level (debug, info, warn, error).
	LogLevel string
}

// CreateArgs describes one container for `conmon ... create`.
type CreateArgs struct {
	ID, Name string
	// Bundle holds config.json; conmon also puts ctl, winsz and attach there.
	Bundle string
	// PersistDir receives conmon's "exit" and "oom" files.
	PersistDir string
	// ExitDir receives <ExitDir>/<ID> when the container exits.
	ExitDir string
	// SocketDir receives the <SocketDir>/<ID> symlink to the bundle.
	SocketDir        string
	ConmonPidFile    string
	ContainerPidFile string
	// LogPath is the CRI log file (k8s-file driver).
	LogPath string
	// LogSizeMax truncates the log past this many bytes; <= 0 is unlimited.
	LogSizeMax int64
	Terminal   bool
	Stdin      bool
	StdinOnce  bool
}

// ExecArgs describes one synchronous exec through `conmon --exec`.
type ExecArgs struct {
	ID, Name string
	// ProcessSpec is the path of the JSON runtime-spec Process to run.
	ProcessSpec string
	PidFile     string
	LogPath     string
	// Timeout kills the process after this long; 0 means never. conmon
	// counts whole seconds, so it is rounded up.
	Timeout time.Duration
	// LogSizeMax caps the output kept, in bytes; <= 0 is unlimited.
	LogSizeMax int64
}

// CreateArgv returns conmon's arguments (without argv[0]) to create a container.
func (b Binary) CreateArgv(a CreateArgs) []string {
	args := b.common(a.ID, a.Name)
	args = append(args,
		"-b", a.Bundle,
		"-P", a.ConmonPidFile,
		"-p", a.ContainerPidFile,
		"-l", "k8s-file:"+a.LogPath,
		"--exit-dir", a.ExitDir,
		"--persist-dir", a.PersistDir,
		"--socket-dir-path", a.SocketDir,
	)
	if a.LogSizeMax > 0 {
		args = append(args, "--log-size-max", strconv.FormatInt(a.LogSizeMax, 10))
	}
	switch {
	case a.Terminal:
		args = append(args, "-t")
	case a.Stdin:
		args = append(args, "-i")
		if !a.StdinOnce {
			args = append(args, "--leave-stdin-open")
		}
	}
	return args
}

// ExecArgv returns conmon's arguments (without argv[0]) for a synchronous exec.
// conmon stays in the foreground (--sync) so the caller can wait for it.
func (b Binary) ExecArgv(a ExecArgs) []string {
	args := b.common(a.ID, a.Name)
	args = append(args,
		"-e",
		"--exec-process-spec", a.ProcessSpec,
		"-p", a.PidFile,
		"-l", "k8s-file:"+a.LogPath,
		"--sync",
	)
	if a.LogSizeMax > 0 {
		args = append(args, "--log-global-size-max", strconv.FormatInt(a.LogSizeMax, 10))
	}
	if a.Timeout > 0 {
		args = append(args, "-T", strconv.Itoa(TimeoutSeconds(a.Timeout)))
	}
	return args
}

func (b Binary) common(id, name string) []string {
	args := []string{
		"--api-version", "1",
		"-c", id,
		"-u", id,
		"-n", name,
		"-r", b.RuntimePath,
		"--runtime-arg", "--root=" + b.RuntimeRoot,
	}
	if b.SystemdCgroup {
		args = append(args, "-s")
	}
	if b.LogLevel != "" {
		args = append(args, "--log-level", b.LogLevel)
	}
	return args
}

// TimeoutSeconds rounds d up to whole seconds, at least 1, as conmon's -T takes.
func TimeoutSeconds(d time.Duration) int {
	s := math.Ceil(d.Seconds())
	if s < 1 {
		return 1
	}
	if s > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(s)
}

// AttachSocketPath is where a client connects to attach to container id.
func AttachSocketPath(socketDir, id string) string {
	return filepath.Join(socketDir, id, "attach")
}

// CtlPath is conmon's control fifo for the container whose bundle is given.
func CtlPath(bundle string) string { return filepath.Join(bundle, "ctl") }

// ExitFilePath is the exit file conmon writes for id in exitDir.
func ExitFilePath(exitDir, id string) string { return filepath.Join(exitDir, id) }

// OOMFilePath is the file conmon creates in persistDir after an OOM kill.
func OOMFilePath(persistDir string) string { return filepath.Join(persistDir, "oom") }

// BundleFiles are the names conmon creates inside a container's bundle.
var BundleFiles = []string{"ctl", "winsz", "attach"}
