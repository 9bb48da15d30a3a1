package check

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/config"
)

// seccomp checks that the kernel filters syscalls (CONFIG_SECCOMP_FILTER),
// which RuntimeDefault and Localhost profiles need, and that a configured
// default profile is readable JSON.
func seccomp(cfg *config.Config, host Host) Result {
	const name = "kernel seccomp"
	const kernelFix = "boot a kernel built with CONFIG_SECCOMP=y and CONFIG_SECCOMP_FILTER=y"
	mode, err := statusField(host.ProcSelfStatus, "Seccomp")
	if err != nil {
		return fail(name, kernelFix, "no seccomp support: %v", err)
	}
	actions, err := os.ReadFile(host.SeccompActions)
	if err != nil {
		return fail(name, kernelFix, "seccomp without filter mode (%v): pods asking for RuntimeDefault fail", err)
	}
	detail := fmt.Sprintf("filter mode available (actions: %s)", strings.TrimSpace(string(actions)))
	if mode != "0" {
		detail += fmt.Sprintf("; this process already runs under seccomp mode %s", mode)
	}
	if p := cfg.Runtime.SeccompProfile; p != "" {
		data, err := os.ReadFile(p)
		if err == nil && !json.Valid(data) {
			err = errors.New("not valid JSON")
		}
		if err != nil {
			return fail(name, "correct the file, or set runtime.seccomp_profile = \"\" for the built-in profile",
				"runtime.seccomp_profile %s: %v", p, err)
		}
		detail += "; RuntimeDefault is " + p
	}
	return ok(name, "%s", detail)
}

// statusField returns a field of /proc/self/status.
func statusField(path, field string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == field {
			return strings.TrimSpace(v), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s has no %s field", path, field)
}

// userNamespaces checks that user namespaces can be created: pods with
// hostUsers: false need them. Nothing else does yet, so it only warns.
func userNamespaces(host Host) Result {
	const name = "kernel user namespaces"
	data, err := os.ReadFile(host.MaxUserNamespaces)
	if errors.Is(err, os.ErrNotExist) {
		return warn(name, "boot a kernel built with CONFIG_USER_NS=y",
			"not supported (no %s): pods with hostUsers: false fail", host.MaxUserNamespaces)
	}
	if err != nil {
		return warn(name, "check "+host.MaxUserNamespaces, "%v", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return warn(name, "check "+host.MaxUserNamespaces, "cannot parse %s: %v", host.MaxUserNamespaces, err)
	}
	if n <= 0 {
		return warn(name, "`sysctl -w user.max_user_namespaces=65536` (persist it in /etc/sysctl.d/)",
			"disabled (user.max_user_namespaces = %d): pods with hostUsers: false fail", n)
	}
	return ok(name, "enabled (user.max_user_namespaces = %d)", n)
}

// networkNamespaces checks that a network namespace can be created: every
// pod that is not on the host network gets one.
func networkNamespaces(host Host) Result {
	const name = "kernel network namespaces"
	if host.UnshareNet == nil {
		if _, err := os.Stat("/proc/self/ns/net"); err != nil {
			return fail(name, "boot a kernel built with CONFIG_NET_NS=y", "not supported: %v", err)
		}
		return ok(name, "supported (/proc/self/ns/net); creating one needs root and was not tried")
	}
	if err := host.UnshareNet(); err != nil {
		return fail(name, "boot a kernel built with CONFIG_NET_NS=y, and run berth as root outside restricting sandboxes (seccomp, no CAP_SYS_ADMIN)",
			"cannot create one: %v", err)
	}
	return ok(name, "a network namespace can be created")
}

// unshareNet creates a network namespace on a thread of its own. The
// goroutine ends with the thread still locked, so the runtime discards the
// thread, and the namespace with it, instead of reusing it.
func unshareNet() error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
			return
		}
		errc <- nil
	}()
	return <-errc
}
