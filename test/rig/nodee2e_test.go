package rig

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// BERTH_AGNHOST is the path of a static agnhost binary (CGO_ENABLED=0 go
// build k8s.io/kubernetes/test/images/agnhost). Without it the node e2e
// images are built around a stand-in static binary, and only the tests that
// run agnhost itself are skipped.
const agnhostEnv = "BERTH_AGNHOST"

// One node e2e build, into the shared BuildImages dir (so the tests see
// whether the two builds leave each other alone), made on first use.
var (
	nodeE2EAgnhost  string
	nodeE2EImages   []Image
	nodeE2EBuildDur time.Duration
	nodeE2EErr      error
	nodeE2EOnce     sync.Once
)

const fakeAgnhostSource = `package main

import (
	"fmt"
	"os"
)

func main() { fmt.Println("fake agnhost", os.Args[1:]) }
`

// testAgnhost returns BERTH_AGNHOST, or else a static stand-in built once
// into the shared dir.
func testAgnhost(t *testing.T) string {
	t.Helper()
	testImages(t) // makes sharedDir
	p, err := agnhostForTests()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func agnhostForTests() (string, error) {
	if p := os.Getenv(agnhostEnv); p != "" {
		return p, nil
	}
	p := filepath.Join(sharedDir, "fake-agnhost")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	goBin, err := goTool()
	if err != nil {
		return "", err
	}
	bin, err := buildProgram(context.Background(), goBin, "agnhost", []byte(fakeAgnhostSource))
	if err != nil {
		return "", err
	}
	return p, os.WriteFile(p, bin, 0o755)
}

func requireAgnhost(t *testing.T) {
	t.Helper()
	if os.Getenv(agnhostEnv) == "" {
		t.Skipf("%s is not set: set it to a static agnhost (cd <module requiring k8s.io/kubernetes %s> && CGO_ENABLED=0 go build -o /tmp/agnhost k8s.io/kubernetes/test/images/agnhost)",
			agnhostEnv, kubernetesVersion)
	}
}

func testNodeE2EImages(t *testing.T) []Image {
	t.Helper()
	testImages(t)
	nodeE2EOnce.Do(func() {
		if nodeE2EAgnhost, nodeE2EErr = agnhostForTests(); nodeE2EErr != nil {
			return
		}
		start := time.Now()
		nodeE2EImages, nodeE2EErr = BuildNodeE2EImages(context.Background(), filepath.Join(sharedDir, "images"), nodeE2EAgnhost)
		nodeE2EBuildDur = time.Since(start)
	})
	if nodeE2EErr != nil {
		t.Fatalf("BuildNodeE2EImages: %v", nodeE2EErr)
	}
	return nodeE2EImages
}

// The refs are the suite's (test/utils/image/manifest.go of v1.37.2), each
// image is labelled with its tag, and none is also one of BuildImages'
// (critest's busybox 1.29-2 and nginx 1.14-2 are other tags).
func TestNodeE2ERefs(t *testing.T) {
	want := []string{
		"registry.k8s.io/e2e-test-images/busybox:1.37.0-2",
		"registry.k8s.io/e2e-test-images/agnhost:2.66.1",
		"registry.k8s.io/e2e-test-images/agnhost:2.55",
		"registry.k8s.io/e2e-test-images/nginx:1.27.0-2",
		"registry.k8s.io/e2e-test-images/nonewprivs:1.4",
		"registry.k8s.io/e2e-test-images/nonroot:1.5",
		"registry.k8s.io/pause:3.10.2",
		"registry.k8s.io/e2e-test-images/glibc-dns-testing:2.1.1",
		"registry.k8s.io/e2e-test-images/ipc-utils:1.4",
	}
	if got := NodeE2ERefs(); !slices.Equal(got, want) {
		t.Errorf("NodeE2ERefs() = %v\nwant %v", got, want)
	}
	for _, r := range nodeE2ERecipes(nodeE2ELayers{}) {
		_, tag := splitRef(r.ref)
		if v := r.config.Labels[v1.AnnotationVersion]; v != tag {
			t.Errorf("%s: version label %q, want %q", r.ref, v, tag)
		}
	}
	var rigRefs []string
	for _, r := range recipes(nil, nil, nil, nil) {
		rigRefs = append(rigRefs, r.ref)
	}
	for _, ref := range append(rigRefs, CritestRefs()...) {
		if slices.Contains(want, ref) {
			t.Errorf("%s is built by both BuildImages and BuildNodeE2EImages", ref)
		}
	}
}

func TestNodeE2EImageConfigs(t *testing.T) {
	images := testNodeE2EImages(t)
	t.Logf("BuildNodeE2EImages (cold, agnhost %s) took %v", nodeE2EAgnhost, nodeE2EBuildDur)
	var refs []string
	for _, img := range images {
		refs = append(refs, img.Ref)
	}
	if !slices.Equal(refs, NodeE2ERefs()) {
		t.Fatalf("built %v, want %v", refs, NodeE2ERefs())
	}

	agnhostPortsWant := []string{"5000/tcp", "80/tcp", "8080/tcp", "8081/tcp", "9376/tcp"}
	for _, tc := range []struct {
		ref        string
		user       string
		cmd        []string
		entrypoint []string
		stopSignal string
		ports      []string
		layers     int
	}{
		{ref: RefNodeE2EBusybox, cmd: []string{"sh"}, layers: 3},
		{ref: RefNodeE2EAgnhost, cmd: []string{"pause"}, entrypoint: []string{"/agnhost"}, ports: agnhostPortsWant, layers: 4},
		{ref: RefNodeE2EAgnhostPrev, cmd: []string{"pause"}, entrypoint: []string{"/agnhost"}, ports: agnhostPortsWant, layers: 4},
		{ref: RefNodeE2ENginx, cmd: []string{"nginx", "-g", "daemon off;"}, stopSignal: "SIGQUIT", ports: []string{"80/tcp"}, layers: 3},
		{ref: RefNodeE2ENonewprivs, cmd: []string{"nnp"}, layers: 3},
		{ref: RefNodeE2ENonroot, user: "1234", cmd: []string{"sh"}, layers: 2},
		{ref: RefNodeE2EPause, user: "65535:65535", entrypoint: []string{"/pause"}, layers: 1},
		{ref: RefNodeE2EGlibcDNSTesting, cmd: []string{"sh"}, layers: 3},
		{ref: RefNodeE2EIPCUtils, cmd: []string{"sh"}, layers: 3},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			img := mustImage(t, images, tc.ref)
			if len(img.Layers) != tc.layers {
				t.Errorf("%d layers, want %d", len(img.Layers), tc.layers)
			}
			cfg, err := img.Config()
			if err != nil {
				t.Fatal(err)
			}
			c := cfg.Config
			if c.User != tc.user || !slices.Equal(c.Cmd, tc.cmd) || !slices.Equal(c.Entrypoint, tc.entrypoint) || c.StopSignal != tc.stopSignal {
				t.Errorf("config: User %q Cmd %q Entrypoint %q StopSignal %q; want %q %q %q %q",
					c.User, c.Cmd, c.Entrypoint, c.StopSignal, tc.user, tc.cmd, tc.entrypoint, tc.stopSignal)
			}
			var ports []string
			for p := range c.ExposedPorts {
				ports = append(ports, p)
			}
			slices.Sort(ports)
			if !slices.Equal(ports, tc.ports) {
				t.Errorf("exposed ports %v, want %v", ports, tc.ports)
			}
			if v := c.Labels[v1.AnnotationVersion]; v != img.Tag {
				t.Errorf("version label %q, want the tag %q", v, img.Tag)
			}
			if !slices.Contains(c.Env, pathEnv) {
				t.Errorf("Env %q lacks %s", c.Env, pathEnv)
			}
		})
	}

	// agnhost 2.55 and 2.66.1: the same layers, distinct images.
	cur, prev := mustImage(t, images, RefNodeE2EAgnhost), mustImage(t, images, RefNodeE2EAgnhostPrev)
	if cur.ConfigDigest == prev.ConfigDigest || cur.Digest == prev.Digest {
		t.Errorf("agnhost 2.66.1 (%s, config %s) and 2.55 (%s, config %s) are one image", cur.Digest, cur.ConfigDigest, prev.Digest, prev.ConfigDigest)
	}
	if !slices.Equal(cur.Layers, prev.Layers) {
		t.Errorf("agnhost tags should share their layers: %v vs %v", cur.Layers, prev.Layers)
	}
	// The busybox and pause layers are BuildImages' own.
	rig := testImages(t)
	if a, b := mustImage(t, images, RefNodeE2EBusybox).Layers[:2], mustImage(t, rig, RefE2EBusybox).Layers; !slices.Equal(a, b) {
		t.Errorf("node e2e busybox base %v, critest busybox %v: want the same busybox and users layers", a, b)
	}
	if a, b := mustImage(t, images, RefNodeE2EPause).Layers, mustImage(t, rig, RefPause).Layers; !slices.Equal(a, b) {
		t.Errorf("pause 3.10.2 layers %v, pause 3.10 %v: want the same", a, b)
	}
}

