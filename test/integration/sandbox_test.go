package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podJSON is a pod config as a person writes it for `crictl runp`.
func podJSON(t *testing.T, name string, extra map[string]any) string {
	t.Helper()
	cfg := map[string]any{
		"metadata":      map[string]any{"name": name, "namespace": "default", "uid": name + "-uid", "attempt": 0},
		"hostname":      name,
		"log_directory": t.TempDir(),
		"linux":         map[string]any{},
	}
	for k, v := range extra {
		cfg[k] = v
	}
	b, _ := json.Marshal(cfg)
	path := filepath.Join(t.TempDir(), name+".json")
	writeFile(t, path, string(b))
	return path
}

type podInspect struct {
	Status struct {
		ID      string `json:"id"`
		State   string `json:"state"`
		Network struct {
			IP string `json:"ip"`
		} `json:"network"`
		RuntimeHandler string `json:"runtimeHandler"`
	} `json:"status"`
	Info struct {
		Netns string `json:"netns"`
		Pid   int    `json:"pid"`
	} `json:"info"`
}

func (b *berth) inspectp(t *testing.T, id string) podInspect {
	t.Helper()
	var pi podInspect
	out := b.mustCrictl(t, "inspectp", id)
	if err := json.Unmarshal([]byte(out), &pi); err != nil {
		t.Fatalf("parse crictl inspectp: %v\n%s", err, out)
	}
	return pi
}

// A crictl session on the bridge network: run, inspect, reach, stop, remove.
func TestPodSandboxLifecycleOnBridge(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)

	id := strings.TrimSpace(b.mustCrictl(t, "runp", podJSON(t, "web", map[string]any{
		"dns_config": map[string]any{"servers": []string{"10.96.0.10"}, "searches": []string{"default.svc.cluster.local"}, "options": []string{"ndots:5"}},
		"linux":      map[string]any{"sysctls": map[string]string{"net.ipv4.ping_group_range": "0 1000", "kernel.shmmni": "2048"}},
	})))
	pi := b.inspectp(t, id)
	if pi.Status.State != "SANDBOX_READY" {
		t.Errorf("state = %s, want SANDBOX_READY", pi.Status.State)
	}
	_, subnet, _ := net.ParseCIDR(tn.subnet)
	ip := net.ParseIP(pi.Status.Network.IP)
	if ip == nil || !subnet.Contains(ip) {
		t.Fatalf("pod ip %q is not in %s", pi.Status.Network.IP, tn.subnet)
	}
	if out, err := exec.Command("ping", "-c", "1", "-W", "2", ip.String()).CombinedOutput(); err != nil {
		t.Errorf("host cannot ping pod at %s: %v\n%s", ip, err, out)
	}
	if out := b.mustCrictl(t, "pods", "--state", "ready", "-q"); strings.TrimSpace(out) != id {
		t.Errorf("crictl pods --state ready = %q, want %s", out, id)
	}

	// The namespaces are the pod's own, set up as asked.
	netns := pi.Info.Netns
	if got := nsenter(t, "--net="+netns, "cat", "/proc/sys/net/ipv4/ping_group_range"); strings.Join(strings.Fields(got), " ") != "0 1000" {
		t.Errorf("ping_group_range in the pod = %q", got)
	}
	if got := nsenter(t, "--net="+netns, "ip", "-o", "addr", "show", "eth0"); !strings.Contains(got, ip.String()) {
		t.Errorf("eth0 in the pod netns lacks %s: %s", ip, got)
	}
	if got := nsenter(t, "--uts="+filepath.Join(b.Root, "run", "ns", "uts", id), "hostname"); strings.TrimSpace(got) != "web" {
		t.Errorf("hostname in the pod = %q, want web", got)
	}
	resolv, err := os.ReadFile(filepath.Join(b.Root, "run", "pods", id, "resolv.conf"))
	if err != nil || !strings.Contains(string(resolv), "nameserver 10.96.0.10") || !strings.Contains(string(resolv), "options ndots:5") {
		t.Errorf("pod resolv.conf = %q, %v", resolv, err)
	}
	if len(tn.reservations(t)) != 1 {
		t.Errorf("host-local reservations = %v, want one", tn.reservations(t))
	}

	b.mustCrictl(t, "stopp", id)
	if pi := b.inspectp(t, id); pi.Status.State != "SANDBOX_NOTREADY" {
		t.Errorf("after stopp: state = %s", pi.Status.State)
	}
	if r := tn.reservations(t); len(r) != 0 {
		t.Errorf("stopp left IP reservations: %v", r)
	}
	b.mustCrictl(t, "stopp", id) // again: idempotent
	b.mustCrictl(t, "rmp", id)
	if out := b.mustCrictl(t, "pods", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("pods after rmp: %q", out)
	}
	b.assertNoPodLeftovers(t, tn)
}

