package server

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/internal/checkpoint"
	"github.com/berth-dev/berth/internal/lifecycle"
	"github.com/berth-dev/berth/namespaces"
	"github.com/berth-dev/berth/network"
	"github.com/berth-dev/berth/oci"
	"github.com/berth-dev/berth/sandbox"
)

// Recover runs once at start-up, before the socket serves. It restores every
// sandbox and container from its record, re-deriving what runs from conmon
// and the runtime; it undoes creations and finishes removals a crash
// interrupted; and it releases leftovers no record describes (storage
// containers, pinned namespaces, pod dirs, conmons, CNI attachments).
func (s *Server) Recover(ctx context.Context) error {
	pods, bad, err := checkpoint.Load[sandbox.Record](s.sandboxRecords())
	if err != nil {
		return err
	}
	for id, err := range bad {
		s.log.Error("unreadable pod record: its pod is treated as a leftover", "pod", id, "error", err)
		s.podRecords.Delete(id)
	}
	ctrs, bad, err := checkpoint.Load[container.Record](s.containerRecords())
	if err != nil {
		return err
	}
	for id, err := range bad {
		s.log.Error("unreadable container record: its container is treated as a leftover", "container", id, "error", err)
		s.ctrHooks.Records.Delete(id)
	}

	for _, rec := range pods {
		s.recoverSandbox(ctx, rec)
	}
	for _, rec := range ctrs {
		s.recoverContainer(ctx, rec)
	}
	// Incomplete pods are removed after their containers were seen to.
	for _, sb := range s.sandboxes.List() {
		if sb.Phase() != lifecycle.Created {
			s.log.Info("finishing an interrupted pod operation", "pod", sb.ID, "phase", sb.Phase())
			if err := s.removePodSandbox(ctx, sb); err != nil {
				s.log.Error("remove interrupted pod", "pod", sb.ID, "error", err)
			}
		}
	}
	s.removeLeftovers(ctx)

	var keep []network.Pod
	for _, sb := range s.sandboxes.List() {
		if sb.NetworkSetUp() {
			keep = append(keep, networkPod(sb))
		}
	}
	if err := s.network.GC(ctx, keep); err != nil {
		// A failed GC leaks addresses but must not keep the node's
		// runtime down.
		s.log.Warn("CNI garbage collection failed", "error", err)
	}
	s.log.Info("state recovered", "pods", len(s.sandboxes.List()), "containers", len(s.containers.List()))
	return nil
}

// recoverSandbox restores one pod. A pod whose pinned namespaces are gone
// (the node rebooted: the run dir is a tmpfs) is NotReady with no network.
func (s *Server) recoverSandbox(ctx context.Context, rec *sandbox.Record) {
	sb, err := sandbox.FromRecord(rec, s.podRecords)
	if err != nil {
		s.log.Error("restore pod", "pod", rec.ID, "error", err)
		return
	}
	if s.runtimeFor(sb.Handler) == nil {
		s.log.Warn("pod's runtime handler is no longer configured; using the default", "pod", sb.ID, "handler", sb.Handler)
		sb.Handler = s.config.Runtime.DefaultHandler
	}
	if sb.Phase() == lifecycle.Creating {
		// Whatever a crash left may exist whether or not the record says
		// so yet: the undo must try every step.
		sb.InfraID = sb.ID
		if !sb.HostNetwork() {
			sb.NS.Net = s.ns.PinPath(namespaces.KindNet, sb.ID)
			if err := sb.SetNetwork(true, nil); err != nil {
				s.log.Error("restore pod", "pod", sb.ID, "error", err)
			}
		}
	}
	if sb.Phase() == lifecycle.Created && sb.InfraID != "" && sb.InfraPid == 0 {
		s.recoverInfraPid(sb)
	}
	if sb.Phase() == lifecycle.Created && sb.State() == sandbox.StateReady && !s.sandboxAlive(sb) {
		s.log.Warn("pod's namespaces or infra process are gone; it is not ready", "pod", sb.ID)
		netGone := sb.NS.Net != "" && !s.ns.IsPinned(sb.NS.Net)
		if err := sb.Update(func(st *sandbox.Status) error {
			st.State = sandbox.StateNotReady
			st.NetworkSetUp = st.NetworkSetUp && !netGone
			return nil
		}); err != nil {
			s.log.Error("restore pod", "pod", sb.ID, "error", err)
		}
	}
	if err := s.podNames.Reserve(sb.Name, sb.ID); err != nil {
		s.log.Error("restore pod name", "pod", sb.ID, "error", err)
	}
	s.sandboxes.Add(sb)
}

