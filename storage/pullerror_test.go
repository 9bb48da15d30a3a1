package storage

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/distribution/registry/api/errcode"
	v2 "github.com/docker/distribution/registry/api/v2"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"

	"github.com/berth-dev/berth/errdefs"
)

func TestClassifyPullError(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &net.AddrError{Err: "x"}}
	for _, tc := range []struct {
		name string
		err  error
		want pullErrorKind
	}{
		{"manifest unknown", fmt.Errorf("reading manifest: %w", errcode.Error{Code: v2.ErrorCodeManifestUnknown}), kindNotFound},
		{"name unknown", fmt.Errorf("reading manifest: %w", v2.ErrorCodeNameUnknown.WithMessage("repository name not known to registry")), kindNotFound},
		{"http 404", docker.UnexpectedHTTPStatusError{StatusCode: 404}, kindNotFound},
		{"unauthorized", docker.ErrUnauthorizedForCredentials{Err: errors.New("bad password")}, kindDenied},
		{"denied", errcode.ErrorCodeDenied.WithMessage("requested access to the resource is denied"), kindDenied},
		{"connection refused", fmt.Errorf("pinging container registry: %w", syscall.ECONNREFUSED), kindUnavailable},
		{"dns failure", fmt.Errorf("pinging: %w", &net.DNSError{Err: "no such host", Name: "x.test", IsNotFound: true}), kindUnavailable},
		{"dial error", refused, kindUnavailable},
		{"too many requests", docker.ErrTooManyRequests, kindUnavailable},
		{
			"mirror unknown then primary unreachable",
			fmt.Errorf("(Mirrors also failed: [m/x:1: reading manifest 1 in m/x: manifest unknown]): p/x:1: %w", syscall.ECONNREFUSED),
			kindNotFound,
		},
		{"policy", fmt.Errorf("Source image rejected: %w", signature.PolicyRequirementError("Running image docker://x is rejected by policy.")), kindPolicy},
		{"stalled", fmt.Errorf("reading blob: %w", &noProgressError{timeout: time.Minute}), kindStalled},
		{"cancelled", fmt.Errorf("reading blob: %w", context.Canceled), kindCancelled},
		{"other", errors.New("disk full"), kindOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := classifyPullError(tc.err); got != tc.want {
				t.Fatalf("classifyPullError(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}

func TestPullErrorCombinesCandidates(t *testing.T) {
	named := func(s string) reference.Named {
		n, err := reference.ParseNormalizedNamed(s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	notFound := errcode.Error{Code: v2.ErrorCodeManifestUnknown}
	refused := fmt.Errorf("dial: %w", syscall.ECONNREFUSED)
	for _, tc := range []struct {
		name     string
		failures []candidateError
		want     error
		mention  []string
	}{
		{"one unreachable", []candidateError{{named("reg.test/x:1"), refused}}, errdefs.ErrUnavailable, []string{"registry reg.test unreachable"}},
		{"not found beats unreachable", []candidateError{{named("a.test/x:1"), refused}, {named("b.test/x:1"), notFound}}, errdefs.ErrNotFound, []string{"a.test/x:1", "b.test/x:1"}},
		{"stalled", []candidateError{{named("a.test/x:1"), &noProgressError{time.Second}}}, errdefs.ErrDeadlineExceeded, []string{"no progress for 1s"}},
		{"cancelled", []candidateError{{named("a.test/x:1"), context.Canceled}}, context.Canceled, nil},
		{"other", []candidateError{{named("a.test/x:1"), errors.New("disk full")}}, nil, []string{"disk full"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := pullError("x:1", tc.failures)
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("pullError = %v, want %v", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), `pull image "x:1"`) {
				t.Errorf("error %q does not name the reference", err)
			}
			for _, m := range tc.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

func TestCredentials(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name    string
		creds   Credentials
		want    *types.DockerAuthConfig
		bearer  string
		invalid bool
	}{
		{name: "none", creds: Credentials{}},
		{name: "username and password", creds: Credentials{Username: "u", Password: "p"}, want: &types.DockerAuthConfig{Username: "u", Password: "p"}},
		{name: "auth overrides", creds: Credentials{Username: "x", Auth: b64("u:p:with:colons")}, want: &types.DockerAuthConfig{Username: "u", Password: "p:with:colons"}},
		{name: "identity token", creds: Credentials{IdentityToken: "tok"}, want: &types.DockerAuthConfig{IdentityToken: "tok"}},
		{name: "registry token", creds: Credentials{RegistryToken: "bearer"}, bearer: "bearer"},
		{name: "auth not base64", creds: Credentials{Auth: "!!"}, invalid: true},
		{name: "auth without colon", creds: Credentials{Auth: b64("user")}, invalid: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys := &types.SystemContext{}
			err := tc.creds.apply(sys)
			if tc.invalid {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("apply = %v, want invalid argument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (sys.DockerAuthConfig == nil) != (tc.want == nil) || (tc.want != nil && *sys.DockerAuthConfig != *tc.want) {
				t.Errorf("auth config = %+v, want %+v", sys.DockerAuthConfig, tc.want)
			}
			if sys.DockerBearerRegistryToken != tc.bearer {
				t.Errorf("bearer token = %q, want %q", sys.DockerBearerRegistryToken, tc.bearer)
			}
		})
	}
}

func TestPullKeySeparatesCredentials(t *testing.T) {
	n, _ := reference.ParseNormalizedNamed("busybox")
	names := []reference.Named{reference.TagNameOnly(n)}
	anon, alice, bob := pullKey(names, Credentials{}), pullKey(names, Credentials{Username: "alice", Password: "a"}), pullKey(names, Credentials{Username: "bob", Password: "b"})
	if anon != "docker.io/library/busybox:latest" || alice == anon || alice == bob || strings.Contains(alice, "alice") {
		t.Fatalf("keys %q, %q, %q: want distinct, without secrets", anon, alice, bob)
	}
}
