package nri

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/containerd/nri/pkg/api"
	nrigen "github.com/containerd/nri/pkg/runtime-tools/generate"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/errdefs"
)

func ptr[T any](v T) *T { return &v }

// baseSpec is shaped like what Berth's specgen hands over for a Burstable
// pod's container, so adjustments meet the fields they would meet on a node.
func baseSpec() *specs.Spec {
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Args: []string{"/bin/sh", "-c", "sleep 3600"},
			Env: []string{
				"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				"HOSTNAME=web-0",
				"TERM=xterm",
				"KUBERNETES_SERVICE_HOST=10.96.0.1",
			},
			Cwd: "/",
			Rlimits: []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Hard: 1048576, Soft: 1048576},
			},
			OOMScoreAdj: ptr(1000),
		},
		Root:     &specs.Root{Path: "/var/lib/berth/containers/c0ffee/rootfs"},
		Hostname: "web-0",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "bind", Source: "/run/berth/sandboxes/abc/shm", Options: []string{"rbind", "ro"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
			{Destination: "/etc/hosts", Type: "bind", Source: "/var/lib/kubelet/pods/uid/etc-hosts", Options: []string{"rbind", "rprivate"}},
			{Destination: "/etc/hostname", Type: "bind", Source: "/run/berth/sandboxes/abc/hostname", Options: []string{"rbind", "rprivate", "ro"}},
			{Destination: "/etc/resolv.conf", Type: "bind", Source: "/run/berth/sandboxes/abc/resolv.conf", Options: []string{"rbind", "rprivate", "ro"}},
			{Destination: "/dev/termination-log", Type: "bind", Source: "/var/lib/kubelet/pods/uid/containers/web/0", Options: []string{"rbind", "rprivate"}},
		},
		Annotations: map[string]string{
			"io.kubernetes.cri.container-type": "container",
			"example.com/remove-me":            "please",
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace},
				{Type: specs.IPCNamespace, Path: "/proc/4242/ns/ipc"},
				{Type: specs.UTSNamespace, Path: "/proc/4242/ns/uts"},
				{Type: specs.MountNamespace},
				{Type: specs.NetworkNamespace, Path: "/var/run/netns/cni-1234"},
			},
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
				Memory:  &specs.LinuxMemory{Limit: ptr[int64](256 << 20)},
				CPU: &specs.LinuxCPU{
					Shares: ptr[uint64](512),
					Quota:  ptr[int64](50000),
					Period: ptr[uint64](100000),
				},
			},
			CgroupsPath: "kubepods-burstable-pod1234.slice:berth:c0ffee",
			Sysctl:      map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"},
			MaskedPaths: []string{"/proc/kcore", "/proc/keys"},
		},
	}
}

// reorderMounts lists mounts in the order nri's generator sorts them into
// (by depth, then destination), taking each from ms or extra.
func reorderMounts(t *testing.T, ms, extra []specs.Mount, dests ...string) []specs.Mount {
	t.Helper()
	out := make([]specs.Mount, 0, len(dests))
	for _, d := range dests {
		found := false
		for _, m := range append(append([]specs.Mount{}, extra...), ms...) {
			if m.Destination == d {
				out = append(out, m)
				found = true
				break
			}
		}
		if !found {
			t.Fatalf("test bug: no mount at %s", d)
		}
	}
	return out
}

func sortedBaseMountOrder() []string {
	return []string{
		"/dev", "/proc", "/sys",
		"/dev/mqueue", "/dev/pts", "/dev/shm", "/dev/termination-log",
		"/etc/hostname", "/etc/hosts", "/etc/resolv.conf",
		"/sys/fs/cgroup",
	}
}

