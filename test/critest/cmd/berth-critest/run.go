package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/test/critest"
)

// critestPorts are the host ports critest's networking specs bind.
var critestPorts = []int{12000, 12001, 12002, 12003}

// runSuite is `berth-critest run`.
func runSuite(ctx context.Context, o *options) (int, error) {
	skips, err := critest.ReadSkips(o.skips)
	if err != nil {
		return 1, err
	}
	active := critest.Active(skips)
	if err := preflight([]string{o.critest, "ginkgo", "crictl", "ipcmk"}, critestPorts); err != nil {
		return 1, err
	}
	logf("critest %s, -parallel %d; %d specs skipped per %s (%d listed)", critestVersion(o.critest), o.parallel, len(active), o.skips, len(skips))

	e, err := setupEnv(ctx, o)
	if err != nil {
		return 1, err
	}
	defer func() {
		if err := e.close(); err != nil {
			logf("clean-up: %v", err)
		}
	}()
	rt, err := e.startBerth(ctx, o.berth)
	if err != nil {
		return 1, err
	}

	shmBefore := shmSegments()
	junit := filepath.Join(o.out, "junit.xml")
	_ = os.Remove(junit)
	logPath := filepath.Join(o.out, "critest.log")
	args := []string{
		"-runtime-endpoint", "unix://" + rt.socket,
		"-image-endpoint", "unix://" + rt.socket,
		"-parallel", fmt.Sprint(o.parallel),
		"-ginkgo.junit-report", junit,
		"-ginkgo.timeout", o.timeout.String(),
		"-ginkgo.no-color",
		"-ginkgo.skip", critest.SkipRegex(active),
	}
	if o.focus != "" {
		args = append(args, "-ginkgo.focus", o.focus)
	}
	if rt.nriSocket != "" {
		args = append(args, "-nri-socket", rt.nriSocket)
	}
	logf("running critest (output in %s)...", logPath)
	start := time.Now()
	critestErr := runSuiteProcess(ctx, o, o.critest, args, o.out, "", logPath)
	took := time.Since(start)

	leftover, stopErr := e.shutdown(rt)
	if n := removeCritestShm(shmBefore); n > 0 {
		logf("removed %d shared memory segments critest's HostIpc specs left on the host", n)
	}

	specs, err := critest.ReadJUnit(junit)
	if err != nil {
		return 1, fmt.Errorf("no results (critest: %v): %w", critestErr, err)
	}
	sum := critest.Summarize(specs, active)
	stale := critest.StaleSkips(active, specs)
	return finishRun(ctx, o, outcome{
		name: "critest", sum: sum, stale: stale,
		summary:  formatSummary(sum, took, stale, leftover),
		suiteErr: critestErr, stopErr: stopErr, logPath: logPath,
	})
}

// outcome is what a suite's run ended with.
type outcome struct {
	name              string // the suite, as the closing line names it
	sum               critest.Summary
	stale             []critest.Skip
	summary           string
	suiteErr, stopErr error
	logPath           string
}

// finishRun prints and keeps a run's summary, sets the closing line and
// turns the outcome into the exit code: failed specs or stale skip rows are
// 1, and so is a suite that failed without a failed spec (a crash or a
// timeout) or a runtime that did not stop cleanly.
func finishRun(ctx context.Context, o *options, r outcome) (int, error) {
	closingLine = fmt.Sprintf("%s: %d passed, %d failed, %d skipped", r.name, r.sum.Passed, r.sum.Failed, r.sum.Skipped)
	if n := len(r.sum.Interrupted); n > 0 {
		closingLine += fmt.Sprintf(", %d interrupted", n)
	}
	if ctx.Err() != nil {
		r.summary += "\nINTERRUPTED: the run was cut short; specs it never reached count as skipped.\n"
	}
	fmt.Print(r.summary)
	if err := os.WriteFile(filepath.Join(o.out, "summary.txt"), []byte(r.summary), 0o644); err != nil {
		logf("write summary: %v", err)
	}
	code := 0
	if len(r.sum.Failures) > 0 || len(r.sum.Interrupted) > 0 || len(r.stale) > 0 {
		code = 1
	}
	if r.suiteErr != nil && code == 0 {
		return 1, fmt.Errorf("%s: %w; see %s", r.name, r.suiteErr, r.logPath)
	}
	if r.stopErr != nil {
		return 1, fmt.Errorf("stop berth: %w", r.stopErr)
	}
	return code, nil
}

