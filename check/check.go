// Package check is `berth check`: a readiness check of the node that needs
// no daemon. It looks at what the effective configuration points to (runtime
// handlers, conmon, CNI, storage paths) and at the kernel and cgroups, and
// says for every problem how to fix it.
package check

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/config"
)

// Status is the outcome of one check.
type Status int

const (
	OK   Status = iota
	Warn        // works, but something will fail or is suboptimal
	Fail        // the node is not ready for Berth
)

func (s Status) String() string {
	switch s {
	case OK:
		return "OK"
	case Warn:
		return "WARN"
	default:
		return "FAIL"
	}
}

// Result is one line of the report.
type Result struct {
	Name   string
	Status Status
	Detail string // what was found, or the problem
	Fix    string // a concrete command or config key; empty for OK
}

// String renders the result as `berth check` prints it:
// "OK   <check>: <detail>" or "FAIL <check>: <problem>; fix: <fix>".
func (r Result) String() string {
	s := fmt.Sprintf("%-4s %s: %s", r.Status, r.Name, r.Detail)
	if r.Fix != "" {
		s += "; fix: " + r.Fix
	}
	return s
}

func ok(name, format string, a ...any) Result {
	return Result{Name: name, Status: OK, Detail: fmt.Sprintf(format, a...)}
}

func warn(name, fix, format string, a ...any) Result {
	return Result{Name: name, Status: Warn, Detail: fmt.Sprintf(format, a...), Fix: fix}
}

func fail(name, fix, format string, a ...any) Result {
	return Result{Name: name, Status: Fail, Detail: fmt.Sprintf(format, a...), Fix: fix}
}

// Host is where the checks look at the machine. RealHost is this machine;
// tests point the paths at temp files and replace the probes.
type Host struct {
	ProcFilesystems   string // /proc/filesystems
	ProcSelfStatus    string // /proc/self/status
	SeccompActions    string // /proc/sys/kernel/seccomp/actions_avail
	MaxUserNamespaces string // /proc/sys/user/max_user_namespaces
	CgroupRoot        string // /sys/fs/cgroup
	SystemdRunDir     string // /run/systemd/system, present when systemd is init

	// FsType returns the statfs magic of the filesystem at path.
	FsType func(path string) (int64, error)
	// MountOverlay mounts and unmounts an overlay in the empty dir it is
	// given; nil skips the probe (it needs root).
	MountOverlay func(dir string) error
	// UnshareNet creates a network namespace and drops it; nil skips the
	// probe (it needs root).
	UnshareNet func() error
	// CommandTimeout bounds every `<binary> --version` and CNI VERSION call.
	CommandTimeout time.Duration
}

// RealHost is this machine. The privileged probes run only as root;
// otherwise their checks say they were not tried.
func RealHost() Host {
	h := Host{
		ProcFilesystems:   "/proc/filesystems",
		ProcSelfStatus:    "/proc/self/status",
		SeccompActions:    "/proc/sys/kernel/seccomp/actions_avail",
		MaxUserNamespaces: "/proc/sys/user/max_user_namespaces",
		CgroupRoot:        "/sys/fs/cgroup",
		SystemdRunDir:     "/run/systemd/system",
		FsType:            fsType,
		CommandTimeout:    10 * time.Second,
	}
	if os.Geteuid() == 0 {
		h.MountOverlay = mountOverlay
		h.UnshareNet = unshareNet
	}
	return h
}

func fsType(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Type), nil
}

// Run runs every check against cfg on host, in the order of the report.
func Run(ctx context.Context, cfg *config.Config, host Host) []Result {
	if host.CommandTimeout <= 0 {
		host.CommandTimeout = 10 * time.Second
	}
	var rs []Result
	rs = append(rs, runtimeHandlers(ctx, cfg, host)...)
	rs = append(rs, conmon(ctx, cfg, host))
	rs = append(rs, cgroupDriver(cfg, host))
	rs = append(rs, cgroups(cfg, host)...)
	rs = append(rs, cni(ctx, cfg, host)...)
	rs = append(rs, overlay(cfg, host))
	rs = append(rs, storagePaths(cfg)...)
	rs = append(rs, registriesConf(cfg), signaturePolicy(cfg))
	rs = append(rs, seccomp(cfg, host), userNamespaces(host), networkNamespaces(host))
	return rs
}

// Print writes the results one a line and reports whether none failed.
func Print(w io.Writer, rs []Result) (ready bool) {
	ready = true
	for _, r := range rs {
		fmt.Fprintln(w, r)
		if r.Status == Fail {
			ready = false
		}
	}
	return ready
}

// firstLine is the first non-empty line of a command's output, for version
// strings that go on to print commits and feature lists.
func firstLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}
