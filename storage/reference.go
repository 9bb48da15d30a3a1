package storage

import (
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/shortnames"
	"go.podman.io/image/v5/types"

	"github.com/berth-dev/berth/errdefs"
)

const (
	dockerTransportPrefix = "docker://"
	// minIDPrefix is the shortest id prefix accepted, as in CRI-O.
	minIDPrefix = 3
)

// trimTransport strips the optional docker:// transport prefix.
func trimTransport(ref string) string {
	return strings.TrimPrefix(ref, dockerTransportPrefix)
}

// parseName parses an image name (with or without tag, digest, registry or
// docker:// prefix) and normalises it: busybox is
// docker.io/library/busybox:latest.
func parseName(ref string) (reference.Named, error) {
	name := trimTransport(ref)
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return nil, fmt.Errorf("invalid image reference %q: %v: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	return reference.TagNameOnly(named), nil
}

// pullCandidates lists the fully qualified references a pull of ref tries, in
// order: ref itself if qualified, else its short-name alias or each
// unqualified-search registry of registries.conf.
func pullCandidates(sys *types.SystemContext, ref string) ([]reference.Named, error) {
	if _, err := parseName(ref); err != nil {
		return nil, err
	}
	resolved, err := shortnames.Resolve(sys, trimTransport(ref))
	if err != nil {
		return nil, fmt.Errorf("resolve image name %q: %v: %w", ref, err, errdefs.ErrNotFound)
	}
	out := make([]reference.Named, 0, len(resolved.PullCandidates))
	for _, c := range resolved.PullCandidates {
		out = append(out, reference.TagNameOnly(c.Value))
	}
	return out, nil
}

// localCandidates lists the names a local lookup of ref tries: for a short
// name its alias, localhost/ and the unqualified-search registries, then the
// docker.io normalisation; a qualified name stands for itself.
func localCandidates(sys *types.SystemContext, ref string) ([]reference.Named, error) {
	named, err := parseName(ref)
	if err != nil {
		return nil, err
	}
	var out []reference.Named
	if found, err := shortnames.ResolveLocally(sys, trimTransport(ref)); err == nil {
		out = append(out, found...)
	}
	for _, c := range out {
		if c.String() == named.String() {
			return out, nil
		}
	}
	return append(out, named), nil
}

// idPrefix reports whether ref can be an image id or id prefix: at least
// minIDPrefix lowercase hex digits, optionally after "sha256:".
func idPrefix(ref string) (string, bool) {
	id := strings.TrimPrefix(ref, "sha256:")
	if len(id) < minIDPrefix || len(id) > 64 {
		return "", false
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", false
		}
	}
	return id, true
}

// repoDigest is name@digest for the repository of a tagged or digested name.
func repoDigest(name reference.Named, dgst digest.Digest) (string, error) {
	d, err := reference.WithDigest(reference.TrimNamed(name), dgst)
	if err != nil {
		return "", err
	}
	return d.String(), nil
}

// splitNames sorts an image's stored names into repo tags
// (docker.io/library/busybox:latest) and repo digests
// (docker.io/library/busybox@sha256:...).
func splitNames(names []string) (tags, digests []string) {
	for _, n := range names {
		named, err := reference.ParseNormalizedNamed(n)
		if err != nil {
			continue
		}
		if _, ok := named.(reference.Digested); ok {
			digests = append(digests, named.String())
			continue
		}
		tags = append(tags, reference.TagNameOnly(named).String())
	}
	return tags, digests
}
