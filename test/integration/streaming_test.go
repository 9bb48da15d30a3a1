package integration

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/storage/storagetest"
)

// crictlCmd is crictl against this daemon for a session the test drives
// itself (a terminal, a long-running port-forward).
func (b *berth) crictlCmd(args ...string) *exec.Cmd {
	endpoint := "unix://" + b.Socket
	return exec.Command("crictl", append([]string{
		"--config", "/dev/null", "--runtime-endpoint", endpoint, "--image-endpoint", endpoint, "--timeout", "60s",
	}, args...)...)
}

// terminal is a command running on a pseudo-terminal of the test's, as a
// person at a shell runs crictl.
type terminal struct {
	t    *testing.T
	cmd  *exec.Cmd
	pty  *os.File
	out  storagetest.SyncBuffer
	read chan struct{} // closed when the command's output ends
}

func startTerminal(t *testing.T, cmd *exec.Cmd, rows, cols uint16) *terminal {
	t.Helper()
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: rows, Cols: cols})
	if err != nil {
		t.Fatalf("start %v on a terminal: %v", cmd.Args, err)
	}
	term := &terminal{t: t, cmd: cmd, pty: f, read: make(chan struct{})}
	go func() {
		defer close(term.read)
		_, _ = io.Copy(&term.out, f)
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		f.Close()
	})
	return term
}

// typeLine types a line as a person does.
func (term *terminal) typeLine(line string) {
	term.t.Helper()
	if _, err := term.pty.Write([]byte(line + "\r")); err != nil {
		term.t.Fatalf("type %q: %v", line, err)
	}
}

// expect waits until the terminal shows want.
func (term *terminal) expect(want string) {
	term.t.Helper()
	if !waitFor(func() bool { return strings.Contains(term.out.String(), want) }) {
		term.t.Fatalf("terminal never showed %q; it shows:\n%s", want, term.out.String())
	}
}

// askUntil types line until the terminal shows want, for what the shell
// prints only when asked and what reaches it at a time nobody can see (a
// resize, the start of an attach session).
func (term *terminal) askUntil(line, want string) {
	term.t.Helper()
	if !waitFor(func() bool {
		if strings.Contains(term.out.String(), want) {
			return true
		}
		term.typeLine(line)
		return false
	}) {
		term.t.Fatalf("terminal never showed %q after %q; it shows:\n%s", want, line, term.out.String())
	}
}

// resize changes the terminal's size; crictl gets SIGWINCH and sends it on.
func (term *terminal) resize(rows, cols uint16) {
	term.t.Helper()
	if err := pty.Setsize(term.pty, &pty.Winsize{Rows: rows, Cols: cols}); err != nil {
		term.t.Fatal(err)
	}
}

// wait waits for the command to exit and returns its exit code.
func (term *terminal) wait() int {
	term.t.Helper()
	done := make(chan error, 1)
	go func() { done <- term.cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			term.t.Fatalf("%v: %v", term.cmd.Args, err)
		}
		// What it printed last may still be on its way through the terminal.
		select {
		case <-term.read:
		case <-time.After(waitTimeout):
		}
		return term.cmd.ProcessState.ExitCode()
	case <-time.After(waitTimeout):
		term.t.Fatalf("%v did not exit; the terminal shows:\n%s", term.cmd.Args, term.out.String())
		return -1
	}
}

