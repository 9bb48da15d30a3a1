package server

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/events"
	"github.com/berth-dev/berth/version"
)

// statusServer is a fake-backed server whose configuration names runtime
// and conmon binaries that exist.
func statusServer(t *testing.T) (*Server, *fakes) {
	t.Helper()
	s, f := fakeServer(t)
	s.configPath = "/etc/berth/berth.toml"
	s.config.Runtime.Handlers = map[string]config.RuntimeHandler{"crun": {Path: "/bin/true"}}
	s.config.Runtime.Conmon = "/bin/true"
	return s, f
}

func condition(st *runtime.StatusResponse, typ string) *runtime.RuntimeCondition {
	for _, c := range st.GetStatus().GetConditions() {
		if c.GetType() == typ {
			return c
		}
	}
	return nil
}

func TestStatusConditions(t *testing.T) {
	for _, tc := range []struct {
		name     string
		setup    func(s *Server, f *fakes)
		runtime  string // the runtime condition's reason, "" when ready
		network  string // the network condition's reason, "" when ready
		mentions string // a failed condition's message names it
	}{
		{name: "all ready"},
		{name: "default handler not configured", setup: func(s *Server, _ *fakes) { s.config.Runtime.DefaultHandler = "kata" },
			runtime: "RuntimeHandlerMissing", mentions: `"kata"`},
		{name: "runtime binary missing", setup: func(s *Server, _ *fakes) {
			s.config.Runtime.Handlers["crun"] = config.RuntimeHandler{Path: "/nonexistent/crun"}
		}, runtime: "RuntimeBinaryMissing", mentions: "runtime handler crun: stat /nonexistent/crun"},
		{name: "conmon missing", setup: func(s *Server, _ *fakes) { s.config.Runtime.Conmon = "/nonexistent/conmon" },
			runtime: "RuntimeBinaryMissing", mentions: "conmon: stat /nonexistent/conmon"},
		{name: "network not ready", setup: func(_ *Server, f *fakes) { f.j.failAt("network status", 1) },
			network: "NetworkPluginNotReady", mentions: errInjected.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, f := statusServer(t)
			if tc.setup != nil {
				tc.setup(s, f)
			}
			resp, err := s.Status(context.Background(), &runtime.StatusRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(resp.GetStatus().GetConditions()); n != 2 {
				t.Fatalf("%d conditions, want RuntimeReady and NetworkReady", n)
			}
			for _, want := range []struct{ typ, reason string }{{runtime.RuntimeReady, tc.runtime}, {runtime.NetworkReady, tc.network}} {
				c := condition(resp, want.typ)
				if c == nil {
					t.Fatalf("no %s condition", want.typ)
				}
				if c.GetStatus() != (want.reason == "") || c.GetReason() != want.reason {
					t.Errorf("%s = %v (%s: %s), want reason %q", want.typ, c.GetStatus(), c.GetReason(), c.GetMessage(), want.reason)
				}
				if want.reason != "" && !strings.Contains(c.GetMessage(), tc.mentions) {
					t.Errorf("%s message %q does not mention %q", want.typ, c.GetMessage(), tc.mentions)
				}
			}
			if resp.GetInfo() != nil {
				t.Errorf("info without verbose: %v", resp.GetInfo())
			}
		})
	}
}

