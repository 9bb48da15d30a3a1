package storage

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/types"

	"github.com/berth-dev/berth/errdefs"
)

const (
	// progressInterval is how often c/image reports bytes read per blob.
	progressInterval = time.Second
	// progressLogInterval is how often a blob's progress is logged.
	progressLogInterval = time.Second
)

// noProgressError is the cancel cause of a pull that stalled.
type noProgressError struct{ timeout time.Duration }

func (e *noProgressError) Error() string {
	return fmt.Sprintf("no progress for %s", e.timeout)
}

func (e *noProgressError) Unwrap() error { return errdefs.ErrDeadlineExceeded }

// reportInterval is the c/image progress interval for a pull-progress
// timeout: often enough that a pull making progress always reports some
// within the timeout.
func reportInterval(timeout time.Duration) time.Duration {
	if timeout > 0 && timeout/10 < progressInterval {
		return max(timeout/10, time.Millisecond)
	}
	return progressInterval
}

// progressWatcher logs a pull's progress and cancels it when nothing
// happened for timeout (0 disables that).
type progressWatcher struct {
	log     *slog.Logger
	image   string
	timeout time.Duration
	cancel  context.CancelCauseFunc
	logged  map[digest.Digest]time.Time
}

// watch consumes events until the channel closes. The timer runs from the
// start, so a pull stuck before its first blob (manifest, auth) counts too.
func (w *progressWatcher) watch(events <-chan types.ProgressProperties) {
	var timer *time.Timer
	if w.timeout > 0 {
		timer = time.AfterFunc(w.timeout, func() {
			w.cancel(&noProgressError{timeout: w.timeout})
		})
		defer timer.Stop()
	}
	w.logged = map[digest.Digest]time.Time{}
	for ev := range events {
		if timer != nil {
			timer.Reset(w.timeout)
		}
		w.report(ev)
	}
}

func (w *progressWatcher) report(ev types.ProgressProperties) {
	blob := ev.Artifact
	kind := "layer"
	if isConfigMediaType(blob.MediaType) {
		kind = "config"
	}
	switch ev.Event {
	case types.ProgressEventNewArtifact:
		if kind == "layer" {
			w.log.Info("pulling layer", "image", w.image, "digest", blob.Digest, "size", blob.Size)
		} else {
			w.log.Debug("pulling config", "image", w.image, "digest", blob.Digest)
		}
	case types.ProgressEventRead:
		if time.Since(w.logged[blob.Digest]) < progressLogInterval {
			return
		}
		w.logged[blob.Digest] = time.Now()
		w.log.Info("pull progress", "image", w.image, kind, blob.Digest, "bytes", ev.Offset, "total", blob.Size)
	case types.ProgressEventDone:
		w.log.Debug("pulled "+kind, "image", w.image, "digest", blob.Digest, "bytes", ev.Offset)
	case types.ProgressEventSkipped:
		w.log.Debug(kind+" already present", "image", w.image, "digest", blob.Digest)
	}
}

func isConfigMediaType(mt string) bool {
	return strings.Contains(mt, "config") || strings.Contains(mt, "container.image.v1+json")
}
