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
	stypes "go.podman.io/storage/types"
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

// ImportAt is Import into the store that a storage service of this process
// opened at root and runRoot, for tests outside the storage package:
// containers/storage hands every opener of one root the same instance, so
// the service sees the image at once.
func ImportAt(t testing.TB, root, runRoot string, b Built, name string) {
	t.Helper()
	store, err := cstorage.GetStore(stypes.StoreOptions{GraphRoot: root, RunRoot: runRoot})
	if err != nil {
		t.Fatal(err)
	}
	Import(t, store, b, name)
}
