// Package network attaches pods to the default CNI network through libcni.
//
// The default network is the first valid config in the conf dir in lexical
// order (*.conflist, *.conf, *.json; a single-plugin .conf is wrapped into
// a list), as in CRI-O's ocicni. The dir is polled, so a conflist dropped in
// later makes the network ready without a restart; Status names the broken
// files when none is usable. Setup and Teardown follow the CNI contract:
// the netns exists before any plugin runs, libcni runs the list's plugins
// in order on ADD and in reverse on DEL, DEL is idempotent and also runs
// after a failed ADD, results are cached (CacheDir) so DEL gets prevResult,
// calls for one pod are serialized and different pods run in parallel.
package network

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/keylock"
)

// Defaults used when Options leaves a field empty.
var (
	DefaultConfDir    = "/etc/cni/net.d"
	DefaultPluginDirs = []string{"/opt/cni/bin", "/usr/lib/cni"}
)

const (
	defaultPollInterval = time.Second
	// ifName is the pod's interface on the default network.
	ifName = "eth0"
	// cleanupTimeout bounds a DEL that runs after its caller's context
	// ended (cleanup of a failed ADD).
	cleanupTimeout = time.Minute
)

// Options configures a Manager.
type Options struct {
	// ConfDir holds the network configs; DefaultConfDir if empty.
	ConfDir string
	// PluginDirs are searched for plugin binaries; DefaultPluginDirs if empty.
	PluginDirs []string
	// CacheDir is libcni's cache of ADD results and configs (under Berth's
	// state dir, so DEL and GC find them after a restart). Required.
	CacheDir string
	// Logger gets one info line per state change; slog.Default() if nil.
	Logger *slog.Logger
	// PollInterval is how often ConfDir is checked for changes; 1s if 0.
	PollInterval time.Duration
}

// Manager owns Berth's use of CNI.
type Manager struct {
	opts Options
	log  *slog.Logger
	cni  *libcni.CNIConfig

	// mu guards the loaded default network and the status.
	mu          sync.RWMutex
	net         *libcni.NetworkConfigList
	netFile     string
	statusErr   error
	fingerprint string

	// reloadMu serializes reloads of the conf dir.
	reloadMu sync.Mutex
	// gcMu: pod calls hold it shared, GC exclusively, so GC never races
	// with an ADD it does not know about.
	gcMu  sync.RWMutex
	locks *keylock.Locks // one pod's Setup and Teardown at a time

	startOnce sync.Once
}

// New makes a Manager and loads the conf dir once; it does not fail when
// no network is configured yet (Status says so).
func New(opts Options) (*Manager, error) {
	if opts.CacheDir == "" {
		return nil, fmt.Errorf("cni manager: no cache dir: %w", errdefs.ErrInvalidArgument)
	}
	if opts.ConfDir == "" {
		opts.ConfDir = DefaultConfDir
	}
	if len(opts.PluginDirs) == 0 {
		opts.PluginDirs = DefaultPluginDirs
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = defaultPollInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	m := &Manager{
		opts:      opts,
		log:       opts.Logger.With("component", "cni"),
		statusErr: fmt.Errorf("cni config in %s not loaded yet", opts.ConfDir),
		locks:     keylock.New(),
	}
	exec := &timedExec{
		DefaultExec: invoke.DefaultExec{
			RawExec:       &invoke.RawExec{Stderr: stderrLogger{m.log}},
			PluginDecoder: version.PluginDecoder{},
		},
		log: m.log,
	}
	m.cni = libcni.NewCNIConfigWithCacheDir(opts.PluginDirs, opts.CacheDir, exec)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m.reload(ctx)
	return m, nil
}

// Start watches ConfDir until ctx ends, so the default network follows the
// files there. Calling it again does nothing.
func (m *Manager) Start(ctx context.Context) {
	m.startOnce.Do(func() {
		go func() {
			t := time.NewTicker(m.opts.PollInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					m.reload(ctx)
				}
			}
		}()
	})
}

// Status is nil when the default network is usable, else says why not.
func (m *Manager) Status() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.statusErr
}

// Ready reports whether the default network is usable.
func (m *Manager) Ready() bool { return m.Status() == nil }

// DefaultNetwork names the default network and the file it came from; both
// are "" when none is usable.
func (m *Manager) DefaultNetwork() (name, file string) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.net == nil {
		return "", ""
	}
	return m.net.Name, m.netFile
}

// defaultNetwork returns the loaded list (never modified once loaded) or
// the reason there is none.
func (m *Manager) defaultNetwork() (*libcni.NetworkConfigList, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.net == nil {
		return nil, fmt.Errorf("cni network not ready: %w: %w", m.statusErr, errdefs.ErrFailedPrecondition)
	}
	return m.net, nil
}

// timedExec logs each plugin run's time at debug: where a pod's network
// setup spends its time, plugin by plugin.
type timedExec struct {
	invoke.DefaultExec
	log *slog.Logger
}

func (e *timedExec) ExecPlugin(ctx context.Context, path string, stdin []byte, env []string) ([]byte, error) {
	start := time.Now()
	out, err := e.DefaultExec.ExecPlugin(ctx, path, stdin, env)
	if e.log.Enabled(ctx, slog.LevelDebug) {
		var cmd, id string
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "CNI_COMMAND="); ok {
				cmd = v
			} else if v, ok := strings.CutPrefix(kv, "CNI_CONTAINERID="); ok {
				id = v
			}
		}
		e.log.DebugContext(ctx, "cni plugin ran", "plugin", filepath.Base(path), "command", cmd, "pod", id,
			"took", time.Since(start), "failed", err != nil)
	}
	return out, err
}

// stderrLogger sends what plugins write to stderr to the debug log.
type stderrLogger struct{ log *slog.Logger }

func (w stderrLogger) Write(p []byte) (int, error) {
	if s := strings.TrimSpace(string(p)); s != "" {
		w.log.Debug("cni plugin stderr", "text", s)
	}
	return len(p), nil
}