// A person runs `crictl exec -it <id> sh`, types, resizes the window and
// exits with a status, under both runtimes.
func TestExecInteractiveShell(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)
	b.mustCrictl(t, "pull", "busybox")
	for _, handler := range []string{"crun", "runc"} {
		t.Run(handler, func(t *testing.T) {
			pod := podJSON(t, "shell-"+handler, nil)
			podID := strings.TrimSpace(b.mustCrictl(t, "runp", "--runtime", handler, pod))
			id := b.runContainer(t, podID, pod, "main", "busybox", map[string]any{"command": []string{"sleep", "3600"}})

			start := time.Now()
			term := startTerminal(t, b.crictlCmd("exec", "-it", id, "sh"), 30, 90)
			term.typeLine("echo typed-$((6*7))")
			term.expect("typed-42")
			term.typeLine("stty size; id -u; echo term-$TERM")
			term.expect("30 90")
			term.expect("term-xterm")
			term.resize(40, 100)
			// The resize travels crictl, the stream and the terminal master;
			// ask until the shell sees it.
			term.askUntil("stty size", "40 100")
			term.typeLine("exit 7")
			// crictl v1.37 reports the exit code in its error and exits 1.
			if code := term.wait(); code == 0 || !strings.Contains(term.out.String(), "command terminated with exit code 7") {
				t.Errorf("crictl exit code = %d, want it to report exit code 7; terminal:\n%s", code, term.out.String())
			}
			t.Logf("%s: interactive session took %v", handler, time.Since(start))

			// The shell is gone from the container: only its main process is left.
			if procs := cgroupFile(t, id, "pids", "cgroup.procs"); len(strings.Fields(procs)) != 1 {
				t.Errorf("processes in the container after the session: %q", procs)
			}
			b.mustCrictl(t, "rmp", "-f", podID)
		})
	}
	b.assertNoPodLeftovers(t, tn)
}

// Non-interactive exec streams exactly the command's output, over SPDY and
// WebSocket, and passes stdin and the exit code through.
func TestExecStreams(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)
	podID, podFile := b.runPod(t, "exec", nil, "busybox")
	id := b.runContainer(t, podID, podFile, "main", "busybox", map[string]any{
		"command": []string{"sleep", "3600"},
		"envs":    []map[string]string{{"key": "PROBE_ENV", "value": "probe-value"}},
		"linux":   map[string]any{"security_context": map[string]any{"run_as_user": map[string]any{"value": 1000}, "run_as_group": map[string]any{"value": 1001}}},
	})

	// The exec'd process is the container's: same user, environment,
	// capabilities, cgroup and namespaces as an ExecSync one (conmon's).
	probe := "id -u; id -g; echo env=$PROBE_ENV; grep -E 'Cap(Eff|Bnd)' /proc/self/status; grep pids /proc/self/cgroup; " +
		"for ns in net pid mnt uts ipc; do readlink /proc/self/ns/$ns; done"
	streamed := b.mustCrictl(t, "exec", id, "sh", "-c", probe)
	synced := b.mustCrictl(t, "exec", "--sync", id, "sh", "-c", probe)
	// (crictl exec --sync adds a newline to what it prints.)
	if strings.TrimSpace(streamed) != strings.TrimSpace(synced) || !strings.HasPrefix(streamed, "1000\n1001\nenv=probe-value\n") || !strings.Contains(streamed, "berth-"+id) {
		t.Errorf("streaming exec runs as\n%s\nExecSync as\n%s", streamed, synced)
	}

	// SPDY, crictl's default. (Its WebSocket transport speaks
	// v5.channel.k8s.io, which k8s.io/cri-streaming v0.37 does not serve.)
	if out := b.mustCrictl(t, "exec", id, "echo", "hi"); out != "hi\n" {
		t.Errorf("crictl exec echo hi = %q, want exactly \"hi\\n\"", out)
	}
	cmd := b.crictlCmd("exec", "-i", id, "sh", "-c", "tr a-z A-Z; echo to-stderr >&2; exit 3")
	cmd.Stdin = strings.NewReader("hello from stdin\n")
	var stdout, stderr storagetest.SyncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// crictl reports a command's exit code in its error and exits 1.
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "command terminated with exit code 3") {
		t.Errorf("crictl exec exiting 3: %v; stderr %q", err, stderr.String())
	}
	if stdout.String() != "HELLO FROM STDIN\n" || !strings.HasPrefix(stderr.String(), "to-stderr\n") {
		t.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
	}

	// The CRI call returns a URL on the streaming server, on loopback.
	resp, err := b.runtime.Exec(ctxT(t), &runtime.ExecRequest{ContainerId: id, Cmd: []string{"true"}, Stdout: true})
	if err != nil || !strings.HasPrefix(resp.GetUrl(), "http://127.0.0.1:") || !strings.Contains(resp.GetUrl(), "/exec/") {
		t.Errorf("Exec = %v, %v; want an http://127.0.0.1:<port>/exec/<token> URL", resp, err)
	}

	for _, tc := range []struct {
		name string
		req  *runtime.ExecRequest
		code codes.Code
	}{
		{"no command", &runtime.ExecRequest{ContainerId: id, Stdout: true}, codes.InvalidArgument},
		{"no stream", &runtime.ExecRequest{ContainerId: id, Cmd: []string{"true"}}, codes.InvalidArgument},
		{"tty and stderr", &runtime.ExecRequest{ContainerId: id, Cmd: []string{"true"}, Tty: true, Stderr: true}, codes.InvalidArgument},
		{"unknown container", &runtime.ExecRequest{ContainerId: "no-such-container", Cmd: []string{"true"}, Stdout: true}, codes.NotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := b.runtime.Exec(ctxT(t), tc.req); status.Code(err) != tc.code {
				t.Errorf("Exec = %v, want %s", err, tc.code)
			}
		})
	}

	// A stopped container: FailedPrecondition naming it, for exec and attach.
	b.mustCrictl(t, "stop", id)
	_, err = b.runtime.Exec(ctxT(t), &runtime.ExecRequest{ContainerId: id, Cmd: []string{"true"}, Stdout: true})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), id) {
		t.Errorf("Exec in a stopped container = %v, want FailedPrecondition naming it", err)
	}
	_, err = b.runtime.Attach(ctxT(t), &runtime.AttachRequest{ContainerId: id, Stdout: true})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), id) {
		t.Errorf("Attach to a stopped container = %v, want FailedPrecondition naming it", err)
	}
	if _, err := b.crictl(t, "exec", id, "echo", "hi"); err == nil || !strings.Contains(err.Error(), "FailedPrecondition") {
		t.Errorf("crictl exec in a stopped container: %v", err)
	}
	b.mustCrictl(t, "rmp", "-f", podID)
	b.assertNoPodLeftovers(t, tn)
}

