package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Workload sizes a run. Full and Quick are the two presets.
type Workload struct {
	Lifecycles   int   // sequential pod lifecycles (each a sample of every step)
	Calls        int   // samples of each list and status call
	Pulls        int   // pulls of each image
	AtOnce       int   // pods started at once
	AtOnceRounds int   // rounds of them
	Pods         int   // pods of the scale phase, one container each at first
	MemoryLevels []int // pod counts at which memory is read
	MemoryPods   int   // the level whose daemon RSS and helper PSS are figures
	GrowthLevels []int // containers present at which CreateContainer and ListContainers (all, and of one pod) are timed
	ScaleLevel   int   // the level where ListContainers, the stats lists and RSS are figures
	Workers      int   // concurrent requests while building up and tearing down (not timed)
	// A series of calls stops early once it has taken SeriesBudget and has
	// MinSamples: containerd 1.6 takes 15 s a ListPodSandboxStats at 100
	// pods here, and 30 of them would be half the run.
	SeriesBudget   time.Duration
	MinSamples     int
	CallTimeout    time.Duration
	SettleInterval time.Duration // pause before reading memory or timing at a level
}

// Full is `make bench`: the workload of issue 14.
func Full() Workload {
	return Workload{
		Lifecycles: 30, Calls: 30, Pulls: 30, AtOnce: 20, AtOnceRounds: 5,
		Pods: 100, MemoryLevels: []int{10, 25, 50, 75, 100}, MemoryPods: 50,
		GrowthLevels: []int{0, 250, 500, 1000}, ScaleLevel: 500,
		Workers: 4, CallTimeout: 4 * time.Minute, SettleInterval: 2 * time.Second,
		SeriesBudget: 90 * time.Second, MinSamples: 10,
	}
}

// Quick is a smoke run of every phase in a few minutes per runtime.
func Quick() Workload {
	return Workload{
		Lifecycles: 10, Calls: 10, Pulls: 5, AtOnce: 20, AtOnceRounds: 2,
		Pods: 50, MemoryLevels: []int{10, 25, 50}, MemoryPods: 50,
		GrowthLevels: []int{0, 100, 200}, ScaleLevel: 200,
		Workers: 4, CallTimeout: 4 * time.Minute, SettleInterval: time.Second,
		SeriesBudget: 30 * time.Second, MinSamples: 5,
	}
}

// Check reports a workload whose levels do not fit together.
func (w Workload) Check() error {
	var errs []error
	if w.Lifecycles < 1 || w.Calls < 1 || w.Pulls < 1 || w.AtOnce < 1 || w.Workers < 1 {
		errs = append(errs, fmt.Errorf("lifecycles, calls, pulls, at-once and workers must be at least 1"))
	}
	found := false
	for i, l := range w.GrowthLevels {
		if i > 0 && l <= w.GrowthLevels[i-1] {
			errs = append(errs, fmt.Errorf("growth levels %v must increase", w.GrowthLevels))
		}
		if i > 0 && l < w.Pods {
			errs = append(errs, fmt.Errorf("growth level %d is below the %d pods' own containers", l, w.Pods))
		}
		found = found || l == w.ScaleLevel
	}
	if !found {
		errs = append(errs, fmt.Errorf("scale level %d is not one of the growth levels %v", w.ScaleLevel, w.GrowthLevels))
	}
	if len(w.GrowthLevels) == 0 || w.GrowthLevels[0] != 0 {
		errs = append(errs, fmt.Errorf("growth levels must start at 0"))
	}
	found = false
	for _, l := range w.MemoryLevels {
		if l > w.Pods {
			errs = append(errs, fmt.Errorf("memory level %d is above the %d pods", l, w.Pods))
		}
		found = found || l == w.MemoryPods
	}
	if !found {
		errs = append(errs, fmt.Errorf("memory pods %d is not one of the memory levels %v", w.MemoryPods, w.MemoryLevels))
	}
	return errors.Join(errs...)
}

// Images are what the image phase pulls; Busybox runs every container.
type Images struct {
	Busybox, Pause       string
	OneLayer, FiveLayers string
	OneLayerMiB          float64
	FiveLayersMiB        float64
}

// Target is one runtime instance under test, as the driver started it.
type Target struct {
	Name   string
	CRI    *CRI
	Pid    int
	Helper func() []int // its conmons or shims
	// Profile, when set, is called as the lifecycle phase starts; the
	// phase goes on until the returned channel is closed.
	Profile func() <-chan struct{}
	Logf    func(format string, args ...any)
}

