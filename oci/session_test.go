package oci

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/errdefs"
)

func bgCtx() context.Context { return context.Background() }

var handlers = []string{"crun", "runc"}

// TestContainerSession reads like a crictl session: create, start, read
// logs, exec, update, rotate the log, stop, read the exit, remove, and check
// nothing is left.
func TestContainerSession(t *testing.T) {
	for _, h := range handlers {
		t.Run(h, func(t *testing.T) {
			env := newTestEnv(t, h)
			rt := env.rt
			exits := watch(t, env)
			c := env.newContainer("sh", "-c", `echo out-1; echo err-1 >&2; trap "exit 7" TERM; while :; do sleep 1 & wait $!; done`)

			createCtx, cancelCreate := context.WithCancel(bgCtx())
			pid, err := rt.CreateContainer(createCtx, c)
			cancelCreate() // conmon must not depend on the caller's context
			if err != nil {
				t.Fatal(err)
			}
			if st, err := rt.State(bgCtx(), c); err != nil || st.Status != "created" || st.Pid != pid {
				t.Fatalf("State after create = %+v, %v; want created with pid %d", st, err, pid)
			}
			conmonPid, err := rt.ConmonPid(c)
			if err != nil || !rt.IsConmonAlive(c) {
				t.Fatalf("conmon not alive after create: pid %d, %v", conmonPid, err)
			}
			if ppid := procStatField(conmonPid, 4); ppid == strconv.Itoa(os.Getpid()) {
				t.Errorf("conmon is still the test's child")
			}
			if sid := procStatField(conmonPid, 6); sid != strconv.Itoa(conmonPid) {
				t.Errorf("conmon session = %s, want its own (%d)", sid, conmonPid)
			}
			if leaked := sharedFds(conmonPid); len(leaked) > 0 {
				t.Errorf("conmon holds descriptors of the test process: %q", leaked)
			}
			if _, err := rt.CreateContainer(bgCtx(), c); !errors.Is(err, errdefs.ErrAlreadyExists) {
				t.Errorf("second create: err = %v, want ErrAlreadyExists", err)
			}

			if err := rt.StartContainer(bgCtx(), c); err != nil {
				t.Fatal(err)
			}
			if st, err := rt.State(bgCtx(), c); err != nil || st.Status != "running" {
				t.Fatalf("State after start = %+v, %v", st, err)
			}
			checkLog(t, c.LogPath, map[string]string{"out-1": "stdout", "err-1": "stderr"})

			checkExecSync(t, rt, c)
			checkUpdateResources(t, rt, c)
			checkReopenLog(t, rt, c)

			start := time.Now()
			if err := rt.StopContainer(bgCtx(), c, 10*time.Second, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("stop of a container trapping TERM took %v", d)
			}
			st, exited, err := rt.Exit(c)
			if err != nil || !exited || st.Code != 7 || st.OOMKilled {
				t.Fatalf("Exit = %+v, %v, %v; want code 7", st, exited, err)
			}
			if st.Finished.Before(start) || st.Finished.After(time.Now()) {
				t.Errorf("finish time %v not within the stop call", st.Finished)
			}
			if !waitFor(longWait, func() bool { _, ok := exits.when(c.ID); return ok }) {
				t.Errorf("WatchExits did not report %s within %v", c.ID, longWait)
			}
			if err := rt.StopContainer(bgCtx(), c, time.Second, 0); err != nil {
				t.Errorf("second stop: %v", err)
			}
			deleteAndCheck(t, env, c, conmonPid)
		})
	}
}

