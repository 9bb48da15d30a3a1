package storagetest

import (
	"context"
	"testing"

	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/oci/layout"
	"go.podman.io/image/v5/signature"
	istorage "go.podman.io/image/v5/storage"
	cstorage "go.podman.io/storage"
)

// Import copies a built image straight into store under name, without a
// registry.
func Import(t testing.TB, store cstorage.Store, b Built, name string) {
	t.Helper()
	src, err := layout.NewReference(b.Dir, b.Tag)
	if err != nil {
		t.Fatal(err)
	}
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		t.Fatal(err)
	}
	dest, err := istorage.Transport.NewStoreReference(store, reference.TagNameOnly(named), "")
	if err != nil {
		t.Fatal(err)
	}
	policy, err := signature.NewPolicyContext(&signature.Policy{Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = policy.Destroy() }()
	if _, err := copy.Image(context.Background(), policy, dest, src, &copy.Options{}); err != nil {
		t.Fatalf("import %s as %s: %v", b.Tag, name, err)
	}
}