// run is one runtime's pass through the workload.
type run struct {
	w       Workload
	t       *Target
	k       *Kubelet
	img     Images
	res     *Result
	cgroups *[]string // pod cgroup parents made, for the clean-up
	mu      sync.Mutex
}

// Run drives the workload against t and fills res. Pods it makes are left
// for the caller's teardown when a phase fails; their cgroup parents are
// appended to cgroups.
func Run(ctx context.Context, w Workload, t *Target, k *Kubelet, img Images, res *Result, cgroups *[]string) error {
	r := &run{w: w, t: t, k: k, img: img, res: res, cgroups: cgroups}
	phases := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"images", r.images},
		{"lifecycles", r.lifecycles},
		{"pods at once", r.atOnce},
		{"scale", r.scale},
	}
	for _, p := range phases {
		start := time.Now()
		t.Logf("%s: %s...", t.Name, p.name)
		if err := p.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		t.Logf("%s: %s done in %s", t.Name, p.name, time.Since(start).Round(100*time.Millisecond))
	}
	return nil
}

func (r *run) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.w.CallTimeout)
}

// timed runs fn and records its duration in f, or its failure.
func (r *run) timed(ctx context.Context, f *Figure, fn func(context.Context) error) error {
	cctx, cancel := r.call(ctx)
	defer cancel()
	start := time.Now()
	err := fn(cctx)
	d := time.Since(start)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		f.Fail(err)
		return err
	}
	f.AddDuration(d)
	return nil
}

// budget yields Calls iterations for a series of f, fewer when the
// series has run SeriesBudget and f has MinSamples (noted as a problem).
func (r *run) budget(f *Figure) func(func(int) bool) { return r.budgetN(f, r.w.Calls) }

func (r *run) budgetN(f *Figure, n int) func(func(int) bool) {
	return func(yield func(int) bool) {
		start := time.Now()
		for i := range n {
			r.mu.Lock()
			have := len(f.Samples)
			r.mu.Unlock()
			if r.w.SeriesBudget > 0 && time.Since(start) > r.w.SeriesBudget && have >= r.w.MinSamples {
				r.mu.Lock()
				r.res.Problem("%s: %d samples, not %d: the series stopped after %s", f.Label, have, n, r.w.SeriesBudget)
				r.mu.Unlock()
				return
			}
			if !yield(i) {
				return
			}
		}
	}
}

func (r *run) fig(key, label, unit string) *Figure {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.res.Figure(key, label, unit)
}

// images times pulls of the one-layer and five-layer images (removing the
// image after each), then ImageStatus and ListImages with the rig's busybox
// and pause and both bench images present.
func (r *run) images(ctx context.Context) error {
	rt := r.t.CRI
	for _, p := range []struct {
		key, label, ref string
	}{
		{"pull_one_layer", fmt.Sprintf("PullImage, 1 layer of %.0f MiB", r.img.OneLayerMiB), r.img.OneLayer},
		{"pull_five_layers", fmt.Sprintf("PullImage, 5 layers, %.0f MiB", r.img.FiveLayersMiB), r.img.FiveLayers},
	} {
		f := r.fig(p.key, p.label, Ms)
		spec := &runtimeapi.ImageSpec{Image: p.ref}
		for range r.budgetN(f, r.w.Pulls) {
			// Each pull starts without the image (the first too: an
			// earlier run's copy cannot be there, the root is new).
			cctx, cancel := r.call(ctx)
			_, _ = rt.Img.RemoveImage(cctx, &runtimeapi.RemoveImageRequest{Image: spec})
			cancel()
			_ = r.timed(ctx, f, func(ctx context.Context) error {
				_, err := rt.Img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec})
				return err
			})
		}
		if _, err := rt.Img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec}); err != nil {
			return fmt.Errorf("pull %s: %w", p.ref, err)
		}
	}
	status := r.fig("image_status", "ImageStatus", Ms)
	for range r.w.Calls {
		_ = r.timed(ctx, status, func(ctx context.Context) error {
			resp, err := rt.Img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: r.img.Busybox}})
			if err == nil && resp.GetImage() == nil {
				err = fmt.Errorf("image %s not found", r.img.Busybox)
			}
			return err
		})
	}
	list := r.fig("list_images", "ListImages", Ms)
	for range r.w.Calls {
		_ = r.timed(ctx, list, func(ctx context.Context) error {
			_, err := rt.Img.ListImages(ctx, &runtimeapi.ListImagesRequest{})
			return err
		})
	}
	if rss, err := RSSMiB(r.t.Pid); err == nil {
		r.fig("rss_idle", "daemon RSS idle", MiB).Add(rss)
		r.res.Memory = append(r.res.Memory, MemoryPoint{DaemonRSS: rss})
	}
	return nil
}