// recoverInfraPid fills in the infra pid of a pod whose record an older
// Berth wrote, before the pid was kept on the pod: it is read once from
// conmon's pid file and saved with the record, so that no later start-up
// or CreateContainer needs the file. Not yet added to the store, the pod
// may still have its fields written.
func (s *Server) recoverInfraPid(sb *sandbox.Sandbox) {
	pid, err := s.runtimeFor(sb.Handler).InitPid(infraContainer(sb))
	if err != nil {
		s.log.Warn("pod's infra pid is unknown", "pod", sb.ID, "error", err)
		return
	}
	sb.InfraPid = pid
	if err := sb.Checkpoint(); err != nil {
		s.log.Error("save pod's infra pid", "pod", sb.ID, "error", err)
	}
}

// sandboxAlive tells whether a ready pod survived: its pins are mounted and
// its infra process (if any) runs.
func (s *Server) sandboxAlive(sb *sandbox.Sandbox) bool {
	for _, p := range []string{sb.NS.Net, sb.NS.IPC, sb.NS.UTS} {
		if p != "" && !s.ns.IsPinned(p) {
			return false
		}
	}
	if sb.InfraID != "" {
		rt := s.runtimeFor(sb.Handler)
		if _, exited, _ := rt.Exit(infraContainer(sb)); exited || !rt.IsConmonAlive(infraContainer(sb)) {
			return false
		}
	}
	return true
}

// recoverContainer restores one container and re-derives its state.
func (s *Server) recoverContainer(ctx context.Context, rec *container.Record) {
	c, err := container.FromRecord(rec, s.ctrHooks)
	if err != nil {
		s.log.Error("restore container", "container", rec.ID, "error", err)
		return
	}
	if s.runtimeFor(c.Handler) == nil {
		c.Handler = s.config.Runtime.DefaultHandler
	}
	if err := s.ctrNames.Reserve(c.Name, c.ID); err != nil {
		s.log.Error("restore container name", "container", c.ID, "error", err)
	}
	s.containers.Add(c)
	if _, err := s.sandboxes.Get(c.PodID); err != nil || c.Status().Phase != lifecycle.Created {
		// Interrupted create or remove, or a pod that is gone: finish it.
		s.log.Info("removing container an interrupted operation left", "container", c.ID, "phase", c.Status().Phase)
		if err := s.removeContainer(ctx, c); err != nil {
			s.log.Error("remove interrupted container", "container", c.ID, "error", err)
		}
		return
	}
	s.reconcileContainer(ctx, c)
}

