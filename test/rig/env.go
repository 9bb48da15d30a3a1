package rig

import (
	"context"
	"os"
	"path/filepath"
	"time"
)

// DefaultImageDir is where images are built unless a caller has a reason to
// keep its own: $BERTH_RIG_IMAGES, else /tmp/berth-rig/images (what
// `berth-rig serve` uses by default). Sharing it lets every test binary and
// every run reuse one build; BuildImages locks it against concurrent use.
func DefaultImageDir() string {
	if d := os.Getenv("BERTH_RIG_IMAGES"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "berth-rig", "images")
}

// Env is a ready image source: the images, a registry serving them and the
// files that point containers/image (and so berth) at that registry.
type Env struct {
	Images         []Image
	Registry       *Registry
	RegistriesConf string // <dir>/registries.conf
	Policy         string // <dir>/policy.json
	BuildTime      time.Duration
	PushTime       time.Duration
}

// Setup is what an integration test's TestMain needs before starting berth:
// it builds the images into imageDir (reusing an earlier build), starts a
// registry under dir/registry, pushes every image and writes
// dir/registries.conf and dir/policy.json. Give each test binary its own dir:
// registries.conf names this registry's port.
func Setup(ctx context.Context, imageDir, dir string, opts RegistryOptions) (*Env, error) {
	env := &Env{
		RegistriesConf: filepath.Join(dir, "registries.conf"),
		Policy:         filepath.Join(dir, "policy.json"),
	}
	start := time.Now()
	images, err := BuildImages(ctx, imageDir)
	if err != nil {
		return nil, err
	}
	env.Images, env.BuildTime = images, time.Since(start)

	reg, err := StartRegistryWith(ctx, filepath.Join(dir, "registry"), opts)
	if err != nil {
		return nil, err
	}
	start = time.Now()
	if err := reg.PushAll(ctx, images); err != nil {
		_ = reg.Stop()
		return nil, err
	}
	env.Registry, env.PushTime = reg, time.Since(start)
	if err := WriteRegistriesConf(env.RegistriesConf, reg.Addr); err != nil {
		_ = reg.Stop()
		return nil, err
	}
	if err := WritePolicy(env.Policy); err != nil {
		_ = reg.Stop()
		return nil, err
	}
	return env, nil
}

// BerthArgs are the daemon flags that make berth pull from this Env.
func (e *Env) BerthArgs() []string {
	return []string{"--registries-conf", e.RegistriesConf, "--signature-policy", e.Policy}
}

// Stop stops the registry.
func (e *Env) Stop() error { return e.Registry.Stop() }