// pod is a pod the bench made: its kubelet files, sandbox and containers.
type pod struct {
	p          *Pod
	config     *runtimeapi.PodSandboxConfig
	id         string
	containers []string
}

// newPod writes a pod's kubelet files and remembers its cgroup parent.
func (r *run) newPod(name string) (*pod, error) {
	p, err := r.k.NewPod(name)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	*r.cgroups = append(*r.cgroups, p.CgroupParent())
	r.mu.Unlock()
	return &pod{p: p, config: r.k.SandboxConfig(p)}, nil
}

// startPod is RunPodSandbox, CreateContainer and StartContainer, each timed
// into its figure when figures are given (nil: not timed).
func (r *run) startPod(ctx context.Context, p *pod, runF, createF, startF *Figure) error {
	rt := r.t.CRI.RT
	if err := r.timedOr(ctx, runF, func(ctx context.Context) error {
		resp, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: p.config})
		p.id = resp.GetPodSandboxId()
		return err
	}); err != nil {
		return fmt.Errorf("RunPodSandbox %s: %w", p.p.Name, err)
	}
	_, err := r.addContainer(ctx, p, "app", createF, startF)
	return err
}

// addContainer creates and starts a container in the pod.
func (r *run) addContainer(ctx context.Context, p *pod, name string, createF, startF *Figure) (string, error) {
	rt := r.t.CRI.RT
	cfg, err := r.k.ContainerConfig(p.p, name)
	if err != nil {
		return "", err
	}
	var id string
	if err := r.timedOr(ctx, createF, func(ctx context.Context) error {
		resp, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: p.id, Config: cfg, SandboxConfig: p.config})
		id = resp.GetContainerId()
		return err
	}); err != nil {
		return "", fmt.Errorf("CreateContainer %s/%s: %w", p.p.Name, name, err)
	}
	p.containers = append(p.containers, id)
	if err := r.timedOr(ctx, startF, func(ctx context.Context) error {
		_, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id})
		return err
	}); err != nil {
		return "", fmt.Errorf("StartContainer %s/%s: %w", p.p.Name, name, err)
	}
	return id, nil
}

// timedOr times fn into f, or just runs it when f is nil.
func (r *run) timedOr(ctx context.Context, f *Figure, fn func(context.Context) error) error {
	if f != nil {
		return r.timed(ctx, f, fn)
	}
	cctx, cancel := r.call(ctx)
	defer cancel()
	return fn(cctx)
}

// removePod stops and removes the pod (untimed) and its kubelet files.
func (r *run) removePod(ctx context.Context, p *pod) error {
	if p.id != "" {
		cctx, cancel := r.call(ctx)
		defer cancel()
		if err := r.t.CRI.RemovePod(cctx, p.id); err != nil {
			return err
		}
	}
	return p.p.Remove()
}

