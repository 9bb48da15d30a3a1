package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/signature"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"

	"github.com/berth-dev/berth/errdefs"
)

// PullResult is the image a pull stored.
type PullResult struct {
	// ImageID is the storage id of the image (its config digest, hex).
	ImageID string
	// RepoDigest is name@sha256:<manifest digest> of the reference pulled,
	// the value CRI-O answers PullImage with.
	RepoDigest string
	// Name is the fully qualified reference that was pulled (for a short
	// name, the candidate that worked).
	Name string
}

// PullImage pulls ref (docker:// optional; short names resolved through
// registries.conf) into storage. Concurrent pulls of the same resolved
// reference with the same credentials share one download.
func (s *ImageService) PullImage(ctx context.Context, ref string, creds Credentials) (PullResult, error) {
	sys := s.systemContext()
	if err := creds.apply(sys); err != nil {
		return PullResult{}, fmt.Errorf("pull image %q: %w", ref, err)
	}
	candidates, err := pullCandidates(sys, ref)
	if err != nil {
		return PullResult{}, fmt.Errorf("pull image: %w", err)
	}
	key := pullKey(candidates, creds)
	res, joined, err := s.pulls.do(ctx, key, func(ctx context.Context) (PullResult, error) {
		return s.pull(ctx, ref, candidates, sys)
	})
	if joined {
		s.log.Debug("joined pull in progress", "image", ref)
	}
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Cause(ctx)) {
		// This caller gave up; the shared pull's own errors name the image.
		return PullResult{}, fmt.Errorf("pull image %q: %w", ref, err)
	}
	return res, err
}

// pullKey identifies a pull for deduplication: the candidates it tries and
// the credentials it uses (hashed), so that a caller never shares a pull
// made with someone else's credentials.
func pullKey(candidates []reference.Named, creds Credentials) string {
	names := make([]string, len(candidates))
	for i, c := range candidates {
		names[i] = c.String()
	}
	key := strings.Join(names, ",")
	if creds != (Credentials{}) {
		sum := sha256.Sum256([]byte(creds.Username + "\x00" + creds.Password + "\x00" + creds.Auth + "\x00" + creds.IdentityToken + "\x00" + creds.RegistryToken))
		key += "|" + hex.EncodeToString(sum[:])
	}
	return key
}

// pull is the shared pull: it tries each candidate in order until one
// succeeds. Layers a failed pull left in storage are removed.
func (s *ImageService) pull(ctx context.Context, ref string, candidates []reference.Named, sys *types.SystemContext) (res PullResult, err error) {
	start := time.Now()
	s.log.Info("pull started", "image", ref, "candidates", len(candidates))
	s.sweep.begin()
	defer func() { s.sweep.end(err != nil) }()

	policy, err := s.policyContext()
	if err != nil {
		return PullResult{}, fmt.Errorf("pull image %q: %w", ref, err)
	}
	defer func() { _ = policy.Destroy() }()

	var failures []candidateError
	for _, name := range candidates {
		res, err := s.pullCandidate(ctx, policy, sys, name)
		if err == nil {
			size, _ := s.store.ImageSize(res.ImageID)
			s.log.Info("pull finished", "image", ref, "name", res.Name, "id", res.ImageID,
				"size", size, "duration", time.Since(start).Round(time.Millisecond))
			s.observePull(size, time.Since(start), nil)
			return res, nil
		}
		failures = append(failures, candidateError{name: name, err: err})
		if ctx.Err() != nil {
			break
		}
	}
	err = pullError(ref, failures)
	s.log.Info("pull failed", "image", ref, "duration", time.Since(start).Round(time.Millisecond),
		"reason", failureReason(err))
	s.observePull(0, time.Since(start), err)
	return PullResult{}, err
}

// PullObserver is told of every pull that ran (a pull shared by concurrent
// callers once): the size in storage of the image it stored (0 when it
// failed), how long it took and its error. It must not block. The daemon's
// metrics pass one in Options.
type PullObserver func(bytes int64, d time.Duration, err error)

