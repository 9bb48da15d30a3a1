package rig

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// MirroredRegistries are the registries whose images the rig serves; each
// is mirrored at "<addr>/<host>" by WriteRegistriesConf.
var MirroredRegistries = []string{"registry.k8s.io", "k8s.gcr.io", "docker.io", "gcr.io", "quay.io"}

// WriteRegistriesConf writes a containers-registries.conf (v2) that sends
// pulls of the real registries to the rig's registry at registryAddr: each
// real host gets a mirror at "<registryAddr>/<host>", matching where Push
// puts images, and both the mirrors and registryAddr itself are reachable
// over plain HTTP. The primary location of each host is rewritten to the rig
// as well: when the mirror lacks an image, c/image falls back to the primary,
// and that fallback must not send DNS lookups or connections off the machine.
// Short names resolve to docker.io, permissively, so
// "busybox" works as it does for kubelet users.
func WriteRegistriesConf(path, registryAddr string) error {
	var b strings.Builder
	b.WriteString("# Written by berth's test rig: real registries are mirrored by a local one.\n")
	b.WriteString(`unqualified-search-registries = ["docker.io"]` + "\n")
	b.WriteString(`short-name-mode = "permissive"` + "\n")
	for _, host := range MirroredRegistries {
		fmt.Fprintf(&b, "\n[[registry]]\nprefix = %q\nlocation = %q\ninsecure = true\n", host, registryAddr+"/"+host)
		fmt.Fprintf(&b, "\n[[registry.mirror]]\nlocation = %q\ninsecure = true\n", registryAddr+"/"+host)
	}
	fmt.Fprintf(&b, "\n[[registry]]\nlocation = %q\ninsecure = true\n", registryAddr)
	return writeConfig(path, b.String())
}

// policyJSON accepts every image: the rig's images are unsigned.
const policyJSON = `{
  "default": [{"type": "insecureAcceptAnything"}],
  "transports": {
    "docker-daemon": {"": [{"type": "insecureAcceptAnything"}]}
  }
}
`

// WritePolicy writes a containers-policy.json that accepts any image.
func WritePolicy(path string) error {
	return writeConfig(path, policyJSON)
}

func writeConfig(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create directory for %s: %w", path, err)
	}
	return writeFileAtomic(path, []byte(content))
}