// A node e2e build in BuildImages' dir leaves BuildImages' build in place
// (still a cache hit, images.json untouched), and a second call reuses it.
func TestNodeE2EBuildIsCachedAndSeparate(t *testing.T) {
	rig := testImages(t)
	first := testNodeE2EImages(t)
	ctx := context.Background()
	dir := filepath.Join(sharedDir, "images")

	for _, img := range first {
		if want := filepath.Join(dir, nodeE2EDir, layoutsDir) + "/"; !strings.HasPrefix(img.Layout, want) {
			t.Errorf("%s: layout %s is not under %s", img.Ref, img.Layout, want)
		}
	}
	if rigIn, err := gatherInputs(ctx); err != nil {
		t.Fatal(err)
	} else if images, ok := loadBuild(dir, rigIn.key); !ok || !slices.Equal(refsOf(images), refsOf(rig)) {
		t.Errorf("BuildImages' build in %s is no longer reusable after BuildNodeE2EImages", dir)
	}
	rigManifest := filepath.Join(dir, manifestFile)
	before, err := os.Stat(rigManifest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := BuildImages(ctx, dir); err != nil {
		t.Fatal(err)
	}

	index := filepath.Join(first[0].Layout, v1.ImageIndexFile)
	indexBefore, err := os.Stat(index)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	again, err := BuildNodeE2EImages(ctx, dir, nodeE2EAgnhost)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cached node e2e build took %v", time.Since(start))
	if !slices.EqualFunc(first, again, func(a, b Image) bool {
		return a.Ref == b.Ref && a.Digest == b.Digest && a.Layout == b.Layout
	}) {
		t.Errorf("cached build returned different images:\n%+v\n%+v", first, again)
	}
	for p, was := range map[string]os.FileInfo{index: indexBefore, rigManifest: before} {
		now, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if !now.ModTime().Equal(was.ModTime()) {
			t.Errorf("cached builds rewrote %s", p)
		}
	}
}

func refsOf(images []Image) []string {
	var refs []string
	for _, img := range images {
		refs = append(refs, img.Ref)
	}
	return refs
}

// The cache key covers agnhost's content and the host programs and
// libraries copied in; a dynamic agnhost is refused.
func TestNodeE2EInputs(t *testing.T) {
	ctx := context.Background()
	agnhost := testAgnhost(t)
	a, err := gatherNodeE2EInputs(ctx, agnhost)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{a.agnhost, hostCurl, hostBash, hostHostname, hostIpcs, a.nssFiles.src} {
		if !slices.Contains(a.hashed, p) {
			t.Errorf("cache key does not cover %s (covers %v)", p, a.hashed)
		}
	}
	for _, tool := range []hostTool{a.curl, a.bash, a.hostname, a.ipcs} {
		if len(tool.libs) == 0 {
			t.Errorf("%s: no shared libraries found", tool.src)
		}
		for _, lib := range tool.libs {
			if !slices.Contains(a.hashed, lib) {
				t.Errorf("cache key does not cover %s, a library of %s", lib, tool.src)
			}
		}
	}
	if filepath.Base(a.nssFiles.src) != nssFilesLib {
		t.Errorf("libnss_files: %q", a.nssFiles.src)
	}
	t.Logf("porter key pair present: %v", a.cert != nil)

	// Another agnhost (one byte more), another key; the same one, the same key.
	data, err := os.ReadFile(agnhost)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "agnhost")
	if err := os.WriteFile(other, append(data, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		agnhost string
		same    bool
	}{
		{"same agnhost", agnhost, true},
		{"other agnhost", other, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := gatherNodeE2EInputs(ctx, tc.agnhost)
			if err != nil {
				t.Fatal(err)
			}
			if (a.key == b.key) != tc.same {
				t.Errorf("keys %s and %s: want same=%v", a.key, b.key, tc.same)
			}
		})
	}

	for _, tc := range []struct{ name, agnhost, want string }{
		{"dynamic", "/bin/true", "dynamically linked"},
		{"missing", filepath.Join(t.TempDir(), "nope"), "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := gatherNodeE2EInputs(ctx, tc.agnhost); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("agnhost %s: err %v, want one containing %q", tc.agnhost, err, tc.want)
			}
		})
	}
}

