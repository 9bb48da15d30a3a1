package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/test/critest"
	"github.com/berth-dev/berth/test/rig"
)

// runBench is `berth-critest bench`: the same benchmarks against Berth and,
// unless told otherwise, containerd, one after the other on one registry and
// network, then their medians side by side.
func runBench(ctx context.Context, o *options) (int, error) {
	tools := []string{o.critest, "crictl"}
	if o.containerd {
		tools = append(tools, critest.ContainerdBinary, "containerd-shim-runc-v2")
	}
	if err := preflight(tools, nil); err != nil {
		return 1, err
	}
	e, err := setupEnv(ctx, o)
	if err != nil {
		return 1, err
	}
	defer func() {
		if err := e.close(); err != nil {
			logf("clean-up: %v", err)
		}
	}()
	params := filepath.Join(e.work, "bench-params.yaml")
	if err := writeBenchParams(params, o.samples); err != nil {
		return 1, err
	}

	starts := []func(context.Context) (*runtime, error){
		func(ctx context.Context) (*runtime, error) { return e.startBerth(ctx, o.berth) },
	}
	if o.containerd {
		starts = append(starts, e.startContainerd)
	}
	var benches []*critest.Bench
	code := 0
	for _, start := range starts {
		b, err := e.benchOne(ctx, o, start, params)
		if err != nil {
			logf("%v", err)
			code = 1
		}
		if b != nil {
			benches = append(benches, b)
		}
	}
	if len(benches) == 0 {
		return 1, fmt.Errorf("no benchmark results")
	}
	table := fmt.Sprintf("\ncritest -benchmark, medians (%d samples per lifecycle, one at a time):\n\n%s",
		o.samples, critest.FormatBench(benches))
	fmt.Print(table)
	if err := os.WriteFile(filepath.Join(o.out, "summary.txt"), []byte(table), 0o644); err != nil {
		logf("write summary: %v", err)
	}
	return code, nil
}

// writeBenchParams sets how many samples each benchmark takes and points
// the image benchmarks at rig images (critest's defaults are on
// public.ecr.aws).
func writeBenchParams(path string, n int) error {
	p := critest.BenchParams{
		ContainersNumber: n, ContainersNumberParallel: 1,
		PodsNumber: n, PodsNumberParallel: 1,
		ImagesNumber: n, ImagesNumberParallel: 1,
		ImagePullingBenchmarkImage:               rig.RefTestImageLatest,
		ImageListingBenchmarkImages:              []string{rig.RefTestImageLatest},
		PodContainerStartBenchmarkTimeoutSeconds: 30,
		ImageBenchmarkTimeoutSeconds:             60,
	}
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// benchOne starts a runtime, pulls the images every sample needs (so the
// first sample does not pay for a pull), runs critest -benchmark against
// it, removes what is left and stops it.
func (e *env) benchOne(ctx context.Context, o *options, start func(context.Context) (*runtime, error), params string) (*critest.Bench, error) {
	rt, err := start(ctx)
	if err != nil {
		return nil, err
	}
	out := filepath.Join(o.out, rt.name)
	if err := os.RemoveAll(out); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	for _, ref := range []string{rig.RefE2EBusybox, rig.RefPause} {
		if _, err := rig.Crictl(ctx, rt.socket, "pull", ref); err != nil {
			logf("%s: pre-pull %s: %v", rt.name, ref, err)
		}
	}
	idleRSS := rssMiB(rt.pid)
	jsonReport := filepath.Join(out, "report.json")
	args := []string{
		"-benchmark",
		"-runtime-endpoint", "unix://" + rt.socket,
		"-image-endpoint", "unix://" + rt.socket,
		"-benchmarking-params-file", params,
		"-benchmarking-output-dir", out,
		"-ginkgo.junit-report", filepath.Join(out, "junit.xml"),
		"-ginkgo.json-report", jsonReport,
		"-ginkgo.timeout", o.timeout.String(),
		"-ginkgo.no-color",
	}
	logPath := filepath.Join(out, "critest.log")
	logf("%s: running critest -benchmark (output in %s)...", rt.name, logPath)
	begin := time.Now()
	critestErr := runSuiteProcess(ctx, o, o.critest, args, o.out, "", logPath)
	afterRSS := rssMiB(rt.pid)
	logf("%s: benchmarks took %s", rt.name, time.Since(begin).Round(time.Second))
	if _, err := e.shutdown(rt); err != nil {
		logf("%s: stop: %v", rt.name, err)
	}
	if err := os.Rename(filepath.Join(o.out, rt.name+".log"), filepath.Join(out, rt.name+".log")); err != nil {
		logf("%s: move log: %v", rt.name, err)
	}

	b, err := critest.ReadBench(rt.name, out, jsonReport)
	if err != nil {
		return nil, err
	}
	b.IdleRSS, b.AfterRSS = idleRSS, afterRSS
	if specs, err := critest.ReadJUnit(filepath.Join(out, "junit.xml")); err == nil {
		for _, sp := range specs {
			if sp.Failed() {
				logf("%s: benchmark failed: %s: %s", rt.name, sp.Name, strings.Join(gist(sp.Message, 3, 2), " / "))
			}
		}
	}
	if critestErr != nil {
		return b, fmt.Errorf("%s: critest -benchmark: %w; see %s", rt.name, critestErr, logPath)
	}
	return b, nil
}

// rssMiB is a process's resident set size (VmRSS), 0 if unknown.
func rssMiB(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(rest), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}
