package rig

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// References of the images BuildImages makes, as a client names them (the
// registry serves each under "<Registry.Addr>/<ref>").
const (
	RefBusybox     = "docker.io/library/busybox:latest"
	RefBusybox136  = "docker.io/library/busybox:1.36"
	RefPause       = "registry.k8s.io/pause:3.10"
	RefPause39     = "registry.k8s.io/pause:3.9"
	RefPause39GCR  = "k8s.gcr.io/pause:3.9"
	RefNonroot     = "docker.io/berthtest/nonroot:latest"
	RefMultilayer  = "docker.io/berthtest/multilayer:latest"
	RefSymlinks    = "docker.io/berthtest/symlinks:latest"
	multilayerSize = 10 << 20 // bytes of random data in each extra layer
)

// Image is one image BuildImages made.
type Image struct {
	// Ref is the full name the image is served as, e.g.
	// "registry.k8s.io/pause:3.10".
	Ref string `json:"ref"`
	// Layout is the OCI image layout directory that holds it; several tags
	// of one repository share a layout.
	Layout string `json:"layout"`
	// Tag names the image within Layout (index.json's ref.name).
	Tag string `json:"tag"`
	// Digest is the manifest digest ("sha256:..."); it survives the push
	// unchanged, so "<name>@<Digest>" pulls this image.
	Digest string `json:"digest"`
	// ConfigDigest is the digest of the image config, which runtimes
	// report as the image ID.
	ConfigDigest string `json:"configDigest"`
	// Layers are the compressed layer digests, base first.
	Layers []string `json:"layers"`
}

// Name is Ref without its tag, e.g. "registry.k8s.io/pause".
func (i Image) Name() string {
	name, _ := splitRef(i.Ref)
	return name
}

// FindImage returns the image with the given ref.
func FindImage(images []Image, ref string) (Image, bool) {
	for _, img := range images {
		if img.Ref == ref {
			return img, true
		}
	}
	return Image{}, false
}

// splitRef splits "host/repo:tag" at the tag's colon (the last one after
// the last slash, so a host port is not mistaken for a tag).
func splitRef(ref string) (name, tag string) {
	slash := strings.LastIndex(ref, "/")
	if colon := strings.LastIndex(ref, ":"); colon > slash {
		return ref[:colon], ref[colon+1:]
	}
	return ref, "latest"
}

// recipe is one image: its layers (shared *layer values are built once) and
// its runtime config.
type recipe struct {
	ref    string
	layers []*layer
	config v1.ImageConfig
}

// recipes lays out every image. Each gets an org.opencontainers.image.version
// label equal to its tag, so busybox:latest and busybox:1.36 (like pause:3.10
// and pause:3.9) are distinct images sharing layers, as upstream's are, while
// registry.k8s.io/pause:3.9 and k8s.gcr.io/pause:3.9 are one image under two
// names, as upstream's are.
func recipes(base, pause, nonroot *layer, random []*layer) []recipe {
	shell := func(tag string) v1.ImageConfig {
		return v1.ImageConfig{
			Env:    []string{pathEnv},
			Cmd:    []string{"sh"},
			Labels: map[string]string{v1.AnnotationVersion: tag},
		}
	}
	nonrootConfig := shell("latest")
	nonrootConfig.User = "1000:1000"
	return []recipe{
		{ref: RefBusybox, layers: []*layer{base}, config: shell("latest")},
		{ref: RefBusybox136, layers: []*layer{base}, config: shell("1.36")},
		{ref: RefPause, layers: []*layer{pause}, config: pauseConfig("3.10")},
		{ref: RefPause39, layers: []*layer{pause}, config: pauseConfig("3.9")},
		{ref: RefPause39GCR, layers: []*layer{pause}, config: pauseConfig("3.9")},
		{ref: RefNonroot, layers: []*layer{base, nonroot}, config: nonrootConfig},
		{ref: RefMultilayer, layers: append([]*layer{base}, random...), config: shell("latest")},
		{ref: RefSymlinks, layers: []*layer{base, symlinkLayer()}, config: shell("latest")},
	}
}

