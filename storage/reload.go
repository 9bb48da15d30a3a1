package storage

import (
	"go.podman.io/image/v5/pkg/sysregistriesv2"
)

// Reloadable are the image settings a running daemon can change on SIGHUP:
// each pull reads them afresh.
type Reloadable struct {
	RegistriesConf  string
	SignaturePolicy string
	AuthFile        string
	PinnedImages    []string
}

func (o Options) reloadable() *Reloadable {
	return &Reloadable{
		RegistriesConf:  o.RegistriesConf,
		SignaturePolicy: o.SignaturePolicy,
		AuthFile:        o.AuthFile,
		PinnedImages:    o.PinnedImages,
	}
}

// Reload applies new reloadable settings. containers/image caches parsed
// registries.conf files by path, so the cache is dropped: an edited file at
// the same path must take effect too.
func (s *ImageService) Reload(r Reloadable) {
	s.live.Store(&r)
	sysregistriesv2.InvalidateCache()
}
