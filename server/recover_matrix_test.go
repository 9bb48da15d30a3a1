package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/internal/lifecycle"
	"github.com/berth-dev/berth/sandbox"
)

// Recovery after a crash or restart is tested on every combination of what
// the record says, what the runtime says and what the monitor says. Each
// case builds its state through the CRI calls on a server with fakes,
// leaves the record and the node as the crash would have, starts a new
// server on the same state (restart) and recovers it.

// Monitor states: conmon runs; conmon is gone having written the exit
// file (code 7); conmon is gone without one (the node rebooted, or conmon
// was killed).
const (
	monitorAlive  = "conmon alive"
	monitorExited = "exit file"
	monitorLost   = "conmon gone, no exit file"
)

var monitorStates = []string{monitorAlive, monitorExited, monitorLost}

// setMonitor leaves container id's conmon in state m.
func setMonitor(f *fakes, id, m string) {
	code := int32(7)
	switch m {
	case monitorAlive:
		f.runtime.monitor(id, true, nil)
	case monitorExited:
		f.runtime.monitor(id, false, &code)
	case monitorLost:
		f.runtime.monitor(id, false, nil)
	}
}

// Container records: the phase of a call a crash interrupted, or a
// created container in each state, or one whose pod's record is gone.
const (
	recCreating = "creating"
	recCreated  = "created, state created"
	recRunning  = "created, state running"
	recExited   = "created, state exited (code 3)"
	recRemoving = "removing"
	recOrphan   = "created, pod record gone"
)

// containerWant is what a recovered container must be: gone (its removal
// finished), or in state with exit code.
type containerWant struct {
	gone  bool
	state container.State
	code  int32
}

// wantContainer is what recovery must make of a container whose record
// says rec, whose runtime says rt and whose monitor says m.
func wantContainer(rec, rt, m string) containerWant {
	switch rec {
	case recCreating, recRemoving, recOrphan:
		// An interrupted create is undone, an interrupted remove
		// finished, a container without its pod removed.
		return containerWant{gone: true}
	case recExited:
		return containerWant{state: container.StateExited, code: 3} // recorded exits stand
	}
	switch m {
	case monitorExited: // exited while Berth was down
		return containerWant{state: container.StateExited, code: 7}
	case monitorLost: // the exit code is unknowable
		return containerWant{state: container.StateExited, code: 255}
	}
	if rec == recRunning || rt == "running" || rt == "stopped" {
		// Running, or started by a start call the crash interrupted
		// before its record: a process was started (an exit it had is
		// conmon's to report).
		return containerWant{state: container.StateRunning}
	}
	return containerWant{state: container.StateCreated}
}

func TestRecoverContainerMatrix(t *testing.T) {
	for _, rec := range []string{recCreating, recCreated, recRunning, recExited, recRemoving, recOrphan} {
		for _, rt := range []string{"", "created", "running", "stopped"} {
			for _, m := range monitorStates {
				rtName := rt
				if rt == "" {
					rtName = "absent"
				}
				t.Run(fmt.Sprintf("%s/runtime %s/%s", rec, rtName, m), func(t *testing.T) {
					testRecoverContainer(t, rec, rt, m, wantContainer(rec, rt, m))
				})
			}
		}
	}
}