func nsenter(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("nsenter", args...).CombinedOutput()
	if err != nil {
		t.Errorf("nsenter %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// assertNoPodLeftovers checks that nothing of any pod is left: pins, pod
// dirs, mounts under the daemon's root, IP reservations.
func (b *berth) assertNoPodLeftovers(t *testing.T, tn *testNetwork) {
	t.Helper()
	for _, kind := range []string{"net", "ipc", "uts"} {
		if ents, _ := os.ReadDir(filepath.Join(b.Root, "run", "ns", kind)); len(ents) != 0 {
			t.Errorf("pinned %s namespaces left: %d", kind, len(ents))
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(b.Root, "run", "pods")); len(ents) != 0 {
		t.Errorf("pod dirs left: %d", len(ents))
	}
	for _, m := range mountsUnder(t, b.Root) {
		if !strings.HasSuffix(m, "/storage/overlay") { // the store's own home while open
			t.Errorf("mount left: %s", m)
		}
	}
	if tn != nil {
		if r := tn.reservations(t); len(r) != 0 {
			t.Errorf("IP reservations left: %v", r)
		}
	}
	if tn != nil {
		if rules := natRulesFor(t, tn); len(rules) != 0 {
			t.Errorf("iptables nat rules left for pods on %s: %v", tn.subnet, rules)
		}
	}
	if ids := storageContainers(t, b); len(ids) != 0 {
		t.Errorf("storage containers left: %v", ids)
	}
	if procs := processesMentioning(t, b.Root); len(procs) != 0 {
		t.Errorf("processes left (conmon or containers): %v", procs)
	}
	if cgs := berthCgroups(t, b); len(cgs) != 0 {
		t.Errorf("cgroups left: %v", cgs)
	}
}

// storageContainers lists the containers/storage containers in the daemon's store.
func storageContainers(t *testing.T, b *berth) []string {
	t.Helper()
	var ids []string
	for _, f := range []string{"overlay-containers/containers.json", "vfs-containers/containers.json"} {
		data, err := os.ReadFile(filepath.Join(b.Root, "storage", f))
		if err != nil {
			continue
		}
		var cs []struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(data, &cs); err != nil {
			t.Fatalf("parse %s: %v", f, err)
		}
		for _, c := range cs {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// processesMentioning lists processes whose command line names dir: conmon
// and runtime processes of the daemon's containers carry its paths.
func processesMentioning(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		cmd := strings.ReplaceAll(string(cmdline), "\x00", " ")
		if strings.Contains(cmd, dir+"/") && !strings.Contains(cmd, "--listen") { // not the daemon itself
			out = append(out, e.Name()+": "+cmd)
		}
	}
	return out
}

// berthCgroups lists the cgroups, on every hierarchy, under the default pod
// parent "/berth" that belong to this daemon's pods and containers (every id
// it made is in its log): other daemons on the machine use that parent too.
func berthCgroups(t *testing.T, b *berth) []string {
	t.Helper()
	log, err := os.ReadFile(b.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	matches, _ := filepath.Glob("/sys/fs/cgroup/*/berth/berth-*")
	for _, m := range matches {
		id := strings.TrimPrefix(strings.TrimPrefix(filepath.Base(m), "berth-"), "conmon-")
		if strings.Contains(string(log), id) {
			out = append(out, m)
		}
	}
	return out
}

func TestHostNetworkPod(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)
	id := strings.TrimSpace(b.mustCrictl(t, "runp", podJSON(t, "hostnet", map[string]any{
		"linux": map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{"network": 2}}},
	})))
	pi := b.inspectp(t, id)
	if pi.Status.State != "SANDBOX_READY" || pi.Info.Netns != "" {
		t.Errorf("host network pod: state %s netns %q; want ready in the host netns", pi.Status.State, pi.Info.Netns)
	}
	if r := tn.reservations(t); len(r) != 0 {
		t.Errorf("a host network pod got an IP from CNI: %v", r)
	}
	b.mustCrictl(t, "rmp", "-f", id)
	b.assertNoPodLeftovers(t, tn)
}

func sandboxConfig(name string) *runtime.PodSandboxConfig {
	return &runtime.PodSandboxConfig{
		Metadata: &runtime.PodSandboxMetadata{Name: name, Namespace: "default", Uid: name + "-uid"},
		Hostname: name,
		Linux:    &runtime.LinuxPodSandboxConfig{},
	}
}

func TestPodSandboxBadInput(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)
	ctx := ctxT(t)

	first, err := b.runtime.RunPodSandbox(ctx, &runtime.RunPodSandboxRequest{Config: sandboxConfig("dup")})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	for _, tc := range []struct {
		name    string
		req     *runtime.RunPodSandboxRequest
		code    codes.Code
		mention string
	}{
		{"no config", &runtime.RunPodSandboxRequest{}, codes.InvalidArgument, "config"},
		{"no metadata", &runtime.RunPodSandboxRequest{Config: &runtime.PodSandboxConfig{}}, codes.InvalidArgument, "config.metadata"},
		{"no name", &runtime.RunPodSandboxRequest{Config: &runtime.PodSandboxConfig{Metadata: &runtime.PodSandboxMetadata{Namespace: "n", Uid: "u"}}}, codes.InvalidArgument, "config.metadata.name"},
		{"no namespace", &runtime.RunPodSandboxRequest{Config: &runtime.PodSandboxConfig{Metadata: &runtime.PodSandboxMetadata{Name: "n", Uid: "u"}}}, codes.InvalidArgument, "config.metadata.namespace"},
		{"no uid", &runtime.RunPodSandboxRequest{Config: &runtime.PodSandboxConfig{Metadata: &runtime.PodSandboxMetadata{Name: "n", Namespace: "n"}}}, codes.InvalidArgument, "config.metadata.uid"},
		{"duplicate name", &runtime.RunPodSandboxRequest{Config: sandboxConfig("dup")}, codes.AlreadyExists, first.GetPodSandboxId()},
		{"unknown handler", &runtime.RunPodSandboxRequest{Config: sandboxConfig("h"), RuntimeHandler: "kata"}, codes.InvalidArgument, "crun, runc"},
		{"unsafe sysctl", &runtime.RunPodSandboxRequest{Config: func() *runtime.PodSandboxConfig {
			c := sandboxConfig("sysctl")
			c.Linux.Sysctls = map[string]string{"kernel.panic": "1"}
			return c
		}()}, codes.InvalidArgument, "kernel.panic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.runtime.RunPodSandbox(ctx, tc.req)
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("RunPodSandbox = %v; want %v naming %q", err, tc.code, tc.mention)
			}
		})
	}
	// Unknown ids: status is NotFound; stop and remove are idempotent.
	if _, err := b.runtime.PodSandboxStatus(ctx, &runtime.PodSandboxStatusRequest{PodSandboxId: "nope"}); status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "nope") {
		t.Errorf("PodSandboxStatus(unknown) = %v, want NotFound naming it", err)
	}
	if _, err := b.runtime.PodSandboxStatus(ctx, &runtime.PodSandboxStatusRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("PodSandboxStatus(empty id) = %v, want InvalidArgument", err)
	}
	if _, err := b.runtime.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: "nope"}); err != nil {
		t.Errorf("StopPodSandbox(unknown) = %v, want success", err)
	}
	if _, err := b.runtime.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: "nope"}); err != nil {
		t.Errorf("RemovePodSandbox(unknown) = %v, want success", err)
	}
	// Only the first pod exists; the failed attempts left nothing behind.
	list, err := b.runtime.ListPodSandbox(ctx, &runtime.ListPodSandboxRequest{})
	if err != nil || len(list.GetItems()) != 1 {
		t.Fatalf("ListPodSandbox = %v, %v; want only the first pod", list, err)
	}
	if r := tn.reservations(t); len(r) != 1 {
		t.Errorf("IP reservations = %v, want the first pod's only", r)
	}
	b.mustCrictl(t, "rmp", "-f", first.GetPodSandboxId())
	b.assertNoPodLeftovers(t, tn)
}