// pauseConfig is the config of pause images, version tag.
func pauseConfig(tag string) v1.ImageConfig {
	return v1.ImageConfig{
		// Upstream's pause runs as 65535 too; runtimes must cope.
		User:       "65535:65535",
		Env:        []string{pathEnv},
		Entrypoint: []string{"/pause"},
		Labels:     map[string]string{v1.AnnotationVersion: tag},
	}
}

// symlinkLayer holds symlinks that lead out of the rootfs if a runtime
// follows them on the host: a container's mount targets and working dir
// under them must stay inside the rootfs.
func symlinkLayer() *layer {
	l := newLayer("berth-rig: escaping symlinks")
	l.symlink("evil", "/")
	l.symlink("up", "../../../../../../..")
	l.symlink("etc/evil-dir", "/tmp")
	return l
}

// nonrootLayer adds user app (1000:1000) with a home directory.
func nonrootLayer() *layer {
	l := newLayer("berth-rig: user app 1000:1000")
	l.file("etc/passwd", 0o644, []byte(passwdBase+"app:x:1000:1000:app:/home/app:/bin/sh\n"))
	l.file("etc/group", 0o644, []byte(groupBase+"app:x:1000:\n"))
	l.dir("home/app", 0o755, 1000, 1000)
	return l
}

// randomLayer is n bytes of pseudo-random, incompressible data from a fixed
// seed: ChaCha8's output is specified, so the bytes never change.
func randomLayer(i, n int) *layer {
	var seed [32]byte
	copy(seed[:], fmt.Sprintf("berth-rig multilayer %d", i))
	data := make([]byte, n)
	_, _ = rand.NewChaCha8(seed).Read(data) // never fails
	l := newLayer(fmt.Sprintf("berth-rig: %d MiB of random data", n>>20))
	l.file(fmt.Sprintf("data/random-%d.bin", i), 0o644, data)
	return l
}

func pauseLayer(binary []byte) *layer {
	l := newLayer("berth-rig: static pause")
	l.file("pause", 0o755, binary)
	return l
}

// recipeSources are the files whose content decides what BuildImages
// produces; they are part of the cache key, so editing a recipe invalidates
// old builds without anyone having to bump a version.
//
//go:embed images.go layout.go busybox.go critest.go pause/main.go webserver/main.go nnp/main.go
var recipeSources embed.FS

// buildInputs is everything outside this package that a build depends on.
type buildInputs struct {
	busybox *busyboxSource
	goBin   string
	key     string
}

func gatherInputs(ctx context.Context) (*buildInputs, error) {
	bb, err := findBusybox(ctx)
	if err != nil {
		return nil, err
	}
	goBin, err := goTool()
	if err != nil {
		return nil, err
	}
	goVersion, err := exec.CommandContext(ctx, goBin, "env", "GOVERSION").Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOVERSION: %w", exitDetail(err))
	}

	h := sha256.New()
	fmt.Fprintf(h, "arch %s\ngo %s\n", goarch(), strings.TrimSpace(string(goVersion)))
	err = fs.WalkDir(recipeSources, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := recipeSources.ReadFile(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "source %s %x\n", p, sha256.Sum256(data))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hash rig sources: %w", err)
	}
	for _, p := range append([]string{bb.path}, bb.libs...) {
		sum, err := sha256File(p)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(h, "file %s %s\n", p, sum)
	}
	fmt.Fprintf(h, "applets %s\n", strings.Join(bb.applets, " "))
	return &buildInputs{busybox: bb, goBin: goBin, key: fmt.Sprintf("%x", h.Sum(nil))}, nil
}

// goTool finds the go command, which builds the pause binary. `go test`
// puts its own GOROOT/bin first on PATH, so tests get the toolchain they run
// with.
func goTool() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	for _, p := range []string{filepath.Join(os.Getenv("GOROOT"), "bin", "go"), "/usr/local/go/bin/go"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("find go command: not on PATH, nor in $GOROOT/bin or /usr/local/go/bin")
}

