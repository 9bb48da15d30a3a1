// Package storagetest builds small OCI images, serves them from a real local
// registry (Debian's docker-registry) and captures logs, for the tests of
// the storage package and of the server's image handlers.
package storagetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Layer is the files of one layer, path to content.
type Layer map[string]string

// Spec describes an image to build.
type Spec struct {
	Layers []Layer
	User   string
	Cmd    []string
	Labels map[string]string
}

// Built is an image written to an OCI layout.
type Built struct {
	Dir      string
	Tag      string
	Layers   []digest.Digest // compressed layer blob digests
	Config   digest.Digest   // the image id is its hex part
	Manifest digest.Digest
}

// ID is the storage id the image gets.
func (b Built) ID() string { return b.Config.Encoded() }

// WriteOCI writes spec as tag into the OCI layout at dir (created or
// extended).
func WriteOCI(t testing.TB, dir, tag string, spec Spec) Built {
	t.Helper()
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	put := func(data []byte) imgspecv1.Descriptor {
		d := digest.FromBytes(data)
		if err := os.WriteFile(filepath.Join(blobs, d.Encoded()), data, 0o644); err != nil {
			t.Fatal(err)
		}
		return imgspecv1.Descriptor{Digest: d, Size: int64(len(data))}
	}
	built := Built{Dir: dir, Tag: tag}
	cfg := imgspecv1.Image{
		Platform: imgspecv1.Platform{Architecture: runtime.GOARCH, OS: "linux"},
		Config:   imgspecv1.ImageConfig{User: spec.User, Cmd: spec.Cmd, Labels: spec.Labels},
		RootFS:   imgspecv1.RootFS{Type: "layers"},
	}
	m := imgspecv1.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest}
	for _, l := range spec.Layers {
		raw, gz := layerTar(t, l)
		desc := put(gz)
		desc.MediaType = imgspecv1.MediaTypeImageLayerGzip
		m.Layers = append(m.Layers, desc)
		built.Layers = append(built.Layers, desc.Digest)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(raw))
	}
	m.Config = put(mustJSON(t, cfg))
	m.Config.MediaType = imgspecv1.MediaTypeImageConfig
	built.Config = m.Config.Digest
	md := put(mustJSON(t, m))
	md.MediaType = imgspecv1.MediaTypeImageManifest
	md.Annotations = map[string]string{imgspecv1.AnnotationRefName: tag}
	built.Manifest = md.Digest

	index := imgspecv1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex}
	if raw, err := os.ReadFile(filepath.Join(dir, "index.json")); err == nil {
		if err := json.Unmarshal(raw, &index); err != nil {
			t.Fatal(err)
		}
	}
	index.Manifests = slices.DeleteFunc(index.Manifests, func(d imgspecv1.Descriptor) bool {
		return d.Annotations[imgspecv1.AnnotationRefName] == tag
	})
	index.Manifests = append(index.Manifests, md)
	writeFile(t, filepath.Join(dir, "index.json"), mustJSON(t, index))
	writeFile(t, filepath.Join(dir, imgspecv1.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`))
	return built
}

// layerTar returns a layer's tar and its gzip.
func layerTar(t testing.TB, l Layer) (raw, gz []byte) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	dirs := map[string]bool{}
	paths := make([]string, 0, len(l))
	for p := range l {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		p = strings.TrimPrefix(p, "/")
		for d := filepath.Dir(p); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
			hdr := &tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: epoch}
			if err := tw.WriteHeader(hdr); err != nil {
				t.Fatal(err)
			}
		}
		content := l["/"+p] + l[p]
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: 0o644, Size: int64(len(content)), ModTime: epoch}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var zbuf bytes.Buffer
	zw := gzip.NewWriter(&zbuf)
	if _, err := zw.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), zbuf.Bytes()
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