func TestNodeE2EImageFiles(t *testing.T) {
	images := testNodeE2EImages(t)
	in, err := gatherNodeE2EInputs(context.Background(), nodeE2EAgnhost)
	if err != nil {
		t.Fatal(err)
	}
	sameFile := func(t *testing.T, root, p, host string) {
		t.Helper()
		got, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Error(err)
			return
		}
		want, err := os.ReadFile(host)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("/%s differs from the host's %s", p, host)
		}
	}
	contains := func(t *testing.T, root, p string, want ...string) {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Error(err)
			return
		}
		for _, w := range want {
			if !strings.Contains(string(data), w) {
				t.Errorf("/%s lacks %q:\n%s", p, w, data)
			}
		}
	}
	libsPresent := func(t *testing.T, root string, tools ...hostTool) {
		t.Helper()
		for _, tool := range tools {
			for _, lib := range tool.libs {
				sameFile(t, root, strings.TrimPrefix(lib, "/"), lib)
			}
		}
	}

	t.Run("agnhost", func(t *testing.T) {
		root := unpack(t, mustImage(t, images, RefNodeE2EAgnhost))
		sameFile(t, root, "agnhost", in.agnhost)
		if target, err := os.Readlink(filepath.Join(root, "agnhost-2")); err != nil || target != "agnhost" {
			t.Errorf("/agnhost-2 -> %q (%v), want a symlink to agnhost", target, err)
		}
		if st, err := os.Stat(filepath.Join(root, "uploads")); err != nil || !st.IsDir() {
			t.Errorf("/uploads: %v", err)
		}
		for _, f := range []string{"localhost.crt", "localhost.key"} {
			_, err := os.Stat(filepath.Join(root, f))
			if present := err == nil; present != (in.cert != nil) {
				t.Errorf("/%s present %v, porter's pair present %v", f, present, in.cert != nil)
			}
		}
		contains(t, root, "etc/passwd", "\nuser-defined-in-image:x:1000:1000:", "\nnobody:x:65534:65534:")
		contains(t, root, "etc/group", "\ngroup-defined-in-image:x:50000:user-defined-in-image\n")
		sameFile(t, root, "usr/bin/curl", hostCurl)
		sameFile(t, root, "bin/bash", hostBash)
		libsPresent(t, root, in.curl, in.bash)
		if st, err := os.Stat(filepath.Join(root, "bin", "nc")); err != nil || !st.Mode().IsRegular() {
			t.Errorf("/bin/nc (busybox) missing: %v", err)
		}
	})
	t.Run("busybox sh is bash, env is busybox", func(t *testing.T) {
		root := unpack(t, mustImage(t, images, RefNodeE2EBusybox))
		sameFile(t, root, "bin/sh", hostBash)
		libsPresent(t, root, in.bash)
		bb, err := os.Stat(filepath.Join(root, "bin", "busybox"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"bin/env", "bin/ash", "bin/ls"} {
			if st, err := os.Stat(filepath.Join(root, name)); err != nil || !os.SameFile(bb, st) {
				t.Errorf("/%s is not busybox (%v)", name, err)
			}
		}
	})
	t.Run("glibc-dns-testing", func(t *testing.T) {
		root := unpack(t, mustImage(t, images, RefNodeE2EGlibcDNSTesting))
		sameFile(t, root, "bin/hostname", hostHostname)
		sameFile(t, root, strings.TrimPrefix(in.nssFiles.src, "/"), in.nssFiles.src)
		libsPresent(t, root, in.hostname)
		contains(t, root, "etc/nsswitch.conf", "\nhosts: files dns\n")
	})
	t.Run("ipc-utils", func(t *testing.T) {
		root := unpack(t, mustImage(t, images, RefNodeE2EIPCUtils))
		sameFile(t, root, "usr/bin/ipcs", hostIpcs)
		sameFile(t, root, "bin/ipcs", hostIpcs)
		libsPresent(t, root, in.ipcs)
	})
	t.Run("nonewprivs", func(t *testing.T) {
		root := unpack(t, mustImage(t, images, RefNodeE2ENonewprivs))
		st, err := os.Stat(filepath.Join(root, "usr/local/bin/nnp"))
		if err != nil {
			t.Fatal(err)
		}
		if os.Geteuid() == 0 && st.Mode()&os.ModeSetuid == 0 {
			t.Errorf("nnp mode %v, want setuid", st.Mode())
		}
	})
	t.Run("nginx", func(t *testing.T) {
		root := unpack(t, mustImage(t, images, RefNodeE2ENginx))
		contains(t, root, "etc/nginx/conf.d/default.conf", "listen       80;")
	})
}