// runSuiteProcess runs a suite's binary bin in dir, with env (NAME=value)
// added unless empty, its output in logPath (and on stdout with -v). It
// runs in a process group of its own so that an interrupt reaches the
// ginkgo CLI and every test process, which then clean up their pods (and,
// in the node e2e suite, stop kubelet).
func runSuiteProcess(ctx context.Context, o *options, bin string, args []string, dir, env, logPath string) error {
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "$ cd %s && %s %s\n", dir, strings.TrimSpace(env+" "+bin), strings.Join(quoteArgs(args), " "))
	var out io.Writer = logFile
	if o.verbose {
		out = io.MultiWriter(logFile, os.Stdout)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	if env != "" {
		cmd.Env = append(os.Environ(), env)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
	cmd.WaitDelay = 2 * time.Minute
	err = cmd.Run()
	if cmd.Process != nil {
		waitGroupGone(cmd.Process.Pid, 2*time.Minute)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("exit status %d", ee.ExitCode())
	}
	return err
}

// waitGroupGone waits until no process of the group is left: on an
// interrupt critest exits at once while the ginkgo CLI's test processes
// still clean up their pods, and the runtime must not be stopped under
// them. After timeout the group is killed.
func waitGroupGone(pgid int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for syscall.Kill(-pgid, 0) == nil {
		if time.Now().After(deadline) {
			logf("critest's processes still running after %s; killing them", timeout)
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			deadline = time.Now().Add(time.Hour)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " []()|$'\"\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return out
}

// formatSummary is what `make critest` prints at the end and keeps in
// summary.txt: the counts, then every failure with its message, every spec
// critest skipped on its own, stale skip rows and leftover pods.
func formatSummary(s critest.Summary, took time.Duration, stale []critest.Skip, leftover int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\ncritest against berth: %d passed, %d failed, %d skipped (%d per SKIPS.md, %d benchmarks, %d by critest itself) of %d specs; critest ran %s\n",
		s.Passed, s.Failed, s.Skipped, len(s.SkippedByList), len(s.Benchmarks), len(s.SkippedByCritest), s.Passed+s.Failed+s.Skipped+len(s.Interrupted), took.Round(time.Second))
	writeFailures(&b, s.Failures)
	writeInterrupted(&b, s.Interrupted)
	if len(s.SkippedByCritest) > 0 {
		fmt.Fprintf(&b, "\nSkipped by critest itself (%d; features the runtime does not announce, or the host lacks):\n", len(s.SkippedByCritest))
		for _, sp := range s.SkippedByCritest {
			fmt.Fprintf(&b, "  - %s\n      %s\n", sp.Name, strings.Join(gist(sp.Message, 1, 0), ""))
		}
	}
	writeStale(&b, stale)
	if leftover > 0 {
		fmt.Fprintf(&b, "\n%d pods were left in berth after critest and removed with crictl rmp -fa\n", leftover)
	}
	return b.String()
}

// writeFailures lists every failure with the gist of its message.
func writeFailures(b *strings.Builder, failures []critest.Spec) {
	if len(failures) == 0 {
		return
	}
	fmt.Fprintf(b, "\nFAILED (%d):\n", len(failures))
	for _, f := range failures {
		name := f.Name
		if f.Node != "It" {
			name = "[" + f.Node + "] " + name
		}
		fmt.Fprintf(b, "  - %s\n", name)
		for _, line := range gist(f.Message, 6, 4) {
			fmt.Fprintf(b, "      %s\n", line)
		}
	}
}

// writeInterrupted names the specs a cut-short run stopped half-way.
func writeInterrupted(b *strings.Builder, specs []critest.Spec) {
	if len(specs) == 0 {
		return
	}
	fmt.Fprintf(b, "\nINTERRUPTED half-way (%d; neither passed nor failed):\n", len(specs))
	for _, sp := range specs {
		fmt.Fprintf(b, "  - %s\n", sp.Name)
	}
}

// writeStale lists skip rows that name no spec of the suite.
func writeStale(b *strings.Builder, stale []critest.Skip) {
	if len(stale) == 0 {
		return
	}
	fmt.Fprintf(b, "\nSKIPS.md names specs the suite does not have (fix the list):\n")
	for _, sk := range stale {
		fmt.Fprintf(b, "  - %s\n", sk.Name)
	}
}

// gist returns up to head non-empty lines of s, stopping where Gomega
// starts dumping a Go value (a line that is or ends in "{"). Gomega puts the
// cause after such a dump ("Verifying pod ... Pod: {" ... "}", then
// "Expected success, but got an error: ..."), so the last tail lines that
// say something (not only brackets) of what follows the dump come after a
// "...".
func gist(s string, head, tail int) []string {
	lines := strings.Split(s, "\n")
	var out []string
	after := -1 // where the dump starts
	for i, line := range lines {
		if line = strings.TrimRight(line, " \t"); strings.TrimSpace(line) == "" {
			continue
		}
		if strings.TrimSpace(line) == "{" {
			after = i
			break
		}
		if len(out) == head {
			return append(out, "...")
		}
		out = append(out, line)
		if strings.HasSuffix(line, "{") {
			after = i
			break
		}
	}
	if after < 0 {
		return out
	}
	// Skip the dump: up to where its braces balance.
	depth := 0
	for ; after < len(lines); after++ {
		depth += strings.Count(lines[after], "{") - strings.Count(lines[after], "}")
		if depth <= 0 {
			break
		}
	}
	var last []string
	for i := len(lines) - 1; i > after && len(last) < tail; i-- {
		l := strings.TrimRight(lines[i], " \t")
		if strings.Trim(l, " \t{}[](),:") == "" {
			continue
		}
		last = append([]string{l}, last...)
	}
	if len(last) == 0 {
		return out
	}
	return append(append(out, "..."), last...)
}
