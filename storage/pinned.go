package storage

import (
	"slices"
	"strings"
)

// pinned reports whether an image is pinned: it is the pause image, or its
// id or one of its names matches a PinnedImages pattern.
func (s *ImageService) pinned(id string, tags, digests []string) bool {
	names := append(append([]string{id}, tags...), digests...)
	patterns := s.live.Load().PinnedImages
	if s.opts.PauseImage != "" {
		patterns = append(slices.Clone(patterns), s.opts.PauseImage)
	}
	return matchPinned(patterns, names)
}

// matchPinned reports whether any name matches any pattern. A pattern is an
// exact image name, normalised like a reference (busybox is
// docker.io/library/busybox:latest), a prefix ending in "*"
// (registry.k8s.io/pause*), or a keyword between two "*" (*pause*).
func matchPinned(patterns, names []string) bool {
	for _, p := range patterns {
		for _, n := range names {
			if pinnedMatch(p, n) {
				return true
			}
		}
	}
	return false
}

func pinnedMatch(pattern, name string) bool {
	switch {
	case pattern == "":
		return false
	case pattern == "*":
		return true
	case len(pattern) > 2 && strings.HasPrefix(pattern, "*") && strings.HasSuffix(pattern, "*"):
		return strings.Contains(name, pattern[1:len(pattern)-1])
	case strings.HasSuffix(pattern, "*"):
		return strings.HasPrefix(name, strings.TrimSuffix(pattern, "*"))
	}
	if pattern == name {
		return true
	}
	normal, err := parseName(pattern)
	return err == nil && normal.String() == name
}
