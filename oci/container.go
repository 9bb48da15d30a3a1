package oci

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/conmon"
	"github.com/berth-dev/berth/errdefs"
)

// Container is what the runtime needs to know about one container. It holds
// no live state: everything else is read back from disk, so a Container
// rebuilt from the caller's checkpoint after a restart works the same.
//
// Files, for RunDir r and container id:
//
//	r/containers/<id>/          the persist dir, conmon's working directory
//	    conmon.pid              conmon's pid (the daemonised one)
//	    pidfile                 the container's init pid, from the runtime
//	    exit, oom               written by conmon at exit / on an OOM kill
//	    conmon.stderr           what conmon printed before detaching
//	r/exits/<id>                the exit code; mtime = finish time
//	r/sockets/<id> -> bundle    symlink to reach <bundle>/attach
//	<bundle>/ctl, winsz, attach conmon's fifos and attach socket
type Container struct {
	// ID is the container id, also the runtime's id.
	ID string
	// Name is a human-readable name conmon logs with.
	Name string
	// BundleDir holds config.json and the rootfs it names.
	BundleDir string
	// LogPath is the CRI log file conmon writes.
	LogPath string
	// Terminal, Stdin and StdinOnce are the CRI container config's.
	Terminal, Stdin, StdinOnce bool
	// CgroupParent is the pod's cgroup parent (cgroupfs path such as
	// "/kubepods/burstable/pod<uid>"); conmon goes in
	// "<CgroupParent>/berth-conmon-<id>". Empty leaves conmon in the
	// daemon's cgroup.
	CgroupParent string
	// LogSizeMax truncates the log beyond this many bytes; <= 0 is unlimited.
	LogSizeMax int64
}

func (c *Container) validate() error {
	if c == nil || c.ID == "" || strings.ContainsAny(c.ID, "/\x00") || c.ID == "." || c.ID == ".." {
		return fmt.Errorf("container id %q: %w", idOf(c), errdefs.ErrInvalidArgument)
	}
	return nil
}

func idOf(c *Container) string {
	if c == nil {
		return ""
	}
	return c.ID
}

// PersistDir is container c's own directory of conmon files.
func (r *Runtime) PersistDir(c *Container) string { return filepath.Join(r.containersDir(), c.ID) }

func (r *Runtime) conmonPidFile(c *Container) string {
	return filepath.Join(r.PersistDir(c), "conmon.pid")
}
func (r *Runtime) initPidFile(c *Container) string { return filepath.Join(r.PersistDir(c), "pidfile") }
func (r *Runtime) conmonStderr(c *Container) string {
	return filepath.Join(r.PersistDir(c), "conmon.stderr")
}

// ExitFile is where conmon writes container c's exit code.
func (r *Runtime) ExitFile(c *Container) string { return conmon.ExitFilePath(r.ExitDir(), c.ID) }

// AttachSocketPath is the SOCK_SEQPACKET socket to attach to container c.
// Each message read starts with a byte naming the stream (2 stdout, 3 stderr).
func (r *Runtime) AttachSocketPath(c *Container) string {
	return conmon.AttachSocketPath(r.socketDir(), c.ID)
}

// CtlPath is conmon's control fifo for container c.
func (r *Runtime) CtlPath(c *Container) string { return conmon.CtlPath(c.BundleDir) }

// SpecVersion is the ociVersion bundles should declare: the newest one all
// supported runtimes accept. crun 1.8.1 (Debian 12) rejects "1.2.0" and
// later with "unknown version specified", so specs.Version ("1.3.0" in
// runtime-spec v1.3.0) cannot be used as is.
const SpecVersion = "1.1.0"

// maxSocketPath is the size of sockaddr_un.sun_path less its NUL.
const maxSocketPath = 107
