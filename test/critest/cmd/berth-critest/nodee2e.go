package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/test/critest"
	"github.com/berth-dev/berth/test/rig"
)

// Kubernetes' node e2e suite against Berth: `berth-critest node-e2e`, what
// `make node-e2e` and `make node-e2e-smoke` run. e2e_node.test starts etcd
// and an API server in-process and a real kubelet whose CRI endpoint is the
// run's Berth; the specs then drive pods through the API server. See
// test/nodee2e/NOTES.md for the flags and why each is there.

// The host ports the suite's own services bind: the API server, the
// embedded etcd (client and peer) and the kubelet (healthz, server, read
// only).
var nodeE2EPorts = []int{6443, 2379, 2380, 10248, 10250, 10255}

// The suite's fixed selection. NODE_E2E_FOCUS and NODE_E2E_SKIP (the
// -focus and -skip flags) replace it; the SKIPS.md rows are always added
// to the skip.
const (
	defaultNodeFocus = `\[NodeConformance\]`
	defaultNodeSkip  = `\[Flaky\]|\[Serial\]`
)

// kubeletRoot is the suite's constant (services.KubeletRootDirectory): the
// kubelet it starts always runs there.
const kubeletRoot = "/var/lib/kubelet"

// runNodeE2E is `berth-critest node-e2e`.
func runNodeE2E(ctx context.Context, o *options) (int, error) {
	var active []critest.Skip
	if o.skips != "" {
		skips, err := critest.ReadSkips(o.skips)
		if err != nil {
			return 1, err
		}
		active = critest.Active(skips)
	}
	suite := filepath.Join(o.e2eBin, "e2e_node.test")
	agnhost := filepath.Join(o.e2eBin, "agnhost")
	tools := []string{suite, filepath.Join(o.e2eBin, "kubelet"), agnhost, "crictl", "ipcmk"}
	if o.parallel > 1 {
		tools = append(tools, "ginkgo")
	}
	if err := preflight(tools, nodeE2EPorts); err != nil {
		return 1, err
	}
	if pids := processesNamed("kubelet"); len(pids) > 0 {
		return 1, fmt.Errorf("host not ready: a kubelet is running (pid %v); the suite's kubelet needs %s to itself", pids, kubeletRoot)
	}
	skip := o.skip
	if len(active) > 0 {
		skip += "|" + critest.SkipRegex(active)
	}
	logf("node e2e: focus %q, skip %q; %d specs skipped per %s", o.focus, o.skip, len(active), o.skips)

	e, err := setupEnv(ctx, o)
	if err != nil {
		return 1, err
	}
	defer func() {
		if err := e.close(); err != nil {
			logf("clean-up: %v", err)
		}
	}()
	start := time.Now()
	images, err := rig.BuildNodeE2EImages(ctx, o.imageDir, agnhost)
	if err != nil {
		return 1, fmt.Errorf("build the node e2e images: %w", err)
	}
	if err := e.rig.Registry.PushAll(ctx, images); err != nil {
		return 1, fmt.Errorf("push the node e2e images: %w", err)
	}
	logf("rig: %d node e2e images built or reused and pushed in %.1fs", len(images), time.Since(start).Seconds())

	e.onClose("clean "+kubeletRoot, claimKubeletDirs())
	if err := writeTestHandler(filepath.Join(e.work, "berth")); err != nil {
		return 1, err
	}
	rt, err := e.startBerth(ctx, o.berth)
	if err != nil {
		return 1, err
	}

	scratch := filepath.Join(e.work, "suite")
	pathDir := filepath.Join(e.work, "path")
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		return 1, err
	}
	if err := linkPathWithout(pathDir, strings.Split(os.Getenv("PATH"), ":"), "systemd-run", "systemctl"); err != nil {
		return 1, fmt.Errorf("PATH without systemd-run: %w", err)
	}
	kubeletConfig := filepath.Join(scratch, "kubeletconfig.yaml")
	if err := os.WriteFile(kubeletConfig, []byte(kubeletConfigFor(e.network.Subnet.String())), 0o644); err != nil {
		return 1, err
	}
	pidFile := filepath.Join(e.work, "berth.pid")
	if err := os.WriteFile(pidFile, []byte(fmt.Sprint(rt.pid)), 0o644); err != nil {
		return 1, err
	}

	junit, report := filepath.Join(o.out, "junit.xml"), filepath.Join(o.out, "report.json")
	for _, p := range []string{junit, report} {
		_ = os.Remove(p)
	}
	suiteArgs := []string{
		"--container-runtime-endpoint=unix://" + rt.socket,
		"--image-service-endpoint=unix://" + rt.socket,
		"--container-runtime-process-name=berth",
		"--container-runtime-pid-file=" + pidFile,
		"--prepull-images=false",
		"--node-name=berth-node",
		"--kubelet-config-file=" + kubeletConfig,
		"--kubelet-flags=--system-cgroups= --kubelet-cgroups= --runtime-cgroups=",
		"--report-dir=" + o.out,
	}
	ginkgoArgs := []string{
		"focus=" + o.focus,
		"skip=" + skip,
		"junit-report=" + junit,
		"json-report=" + report,
		"timeout=" + o.timeout.String(),
		"no-color",
	}
	var bin string
	var args []string
	if o.parallel > 1 {
		// Parallel processes need the ginkgo CLI; process 1 starts the
		// services and hands the others the API server's token.
		bin = "ginkgo"
		args = append(args, fmt.Sprintf("--procs=%d", o.parallel))
		for _, a := range ginkgoArgs {
			args = append(args, "--"+a)
		}
		args = append(append(args, suite, "--"), suiteArgs...)
	} else {
		bin = suite
		args = suiteArgs
		for _, a := range ginkgoArgs {
			args = append(args, "--ginkgo."+a)
		}
	}
	logPath := filepath.Join(o.out, "node-e2e.log")
	logf("running e2e_node.test%s (output in %s)...", map[bool]string{true: fmt.Sprintf(" on %d processes", o.parallel)}[o.parallel > 1], logPath)
	start = time.Now()
	suiteErr := runSuiteProcess(ctx, o, bin, args, scratch, "PATH="+pathDir, logPath)
	took := time.Since(start)

	leftover, stopErr := e.shutdown(rt)

	// The JSON report, not JUnit: its names are the specs' texts without
	// the labels, as focus, skip and SKIPS.md name them.
	specs, err := critest.ReadJSONReport(report)
	if err != nil {
		return 1, fmt.Errorf("no results (e2e_node.test: %v): %w", suiteErr, err)
	}
	selected, err := selectedSpecs(specs, o.focus, o.skip)
	if err != nil {
		return 1, err
	}
	sum := critest.Summarize(selected, active)
	stale := critest.StaleSkips(active, specs)
	return finishRun(ctx, o, outcome{
		name: "node e2e", sum: sum, stale: stale,
		summary:  formatNodeSummary(sum, took, stale, leftover),
		suiteErr: suiteErr, stopErr: stopErr, logPath: logPath,
	})
}

