package storage

import (
	"go.podman.io/image/v5/types"
)

// noBlobInfoCacheDir is a BlobInfoCacheDir that can never be created: a
// directory under /dev/null.
const noBlobInfoCacheDir = "/dev/null/berth-memory-blob-info-cache"

// destinationContext is the c/image context of the storage side of a pull.
//
// c/image keeps a blob info cache (which compressed blob is which
// uncompressed layer, where blobs were seen) and by default, for root, in
// /var/lib/containers/cache/blob-info-cache-v1.sqlite, opened on every copy
// and written with an fsync'ed SQLite transaction per blob: about a third of
// a small pull's time here. Its directory is taken from the destination
// context, and when that directory cannot be created c/image falls back to a
// cache in memory for the copy (blobinfocache.DefaultCache). Berth needs
// none of what the file remembers between pulls: a layer already in storage
// is found by its compressed and uncompressed digests in containers/storage
// itself, and a registry's blobs are fetched from the registry the manifest
// came from. TestDestinationContextUsesMemoryCache guards the fallback.
func destinationContext() *types.SystemContext {
	return &types.SystemContext{BlobInfoCacheDir: noBlobInfoCacheDir}
}
