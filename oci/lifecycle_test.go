package oci

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/conmon"
	"github.com/berth-dev/berth/errdefs"
)

// exitRecorder collects WatchExits callbacks with the time each came.
type exitRecorder struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (e *exitRecorder) record(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.seen[id]; !ok {
		e.seen[id] = time.Now()
	}
}

func (e *exitRecorder) when(id string) (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.seen[id]
	return t, ok
}

func watch(t *testing.T, env *testEnv) *exitRecorder {
	rec := &exitRecorder{seen: map[string]time.Time{}}
	ctx, cancel := context.WithCancel(bgCtx())
	t.Cleanup(cancel)
	if err := WatchExits(ctx, env.rt.ExitDir(), rec.record); err != nil {
		t.Fatal(err)
	}
	return rec
}

// deleteAndCheck deletes c twice and checks that nothing of it is left.
func deleteAndCheck(t *testing.T, env *testEnv, c *Container, conmonPid int) {
	t.Helper()
	rt := env.rt
	for i := range 2 {
		if err := rt.DeleteContainer(bgCtx(), c); err != nil {
			t.Fatalf("delete #%d: %v", i+1, err)
		}
	}
	if conmon.IsConmon(conmonPid, c.ID) {
		t.Errorf("conmon %d still runs", conmonPid)
	}
	if left := processesMentioning(c.ID); len(left) > 0 {
		t.Errorf("processes left: %q", left)
	}
	mounts, _ := cgroupMounts()
	for _, m := range mounts {
		entries, _ := os.ReadDir(filepath.Join(m, env.parent))
		for _, e := range entries {
			if e.IsDir() {
				t.Errorf("cgroup left: %s", filepath.Join(m, env.parent, e.Name()))
			}
		}
	}
	for _, p := range []string{
		filepath.Join(rt.cfg.Root, c.ID), rt.PersistDir(c), rt.ExitFile(c),
		filepath.Join(rt.socketDir(), c.ID), filepath.Join(c.BundleDir, "ctl"),
	} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("left behind: %s", p)
		}
	}
	if mountinfoHas(c.ID) || mountinfoHas(c.BundleDir) {
		t.Errorf("mounts of %s left", c.ID)
	}
	if _, err := rt.State(bgCtx(), c); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("State after delete: err = %v, want ErrNotFound", err)
	}
	if err := rt.StopContainer(bgCtx(), c, time.Second, 0); err != nil {
		t.Errorf("stop after delete: %v", err)
	}
}