func specJSON(s *specs.Spec) string {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func TestAdjust(t *testing.T) {
	fuse := &api.LinuxDevice{
		Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229,
		FileMode: api.FileMode(os.FileMode(0o666)), Uid: api.UInt32(uint32(0)), Gid: api.UInt32(uint32(0)),
	}
	nvme := &api.LinuxDevice{Path: "/dev/nvme0n1", Type: "b", Major: 259, Minor: 0}

	tests := []struct {
		name    string
		opts    AdjustOptions
		prepare func(*specs.Spec)
		adj     func() *api.ContainerAdjustment
		want    func(t *testing.T, s *specs.Spec)
		wantErr []string
		errIs   error
	}{
		{
			name: "nil adjustment changes nothing",
			adj:  func() *api.ContainerAdjustment { return nil },
		},
		{
			name: "empty adjustment changes nothing",
			adj: func() *api.ContainerAdjustment {
				return &api.ContainerAdjustment{Linux: &api.LinuxContainerAdjustment{}}
			},
		},
		{
			name: "annotations are added and removed by the - marker",
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.AddAnnotation("example.com/added", "yes")
				a.AddAnnotation("io.kubernetes.cri.container-type", "still-container")
				a.RemoveAnnotation("example.com/remove-me")
				a.RemoveAnnotation("example.com/never-there")
				return a
			},
			want: func(_ *testing.T, s *specs.Spec) {
				s.Annotations = map[string]string{
					"io.kubernetes.cri.container-type": "still-container",
					"example.com/added":                "yes",
				}
			},
		},
		{
			name: "env is replaced in place, removed, and appended",
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.AddEnv("TERM", "dumb")
				a.RemoveEnv("HOSTNAME")
				a.AddEnv("NRI_INJECTED", "1")
				a.RemoveEnv("NEVER_SET")
				return a
			},
			want: func(_ *testing.T, s *specs.Spec) {
				s.Process.Env = []string{
					"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
					"TERM=dumb",
					"KUBERNETES_SERVICE_HOST=10.96.0.1",
					"NRI_INJECTED=1",
				}
			},
		},
		{
			name:    "an env adjustment drops existing entries that have no =",
			prepare: func(s *specs.Spec) { s.Process.Env = append(s.Process.Env, "MALFORMED") },
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.AddEnv("NRI_INJECTED", "1")
				return a
			},
			want: func(_ *testing.T, s *specs.Spec) {
				s.Process.Env = append(s.Process.Env[:len(s.Process.Env)-1], "NRI_INJECTED=1")
			},
		},
		{
			name: "args replace the command",
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.SetArgs([]string{"/app", "--serve"})
				return a
			},
			want: func(_ *testing.T, s *specs.Spec) { s.Process.Args = []string{"/app", "--serve"} },
		},
		{
			name: "hooks of every kind are added",
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.AddHooks(&api.Hooks{
					Prestart:        []*api.Hook{{Path: "/usr/bin/pre", Args: []string{"pre", "start"}, Env: []string{"A=1"}, Timeout: api.Int(5)}},
					CreateRuntime:   []*api.Hook{{Path: "/usr/bin/cr"}},
					CreateContainer: []*api.Hook{{Path: "/usr/bin/cc"}},
					StartContainer:  []*api.Hook{{Path: "/usr/bin/sc"}},
					Poststart:       []*api.Hook{{Path: "/usr/bin/post"}},
					Poststop:        []*api.Hook{{Path: "/usr/bin/stop", Args: []string{"stop"}}},
				})
				return a
			},
			want: func(_ *testing.T, s *specs.Spec) {
				s.Hooks = &specs.Hooks{
					Prestart:        []specs.Hook{{Path: "/usr/bin/pre", Args: []string{"pre", "start"}, Env: []string{"A=1"}, Timeout: ptr(5)}},
					CreateRuntime:   []specs.Hook{{Path: "/usr/bin/cr"}},
					CreateContainer: []specs.Hook{{Path: "/usr/bin/cc"}},
					StartContainer:  []specs.Hook{{Path: "/usr/bin/sc"}},
					Poststart:       []specs.Hook{{Path: "/usr/bin/post"}},
					Poststop:        []specs.Hook{{Path: "/usr/bin/stop", Args: []string{"stop"}}},
				}
			},
		},
		{
			name: "hooks are appended after the spec's own",
			prepare: func(s *specs.Spec) {
				s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/usr/libexec/oci/hooks.d/first"}}}
			},
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.AddHooks(&api.Hooks{CreateRuntime: []*api.Hook{{Path: "/usr/bin/second"}}})
				return a
			},
			want: func(_ *testing.T, s *specs.Spec) {
				s.Hooks.CreateRuntime = append(s.Hooks.CreateRuntime, specs.Hook{Path: "/usr/bin/second"})
			},
		},
		{
			name: "mounts are added, replaced and removed by destination, then sorted",
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.AddMount(&api.Mount{Destination: "/data", Type: "bind", Source: "/var/lib/data", Options: []string{"rbind", "rprivate", "rw"}})
				a.AddMount(&api.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"size=1g"}})
				a.RemoveMount("/etc/hosts")
				a.RemoveMount("/no/such/place")
				return a
			},
			want: func(t *testing.T, s *specs.Spec) {
				extra := []specs.Mount{
					{Destination: "/data", Type: "bind", Source: "/var/lib/data", Options: []string{"rbind", "rprivate", "rw"}},
					{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"size=1g"}},
				}
				s.Mounts = reorderMounts(t, s.Mounts, extra,
					"/data", "/dev", "/proc", "/sys",
					"/dev/mqueue", "/dev/pts", "/dev/shm", "/dev/termination-log",
					"/etc/hostname", "/etc/resolv.conf",
					"/sys/fs/cgroup")
			},
		},
		{
			name: "removing an unknown mount only sorts the mounts",
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.RemoveMount("/no/such/place")
				return a
			},
			want: func(t *testing.T, s *specs.Spec) {
				s.Mounts = reorderMounts(t, s.Mounts, nil, sortedBaseMountOrder()...)
			},
		},
		{
			name: "a character device gets its node and an rw cgroup rule",
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.AddDevice(fuse)
				return a
			},
			want: func(_ *testing.T, s *specs.Spec) {
				s.Linux.Devices = []specs.LinuxDevice{{
					Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229,
					FileMode: ptr(os.FileMode(0o666)), UID: ptr[uint32](0), GID: ptr[uint32](0),
				}}
				s.Linux.Resources.Devices = append(s.Linux.Resources.Devices,
					specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptr[int64](10), Minor: ptr[int64](229), Access: "rw"})
			},
		},
		{
			name: "a block device's cgroup rule also allows mknod",
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.AddDevice(nvme)
				return a
			},
			want: func(_ *testing.T, s *specs.Spec) {
				s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/nvme0n1", Type: "b", Major: 259, Minor: 0}}
				s.Linux.Resources.Devices = append(s.Linux.Resources.Devices,
					specs.LinuxDeviceCgroup{Allow: true, Type: "b", Major: ptr[int64](259), Minor: ptr[int64](0), Access: "rwm"})
			},
		},
		{
			name: "a device at a known path replaces it; a removed one goes",
			prepare: func(s *specs.Spec) {
				s.Linux.Devices = []specs.LinuxDevice{
					{Path: "/dev/fuse", Type: "c", Major: 1, Minor: 1},
					{Path: "/dev/kvm", Type: "c", Major: 10, Minor: 232},
				}
			},
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.AddDevice(&api.LinuxDevice{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229})
				a.RemoveDevice("/dev/kvm")
				a.RemoveDevice("/dev/never-there")
				return a
			},
			want: func(_ *testing.T, s *specs.Spec) {
				s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}}
				s.Linux.Resources.Devices = append(s.Linux.Resources.Devices,
					specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptr[int64](10), Minor: ptr[int64](229), Access: "rw"})
			},
		},
		{
			name: "rlimits replace the spec's of the same type in place and add new types",
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.AddRlimit("RLIMIT_MEMLOCK", 65536, 65536)
				a.AddRlimit("RLIMIT_NOFILE", 4096, 1024)
				return a
			},
			want: func(_ *testing.T, s *specs.Spec) {
				s.Process.Rlimits = []specs.POSIXRlimit{
					{Type: "RLIMIT_NOFILE", Hard: 4096, Soft: 1024},
					{Type: "RLIMIT_MEMLOCK", Hard: 65536, Soft: 65536},
				}
			},
		},
		{
			name: "cpu shares, quota, period, realtime and cpuset land",
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.SetLinuxCPUShares(2048)
				a.SetLinuxCPUQuota(200000)
				a.SetLinuxCPUPeriod(50000)
				a.SetLinuxCPURealtimeRuntime(950000)
				a.SetLinuxCPURealtimePeriod(1000000)
				a.SetLinuxCPUSetCPUs("2-3")
				a.SetLinuxCPUSetMems("0")
				return a
			},
			want: func(_ *testing.T, s *specs.Spec) {
				s.Linux.Resources.CPU = &specs.LinuxCPU{
					Shares:          ptr[uint64](2048),
					Quota:           ptr[int64](200000),
					Period:          ptr[uint64](50000),
					RealtimeRuntime: ptr[int64](950000),
					RealtimePeriod:  ptr[uint64](1000000),
					Cpus:            "2-3",
					Mems:            "0",
				}
			},
		},
		{
			name: "a memory limit also sets swap to the same value",
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.SetLinuxMemoryLimit(512 << 20)
				return a
			},
			want: func(_ *testing.T, s *specs.Spec) {
				s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr[int64](512 << 20), Swap: ptr[int64](512 << 20)}
			},
		},
		{
			name: "nri applies no memory field but the limit",
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.SetLinuxMemorySwap(1 << 30)
				a.SetLinuxMemoryReservation(128 << 20)
				return a
			},
		},
		{
			name: "hugepage limits are dropped without the hugetlb controller",
			opts: AdjustOptions{Hugetlb: false},
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.AddLinuxHugepageLimit("2MB", 1<<30)
				return a
			},
		},
		{
			name: "without the hugetlb controller the spec's own hugepage limits go too",
			opts: AdjustOptions{Hugetlb: false},
			prepare: func(s *specs.Spec) {
				s.Linux.Resources.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "1GB", Limit: 1 << 30}}
			},
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.SetLinuxCPUShares(512)
				return a
			},
			want: func(_ *testing.T, s *specs.Spec) { s.Linux.Resources.HugepageLimits = nil },
		},
		{
			name: "hugepage limits are kept with the hugetlb controller",
			opts: AdjustOptions{Hugetlb: true},
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.AddLinuxHugepageLimit("2MB", 1<<30)
				return a
			},
			want: func(_ *testing.T, s *specs.Spec) {
				s.Linux.Resources.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1 << 30}}
			},
		},
		{
			name: "a hugepage limit replaces the spec's of the same page size",
			opts: AdjustOptions{Hugetlb: true},
			prepare: func(s *specs.Spec) {
				s.Linux.Resources.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1 << 20}}
			},
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.AddLinuxHugepageLimit("2MB", 1<<30)
				a.AddLinuxHugepageLimit("1GB", 2<<30)
				return a
			},
			want: func(_ *testing.T, s *specs.Spec) {
				s.Linux.Resources.HugepageLimits = []specs.LinuxHugepageLimit{
					{Pagesize: "2MB", Limit: 1 << 30},
					{Pagesize: "1GB", Limit: 2 << 30},
				}
			},
		},
		{
			name: "unified cgroup v2 settings land",
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.AddLinuxUnified("memory.high", "1073741824")
				return a
			},
			want: func(_ *testing.T, s *specs.Spec) {
				s.Linux.Resources.Unified = map[string]string{"memory.high": "1073741824"}
			},
		},
		{
			name: "a pids limit lands",
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.SetLinuxPidLimits(1024)
				return a
			},
			want: func(_ *testing.T, s *specs.Spec) { s.Linux.Resources.Pids = &specs.LinuxPids{Limit: ptr[int64](1024)} },
		},
		{
			name: "the cgroups path is replaced",
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.SetLinuxCgroupsPath("nri-pinned.slice:berth:c0ffee")
				return a
			},
			want: func(_ *testing.T, s *specs.Spec) { s.Linux.CgroupsPath = "nri-pinned.slice:berth:c0ffee" },
		},
		{
			name: "the oom score adj is replaced",
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.SetLinuxOomScoreAdj(ptr(-500))
				return a
			},
			want: func(_ *testing.T, s *specs.Spec) { s.Process.OOMScoreAdj = ptr(-500) },
		},
		{
			name: "sysctls are set and removed by the - marker",
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.SetLinuxSysctl("net.core.somaxconn", "1024")
				a.SetLinuxSysctl(api.MarkForRemoval("net.ipv4.ip_unprivileged_port_start"), "")
				return a
			},
			want: func(_ *testing.T, s *specs.Spec) { s.Linux.Sysctl = map[string]string{"net.core.somaxconn": "1024"} },
		},
		{
			name: "namespaces are added, replaced in place and removed",
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.AddOrReplaceNamespace(&api.LinuxNamespace{Type: "network", Path: "/var/run/netns/nri-other"})
				a.AddOrReplaceNamespace(&api.LinuxNamespace{Type: "cgroup"})
				a.RemoveNamespace(&api.LinuxNamespace{Type: "ipc"})
				a.RemoveNamespace(&api.LinuxNamespace{Type: "time"})
				return a
			},
			want: func(_ *testing.T, s *specs.Spec) {
				s.Linux.Namespaces = []specs.LinuxNamespace{
					{Type: specs.PIDNamespace},
					{Type: specs.UTSNamespace, Path: "/proc/4242/ns/uts"},
					{Type: specs.MountNamespace},
					{Type: specs.NetworkNamespace, Path: "/var/run/netns/nri-other"},
					{Type: specs.CgroupNamespace},
				}
			},
		},
		{
			name: "an unknown namespace type fails and is named",
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.AddOrReplaceNamespace(&api.LinuxNamespace{Type: "net", Path: "/var/run/netns/x"})
				return a
			},
			wantErr: []string{"apply NRI adjustment", `"net"`},
			errIs:   errdefs.ErrInvalidArgument,
		},
		{
			name: "removing an unknown namespace type fails and is named",
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.RemoveNamespace(&api.LinuxNamespace{Type: "bogus"})
				return a
			},
			wantErr: []string{`"bogus"`},
			errIs:   errdefs.ErrInvalidArgument,
		},
		{
			name: "a blockio class fails: none are configured",
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.SetLinuxBlockIOClass("high-prio")
				return a
			},
			wantErr: []string{`"high-prio"`, "blockio classes are not configured on this node"},
			errIs:   errdefs.ErrFailedPrecondition,
		},
		{
			name:    "an empty blockio class clears the spec's block I/O",
			prepare: func(s *specs.Spec) { s.Linux.Resources.BlockIO = &specs.LinuxBlockIO{Weight: ptr[uint16](500)} },
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.SetLinuxBlockIOClass("")
				return a
			},
			want: func(_ *testing.T, s *specs.Spec) { s.Linux.Resources.BlockIO = nil },
		},
		{
			name: "an rdt class becomes the CLOS id",
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.SetLinuxRDTClass("gold")
				return a
			},
			want: func(_ *testing.T, s *specs.Spec) { s.Linux.IntelRdt = &specs.LinuxIntelRdt{ClosID: "gold"} },
		},
		{
			name: "CDI devices fail and are named",
			adj: func() *api.ContainerAdjustment {
				a := &api.ContainerAdjustment{}
				a.AddCDIDevice(&api.CDIDevice{Name: "vendor.com/gpu=0"})
				a.AddCDIDevice(&api.CDIDevice{Name: "vendor.com/gpu=1"})
				return a
			},
			wantErr: []string{"CDI devices [vendor.com/gpu=0 vendor.com/gpu=1] requested by an NRI plugin: CDI is not enabled"},
			errIs:   errdefs.ErrNotImplemented,
		},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec, want := baseSpec(), baseSpec()
			if tc.prepare != nil {
				tc.prepare(spec)
				tc.prepare(want)
			}
			callers := spec
			process, linux, resources := spec.Process, spec.Linux, spec.Linux.Resources

			err := Adjust(spec, tc.adj(), tc.opts)

			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("Adjust: no error, want one containing %q", tc.wantErr)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("Adjust error %q does not contain %q", err, w)
					}
				}
				if tc.errIs != nil && !errors.Is(err, tc.errIs) {
					t.Errorf("Adjust error %q is not %v", err, tc.errIs)
				}
				return
			}
			if err != nil {
				t.Fatalf("Adjust: %v", err)
			}
			// Berth writes config.json from the spec it passed in, so the
			// adjustment must land in those very objects, not in copies.
			if spec != callers || spec.Process != process || spec.Linux != linux || spec.Linux.Resources != resources {
				t.Fatal("Adjust replaced the caller's spec objects instead of mutating them")
			}
			if tc.want != nil {
				tc.want(t, want)
			}
			if !reflect.DeepEqual(spec, want) {
				t.Errorf("adjusted spec:\n%s\nwant:\n%s", specJSON(spec), specJSON(want))
			}
		})
	}
}

