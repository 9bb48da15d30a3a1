package rig

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Manifest reads the image's manifest from its layout.
func (i Image) Manifest() (v1.Manifest, error) {
	var m v1.Manifest
	d, err := digest.Parse(i.Digest)
	if err != nil {
		return m, fmt.Errorf("parse manifest digest of %s: %w", i.Ref, err)
	}
	if err := readBlobJSON(i.Layout, d, &m); err != nil {
		return m, fmt.Errorf("read manifest of %s: %w", i.Ref, err)
	}
	return m, nil
}

// Config reads the image's config (user, entrypoint, env, diff IDs...) from
// its layout.
func (i Image) Config() (v1.Image, error) {
	var c v1.Image
	m, err := i.Manifest()
	if err != nil {
		return c, err
	}
	if err := readBlobJSON(i.Layout, m.Config.Digest, &c); err != nil {
		return c, fmt.Errorf("read config of %s: %w", i.Ref, err)
	}
	return c, nil
}

func readBlobJSON(layout string, d digest.Digest, v any) error {
	data, err := os.ReadFile(blobPath(layout, d))
	if err != nil {
		return err
	}
	if got := digest.FromBytes(data); got != d {
		return fmt.Errorf("blob %s has digest %s", d, got)
	}
	return json.Unmarshal(data, v)
}

func blobPath(layout string, d digest.Digest) string {
	return filepath.Join(layout, v1.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
}

// Unpack extracts the image's layers, in order, into dst, keeping owners,
// modes and hard links; it is how tests run an image's programs under chroot
// without a runtime. The rig's layers hold no whiteouts, so none are
// handled.
func (i Image) Unpack(dst string) error {
	m, err := i.Manifest()
	if err != nil {
		return err
	}
	for _, l := range m.Layers {
		if err := unpackLayer(blobPath(i.Layout, l.Digest), dst); err != nil {
			return fmt.Errorf("unpack layer %s of %s: %w", l.Digest, i.Ref, err)
		}
	}
	return nil
}

func unpackLayer(blob, dst string) error {
	f, err := os.Open(blob)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		target, err := safeJoin(dst, hdr.Name)
		if err != nil {
			return err
		}
		// Later layers replace earlier files (nonroot's /etc/passwd).
		if hdr.Typeflag != tar.TypeDir {
			if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeLink:
			old, err := safeJoin(dst, hdr.Linkname)
			if err != nil {
				return err
			}
			if err := os.Link(old, target); err != nil {
				return err
			}
			continue // a hard link shares its target's owner and mode
		case tar.TypeSymlink:
			if err := os.Symlink(hdr.Linkname, target); err != nil {
				return err
			}
			continue
		default:
			return fmt.Errorf("unsupported entry type %q for %s", hdr.Typeflag, hdr.Name)
		}
		// Owners need root; unprivileged callers get their own.
		if err := os.Lchown(target, hdr.Uid, hdr.Gid); err != nil && os.Geteuid() == 0 {
			return err
		}
		// After chown, which clears setuid bits.
		if err := os.Chmod(target, os.FileMode(hdr.Mode).Perm()|modeBits(hdr.Mode)); err != nil {
			return err
		}
	}
}

// safeJoin joins a layer path to dst, refusing paths that leave dst.
func safeJoin(dst, name string) (string, error) {
	clean := filepath.Clean(name)
	if clean == "." || filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("unsafe path %q in layer", name)
	}
	return filepath.Join(dst, clean), nil
}

// modeBits converts tar's setuid/setgid/sticky bits to os.FileMode's.
func modeBits(m int64) os.FileMode {
	var b os.FileMode
	if m&0o4000 != 0 {
		b |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		b |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		b |= os.ModeSticky
	}
	return b
}
