package check

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/network"
)

// node is a fake node in a temp dir: binaries, CNI dirs, /proc files and
// cgroup mounts that a test case bends one way or another.
type node struct {
	dir     string
	cfg     *config.Config
	host    Host
	fsTypes map[string]int64 // path → statfs magic; absent is an error
}

const pluginScript = `#!/bin/sh
echo '{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}'
`

func writeFile(t *testing.T, path, data string, mode os.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// newNode is a node on which every check passes: a hybrid cgroup host with
// every controller on v1, crun and runc, conmon, the default bridge network.
func newNode(t *testing.T) *node {
	t.Helper()
	dir := t.TempDir()
	n := &node{dir: dir, cfg: config.Default()}
	c := n.cfg
	c.Runtime.Handlers = map[string]config.RuntimeHandler{
		"crun": {Path: writeFile(t, filepath.Join(dir, "bin/crun"), "#!/bin/sh\necho crun version 1.8.1\necho commit: x\n", 0o755), Root: filepath.Join(dir, "run/crun")},
		"runc": {Path: writeFile(t, filepath.Join(dir, "bin/runc"), "#!/bin/sh\necho runc version 1.1.5\n", 0o755), Root: filepath.Join(dir, "run/runc")},
	}
	c.Runtime.Conmon = writeFile(t, filepath.Join(dir, "bin/conmon"), "#!/bin/sh\necho conmon version 2.1.6\n", 0o755)
	c.Network.CNIConfigDir = filepath.Join(dir, "cni/net.d")
	c.Network.CNIPluginDirs = []string{filepath.Join(dir, "opt/cni/bin"), filepath.Join(dir, "usr/lib/cni")}
	for _, p := range []string{"bridge", "host-local", "portmap", "loopback"} {
		writeFile(t, filepath.Join(dir, "usr/lib/cni", p), pluginScript, 0o755)
	}
	writeFile(t, filepath.Join(c.Network.CNIConfigDir, DefaultConflistName), string(network.DefaultConflist(DefaultBridge, DefaultSubnet)), 0o644)
	c.Storage.Root = filepath.Join(dir, "var/lib/containers/storage")
	c.Storage.RunRoot = filepath.Join(dir, "run/containers/storage")
	c.Runtime.StateDir = filepath.Join(dir, "var/lib/berth")
	c.Runtime.RunDir = filepath.Join(dir, "run/berth")
	c.API.Listen = filepath.Join(dir, "run/berth/berth.sock")
	c.Image.RegistriesConf = writeFile(t, filepath.Join(dir, "etc/containers/registries.conf"), `unqualified-search-registries = ["docker.io"]`+"\n", 0o644)
	c.Image.SignaturePolicy = writeFile(t, filepath.Join(dir, "etc/containers/policy.json"), `{"default":[{"type":"insecureAcceptAnything"}]}`, 0o644)

	// PATH holds only a fake iptables, so no host command leaks in.
	writeFile(t, filepath.Join(dir, "path/iptables"), "#!/bin/sh\necho 'iptables v1.8.9 (nf_tables)'\n", 0o755)
	t.Setenv("PATH", filepath.Join(dir, "path"))

	cg := filepath.Join(dir, "sys/fs/cgroup")
	n.fsTypes = map[string]int64{cg: unix.TMPFS_MAGIC, filepath.Join(cg, "unified"): unix.CGROUP2_SUPER_MAGIC}
	for _, ctl := range append(v1Controllers, "hugetlb") {
		n.fsTypes[filepath.Join(cg, ctl)] = unix.CGROUP_SUPER_MAGIC
	}
	writeFile(t, filepath.Join(cg, "unified/cgroup.controllers"), "", 0o444)
	n.host = Host{
		ProcFilesystems:   writeFile(t, filepath.Join(dir, "proc/filesystems"), "nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\n", 0o444),
		ProcSelfStatus:    writeFile(t, filepath.Join(dir, "proc/self/status"), "Name:\tberth\nSeccomp:\t0\nSeccomp_filters:\t0\n", 0o444),
		SeccompActions:    writeFile(t, filepath.Join(dir, "proc/sys/kernel/seccomp/actions_avail"), "kill_process errno allow\n", 0o444),
		MaxUserNamespaces: writeFile(t, filepath.Join(dir, "proc/sys/user/max_user_namespaces"), "15000\n", 0o444),
		CgroupRoot:        cg,
		SystemdRunDir:     filepath.Join(dir, "run/systemd/system"),
		FsType: func(path string) (int64, error) {
			if t, ok := n.fsTypes[path]; ok {
				return t, nil
			}
			return 0, unix.ENOENT
		},
		MountOverlay:   func(string) error { return nil },
		UnshareNet:     func() error { return nil },
		CommandTimeout: 10 * time.Second,
	}
	return n
}

// want is an expected result: its status and words its text must hold.
type want struct {
	name   string
	status Status
	has    []string // substrings of Detail + "; fix: " + Fix
}

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, n *node)
		want   []want
		absent []string // checks that must not report
	}{
		{
			name: "ready node",
			want: []want{
				{"runtime handler crun", OK, []string{"crun version 1.8.1"}},
				{"runtime handler runc", OK, []string{"runc version 1.1.5"}},
				{"conmon", OK, []string{"conmon version 2.1.6"}},
				{"cgroup driver", OK, []string{"cgroupfs"}},
				{"cgroups", OK, []string{"cgroup v1 hybrid"}},
				{"cgroups for crun", OK, []string{"hugetlb on v1"}},
				{"cni network", OK, []string{`"berth"`, DefaultConflistName}},
				{"cni plugins", OK, []string{"bridge, host-local, portmap", "usr/lib/cni"}},
				{"cni iptables", OK, []string{"iptables v1.8.9", "for bridge, portmap"}},
				{"overlay", OK, []string{"overlay mount"}},
				{"storage root", OK, []string{"does not exist yet"}},
				{"registries.conf", OK, []string{"docker.io"}},
				{"signature policy", OK, nil},
				{"kernel seccomp", OK, []string{"filter mode"}},
				{"kernel user namespaces", OK, []string{"15000"}},
				{"kernel network namespaces", OK, nil},
			},
		},
		{
			name: "default runtime binary missing",
			setup: func(t *testing.T, n *node) {
				os.Remove(n.cfg.Runtime.Handlers["crun"].Path)
			},
			want: []want{{"runtime handler crun", Fail, []string{"does not exist", "apt-get install crun", "runtime.handlers.crun.path"}}},
		},
		{
			name: "other runtime binary missing",
			setup: func(t *testing.T, n *node) {
				os.Remove(n.cfg.Runtime.Handlers["runc"].Path)
			},
			want: []want{
				{"runtime handler crun", OK, nil},
				{"runtime handler runc", Warn, []string{"apt-get install runc", `RuntimeClass handler "runc"`}},
			},
		},
		{
			name: "runtime binary does not run",
			setup: func(t *testing.T, n *node) {
				writeFile(t, n.cfg.Runtime.Handlers["crun"].Path, "#!/bin/sh\necho broken >&2\nexit 3\n", 0o755)
			},
			want: []want{{"runtime handler crun", Fail, []string{"--version` failed", "exit status 3", "broken", "--reinstall crun"}}},
		},
		{
			name: "runtime binary not executable",
			setup: func(t *testing.T, n *node) {
				os.Chmod(n.cfg.Runtime.Handlers["crun"].Path, 0o644)
			},
			want: []want{{"runtime handler crun", Fail, []string{"not an executable file", "chmod 0755"}}},
		},
		{
			name: "conmon missing",
			setup: func(t *testing.T, n *node) {
				os.Remove(n.cfg.Runtime.Conmon)
			},
			want: []want{{"conmon", Fail, []string{"does not exist", "apt-get install conmon", "runtime.conmon"}}},
		},
		{
			name: "cni conf dir empty",
			setup: func(t *testing.T, n *node) {
				os.Remove(filepath.Join(n.cfg.Network.CNIConfigDir, DefaultConflistName))
				writeFile(t, filepath.Join(n.cfg.Network.CNIConfigDir, "README"), "not a config", 0o644)
			},
			want: []want{
				{"cni network", Fail, []string{"no CNI network config (*.conflist, *.conf, *.json) in", "cni/net.d", "`make install` lays down a default bridge conflist", "network provider"}},
				{"cni plugins", OK, []string{"default bridge network"}},
			},
		},
		{
			name: "cni conf dir missing",
			setup: func(t *testing.T, n *node) {
				os.RemoveAll(n.cfg.Network.CNIConfigDir)
			},
			want: []want{{"cni network", Fail, []string{"does not exist", "make install"}}},
		},
		{
			name: "broken conflist",
			setup: func(t *testing.T, n *node) {
				writeFile(t, filepath.Join(n.cfg.Network.CNIConfigDir, DefaultConflistName), `{"cniVersion": "1.0.0", "name": "berth", "plugins": [`, 0o644)
			},
			want: []want{{"cni network", Fail, []string{"no usable CNI network config", DefaultConflistName, "correct the file"}}},
		},
		{
			name: "broken conflist before a valid one",
			setup: func(t *testing.T, n *node) {
				writeFile(t, filepath.Join(n.cfg.Network.CNIConfigDir, "05-broken.conf"), `{"cniVersion": "1.0.0"`, 0o644)
			},
			want: []want{
				{"cni network", OK, []string{DefaultConflistName}},
				{"cni network", Warn, []string{"05-broken.conf is skipped", "correct or remove"}},
				{"cni plugins", OK, nil},
			},
		},
		{
			name: "cni plugins missing",
			setup: func(t *testing.T, n *node) {
				for _, p := range []string{"bridge", "host-local", "portmap"} {
					os.Remove(filepath.Join(n.dir, "usr/lib/cni", p))
				}
			},
			want: []want{
				{"cni network", Fail, []string{"plugins bridge, portmap not found", "apt-get install containernetworking-plugins"}},
				{"cni plugins", Fail, []string{`network "berth" needs bridge, host-local, portmap`, "network.cni_plugin_dirs"}},
			},
		},
		{
			name: "ipam plugin missing",
			setup: func(t *testing.T, n *node) {
				os.Remove(filepath.Join(n.dir, "usr/lib/cni/host-local"))
			},
			want: []want{
				{"cni network", OK, nil},
				{"cni plugins", Fail, []string{"needs host-local, not found"}},
			},
		},
		{
			name: "cni plugins missing and no config",
			setup: func(t *testing.T, n *node) {
				os.RemoveAll(filepath.Join(n.dir, "usr/lib/cni"))
				os.RemoveAll(n.cfg.Network.CNIConfigDir)
			},
			want: []want{{"cni plugins", Fail, []string{"default bridge network needs bridge, host-local, portmap"}}},
		},
		{
			name: "cni plugin too old for the config version",
			setup: func(t *testing.T, n *node) {
				writeFile(t, filepath.Join(n.dir, "usr/lib/cni/portmap"), "#!/bin/sh\necho '{\"cniVersion\":\"0.4.0\",\"supportedVersions\":[\"0.3.1\",\"0.4.0\"]}'\n", 0o755)
			},
			want: []want{{"cni network", Fail, []string{`plugin portmap does not support config version "1.0.0"`, "speak cniVersion 1.0.0"}}},
		},
		{
			name: "iptables missing",
			setup: func(t *testing.T, n *node) {
				os.Remove(filepath.Join(n.dir, "path/iptables"))
			},
			want: []want{{"cni iptables", Fail, []string{"bridge, portmap need the iptables command", "apt-get install iptables"}}},
		},
		{
			name: "iptables missing, no config yet",
			setup: func(t *testing.T, n *node) {
				os.Remove(filepath.Join(n.dir, "path/iptables"))
				os.RemoveAll(n.cfg.Network.CNIConfigDir)
			},
			want: []want{{"cni iptables", Fail, []string{"need the iptables command"}}},
		},
		{
			name: "iptables not needed",
			setup: func(t *testing.T, n *node) {
				os.Remove(filepath.Join(n.dir, "path/iptables"))
				writeFile(t, filepath.Join(n.cfg.Network.CNIConfigDir, DefaultConflistName),
					`{"cniVersion":"1.0.0","name":"plain","plugins":[{"type":"bridge","ipam":{"type":"host-local"}},{"type":"loopback"}]}`, 0o644)
			},
			want:   []want{{"cni network", OK, []string{`"plain"`}}},
			absent: []string{"cni iptables"},
		},
		{
			name: "systemd driver without systemd",
			setup: func(t *testing.T, n *node) {
				n.cfg.Runtime.CgroupManager = "systemd"
			},
			want: []want{{"cgroup driver", Fail, []string{"systemd is not the init system", `runtime.cgroup_manager = "cgroupfs"`}}},
		},
		{
			name: "systemd driver with systemd",
			setup: func(t *testing.T, n *node) {
				n.cfg.Runtime.CgroupManager = "systemd"
				os.MkdirAll(n.host.SystemdRunDir, 0o755)
			},
			want: []want{{"cgroup driver", OK, []string{"cgroupDriver: systemd"}}},
		},
		{
			name: "cgroupfs driver with systemd",
			setup: func(t *testing.T, n *node) {
				os.MkdirAll(n.host.SystemdRunDir, 0o755)
			},
			want: []want{{"cgroup driver", Warn, []string{"two managers", `runtime.cgroup_manager = "systemd"`}}},
		},
		{
			name: "hybrid cgroups with hugetlb on cgroup2, crun default",
			setup: func(t *testing.T, n *node) {
				delete(n.fsTypes, filepath.Join(n.host.CgroupRoot, "hugetlb"))
				writeFile(t, filepath.Join(n.host.CgroupRoot, "unified/cgroup.controllers"), "hugetlb\n", 0o444)
			},
			want: []want{
				{"cgroups", OK, nil},
				{"cgroups for crun", Fail, []string{"hugetlb on cgroup2, not v1", "crun (handler crun) refuses",
					"sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup ", "sys/fs/cgroup/hugetlb`", `runtime.default_handler = "runc"`}},
			},
		},
		{
			name: "hybrid cgroups with hugetlb on cgroup2, runc default",
			setup: func(t *testing.T, n *node) {
				n.cfg.Runtime.DefaultHandler = "runc"
				writeFile(t, filepath.Join(n.host.CgroupRoot, "unified/cgroup.controllers"), "hugetlb\n", 0o444)
			},
			want: []want{{"cgroups for crun", Warn, []string{"refuses"}}},
		},
		{
			name: "hybrid cgroups with hugetlb on cgroup2, no crun",
			setup: func(t *testing.T, n *node) {
				n.cfg.Runtime.DefaultHandler = "runc"
				delete(n.cfg.Runtime.Handlers, "crun")
				writeFile(t, filepath.Join(n.host.CgroupRoot, "unified/cgroup.controllers"), "hugetlb\n", 0o444)
			},
			want: []want{{"cgroups for crun", OK, []string{"no crun handler"}}},
		},
		{
			name: "cgroup v1 without pids",
			setup: func(t *testing.T, n *node) {
				delete(n.fsTypes, filepath.Join(n.host.CgroupRoot, "unified"))
				delete(n.fsTypes, filepath.Join(n.host.CgroupRoot, "pids"))
			},
			want: []want{{"cgroups", Warn, []string{"cgroup v1 without the pids controllers", "mount -t cgroup -o pids"}}},
		},
		{
			name: "cgroup v2",
			setup: func(t *testing.T, n *node) {
				n.fsTypes[n.host.CgroupRoot] = unix.CGROUP2_SUPER_MAGIC
				writeFile(t, filepath.Join(n.host.CgroupRoot, "cgroup.controllers"), "cpuset cpu io memory hugetlb pids rdma misc\n", 0o444)
			},
			want: []want{{"cgroups", OK, []string{"cgroup v2 (unified)"}}},
		},
		{
			name: "cgroup v2 without memory",
			setup: func(t *testing.T, n *node) {
				n.fsTypes[n.host.CgroupRoot] = unix.CGROUP2_SUPER_MAGIC
				writeFile(t, filepath.Join(n.host.CgroupRoot, "cgroup.controllers"), "cpuset cpu io pids\n", 0o444)
			},
			want: []want{{"cgroups", Warn, []string{"without controllers memory"}}},
		},
		{
			name: "overlay mount fails, driver picked automatically",
			setup: func(t *testing.T, n *node) {
				n.host.MountOverlay = func(string) error { return unix.EINVAL }
			},
			want: []want{{"overlay", Warn, []string{"overlay mount in", "invalid argument", "falls back to vfs", `storage.driver = "vfs"`}}},
		},
		{
			name: "overlay unknown to the kernel, driver overlay",
			setup: func(t *testing.T, n *node) {
				n.cfg.Storage.Driver = "overlay"
				writeFile(t, n.host.ProcFilesystems, "nodev\ttmpfs\n\text4\n", 0o444)
				n.host.MountOverlay = func(string) error { return unix.ENODEV }
			},
			want: []want{{"overlay", Fail, []string{"modprobe overlay"}}},
		},
		{
			name: "overlay not needed with vfs",
			setup: func(t *testing.T, n *node) {
				n.cfg.Storage.Driver = "vfs"
				n.host.MountOverlay = func(string) error { return errors.New("must not be called") }
			},
			want: []want{{"overlay", OK, []string{"storage.driver is vfs"}}},
		},
		{
			name: "storage root is a file",
			setup: func(t *testing.T, n *node) {
				writeFile(t, n.cfg.Storage.Root, "", 0o644)
			},
			want: []want{{"storage root", Fail, []string{"is not a directory", "storage.root"}}},
		},
		{
			name: "state dir exists",
			setup: func(t *testing.T, n *node) {
				os.MkdirAll(n.cfg.Runtime.StateDir, 0o700)
			},
			want: []want{{"state dir", OK, []string{"exists and is writable"}}},
		},
		{
			name: "no signature policy, no registries.conf",
			setup: func(t *testing.T, n *node) {
				os.Remove(n.cfg.Image.SignaturePolicy)
				os.Remove(n.cfg.Image.RegistriesConf)
			},
			want: []want{
				{"signature policy", Fail, []string{"every image pull fails", "make install", "image.signature_policy"}},
				{"registries.conf", Warn, []string{"short names", "image.registries_conf"}},
			},
		},
		{
			name: "broken signature policy",
			setup: func(t *testing.T, n *node) {
				writeFile(t, n.cfg.Image.SignaturePolicy, `{"default": [`, 0o644)
			},
			want: []want{{"signature policy", Fail, []string{"correct ", "policy.json (containers-policy.json(5))"}}},
		},
		{
			name: "kernel without seccomp filter",
			setup: func(t *testing.T, n *node) {
				os.Remove(n.host.SeccompActions)
			},
			want: []want{{"kernel seccomp", Fail, []string{"without filter mode", "CONFIG_SECCOMP_FILTER=y"}}},
		},
		{
			name: "kernel without seccomp",
			setup: func(t *testing.T, n *node) {
				writeFile(t, n.host.ProcSelfStatus, "Name:\tberth\n", 0o444)
			},
			want: []want{{"kernel seccomp", Fail, []string{"no seccomp support", "CONFIG_SECCOMP=y"}}},
		},
		{
			name: "seccomp profile not JSON",
			setup: func(t *testing.T, n *node) {
				n.cfg.Runtime.SeccompProfile = writeFile(t, filepath.Join(n.dir, "seccomp.json"), "{", 0o644)
			},
			want: []want{{"kernel seccomp", Fail, []string{"not valid JSON", "runtime.seccomp_profile"}}},
		},
		{
			name: "user namespaces disabled",
			setup: func(t *testing.T, n *node) {
				writeFile(t, n.host.MaxUserNamespaces, "0\n", 0o444)
			},
			want: []want{{"kernel user namespaces", Warn, []string{"disabled", "sysctl -w user.max_user_namespaces"}}},
		},
		{
			name: "network namespaces fail",
			setup: func(t *testing.T, n *node) {
				n.host.UnshareNet = func() error { return unix.EPERM }
			},
			want: []want{{"kernel network namespaces", Fail, []string{"cannot create one", "operation not permitted", "CONFIG_NET_NS"}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t)
			if tc.setup != nil {
				tc.setup(t, n)
			}
			rs := Run(context.Background(), n.cfg, n.host)
			for _, r := range rs {
				t.Log(r)
			}
			for _, w := range tc.want {
				if !matchAny(rs, w) {
					t.Errorf("no %s %q result with %q", w.status, w.name, w.has)
				}
			}
			for _, r := range rs {
				if slices.Contains(tc.absent, r.Name) {
					t.Errorf("unexpected %s", r)
				}
			}
			// Only the cases that break something may fail.
			if tc.name == "ready node" {
				for _, r := range rs {
					if r.Status != OK {
						t.Errorf("ready node: %s", r)
					}
				}
			}
			for _, r := range rs {
				if r.Status != OK && r.Fix == "" {
					t.Errorf("%s without a fix", r)
				}
			}
		})
	}
}

