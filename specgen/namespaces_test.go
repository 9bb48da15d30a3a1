package specgen

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
)

func TestNamespaces(t *testing.T) {
	type want map[specs.LinuxNamespaceType]string // type -> path; absent = host
	const net, ipc, uts = "/run/berth/ns/net/pod1", "/run/berth/ns/ipc/pod1", "/run/berth/ns/uts/pod1"
	for _, tc := range []struct {
		name      string
		opts      *runtime.NamespaceOption
		podOpts   *runtime.NamespaceOption
		edit      func(*Input)
		cgroup2   bool
		want      want
		errField  string
		errSentry error
	}{
		{name: "container pid", opts: &runtime.NamespaceOption{Pid: runtime.NamespaceMode_CONTAINER},
			want: want{"mount": "", "network": net, "ipc": ipc, "uts": uts, "pid": ""}},
		{name: "pod pid", opts: &runtime.NamespaceOption{Pid: runtime.NamespaceMode_POD}, edit: func(in *Input) { in.Sandbox.InfraPid = 42 },
			want: want{"mount": "", "network": net, "ipc": ipc, "uts": uts, "pid": "/proc/42/ns/pid"}},
		{name: "pod pid from the pod's options", podOpts: &runtime.NamespaceOption{Pid: runtime.NamespaceMode_POD}, edit: func(in *Input) { in.Sandbox.InfraPid = 7 },
			want: want{"mount": "", "network": net, "ipc": ipc, "uts": uts, "pid": "/proc/7/ns/pid"}},
		{name: "pod pid without infra", opts: &runtime.NamespaceOption{Pid: runtime.NamespaceMode_POD},
			errField: scField + ".namespace_options.pid", errSentry: errdefs.ErrFailedPrecondition},
		{name: "node pid", opts: &runtime.NamespaceOption{Pid: runtime.NamespaceMode_NODE},
			want: want{"mount": "", "network": net, "ipc": ipc, "uts": uts}},
		{name: "target pid", opts: &runtime.NamespaceOption{Pid: runtime.NamespaceMode_TARGET, TargetId: "other"}, edit: func(in *Input) { in.TargetPid = 99 },
			want: want{"mount": "", "network": net, "ipc": ipc, "uts": uts, "pid": "/proc/99/ns/pid"}},
		{name: "target not running", opts: &runtime.NamespaceOption{Pid: runtime.NamespaceMode_TARGET, TargetId: "other"},
			errField: "namespace_options.target_id", errSentry: errdefs.ErrFailedPrecondition},
		{name: "target without id", opts: &runtime.NamespaceOption{Pid: runtime.NamespaceMode_TARGET},
			errField: "namespace_options.target_id", errSentry: errdefs.ErrInvalidArgument},
		{name: "host network and ipc", opts: &runtime.NamespaceOption{Pid: runtime.NamespaceMode_CONTAINER},
			edit: func(in *Input) {
				in.Sandbox.NetNS, in.Sandbox.IPCNS, in.Sandbox.UTSNS = "", "", ""
				in.Sandbox.HostNetwork, in.Sandbox.HostIPC = true, true
			},
			want: want{"mount": "", "pid": ""}},
		{name: "missing pinned netns", opts: &runtime.NamespaceOption{Pid: runtime.NamespaceMode_CONTAINER},
			edit: func(in *Input) { in.Sandbox.NetNS = "" }, errField: "network namespace", errSentry: errdefs.ErrFailedPrecondition},
		{name: "cgroup v2", opts: &runtime.NamespaceOption{Pid: runtime.NamespaceMode_CONTAINER}, cgroup2: true,
			want: want{"mount": "", "network": net, "ipc": ipc, "uts": uts, "pid": "", "cgroup": ""}},
		{name: "user namespaces", opts: &runtime.NamespaceOption{Pid: runtime.NamespaceMode_CONTAINER, UsernsOptions: &runtime.UserNamespace{Mode: runtime.NamespaceMode_POD}},
			errField: "userns_options", errSentry: errdefs.ErrNotImplemented},
		{name: "host user namespace", opts: &runtime.NamespaceOption{Pid: runtime.NamespaceMode_CONTAINER, UsernsOptions: &runtime.UserNamespace{Mode: runtime.NamespaceMode_NODE}},
			want: want{"mount": "", "network": net, "ipc": ipc, "uts": uts, "pid": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.Host.cgroup2 = tc.cgroup2
			sc(&in).NamespaceOptions = tc.opts
			in.Sandbox.SecurityContext = &runtime.LinuxSandboxSecurityContext{NamespaceOptions: tc.podOpts}
			if tc.edit != nil {
				tc.edit(&in)
			}
			res, err := Generate(in)
			if tc.errField != "" {
				wantErr(t, err, tc.errSentry, tc.errField)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := want{}
			for _, n := range res.Spec.Linux.Namespaces {
				got[n.Type] = n.Path
			}
			if len(got) != len(tc.want) {
				t.Fatalf("namespaces %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if p, ok := got[k]; !ok || p != v {
					t.Fatalf("namespaces %v, want %v", got, tc.want)
				}
			}
			if _, newUTS := got["uts"]; newUTS != (res.Spec.Hostname != "") {
				t.Fatalf("hostname %q with uts namespace %v", res.Spec.Hostname, newUTS)
			}
		})
	}
}

// The server asks NamespaceOptions whether a container's pid mode is
// TARGET; it must answer as Generate decides.
func TestNamespaceOptions(t *testing.T) {
	target := &runtime.NamespaceOption{Pid: runtime.NamespaceMode_TARGET, TargetId: "app"}
	pod := &runtime.NamespaceOption{Pid: runtime.NamespaceMode_POD}
	ctr := func(o *runtime.NamespaceOption) *runtime.ContainerConfig {
		return &runtime.ContainerConfig{Linux: &runtime.LinuxContainerConfig{SecurityContext: &runtime.LinuxContainerSecurityContext{NamespaceOptions: o}}}
	}
	for _, tc := range []struct {
		name string
		cfg  *runtime.ContainerConfig
		pod  *runtime.LinuxSandboxSecurityContext
		want *runtime.NamespaceOption
	}{
		{"the container's own", ctr(target), &runtime.LinuxSandboxSecurityContext{NamespaceOptions: pod}, target},
		{"the pod's when the container names none", ctr(nil), &runtime.LinuxSandboxSecurityContext{NamespaceOptions: pod}, pod},
		{"the pod's for a config without linux", &runtime.ContainerConfig{}, &runtime.LinuxSandboxSecurityContext{NamespaceOptions: pod}, pod},
		{"none at all", nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NamespaceOptions(tc.cfg, tc.pod); got != tc.want {
				t.Fatalf("NamespaceOptions = %v, want %v", got, tc.want)
			}
		})
	}
}