// lifecycles runs pods one after another, timing every step: run pod,
// create and start its container, exec `true`, stop and remove the
// container, stop and remove the pod. While a profile is being taken it
// goes on past Lifecycles until the profile is done.
func (r *run) lifecycles(ctx context.Context) error {
	steps := map[string]*Figure{}
	for _, s := range []struct{ key, label string }{
		{"run_pod_sandbox", "RunPodSandbox"},
		{"create_container", "CreateContainer"},
		{"start_container", "StartContainer"},
		{"pod_to_running", "run pod → container running"},
		{"exec_sync", "ExecSync `true`"},
		{"stop_container", "StopContainer"},
		{"remove_container", "RemoveContainer"},
		{"stop_pod_sandbox", "StopPodSandbox"},
		{"remove_pod_sandbox", "RemovePodSandbox"},
	} {
		steps[s.key] = r.fig(s.key, s.label, Ms)
	}
	var profiling <-chan struct{}
	if r.t.Profile != nil {
		profiling = r.t.Profile()
	}
	failures := 0
	for i := 0; ; i++ {
		if i >= r.w.Lifecycles {
			if profiling == nil {
				break
			}
			select {
			case <-profiling:
				profiling = nil
				continue
			default:
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.lifecycle(ctx, i, steps); err != nil {
			failures++
			r.t.Logf("%s: lifecycle %d: %v", r.t.Name, i, err)
			if failures > r.w.Lifecycles/3+1 {
				return fmt.Errorf("%d lifecycles failed, the last: %w", failures, err)
			}
		}
	}
	return nil
}

func (r *run) lifecycle(ctx context.Context, i int, f map[string]*Figure) error {
	rt := r.t.CRI.RT
	p, err := r.newPod(podName("life", i))
	if err != nil {
		return err
	}
	start := time.Now()
	if err := r.startPod(ctx, p, f["run_pod_sandbox"], f["create_container"], f["start_container"]); err != nil {
		_ = r.removePod(ctx, p)
		return err
	}
	r.mu.Lock()
	f["pod_to_running"].AddDuration(time.Since(start))
	r.mu.Unlock()
	cid := p.containers[0]
	steps := []struct {
		fig string
		fn  func(context.Context) error
	}{
		{"exec_sync", func(ctx context.Context) error {
			resp, err := rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: cid, Cmd: []string{"true"}, Timeout: 10})
			if err == nil && resp.GetExitCode() != 0 {
				err = fmt.Errorf("exit code %d: %s", resp.GetExitCode(), resp.GetStderr())
			}
			return err
		}},
		{"stop_container", func(ctx context.Context) error {
			_, err := rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: cid, Timeout: 30})
			return err
		}},
		{"remove_container", func(ctx context.Context) error {
			_, err := rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: cid})
			return err
		}},
		{"stop_pod_sandbox", func(ctx context.Context) error {
			_, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.id})
			return err
		}},
		{"remove_pod_sandbox", func(ctx context.Context) error {
			_, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.id})
			if err == nil {
				p.id = ""
			}
			return err
		}},
	}
	for _, s := range steps {
		if err := r.timed(ctx, f[s.fig], s.fn); err != nil {
			_ = r.removePod(ctx, p)
			return fmt.Errorf("%s: %w", s.fig, err)
		}
	}
	return p.p.Remove()
}

// atOnce starts AtOnce pods at the same moment, each running a container,
// and times until the last is running; then removes them (untimed).
func (r *run) atOnce(ctx context.Context) error {
	f := r.fig("pods_at_once", fmt.Sprintf("%d pods at once, all running", r.w.AtOnce), Ms)
	for round := range r.w.AtOnceRounds {
		pods := make([]*pod, r.w.AtOnce)
		for i := range pods {
			p, err := r.newPod(podName(fmt.Sprintf("once%d", round), i))
			if err != nil {
				return err
			}
			pods[i] = p
		}
		start := time.Now()
		err := parallel(len(pods), len(pods), func(i int) error { return r.startPod(ctx, pods[i], nil, nil, nil) })
		d := time.Since(start)
		r.mu.Lock()
		if err != nil {
			f.Fail(err)
		} else {
			f.AddDuration(d)
		}
		r.mu.Unlock()
		if err := parallel(len(pods), r.w.Workers, func(i int) error { return r.removePod(ctx, pods[i]) }); err != nil {
			return fmt.Errorf("remove the pods of round %d: %w", round, err)
		}
	}
	return nil
}

// scale grows the node: Pods pods of one container each (memory read at
// each MemoryLevels), then more containers spread over them up to each
// GrowthLevels, timing CreateContainer and ListContainers at each level in
// a probe pod of their own, and at ScaleLevel the stats lists and the
// daemon's RSS.
func (r *run) scale(ctx context.Context) error {
	if err := r.growth(ctx, 0); err != nil {
		return err
	}
	var pods []*pod
	for _, level := range r.w.MemoryLevels {
		from := len(pods)
		for i := from; i < level; i++ {
			p, err := r.newPod(podName("scale", i))
			if err != nil {
				return err
			}
			pods = append(pods, p)
		}
		if err := parallel(level-from, r.w.Workers, func(i int) error {
			return r.startPod(ctx, pods[from+i], nil, nil, nil)
		}); err != nil {
			return fmt.Errorf("start %d pods: %w", level, err)
		}
		time.Sleep(r.w.SettleInterval)
		m := r.memory(level, level)
		r.t.Logf("%s: %d pods: daemon RSS %.1f MiB, %d helpers %.1f MiB PSS", r.t.Name, level, m.DaemonRSS, m.Helpers, m.HelpersPSS)
		if level == r.w.MemoryPods {
			r.fig("rss_pods", fmt.Sprintf("daemon RSS, %d pods", level), MiB).Add(m.DaemonRSS)
			if level > 0 {
				r.fig("helper_pss_pod", "helper PSS per pod (conmon / shim)", MiB).Add(m.HelpersPSS / float64(level))
			}
		}
	}
	for len(pods) < r.w.Pods {
		p, err := r.newPod(podName("scale", len(pods)))
		if err != nil {
			return err
		}
		if err := r.startPod(ctx, p, nil, nil, nil); err != nil {
			return err
		}
		pods = append(pods, p)
	}
	present := len(pods)
	for _, level := range r.w.GrowthLevels[1:] {
		n := level - present
		// Container k of the new ones goes to pod k mod Pods; names are
		// unique per pod by the running count.
		type job struct {
			p    *pod
			name string
		}
		jobs := make([]job, n)
		for k := range jobs {
			p := pods[(present+k)%len(pods)]
			jobs[k] = job{p, fmt.Sprintf("c%d", (present+k)/len(pods))}
		}
		if err := parallel(n, r.w.Workers, func(k int) error {
			_, err := r.addRunning(ctx, jobs[k].p, jobs[k].name)
			return err
		}); err != nil {
			return fmt.Errorf("grow to %d containers: %w", level, err)
		}
		present = level
		time.Sleep(r.w.SettleInterval)
		if level == r.w.ScaleLevel {
			if err := r.atScale(ctx, level, len(pods)); err != nil {
				return err
			}
		}
		if err := r.growth(ctx, level); err != nil {
			return err
		}
	}
	return nil
}