func matchAny(rs []Result, w want) bool {
	for _, r := range rs {
		if r.Name != w.name || r.Status != w.status {
			continue
		}
		text := r.Detail + "; fix: " + r.Fix
		all := true
		for _, h := range w.has {
			all = all && strings.Contains(text, h)
		}
		if all {
			return true
		}
	}
	return false
}

func TestResultString(t *testing.T) {
	for _, tc := range []struct {
		r    Result
		want string
	}{
		{ok("conmon", "/usr/bin/conmon: conmon version 2.1.6"), "OK   conmon: /usr/bin/conmon: conmon version 2.1.6"},
		{warn("registries.conf", "add it", "no search"), "WARN registries.conf: no search; fix: add it"},
		{fail("cni network", "`make install`", "no config"), "FAIL cni network: no config; fix: `make install`"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestPrint(t *testing.T) {
	var b strings.Builder
	if !Print(&b, []Result{ok("a", "x"), warn("b", "f", "y")}) {
		t.Error("warnings made the node not ready")
	}
	if Print(&b, []Result{ok("a", "x"), fail("c", "f", "z")}) {
		t.Error("a failure left the node ready")
	}
	if lines := strings.Count(b.String(), "\n"); lines != 4 {
		t.Errorf("printed %d lines, want 4:\n%s", lines, b.String())
	}
}
