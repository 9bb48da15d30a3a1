// Command berth-bench is `make bench`: kubelet-shaped pod and container
// lifecycles over CRI gRPC against Berth, containerd 2.4 and containerd
// 1.6, one after another on one registry, each in a private root with its
// own socket and CNI bridge; then the figures side by side (median, p90,
// ratios) as JSON, Markdown and SVG/PNG charts in --out.
//
//	berth-bench [-berth bin/berth] [-out _output/bench] [-runtimes berth,containerd-2.4,containerd-1.6] [-quick] [-profile 25s]
//
// Needs root and what `make deps` installs.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/test/bench"
	"github.com/berth-dev/berth/test/rig"
)

func main() {
	var (
		berth    = flag.String("berth", "bin/berth", "berth binary under test")
		out      = flag.String("out", "_output/bench", "directory for bench.json, bench.md, the charts, logs and the profile")
		runtimes = flag.String("runtimes", strings.Join(bench.RuntimeNames, ","), "runtimes to run, in order; ratios are of the first to each other")
		quick    = flag.Bool("quick", false, "a smaller workload (fewer samples, 200 containers at most): a smoke run")
		profile  = flag.Duration("profile", 0, "take a CPU profile of berth this long during the lifecycle phase (e.g. 25s); 0: none")
		imageDir = flag.String("image-dir", rig.DefaultImageDir(), "where the rig builds its images (a build is reused)")
		keep     = flag.Bool("keep", false, "keep the work dir's registry (runtime roots are always removed)")
		logLevel = flag.String("berth-log-level", "info", "berth's --log-level (debug logs each CreateContainer's step times)")
		render   = flag.String("render", "", "run nothing: read this bench.json and write the tables and charts to -out again")
	)
	flag.Parse()
	if *render != "" {
		if err := rerender(*render, *out); err != nil {
			fatal(err)
		}
		return
	}
	for _, p := range []*string{berth, out, imageDir} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			fatal(err)
		}
		*p = abs
	}
	w := bench.Full()
	if *quick {
		w = bench.Quick()
	}
	if err := w.Check(); err != nil {
		fatal(err)
	}
	names := strings.Split(*runtimes, ",")
	if err := preflight(names, *berth); err != nil {
		fatal(err)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	code := run(ctx, w, names, *berth, *logLevel, *out, *imageDir, *profile, *keep)
	os.Exit(code)
}

func run(ctx context.Context, w bench.Workload, names []string, berth, logLevel, out, imageDir string, profile time.Duration, keep bool) int {
	started := time.Now()
	if err := os.MkdirAll(out, 0o755); err != nil {
		logf("%v", err)
		return 1
	}
	work, err := os.MkdirTemp("", "berth-bench-")
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer func() {
		if keep {
			logf("kept %s", work)
			return
		}
		if err := bench.RemoveTree(work); err != nil {
			logf("remove %s: %v", work, err)
		}
	}()
	e := &bench.Env{Work: work, Out: out, Berth: berth, BerthLogLevel: logLevel, Logf: logf}
	if rigEnv, err := rig.Setup(ctx, imageDir, filepath.Join(work, "rig"), rig.RegistryOptions{}); err != nil {
		logf("set up the rig: %v", err)
		return 1
	} else {
		e.Rig = rigEnv
		defer rigEnv.Stop()
	}
	if e.Images, err = benchImages(ctx, e.Rig, filepath.Join(work, "images")); err != nil {
		logf("%v", err)
		return 1
	}
	logf("registry %s: the rig's images and the bench's (%s, %s)", e.Rig.Registry.Addr, e.Images.OneLayer, e.Images.FiveLayers)

	report := &bench.Report{Started: started, Machine: bench.DescribeMachine(), Workload: describe(w, e.Images)}
	// The pods' cgroup parents: kubepods and besteffort go too at the end
	// unless they were there before (a kubelet's, or a test's).
	hadParents := map[string]bool{}
	for _, p := range []string{"kubepods/besteffort", "kubepods"} {
		hadParents[p] = bench.CgroupExists(p)
	}
	code := 0
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		res, err := benchOne(ctx, e, w, name, profile)
		if err != nil {
			logf("%s: %v", name, err)
			code = 1
		}
		if res != nil {
			report.Results = append(report.Results, res)
		}
	}
	for _, p := range []string{"kubepods/besteffort", "kubepods"} {
		if !hadParents[p] {
			bench.RemoveEmptyCgroup(p)
		}
	}
	report.Seconds = time.Since(started).Seconds()
	if err := writeReport(report, out); err != nil {
		logf("write report: %v", err)
		code = 1
	}
	if profile > 0 {
		pprofTop(berth, filepath.Join(out, "berth.cpu.pprof"), filepath.Join(out, "berth.cpu.top.txt"))
	}
	logf("done in %s", time.Since(started).Round(time.Second))
	return code
}