// addRunning creates and starts a container in p, untimed. Several may
// run at once for one pod (kubelet adds a pod's containers one by one, but
// the runtimes must not care); p.containers is left alone, StopPodSandbox
// and RemovePodSandbox take the containers with the pod.
func (r *run) addRunning(ctx context.Context, p *pod, name string) (string, error) {
	rt := r.t.CRI.RT
	cfg, err := r.k.ContainerConfig(p.p, name)
	if err != nil {
		return "", err
	}
	cctx, cancel := r.call(ctx)
	defer cancel()
	resp, err := rt.CreateContainer(cctx, &runtimeapi.CreateContainerRequest{PodSandboxId: p.id, Config: cfg, SandboxConfig: p.config})
	if err != nil {
		return "", fmt.Errorf("CreateContainer %s/%s: %w", p.p.Name, name, err)
	}
	id := resp.GetContainerId()
	if _, err := rt.StartContainer(cctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		return "", fmt.Errorf("StartContainer %s/%s: %w", p.p.Name, name, err)
	}
	return id, nil
}

// atScale takes the figures of a node at ScaleLevel containers: the
// stats lists kubelet calls every 10s, the daemon's RSS and its helpers.
func (r *run) atScale(ctx context.Context, containers, pods int) error {
	rt := r.t.CRI.RT
	m := r.memory(pods, containers)
	r.fig("rss_scale", fmt.Sprintf("daemon RSS, %d containers", containers), MiB).Add(m.DaemonRSS)
	r.mu.Lock()
	if r.res.Extra == nil {
		r.res.Extra = map[string]any{}
	}
	r.res.Extra["at_scale"] = m
	r.mu.Unlock()
	r.t.Logf("%s: %d containers in %d pods: daemon RSS %.1f MiB, %d helpers %.1f MiB PSS", r.t.Name, containers, pods, m.DaemonRSS, m.Helpers, m.HelpersPSS)
	cstats := r.fig("list_container_stats_scale", fmt.Sprintf("ListContainerStats, %d containers", containers), Ms)
	for range r.budget(cstats) {
		_ = r.timed(ctx, cstats, func(ctx context.Context) error {
			resp, err := rt.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{})
			if err == nil && len(resp.GetStats()) < containers {
				err = fmt.Errorf("%d stats for %d containers", len(resp.GetStats()), containers)
			}
			return err
		})
	}
	pstats := r.fig("list_pod_sandbox_stats_scale", fmt.Sprintf("ListPodSandboxStats, %d pods", pods), Ms)
	for range r.budget(pstats) {
		_ = r.timed(ctx, pstats, func(ctx context.Context) error {
			resp, err := rt.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{})
			if err == nil && len(resp.GetStats()) < pods {
				err = fmt.Errorf("%d stats for %d pods", len(resp.GetStats()), pods)
			}
			return err
		})
	}
	return nil
}

