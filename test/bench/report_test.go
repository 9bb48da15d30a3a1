package bench

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// sampleReport is two runtimes with a few figures, growth and memory.
func sampleReport() *Report {
	r := &Report{
		Started: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), Seconds: 600,
		Machine: Machine{CPU: "Test CPU", CPUs: 2, MemoryGiB: 24, Kernel: "Linux 6.1", OS: "Debian 12", Cgroups: "cgroup v2"},
	}
	for i, name := range []string{"berth", "containerd-2.4"} {
		res := &Result{Runtime: name}
		f := res.Figure("run_pod_sandbox", "RunPodSandbox", Ms)
		for _, v := range []float64{10, 20, 30} {
			f.Add(v * float64(i+1))
		}
		res.Figure("rss_idle", "daemon RSS idle", MiB).Add(40 + float64(i)*10)
		stats := res.Figure("list_pod_sandbox_stats_scale", "ListPodSandboxStats, 100 pods", Ms)
		if i == 1 {
			stats.Fail(errors.New("not implemented"))
		} else {
			stats.Add(25)
		}
		res.Growth = []GrowthPoint{
			{Containers: 0, Create: Summarize([]float64{10}), List: Summarize([]float64{1}), ListPod: Summarize([]float64{0.5})},
			{Containers: 1000, Create: Summarize([]float64{12}), List: Summarize([]float64{3}), ListPod: Summarize([]float64{0.6})},
		}
		res.Memory = []MemoryPoint{{Pods: 0, DaemonRSS: 40}, {Pods: 50, DaemonRSS: 45, HelpersPSS: 30, Helpers: 50}}
		r.Results = append(r.Results, res)
	}
	return r
}

func TestMarkdown(t *testing.T) {
	md := sampleReport().Markdown()
	for _, want := range []string{
		"Machine: Test CPU, 2 vCPU, 24 GiB, Debian 12, Linux 6.1, cgroup v2.",
		"| figure | berth p50 | p90 | containerd-2.4 p50 | p90 | berth ÷ containerd-2.4 |",
		"| RunPodSandbox (ms) | 20.0 | 28.0 | 40.0 | 56.0 | 0.50× |",
		"| daemon RSS idle (MiB) | 40.0 | - | 50.0 | - | 0.80× |",
		"| ListPodSandboxStats, 100 pods (ms) | 25.0 | - | (errors) | - | - |",
		"| containers | berth CreateContainer | berth ListContainers | berth ListContainers of one pod | containerd-2.4 CreateContainer | containerd-2.4 ListContainers | containerd-2.4 ListContainers of one pod |\n|---:|---:|---:|---:|---:|---:|---:|\n",
		"| 0 | 10.0 | 1.00 | 0.50 | 10.0 | 1.00 | 0.50 |",
		"| 1000 | 12.0 | 3.00 | 0.60 | 12.0 | 3.00 | 0.60 |",
		"| largest ÷ none | 1.20× | 3.00× | 1.20× | 1.20× | 3.00× | 1.20× |",
		"| 50 | 45.0 / 30.0 | 45.0 / 30.0 |",
		"- ListPodSandboxStats, 100 pods: 1 failed, first: not implemented",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestReportJSON(t *testing.T) {
	data, err := sampleReport().JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("the JSON does not read back: %v", err)
	}
	f := back.Results[1].Lookup("run_pod_sandbox")
	if f == nil || f.Summary.N != 3 || f.Summary.P50 != 40 || len(f.Samples) != 3 {
		t.Errorf("run_pod_sandbox of containerd-2.4 read back as %+v", f)
	}
	if e := back.Results[1].Lookup("list_pod_sandbox_stats_scale"); e.Errors != 1 || e.Error != "not implemented" {
		t.Errorf("errors read back as %+v", e)
	}
}

// oldGrowthJSON is a bench.json from before ListContainers of one pod
// was measured: its growth points lack list_pod_containers.
const oldGrowthJSON = `{
  "started": "2026-01-02T03:04:00Z",
  "results": [
    {
      "runtime": "berth",
      "figures": [],
      "growth": [
        {"containers": 0, "create_container": {"n": 30, "p50": 10}, "list_containers": {"n": 30, "p50": 1}},
        {"containers": 1000, "create_container": {"n": 30, "p50": 12}, "list_containers": {"n": 30, "p50": 3}}
      ],
      "memory": []
    }
  ]
}`

func TestMarkdownOldGrowth(t *testing.T) {
	var r Report
	if err := json.Unmarshal([]byte(oldGrowthJSON), &r); err != nil {
		t.Fatal(err)
	}
	if g := r.Results[0].Growth[1]; g.ListPod.N != 0 || g.List.P50 != 3 {
		t.Fatalf("old growth point read as %+v", g)
	}
	md := r.Markdown()
	for _, want := range []string{
		"| containers | berth CreateContainer | berth ListContainers | berth ListContainers of one pod |",
		"| 0 | 10.0 | 1.00 | - |",
		"| 1000 | 12.0 | 3.00 | - |",
		"| largest ÷ none | 1.20× | 3.00× | - |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown of an old bench.json lacks %q:\n%s", want, md)
		}
	}
}

func TestGrowthPointJSON(t *testing.T) {
	data, err := sampleReport().JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if g := back.Results[0].Growth[1]; g.ListPod.N != 1 || g.ListPod.P50 != 0.6 {
		t.Errorf("ListPod read back as %+v", g.ListPod)
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{0.256: "0.26", 27.84: "27.8", 1619.2: "1,619", 1234567: "1,234,567"} {
		if got := num(v, 1); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
	if got := num(5, 0); got != "-" {
		t.Errorf("num without samples = %q", got)
	}
}
