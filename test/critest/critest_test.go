package critest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// The checked-in SKIPS.md parses, and its regex skips exactly its specs as
// Ginkgo matches them ("<suite description> <spec text>").
func TestSkipsFileAndRegex(t *testing.T) {
	skips, err := ReadSkips("SKIPS.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(SkipRegex(skips))
	for _, s := range skips {
		if !re.MatchString("CRI validation " + s.Name) {
			t.Errorf("regex does not skip %q", s.Name)
		}
	}
	for _, keep := range []string{
		"CRI validation [k8s.io] Image Manager public image with tag should be pulled and removed [Conformance]",
		// A prefix of a listed spec is another spec.
		"CRI validation [k8s.io] NRI plugin synchronization should synchronize a newly connected plugin",
		"CRI validation [k8s.io] Security Context NamespaceOption runtime should support HostPID",
	} {
		if re.MatchString(keep) {
			t.Errorf("regex skips %q", keep)
		}
	}
}

func TestParseSkipsRejectsBadRows(t *testing.T) {
	for _, tc := range []struct{ name, table string }{
		{"no backticks", "| Spec | When | Reason |\n|--|--|--|\n| a spec | always | r |\n"},
		{"unknown when", "| Spec | When | Reason |\n|--|--|--|\n| `a` | sometimes | r |\n"},
		{"no reason", "| Spec | When | Reason |\n|--|--|--|\n| `a` | always |  |\n"},
		{"duplicate", "| `a` | always | r |\n| `a` | always | r |\n"},
		{"empty", "# nothing\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseSkips(strings.NewReader(tc.table)); err == nil {
				t.Errorf("accepted:\n%s", tc.table)
			}
		})
	}
}

// A table with a header and no rows skips nothing, and its regex skips no
// spec.
func TestEmptySkipTable(t *testing.T) {
	skips, err := ParseSkips(strings.NewReader("# none yet\n\n| Spec | When | Reason |\n|------|------|--------|\n"))
	if err != nil || len(skips) != 0 {
		t.Fatalf("ParseSkips = %v, %v; want no skips and no error", skips, err)
	}
	if re := SkipRegex(skips); re != "" {
		t.Errorf("SkipRegex of no skips = %q, want \"\"", re)
	}
}

func TestActiveSkipsFollowHost(t *testing.T) {
	skips := []Skip{{Name: "a", When: "always"}, {Name: "b", When: "no-apparmor"}}
	got := Active(skips)
	wantB := !AppArmorEnabled()
	if len(got) != 1+map[bool]int{true: 1, false: 0}[wantB] || got[0].Name != "a" {
		t.Errorf("Active = %v (AppArmor enabled: %v)", got, !wantB)
	}
}

const junitSample = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="5">
  <testsuite name="CRI validation" tests="5">
    <testcase name="[SynchronizedBeforeSuite]" classname="CRI validation" status="passed" time="0.1"></testcase>
    <testcase name="[It] [k8s.io] Image Manager public image with digest should be pulled and removed [Conformance] [Serial]" classname="CRI validation" status="skipped" time="0">
      <skipped message="skipped"></skipped>
    </testcase>
    <testcase name="[It] [k8s.io] Container OOM runtime should output OOMKilled reason should terminate with exitCode 137 and reason OOMKilled" classname="CRI validation" status="failed" time="60">
      <failure message="Timed out after 60.001s.&#xA;Expected&#xA;    &lt;string&gt;: &#xA;to equal&#xA;    &lt;string&gt;: OOMKilled" type="failed">[FAILED] Timed out
In [It] at: container_linux.go:155</failure>
    </testcase>
    <testcase name="[It] [k8s.io] Container Mount Readonly runtime should support readonly mounts should support recursive readonly mounts" classname="CRI validation" status="skipped" time="0.2">
      <skipped message="skipped - runtime does not implement recursive readonly mounts"></skipped>
    </testcase>
    <testcase name="[It] [k8s.io] Image benchmark about operations on Image benchmark about listing Image" classname="CRI validation" status="skipped" time="0">
      <skipped message="skipped"></skipped>
    </testcase>
    <testcase name="[It] [k8s.io] Runtime info runtime should support returning runtime info runtime should return version info [Conformance]" classname="CRI validation" status="passed" time="0.01"></testcase>
  </testsuite>
