package server

import (
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/internal/inflight"
	"github.com/berth-dev/berth/internal/keylock"
	"github.com/berth-dev/berth/internal/lifecycle"
	"github.com/berth-dev/berth/internal/registrar"
	"github.com/berth-dev/berth/namespaces"
	"github.com/berth-dev/berth/oci"
	"github.com/berth-dev/berth/sandbox"
	"github.com/berth-dev/berth/specgen"
)

// unitServer is a Server on temp dirs with one runtime handler, "crun",
// that has run nothing: the runtime's files (pid files, exit files) are
// what a test writes. It needs no root and no crun, conmon or CNI.
func unitServer(t *testing.T) *Server {
	t.Helper()
	dir := t.TempDir()
	rt, err := oci.New(oci.Config{Name: "crun", Path: "/bin/true", Root: dir + "/root", ConmonPath: "/bin/true", RunDir: dir + "/run"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{}
	cfg.Runtime.StateDir, cfg.Runtime.RunDir = dir+"/state", dir+"/run"
	cfg.Runtime.DefaultHandler, cfg.Runtime.CgroupManager = "crun", oci.CgroupfsManager
	s := &Server{
		config:     cfg,
		log:        slog.New(slog.DiscardHandler),
		runtimes:   map[string]OCIRuntime{"crun": rt},
		events:     noEvents{},
		stats:      newStatsState(),
		sandboxes:  sandbox.NewStore(),
		podNames:   registrar.New(),
		podLocks:   keylock.New(),
		containers: container.NewStore(),
		ctrNames:   registrar.New(),
		ctrLocks:   keylock.New(),
		host:       specgen.ProbeHost(),
		// No pod of a unit test pins namespaces unless it asks the fakes.
		ns: &fakeNamespaces{j: newJournal(), dir: dir + "/run/ns"},
	}
	s.podRecords = s.sandboxRecords()
	s.ctrHooks = container.Hooks{Records: s.containerRecords()}
	s.podCreates = inflight.New("pod sandbox", time.Minute, func(string) {})
	s.ctrCreates = inflight.New("container", time.Minute, func(string) {})
	return s
}

// hostNetworkPod is the config of a kubelet-shaped pod: the host's
// network and a pid namespace per container, so no infra container.
func hostNetworkPod(name string) *runtime.PodSandboxConfig {
	return &runtime.PodSandboxConfig{
		Metadata: &runtime.PodSandboxMetadata{Name: name, Namespace: "default", Uid: name + "-uid"},
		Linux: &runtime.LinuxPodSandboxConfig{SecurityContext: &runtime.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtime.NamespaceOption{Network: runtime.NamespaceMode_NODE, Pid: runtime.NamespaceMode_CONTAINER},
		}},
	}
}

// addReadyPod adds a ready pod with id and cfg to s's store.
func addReadyPod(t *testing.T, s *Server, id string, cfg *runtime.PodSandboxConfig) *sandbox.Sandbox {
	t.Helper()
	sb := sandbox.New(id, sandbox.Name(cfg.GetMetadata()), cfg, "", "crun", filepath.Join(s.config.Runtime.RunDir, "pods", id), s.podRecords)
	sb.NS = &namespaces.Pinned{PodID: id} // the host's network; IPC and UTS unpinned in a unit test
	if err := sb.Update(func(st *sandbox.Status) error {
		st.State, st.Phase = sandbox.StateReady, lifecycle.Created
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s.sandboxes.Add(sb)
	return sb
}

// addContainer adds a container of pod in state to s's store.
func addContainer(t *testing.T, s *Server, id, pod string, state container.State) *container.Container {
	t.Helper()
	return addContainerWith(t, s, id, pod, &runtime.ContainerConfig{Metadata: &runtime.ContainerMetadata{Name: id}}, state)
}

// addContainerWith is addContainer for a container of config cfg.
func addContainerWith(t *testing.T, s *Server, id, pod string, cfg *runtime.ContainerConfig, state container.State) *container.Container {
	t.Helper()
	c := container.New(id, "name-"+id, pod, cfg, s.ctrHooks)
	c.Handler = "crun"
	if err := c.SetPhase(lifecycle.Created); err != nil {
		t.Fatal(err)
	}
	if state != container.StateCreated {
		if err := c.Started(time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if state == container.StateExited {
		if _, err := c.Exited(container.Exit{Code: 0, FinishedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	s.containers.Add(c)
	return c
}

// writeInitPid writes the pid file the runtime keeps for container id's
// init process, as conmon does.
func writeInitPid(t *testing.T, s *Server, id string, pid int) {
	t.Helper()
	dir := s.runtimeFor("crun").(*oci.Runtime).PersistDir(&oci.Container{ID: id})
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pidfile"), []byte(strconv.Itoa(pid)), 0o600); err != nil {
		t.Fatal(err)
	}
}