// checkLog waits until the CRI log at path holds every line of want (its
// text, mapped to its stream). A line conmon logged in parts, as P entries
// and a final F entry, counts once joined, as kubelet reads it.
func checkLog(t *testing.T, path string, want map[string]string) {
	t.Helper()
	re := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d) (stdout|stderr) (P|F) (.*)$`)
	var entries []string
	ok := waitFor(longWait, func() bool {
		b, _ := os.ReadFile(path)
		entries = strings.SplitAfter(string(b), "\n")
		partial := map[string]string{} // stream -> text of its P entries so far
		found := 0
		for _, e := range entries {
			// An entry without its newline is still being written.
			m := re.FindStringSubmatch(strings.TrimSuffix(e, "\n"))
			if m == nil || !strings.HasSuffix(e, "\n") {
				continue
			}
			stream, text := m[2], partial[m[2]]+m[4]
			if m[3] == "P" {
				partial[stream] = text
				continue
			}
			delete(partial, stream)
			if want[text] == stream {
				found++
			}
		}
		return found == len(want)
	})
	if !ok {
		t.Errorf("log %s = %q, want CRI lines %q", path, entries, want)
	}
}

func checkExecSync(t *testing.T, rt *Runtime, c *Container) {
	t.Helper()
	for _, tc := range []struct {
		name           string
		cmd            []string
		stdout, stderr string
		code           int32
	}{
		{name: "echo", cmd: []string{"echo", "hi"}, stdout: "hi\n"},
		{name: "exit code", cmd: []string{"sh", "-c", "exit 3"}, code: 3},
		{name: "stderr", cmd: []string{"sh", "-c", "echo e >&2; echo o"}, stdout: "o\n", stderr: "e\n"},
		{name: "spec env and cwd", cmd: []string{"sh", "-c", "echo $PATH; pwd"}, stdout: "/bin\n/\n"},
	} {
		res, err := rt.ExecSync(bgCtx(), c, tc.cmd, longWait)
		if err != nil {
			t.Errorf("exec %s: %v", tc.name, err)
			continue
		}
		if string(res.Stdout) != tc.stdout || string(res.Stderr) != tc.stderr || res.ExitCode != tc.code {
			t.Errorf("exec %s = %q, %q, %d; want %q, %q, %d", tc.name, res.Stdout, res.Stderr, res.ExitCode, tc.stdout, tc.stderr, tc.code)
		}
	}

	start := time.Now()
	_, err := rt.ExecSync(bgCtx(), c, []string{"sleep", "10"}, time.Second)
	if !errors.Is(err, errdefs.ErrDeadlineExceeded) {
		t.Errorf("exec past its timeout: err = %v, want ErrDeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("exec with a 1s timeout took %v", d)
	}
	if left := processesMentioning("sleep\x0010\x00"); len(left) > 0 { // exactly "sleep 10", not another test's "sleep 1000"
		t.Errorf("exec left processes behind: %q", left)
	}
	if _, err := rt.ExecSync(bgCtx(), c, []string{"/no/such/binary"}, longWait); err == nil {
		t.Errorf("exec of a missing binary succeeded")
	}
}

func checkUpdateResources(t *testing.T, rt *Runtime, c *Container) {
	t.Helper()
	limitFile := filepath.Join("/sys/fs/cgroup/memory", c.CgroupParent, c.ID, "memory.limit_in_bytes")
	if _, err := os.Stat(limitFile); err != nil {
		t.Logf("no cgroup v1 memory controller, not checking the limit: %v", err)
		return
	}
	limit := int64(64 << 20)
	if err := rt.UpdateResources(bgCtx(), c, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(limitFile)
	if err != nil || strings.TrimSpace(string(b)) != strconv.FormatInt(limit, 10) {
		t.Errorf("memory.limit_in_bytes = %q, %v; want %d", b, err, limit)
	}
}

func checkReopenLog(t *testing.T, rt *Runtime, c *Container) {
	t.Helper()
	if err := os.Rename(c.LogPath, c.LogPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := rt.ReopenLog(bgCtx(), c); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.LogPath); err != nil {
		t.Fatalf("log not recreated: %v", err)
	}
	// Write through the container's own stdout, which conmon reads.
	if _, err := rt.ExecSync(bgCtx(), c, []string{"sh", "-c", "echo after-reopen > /proc/1/fd/1"}, longWait); err != nil {
		t.Fatal(err)
	}
	checkLog(t, c.LogPath, map[string]string{"after-reopen": "stdout"})
	if b, _ := os.ReadFile(c.LogPath + ".1"); strings.Contains(string(b), "after-reopen") {
		t.Errorf("conmon still writes to the rotated log")
	}
}