func goarch() string { return runtime.GOARCH }

// buildManifest is what BuildImages records in <dir>/images.json; a later
// call with the same key reuses the build.
type buildManifest struct {
	Key    string  `json:"key"`
	Images []Image `json:"images"`
}

const (
	manifestFile = "images.json"
	layoutsDir   = "oci"
)

// BuildImages builds the rig's images as OCI image layouts under
// dir/oci/<name>, one layout per repository, and returns them in a fixed
// order. Builds are deterministic (fixed mtimes and owners, sorted entries,
// fixed gzip headers, a seeded PRNG, a reproducible pause binary), so the same
// inputs (busybox and its libraries, Go toolchain, these sources) give the
// same digests on every run and machine. If dir already holds a build
// of the same recipe and inputs it is reused; otherwise it is rebuilt and
// swapped in. Concurrent callers (several test binaries' TestMain) serialize
// on a lock file in dir.
func BuildImages(ctx context.Context, dir string) ([]Image, error) {
	var in *buildInputs
	return buildCached(dir, func() (key string, err error) {
		in, err = gatherInputs(ctx)
		if err != nil {
			return "", err
		}
		return in.key, nil
	}, func(stagingRoot, finalRoot string) ([]Image, error) {
		return build(ctx, in, stagingRoot, finalRoot)
	})
}

// buildCached is the reuse-or-rebuild cycle of a build in dir, under a lock
// file in dir: inputs computes the build's cache key (under the lock, so it
// sees what the build will use); if dir holds a build with that key it is
// returned, otherwise write makes the layouts under stagingRoot, as they will
// be once moved to finalRoot (dir/oci), and the new build is swapped in with
// its images.json.
func buildCached(dir string, inputs func() (string, error), write func(stagingRoot, finalRoot string) ([]Image, error)) ([]Image, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolve image dir %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create image dir: %w", err)
	}
	unlock, err := lockFile(filepath.Join(dir, ".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	key, err := inputs()
	if err != nil {
		return nil, err
	}
	if images, ok := loadBuild(dir, key); ok {
		return images, nil
	}

	staging, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return nil, fmt.Errorf("create staging dir: %w", err)
	}
	defer os.RemoveAll(staging)
	images, err := write(filepath.Join(staging, layoutsDir), filepath.Join(dir, layoutsDir))
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(filepath.Join(dir, layoutsDir)); err != nil {
		return nil, fmt.Errorf("remove old build: %w", err)
	}
	if err := os.Rename(filepath.Join(staging, layoutsDir), filepath.Join(dir, layoutsDir)); err != nil {
		return nil, fmt.Errorf("move build into place: %w", err)
	}
	data, err := json.MarshalIndent(buildManifest{Key: key, Images: images}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", manifestFile, err)
	}
	if err := writeFileAtomic(filepath.Join(dir, manifestFile), data); err != nil {
		return nil, err
	}
	return images, nil
}

// loadBuild returns the images of an earlier build in dir if it was made
// from the same key and its layouts are still there.
func loadBuild(dir, key string) ([]Image, bool) {
	data, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if err != nil {
		return nil, false
	}
	var m buildManifest
	if json.Unmarshal(data, &m) != nil || m.Key != key || len(m.Images) == 0 {
		return nil, false
	}
	for _, img := range m.Images {
		if !strings.HasPrefix(img.Layout, filepath.Join(dir, layoutsDir)+"/") {
			return nil, false // dir was moved: paths are stale
		}
		if _, err := os.Stat(filepath.Join(img.Layout, v1.ImageIndexFile)); err != nil {
			return nil, false
		}
	}
	return m.Images, true
}

