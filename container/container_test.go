package container

import (
	"errors"
	"sync"
	"testing"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/checkpoint"
	"github.com/berth-dev/berth/internal/lifecycle"
)

// fakeRecords records what was saved, and fails saves on demand.
type fakeRecords struct {
	mu      sync.Mutex
	saved   map[string]*Record
	deleted []string
	fail    error
}

func (f *fakeRecords) Save(id string, v any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	if f.saved == nil {
		f.saved = map[string]*Record{}
	}
	f.saved[id] = v.(*Record)
	return nil
}

func (f *fakeRecords) Delete(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.saved, id)
	f.deleted = append(f.deleted, id)
	return nil
}

func (f *fakeRecords) get(id string) *Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.saved[id]
}

func newTest(t *testing.T) (*Container, *fakeRecords) {
	return newWatched(t, nil)
}

// newWatched is newTest with changed hearing of every committed change.
func newWatched(t *testing.T, changed func(old, next Status)) (*Container, *fakeRecords) {
	t.Helper()
	recs := &fakeRecords{}
	h := Hooks{Records: recs}
	if changed != nil {
		h.Changed = func(_ *Container, old, next Status) { changed(old, next) }
	}
	return New("id", "name", "pod", &runtime.ContainerConfig{}, h), recs
}

func TestTransitions(t *testing.T) {
	exit := Exit{Code: 3, FinishedAt: time.Unix(200, 0), Reason: "Error"}
	for _, tc := range []struct {
		name  string
		steps func(c *Container) error
		want  State
		err   error
	}{
		{"start", func(c *Container) error { return errors.Join(c.BeginStart(), c.Started(time.Unix(100, 0))) }, StateRunning, nil},
		{"start then exit", func(c *Container) error {
			if err := errors.Join(c.BeginStart(), c.Started(time.Unix(100, 0))); err != nil {
				return err
			}
			_, err := c.Exited(exit)
			return err
		}, StateExited, nil},
		{"exit before start", func(c *Container) error { _, err := c.Exited(exit); return err }, StateExited, nil},
		{"start twice", func(c *Container) error { return errors.Join(c.BeginStart(), c.Started(time.Now()), c.BeginStart()) }, StateRunning, errdefs.ErrFailedPrecondition},
		{"start while starting", func(c *Container) error { return errors.Join(c.BeginStart(), c.BeginStart()) }, StateCreated, errdefs.ErrFailedPrecondition},
		{"start an exited container", func(c *Container) error { _, err := c.Exited(exit); return errors.Join(err, c.BeginStart()) }, StateExited, errdefs.ErrFailedPrecondition},
		{"running back to created", func(c *Container) error {
			return errors.Join(c.BeginStart(), c.Started(time.Now()), c.Update(func(st *Status) error { st.State = StateCreated; return nil }))
		}, StateRunning, errdefs.ErrFailedPrecondition},
		{"update a removed container", func(c *Container) error {
			return errors.Join(c.SetPhase(lifecycle.Removed), c.SetResources(&runtime.LinuxContainerResources{}))
		}, StateCreated, errdefs.ErrFailedPrecondition},
		{"created phase back to creating", func(c *Container) error {
			return errors.Join(c.SetPhase(lifecycle.Created), c.SetPhase(lifecycle.Creating))
		}, StateCreated, errdefs.ErrFailedPrecondition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTest(t)
			err := tc.steps(c)
			if tc.err == nil && err != nil || tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if got := c.State(); got != tc.want {
				t.Errorf("state = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestIllegalTransitionNamesBothStates(t *testing.T) {
	c, _ := newTest(t)
	if _, err := c.Exited(Exit{Code: 1}); err != nil {
		t.Fatal(err)
	}
	err := c.Update(func(st *Status) error { st.State = StateRunning; return nil })
	var te *lifecycle.TransitionError
	if !errors.As(err, &te) || te.From != "exited" || te.To != "running" || err.Error() != "container id cannot go from state exited to running" {
		t.Fatalf("err = %v, want a transition error naming exited and running", err)
	}
}

// TestExitDuringStart is the race StartContainer lost under load: the exit
// of a process that ends at once is seen before the start is recorded.
func TestExitDuringStart(t *testing.T) {
	var events []State
	c, _ := newWatched(t, func(old, next Status) {
		if old.State != next.State {
			events = append(events, next.State)
		}
	})
	if err := c.BeginStart(); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	finished := at.Add(-time.Millisecond) // a coarse-clock mtime
	if recorded, err := c.Exited(Exit{Code: 3, FinishedAt: finished}); recorded || err != nil {
		t.Fatalf("exit during start: recorded %v, %v; want it left to the start", recorded, err)
	}
	if err := c.Started(at); err != nil {
		t.Fatalf("started: %v", err)
	}
	if recorded, err := c.Exited(Exit{Code: 3, FinishedAt: finished}); !recorded || err != nil {
		t.Fatalf("exit after start: recorded %v, %v", recorded, err)
	}
	st := c.Status()
	if st.State != StateExited || st.Exit.Code != 3 || st.StartedAt.IsZero() || st.Exit.FinishedAt.Before(st.StartedAt) {
		t.Errorf("status = %+v, want exited 3 with startedAt <= finishedAt", st)
	}
	if len(events) != 2 || events[0] != StateRunning || events[1] != StateExited {
		t.Errorf("changes = %v, want running then exited", events)
	}
}

// The starting mark is not saved (a restart ends every call), so setting
// and clearing it writes nothing: no sync in StartContainer's way.
func TestStartingMarkIsNotSaved(t *testing.T) {
	c, recs := newTest(t)
	recs.fail = errors.New("disk full")
	if err := c.BeginStart(); err != nil {
		t.Fatalf("BeginStart saved: %v", err)
	}
	if !c.Status().Starting {
		t.Error("the starting mark is not visible")
	}
	if err := c.AbortStart(); err != nil {
		t.Fatalf("AbortStart saved: %v", err)
	}
	if c.Status().Starting {
		t.Error("the starting mark stays")
	}
	if err := c.Checkpoint(); err == nil {
		t.Error("Checkpoint, a change of nothing, was not saved")
	}
}

// TestSaveComesFirst: a change that cannot be saved is not made, and a
// reader never sees a status the record does not have.
func TestSaveComesFirst(t *testing.T) {
	c, recs := newTest(t)
	recs.fail = errors.New("disk full")
	if err := c.Started(time.Now()); err == nil {
		t.Fatal("a change whose save failed succeeded")
	}
	if c.State() != StateCreated {
		t.Error("a change whose save failed is visible")
	}
	recs.fail = nil
	if err := c.Started(time.Now()); err != nil {
		t.Fatal(err)
	}
	if rec := recs.get("id"); rec == nil || rec.State != StateRunning {
		t.Errorf("record = %+v", rec)
	}
	if err := c.SetPhase(lifecycle.Removed); err != nil || len(recs.deleted) != 1 || recs.get("id") != nil {
		t.Errorf("removed: %v, deleted %v", err, recs.deleted)
	}
	if recorded, err := c.Exited(Exit{Code: 1}); recorded || err != nil || recs.get("id") != nil {
		t.Errorf("an exit after removal: recorded %v, %v; the record must stay gone", recorded, err)
	}
}

// TestConcurrentUpdates runs the racing pairs at once under -race: exit
// reports from the watcher, a stop and an exec against a start.
func TestConcurrentUpdates(t *testing.T) {
	for i := 0; i < 200; i++ {
		var wg sync.WaitGroup
		var changes []State
		var mu sync.Mutex
		c, _ := newWatched(t, func(old, next Status) {
			if old.State == next.State {
				return
			}
			mu.Lock()
			changes = append(changes, next.State)
			mu.Unlock()
		})
		wg.Add(4)
		go func() {
			defer wg.Done()
			if err := c.BeginStart(); err != nil {
				// Only an exit recorded before the start began beats it.
				if !errors.Is(err, errdefs.ErrFailedPrecondition) || c.State() != StateExited {
					t.Error(err)
				}
				return
			}
			if err := c.Started(time.Now()); err != nil {
				t.Error(err)
			}
			c.Exited(Exit{Code: 7, FinishedAt: time.Now()})
		}()
		for j := 0; j < 3; j++ {
			go func() {
				defer wg.Done()
				c.Exited(Exit{Code: 7, FinishedAt: time.Now()})
				_ = c.Status()
			}()
		}
		wg.Wait()
		st := c.Status()
		if st.State != StateExited || st.Exit.Code != 7 {
			t.Fatalf("status = %+v", st)
		}
		// STARTED precedes STOPPED when the start won; an exit recorded
		// before the start began makes the start fail instead.
		if !st.StartedAt.IsZero() && (len(changes) != 2 || changes[0] != StateRunning || changes[1] != StateExited) {
			t.Fatalf("changes = %v", changes)
		}
	}
}

func TestExitReason(t *testing.T) {
	for _, tc := range []struct {
		code int32
		oom  bool
		want string
	}{
		{0, false, "Completed"},
		{1, false, "Error"},
		{137, true, "OOMKilled"},
	} {
		if got := ExitReason(tc.code, tc.oom); got != tc.want {
			t.Errorf("ExitReason(%d, %v) = %s, want %s", tc.code, tc.oom, got, tc.want)
		}
	}
}

func TestName(t *testing.T) {
	got := Name(&runtime.ContainerMetadata{Name: "app", Attempt: 2}, &runtime.PodSandboxMetadata{Name: "web", Namespace: "ns", Uid: "u1"})
	if want := "k8s_app_web_ns_u1_2"; got != want {
		t.Errorf("Name = %s, want %s", got, want)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	dir := checkpoint.Dir(t.TempDir())
	cfg := &runtime.ContainerConfig{Metadata: &runtime.ContainerMetadata{Name: "app", Attempt: 1}, Labels: map[string]string{"a": "b"}}
	c := New("id1", "k8s_app", "pod1", cfg, Hooks{Records: dir})
	c.ImageRef, c.LogPath, c.VolumeDirs = "busybox@sha256:x", "/var/log/pods/x/app/0.log", []string{"/v/1"}
	c.Mounts = []*runtime.Mount{{ContainerPath: "/data", HostPath: "/srv", Readonly: true}}
	c.User = &runtime.ContainerUser{Linux: &runtime.LinuxContainerUser{Uid: 1000, Gid: 1000}}
	for _, err := range []error{
		c.SetPhase(lifecycle.Created), c.BeginStart(), c.Started(time.Unix(100, 0)),
		c.SetResources(&runtime.LinuxContainerResources{MemoryLimitInBytes: 1 << 26}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Exited(Exit{Code: 2, FinishedAt: time.Unix(200, 0), Reason: "Error"}); err != nil {
		t.Fatal(err)
	}
	recs, bad, err := checkpoint.Load[Record](dir)
	if err != nil || len(bad) > 0 {
		t.Fatal(err, bad)
	}
	back, err := FromRecord(recs["id1"], Hooks{Records: dir})
	if err != nil {
		t.Fatal(err)
	}
	if back.Config.GetMetadata().GetName() != "app" || back.Config.GetLabels()["a"] != "b" ||
		back.LogPath != c.LogPath || back.Mounts[0].GetHostPath() != "/srv" || back.User.GetLinux().GetUid() != 1000 {
		t.Errorf("round trip lost fields: %+v", back)
	}
	snap := back.Status()
	if snap.Phase != lifecycle.Created || snap.State != StateExited || snap.Exit.Code != 2 || !snap.StartedAt.Equal(time.Unix(100, 0)) || snap.Resources.GetMemoryLimitInBytes() != 1<<26 || snap.Starting {
		t.Errorf("round trip lost lifecycle: %+v", snap)
	}
}