// The generator writes some fields through without creating their parents;
// each case adjusts one such field alone, so no other adjustment creates the
// parent first.
func TestAdjustSparseSpec(t *testing.T) {
	tests := []struct {
		name  string
		adj   func(a *api.ContainerAdjustment)
		check func(s *specs.Spec) bool
	}{
		{
			"rlimits without a process",
			func(a *api.ContainerAdjustment) { a.AddRlimit("RLIMIT_NOFILE", 1024, 1024) },
			func(s *specs.Spec) bool {
				return reflect.DeepEqual(s.Process.Rlimits, []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}})
			},
		},
		{
			"seccomp without linux",
			func(a *api.ContainerAdjustment) {
				a.SetLinuxSeccompPolicy(&api.LinuxSeccomp{DefaultAction: "SCMP_ACT_ERRNO"})
			},
			func(s *specs.Spec) bool { return s.Linux.Seccomp.DefaultAction == "SCMP_ACT_ERRNO" },
		},
		{
			"env without a process",
			func(a *api.ContainerAdjustment) { a.AddEnv("A", "1") },
			func(s *specs.Spec) bool { return reflect.DeepEqual(s.Process.Env, []string{"A=1"}) },
		},
		{
			"cpu without resources",
			func(a *api.ContainerAdjustment) { a.SetLinuxCPUShares(2) },
			func(s *specs.Spec) bool { return *s.Linux.Resources.CPU.Shares == 2 },
		},
		{
			"memory without resources",
			func(a *api.ContainerAdjustment) { a.SetLinuxMemoryLimit(1 << 30) },
			func(s *specs.Spec) bool { return *s.Linux.Resources.Memory.Limit == 1<<30 },
		},
		{
			"a mount without mounts",
			func(a *api.ContainerAdjustment) {
				a.AddMount(&api.Mount{Destination: "/m", Type: "tmpfs", Source: "tmpfs"})
			},
			func(s *specs.Spec) bool { return len(s.Mounts) == 1 && s.Mounts[0].Destination == "/m" },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			adj := &api.ContainerAdjustment{}
			tc.adj(adj)
			spec := &specs.Spec{}
			if err := Adjust(spec, adj, AdjustOptions{}); err != nil {
				t.Fatalf("Adjust on an empty spec: %v", err)
			}
			if !tc.check(spec) {
				t.Errorf("adjusted spec: %s", specJSON(spec))
			}
		})
	}
}