// `crictl attach` to a container started with stdin and a terminal: what is
// typed reaches it, what it prints comes back, resizes reach its terminal.
func TestAttachToTerminal(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)
	podID, podFile := b.runPod(t, "attach", nil, "busybox")
	id := b.runContainer(t, podID, podFile, "shell", "busybox", map[string]any{
		"command": []string{"sh"}, "stdin": true, "tty": true,
	})

	term := startTerminal(t, b.crictlCmd("attach", "-it", id), 25, 80)
	// Nothing is replayed on attach: wait for the session to be up.
	term.askUntil("echo attached-$((6*7))", "attached-42")
	term.typeLine("stty size")
	term.expect("25 80")
	term.resize(33, 111)
	term.askUntil("stty size", "33 111")
	// The container's shell exits: the attach ends and the container stops.
	term.typeLine("exit 5")
	if code := term.wait(); code != 0 {
		t.Errorf("crictl attach exit code = %d; terminal:\n%s", code, term.out.String())
	}
	if ci := b.waitState(t, id, "CONTAINER_EXITED"); ci.Status.ExitCode != 5 {
		t.Errorf("container after exit 5: %+v", ci.Status)
	}

	// Attach without a terminal: stdin to a StdinOnce container, output back.
	once := b.runContainer(t, podID, podFile, "once", "busybox", map[string]any{
		"command": []string{"sh", "-c", "while read l; do echo got:$l; done; echo stdin-closed"}, "stdin": true, "stdin_once": true,
	})
	cmd := b.crictlCmd("attach", "-i", once)
	cmd.Stdin = strings.NewReader("line-1\nline-2\n")
	out, err := cmd.Output()
	if err != nil || !strings.Contains(string(out), "got:line-1\ngot:line-2\nstdin-closed\n") {
		t.Errorf("crictl attach -i = %q, %v", out, err)
	}
	if ci := b.waitState(t, once, "CONTAINER_EXITED"); ci.Status.ExitCode != 0 {
		t.Errorf("stdin-once container after its stdin closed: %+v", ci.Status)
	}

	// Stdin to a container created without it is refused by name.
	plain := b.runContainer(t, podID, podFile, "plain", "busybox", map[string]any{"command": []string{"sleep", "3600"}})
	_, err = b.runtime.Attach(ctxT(t), &runtime.AttachRequest{ContainerId: plain, Stdin: true, Stdout: true})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), plain) {
		t.Errorf("Attach stdin to a container without stdin = %v, want FailedPrecondition naming it", err)
	}
	b.mustCrictl(t, "rmp", "-f", podID)
	b.assertNoPodLeftovers(t, tn)
}