func TestStopKillsAfterTimeout(t *testing.T) {
	for _, h := range handlers {
		t.Run(h, func(t *testing.T) {
			env := newTestEnv(t, h)
			c := env.newContainer("sh", "-c", `trap "" TERM; echo ready; while :; do sleep 1; done`)
			if _, err := env.rt.CreateContainer(bgCtx(), c); err != nil {
				t.Fatal(err)
			}
			if err := env.rt.StartContainer(bgCtx(), c); err != nil {
				t.Fatal(err)
			}
			checkLog(t, c.LogPath, map[string]string{"ready": "stdout"})
			start := time.Now()
			if err := env.rt.StopContainer(bgCtx(), c, time.Second, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d < time.Second || d > 4*time.Second {
				t.Errorf("stop took %v, want the 1s timeout and a kill", d)
			}
			st, exited, err := env.rt.Exit(c)
			if err != nil || !exited || st.Code != 128+int32(syscall.SIGKILL) {
				t.Errorf("Exit = %+v, %v, %v; want 137", st, exited, err)
			}
			pid, _ := env.rt.ConmonPid(c)
			deleteAndCheck(t, env, c, pid)
		})
	}
}

// TestStopResumesPausedContainer pauses a container behind Berth's back, as
// only a person with the runtime's CLI can (CRI has no pause), and stops it:
// the stop signal must reach the process, so StopContainer resumes it first.
func TestStopResumesPausedContainer(t *testing.T) {
	for _, h := range handlers {
		t.Run(h, func(t *testing.T) {
			env := newTestEnv(t, h)
			c := runningContainer(t, env, false, false, "sh", "-c", `trap "exit 7" TERM; echo ready; while :; do sleep 1; done`)
			checkLog(t, c.LogPath, map[string]string{"ready": "stdout"})
			if _, err := env.rt.runtimeCmd(bgCtx(), c.ID, nil, "pause", c.ID); err != nil {
				t.Fatal(err)
			}
			if st, err := env.rt.State(bgCtx(), c); err != nil || st.Status != "paused" {
				t.Fatalf("State after pause = %+v, %v; want paused", st, err)
			}
			if err := env.rt.StopContainer(bgCtx(), c, 10*time.Second, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			st, exited, err := env.rt.Exit(c)
			if err != nil || !exited || st.Code != 7 {
				t.Errorf("Exit = %+v, %v, %v; want 7, the TERM trap's code", st, exited, err)
			}
			pid, _ := env.rt.ConmonPid(c)
			deleteAndCheck(t, env, c, pid)
		})
	}
}

// TestExitWhileBerthIsDown lets a container exit on its own with nobody
// watching, then recovers it with a fresh Runtime and Container built from
// the same values, as Berth does after a restart.
func TestExitWhileBerthIsDown(t *testing.T) {
	for _, h := range handlers {
		t.Run(h, func(t *testing.T) {
			env := newTestEnv(t, h)
			c := env.newContainer("sh", "-c", "echo bye")
			if _, err := env.rt.CreateContainer(bgCtx(), c); err != nil {
				t.Fatal(err)
			}
			conmonPid, _ := env.rt.ConmonPid(c)
			if err := env.rt.StartContainer(bgCtx(), c); err != nil {
				t.Fatal(err)
			}
			if !waitFor(longWait, func() bool { return !conmon.IsConmon(conmonPid, c.ID) }) {
				t.Fatal("conmon did not exit after its container")
			}

			rt, err := New(env.rt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			again := *c
			exits := watch(t, &testEnv{rt: rt})
			if !waitFor(longWait, func() bool { _, ok := exits.when(c.ID); return ok }) {
				t.Errorf("WatchExits did not report the exit that happened before it started")
			}
			st, exited, err := rt.Exit(&again)
			if err != nil || !exited || st.Code != 0 {
				t.Errorf("Exit = %+v, %v, %v; want 0", st, exited, err)
			}
			if rt.IsConmonAlive(&again) {
				t.Errorf("IsConmonAlive after the container exited")
			}
			if s, err := rt.State(bgCtx(), &again); err != nil || s.Status != "stopped" {
				t.Errorf("State = %+v, %v; want stopped", s, err)
			}
			checkLog(t, c.LogPath, map[string]string{"bye": "stdout"})
			if _, err := rt.ExecSync(bgCtx(), &again, []string{"true"}, time.Second); !errors.Is(err, errdefs.ErrFailedPrecondition) {
				t.Errorf("exec in a stopped container: err = %v, want ErrFailedPrecondition", err)
			}
			if err := rt.StopContainer(bgCtx(), &again, time.Second, 0); err != nil {
				t.Errorf("stop of an exited container: %v", err)
			}
			deleteAndCheck(t, env, &again, conmonPid)
		})
	}
}

func TestCreateFailureLeavesNothing(t *testing.T) {
	for _, h := range handlers {
		t.Run(h, func(t *testing.T) {
			env := newTestEnv(t, h)
			c := env.newContainer("true")
			spec := testSpec("/does/not/exist", []string{"true"}, env.parent+"/"+c.ID)
			spec.Version = SpecVersion
			writeSpec(t, c.BundleDir, spec)
			_, err := env.rt.CreateContainer(bgCtx(), c)
			if err == nil {
				t.Fatal("create with a missing rootfs succeeded")
			}
			t.Logf("create error: %v", err)
			if !strings.Contains(err.Error(), c.ID) {
				t.Errorf("error does not name the container: %v", err)
			}
			if _, err := os.Stat(c.LogPath); err == nil {
				t.Errorf("log file left behind")
			}
			deleteAndCheck(t, env, c, 0)
		})
	}
}

func TestTerminalContainer(t *testing.T) {
	for _, h := range handlers {
		t.Run(h, func(t *testing.T) {
			env := newTestEnv(t, h)
			args := []string{"sh", "-c", "echo tty-line; while :; do sleep 1; done"}
			c := env.newContainer(args...)
			spec := testSpec(testRootfs, args, env.parent+"/"+c.ID)
			spec.Process.Terminal = true
			writeSpec(t, c.BundleDir, spec)
			c.Terminal = true
			if _, err := env.rt.CreateContainer(bgCtx(), c); err != nil {
				t.Fatal(err)
			}
			if err := env.rt.StartContainer(bgCtx(), c); err != nil {
				t.Fatal(err)
			}
			checkLog(t, c.LogPath, map[string]string{"tty-line\r": "stdout"}) // a terminal ends lines with \r\n
			if err := env.rt.Resize(c, 40, 100); err != nil {
				t.Fatal(err)
			}
			sock := env.rt.AttachSocketPath(c)
			if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 || len(sock) > maxSocketPath {
				t.Errorf("attach socket %s: %v, %v", sock, fi, err)
			}
			pid, err := env.rt.ConmonPid(c)
			if err != nil {
				t.Fatal(err)
			}
			started := procStatField(pid, 22)
			if err := env.rt.StopContainer(bgCtx(), c, 0, 0); err != nil {
				t.Fatal(err)
			}
			// Until conmon has finished exiting, its ctl fifo still has a
			// reader although conmon no longer looks like conmon.
			if !waitFor(longWait, func() bool { return exitedFully(pid, started) }) {
				t.Fatalf("conmon %d outlived its container (state %q)", pid, procStatField(pid, 3))
			}
			if err := env.rt.Resize(c, 1, 1); err == nil {
				t.Errorf("resize without conmon succeeded")
			}
			if err := env.rt.ReopenLog(bgCtx(), c); !errors.Is(err, errdefs.ErrFailedPrecondition) {
				t.Errorf("reopen log without conmon: err = %v, want ErrFailedPrecondition", err)
			}
			deleteAndCheck(t, env, c, pid)
		})
	}
}

// TestDeleteWithoutStop removes containers that were never stopped: the
// runtime's delete --force kills them and conmon goes with them.
func TestDeleteWithoutStop(t *testing.T) {
	for _, h := range handlers {
		for _, tc := range []struct {
			name  string
			start bool
		}{{"created", false}, {"running", true}} {
			t.Run(h+"/"+tc.name, func(t *testing.T) {
				env := newTestEnv(t, h)
				c := env.newContainer("sleep", "1000")
				if _, err := env.rt.CreateContainer(bgCtx(), c); err != nil {
					t.Fatal(err)
				}
				if tc.start {
					if err := env.rt.StartContainer(bgCtx(), c); err != nil {
						t.Fatal(err)
					}
				}
				pid, _ := env.rt.ConmonPid(c)
				deleteAndCheck(t, env, c, pid)
			})
		}
	}
}

// launchInPersistDir launches the conmon of a new container whose bundle
// is its persist dir, as CreateContainer's, with no spec in it yet.
func launchInPersistDir(t *testing.T, env *testEnv) (*Container, Launched) {
	t.Helper()
	c := env.newContainer("true")
	c.BundleDir = env.rt.PersistDir(c)
	c.LogPath = filepath.Join(c.BundleDir, "ctr.log")
	l, err := env.rt.LaunchContainer(bgCtx(), c)
	if err != nil {
		t.Fatal(err)
	}
	return c, l
}

// A conmon launched into the persist dir as the bundle waits, placed in its
// cgroup, until Create; the spec written meanwhile is what it runs. An
// aborted launch leaves nothing.
func TestLaunchWaitsForTheBundle(t *testing.T) {
	for _, h := range handlers {
		t.Run(h, func(t *testing.T) {
			env := newTestEnv(t, h)
			c, l := launchInPersistDir(t, env)
			if left := processesMentioning(c.ID); len(left) != 1 {
				t.Fatalf("want one conmon waiting, found %q", left)
			}
			// conmon made nothing in the bundle before it was let go.
			if _, err := os.Lstat(filepath.Join(c.BundleDir, "ctl")); err == nil {
				t.Error("conmon made its ctl fifo before Create")
			}
			spec := testSpec(testRootfs, []string{"true"}, env.parent+"/"+c.ID)
			spec.Version = SpecVersion
			writeSpec(t, c.BundleDir, spec)
			pid, err := l.Create(bgCtx())
			if err != nil {
				t.Fatal(err)
			}
			if pid <= 0 {
				t.Fatalf("init pid %d", pid)
			}
			if st, err := env.rt.State(bgCtx(), c); err != nil || st.Status != "created" {
				t.Fatalf("state after Create: %v, %v", st, err)
			}
			if err := l.Abort(bgCtx()); err != nil {
				t.Errorf("Abort after Create: %v", err)
			}
			if _, err := env.rt.State(bgCtx(), c); err != nil {
				t.Errorf("Abort after Create touched the container: %v", err)
			}
			conmonPid, _ := env.rt.ConmonPid(c)
			deleteAndCheck(t, env, c, conmonPid)
		})
		t.Run(h+"/abort", func(t *testing.T) {
			env := newTestEnv(t, h)
			c, l := launchInPersistDir(t, env)
			if err := l.Abort(bgCtx()); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Create(bgCtx()); err == nil {
				t.Error("Create after Abort succeeded")
			}
			deleteAndCheck(t, env, c, 0)
		})
	}
}