func TestAdjustNilSpec(t *testing.T) {
	if err := Adjust(nil, nil, AdjustOptions{}); err != nil {
		t.Errorf("Adjust(nil, nil): %v", err)
	}
	adj := &api.ContainerAdjustment{}
	adj.SetArgs([]string{"/x"})
	err := Adjust(nil, adj, AdjustOptions{})
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Adjust(nil spec) = %v, want ErrInvalidArgument", err)
	}
}

func TestSpecAdapterSpecIdentity(t *testing.T) {
	s := baseSpec()
	a := newSpecAdapter(s)
	g := nrigen.SpecGenerator(a)
	if a.Spec() != s || g.Config != s {
		t.Fatal("adapter or generator does not hold the caller's spec")
	}
	a.AddAnnotation("k", "v")
	a.SetLinuxResourcesCPUShares(7)
	a.AddMount(specs.Mount{Destination: "/x"})
	if a.Spec() != s || s.Annotations["k"] != "v" || *s.Linux.Resources.CPU.Shares != 7 {
		t.Fatal("adapter mutations did not land in the spec Spec() returns")
	}

	// A nil spec must be allocated before the generator reads Spec(), or the
	// generator and the adapter would write to different specs.
	empty := newSpecAdapter(nil)
	first := empty.Spec()
	if first == nil {
		t.Fatal("newSpecAdapter(nil).Spec() is nil")
	}
	eg := nrigen.SpecGenerator(empty)
	empty.SetProcessArgs([]string{"/bin/true"})
	if empty.Spec() != first || eg.Config != first {
		t.Fatal("Spec() changed identity after a mutation")
	}
}