// portForward runs `crictl port-forward` in the background and returns once
// it listens, with its stderr and a function that stops it.
func (b *berth) portForward(t *testing.T, podID, ports string) (*storagetest.SyncBuffer, func()) {
	t.Helper()
	cmd := b.crictlCmd("port-forward", podID, ports)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &storagetest.SyncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
	t.Cleanup(stop)
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "Forwarding from") {
				close(listening)
				break
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case <-listening:
	case <-time.After(waitTimeout):
		t.Fatalf("crictl port-forward %s never listened: %s", ports, stderr.String())
	}
	return stderr, stop
}

// `crictl port-forward <pod> 18080:80` reaches a busybox httpd in the pod,
// on IPv4 and on IPv6 loopback; a closed port ends with a clear error.
func TestPortForward(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)
	podID, podFile := b.runPod(t, "forward", nil, "busybox")
	web := b.runContainer(t, podID, podFile, "web", "busybox", map[string]any{
		"command": []string{"sh", "-c", "mkdir -p /www && echo page-from-the-pod > /www/index.html && httpd -p [::1]:8081 -h /www && exec httpd -f -p 80 -h /www"},
	})
	// crictl port-forward ends at the first connection the pod refuses (as
	// kubectl's does): forward nothing before the pod's servers listen.
	serving := func() bool {
		resp, err := b.runtime.ExecSync(ctxT(t), &runtime.ExecSyncRequest{ContainerId: web, Timeout: 30,
			Cmd: []string{"sh", "-c", "wget -qO- http://127.0.0.1:80/ && wget -qO- 'http://[::1]:8081/'"}})
		return err == nil && resp.GetExitCode() == 0
	}
	if !waitFor(serving) {
		t.Fatal("the pod's web servers never answered inside the pod")
	}

	_, stop80 := b.portForward(t, podID, "18080:80")
	if body := httpGet("http://127.0.0.1:18080/"); body != "page-from-the-pod\n" {
		t.Errorf("GET 127.0.0.1:18080 = %q, want the pod's page", body)
	}
	// The port is the pod's own: nothing on the host listens on 80.
	if c, err := net.DialTimeout("tcp", "127.0.0.1:80", time.Second); err == nil {
		c.Close()
		t.Log("something on the host listens on port 80; the check above went through the pod regardless")
	}
	// Several requests over one forward.
	for i := range 3 {
		if got := httpGet("http://127.0.0.1:18080/"); got != "page-from-the-pod\n" {
			t.Errorf("request %d = %q", i, got)
		}
	}

	_, stop8081 := b.portForward(t, podID, "18081:8081")
	if got := httpGet("http://127.0.0.1:18081/"); got != "page-from-the-pod\n" {
		t.Errorf("GET through a forward to a server on [::1] only = %q", got)
	}

	closed, stop81 := b.portForward(t, podID, "18082:81")
	if got := httpGet("http://127.0.0.1:18082/"); got != "" {
		t.Errorf("GET through a forward to a closed port = %q", got)
	}
	waitFor(func() bool { return strings.Contains(closed.String(), "nothing accepts connections on localhost:81") })
	if s := closed.String(); !strings.Contains(s, "port 81 of pod "+podID) || !strings.Contains(s, "connection refused") {
		t.Errorf("crictl's error for a closed port does not say what failed:\n%s", s)
	} else {
		t.Logf("crictl says, for a closed port: %s", strings.TrimSpace(s))
	}

	for _, tc := range []struct {
		name string
		req  *runtime.PortForwardRequest
		code codes.Code
	}{
		{"unknown pod", &runtime.PortForwardRequest{PodSandboxId: "no-such-pod", Port: []int32{80}}, codes.NotFound},
		{"bad port", &runtime.PortForwardRequest{PodSandboxId: podID, Port: []int32{70000}}, codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := b.runtime.PortForward(ctxT(t), tc.req); status.Code(err) != tc.code {
				t.Errorf("PortForward = %v, want %s", err, tc.code)
			}
		})
	}
	stop80()
	stop8081()
	stop81()
	b.mustCrictl(t, "stopp", podID)
	_, err := b.runtime.PortForward(ctxT(t), &runtime.PortForwardRequest{PodSandboxId: podID, Port: []int32{80}})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), podID) {
		t.Errorf("PortForward to a stopped pod = %v, want FailedPrecondition naming it", err)
	}
	b.mustCrictl(t, "rmp", "-f", podID)
	b.assertNoPodLeftovers(t, tn)
}

