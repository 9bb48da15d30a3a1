package sandbox

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/checkpoint"
	"github.com/berth-dev/berth/internal/lifecycle"
)

func newTest(t *testing.T) (*Sandbox, checkpoint.Dir) {
	t.Helper()
	dir := checkpoint.Dir(t.TempDir())
	return New("pod1", "k8s_POD_a", &runtime.PodSandboxConfig{}, "", "crun", t.TempDir(), dir), dir
}

func ready(sb *Sandbox) error {
	return sb.Update(func(st *Status) error { st.State, st.Phase = StateReady, lifecycle.Created; return nil })
}

func TestSandboxTransitions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps func(sb *Sandbox) error
		want  State
		err   error
	}{
		{"created ready", ready, StateReady, nil},
		{"stop", func(sb *Sandbox) error { return errors.Join(ready(sb), sb.SetState(StateNotReady)) }, StateNotReady, nil},
		{"ready again after stop", func(sb *Sandbox) error {
			return errors.Join(ready(sb), sb.SetState(StateNotReady), sb.SetState(StateReady))
		}, StateNotReady, errdefs.ErrFailedPrecondition},
		{"removed takes no update", func(sb *Sandbox) error {
			return errors.Join(sb.SetPhase(lifecycle.Removed), sb.SetNetwork(true, nil))
		}, StateNotReady, errdefs.ErrFailedPrecondition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb, _ := newTest(t)
			err := tc.steps(sb)
			if tc.err == nil && err != nil || tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if got := sb.State(); got != tc.want {
				t.Errorf("state = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestSandboxRecordFollowsUpdates(t *testing.T) {
	sb, dir := newTest(t)
	if err := errors.Join(ready(sb), sb.SetNetwork(true, []string{"10.88.0.2"})); err != nil {
		t.Fatal(err)
	}
	recs, _, err := checkpoint.Load[Record](dir)
	if err != nil {
		t.Fatal(err)
	}
	back, err := FromRecord(recs["pod1"], dir)
	if err != nil {
		t.Fatal(err)
	}
	if st := back.Status(); st.State != StateReady || st.Phase != lifecycle.Created || !st.NetworkSetUp || st.IPs[0] != "10.88.0.2" {
		t.Errorf("restored status = %+v", st)
	}
	if err := sb.SetPhase(lifecycle.Removed); err == nil {
		t.Fatal("a created pod was removed without going through removing")
	}
	if err := errors.Join(sb.SetPhase(lifecycle.Removing), sb.SetPhase(lifecycle.Removed)); err != nil {
		t.Fatal(err)
	}
	if recs, _, _ := checkpoint.Load[Record](dir); len(recs) != 0 {
		t.Errorf("record survived removal: %v", recs)
	}
}

// The infra fields are saved with the record and come back from it; a
// record written before the infra pid was kept reads as pid 0, which
// recovery fills from conmon's pid file.
func TestSandboxRecordKeepsInfra(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pid     int
		oldJSON bool // the record as an older Berth wrote it, without infraPid
		want    int
	}{
		{"infra pid kept", 4242, false, 4242},
		{"no infra", 0, false, 0},
		{"record from before the pid was kept", 4242, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb, dir := newTest(t)
			sb.InfraID, sb.InfraBundle, sb.InfraPid = sb.ID, "/run/bundle", tc.pid
			if err := ready(sb); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(string(dir), sb.ID+".json")
			if tc.oldJSON {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				var raw map[string]json.RawMessage
				if err := json.Unmarshal(b, &raw); err != nil {
					t.Fatal(err)
				}
				if _, ok := raw["infraPid"]; !ok {
					t.Fatalf("record %s has no infraPid", b)
				}
				delete(raw, "infraPid")
				b, _ = json.Marshal(raw)
				if err := os.WriteFile(path, b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			recs, _, err := checkpoint.Load[Record](dir)
			if err != nil {
				t.Fatal(err)
			}
			back, err := FromRecord(recs[sb.ID], dir)
			if err != nil {
				t.Fatal(err)
			}
			if back.InfraPid != tc.want || back.InfraID != sb.ID || back.InfraBundle != "/run/bundle" {
				t.Errorf("restored infra %q %q pid %d, want pid %d", back.InfraID, back.InfraBundle, back.InfraPid, tc.want)
			}
		})
	}
}

// TestStopWaitsForCreates: StopPodSandbox waits for the container creations
// under way, and creations after it find the pod not ready.
func TestStopWaitsForCreates(t *testing.T) {
	sb, _ := newTest(t)
	if err := ready(sb); err != nil {
		t.Fatal(err)
	}
	done, err := sb.BeginCreate()
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() {
		release := sb.BlockCreates()
		if err := sb.SetState(StateNotReady); err != nil {
			t.Error(err)
		}
		release()
		close(stopped)
	}()
	select {
	case <-stopped:
		t.Fatal("the stop did not wait for the create under way")
	case <-time.After(50 * time.Millisecond):
		// Absence of progress is what is asserted; the create still holds
		// the pod, so the stop cannot have finished however long we wait.
	}
	if sb.State() != StateReady {
		t.Fatal("the pod stopped under a create")
	}
	done()
	<-stopped
	if _, err := sb.BeginCreate(); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("create in a stopped pod: err = %v, want FailedPrecondition", err)
	}
}