func TestSpecAdapterDevices(t *testing.T) {
	kvm := specs.LinuxDevice{Path: "/dev/kvm", Type: "c", Major: 10, Minor: 232}
	fuse := specs.LinuxDevice{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}
	fuse2 := specs.LinuxDevice{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 230, FileMode: ptr(os.FileMode(0o600))}

	tests := []struct {
		name  string
		start []specs.LinuxDevice
		op    func(a *specAdapter)
		want  []specs.LinuxDevice
	}{
		{"add appends a new path", []specs.LinuxDevice{kvm}, func(a *specAdapter) { a.AddDevice(fuse) }, []specs.LinuxDevice{kvm, fuse}},
		{"add replaces the same path in place", []specs.LinuxDevice{fuse, kvm}, func(a *specAdapter) { a.AddDevice(fuse2) }, []specs.LinuxDevice{fuse2, kvm}},
		{"remove drops the path", []specs.LinuxDevice{kvm, fuse}, func(a *specAdapter) { a.RemoveDevice("/dev/kvm") }, []specs.LinuxDevice{fuse}},
		{"remove of an unknown path is harmless", []specs.LinuxDevice{kvm}, func(a *specAdapter) { a.RemoveDevice("/dev/nope") }, []specs.LinuxDevice{kvm}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &specs.Spec{Linux: &specs.Linux{Devices: tc.start}}
			tc.op(newSpecAdapter(s))
			if !reflect.DeepEqual(s.Linux.Devices, tc.want) {
				t.Errorf("devices = %+v, want %+v", s.Linux.Devices, tc.want)
			}
		})
	}
}

