package specgen

import (
	"fmt"
	"strings"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// capNames are the Linux capabilities by number (linux/capability.h).
var capNames = [...]string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// capNumber parses "NET_ADMIN", "net_admin" or "CAP_NET_ADMIN".
func capNumber(name string) (int, bool) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	for i, c := range capNames {
		if c == n {
			return i, true
		}
	}
	return 0, false
}

// available reports whether the runtime can grant capability c: the kernel
// knows it and the daemon still has it in its bounding set (a daemon
// without CAP_SYS_RESOURCE cannot hand it out, and capset would fail).
func (h *Host) available(c int) bool {
	return c <= h.lastCap && c < 64 && h.bounding&(1<<uint(c)) != 0
}

func (g *gen) setCapabilities() error {
	caps, ambient, err := capabilities(g.in.DefaultCapabilities, g.sc.GetCapabilities(), g.privileged, g.host)
	if err != nil {
		return err
	}
	c := g.spec.Process.Capabilities
	c.Bounding, c.Effective, c.Permitted = caps, caps, caps
	if len(ambient) > 0 {
		c.Inheritable, c.Ambient = ambient, ambient
	}
	return nil
}

// capabilities computes the container's bounding, effective and permitted
// sets, and its ambient (and so inheritable) set. "ALL" in add grants
// every capability the host can grant, "ALL" in drop clears the set
// before single capabilities are added; single drops win over adds.
// Privileged containers get every capability the host can grant.
func capabilities(defaults []string, req *runtime.Capability, privileged bool, h *Host) ([]string, []string, error) {
	const field = scField + ".capabilities"
	set := map[int]bool{}
	all := func() {
		for c := range capNames {
			if h.available(c) {
				set[c] = true
			}
		}
	}
	parse := func(f, name string) (int, error) {
		c, ok := capNumber(name)
		if !ok {
			return 0, invalidf(f, "unknown capability %q", name)
		}
		return c, nil
	}
	if privileged {
		all()
	} else {
		for _, d := range defaults {
			c, err := parse("default_capabilities", d)
			if err != nil {
				return nil, nil, err
			}
			if h.available(c) {
				set[c] = true
			}
		}
	}
	adds, drops, amb := req.GetAddCapabilities(), req.GetDropCapabilities(), req.GetAddAmbientCapabilities()
	if !privileged && containsFold(adds, "ALL") {
		all()
	}
	if !privileged && containsFold(drops, "ALL") {
		set = map[int]bool{}
	}
	var ambient []int
	for _, list := range []struct {
		name  string
		items []string
	}{{"add_capabilities", adds}, {"add_ambient_capabilities", amb}} {
		for i, a := range list.items {
			if strings.EqualFold(a, "ALL") && list.name == "add_capabilities" {
				continue
			}
			f := fmt.Sprintf("%s.%s[%d]", field, list.name, i)
			c, err := parse(f, a)
			if err != nil {
				return nil, nil, err
			}
			if !h.available(c) {
				return nil, nil, preconditionf(f, "%s cannot be granted on this host", capNames[c])
			}
			set[c] = true
			if list.name == "add_ambient_capabilities" {
				ambient = append(ambient, c)
			}
		}
	}
	if !privileged {
		for i, d := range drops {
			if strings.EqualFold(d, "ALL") {
				continue
			}
			c, err := parse(fmt.Sprintf("%s.drop_capabilities[%d]", field, i), d)
			if err != nil {
				return nil, nil, err
			}
			delete(set, c)
		}
	}
	var caps, amb2 []string
	for c, name := range capNames {
		if set[c] {
			caps = append(caps, name)
		}
	}
	for _, c := range ambient {
		if set[c] {
			amb2 = appendUnique(amb2, capNames[c])
		}
	}
	return caps, amb2, nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