// benchOne starts one runtime, pre-pulls the image every container runs and
// the pause image (untimed), runs the workload and tears everything down,
// whatever happened.
func benchOne(ctx context.Context, e *bench.Env, w bench.Workload, name string, profile time.Duration) (res *bench.Result, err error) {
	start := time.Now()
	res = &bench.Result{Runtime: name}
	ee := *e
	if name != "berth" {
		ee.ProfileFor = 0
	} else {
		ee.ProfileFor = profile
	}
	in, err := ee.Start(ctx, name)
	if err != nil {
		return nil, err
	}
	defer func() {
		logf("%s: tearing down", name)
		if terr := ee.Teardown(in); terr != nil {
			res.Problem("teardown: %v", terr)
			logf("%s: teardown: %v", name, terr)
		}
		res.Seconds = time.Since(start).Seconds()
		logf("%s: finished in %s", name, time.Since(start).Round(time.Second))
	}()
	res.Version = in.CRI.Version(ctx)
	for _, ref := range []string{e.Images.Busybox, e.Images.Pause} {
		if _, err := rig.Crictl(ctx, in.Socket, "pull", ref); err != nil {
			return res, fmt.Errorf("pre-pull %s: %w", ref, err)
		}
	}
	id, err := in.CRI.ImageID(ctx, e.Images.Busybox)
	if err != nil || id == "" {
		return res, fmt.Errorf("ImageStatus %s: %q %v", e.Images.Busybox, id, err)
	}
	k := &bench.Kubelet{
		Dir: filepath.Join(in.Root, "kubelet"), Namespace: "bench",
		ImageRef: id, UserImage: "busybox", Command: bench.SleepCommand,
	}
	t := &bench.Target{Name: name, CRI: in.CRI, Pid: in.Pid, Helper: in.Helpers, Logf: logf,
		Profile: ee.Profile(in, filepath.Join(e.Out, "berth.cpu.pprof"))}
	logf("%s: %s", name, res.Version)
	err = bench.Run(ctx, w, t, k, e.Images, res, &in.Cgroups)
	if err != nil {
		res.Problem("%v", err)
	}
	return res, err
}

// benchImages builds the pull benchmark's images (one layer of 4 MiB; five
// of 10 MiB; random, so incompressible and shared with nothing) and pushes
// them to the rig's registry.
func benchImages(ctx context.Context, r *rig.Env, dir string) (bench.Images, error) {
	imgs := bench.Images{
		Busybox: rig.RefBusybox, Pause: rig.RefPause,
		OneLayer: "docker.io/berthbench/one-layer:latest", FiveLayers: "docker.io/berthbench/five-layers:latest",
		OneLayerMiB: 4, FiveLayersMiB: 50,
	}
	for _, b := range []struct {
		ref    string
		layers int
		size   int
	}{{imgs.OneLayer, 1, 4 << 20}, {imgs.FiveLayers, 5, 10 << 20}} {
		img, err := rig.BuildRandomImage(dir, b.ref, "berth-bench "+b.ref, b.layers, b.size)
		if err != nil {
			return imgs, err
		}
		if err := r.Registry.Push(ctx, img); err != nil {
			return imgs, err
		}
	}
	return imgs, nil
}

func describe(w bench.Workload, img bench.Images) map[string]string {
	return map[string]string{
		"pods":        "kubelet-shaped: BestEffort, cgroupfs parent /kubepods/besteffort/pod<uid>, PID namespace per container, pod network, no port mappings, kubelet's labels, annotations, mounts (etc-hosts, termination-log, service account) and log paths",
		"container":   img.Busybox + " (by image ID) running " + strings.Join(bench.SleepCommand, " "),
		"lifecycles":  fmt.Sprintf("%d sequential: RunPodSandbox, CreateContainer, StartContainer, ExecSync true, StopContainer (timeout 30), RemoveContainer, StopPodSandbox, RemovePodSandbox", w.Lifecycles),
		"at_once":     fmt.Sprintf("%d pods started together, %d rounds, wall time until every container runs", w.AtOnce, w.AtOnceRounds),
		"scale":       fmt.Sprintf("%d pods of one container (memory at %v pods), then containers spread over them up to %v; CreateContainer (into a probe pod) and ListContainers timed at each level, %d calls; stats lists at %d", w.Pods, w.MemoryLevels, w.GrowthLevels, w.Calls, w.ScaleLevel),
		"images":      fmt.Sprintf("%d pulls each of %s (1 layer, %.0f MiB) and %s (5 layers, %.0f MiB), random data, removed before each pull; %d ImageStatus and ListImages", w.Pulls, img.OneLayer, img.OneLayerMiB, img.FiveLayers, img.FiveLayersMiB, w.Calls),
		"concurrency": fmt.Sprintf("untimed set-up and teardown %d requests at a time", w.Workers),
	}
}

