package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-dev/berth/test/critest"
)

func TestSelectedSpecs(t *testing.T) {
	specs := []critest.Spec{
		{Node: "SynchronizedBeforeSuite", Status: "passed"},
		{Node: "It", Name: "[sig-node] Probing container should be restarted [NodeConformance] [Conformance]", Status: "passed"},
		{Node: "It", Name: "[sig-node] Probing container should be ready [NodeConformance] [Flaky]", Status: "skipped"},
		{Node: "It", Name: "[sig-node] Density [Serial] [NodeConformance] should start", Status: "skipped"},
		{Node: "It", Name: "[sig-node] GPU device plugin [Feature:GPUDevicePlugin]", Status: "skipped"},
	}
	for _, tc := range []struct {
		name, focus, skip string
		want              []int
	}{
		{"default", defaultNodeFocus, defaultNodeSkip, []int{0, 1}},
		{"no skip", defaultNodeFocus, "", []int{0, 1, 2, 3}},
		{"one group", `Probing container`, defaultNodeSkip, []int{0, 1}},
		{"nothing", `Nothing matches this`, "", []int{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := selectedSpecs(specs, tc.focus, tc.skip)
			if err != nil {
				t.Fatal(err)
			}
			var want []critest.Spec
			for _, i := range tc.want {
				want = append(want, specs[i])
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("selected %v, want %v", got, want)
			}
		})
	}
	if _, err := selectedSpecs(specs, "(", ""); err == nil || !strings.Contains(err.Error(), "focus") {
		t.Errorf("a bad focus: %v, want an error naming the focus", err)
	}
}

func TestLinkPathWithout(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	for path, mode := range map[string]os.FileMode{
		"a/mount":       0o755,
		"a/systemd-run": 0o755,
		"a/readme":      0o644, // not executable
		"b/mount":       0o755, // shadowed by a/mount
		"b/systemctl":   0o755,
		"b/nsenter":     0o755,
	} {
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, mode); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(root, "farm")
	if err := linkPathWithout(dir, []string{a, "", filepath.Join(root, "missing"), b}, "systemd-run", "systemctl"); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, ent := range entries {
		target, err := os.Readlink(filepath.Join(dir, ent.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got[ent.Name()] = target
	}
	want := map[string]string{"mount": filepath.Join(a, "mount"), "nsenter": filepath.Join(b, "nsenter")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("links %v, want %v", got, want)
	}
}

func TestKubeletConfigFor(t *testing.T) {
	cfg := kubeletConfigFor("10.123.0.0/24")
	for _, want := range []string{"cgroupDriver: cgroupfs", "failCgroupV1: false", "podCIDR: 10.123.0.0/24", "kind: KubeletConfiguration"} {
		if !strings.Contains(cfg, want+"\n") {
			t.Errorf("kubelet config lacks %q:\n%s", want, cfg)
		}
	}
}

// removeCgroupTree removes deepest first (cgroupfs directories go only by
// rmdir, when empty of children) and is content with a tree already gone.
func TestRemoveCgroupTree(t *testing.T) {
	root := filepath.Join(t.TempDir(), "kubepods")
	for _, d := range []string{"burstable/pod1", "besteffort"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := removeCgroupTree(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("%s still there: %v", root, err)
	}
	if err := removeCgroupTree(root); err != nil {
		t.Errorf("removing a tree already gone: %v", err)
	}
}