// kubeletConfigFor is the base KubeletConfiguration for this kind of host
// (cgroup v1, cgroupfs, no systemd as PID 1); the suite overrides
// authentication, ports and the static pod path itself. podCIDR is the
// run's CNI subnet: nothing allocates one, and the specs that compare pod
// and node addresses read it.
func kubeletConfigFor(podCIDR string) string {
	return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
oomScoreAdj: 0
cgroupRoot: /
podCIDR: ` + podCIDR + `
volumeStatsAggPeriod: 10s
fileCheckFrequency: 10s
serializeImagePulls: false
evictionPressureTransitionPeriod: 30s
evictionHard:
  memory.available: 250Mi
  nodefs.available: 10%
  nodefs.inodesFree: 5%
evictionMinimumReclaim:
  nodefs.available: 5%
  nodefs.inodesFree: 5%
`
}

// linkPathWithout fills dir with a symlink to every executable found in
// the PATH directories, the first of a name winning as in a lookup, except
// the names left out. The suite runs kubelet as a systemd unit whenever it
// finds systemd-run, which fails on a host whose PID 1 is not systemd; a
// PATH of links is how it does not find it while kubelet still finds
// mount, nsenter, iptables and the rest.
func linkPathWithout(dir string, path []string, leaveOut ...string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	out := map[string]bool{}
	for _, n := range leaveOut {
		out[n] = true
	}
	seen := map[string]bool{}
	for _, d := range path {
		if d == "" || d == dir {
			continue
		}
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, ent := range entries {
			name := ent.Name()
			if out[name] || seen[name] {
				continue
			}
			target := filepath.Join(d, name)
			st, err := os.Stat(target)
			if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
				continue
			}
			seen[name] = true
			if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// claimKubeletDirs notes what the suite's kubelet will write outside the
// work dir, its root, the pod logs it asks Berth for and its QoS cgroups,
// and returns what removes it afterwards: mounts kubelet left under its
// root (volumes of pods that were not torn down), the log directories of
// the run's pods and the kubepods cgroup trees, once empty. A root that
// existed before is kept, only emptied of its pods.
func claimKubeletDirs() func() error {
	_, err := os.Stat(kubeletRoot)
	rootExisted := err == nil
	cgroupsBefore := map[string]bool{}
	for _, c := range kubepodsCgroups() {
		cgroupsBefore[c] = true
	}
	logsBefore := map[string]bool{}
	if entries, err := os.ReadDir("/var/log/pods"); err == nil {
		for _, ent := range entries {
			logsBefore[ent.Name()] = true
		}
	}
	return func() error {
		var errs []error
		if rootExisted {
			if err := removeTree(filepath.Join(kubeletRoot, "pods")); err != nil {
				errs = append(errs, err)
			}
		} else if err := removeTree(kubeletRoot); err != nil {
			errs = append(errs, err)
		}
		entries, _ := os.ReadDir("/var/log/pods")
		for _, ent := range entries {
			if !logsBefore[ent.Name()] {
				if err := os.RemoveAll(filepath.Join("/var/log/pods", ent.Name())); err != nil {
					errs = append(errs, err)
				}
			}
		}
		for _, c := range kubepodsCgroups() {
			if !cgroupsBefore[c] {
				if err := removeCgroupTree(c); err != nil {
					errs = append(errs, err)
				}
			}
		}
		return errors.Join(errs...)
	}
}

// kubepodsCgroups are the kubelet's top QoS cgroup directories that exist:
// one per v1 hierarchy, or the one of a v2 host.
func kubepodsCgroups() []string {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods")
	if st, err := os.Stat("/sys/fs/cgroup/kubepods"); err == nil && st.IsDir() {
		dirs = append(dirs, "/sys/fs/cgroup/kubepods")
	}
	return dirs
}

// removeCgroupTree removes the cgroup directory dir and those under it,
// deepest first. A cgroup that still has processes cannot go: that is a
// leak worth an error, not something to kill here.
func removeCgroupTree(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dirs[i], err))
		}
	}
	return errors.Join(errs...)
}

// selectedSpecs are the specs of a run that the focus and skip chose: a
// Ginkgo JUnit report lists every spec of the suite, the ones left out by
// the focus as skipped. Suite nodes (BeforeSuite and the like) are kept.
func selectedSpecs(specs []critest.Spec, focus, skip string) ([]critest.Spec, error) {
	f, err := regexp.Compile(focus)
	if err != nil {
		return nil, fmt.Errorf("focus %q: %w", focus, err)
	}
	var s *regexp.Regexp
	if skip != "" {
		if s, err = regexp.Compile(skip); err != nil {
			return nil, fmt.Errorf("skip %q: %w", skip, err)
		}
	}
	var out []critest.Spec
	for _, sp := range specs {
		if sp.Node == "It" && (!f.MatchString(sp.Name) || (s != nil && s.MatchString(sp.Name))) {
			continue
		}
		out = append(out, sp)
	}
	return out, nil
}

// processesNamed lists the pids whose command name is name.
func processesNamed(name string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		var pid int
		if _, err := fmt.Sscan(ent.Name(), &pid); err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "comm"))
		if err == nil && strings.TrimSpace(string(comm)) == name {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids
}

// formatNodeSummary is what `make node-e2e` prints at the end and keeps in
// summary.txt: the counts, then every failure with its message.
func formatNodeSummary(s critest.Summary, took time.Duration, stale []critest.Skip, leftover int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nnode e2e against berth: %d passed, %d failed, %d skipped (%d per SKIPS.md, %d by the suite itself) of %d specs; the suite ran %s\n",
		s.Passed, s.Failed, s.Skipped, len(s.SkippedByList), len(s.SkippedByCritest)+len(s.Benchmarks), s.Passed+s.Failed+s.Skipped+len(s.Interrupted), took.Round(time.Second))
	writeFailures(&b, s.Failures)
	writeInterrupted(&b, s.Interrupted)
	if n := append(s.SkippedByCritest, s.Benchmarks...); len(n) > 0 {
		fmt.Fprintf(&b, "\nSkipped by the suite itself (%d):\n", len(n))
		for _, sp := range n {
			fmt.Fprintf(&b, "  - %s\n      %s\n", sp.Name, strings.Join(gist(sp.Message, 1, 0), ""))
		}
	}
	writeStale(&b, stale)
	if leftover > 0 {
		fmt.Fprintf(&b, "\n%d pods the suite's kubelet left in berth when it was stopped were removed with crictl rmp -fa\n", leftover)
	}
	return b.String()
}

// testHandler is the RuntimeClass handler the e2e suites expect every node
// to have (their PreconfiguredRuntimeClassHandler), as their CI configures
// it for CRI-O and containerd: here, crun under another name.
const testHandler = `# berth-critest: the RuntimeClass handler Kubernetes' e2e suites expect.
[runtime.handlers.test-handler]
path = "/usr/bin/crun"
root = "/run/crun"
`

// writeTestHandler adds testHandler to the configuration of the berth
// under root.
func writeTestHandler(root string) error {
	dir := filepath.Join(root, "berth.toml.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create berth config dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "60-test-handler.toml"), []byte(testHandler), 0o644); err != nil {
		return fmt.Errorf("write the test-handler runtime handler: %w", err)
	}
	return nil
}