// build writes every layout under stagingRoot and returns the images as they
// will be once stagingRoot is renamed to finalRoot.
func build(ctx context.Context, in *buildInputs, stagingRoot, finalRoot string) ([]Image, error) {
	pauseBin, err := buildProgram(ctx, in.goBin, "pause", pauseSource)
	if err != nil {
		return nil, err
	}
	webserverBin, err := buildProgram(ctx, in.goBin, "webserver", webserverSource)
	if err != nil {
		return nil, err
	}
	nnpBin, err := buildProgram(ctx, in.goBin, "nnp", nnpSource)
	if err != nil {
		return nil, err
	}
	base, err := busyboxLayer(in.busybox)
	if err != nil {
		return nil, err
	}
	var random []*layer
	for i := range 3 {
		random = append(random, randomLayer(i, multilayerSize))
	}

	all := append(recipes(base, pauseLayer(pauseBin), nonrootLayer(), random), critestRecipes(base, webserverBin, nnpBin)...)
	return writeLayouts(all, stagingRoot, finalRoot)
}

// writeLayouts writes the images of all under stagingRoot, one layout per
// repository, and returns them in order as they will be once stagingRoot is
// renamed to finalRoot.
func writeLayouts(all []recipe, stagingRoot, finalRoot string) ([]Image, error) {
	layouts := map[string]*ociLayout{}
	var images []Image
	for _, r := range all {
		name, tag := splitRef(r.ref)
		o := layouts[name]
		if o == nil {
			var err error
			if o, err = newOCILayout(filepath.Join(stagingRoot, filepath.FromSlash(name))); err != nil {
				return nil, err
			}
			layouts[name] = o
		}
		manifest, config, err := o.addImage(tag, r.layers, r.config)
		if err != nil {
			return nil, fmt.Errorf("build image %s: %w", r.ref, err)
		}
		img := Image{
			Ref:          r.ref,
			Layout:       filepath.Join(finalRoot, filepath.FromSlash(name)),
			Tag:          tag,
			Digest:       manifest.Digest.String(),
			ConfigDigest: config.Digest.String(),
		}
		for _, l := range r.layers {
			img.Layers = append(img.Layers, l.built.digest.String())
		}
		images = append(images, img)
	}
	for name, o := range layouts {
		if err := o.finish(); err != nil {
			return nil, fmt.Errorf("finish layout for %s: %w", name, err)
		}
	}
	return images, nil
}

// The programs the images carry besides busybox: pause, and the stand-ins
// for critest's web servers and nonewprivs' nnp.
var (
	//go:embed pause/main.go
	pauseSource []byte
	//go:embed webserver/main.go
	webserverSource []byte
	//go:embed nnp/main.go
	nnpSource []byte
)

// buildProgram compiles one embedded single-file program into a static
// binary. It is built from a throwaway module so that it works wherever the
// rig runs (no need for Berth's source tree), and with -trimpath and an
// empty build ID so that one toolchain always produces the same bytes.
func buildProgram(ctx context.Context, goBin, name string, source []byte) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "berth-rig-"+name+"-")
	if err != nil {
		return nil, fmt.Errorf("create %s build dir: %w", name, err)
	}
	defer os.RemoveAll(tmp)
	files := map[string][]byte{
		"go.mod":  []byte("module berth.test/" + name + "\n\ngo 1.22\n"),
		"main.go": source,
	}
	for file, data := range files {
		if err := os.WriteFile(filepath.Join(tmp, file), data, 0o644); err != nil {
			return nil, fmt.Errorf("write %s source: %w", name, err)
		}
	}
	out := filepath.Join(tmp, name)
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -buildid=", "-o", out, ".")
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch(),
		"GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local")
	if output, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %w: %s", name, err, strings.TrimSpace(string(output)))
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("read %s binary: %w", name, err)
	}
	return bin, nil
}

// lockFile takes an exclusive flock on p, creating it, and returns the unlock.
func lockFile(p string) (func(), error) {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", p, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	return func() { f.Close() }, nil // closing drops the lock
}

// writeFileAtomic writes via a temp file and rename, so readers never see a
// partial file.
func writeFileAtomic(p string, data []byte) error {
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}