// The conditions are derived on every call: a network that comes up is
// reported ready on the next one.
func TestStatusIsNeverCached(t *testing.T) {
	s, f := statusServer(t)
	f.j.failAt("network status", 1)
	for i, want := range []bool{false, true} {
		resp, err := s.Status(context.Background(), &runtime.StatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if got := condition(resp, runtime.NetworkReady).GetStatus(); got != want {
			t.Errorf("call %d: NetworkReady = %v, want %v", i+1, got, want)
		}
	}
}

func TestStatusVerboseAndHandlers(t *testing.T) {
	s, f := statusServer(t)
	if !s.AddRuntime("runc", newScriptRuntime(f.runtime)) {
		t.Fatal("AddRuntime of a new name refused")
	}
	resp, err := s.Status(context.Background(), &runtime.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetInfo()["config"] != "/etc/berth/berth.toml" {
		t.Errorf("info = %v, want the config path", resp.GetInfo())
	}
	var names []string
	for _, h := range resp.GetRuntimeHandlers() {
		names = append(names, h.GetName())
		if h.GetFeatures() == nil || h.GetFeatures().GetRecursiveReadOnlyMounts() != supportsRRO() {
			t.Errorf("handler %q features = %v", h.GetName(), h.GetFeatures())
		}
	}
	if want := []string{"", "crun", "runc"}; !slices.Equal(names, want) {
		t.Errorf("runtime handlers = %q, want %q", names, want)
	}
	if !resp.GetFeatures().GetSupplementalGroupsPolicy() {
		t.Error("supplemental groups policy not reported")
	}
}

// The verbose status says where profiles are served, and nothing when
// they are not.
func TestStatusSaysWhereProfilingIs(t *testing.T) {
	for _, tc := range []struct {
		socket, metrics string
		onMetrics       bool
		want            string
	}{
		{want: ""},
		{metrics: "127.0.0.1:9090", want: ""},
		{socket: "/run/berth/pprof.sock", want: "unix:///run/berth/pprof.sock"},
		{socket: "/run/berth/pprof.sock", metrics: "127.0.0.1:9090", onMetrics: true,
			want: "unix:///run/berth/pprof.sock, http://127.0.0.1:9090/debug/pprof/"},
	} {
		s, _ := statusServer(t)
		s.config.API.ProfilingSocket, s.config.API.MetricsAddress, s.config.API.ProfilingOnMetrics = tc.socket, tc.metrics, tc.onMetrics
		resp, err := s.Status(context.Background(), &runtime.StatusRequest{Verbose: true})
		if where, ok := resp.GetInfo()["profiling"]; err != nil || !ok || where != tc.want {
			t.Errorf("%+v: profiling %q (present %v), %v; want %q", tc, where, ok, err, tc.want)
		}
	}
}

func TestRuntimeConfigCgroupDriver(t *testing.T) {
	for _, tc := range []struct {
		manager string
		want    runtime.CgroupDriver
	}{
		{"cgroupfs", runtime.CgroupDriver_CGROUPFS},
		{"systemd", runtime.CgroupDriver_SYSTEMD},
		{"", runtime.CgroupDriver_CGROUPFS}, // never the enum's zero value by accident
	} {
		s := unitServer(t)
		s.config.Runtime.CgroupManager = tc.manager
		resp, err := s.RuntimeConfig(context.Background(), &runtime.RuntimeConfigRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.GetLinux().GetCgroupDriver(); got != tc.want || resp.GetLinux() == nil {
			t.Errorf("cgroup manager %q: driver %s, want %s", tc.manager, got, tc.want)
		}
	}
}

func TestVersion(t *testing.T) {
	s := unitServer(t)
	resp, err := s.Version(context.Background(), &runtime.VersionRequest{Version: "9.9.9"}) // the request's version is ignored
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetVersion() != "0.1.0" || resp.GetRuntimeName() != version.Name || resp.GetRuntimeName() != "berth" ||
		resp.GetRuntimeVersion() != version.Version || resp.GetRuntimeApiVersion() != "v1" {
		t.Errorf("version = %v", resp)
	}
}

func TestRuntimeHandlers(t *testing.T) {
	s, f := fakeServer(t)
	if rt := s.runtimeFor("kata"); rt != nil {
		t.Errorf("runtimeFor(unknown) = %v, want a nil interface", rt)
	}
	runc, other := newScriptRuntime(f.runtime), newScriptRuntime(f.runtime)
	for _, tc := range []struct {
		name string
		rt   OCIRuntime
		want bool
	}{
		{"runc", runc, true},
		{"kata", other, true},
		{"runc", other, false}, // taken: running pods keep theirs
		{"crun", other, false},
	} {
		if got := s.AddRuntime(tc.name, tc.rt); got != tc.want {
			t.Errorf("AddRuntime(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
	if s.runtimeFor("runc") != runc || s.runtimeFor("crun") != f.runtime || s.runtimeFor("kata") != other {
		t.Error("a handler was replaced or lost")
	}
	if got, want := s.handlerNames(), []string{"crun", "kata", "runc"}; !slices.Equal(got, want) {
		t.Errorf("handlerNames = %v, want %v", got, want)
	}
}

// New wires the server as the daemon uses it: its handlers, and the
// container events to the publisher it is given.
func TestNewWiresDeps(t *testing.T) {
	dir := t.TempDir()
	cfg := &config.Config{}
	cfg.Runtime.StateDir, cfg.Runtime.RunDir = filepath.Join(dir, "state"), filepath.Join(dir, "run")
	cfg.Runtime.DefaultHandler, cfg.Runtime.CgroupManager = "crun", "systemd"
	cfg.Runtime.Handlers = map[string]config.RuntimeHandler{"crun": {Path: "/bin/true"}}
	cfg.Runtime.Conmon = "/bin/true"
	_, f := fakeServer(t)
	rt := f.runtime
	deps := Deps{
		Images:     f.images,
		Rootfs:     f.rootfs,
		Network:    f.network,
		Namespaces: f.ns,
		Runtimes:   map[string]OCIRuntime{"crun": rt},
	}

	t.Run("with events", func(t *testing.T) {
		b := events.NewBroker(8)
		deps := deps
		deps.Events = b
		s := New(cfg, "/etc/berth.toml", deps, slog.New(slog.DiscardHandler))
		if s.runtimeFor("crun") != rt || s.host == nil || s.stats == nil {
			t.Fatalf("server not wired: runtime %v, host %v, stats %v", s.runtimeFor("crun"), s.host, s.stats)
		}
		st, err := s.Status(context.Background(), &runtime.StatusRequest{Verbose: true})
		if err != nil || !condition(st, runtime.RuntimeReady).GetStatus() || !condition(st, runtime.NetworkReady).GetStatus() ||
			st.GetInfo()["config"] != "/etc/berth.toml" {
			t.Errorf("Status of a new server = %v, %v", st, err)
		}
		if rc, _ := s.RuntimeConfig(context.Background(), &runtime.RuntimeConfigRequest{}); rc.GetLinux().GetCgroupDriver() != runtime.CgroupDriver_SYSTEMD {
			t.Errorf("RuntimeConfig = %v", rc)
		}
		sub := b.Subscribe()
		defer sub.Close()
		addReadyPod(t, s, "pod-new", hostNetworkPod("new"))
		addContainer(t, s, "ctr-new", "pod-new", container.StateRunning)
		select {
		case ev := <-sub.Events():
			if ev.GetContainerId() != "ctr-new" || ev.GetContainerEventType() != runtime.ContainerEventType_CONTAINER_STARTED_EVENT {
				t.Errorf("event = %v, want ctr-new STARTED", ev)
			}
		default:
			t.Error("a container's start published no event")
		}
		resp, err := s.ListContainers(context.Background(), &runtime.ListContainersRequest{})
		if err != nil || len(resp.GetContainers()) != 1 {
			t.Errorf("ListContainers = %v, %v", resp, err)
		}
	})
	t.Run("without events", func(t *testing.T) {
		s := New(cfg, "", deps, slog.New(slog.DiscardHandler))
		if _, ok := s.events.(noEvents); !ok {
			t.Errorf("events = %T, want noEvents", s.events)
		}
		err := s.GetContainerEvents(&runtime.GetEventsRequest{}, newEventStream(context.Background()))
		wantCode(t, err, codes.Unimplemented, "publishes none")
	})
}

// A creation nobody collected is removed; one that is gone already, or
// cannot be removed, is left as it is.
func TestRemoveAbandoned(t *testing.T) {
	t.Run("container", func(t *testing.T) {
		s, f := fakeServer(t)
		addContainer(t, s, "kept", "pod", container.StateCreated)
		addContainer(t, s, "left", "pod", container.StateCreated)
		s.removeAbandonedContainer("gone")
		f.j.failAt("runtime delete", 1)
		s.removeAbandonedContainer("kept")
		if _, err := s.containers.Get("kept"); err != nil || !f.j.hasFired("runtime delete") {
			t.Errorf("a container whose removal failed is gone: %v", err)
		}
		s.removeAbandonedContainer("left")
		if _, err := s.containers.Get("left"); err == nil {
			t.Error("abandoned container still in the store")
		}
		if !slices.Contains(f.j.snapshot(), "rootfs remove left") {
			t.Errorf("journal %v: the abandoned container's rootfs was not removed", f.j.snapshot())
		}
	})
	t.Run("pod", func(t *testing.T) {
		s, f := fakeServer(t)
		addReadyPod(t, s, "pod-left", hostNetworkPod("left"))
		addContainer(t, s, "ctr-left", "pod-left", container.StateCreated)
		s.removeAbandonedPod("gone")
		f.j.failAt("runtime delete", 1)
		s.removeAbandonedPod("pod-left")
		if _, err := s.sandboxes.Get("pod-left"); err != nil || !f.j.hasFired("runtime delete") {
			t.Errorf("a pod whose removal failed is gone: %v", err)
		}
		s.removeAbandonedPod("pod-left")
		if _, err := s.sandboxes.Get("pod-left"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("abandoned pod still in the store: %v", err)
		}
		if _, err := s.containers.Get("ctr-left"); err == nil {
			t.Error("the abandoned pod's container is still in the store")
		}
	})
}

// Releases whose major or minor is no number are never taken as recent
// enough for recursive read-only mounts.
func TestKernelAtLeastUnparsable(t *testing.T) {
	for _, release := range []string{"x.12.0", "6.y", "6", ""} {
		if kernelAtLeast(release, 5, 12) {
			t.Errorf("kernelAtLeast(%q, 5, 12) = true", release)
		}
	}
	if !kernelAtLeast("6.0", 5, 12) || !kernelAtLeast("5.12", 5, 12) || kernelAtLeast("5.11", 5, 12) {
		t.Error("kernelAtLeast misorders releases")
	}
}