// reconcileContainer brings a restored container's state up to date with
// what conmon and the runtime say. The exit watcher may run concurrently
// for an exit happening now; the container keeps the first report.
func (s *Server) reconcileContainer(ctx context.Context, c *container.Container) {
	if c.State() == container.StateExited {
		return
	}
	rt, oc := s.runtimeFor(c.Handler), s.ociContainer(c)
	// conmon writes the exit file before it exits, so once conmon is seen
	// gone, a missing exit file means the exit was lost, not that it is
	// still to come. Asked the other way round, an exit between the two
	// looks would be taken for a lost container.
	conmonAlive := rt.IsConmonAlive(oc)
	if c.State() == container.StateCreated {
		// conmon writes an exit file only for a process that ran: a start
		// call the crash interrupted got as far as the runtime's start.
		// When is unknown; no later than the exit.
		if st, exited, err := rt.Exit(oc); err == nil && exited {
			s.log.Info("container was started and exited while a restart interrupted its start call", "container", c.ID)
			if err := c.Started(st.Finished); err != nil {
				s.log.Error("record start of container", "container", c.ID, "error", err)
			}
		}
	}
	s.checkExit(c) // an exit while Berth was down is in conmon's exit file
	if c.State() == container.StateExited {
		return
	}
	if !conmonAlive {
		// No conmon and no exit file: the node rebooted (the exit dir is a
		// tmpfs) or conmon was killed. The exit code is unknowable.
		s.recordExit(c, container.Exit{
			Code: 255, FinishedAt: time.Now(), Reason: "Error",
			Message: "container state lost: conmon is gone (node reboot or conmon killed)",
		})
		return
	}
	if c.State() != container.StateCreated {
		return
	}
	// A crash between the runtime's start and its record leaves a
	// container that runs while its record says created.
	st, err := rt.State(ctx, oc)
	if err != nil || st.Status == "created" {
		return
	}
	s.log.Info("container was started before a restart interrupted its start call", "container", c.ID, "runtime state", st.Status)
	if err := c.Started(time.Now()); err != nil {
		s.log.Error("record start of container", "container", c.ID, "error", err)
	}
	s.checkExit(c)
}

// removeLeftovers releases what no record describes: storage containers
// Berth made, pinned namespaces, pod dirs and conmon dirs of unknown ids.
func (s *Server) removeLeftovers(ctx context.Context) {
	known := map[string]bool{}
	for _, sb := range s.sandboxes.List() {
		known[sb.ID] = true
	}
	for _, c := range s.containers.List() {
		known[c.ID] = true
	}
	if rootfs, err := s.rootfs.ListRootfs(); err == nil {
		for _, r := range rootfs {
			if r.Owner == nil || known[r.ID] {
				continue // another tool's container, or one of ours
			}
			s.log.Info("removing leftover storage container", "id", r.ID, "names", r.Names)
			s.removeLeftoverContainer(ctx, r.ID)
		}
	}
	if ids, err := s.ns.List(); err == nil {
		for _, id := range ids {
			if !known[id] {
				s.log.Info("removing leftover pinned namespaces", "pod", id)
				if err := s.ns.Remove(id); err != nil {
					s.log.Warn("remove leftover namespaces", "pod", id, "error", err)
				}
			}
		}
	}
	podsDir := filepath.Join(s.config.Runtime.RunDir, "pods")
	if entries, err := os.ReadDir(podsDir); err == nil {
		for _, e := range entries {
			if !known[e.Name()] {
				sb := &sandbox.Sandbox{ID: e.Name(), Dir: filepath.Join(podsDir, e.Name())}
				if err := s.ns.UnmountShm(sb.ShmPath()); err != nil {
					s.log.Warn("unmount leftover shm", "pod", sb.ID, "error", err)
					continue // removing the dir would reach into the mount
				}
				os.RemoveAll(sb.Dir)
			}
		}
	}
	ctrDir := filepath.Join(s.config.Runtime.RunDir, "containers")
	if entries, err := os.ReadDir(ctrDir); err == nil {
		for _, e := range entries {
			if !known[e.Name()] {
				s.log.Info("removing leftover conmon of an unknown container", "id", e.Name())
				s.removeLeftoverContainer(ctx, e.Name())
			}
		}
	}
}

// removeLeftoverContainer deletes an unknown container from every runtime
// and from storage; each step is a no-op where there is nothing.
func (s *Server) removeLeftoverContainer(ctx context.Context, id string) {
	bundle, _ := s.rootfs.RootfsRunDir(id)
	for _, name := range s.handlerNames() {
		if err := s.runtimeFor(name).DeleteContainer(ctx, &oci.Container{ID: id, BundleDir: bundle}); err != nil {
			s.log.Warn("delete leftover container", "id", id, "handler", name, "error", err)
		}
	}
	if err := s.rootfs.RemoveRootfs(id); err != nil {
		s.log.Warn("remove leftover rootfs", "id", id, "error", err)
	}
	os.RemoveAll(filepath.Join(s.config.Runtime.StateDir, "volumes", id))
}