func TestListPodSandboxFilters(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)
	ctx := ctxT(t)
	ids := map[string]string{}
	for _, name := range []string{"a", "b"} {
		cfg := sandboxConfig(name)
		cfg.Labels = map[string]string{"app": name}
		resp, err := b.runtime.RunPodSandbox(ctx, &runtime.RunPodSandboxRequest{Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = resp.GetPodSandboxId()
	}
	b.mustCrictl(t, "stopp", ids["b"])
	for _, tc := range []struct {
		name   string
		filter *runtime.PodSandboxFilter
		want   []string
	}{
		{"all", nil, []string{ids["a"], ids["b"]}},
		{"by id prefix", &runtime.PodSandboxFilter{Id: ids["a"][:8]}, []string{ids["a"]}},
		{"by state", &runtime.PodSandboxFilter{State: &runtime.PodSandboxStateValue{State: runtime.PodSandboxState_SANDBOX_NOTREADY}}, []string{ids["b"]}},
		{"by label", &runtime.PodSandboxFilter{LabelSelector: map[string]string{"app": "a"}}, []string{ids["a"]}},
		{"no match", &runtime.PodSandboxFilter{LabelSelector: map[string]string{"app": "c"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := b.runtime.ListPodSandbox(ctx, &runtime.ListPodSandboxRequest{Filter: tc.filter})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, it := range resp.GetItems() {
				got = append(got, it.GetId())
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("ListPodSandbox(%v) = %v, want %v", tc.filter, got, tc.want)
			}
		})
	}
	for _, id := range ids {
		b.mustCrictl(t, "rmp", "-f", id)
	}
	b.assertNoPodLeftovers(t, tn)
}

func TestInfraContainerOnlyWhenNeeded(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)
	for _, tc := range []struct {
		name      string
		pidMode   int // runtime.NamespaceMode
		handler   string
		wantInfra bool
	}{
		{"shared pid namespace under crun", int(runtime.NamespaceMode_POD), "", true},
		{"shared pid namespace under runc", int(runtime.NamespaceMode_POD), "runc", true},
		{"own pid namespaces: dropped infra", int(runtime.NamespaceMode_CONTAINER), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"runp"}
			if tc.handler != "" {
				args = append(args, "--runtime", tc.handler)
			}
			args = append(args, podJSON(t, "infra", map[string]any{
				"linux": map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{"pid": tc.pidMode}}},
			}))
			id := strings.TrimSpace(b.mustCrictl(t, args...))
			pi := b.inspectp(t, id)
			if got := pi.Info.Pid > 0; got != tc.wantInfra {
				t.Fatalf("infra pid = %d, want an infra process: %v", pi.Info.Pid, tc.wantInfra)
			}
			if tc.wantInfra {
				handler := tc.handler
				if handler == "" {
					handler = "crun"
				}
				if pi.Status.RuntimeHandler != tc.handler {
					t.Errorf("runtime handler = %q, want %q", pi.Status.RuntimeHandler, tc.handler)
				}
				// The runtime that runs the pause process is the one asked for.
				out, err := exec.Command(handler, "--root", "/run/"+handler, "state", id).CombinedOutput()
				if err != nil || !strings.Contains(string(out), `"running"`) {
					t.Errorf("%s state %s: %v\n%s", handler, id, err, out)
				}
				// The pause process is in the pod's network namespace.
				podNet, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pi.Info.Pid))
				if st, err := os.Stat(pi.Info.Netns); err != nil || podNet == "" {
					t.Errorf("infra netns %q, pinned %v", podNet, err)
				} else if ino := st.Sys().(*syscall.Stat_t).Ino; !strings.Contains(podNet, fmt.Sprint(ino)) {
					t.Errorf("infra process is in %s, the pod's netns is inode %d", podNet, ino)
				}
			}
			b.mustCrictl(t, "stopp", id)
			b.mustCrictl(t, "rmp", id)
			b.assertNoPodLeftovers(t, tn)
		})
	}
}

// natRulesFor lists the nat rules (masquerade, hostPort DNAT) that name an
// address of tn's subnet: CNI plugins add them per pod and DEL must remove them.
func natRulesFor(t *testing.T, tn *testNetwork) []string {
	t.Helper()
	out, err := exec.Command("iptables", "-t", "nat", "-S").Output()
	if err != nil {
		t.Fatalf("list nat rules: %v", err)
	}
	_, subnet, _ := net.ParseCIDR(tn.subnet)
	var left []string
	for _, line := range strings.Split(string(out), "\n") {
		for _, f := range strings.Fields(line) {
			addr, _, _ := strings.Cut(strings.Split(f, "/")[0], ":")
			if ip := net.ParseIP(addr); ip != nil && subnet.Contains(ip) && !ip.Equal(subnet.IP) {
				left = append(left, line)
				break
			}
		}
	}
	return left
}