func TestSpecAdapterEnv(t *testing.T) {
	tests := []struct {
		name  string
		start []string
		op    func(a *specAdapter)
		want  []string
	}{
		{"add appends a new name", []string{"A=1"}, func(a *specAdapter) { a.AddProcessEnv("B", "2") }, []string{"A=1", "B=2"}},
		{"add replaces NAME= in place", []string{"A=1", "B=2"}, func(a *specAdapter) { a.AddProcessEnv("A", "9") }, []string{"A=9", "B=2"}},
		{"a name that prefixes another is its own", []string{"PATHX=1"}, func(a *specAdapter) { a.AddProcessEnv("PATH", "/bin") }, []string{"PATHX=1", "PATH=/bin"}},
		{"an empty value is kept", []string{"A=1"}, func(a *specAdapter) { a.AddProcessEnv("A", "") }, []string{"A="}},
		{"clear leaves an empty slice", []string{"A=1", "B=2"}, func(a *specAdapter) { a.ClearProcessEnv() }, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &specs.Spec{Process: &specs.Process{Env: tc.start}}
			tc.op(newSpecAdapter(s))
			if !reflect.DeepEqual(s.Process.Env, tc.want) {
				t.Errorf("env = %q, want %q", s.Process.Env, tc.want)
			}
		})
	}

	t.Run("clear does not create a process", func(t *testing.T) {
		s := &specs.Spec{}
		newSpecAdapter(s).ClearProcessEnv()
		if s.Process != nil {
			t.Errorf("ClearProcessEnv created %+v", s.Process)
		}
	})
}

func TestSpecAdapterMounts(t *testing.T) {
	proc := specs.Mount{Destination: "/proc", Type: "proc", Source: "proc"}
	hosts := specs.Mount{Destination: "/etc/hosts", Type: "bind", Source: "/h"}
	data := specs.Mount{Destination: "/data", Type: "bind", Source: "/d"}

	tests := []struct {
		name string
		op   func(a *specAdapter)
		want []specs.Mount
	}{
		{"remove drops by destination", func(a *specAdapter) { a.RemoveMount("/etc/hosts") }, []specs.Mount{proc, data}},
		{"remove of an unknown destination is harmless", func(a *specAdapter) { a.RemoveMount("/nope") }, []specs.Mount{proc, hosts, data}},
		{"remove matches destination, not source", func(a *specAdapter) { a.RemoveMount("/h") }, []specs.Mount{proc, hosts, data}},
		{"add appends", func(a *specAdapter) { a.AddMount(specs.Mount{Destination: "/x"}) }, []specs.Mount{proc, hosts, data, {Destination: "/x"}}},
		{"clear leaves an empty slice", func(a *specAdapter) { a.ClearMounts() }, []specs.Mount{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &specs.Spec{Mounts: []specs.Mount{proc, hosts, data}}
			a := newSpecAdapter(s)
			tc.op(a)
			if !reflect.DeepEqual(s.Mounts, tc.want) {
				t.Errorf("mounts = %+v, want %+v", s.Mounts, tc.want)
			}
			if !reflect.DeepEqual(a.Mounts(), s.Mounts) {
				t.Errorf("Mounts() = %+v, spec has %+v", a.Mounts(), s.Mounts)
			}
		})
	}
}

func TestSpecAdapterNamespaces(t *testing.T) {
	valid := map[string]specs.LinuxNamespaceType{
		"network": specs.NetworkNamespace,
		"pid":     specs.PIDNamespace,
		"mount":   specs.MountNamespace,
		"ipc":     specs.IPCNamespace,
		"uts":     specs.UTSNamespace,
		"user":    specs.UserNamespace,
		"cgroup":  specs.CgroupNamespace,
		"time":    specs.TimeNamespace,
	}
	for name, typ := range valid {
		t.Run(name, func(t *testing.T) {
			s := &specs.Spec{}
			a := newSpecAdapter(s)
			if err := a.AddOrReplaceLinuxNamespace(name, ""); err != nil {
				t.Fatalf("add: %v", err)
			}
			if err := a.AddOrReplaceLinuxNamespace(name, "/proc/1/ns/x"); err != nil {
				t.Fatalf("replace: %v", err)
			}
			want := []specs.LinuxNamespace{{Type: typ, Path: "/proc/1/ns/x"}}
			if !reflect.DeepEqual(s.Linux.Namespaces, want) {
				t.Fatalf("namespaces = %+v, want %+v", s.Linux.Namespaces, want)
			}
			if err := a.RemoveLinuxNamespace(name); err != nil {
				t.Fatalf("remove: %v", err)
			}
			if len(s.Linux.Namespaces) != 0 {
				t.Fatalf("namespaces after remove = %+v", s.Linux.Namespaces)
			}
			if err := a.RemoveLinuxNamespace(name); err != nil {
				t.Fatalf("remove of an absent namespace: %v", err)
			}
		})
	}

	for _, bad := range []string{"net", "NETWORK", "", "mnt"} {
		t.Run("bad "+bad, func(t *testing.T) {
			s := &specs.Spec{}
			a := newSpecAdapter(s)
			for op, err := range map[string]error{
				"add":    a.AddOrReplaceLinuxNamespace(bad, "/p"),
				"remove": a.RemoveLinuxNamespace(bad),
			} {
				if err == nil || !strings.Contains(err.Error(), `"`+bad+`"`) || !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("%s %q: err = %v, want an invalid-argument error naming it", op, bad, err)
				}
			}
			if s.Linux != nil {
				t.Errorf("a rejected namespace still created %+v", s.Linux)
			}
		})
	}

	t.Run("remove without linux is harmless", func(t *testing.T) {
		s := &specs.Spec{}
		if err := newSpecAdapter(s).RemoveLinuxNamespace("pid"); err != nil || s.Linux != nil {
			t.Errorf("err = %v, linux = %+v", err, s.Linux)
		}
	})
}