// growth times ListContainers with level containers present, then
// CreateContainer of Calls containers into a probe pod of its own, then
// ListContainers filtered to the probe pod (kubelet's per-pod lists), and
// removes the pod. The filtered list answers the same Calls containers at
// every level, so only per-call work that grows with the node makes it
// slower; the unfiltered one's response grows with the node by nature. At
// ScaleLevel the ListContainers samples are also a figure.
func (r *run) growth(ctx context.Context, level int) error {
	rt := r.t.CRI.RT
	list := &Figure{}
	for range r.w.Calls {
		_ = r.timed(ctx, list, func(ctx context.Context) error {
			resp, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
			if err == nil && len(resp.GetContainers()) < level {
				err = fmt.Errorf("%d containers listed, %d present", len(resp.GetContainers()), level)
			}
			return err
		})
	}
	if level == r.w.ScaleLevel {
		f := r.fig("list_containers_scale", fmt.Sprintf("ListContainers, %d containers", level), Ms)
		r.mu.Lock()
		f.Samples, f.Errors, f.Error, f.Summary = list.Samples, list.Errors, list.Error, list.Summary
		r.mu.Unlock()
	}
	probe, err := r.newPod(podName("probe", level))
	if err != nil {
		return err
	}
	defer func() {
		if err := r.removePod(ctx, probe); err != nil {
			r.res.Problem("remove probe pod at %d: %v", level, err)
		}
	}()
	cctx, cancel := r.call(ctx)
	resp, err := rt.RunPodSandbox(cctx, &runtimeapi.RunPodSandboxRequest{Config: probe.config})
	cancel()
	if err != nil {
		return fmt.Errorf("RunPodSandbox probe: %w", err)
	}
	probe.id = resp.GetPodSandboxId()
	create := &Figure{}
	created := 0
	for i := range r.w.Calls {
		cfg, err := r.k.ContainerConfig(probe.p, fmt.Sprintf("probe%d", i))
		if err != nil {
			return err
		}
		if r.timed(ctx, create, func(ctx context.Context) error {
			_, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: probe.id, Config: cfg, SandboxConfig: probe.config})
			return err
		}) == nil {
			created++
		}
	}
	listPod := &Figure{}
	for range r.w.Calls {
		_ = r.timed(ctx, listPod, func(ctx context.Context) error {
			resp, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: probe.id}})
			if err == nil {
				err = checkPodList(resp.GetContainers(), probe.id, created)
			}
			return err
		})
	}
	r.mu.Lock()
	r.res.Growth = append(r.res.Growth, GrowthPoint{Containers: level, Create: create.Summary, List: list.Summary, ListPod: listPod.Summary})
	if create.Errors > 0 || list.Errors > 0 || listPod.Errors > 0 {
		r.res.Problem("growth at %d: %d creates, %d lists and %d lists of the probe pod failed: %s %s %s",
			level, create.Errors, list.Errors, listPod.Errors, create.Error, list.Error, listPod.Error)
	}
	r.mu.Unlock()
	r.t.Logf("%s: %d containers: CreateContainer p50 %.1f ms, ListContainers p50 %.2f ms, of the probe pod %.2f ms",
		r.t.Name, level, create.Summary.P50, list.Summary.P50, listPod.Summary.P50)
	return nil
}

// checkPodList reports a ListContainers answer filtered to pod that is not
// exactly its want containers.
func checkPodList(cs []*runtimeapi.Container, pod string, want int) error {
	for _, c := range cs {
		if c.GetPodSandboxId() != pod {
			return fmt.Errorf("container %s of pod %s listed for pod %s", c.GetId(), c.GetPodSandboxId(), pod)
		}
	}
	if len(cs) != want {
		return fmt.Errorf("%d containers listed for the probe pod, %d in it", len(cs), want)
	}
	return nil
}

// memory reads the daemon's RSS and its helpers' PSS.
func (r *run) memory(pods, containers int) MemoryPoint {
	m := MemoryPoint{Pods: pods, Containers: containers}
	m.DaemonRSS, _ = RSSMiB(r.t.Pid)
	if r.t.Helper != nil {
		m.HelpersPSS, m.Helpers = SumPSS(r.t.Helper())
	}
	r.mu.Lock()
	if pods > 0 && containers == pods {
		r.res.Memory = append(r.res.Memory, m)
	}
	r.mu.Unlock()
	return m
}

// parallel runs fn(0..n-1), workers at a time, and returns every failure.
func parallel(n, workers int, fn func(i int) error) error {
	if workers < 1 {
		workers = 1
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		next = make(chan int)
	)
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(errs) > 3 {
		return fmt.Errorf("%d failed, the first three: %w", len(errs), errors.Join(errs[:3]...))
	}
	return errors.Join(errs...)
}
