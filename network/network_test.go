package network

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/cni/libcni"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/namespaces"
)

func TestDefaultConflist(t *testing.T) {
	list, err := libcni.NetworkConfFromBytes(DefaultConflist("cni0", "10.85.0.0/16"))
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, p := range list.Plugins {
		types = append(types, p.Network.Type)
	}
	if list.Name != DefaultNetworkName || list.CNIVersion != "1.0.0" || strings.Join(types, ",") != "bridge,portmap" {
		t.Fatalf("got %s %s %v", list.Name, list.CNIVersion, types)
	}
	if !list.Plugins[1].Network.Capabilities["portMappings"] {
		t.Fatal("portmap lacks the portMappings capability")
	}
	if list.Plugins[0].Network.IPAM.Type != "host-local" {
		t.Fatalf("ipam %q", list.Plugins[0].Network.IPAM.Type)
	}
}

func TestRuntimeConf(t *testing.T) {
	for _, tc := range []struct {
		name string
		pms  []PortMapping
		want []portMapping
	}{
		{name: "none"},
		{name: "unpublished skipped", pms: []PortMapping{{ContainerPort: 80}}},
		{
			name: "protocol lowercased and defaulted",
			pms:  []PortMapping{{HostPort: 8080, ContainerPort: 80}, {HostPort: 53, ContainerPort: 53, Protocol: "UDP", HostIP: "127.0.0.1"}},
			want: []portMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}, {HostPort: 53, ContainerPort: 53, Protocol: "udp", HostIP: "127.0.0.1"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := runtimeConf(Pod{ID: "id1", Name: "n", Namespace: "ns", UID: "u", PortMappings: tc.pms}, "/x")
			wantArgs := "IgnoreUnknown=1 K8S_POD_NAMESPACE=ns K8S_POD_NAME=n K8S_POD_INFRA_CONTAINER_ID=id1 K8S_POD_UID=u"
			var args []string
			for _, a := range rt.Args {
				args = append(args, a[0]+"="+a[1])
			}
			if strings.Join(args, " ") != wantArgs || rt.IfName != "eth0" || rt.ContainerID != "id1" || rt.NetNS != "/x" {
				t.Fatalf("runtime conf %+v", rt)
			}
			got, _ := rt.CapabilityArgs["portMappings"].([]portMapping)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("portMappings %v, want %v", got, tc.want)
			}
		})
	}
}