// rerender writes the report of an earlier run again.
func rerender(path, out string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var r bench.Report
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	return writeReport(&r, out)
}

func writeReport(r *bench.Report, out string) error {
	data, err := r.JSON()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "bench.json"), data, 0o644); err != nil {
		return err
	}
	md := r.Markdown()
	if err := os.WriteFile(filepath.Join(out, "bench.md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Print("\n" + md + "\n")
	for name, d := range map[string]*bench.Drawing{
		"steps": bench.StepsChart(r), "growth": bench.GrowthChart(r), "memory": bench.MemoryChart(r),
	} {
		if err := os.WriteFile(filepath.Join(out, name+".svg"), d.SVG(), 0o644); err != nil {
			return err
		}
		png, err := d.PNG()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, name+".png"), png, 0o644); err != nil {
			return err
		}
	}
	logf("wrote %s/{bench.json,bench.md,steps,growth,memory.{svg,png}}", out)
	return nil
}

// pprofTop writes `go tool pprof -top` of the profile (flat, and by
// cumulative time next to it: berth mostly waits on crun, conmon and the
// CNI plugins, so the flat view is syscalls) and prints the head of both.
func pprofTop(binary, profile, out string) {
	if _, err := os.Stat(profile); err != nil {
		logf("no CPU profile at %s", profile)
		return
	}
	for _, v := range []struct {
		args []string
		file string
	}{
		{[]string{"-top"}, out},
		{[]string{"-top", "-cum"}, strings.TrimSuffix(out, ".top.txt") + ".cum.txt"},
	} {
		args := append(append([]string{"tool", "pprof"}, v.args...), binary, profile)
		data, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			logf("go %s: %v: %s", strings.Join(args, " "), err, data)
			return
		}
		if err := os.WriteFile(v.file, data, 0o644); err != nil {
			logf("%v", err)
			return
		}
		lines := strings.SplitN(string(data), "\n", 26)
		fmt.Printf("\nberth CPU profile, go tool pprof %s (all of it in %s):\n%s\n", strings.Join(v.args, " "), v.file, strings.Join(lines[:min(len(lines), 25)], "\n"))
	}
}

// preflight names every missing piece at once.
func preflight(names []string, berth string) error {
	var problems []string
	if os.Geteuid() != 0 {
		problems = append(problems, "not root: the runtimes mount, make namespaces and cgroups")
	}
	need := []string{"/usr/bin/conmon", "/usr/bin/crun", bench.RuncBinary, "/usr/bin/skopeo", rig.RegistryBinary, bench.ContainerdCNIBins + "/bridge"}
	for _, n := range names {
		switch n {
		case "berth":
			need = append(need, berth)
		case "containerd-2.4":
			need = append(need, filepath.Join(bench.ContainerdV2Dir, "containerd"), filepath.Join(bench.ContainerdV2Dir, "containerd-shim-runc-v2"))
		case "containerd-1.6":
			need = append(need, bench.ContainerdV1, "/usr/bin/containerd-shim-runc-v2")
		default:
			problems = append(problems, fmt.Sprintf("unknown runtime %q (known: %s)", n, strings.Join(bench.RuntimeNames, ", ")))
		}
	}
	for _, p := range need {
		if _, err := os.Stat(p); err != nil {
			problems = append(problems, fmt.Sprintf("%s missing (make deps installs it; make build builds berth)", p))
		}
	}
	if _, err := exec.LookPath("crictl"); err != nil {
		problems = append(problems, "crictl not on PATH (make deps)")
	}
	if len(problems) > 0 {
		return fmt.Errorf("host not ready:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

func logf(format string, args ...any) {
	fmt.Printf("%s berth-bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "berth-bench: %v\n", err)
	os.Exit(2)
}