func testRecoverContainer(t *testing.T, rec, rt, m string, want containerWant) {
	ctx := context.Background()
	s, f := fakeServer(t)
	podResp, err := s.RunPodSandbox(ctx, &runtime.RunPodSandboxRequest{Config: netPod("a")})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := s.sandboxes.Get(podResp.GetPodSandboxId())
	if err != nil {
		t.Fatal(err)
	}
	id, err := createWithFakes(t, s, sb, "app")
	if err != nil {
		t.Fatal(err)
	}
	if rec == recRunning || rec == recExited {
		if _, err := s.StartContainer(ctx, &runtime.StartContainerRequest{ContainerId: id}); err != nil {
			t.Fatal(err)
		}
	}
	if rec == recExited {
		code := int32(3)
		f.runtime.monitor(id, false, &code)
		c, _ := s.containers.Get(id)
		s.checkExit(c)
		if c.State() != container.StateExited {
			t.Fatalf("setup: container %s, want exited", c.State())
		}
	}
	ctrRecord := filepath.Join(string(s.containerRecords()), id+".json")
	switch rec {
	case recCreating:
		setField(t, ctrRecord, "phase", lifecycle.Creating)
	case recRemoving:
		setField(t, ctrRecord, "phase", lifecycle.Removing)
	case recOrphan:
		if err := os.Remove(filepath.Join(string(s.sandboxRecords()), sb.ID+".json")); err != nil {
			t.Fatal(err)
		}
	}
	// The node as the crash left it.
	f.runtime.set(id, rt)
	setMonitor(f, id, m)
	f.j.reset()

	s2 := restart(t, s, f)
	if err := s2.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := s2.containers.Get(id)
	full := container.Name(volumeConfig("app").GetMetadata(), sb.Config.GetMetadata())
	_, recErr := os.Stat(ctrRecord)
	if want.gone {
		if err == nil {
			t.Fatalf("container left in state %s; want it removed", c.State())
		}
		if !os.IsNotExist(recErr) {
			t.Errorf("container record left: %v", recErr)
		}
		if _, ok := s2.ctrNames.Get(full); ok {
			t.Errorf("name %s left reserved", full)
		}
		journal := f.j.snapshot()
		for _, e := range []string{"runtime delete " + id, "rootfs remove " + id} {
			if !slices.Contains(journal, e) {
				t.Errorf("recovery did not %q; journal %q", e, journal)
			}
		}
		if rec == recOrphan {
			if pins, _ := f.ns.List(); slices.Contains(pins, sb.ID) {
				t.Errorf("the recordless pod's pins are left")
			}
		}
		return
	}
	if err != nil {
		t.Fatalf("container not recovered: %v", err)
	}
	if got, ok := s2.ctrNames.Get(full); !ok || got != id {
		t.Errorf("name %s reserved for %q, want %s", full, got, id)
	}
	st := c.Status()
	if st.State != want.state || (want.state == container.StateExited && st.Exit.Code != want.code) {
		t.Fatalf("recovered %s (exit %d), want %s (exit %d)", st.State, st.Exit.Code, want.state, want.code)
	}
	// Only a container whose conmon vanished before a start may never
	// have run.
	neverStarted := want.state == container.StateCreated || (rec == recCreated && m == monitorLost)
	if !neverStarted && st.StartedAt.IsZero() {
		t.Errorf("recovered %s with no start time", st.State)
	}
	if want.state == container.StateExited && st.Exit.Reason == "" {
		t.Errorf("exit recorded with no reason: %+v", st.Exit)
	}
	// What was recovered is what the record now says: a second restart
	// comes back the same.
	s3 := restart(t, s2, f)
	setMonitor(f, id, monitorAlive)
	if err := s3.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if c3, err := s3.containers.Get(id); err != nil || c3.State() != st.State || c3.Status().Exit.Code != st.Exit.Code {
		t.Errorf("after a second restart: %v, %v; want %s (exit %d)", c3.Status(), err, st.State, st.Exit.Code)
	}
}

// Pod records: the phase of a call a crash interrupted, or a created pod
// ready or stopped.
const (
	podCreating = "creating"
	podReady    = "created, ready"
	podNotReady = "created, not ready"
	podRemoving = "removing"
)

// Infra container states.
const (
	infraNone    = "no infra"
	infraRunning = "infra running"
	infraExited  = "infra exited"
	infraLost    = "infra's conmon gone"
)

// podWant is what a recovered pod must be.
type podWant struct {
	gone         bool
	state        sandbox.State
	networkSetUp bool
}

// wantPod is what recovery must make of a pod whose record says rec,
// whose pins are there or not and whose infra container is in infra.
func wantPod(rec string, pinned bool, infra string) podWant {
	switch rec {
	case podCreating, podRemoving:
		return podWant{gone: true}
	case podNotReady:
		return podWant{state: sandbox.StateNotReady}
	}
	alive := pinned && (infra == infraNone || infra == infraRunning)
	if alive {
		return podWant{state: sandbox.StateReady, networkSetUp: true}
	}
	// Not ready; its network stays set up for the stop to tear down, unless
	// the netns went with the pins.
	return podWant{state: sandbox.StateNotReady, networkSetUp: pinned}
}

func TestRecoverPodMatrix(t *testing.T) {
	for _, rec := range []string{podCreating, podReady, podNotReady, podRemoving} {
		for _, pinned := range []bool{true, false} {
			for _, infra := range []string{infraNone, infraRunning, infraExited, infraLost} {
				pins := "pins mounted"
				if !pinned {
					pins = "pins gone"
				}
				t.Run(fmt.Sprintf("%s/%s/%s", rec, pins, infra), func(t *testing.T) {
					testRecoverPod(t, rec, pinned, infra, wantPod(rec, pinned, infra))
				})
			}
		}
	}
}

