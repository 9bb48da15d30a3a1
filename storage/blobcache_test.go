package storage

import (
	"fmt"
	"strings"
	"testing"

	"go.podman.io/image/v5/pkg/blobinfocache"
)

// A pull's blob info cache is c/image's memory cache, not the SQLite file
// under /var/lib/containers/cache (an fsync per blob).
func TestDestinationContextUsesMemoryCache(t *testing.T) {
	cache := blobinfocache.DefaultCache(destinationContext())
	if typ := fmt.Sprintf("%T", cache); !strings.Contains(typ, "memory") {
		t.Fatalf("blob info cache of a pull is %s, want c/image's memory cache", typ)
	}
}