// 20 exec sessions at once on one container all succeed and leave nothing:
// only the container's own process in its cgroup and no runtime exec
// processes on the host.
func TestConcurrentExecsLeakNothing(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, append(tn.args(), "--log-level", "info")...)
	podID, podFile := b.runPod(t, "busy", nil, "busybox")
	id := b.runContainer(t, podID, podFile, "main", "busybox", map[string]any{"command": []string{"sleep", "3600"}})

	const sessions = 20
	start := time.Now()
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Go(func() {
			want := fmt.Sprintf("session-%d\n", i)
			cmd := b.crictlCmd("exec", id, "sh", "-c", fmt.Sprintf("sleep 0.5; echo session-%d", i))
			if i%2 == 0 {
				cmd = b.crictlCmd("exec", "-i", id, "cat")
				cmd.Stdin = strings.NewReader(want)
			}
			var stderr storagetest.SyncBuffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil || string(out) != want {
				t.Errorf("session %d = %q, %v; stderr %q", i, out, err, stderr.String())
			}
		})
	}
	wg.Wait()
	t.Logf("%d concurrent exec sessions took %v", sessions, time.Since(start))

	if procs := cgroupFile(t, id, "pids", "cgroup.procs"); len(strings.Fields(procs)) != 1 {
		t.Errorf("processes in the container's cgroup after the sessions: %q", procs)
	}
	ps := b.mustCrictl(t, "exec", id, "ps", "-o", "pid,args")
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(ps), "\n")[1:] {
		// The pod's infra process shares the container's pid namespace.
		if !strings.Contains(l, "ps -o") && !strings.HasSuffix(l, "/pause") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	if len(lines) != 1 || !strings.HasSuffix(lines[0], "sleep 3600") {
		t.Errorf("processes in the container besides ps: %q", lines)
	}
	for _, p := range processesMentioning(t, b.Root) {
		if strings.Contains(p, " exec ") {
			t.Errorf("runtime exec process left on the host: %s", p)
		}
	}
	if ents, err := filepath.Glob(filepath.Join(b.Root, "run", "containers", id, "exec-*")); err != nil || len(ents) != 0 {
		t.Errorf("exec dirs left: %v", ents)
	}
	b.mustCrictl(t, "rmp", "-f", podID)
	b.assertNoPodLeftovers(t, tn)
}

