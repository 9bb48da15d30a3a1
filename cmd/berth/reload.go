package main

import (
	"log/slog"
	"strings"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/oci"
	"github.com/berth-dev/berth/server"
	"github.com/berth-dev/berth/storage"
)

// reloader applies a re-read configuration on SIGHUP: what can change
// safely while containers run is applied, everything else is named in the
// log as needing a restart.
type reloader struct {
	load    func() (*config.Config, error)
	current *config.Config
	level   *slog.LevelVar
	images  *storage.ImageService
	srv     *server.Server
	newRT   func(name string, h config.RuntimeHandler) (*oci.Runtime, error)
	log     *slog.Logger
}

// reloadable reports whether a changed key is applied by reload.
func reloadable(key string) bool {
	switch key {
	case "log.level", "image.pinned_images", "image.registries_conf", "image.signature_policy", "image.auth_file":
		return true
	}
	return false
}

func (r *reloader) reload() {
	next, err := r.load()
	if err != nil {
		r.log.Error("reload: the new configuration is invalid; keeping the running one", "error", err)
		return
	}
	changed := config.Diff(r.current, next)
	if len(changed) == 0 {
		r.log.Info("reload: configuration unchanged")
		return
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(next.Log.Level)); err == nil {
		r.level.Set(level)
	}
	r.images.Reload(storage.Reloadable{
		RegistriesConf:  next.Image.RegistriesConf,
		SignaturePolicy: next.Image.SignaturePolicy,
		AuthFile:        next.Image.AuthFile,
		PinnedImages:    next.Image.PinnedImages,
	})
	var applied, restart []string
	for _, key := range changed {
		switch {
		case reloadable(key):
			applied = append(applied, key)
		case strings.HasPrefix(key, "runtime.handlers."):
			name := strings.TrimPrefix(key, "runtime.handlers.")
			h, added := next.Runtime.Handlers[name]
			if _, existed := r.current.Runtime.Handlers[name]; existed || !added {
				restart = append(restart, key) // changing or removing one would pull it from under running pods
				continue
			}
			rt, err := r.newRT(name, h)
			if err != nil {
				r.log.Error("reload: runtime handler not added", "handler", name, "error", err)
				continue
			}
			r.srv.AddRuntime(name, rt)
			applied = append(applied, key)
		default:
			restart = append(restart, key)
		}
	}
	// Keys applied now are the running configuration from here on; the
	// others keep their running value until a restart.
	for _, key := range applied {
		applyKey(r.current, next, key)
	}
	if len(applied) > 0 {
		r.log.Info("reload: applied", "keys", strings.Join(applied, ", "), "logLevel", r.level.Level())
	}
	if len(restart) > 0 {
		r.log.Warn("reload: these changes need a restart of berth to take effect", "keys", strings.Join(restart, ", "))
	}
}

// applyKey copies one reloaded key from next into cur.
func applyKey(cur, next *config.Config, key string) {
	switch key {
	case "log.level":
		cur.Log.Level = next.Log.Level
	case "image.pinned_images":
		cur.Image.PinnedImages = next.Image.PinnedImages
	case "image.registries_conf":
		cur.Image.RegistriesConf = next.Image.RegistriesConf
	case "image.signature_policy":
		cur.Image.SignaturePolicy = next.Image.SignaturePolicy
	case "image.auth_file":
		cur.Image.AuthFile = next.Image.AuthFile
	default:
		if name, ok := strings.CutPrefix(key, "runtime.handlers."); ok {
			cur.Runtime.Handlers[name] = next.Runtime.Handlers[name]
		}
	}
}
