package rig

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// epoch is the timestamp of every file and image the rig builds: fixed, so
// that two builds produce the same bytes and thus the same digests.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// fileEntry is one member of a layer tarball.
type fileEntry struct {
	name     string // slash-separated, relative to the root, no trailing slash
	typeflag byte   // tar.TypeReg, tar.TypeDir, tar.TypeLink or tar.TypeSymlink
	mode     int64
	uid, gid int
	data     []byte // content of a regular file
	linkname string // target of a hard link (a layer path) or symlink
}

// layer is a filesystem changeset under construction; build turns it into a
// gzip-compressed tarball whose bytes depend only on its entries.
type layer struct {
	comment string // the image history's created_by
	entries map[string]fileEntry

	built *builtLayer // memoized: layers are shared between images
}

type builtLayer struct {
	blob   []byte        // gzip-compressed tar
	digest digest.Digest // of blob
	diffID digest.Digest // of the uncompressed tar
}

func newLayer(comment string) *layer {
	return &layer{comment: comment, entries: map[string]fileEntry{}}
}

// dir adds a directory, mode 0755 unless given.
func (l *layer) dir(name string, mode int64, uid, gid int) {
	l.add(fileEntry{name: name, typeflag: tar.TypeDir, mode: mode, uid: uid, gid: gid})
}

// file adds a regular file owned by root.
func (l *layer) file(name string, mode int64, data []byte) {
	l.add(fileEntry{name: name, typeflag: tar.TypeReg, mode: mode, data: data})
}

// hardlink adds name as a hard link to target, an earlier regular file of
// this layer.
func (l *layer) hardlink(name, target string) {
	// Extractors apply a link header's mode and owner to the shared inode,
	// so the link carries its target's: mode 0 here would make busybox
	// unexecutable through every one of its applet names.
	t := l.entries[strings.Trim(path.Clean(target), "/")]
	l.add(fileEntry{name: name, typeflag: tar.TypeLink, linkname: target, mode: t.mode, uid: t.uid, gid: t.gid})
}

// symlink adds name as a symbolic link to target.
func (l *layer) symlink(name, target string) {
	l.add(fileEntry{name: name, typeflag: tar.TypeSymlink, mode: 0o777, linkname: target})
}

// add records an entry and creates any missing parent directories (0755,
// root) so that every layer extracts on its own.
func (l *layer) add(e fileEntry) {
	e.name = strings.Trim(path.Clean(e.name), "/")
	for p := path.Dir(e.name); p != "." && p != "/"; p = path.Dir(p) {
		if _, ok := l.entries[p]; !ok {
			l.entries[p] = fileEntry{name: p, typeflag: tar.TypeDir, mode: 0o755}
		}
	}
	l.entries[e.name] = e
}