// dashedEnv is what the ConfigMap and Secret envFrom specs give `sh -c env`
// and expect back.
var dashedEnv = []string{"data-1=value-1", "p-data-1=value-1", "1-data-1=value-1", "$_-data-1=value-1", "ABC_data-1=value-1", "#@!data-1=value-1"}

// The image's sh passes variables whose names are not identifiers on to
// env. Runs the image's bash and busybox directly (they load the host's
// copies of their libraries), so it needs no root; as root, also in a
// chroot of the image, with only its own libraries.
func TestNodeE2EBusyboxShKeepsDashedEnv(t *testing.T) {
	root := unpack(t, mustImage(t, testNodeE2EImages(t), RefNodeE2EBusybox))
	bin := filepath.Join(root, "bin")
	env := append([]string{"env", "-i", "PATH=" + bin}, dashedEnv...)

	for _, tc := range []struct {
		name   string
		args   []string
		chroot bool
	}{
		{"sh -c env", append(env, filepath.Join(bin, "sh"), "-c", "env"), false},
		{"sh -c 'exec env'", append(env, filepath.Join(bin, "sh"), "-c", "exec env"), false},
		{"chroot: sh -c env", append([]string{"chroot", root, "/bin/env", "-i", "PATH=/bin"}, append(slices.Clone(dashedEnv), "/bin/sh", "-c", "env")...), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.chroot {
				requireRoot(t)
			}
			out := run(t, tc.args[0], tc.args[1:]...)
			for _, v := range dashedEnv {
				if !slices.Contains(strings.Split(out, "\n"), v) {
					t.Errorf("output lacks %q:\n%s", v, out)
				}
			}
		})
	}
	// Why sh is not busybox's: its ash drops them (logged, not asserted: a
	// newer busybox keeps them).
	out := run(t, "env", append(append([]string{"-i", "PATH=" + bin}, dashedEnv...), filepath.Join(bin, "ash"), "-c", "env")...)
	t.Logf("busybox ash -c env keeps data-1: %v", strings.Contains(out, "data-1=value-1"))
}