</testsuites>`

func TestJUnitSummary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "junit.xml")
	if err := os.WriteFile(path, []byte(junitSample), 0o644); err != nil {
		t.Fatal(err)
	}
	specs, err := ReadJUnit(path)
	if err != nil {
		t.Fatal(err)
	}
	skips := []Skip{
		{Name: "[k8s.io] Image Manager public image with digest should be pulled and removed [Conformance]", When: "always", Reason: "r"},
		{Name: "[k8s.io] Gone spec", When: "always", Reason: "r"},
	}
	sum := Summarize(specs, skips)
	if sum.Passed != 1 || sum.Failed != 1 || sum.Skipped != 3 {
		t.Errorf("passed %d failed %d skipped %d, want 1 1 3", sum.Passed, sum.Failed, sum.Skipped)
	}
	if len(sum.SkippedByList) != 1 || len(sum.Benchmarks) != 1 || len(sum.SkippedByCritest) != 1 ||
		sum.SkippedByCritest[0].Message != "runtime does not implement recursive readonly mounts" {
		t.Errorf("skips: by list %+v, by critest %+v", sum.SkippedByList, sum.SkippedByCritest)
	}
	if len(sum.Failures) != 1 || !strings.Contains(sum.Failures[0].Message, "OOMKilled") ||
		sum.Failures[0].Name != "[k8s.io] Container OOM runtime should output OOMKilled reason should terminate with exitCode 137 and reason OOMKilled" {
		t.Errorf("failures %+v", sum.Failures)
	}
	if stale := StaleSkips(skips, specs); len(stale) != 1 || stale[0].Name != "[k8s.io] Gone spec" {
		t.Errorf("stale = %v", stale)
	}
}

// A spec a ^C stopped half-way is neither a pass nor a failure.
func TestSummarizeKeepsInterruptedApart(t *testing.T) {
	sum := Summarize([]Spec{
		{Name: "a", Node: "It", Status: "passed"},
		{Name: "b", Node: "It", Status: "interrupted", Message: "Interrupted by User"},
		{Name: "c", Node: "It", Status: "timedout"},
	}, nil)
	if sum.Passed != 1 || sum.Failed != 1 || len(sum.Interrupted) != 1 || sum.Interrupted[0].Name != "b" {
		t.Errorf("passed %d failed %d interrupted %v, want 1, 1 and [b]", sum.Passed, sum.Failed, sum.Interrupted)
	}
	if len(sum.Failures) != 1 || sum.Failures[0].Name != "c" {
		t.Errorf("failures %+v, want only c", sum.Failures)
	}
}

func TestBenchResults(t *testing.T) {
	dir := t.TempDir()
	pods := `{"operationsNames":["CreatePod","StatusPod","StopPod","RemovePod"],"numParallel":1,"datapoints":[
		{"sampleIndex":0,"operationsDurationsNs":[3000000,100,5000000,700]},
		{"sampleIndex":1,"operationsDurationsNs":[1000000,100,7000000,900]},
		{"sampleIndex":2,"operationsDurationsNs":[2000000,100,6000000,800]}]}`
	report := `[{"SpecReports":[{"ReportEntries":[{"Name":"start-container-benchmark","Value":{"AsJSON":"{\"Name\":\"start-container-benchmark\",\"Measurements\":[{\"Name\":\"create PodSandbox and container\",\"Durations\":[250000000]}]}"}}]}]}]`
	if err := os.WriteFile(filepath.Join(dir, "pod_benchmark_data.json"), []byte(pods), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), []byte(report), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := ReadBench("berth", dir, filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if m := Median(b.Samples["RunPodSandbox"]); m != 2*time.Millisecond {
		t.Errorf("RunPodSandbox median %v, want 2ms", m)
	}
	if m := Median(b.Samples[PodAndContainerStart]); m != 250*time.Millisecond {
		t.Errorf("start from scratch %v, want 250ms", m)
	}
	table := FormatBench([]*Bench{b, {Runtime: "containerd", Samples: map[string][]time.Duration{"RunPodSandbox": {time.Millisecond, 3 * time.Millisecond}}}})
	t.Logf("\n%s", table)
	for _, want := range []string{"berth median", "containerd median", "RunPodSandbox", "2.00 ms", "StopPodSandbox", "6.00 ms", "250.0 ms"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	if strings.Contains(table, "ListImages") {
		t.Errorf("table shows an operation no runtime measured")
	}
}

func TestContainerdConfigIsValidTOML(t *testing.T) {
	cfg := ContainerdConfig(ContainerdOptions{
		Root: "/tmp/x", RegistryAddr: "127.0.0.1:5001", Mirrored: []string{"registry.k8s.io", "gcr.io"},
		CNIConfDir: "/tmp/x/net.d", CNIBinDir: "/usr/lib/cni", PauseImage: "registry.k8s.io/pause:3.10",
	})
	var v struct {
		Version int
		Root    string
		GRPC    struct{ Address string } `toml:"grpc"`
		Plugins map[string]toml.Primitive
	}
	md, err := toml.Decode(cfg, &v)
	if err != nil {
		t.Fatalf("%v\n%s", err, cfg)
	}
	if v.Version != 2 || v.GRPC.Address != "/tmp/x/containerd.sock" {
		t.Errorf("version %d, grpc address %q", v.Version, v.GRPC.Address)
	}
	var cri struct {
		SandboxImage string `toml:"sandbox_image"`
		Registry     struct {
			Mirrors map[string]struct{ Endpoint []string }
		}
	}
	if err := md.PrimitiveDecode(v.Plugins["io.containerd.grpc.v1.cri"], &cri); err != nil {
		t.Fatal(err)
	}
	if got := cri.Registry.Mirrors["gcr.io"].Endpoint; len(got) != 1 || got[0] != "http://127.0.0.1:5001/v2/gcr.io" {
		t.Errorf("gcr.io mirror = %v", got)
	}
	if cri.SandboxImage != "registry.k8s.io/pause:3.10" {
		t.Errorf("sandbox_image = %q", cri.SandboxImage)
	}
}