// An exec session ends with its client (crictl killed) and with the daemon
// (SIGTERM): the shell it ran is gone from the container either way, while
// the container itself keeps running.
func TestExecSessionsEndWithClientAndDaemon(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)
	podID, podFile := b.runPod(t, "hangup", nil, "busybox")
	id := b.runContainer(t, podID, podFile, "main", "busybox", map[string]any{"command": []string{"sleep", "3600"}})
	onlyMain := func() bool {
		return len(strings.Fields(cgroupFile(t, id, "pids", "cgroup.procs"))) == 1
	}
	consoleDirs := func() map[string]bool {
		m := map[string]bool{}
		dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "berth-console-*"))
		for _, d := range dirs {
			m[d] = true
		}
		return m
	}
	consolesBefore := consoleDirs()

	term := startTerminal(t, b.crictlCmd("exec", "-it", id, "sh"), 24, 80)
	term.typeLine("echo ready-$((1+1))")
	term.expect("ready-2")
	if onlyMain() {
		t.Fatal("the session's shell is not in the container")
	}
	term.cmd.Process.Kill()
	term.wait()
	start := time.Now()
	if !waitFor(onlyMain) {
		t.Errorf("the shell outlived its killed client: %q", cgroupFile(t, id, "pids", "cgroup.procs"))
	}
	t.Logf("shell gone %v after its client was killed", time.Since(start))

	term = startTerminal(t, b.crictlCmd("exec", "-it", id, "sh"), 24, 80)
	term.typeLine("echo ready-$((2+2))")
	term.expect("ready-4")
	if err := b.Stop(); err != nil {
		t.Fatalf("stop berth with a session open: %v", err)
	}
	term.wait()
	if !onlyMain() {
		t.Errorf("the shell outlived the daemon: %q", cgroupFile(t, id, "pids", "cgroup.procs"))
	}
	for _, p := range processesMentioning(t, b.Root) {
		if strings.Contains(p, " exec ") {
			t.Errorf("runtime exec process left after the daemon stopped: %s", p)
		}
	}
	for d := range consoleDirs() {
		if !consolesBefore[d] {
			t.Errorf("console socket dir left after the daemon stopped: %s", d)
		}
	}
	b.conn.Close()
	b.conn = nil
	b = startBerthIn(t, b.Root, tn.args()...)
	if ci := b.inspect(t, id); ci.Status.State != "CONTAINER_RUNNING" {
		t.Errorf("container after the daemon's restart: %s", ci.Status.State)
	}
	b.mustCrictl(t, "rmp", "-f", podID)
	b.assertNoPodLeftovers(t, tn)
}

// The streaming server can serve TLS with the configured certificate.
func TestStreamingOverTLS(t *testing.T) {
	tn := newTestNetwork(t)
	root := t.TempDir()
	ca := writeServingCert(t, filepath.Join(root, "tls"))
	writeFile(t, filepath.Join(root, "berth.toml.d", "10-stream.toml"), fmt.Sprintf(
		"[api]\nstream_tls_cert = %q\nstream_tls_key = %q\n", filepath.Join(root, "tls", "tls.crt"), filepath.Join(root, "tls", "tls.key")))
	b := startBerthIn(t, root, tn.args()...)
	podID, podFile := b.runPod(t, "tls", nil, "busybox")
	id := b.runContainer(t, podID, podFile, "main", "busybox", map[string]any{"command": []string{"sleep", "3600"}})

	resp, err := b.runtime.Exec(ctxT(t), &runtime.ExecRequest{ContainerId: id, Cmd: []string{"true"}, Stdout: true})
	if err != nil || !strings.HasPrefix(resp.GetUrl(), "https://127.0.0.1:") {
		t.Errorf("Exec = %v, %v; want an https URL", resp, err)
	}
	// crictl insists on a client certificate too; the server asks for none.
	client := []string{"--tls-cert", filepath.Join(root, "tls", "tls.crt"), "--tls-key", filepath.Join(root, "tls", "tls.key")}
	if out := b.mustCrictl(t, append(append([]string{"exec", "--tls-ca", ca}, client...), id, "echo", "over-tls")...); out != "over-tls\n" {
		t.Errorf("crictl exec over TLS = %q", out)
	}
	otherCA := writeServingCert(t, filepath.Join(root, "other"))
	if _, err := b.crictl(t, append(append([]string{"exec", "--tls-ca", otherCA}, client...), id, "echo", "wrong-ca")...); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("crictl exec trusting another CA: %v, want a certificate error", err)
	}
	b.mustCrictl(t, "rmp", "-f", podID)
	b.assertNoPodLeftovers(t, tn)
}

// writeServingCert writes a CA and a server certificate for localhost and
// 127.0.0.1 it signs into dir (tls.crt, tls.key) and returns the CA's path.
func writeServingCert(t *testing.T, dir string) string {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "berth test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	writeFile(t, filepath.Join(dir, "ca.crt"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))
	writeFile(t, filepath.Join(dir, "tls.crt"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, filepath.Join(dir, "tls.key"), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	return filepath.Join(dir, "ca.crt")
}
