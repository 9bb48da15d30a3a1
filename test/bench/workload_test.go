package bench

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestWorkloadPresets(t *testing.T) {
	for name, w := range map[string]Workload{"full": Full(), "quick": Quick()} {
		if err := w.Check(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	full := Full()
	if full.Lifecycles < 30 || full.Calls < 30 || full.Pulls < 30 {
		t.Errorf("the full workload takes fewer than 30 samples: %+v", full)
	}
	bad := Full()
	bad.ScaleLevel = 600
	bad.GrowthLevels = []int{0, 500, 250}
	if err := bad.Check(); err == nil || !strings.Contains(err.Error(), "must increase") || !strings.Contains(err.Error(), "scale level 600") {
		t.Errorf("Check of a bad workload = %v", err)
	}
}

func TestKubeletShapes(t *testing.T) {
	k := &Kubelet{Dir: t.TempDir(), Namespace: "bench", ImageRef: "sha256:abc", UserImage: "busybox", Command: SleepCommand}
	p, err := k.NewPod("web-1")
	if err != nil {
		t.Fatal(err)
	}
	sc := k.SandboxConfig(p)
	if got := sc.GetLinux().GetCgroupParent(); got != "/kubepods/besteffort/pod"+p.UID {
		t.Errorf("cgroup parent %q", got)
	}
	ns := sc.GetLinux().GetSecurityContext().GetNamespaceOptions()
	if ns.GetPid() != runtimeapi.NamespaceMode_CONTAINER || ns.GetNetwork() != runtimeapi.NamespaceMode_POD {
		t.Errorf("namespaces %v", ns)
	}
	if sc.GetLogDirectory() != filepath.Join(k.Dir, "log", "pods", "bench_web-1_"+p.UID) || len(sc.GetPortMappings()) != 0 {
		t.Errorf("log dir %q, ports %v", sc.GetLogDirectory(), sc.GetPortMappings())
	}
	if sc.GetLabels()["io.kubernetes.pod.uid"] != p.UID || sc.GetAnnotations()["kubernetes.io/config.source"] != "api" {
		t.Errorf("labels %v, annotations %v", sc.GetLabels(), sc.GetAnnotations())
	}
	cc, err := k.ContainerConfig(p, "app")
	if err != nil {
		t.Fatal(err)
	}
	if cc.GetLogPath() != "app/0.log" || cc.GetImage().GetImage() != "sha256:abc" || cc.GetLinux().GetResources().GetOomScoreAdj() != 1000 {
		t.Errorf("container config %v", cc)
	}
	if cc.GetLabels()["io.kubernetes.container.name"] != "app" || cc.GetAnnotations()["io.kubernetes.container.restartCount"] != "0" {
		t.Errorf("container labels %v annotations %v", cc.GetLabels(), cc.GetAnnotations())
	}
	if len(cc.GetMounts()) != 3 || len(cc.GetLinux().GetSecurityContext().GetMaskedPaths()) == 0 {
		t.Errorf("mounts %v", cc.GetMounts())
	}
	if err := p.Remove(); err != nil {
		t.Error(err)
	}
}

func TestSeriesBudget(t *testing.T) {
	w := Quick()
	w.SeriesBudget, w.MinSamples = time.Nanosecond, 3
	r := &run{w: w, res: &Result{}}
	f := r.res.Figure("x", "X", Ms)
	n := 0
	for range r.budgetN(f, 30) {
		f.Add(1)
		time.Sleep(time.Microsecond)
		n++
	}
	if n != 3 || len(r.res.Problems) != 1 {
		t.Errorf("a series past its budget ran %d times (want the 3 minimum samples), problems %v", n, r.res.Problems)
	}
	r = &run{w: Full(), res: &Result{}}
	n = 0
	for range r.budgetN(f, 30) {
		n++
	}
	if n != 30 {
		t.Errorf("a series within its budget ran %d times, want 30", n)
	}
}
