package rig

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// skopeoInspect runs `skopeo <global...> inspect <args...>` and decodes the
// JSON it prints.
func skopeoInspect(t *testing.T, global []string, args ...string) map[string]any {
	t.Helper()
	full := append(append(global, "inspect"), args...)
	out, err := exec.Command("skopeo", full...).Output()
	if err != nil {
		t.Fatalf("skopeo %s: %v", strings.Join(full, " "), exitDetail(err))
	}
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("decode skopeo inspect output: %v\n%s", err, out)
	}
	return v
}

func TestRegistryServesEveryImage(t *testing.T) {
	env := testEnv(t)
	reg, images := env.Registry, env.Images
	t.Logf("Setup: build (cached) %v, PushAll of %d images %v", env.BuildTime, len(images), env.PushTime)
	for _, img := range images {
		t.Run(img.Ref, func(t *testing.T) {
			got := skopeoInspect(t, nil, "--tls-verify=false", "docker://"+reg.Addr+"/"+img.Ref)
			// The push must not rewrite the manifest: pull by digest relies on it.
			if got["Digest"] != img.Digest {
				t.Errorf("registry has %s at %v, layout has %s", img.Ref, got["Digest"], img.Digest)
			}
		})
	}

	cfg := skopeoInspect(t, nil, "--tls-verify=false", "--config", "docker://"+reg.Addr+"/"+RefNonroot)
	if user := cfg["config"].(map[string]any)["User"]; user != "1000:1000" {
		t.Errorf("nonroot config from the registry has User %v, want 1000:1000", user)
	}
}

func TestBlobGetsCountsLayerDownloads(t *testing.T) {
	reg, images := testEnv(t).Registry, testEnv(t).Images
	img := mustImage(t, images, RefMultilayer)
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	before, err := reg.BlobGets()
	if err != nil {
		t.Fatal(err)
	}
	dst := "oci:" + filepath.Join(t.TempDir(), "pulled") + ":x"
	out, err := exec.Command("skopeo", "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false",
		"docker://"+reg.Addr+"/"+img.Ref, dst).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	after, err := reg.BlobGets()
	if err != nil {
		t.Fatal(err)
	}
	blobs := []string{m.Config.Digest.String()}
	for _, l := range m.Layers {
		blobs = append(blobs, l.Digest.String())
	}
	for _, d := range blobs {
		if n := after[d] - before[d]; n != 1 {
			t.Errorf("blob %s fetched %d times by one pull, want 1", d, n)
		}
	}
}

// TestRegistriesConfMirrorsRealNames pulls images by the names a cluster
// uses, with only the rig's registries.conf and policy.json: with no network,
// they can only come from the mirror.
func TestRegistriesConfMirrorsRealNames(t *testing.T) {
	env := testEnv(t)
	images, dir := env.Images, t.TempDir()
	// The same files berth gets from env.BerthArgs.
	global := []string{"--registries-conf", env.RegistriesConf, "--policy", env.Policy}
	for _, tc := range []struct{ name, ref, want string }{
		{"pause", RefPause, RefPause},
		{"old pause registry", RefPause39GCR, RefPause39GCR},
		{"docker hub", RefBusybox136, RefBusybox136},
		{"docker hub short name", "busybox:1.36", RefBusybox136},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := mustImage(t, images, tc.want).Digest
			// --no-tags: listing tags never goes through mirrors.
			got := skopeoInspect(t, global, "--no-tags", "docker://"+tc.ref)
			if got["Digest"] != want {
				t.Errorf("%s resolved to %v, want %s", tc.ref, got["Digest"], want)
			}
		})
	}

	// A copy applies the signature policy, which inspect does not.
	args := append(global, "copy", "--quiet", "docker://"+RefPause, "oci:"+filepath.Join(dir, "pulled")+":x")
	if out, err := exec.Command("skopeo", args...).CombinedOutput(); err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestRepository(t *testing.T) {
	for ref, want := range map[string]string{
		"registry.k8s.io/pause:3.9":             "registry.k8s.io/pause",
		"127.0.0.1:5000/busybox":                "127.0.0.1:5000/busybox",
		"127.0.0.1:5000/busybox:1.36":           "127.0.0.1:5000/busybox",
		"gcr.io/x/test-image-digest@sha256:abc": "gcr.io/x/test-image-digest",
	} {
		if got := repository(ref); got != want {
			t.Errorf("repository(%q) = %q, want %q", ref, got, want)
		}
	}
}