func (s *ImageService) observePull(bytes int64, d time.Duration, err error) {
	if s.opts.PullObserver != nil {
		s.opts.PullObserver(bytes, d, err)
	}
}

// failureReason is the short category of a pull error, for the log.
func failureReason(err error) string {
	for _, e := range []error{errdefs.ErrNotFound, errdefs.ErrUnavailable, errdefs.ErrPermissionDenied,
		errdefs.ErrDeadlineExceeded, context.Canceled, errCallersGone} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "error"
}

// pullCandidate copies one fully qualified reference into storage.
func (s *ImageService) pullCandidate(ctx context.Context, policy *signature.PolicyContext, sys *types.SystemContext, name reference.Named) (PullResult, error) {
	src, err := docker.NewReference(name)
	if err != nil {
		return PullResult{}, fmt.Errorf("source reference %s: %w", name, err)
	}
	dest, err := istorage.Transport.NewStoreReference(s.store, name, "")
	if err != nil {
		return PullResult{}, fmt.Errorf("storage reference %s: %w", name, err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	events := make(chan types.ProgressProperties)
	watcher := &progressWatcher{log: s.log, image: name.String(), timeout: s.opts.PullProgressTimeout, cancel: cancel}
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		watcher.watch(events)
	}()
	var resolved types.ImageReference
	manifestBytes, err := copy.Image(ctx, policy, dest, src, &copy.Options{
		SourceCtx:               sys,
		DestinationCtx:          destinationContext(),
		ProgressInterval:        reportInterval(s.opts.PullProgressTimeout),
		Progress:                events,
		ReportResolvedReference: &resolved,
	})
	close(events)
	<-watched
	if err != nil {
		var stalled *noProgressError
		if cause := context.Cause(ctx); errors.As(cause, &stalled) && !errors.As(err, &stalled) {
			return PullResult{}, fmt.Errorf("%w: %v", cause, err)
		}
		return PullResult{}, err
	}
	return s.pulled(name, manifestBytes, resolved)
}

// pulled describes the image a successful copy stored.
func (s *ImageService) pulled(name reference.Named, manifestBytes []byte, resolved types.ImageReference) (PullResult, error) {
	if resolved == nil {
		return PullResult{}, fmt.Errorf("pull %s: storage reported no image", name)
	}
	_, img, err := istorage.ResolveReference(resolved)
	if err != nil {
		return PullResult{}, fmt.Errorf("pull %s: find stored image: %w", name, err)
	}
	dgst, err := manifest.Digest(manifestBytes)
	if err != nil {
		return PullResult{}, fmt.Errorf("pull %s: manifest digest: %w", name, err)
	}
	rd, err := repoDigest(name, dgst)
	if err != nil {
		return PullResult{}, fmt.Errorf("pull %s: %w", name, err)
	}
	return PullResult{ImageID: img.ID, RepoDigest: rd, Name: name.String()}, nil
}

// policyContext loads the signature policy for one pull, so that edits to
// the file apply to the next pull.
func (s *ImageService) policyContext() (*signature.PolicyContext, error) {
	path := s.live.Load().SignaturePolicy
	var (
		policy *signature.Policy
		err    error
	)
	if path != "" {
		policy, err = signature.NewPolicyFromFile(path)
	} else {
		path = "the default policy.json"
		policy, err = signature.DefaultPolicy(nil)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("signature policy %s does not exist: %w", path, errdefs.ErrFailedPrecondition)
	}
	if err != nil {
		return nil, fmt.Errorf("load signature policy %s: %v: %w", path, err, errdefs.ErrFailedPrecondition)
	}
	pc, err := signature.NewPolicyContext(policy)
	if err != nil {
		return nil, fmt.Errorf("signature policy %s: %w", path, err)
	}
	return pc, nil
}