func testRecoverPod(t *testing.T, rec string, pinned bool, infra string, want podWant) {
	ctx := context.Background()
	s, f := fakeServer(t)
	s.config.Runtime.DropInfra = infra == infraNone
	resp, err := s.RunPodSandbox(ctx, &runtime.RunPodSandboxRequest{Config: netPod("a")})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := s.sandboxes.Get(resp.GetPodSandboxId())
	if err != nil {
		t.Fatal(err)
	}
	if (sb.InfraID != "") != (infra != infraNone) {
		t.Fatalf("setup: infra id %q with %s", sb.InfraID, infra)
	}
	if rec == podNotReady {
		if _, err := s.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: sb.ID}); err != nil {
			t.Fatal(err)
		}
	}
	podRecord := filepath.Join(string(s.sandboxRecords()), sb.ID+".json")
	switch rec {
	case podCreating:
		setField(t, podRecord, "phase", lifecycle.Creating)
		setField(t, podRecord, "state", sandbox.StateNotReady)
	case podRemoving:
		setField(t, podRecord, "phase", lifecycle.Removing)
	}
	// The node as the crash left it.
	if !pinned {
		for _, p := range []string{sb.NS.Net, sb.NS.IPC, sb.NS.UTS} {
			os.Remove(p)
		}
	}
	code := int32(0)
	switch infra {
	case infraRunning:
		f.runtime.set(sb.InfraID, "running")
		f.runtime.monitor(sb.InfraID, true, nil)
	case infraExited:
		f.runtime.set(sb.InfraID, "stopped")
		f.runtime.monitor(sb.InfraID, false, &code)
	case infraLost:
		f.runtime.set(sb.InfraID, "running")
		f.runtime.monitor(sb.InfraID, false, nil)
	}
	f.j.reset()

	s2 := restart(t, s, f)
	if err := s2.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := s2.sandboxes.Get(sb.ID)
	name := sandbox.Name(netPod("a").GetMetadata())
	if want.gone {
		if err == nil {
			t.Fatalf("pod left %s; want it removed", got.State())
		}
		if _, err := os.Stat(podRecord); !os.IsNotExist(err) {
			t.Errorf("pod record left: %v", err)
		}
		if _, ok := s2.podNames.Get(name); ok {
			t.Errorf("pod name %s left reserved", name)
		}
		if pins, _ := f.ns.List(); slices.Contains(pins, sb.ID) {
			t.Errorf("pins left: %v", pins)
		}
		if _, err := os.Stat(sb.Dir); !os.IsNotExist(err) {
			t.Errorf("pod dir left: %v", err)
		}
		journal := f.j.snapshot()
		musts := []string{"network teardown " + sb.ID}
		if infra != infraNone {
			musts = append(musts, "runtime delete "+sb.InfraID, "rootfs remove "+sb.InfraID)
		}
		for _, e := range musts {
			if !slices.Contains(journal, e) {
				t.Errorf("recovery did not %q; journal %q", e, journal)
			}
		}
		return
	}
	if err != nil {
		t.Fatalf("pod not recovered: %v", err)
	}
	if id, ok := s2.podNames.Get(name); !ok || id != sb.ID {
		t.Errorf("pod name %s reserved for %q, want %s", name, id, sb.ID)
	}
	if got.State() != want.state || got.NetworkSetUp() != want.networkSetUp {
		t.Errorf("recovered %s, network set up %v; want %s, %v", got.State(), got.NetworkSetUp(), want.state, want.networkSetUp)
	}
	if want.state == sandbox.StateReady && !slices.Contains(f.j.snapshot(), "network gc -") {
		t.Errorf("no CNI garbage collection after recovery")
	}
	// A pod recovered not ready stops and is removed, giving back what it
	// holds: the kubelet's next steps.
	if _, err := s2.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: sb.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: sb.ID}); err != nil {
		t.Fatal(err)
	}
	if pins, _ := f.ns.List(); slices.Contains(pins, sb.ID) {
		t.Errorf("pins left after remove: %v", pins)
	}
	if _, err := os.Stat(podRecord); !os.IsNotExist(err) {
		t.Errorf("pod record left after remove: %v", err)
	}
}