func TestSpecAdapterRootPropagation(t *testing.T) {
	for _, rp := range []string{"", "private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable"} {
		t.Run("valid "+rp, func(t *testing.T) {
			s := &specs.Spec{}
			if err := newSpecAdapter(s).SetLinuxRootPropagation(rp); err != nil {
				t.Fatal(err)
			}
			if s.Linux.RootfsPropagation != rp {
				t.Errorf("propagation = %q, want %q", s.Linux.RootfsPropagation, rp)
			}
		})
	}
	for _, rp := range []string{"rbind", "Shared", "rshared "} {
		t.Run("bad "+rp, func(t *testing.T) {
			s := &specs.Spec{Linux: &specs.Linux{RootfsPropagation: "rslave"}}
			err := newSpecAdapter(s).SetLinuxRootPropagation(rp)
			if err == nil || !strings.Contains(err.Error(), `"`+rp+`"`) || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("err = %v, want an invalid-argument error naming %q", err, rp)
			}
			if s.Linux.RootfsPropagation != "rslave" {
				t.Errorf("a rejected propagation replaced rslave with %q", s.Linux.RootfsPropagation)
			}
		})
	}
}

func TestSpecAdapterHugepageLimit(t *testing.T) {
	s := &specs.Spec{}
	a := newSpecAdapter(s)
	a.AddLinuxResourcesHugepageLimit("2MB", 1)
	a.AddLinuxResourcesHugepageLimit("1GB", 2)
	a.AddLinuxResourcesHugepageLimit("2MB", 3)
	want := []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 3}, {Pagesize: "1GB", Limit: 2}}
	if !reflect.DeepEqual(s.Linux.Resources.HugepageLimits, want) {
		t.Errorf("hugepage limits = %+v, want %+v", s.Linux.Resources.HugepageLimits, want)
	}
}

