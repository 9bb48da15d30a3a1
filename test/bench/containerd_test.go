package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func testOptions(root string) ContainerdOptions {
	return ContainerdOptions{
		Root: root, RegistryAddr: "127.0.0.1:5999", Mirrored: []string{"registry.k8s.io", "docker.io"},
		CNIConfDir: "/tmp/x/net.d", CNIBinDir: "/usr/lib/cni", PauseImage: "registry.k8s.io/pause:3.10",
	}
}

func TestContainerdV3Config(t *testing.T) {
	o := testOptions("/tmp/bench/cd24")
	var c map[string]any
	if _, err := toml.Decode(ContainerdV3Config(o), &c); err != nil {
		t.Fatalf("not TOML: %v\n%s", err, ContainerdV3Config(o))
	}
	get := func(path ...string) any {
		var v any = c
		for _, p := range path {
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[p]
		}
		return v
	}
	for _, tc := range []struct {
		path []string
		want any
	}{
		{[]string{"version"}, int64(3)},
		{[]string{"root"}, "/tmp/bench/cd24/root"},
		{[]string{"state"}, "/tmp/bench/cd24/state"},
		{[]string{"grpc", "address"}, "/tmp/bench/cd24/containerd.sock"},
		{[]string{"plugins", "io.containerd.cri.v1.images", "snapshotter"}, "overlayfs"},
		{[]string{"plugins", "io.containerd.cri.v1.images", "registry", "config_path"}, "/tmp/bench/cd24/certs.d"},
		{[]string{"plugins", "io.containerd.cri.v1.images", "pinned_images", "sandbox"}, "registry.k8s.io/pause:3.10"},
		{[]string{"plugins", "io.containerd.cri.v1.runtime", "restrict_oom_score_adj"}, true},
		{[]string{"plugins", "io.containerd.cri.v1.runtime", "containerd", "runtimes", "runc", "options", "BinaryName"}, "/usr/bin/runc"},
		{[]string{"plugins", "io.containerd.cri.v1.runtime", "containerd", "runtimes", "runc", "options", "Root"}, "/tmp/bench/cd24/runc"},
		{[]string{"plugins", "io.containerd.cri.v1.runtime", "containerd", "runtimes", "runc", "options", "SystemdCgroup"}, false},
		{[]string{"plugins", "io.containerd.cri.v1.runtime", "cni", "conf_dir"}, "/tmp/x/net.d"},
		{[]string{"plugins", "io.containerd.nri.v1.nri", "disable"}, true},
	} {
		if got := get(tc.path...); got != tc.want {
			t.Errorf("%s = %#v, want %#v", strings.Join(tc.path, "."), got, tc.want)
		}
	}
	bins, _ := get("plugins", "io.containerd.cri.v1.runtime", "cni", "bin_dirs").([]any)
	if len(bins) != 1 || bins[0] != "/usr/lib/cni" {
		t.Errorf("cni.bin_dirs = %v", bins)
	}
}

func TestHostsTOML(t *testing.T) {
	var h struct {
		Server string
		Host   map[string]struct {
			Capabilities []string
			OverridePath bool `toml:"override_path"`
		}
	}
	if _, err := toml.Decode(HostsTOML("127.0.0.1:5999", "registry.k8s.io"), &h); err != nil {
		t.Fatal(err)
	}
	host, ok := h.Host["http://127.0.0.1:5999/v2/registry.k8s.io"]
	if !ok || !host.OverridePath || strings.Join(host.Capabilities, ",") != "pull,resolve" {
		t.Errorf("hosts.toml decoded as %+v", h)
	}
}

func TestWriteContainerdConfigs(t *testing.T) {
	o := testOptions(t.TempDir())
	p, err := WriteContainerdV3(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{p, filepath.Join(o.CertsDir(), "docker.io", "hosts.toml"), filepath.Join(o.CertsDir(), "registry.k8s.io", "hosts.toml")} {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
	p, err = WriteContainerdV2(o)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(p)
	var c map[string]any
	if _, err := toml.Decode(string(data), &c); err != nil || c["version"] != int64(2) {
		t.Errorf("v2 config: %v, version %v", err, c["version"])
	}
}
