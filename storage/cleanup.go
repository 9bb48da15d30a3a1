package storage

import (
	"log/slog"
	"sync"

	cstorage "go.podman.io/storage"
)

// layerSweeper removes the layers failed pulls leave behind. c/image commits
// each layer to storage as soon as it and its parents are downloaded, long
// before the image record exists, and does not remove them when the pull
// fails; containers/storage then keeps them as layers no image uses.
//
// Which layers a pull created is not reported, so the sweeper works by
// difference: it notes the layers present when the first of a group of
// overlapping pulls begins, and when the last one ends, if any failed,
// deletes the pulled layers that appeared since and that no image or
// container uses. Waiting for the last pull matters: a running pull's
// committed layers are not referenced by any image yet either.
type layerSweeper struct {
	store cstorage.Store
	log   *slog.Logger

	mu       sync.Mutex
	active   int
	baseline map[string]bool // nil: listing failed, do not sweep
	failed   bool
}

// begin registers a pull.
func (w *layerSweeper) begin() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.active == 0 {
		w.baseline = nil
		if layers, err := w.store.Layers(); err == nil {
			w.baseline = make(map[string]bool, len(layers))
			for _, l := range layers {
				w.baseline[l.ID] = true
			}
		}
	}
	w.active++
}

// end unregisters a pull and sweeps if it was the last and any failed. The
// sweep runs under the lock so that no pull starts during it.
func (w *layerSweeper) end(failed bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.active--
	w.failed = w.failed || failed
	if w.active > 0 || !w.failed {
		return
	}
	w.failed = false
	if w.baseline != nil {
		w.removeLeftovers()
	}
	w.baseline = nil
}

// removeLeftovers deletes new pulled layers that nothing uses, children
// first. containers/storage itself refuses to delete a layer that is an
// image's top layer, a container's layer or another layer's parent.
func (w *layerSweeper) removeLeftovers() {
	layers, err := w.store.Layers()
	if err != nil {
		w.log.Warn("list layers to clean up after failed pull", "error", err)
		return
	}
	used, err := w.usedLayers(layers)
	if err != nil {
		w.log.Warn("list layers in use to clean up after failed pull", "error", err)
		return
	}
	children := map[string]int{}
	candidates := map[string]cstorage.Layer{}
	for _, l := range layers {
		if l.Parent != "" {
			children[l.Parent]++
		}
		if !w.baseline[l.ID] && !used[l.ID] && isPulledLayer(l) {
			candidates[l.ID] = l
		}
	}
	removed := 0
	for progress := true; progress; {
		progress = false
		for id, l := range candidates {
			if children[id] > 0 {
				continue
			}
			delete(candidates, id)
			if err := w.store.DeleteLayer(id); err != nil {
				w.log.Debug("keep layer after failed pull", "layer", id, "error", err)
				continue
			}
			removed++
			progress = true
			if l.Parent != "" {
				children[l.Parent]--
			}
		}
	}
	if removed > 0 {
		w.log.Info("removed layers left by failed pull", "layers", removed)
	}
}

// usedLayers is every layer an image or container stands on.
func (w *layerSweeper) usedLayers(layers []cstorage.Layer) (map[string]bool, error) {
	parent := make(map[string]string, len(layers))
	for _, l := range layers {
		parent[l.ID] = l.Parent
	}
	used := map[string]bool{}
	mark := func(id string) {
		for id != "" && !used[id] {
			used[id] = true
			id = parent[id]
		}
	}
	images, err := w.store.Images()
	if err != nil {
		return nil, err
	}
	for _, img := range images {
		mark(img.TopLayer)
		for _, m := range img.MappedTopLayers {
			mark(m)
		}
	}
	containers, err := w.store.Containers()
	if err != nil {
		return nil, err
	}
	for _, c := range containers {
		mark(c.LayerID)
	}
	return used, nil
}

// isPulledLayer tells image layers (which carry the digests of the blob they
// came from, or are still marked incomplete) from container layers, so that a
// container layer created between two listings is never a candidate.
func isPulledLayer(l cstorage.Layer) bool {
	return l.UncompressedDigest != "" || l.CompressedDigest != "" || l.TOCDigest != "" || l.Flags["incomplete"] != nil
}
