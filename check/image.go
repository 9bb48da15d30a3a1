package check

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"

	"github.com/berth-dev/berth/config"
)

// registriesConf checks that registries.conf parses and says where short
// names resolve. A missing file is legal (no search registries), so it
// only warns: `crictl pull busybox` will then fail.
func registriesConf(cfg *config.Config) Result {
	const name = "registries.conf"
	path := cfg.Image.RegistriesConf
	if path == "" {
		path = "/etc/containers/registries.conf"
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return warn(name, "`make install` lays down one that searches docker.io, or set image.registries_conf",
			"%s does not exist: short names such as busybox do not resolve", path)
	}
	sys := &types.SystemContext{SystemRegistriesConfPath: path, SystemRegistriesConfDirPath: path + ".d"}
	search, err := sysregistriesv2.UnqualifiedSearchRegistries(sys)
	if err != nil {
		return fail(name, fmt.Sprintf("correct %s (containers-registries.conf(5)), or set image.registries_conf", path), "%v", err)
	}
	if len(search) == 0 {
		return warn(name, fmt.Sprintf("add unqualified-search-registries = [\"docker.io\"] to %s", path),
			"%s has no unqualified-search-registries: short names such as busybox do not resolve", path)
	}
	return ok(name, "%s: short names resolve in %s", path, strings.Join(search, ", "))
}

// signaturePolicy checks that the policy every pull enforces exists and
// parses: without it, every pull fails.
func signaturePolicy(cfg *config.Config) Result {
	const name = "signature policy"
	path := cfg.Image.SignaturePolicy
	if path == "" {
		path = "/etc/containers/policy.json"
	}
	_, err := signature.NewPolicyFromFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fail(name, "`make install` lays down a policy.json that accepts any image, or set image.signature_policy",
			"%s does not exist: every image pull fails", path)
	case err != nil:
		return fail(name, fmt.Sprintf("correct %s (containers-policy.json(5)), or set image.signature_policy", path), "%v", err)
	}
	return ok(name, "%s parses", path)
}
