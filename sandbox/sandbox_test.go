package sandbox

import (
	"errors"
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