func TestConfDirWatch(t *testing.T) {
	e := newEnv(t)
	m := e.manager(t)
	if err := m.Status(); err == nil || !strings.Contains(err.Error(), "no cni network config") || !strings.Contains(err.Error(), e.confDir) {
		t.Fatalf("Status with an empty dir = %v", err)
	}
	if _, err := m.Setup(context.Background(), Pod{ID: "x", NetNS: "/nonexistent"}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("Setup while not ready = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m.Start(ctx)

	broken := filepath.Join(e.confDir, "10-broken.conflist")
	e.writeConf(t, "10-broken.conflist", []byte(`{"cniVersion": "1.0.0", "name": "x", "plugins": [`))
	eventually(t, "Status to name the broken file", func() bool {
		err := m.Status()
		return err != nil && strings.Contains(err.Error(), broken+": ")
	})
	missing := filepath.Join(e.confDir, "15-missing.conf")
	e.writeConf(t, "15-missing.conf", []byte(`{"cniVersion": "1.0.0", "name": "y", "type": "no-such-plugin"}`))
	eventually(t, "Status to name the file with a missing plugin", func() bool {
		err := m.Status()
		return err != nil && strings.Contains(err.Error(), missing+": ") && strings.Contains(err.Error(), "no-such-plugin") &&
			strings.Contains(err.Error(), broken+": ")
	})
	if m.Ready() {
		t.Fatal("ready with only broken configs")
	}

	e.writeConf(t, "20-good.conflist", e.conflist(t, "good"))
	eventually(t, "the network to become ready", m.Ready)
	if name, file := m.DefaultNetwork(); name != "good" || file != filepath.Join(e.confDir, "20-good.conflist") {
		t.Fatalf("default network %q from %q", name, file)
	}

	// A valid config sorting first becomes the default; a .conf is
	// wrapped into a list.
	e.writeConf(t, "05-single.conf", []byte(`{"cniVersion": "1.0.0", "name": "single", "type": "loopback"}`))
	eventually(t, "05-single.conf to become the default", func() bool {
		name, _ := m.DefaultNetwork()
		return name == "single"
	})

	for _, f := range []string{"05-single.conf", "10-broken.conflist", "15-missing.conf", "20-good.conflist"} {
		if err := os.Remove(filepath.Join(e.confDir, f)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the network to become not ready", func() bool { return !m.Ready() })
}

// setupSession is a pod's life on the default bridge network: ADD, ping,
// hostPort, ADD again, DEL, DEL again.
func TestSetupTeardownSession(t *testing.T) {
	e := newEnv(t)
	e.writeConf(t, "10-test.conflist", e.conflist(t, "sess"))
	m := e.manager(t)
	if err := m.Status(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pod := e.newPod(t, "web")
	hostPort := int32(20000 + rand.IntN(10000))
	pod.PortMappings = []PortMapping{{HostPort: hostPort, ContainerPort: 80, Protocol: "TCP"}}

	res, err := m.Setup(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Teardown(ctx, pod) })
	if len(res.IPs) != 1 || !e.ipnet.Contains(net.ParseIP(res.IPs[0])) {
		t.Fatalf("IPs %v not in %s", res.IPs, e.subnet)
	}
	if res.Network != "sess" || len(res.Raw) == 0 {
		t.Fatalf("result %+v", res)
	}
	if err := ping(t, res.IPs[0]); err != nil {
		t.Fatal(err)
	}
	if got := e.reservations(t, "sess"); len(got) != 1 || got[res.IPs[0]] != pod.ID {
		t.Fatalf("reservations %v", got)
	}
	dnat := fmt.Sprintf("--dport %d", hostPort)
	if rules := natRules(t, dnat); len(rules) == 0 {
		t.Fatalf("no DNAT rule for hostPort %d", hostPort)
	}
	// lo is up in the pod (brought up with the netns; no plugin runs for it).
	if err := namespaces.WithNetNS(pod.NetNS, func() error {
		lo, err := net.InterfaceByName("lo")
		if err == nil && lo.Flags&net.FlagUp == 0 {
			err = errors.New("lo is down")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}

	// A second ADD for the same pod is not run; the cached result comes back.
	res2, err := m.Setup(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res2.IPs, ",") != strings.Join(res.IPs, ",") {
		t.Fatalf("second Setup gave %v, first %v", res2.IPs, res.IPs)
	}
	if got := e.reservations(t, "sess"); len(got) != 1 {
		t.Fatalf("reservations after second Setup: %v", got)
	}

	// Teardown without the port mappings: the cached ones are used, so
	// portmap still removes its rules.
	bare := pod
	bare.PortMappings = nil
	if err := m.Teardown(ctx, bare); err != nil {
		t.Fatal(err)
	}
	if got := e.reservations(t, "sess"); len(got) != 0 {
		t.Fatalf("reservations after Teardown: %v", got)
	}
	if rules := natRules(t, dnat); len(rules) != 0 {
		t.Fatalf("DNAT left after Teardown: %v", rules)
	}
	if rules := natRules(t, pod.ID); len(rules) != 0 {
		t.Fatalf("nat rules left after Teardown: %v", rules)
	}
	if err := m.Teardown(ctx, pod); err != nil {
		t.Fatalf("second Teardown: %v", err)
	}
	if err := ping(t, res.IPs[0]); err == nil {
		t.Fatal("pod address still answers after Teardown")
	}
}

func TestTeardownEdgeCases(t *testing.T) {
	e := newEnv(t)
	e.writeConf(t, "10-test.conflist", e.conflist(t, "edge"))
	m := e.manager(t)
	ctx := context.Background()

	t.Run("netns gone", func(t *testing.T) {
		pod := e.newPod(t, "gone")
		if _, err := m.Setup(ctx, pod); err != nil {
			t.Fatal(err)
		}
		if err := namespaces.Remove(e.nsDir, pod.ID); err != nil {
			t.Fatal(err)
		}
		if err := m.Teardown(ctx, pod); err != nil {
			t.Fatal(err)
		}
		if got := e.reservations(t, "edge"); len(got) != 0 {
			t.Fatalf("reservations after Teardown: %v", got)
		}
		if err := m.Teardown(ctx, pod); err != nil {
			t.Fatalf("second Teardown: %v", err)
		}
		// The bridge plugin (1.1.1) finds the addresses for its masquerade
		// rules in the netns; with the netns gone they stay behind.
		if rules := natRules(t, pod.ID); len(rules) != 0 {
			t.Logf("known bridge plugin leak with the netns gone first (%d nat rules); removing them", len(rules))
			removeNATRules(t, pod.ID)
		}
	})
	t.Run("never set up", func(t *testing.T) {
		pod := e.newPod(t, "never")
		if err := m.Teardown(ctx, pod); err != nil {
			t.Fatal(err)
		}
		pod.NetNS = ""
		if err := m.Teardown(ctx, pod); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("netns missing on Setup", func(t *testing.T) {
		pod := Pod{ID: "nonetns", NetNS: filepath.Join(e.nsDir, "net", "nonetns")}
		if _, err := m.Setup(ctx, pod); err == nil || !strings.Contains(err.Error(), "nonetns") {
			t.Fatalf("Setup without netns: %v", err)
		}
		if got := e.reservations(t, "edge"); len(got) != 0 {
			t.Fatalf("reservations: %v", got)
		}
	})
	t.Run("invalid id", func(t *testing.T) {
		if _, err := m.Setup(ctx, Pod{ID: "a/b"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatal(err)
		}
		if err := m.Teardown(ctx, Pod{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatal(err)
		}
	})
}

// removeNATRules deletes the nat rules that mention s (CNI comments name
// the container id), then the per-pod CNI chains they jumped to.
func removeNATRules(t *testing.T, s string) {
	t.Helper()
	chains := map[string]bool{}
	for _, r := range natRules(t, s) {
		f := strings.Fields(r)
		if len(f) < 2 || f[0] != "-A" {
			continue
		}
		for k := 0; k+1 < len(f); k++ {
			if f[k] == "-j" && strings.HasPrefix(f[k+1], "CNI-") && !strings.HasPrefix(f[k+1], "CNI-HOSTPORT") {
				chains[f[k+1]] = true
			}
		}
		// The rule text is quoted for a shell; let a shell split it.
		_ = runQuiet("sh", "-c", "iptables -w -t nat -D "+strings.Join(f[1:], " "))
	}
	for c := range chains {
		_ = runQuiet("iptables", "-w", "-t", "nat", "-F", c)
		_ = runQuiet("iptables", "-w", "-t", "nat", "-X", c)
	}
	if left := natRules(t, s); len(left) != 0 {
		t.Errorf("could not remove nat rules: %v", left)
	}
}

func TestPluginOrderArgsAndFailedAdd(t *testing.T) {
	e := newEnv(t)
	e.installFakePlugins(t)
	dirs := []string{e.pluginDir, debianPlugins}
	ctx := context.Background()

	t.Run("order and args", func(t *testing.T) {
		e.writeConf(t, "10-test.conflist", e.conflist(t, "order", e.fakeConf("fake-ok", "first"), e.fakeConf("fake-ok", "second")))
		m := e.manager(t, dirs...)
		pod := e.newPod(t, "order")
		if _, err := m.Setup(ctx, pod); err != nil {
			t.Fatal(err)
		}
		if err := m.Teardown(ctx, pod); err != nil {
			t.Fatal(err)
		}
		var seq []string
		for _, l := range e.calls(t) {
			f := strings.Fields(l)
			if f[1] == "ADD" || f[1] == "DEL" {
				seq = append(seq, f[0]+"-"+f[1])
			}
			if f[1] == "ADD" {
				for _, want := range []string{"K8S_POD_NAMESPACE=default", "K8S_POD_NAME=order", "K8S_POD_INFRA_CONTAINER_ID=" + pod.ID, "K8S_POD_UID=uid-" + pod.ID, "IgnoreUnknown=1"} {
					if !strings.Contains(l, want) {
						t.Errorf("ADD args %q lack %s", l, want)
					}
				}
			}
		}
		if got := strings.Join(seq, " "); got != "first-ADD second-ADD second-DEL first-DEL" {
			t.Fatalf("plugin calls %q", got)
		}
		if got := e.reservations(t, "order"); len(got) != 0 {
			t.Fatalf("reservations: %v", got)
		}
	})

	t.Run("failed add", func(t *testing.T) {
		e.writeConf(t, "10-test.conflist", e.conflist(t, "failing", e.fakeConf("fake-fail", "failer")))
		m := e.manager(t, dirs...)
		pod := e.newPod(t, "fail")
		_, err := m.Setup(ctx, pod)
		if err == nil || !strings.Contains(err.Error(), "failer refuses ADD") || !strings.Contains(err.Error(), pod.ID) {
			t.Fatalf("Setup = %v", err)
		}
		if got := e.reservations(t, "failing"); len(got) != 0 {
			t.Fatalf("failed ADD left reservations: %v", got)
		}
		if rules := natRules(t, pod.ID); len(rules) != 0 {
			t.Fatalf("failed ADD left nat rules: %v", rules)
		}
		if atts, _ := m.cni.GetCachedAttachments(pod.ID); len(atts) != 0 {
			t.Fatalf("failed ADD left a cache entry")
		}
		if err := m.Teardown(ctx, pod); err != nil {
			t.Fatal(err)
		}
	})
}

func TestGC(t *testing.T) {
	e := newEnv(t)
	e.writeConf(t, "10-test.conflist", e.conflist(t, "old"))
	m := e.manager(t)
	ctx := context.Background()
	kept, leaked, oldNet := e.newPod(t, "kept"), e.newPod(t, "leaked"), e.newPod(t, "oldnet")
	for _, p := range []Pod{kept, leaked, oldNet} {
		if _, err := m.Setup(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	// The network config changes under a running Berth: oldNet's
	// attachment can only be removed from its cached config.
	if err := os.Remove(filepath.Join(e.confDir, "10-test.conflist")); err != nil {
		t.Fatal(err)
	}
	e.writeConf(t, "20-new.conflist", e.conflist(t, "new"))

	// After a restart Berth knows only "kept".
	m2 := e.manager(t)
	if name, _ := m2.DefaultNetwork(); name != "new" {
		t.Fatalf("default network %q", name)
	}
	if err := m2.GC(ctx, []Pod{kept}); err != nil {
		t.Fatal(err)
	}
	got := e.reservations(t, "old")
	if len(got) != 1 {
		t.Fatalf("reservations after GC: %v", got)
	}
	for _, id := range got {
		if id != kept.ID {
			t.Fatalf("GC kept %s, not %s", id, kept.ID)
		}
	}
	atts, _ := m2.cni.GetCachedAttachments("")
	if len(atts) != 1 || atts[0].ContainerID != kept.ID {
		t.Fatalf("cache after GC: %d attachments", len(atts))
	}
	if err := m2.GC(ctx, []Pod{kept}); err != nil {
		t.Fatalf("second GC: %v", err)
	}
	if err := m2.Teardown(ctx, kept); err != nil {
		t.Fatal(err)
	}
	if got := e.reservations(t, "old"); len(got) != 0 {
		t.Fatalf("reservations after Teardown: %v", got)
	}
	for _, p := range []Pod{kept, leaked, oldNet} {
		if rules := natRules(t, p.ID); len(rules) != 0 {
			t.Fatalf("nat rules left for %s: %v", p.ID, rules)
		}
	}
}

func TestParallelPods(t *testing.T) {
	e := newEnv(t)
	e.writeConf(t, "10-test.conflist", e.conflist(t, "par"))
	m := e.manager(t)
	ctx := context.Background()
	const n = 20
	pods := make([]Pod, n)
	for i := range pods {
		pods[i] = e.newPod(t, fmt.Sprintf("par%d", i))
		pods[i].PortMappings = []PortMapping{{HostPort: int32(30000 + rand.IntN(5000)*4 + i%4), ContainerPort: 80}}
	}
	ips := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i, p := range pods {
		wg.Go(func() {
			// Two Setups of one pod at once: serialized, one ADD.
			var inner sync.WaitGroup
			got := make([]*Result, 2)
			for j := range got {
				inner.Go(func() {
					r, err := m.Setup(ctx, p)
					if err != nil {
						errs <- err
						return
					}
					got[j] = r
				})
			}
			inner.Wait()
			if got[0] != nil && got[1] != nil {
				if got[0].IPs[0] != got[1].IPs[0] {
					errs <- fmt.Errorf("pod %s got %v and %v", p.ID, got[0].IPs, got[1].IPs)
				}
				ips[i] = got[0].IPs[0]
			}
		})
	}
	wg.Wait()
	if got := e.reservations(t, "par"); len(got) != n {
		t.Errorf("%d reservations for %d pods", len(got), n)
	}
	seen := map[string]bool{}
	for _, ip := range ips {
		if seen[ip] {
			t.Errorf("address %s given twice", ip)
		}
		seen[ip] = true
	}
	for _, p := range pods {
		wg.Go(func() {
			if err := m.Teardown(ctx, p); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := e.reservations(t, "par"); len(got) != 0 {
		t.Fatalf("reservations after Teardown: %v", got)
	}
	if n := m.locks.Len(); n != 0 {
		t.Fatalf("%d pod locks left", n)
	}
}