// TestNodeE2EProgramsRun runs the host programs in chroots of their images
// (root), as the specs use them: curl and bash in agnhost, `hostname -f`
// through /etc/hosts in glibc-dns-testing, `ipcs -m | awk` in ipc-utils.
func TestNodeE2EProgramsRun(t *testing.T) {
	images := testNodeE2EImages(t)
	requireRoot(t)

	t.Run("agnhost curl and bash", func(t *testing.T) {
		root := unpack(t, mustImage(t, images, RefNodeE2EAgnhost))
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "echo %s\n", r.URL.Query().Get("msg"))
		}))
		defer srv.Close()
		out := run(t, "chroot", root, "/bin/bash", "-c", `echo "bash $BASH_VERSION"; sh -c "curl -sS `+srv.URL+`/echo?msg=poststart"`)
		if !strings.HasPrefix(out, "bash 5") || !strings.Contains(out, "echo poststart\n") {
			t.Errorf("bash and curl in agnhost printed %q", out)
		}
	})
	t.Run("agnhost itself", func(t *testing.T) {
		requireAgnhost(t)
		root := unpack(t, mustImage(t, images, RefNodeE2EAgnhost))
		for _, exe := range []string{"/agnhost", "/agnhost-2"} {
			out := run(t, "chroot", root, exe, "--help")
			for _, cmd := range []string{"netexec", "mounttest", "pause", "liveness"} {
				if !strings.Contains(out, cmd) {
					t.Errorf("%s --help lacks %s:\n%s", exe, cmd, out)
				}
			}
		}
	})
	// The Containers Lifecycle specs' own stamp, parsed as they parse it, in
	// the two images they run it in.
	for _, ref := range []string{RefNodeE2EBusybox, RefNodeE2EAgnhost} {
		t.Run("nmeter timestamps in "+ref, func(t *testing.T) {
			root := unpack(t, mustImage(t, images, ref))
			out := run(t, "chroot", root, "/bin/sh", "-c", "echo `date -u +%FT$(nmeter -d0 '%3t' | head -n1)Z`")
			stamp, err := time.Parse(time.RFC3339, strings.TrimSpace(out))
			if err != nil || time.Since(stamp).Abs() > time.Minute || !strings.Contains(out, ".") {
				t.Errorf("nmeter stamp %q: %v; want now, with milliseconds", out, err)
			}
		})
	}
	t.Run("agnhost nc -u", func(t *testing.T) {
		root := unpack(t, mustImage(t, images, RefNodeE2EAgnhost))
		// What the networking specs run: UDP, a one-second wait.
		// The listener may not be up for the first datagram: send until it
		// has one.
		out := inNamespaces(t, root, `chroot "$R" nc -u -l 127.0.0.1 18081 > "$R/got" & l=$!
for i in $(seq 30); do echo hostName | chroot "$R" nc -w 1 -u 127.0.0.1 18081; grep -q hostName "$R/got" && break; done
kill $l; cat "$R/got"`)
		if !strings.Contains(out, "hostName") {
			t.Errorf("nc -u in agnhost carried nothing:\n%s", out)
		}
	})
	t.Run("glibc-dns-testing hostname -f", func(t *testing.T) {
		root := unpack(t, mustImage(t, images, RefNodeE2EGlibcDNSTesting))
		// What kubelet writes for a pod with a subdomain.
		hosts := "127.0.0.1\tlocalhost\n10.1.2.3\tmyhost.sub.ns.svc.cluster.local\tmyhost\n"
		if err := os.WriteFile(filepath.Join(root, "etc", "hosts"), []byte(hosts), 0o644); err != nil {
			t.Fatal(err)
		}
		out := run(t, "unshare", "--uts", "sh", "-c",
			`hostname myhost && exec chroot "$1" sh -c "echo \$(hostname)';'\$(hostname -f)';'"`, "sh", root)
		if out != "myhost;myhost.sub.ns.svc.cluster.local;\n" {
			t.Errorf("hostname;hostname -f printed %q", out)
		}
	})
	t.Run("ipc-utils ipcs -m", func(t *testing.T) {
		root := unpack(t, mustImage(t, images, RefNodeE2EIPCUtils))
		out := inNamespaces(t, root, `id=$(ipcmk -M 1048576 | awk '{print $NF}') && echo "id=$id" && chroot "$R" sh -c "ipcs -m | awk '{print \$2}'" && chroot "$R" ipcs -V`)
		id, rest, _ := strings.Cut(strings.TrimPrefix(out, "id="), "\n")
		if id == "" || !slices.Contains(strings.Split(rest, "\n"), id) {
			t.Errorf("ipcs -m does not list segment %q:\n%s", id, out)
		}
		if !strings.Contains(rest, "util-linux") {
			t.Errorf("ipcs -V: not util-linux's:\n%s", out)
		}
	})
}