// Each setter must work on an empty spec: plugins adjust whatever Berth
// left unset.
func TestSpecAdapterInitOnDemand(t *testing.T) {
	tests := []struct {
		name  string
		op    func(a *specAdapter)
		check func(s *specs.Spec) bool
	}{
		{"annotation", func(a *specAdapter) { a.AddAnnotation("k", "v") }, func(s *specs.Spec) bool { return s.Annotations["k"] == "v" }},
		{"device", func(a *specAdapter) { a.AddDevice(specs.LinuxDevice{Path: "/dev/x"}) }, func(s *specs.Spec) bool { return s.Linux.Devices[0].Path == "/dev/x" }},
		{"prestart hook", func(a *specAdapter) { a.AddPreStartHook(specs.Hook{Path: "/h"}) }, func(s *specs.Spec) bool { return s.Hooks.Prestart[0].Path == "/h" }}, //nolint:staticcheck // the adapter must still fill the deprecated list
		{"poststart hook", func(a *specAdapter) { a.AddPostStartHook(specs.Hook{Path: "/h"}) }, func(s *specs.Spec) bool { return s.Hooks.Poststart[0].Path == "/h" }},
		{"poststop hook", func(a *specAdapter) { a.AddPostStopHook(specs.Hook{Path: "/h"}) }, func(s *specs.Spec) bool { return s.Hooks.Poststop[0].Path == "/h" }},
		{"env", func(a *specAdapter) { a.AddProcessEnv("A", "1") }, func(s *specs.Spec) bool { return s.Process.Env[0] == "A=1" }},
		{"args", func(a *specAdapter) { a.SetProcessArgs([]string{"x"}) }, func(s *specs.Spec) bool { return s.Process.Args[0] == "x" }},
		{"oom score adj", func(a *specAdapter) { a.SetProcessOOMScoreAdj(-999) }, func(s *specs.Spec) bool { return *s.Process.OOMScoreAdj == -999 }},
		{"mount", func(a *specAdapter) { a.AddMount(specs.Mount{Destination: "/m"}) }, func(s *specs.Spec) bool { return s.Mounts[0].Destination == "/m" }},
		{"sysctl", func(a *specAdapter) { a.AddLinuxSysctl("k", "v") }, func(s *specs.Spec) bool { return s.Linux.Sysctl["k"] == "v" }},
		{"cgroups path", func(a *specAdapter) { a.SetLinuxCgroupsPath("/p") }, func(s *specs.Spec) bool { return s.Linux.CgroupsPath == "/p" }},
		{"device cgroup rule", func(a *specAdapter) { a.AddLinuxResourcesDevice(true, "c", ptr[int64](1), nil, "rw") }, func(s *specs.Spec) bool {
			d := s.Linux.Resources.Devices[0]
			return d.Allow && d.Type == "c" && *d.Major == 1 && d.Minor == nil && d.Access == "rw"
		}},
		{"hugepage limit", func(a *specAdapter) { a.AddLinuxResourcesHugepageLimit("2MB", 1) }, func(s *specs.Spec) bool { return s.Linux.Resources.HugepageLimits[0].Limit == 1 }},
		{"unified", func(a *specAdapter) { a.AddLinuxResourcesUnified("k", "v") }, func(s *specs.Spec) bool { return s.Linux.Resources.Unified["k"] == "v" }},
		{"cpu cpus", func(a *specAdapter) { a.SetLinuxResourcesCPUCpus("0-1") }, func(s *specs.Spec) bool { return s.Linux.Resources.CPU.Cpus == "0-1" }},
		{"cpu mems", func(a *specAdapter) { a.SetLinuxResourcesCPUMems("0") }, func(s *specs.Spec) bool { return s.Linux.Resources.CPU.Mems == "0" }},
		{"cpu period", func(a *specAdapter) { a.SetLinuxResourcesCPUPeriod(1) }, func(s *specs.Spec) bool { return *s.Linux.Resources.CPU.Period == 1 }},
		{"cpu quota", func(a *specAdapter) { a.SetLinuxResourcesCPUQuota(-1) }, func(s *specs.Spec) bool { return *s.Linux.Resources.CPU.Quota == -1 }},
		{"cpu realtime period", func(a *specAdapter) { a.SetLinuxResourcesCPURealtimePeriod(2) }, func(s *specs.Spec) bool { return *s.Linux.Resources.CPU.RealtimePeriod == 2 }},
		{"cpu realtime runtime", func(a *specAdapter) { a.SetLinuxResourcesCPURealtimeRuntime(3) }, func(s *specs.Spec) bool { return *s.Linux.Resources.CPU.RealtimeRuntime == 3 }},
		{"cpu shares", func(a *specAdapter) { a.SetLinuxResourcesCPUShares(4) }, func(s *specs.Spec) bool { return *s.Linux.Resources.CPU.Shares == 4 }},
		{"memory limit", func(a *specAdapter) { a.SetLinuxResourcesMemoryLimit(5) }, func(s *specs.Spec) bool { return *s.Linux.Resources.Memory.Limit == 5 }},
		{"memory swap", func(a *specAdapter) { a.SetLinuxResourcesMemorySwap(6) }, func(s *specs.Spec) bool { return *s.Linux.Resources.Memory.Swap == 6 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &specs.Spec{}
			tc.op(newSpecAdapter(s))
			if !tc.check(s) {
				t.Errorf("spec after %s: %s", tc.name, specJSON(s))
			}
		})
	}
}

// Removing from a spec that lacks the field must not grow the field.
func TestSpecAdapterRemoversOnEmptySpec(t *testing.T) {
	s := &specs.Spec{}
	a := newSpecAdapter(s)
	a.RemoveAnnotation("k")
	a.RemoveDevice("/dev/x")
	a.RemoveLinuxSysctl("k")
	a.RemoveMount("/m")
	a.ClearProcessEnv()
	if err := a.RemoveLinuxNamespace("pid"); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s, &specs.Spec{}) {
		t.Errorf("removers changed an empty spec: %s", specJSON(s))
	}
}

func TestSpecAdapterPrepare(t *testing.T) {
	adj := &api.ContainerAdjustment{}
	adj.AddMount(&api.Mount{Destination: "/m", Source: "/s", Options: []string{"rbind", "rslave"}})
	s := &specs.Spec{}
	newSpecAdapter(s).prepare(adj)
	if s.Linux == nil {
		t.Error("an rslave mount did not prepare spec.Linux, which the generator reads after checking host propagation")
	}
	if s.Process != nil {
		t.Errorf("prepare created a process no adjustment needs: %+v", s.Process)
	}
}

func TestDedupeRlimits(t *testing.T) {
	nofile := func(n uint64) specs.POSIXRlimit { return specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Hard: n, Soft: n} }
	nproc := specs.POSIXRlimit{Type: "RLIMIT_NPROC", Hard: 10, Soft: 10}
	tests := []struct {
		name string
		in   []specs.POSIXRlimit
		want []specs.POSIXRlimit
	}{
		{"no duplicates", []specs.POSIXRlimit{nofile(1), nproc}, []specs.POSIXRlimit{nofile(1), nproc}},
		{"the last value wins in the first place", []specs.POSIXRlimit{nofile(1), nproc, nofile(2), nofile(3)}, []specs.POSIXRlimit{nofile(3), nproc}},
		{"empty", []specs.POSIXRlimit{}, []specs.POSIXRlimit{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &specs.Process{Rlimits: tc.in}
			dedupeRlimits(p)
			if !reflect.DeepEqual(p.Rlimits, tc.want) {
				t.Errorf("rlimits = %+v, want %+v", p.Rlimits, tc.want)
			}
		})
	}
	dedupeRlimits(nil)
}
