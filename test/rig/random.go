package rig

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// BuildRandomImage writes an image of layers layers, each one file of size
// bytes of seeded pseudo-random (so incompressible) data, as an OCI layout
// under dir, named ref. The seed names the bytes: two calls with the same
// seed, layers and size give the same digests, and images of different
// seeds share no blob, so a pull of one never finds the other's layers.
// Push it with Registry.Push; nothing runs from it (it has no shell).
//
// It lives outside the files that key BuildImages' cache, so adding images
// here never rebuilds the rig's own.
func BuildRandomImage(dir, ref, seed string, layers, size int) (Image, error) {
	name, tag := splitRef(ref)
	layoutDir := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.RemoveAll(layoutDir); err != nil {
		return Image{}, fmt.Errorf("remove old layout %s: %w", layoutDir, err)
	}
	o, err := newOCILayout(layoutDir)
	if err != nil {
		return Image{}, err
	}
	var ls []*layer
	for i := range layers {
		var s [32]byte
		copy(s[:], fmt.Sprintf("%s %d", seed, i))
		data := make([]byte, size)
		_, _ = rand.NewChaCha8(s).Read(data) // never fails
		l := newLayer(fmt.Sprintf("berth-rig: %d bytes of random data (%s, layer %d)", size, seed, i))
		l.file(fmt.Sprintf("data/%d.bin", i), 0o644, data)
		ls = append(ls, l)
	}
	manifest, config, err := o.addImage(tag, ls, v1.ImageConfig{
		Env:    []string{pathEnv},
		Labels: map[string]string{v1.AnnotationVersion: tag},
	})
	if err != nil {
		return Image{}, fmt.Errorf("build image %s: %w", ref, err)
	}
	if err := o.finish(); err != nil {
		return Image{}, err
	}
	img := Image{Ref: ref, Layout: layoutDir, Tag: tag, Digest: manifest.Digest.String(), ConfigDigest: config.Digest.String()}
	for _, l := range ls {
		img.Layers = append(img.Layers, l.built.digest.String())
	}
	return img, nil
}