// build serializes the layer. Entries are sorted by name, except that hard
// links come after every other entry, because a hard link must follow its
// target in the stream (and "bin/[" sorts before "bin/busybox").
func (l *layer) build() (*builtLayer, error) {
	if l.built != nil {
		return l.built, nil
	}
	names := make([]string, 0, len(l.entries))
	for name := range l.entries {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int {
		la, lb := l.entries[a].typeflag == tar.TypeLink, l.entries[b].typeflag == tar.TypeLink
		if la != lb {
			if la {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})

	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, name := range names {
		e := l.entries[name]
		hdr := &tar.Header{
			Typeflag: e.typeflag,
			Name:     e.name,
			Linkname: e.linkname,
			Mode:     e.mode,
			Uid:      e.uid,
			Gid:      e.gid,
			ModTime:  epoch,
		}
		switch e.typeflag {
		case tar.TypeDir:
			hdr.Name += "/"
		case tar.TypeReg:
			hdr.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("write tar header for %s: %w", e.name, err)
		}
		if e.typeflag == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				return nil, fmt.Errorf("write tar data for %s: %w", e.name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close tar: %w", err)
	}

	var gz bytes.Buffer
	// BestSpeed: the random-data layers do not compress anyway, and the
	// busybox layer is small; speed matters more than a few kilobytes.
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if err != nil {
		return nil, fmt.Errorf("create gzip writer: %w", err)
	}
	// The gzip header stays at its zero values (no name, no mtime) so the
	// compressed bytes are as deterministic as the tar.
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, fmt.Errorf("gzip layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip layer: %w", err)
	}
	l.built = &builtLayer{
		blob:   gz.Bytes(),
		digest: digest.FromBytes(gz.Bytes()),
		diffID: digest.FromBytes(raw.Bytes()),
	}
	return l.built, nil
}

// ociLayout writes one OCI image layout directory: blobs, oci-layout and an
// index.json naming each image by its tag.
type ociLayout struct {
	dir       string
	manifests []v1.Descriptor
}

func newOCILayout(dir string) (*ociLayout, error) {
	if err := os.MkdirAll(filepath.Join(dir, v1.ImageBlobsDir, "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("create OCI layout %s: %w", dir, err)
	}
	layoutJSON, err := json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})
	if err != nil {
		return nil, fmt.Errorf("encode oci-layout: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, v1.ImageLayoutFile), layoutJSON, 0o644); err != nil {
		return nil, fmt.Errorf("write oci-layout in %s: %w", dir, err)
	}
	return &ociLayout{dir: dir}, nil
}

// writeBlob stores data under blobs/sha256 and returns its descriptor.
func (o *ociLayout) writeBlob(mediaType string, data []byte) (v1.Descriptor, error) {
	d := digest.FromBytes(data)
	p := filepath.Join(o.dir, v1.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
	if _, err := os.Stat(p); err != nil {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return v1.Descriptor{}, fmt.Errorf("write blob %s: %w", d, err)
		}
	}
	return v1.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}, nil
}

// addImage writes the layers, config and manifest of one image and records
// the manifest in the index under tag. It returns the manifest and config
// descriptors.
func (o *ociLayout) addImage(tag string, layers []*layer, config v1.ImageConfig) (manifest, cfg v1.Descriptor, err error) {
	img := v1.Image{
		Created:  &epoch,
		Author:   "berth-rig",
		Platform: v1.Platform{Architecture: goarch(), OS: "linux"},
		Config:   config,
		RootFS:   v1.RootFS{Type: "layers"},
	}
	m := v1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageManifest,
	}
	for _, l := range layers {
		b, err := l.build()
		if err != nil {
			return v1.Descriptor{}, v1.Descriptor{}, fmt.Errorf("build layer %q: %w", l.comment, err)
		}
		desc, err := o.writeBlob(v1.MediaTypeImageLayerGzip, b.blob)
		if err != nil {
			return v1.Descriptor{}, v1.Descriptor{}, err
		}
		m.Layers = append(m.Layers, desc)
		img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, b.diffID)
		img.History = append(img.History, v1.History{Created: &epoch, CreatedBy: l.comment})
	}
	configJSON, err := json.Marshal(img)
	if err != nil {
		return v1.Descriptor{}, v1.Descriptor{}, fmt.Errorf("encode image config: %w", err)
	}
	if m.Config, err = o.writeBlob(v1.MediaTypeImageConfig, configJSON); err != nil {
		return v1.Descriptor{}, v1.Descriptor{}, err
	}
	manifestJSON, err := json.Marshal(m)
	if err != nil {
		return v1.Descriptor{}, v1.Descriptor{}, fmt.Errorf("encode manifest: %w", err)
	}
	desc, err := o.writeBlob(v1.MediaTypeImageManifest, manifestJSON)
	if err != nil {
		return v1.Descriptor{}, v1.Descriptor{}, err
	}
	desc.Annotations = map[string]string{v1.AnnotationRefName: tag}
	o.manifests = append(o.manifests, desc)
	return desc, m.Config, nil
}

// finish writes index.json, tags sorted for determinism.
func (o *ociLayout) finish() error {
	slices.SortFunc(o.manifests, func(a, b v1.Descriptor) int {
		return strings.Compare(a.Annotations[v1.AnnotationRefName], b.Annotations[v1.AnnotationRefName])
	})
	idx := v1.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageIndex,
		Manifests: o.manifests,
	}
	data, err := json.Marshal(idx)
	if err != nil {
		return fmt.Errorf("encode index.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(o.dir, v1.ImageIndexFile), data, 0o644); err != nil {
		return fmt.Errorf("write index.json in %s: %w", o.dir, err)
	}
	return nil
}

// sha256File hashes a file, for the build cache key.
func sha256File(p string) (string, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(data)), nil
}
