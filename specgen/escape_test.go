package specgen

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// listTree names every path below dir, to see that nothing appeared.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		out = append(out, p)
		return nil
	})
	sort.Strings(out)
	return out
}

// An image full of symlinks that point out of the rootfs must not make
// Berth create anything outside it: every target is created, and mounted,
// where the symlinks lead when the rootfs is taken as "/".
func TestSymlinksCannotEscapeRootfs(t *testing.T) {
	in := baseInput(t)
	root := in.Rootfs
	outside := t.TempDir() // a sentinel directory that must stay as it is
	writeFile(t, filepath.Join(outside, "hosts"), "sentinel\n")
	before := listTree(t, outside)
	name := "berth-escape-" + filepath.Base(outside)
	for link, target := range map[string]string{
		"evil":       "/",
		"up":         "../../..",
		"sentinel":   outside,
		"etc/hosts":  filepath.Join(outside, "hosts"),
		"etc/passwd": "/etc/shadow",
	} {
		os.Remove(filepath.Join(root, link))
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join("/tmp", name)); err == nil {
		t.Fatalf("/tmp/%s exists before the test", name)
	}
	file := filepath.Join(t.TempDir(), "file")
	writeFile(t, file, "data\n")
	in.Sandbox.HostsPath = filepath.Join(t.TempDir(), "pod-hosts")
	in.Config.Mounts = []*runtime.Mount{
		{ContainerPath: "/evil/tmp/" + name, HostPath: t.TempDir()},
		{ContainerPath: "/up/x", HostPath: t.TempDir()},
		{ContainerPath: "/sentinel/escape", HostPath: t.TempDir()},
		{ContainerPath: "/sentinel/file", HostPath: file},
	}
	in.Config.WorkingDir = "/evil/wd/" + name
	in.Image = &imagespec.ImageConfig{Volumes: map[string]struct{}{"/up/up/vol": {}}}
	in.VolumesDir = filepath.Join(t.TempDir(), "volumes")
	res := mustGenerate(t, in)

	if after := listTree(t, outside); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatalf("the sentinel directory changed:\nbefore %v\nafter  %v", before, after)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "hosts")); string(b) != "sentinel\n" {
		t.Fatal("the sentinel hosts file was written")
	}
	for _, p := range []string{"/tmp/" + name, "/wd/" + name, "/x", "/vol"} {
		if _, err := os.Lstat(p); err == nil {
			os.RemoveAll(p)
			t.Fatalf("%s was created on the host", p)
		}
	}
	want := map[string]string{ // requested -> resolved inside the rootfs
		"/evil/tmp/" + name: "/tmp/" + name,
		"/up/x":             "/x",
		"/sentinel/escape":  filepath.Join(outside, "escape"),
		"/sentinel/file":    filepath.Join(outside, "file"),
		"/etc/hosts":        filepath.Join(outside, "hosts"),
		"/up/up/vol":        "/vol",
	}
	for req, dest := range want {
		m := findMount(res.Spec, dest)
		if m == nil {
			t.Errorf("no mount at %s (for %s); mounts %v", dest, req, res.Spec.Mounts)
			continue
		}
		if _, err := os.Lstat(filepath.Join(root, dest)); err != nil {
			t.Errorf("mount point %s (for %s) not made inside the rootfs: %v", dest, req, err)
		}
	}
	for _, m := range res.Spec.Mounts {
		if strings.Contains(m.Destination, "evil") || strings.Contains(m.Destination, "/up") || strings.Contains(m.Destination, "/sentinel") {
			t.Errorf("destination %s still goes through an image symlink", m.Destination)
		}
	}
	if cwd := res.Spec.Process.Cwd; cwd != "/wd/"+name {
		t.Fatalf("cwd %q, want /wd/%s", cwd, name)
	}
	if fi, err := os.Stat(filepath.Join(root, "wd", name)); err != nil || !fi.IsDir() {
		t.Fatalf("working dir not made inside the rootfs: %v", err)
	}
}
