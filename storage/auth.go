package storage

import (
	"encoding/base64"
	"fmt"
	"strings"

	"go.podman.io/image/v5/types"

	"github.com/berth-dev/berth/errdefs"
)

// Credentials authenticate a pull, as the CRI AuthConfig carries them. The
// zero value means "use the auth file".
type Credentials struct {
	Username string
	Password string
	// Auth is base64("username:password"), as in a docker config.json; it
	// overrides Username and Password.
	Auth          string
	IdentityToken string
	RegistryToken string
}

// apply sets the credentials on sys. Without credentials sys keeps its
// AuthFilePath.
func (c Credentials) apply(sys *types.SystemContext) error {
	user, pass := c.Username, c.Password
	if c.Auth != "" {
		var err error
		if user, pass, err = decodeAuth(c.Auth); err != nil {
			return err
		}
	}
	if user != "" || c.IdentityToken != "" {
		sys.DockerAuthConfig = &types.DockerAuthConfig{Username: user, Password: pass, IdentityToken: c.IdentityToken}
	}
	if c.RegistryToken != "" {
		sys.DockerBearerRegistryToken = c.RegistryToken
	}
	return nil
}

// decodeAuth splits a base64 "user:password" auth string.
func decodeAuth(auth string) (user, pass string, _ error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(auth))
	if err != nil {
		return "", "", fmt.Errorf("auth.auth is not base64: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", fmt.Errorf("auth.auth is not base64 of user:password: %w", errdefs.ErrInvalidArgument)
	}
	return user, strings.Trim(pass, "\x00"), nil
}
