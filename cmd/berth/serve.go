package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/events"
	"github.com/berth-dev/berth/metrics"
	"github.com/berth-dev/berth/namespaces"
	"github.com/berth-dev/berth/network"
	"github.com/berth-dev/berth/nri"
	"github.com/berth-dev/berth/oci"
	"github.com/berth-dev/berth/server"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/streaming"
	"github.com/berth-dev/berth/version"
)

// shutdownGrace bounds how long in-flight calls may run after SIGTERM; a
// pull stuck on a dead registry must not keep the daemon from exiting.
const shutdownGrace = 30 * time.Second

// removalGrace is how long background releases of removed containers may
// go on after the calls are done; each is crash-safe, so it is short.
const removalGrace = 5 * time.Second

// maxMsgSize matches the kubelet's own 16 MiB limit for CRI messages.
const maxMsgSize = 16 * 1024 * 1024

// newLogger returns the daemon's logger and the level SIGHUP may change.
func newLogger(cfg *config.Config, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	var l slog.Level
	_ = l.UnmarshalText([]byte(cfg.Log.Level)) // validated by config
	level.Set(l)
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), level
	}
	return slog.New(slog.NewTextHandler(w, opts)), level
}

// serve runs the daemon until SIGTERM or SIGINT; load re-reads the
// configuration for SIGHUP.
func serve(cfg *config.Config, configPath string, load func() (*config.Config, error), logOut io.Writer) error {
	log, level := newLogger(cfg, logOut)
	slog.SetDefault(log)
	log.Info("starting berth", "version", version.Version, "config", configPath, "listen", cfg.API.Listen)
	// Signals are caught from the start: a SIGTERM that arrives while
	// start-up runs must still end in an orderly shutdown, never in the
	// default action that leaves storage mounted.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	defer signal.Stop(sigs)

	for _, dir := range []string{cfg.Runtime.StateDir, cfg.Runtime.RunDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create state directory: %w", err)
		}
	}

	// Take the socket first: a second daemon must fail before it touches
	// storage that the first one owns.
	lis, err := server.Listen(cfg.API.Listen)
	if err != nil {
		return err
	}
	defer lis.Close()

	// Metrics are recorded always (it is cheap) and served only when
	// api.metrics_address is set.
	met := metrics.New()
	store, err := storage.Open(storage.Options{
		Root:                cfg.Storage.Root,
		RunRoot:             cfg.Storage.RunRoot,
		Driver:              cfg.Storage.Driver,
		DriverOptions:       cfg.Storage.DriverOptions,
		RegistriesConf:      cfg.Image.RegistriesConf,
		SignaturePolicy:     cfg.Image.SignaturePolicy,
		AuthFile:            cfg.Image.AuthFile,
		PauseImage:          cfg.Image.PauseImage,
		PinnedImages:        cfg.Image.PinnedImages,
		PullProgressTimeout: cfg.Image.PullProgressTimeout.Duration,
		PullObserver:        met.ObservePull,
		Logger:              log.With("component", "images"),
	})
	if err != nil {
		return fmt.Errorf("open image store: %w", err)
	}
	defer func() {
		if err := store.Shutdown(); err != nil {
			log.Warn("shut down image store", "error", err)
		}
	}()

	net, err := network.New(network.Options{
		ConfDir:    cfg.Network.CNIConfigDir,
		PluginDirs: cfg.Network.CNIPluginDirs,
		CacheDir:   filepath.Join(cfg.Runtime.StateDir, "cni"),
		Logger:     log.With("component", "network"),
	})
	if err != nil {
		return fmt.Errorf("set up CNI: %w", err)
	}
	bgCtx, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()
	net.Start(bgCtx)

	newRuntime := func(name string, h config.RuntimeHandler) (*oci.Runtime, error) {
		return oci.New(oci.Config{
			Name:          name,
			Path:          h.Path,
			Root:          h.Root,
			ConmonPath:    cfg.Runtime.Conmon,
			CgroupManager: cfg.Runtime.CgroupManager,
			RunDir:        cfg.Runtime.RunDir,
			Log:           log.With("component", "oci", "handler", name),
			Observe:       met.ObserveOCI,
		})
	}
	runtimes := map[string]server.OCIRuntime{}
	for name, h := range cfg.Runtime.Handlers {
		rt, err := newRuntime(name, h)
		if err != nil {
			return fmt.Errorf("runtime handler %s: %w", name, err)
		}
		runtimes[name] = rt
	}

	// Lifecycle events go to the broker that GetContainerEvents
	// subscribers read.
	broker := events.NewBroker(events.DefaultBuffer)

	deps := server.Deps{Images: store.Images, Rootfs: store.Rootfs, Network: net, Namespaces: namespaces.Host{Dir: filepath.Join(cfg.Runtime.RunDir, "ns")}, Runtimes: runtimes, Events: broker}
	var plugins *nri.NRI
	if cfg.NRI.Enable {
		if plugins, err = nri.New(nri.Config{
			SocketPath:          cfg.NRI.SocketPath,
			PluginPath:          cfg.NRI.PluginPath,
			PluginConfigPath:    cfg.NRI.PluginConfigPath,
			RegistrationTimeout: cfg.NRI.RegistrationTimeout.Duration,
			RequestTimeout:      cfg.NRI.RequestTimeout.Duration,
		}, log); err != nil {
			return err
		}
		deps.NRI = plugins
	}
	srv := server.New(cfg, configPath, deps, log)
	// Exec, attach and port-forward stream over HTTP: the CRI calls return
	// URLs of this server. Stopping it ends the sessions.
	streams, err := streaming.Start(streaming.Config{
		Address: cfg.API.StreamAddress, Port: cfg.API.StreamPort,
		TLSCert: cfg.API.StreamTLSCert, TLSKey: cfg.API.StreamTLSKey,
	}, srv.StreamRuntime(), log.With("component", "streaming"))
	if err != nil {
		return err
	}
	defer streams.Stop()
	srv.SetStreaming(streams)
	g := grpc.NewServer(
		grpc.ChainUnaryInterceptor(server.UnaryInterceptor(log, met)),
		grpc.ChainStreamInterceptor(server.StreamInterceptor(log)),
		grpc.MaxRecvMsgSize(maxMsgSize),
		grpc.MaxSendMsgSize(maxMsgSize),
	)
	if err := srv.Recover(context.Background()); err != nil {
		return fmt.Errorf("recover state: %w", err)
	}
	if err := srv.WatchExits(bgCtx); err != nil {
		return fmt.Errorf("watch container exits: %w", err)
	}
	// Plugins connect once the state is recovered: their sync shows what
	// survived the restart, and what recovery removed they never see.
	if plugins != nil {
		if err := plugins.Start(srv.NRIDomain()); err != nil {
			return err
		}
		defer plugins.Stop()
	}
	runtime.RegisterRuntimeServiceServer(g, srv)
	runtime.RegisterImageServiceServer(g, srv)
	met.WatchStates(srv)
	met.WatchEvents(broker)
	if addr := cfg.API.MetricsAddress; addr != "" {
		endpoint, err := met.Serve(addr, cfg.API.ProfilingOnMetrics, log.With("component", "metrics"))
		if err != nil {
			return err
		}
		defer endpoint.Shutdown(context.Background())
	}
	if path := cfg.API.ProfilingSocket; path != "" {
		endpoint, err := metrics.ServeProfiling(path, log.With("component", "profiling"))
		if err != nil {
			return err
		}
		defer endpoint.Shutdown(context.Background())
	}

	errc := make(chan error, 1)
	go func() { errc <- g.Serve(lis) }()
	log.Info("serving CRI", "socket", cfg.API.Listen)
	if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		log.Debug("sd_notify", "error", err)
	}

	running, err := cloneConfig(cfg)
	if err != nil {
		return err
	}
	rl := &reloader{load: load, current: running, level: level, images: store.Images, srv: srv, newRT: newRuntime, log: log}
wait:
	for {
		select {
		case err := <-errc:
			return fmt.Errorf("serve CRI: %w", err)
		case sig := <-sigs:
			if sig != unix.SIGHUP {
				break wait
			}
			log.Info("SIGHUP: reloading configuration", "config", configPath)
			rl.reload()
		}
	}
	log.Info("shutting down: finishing in-flight calls; containers keep running")
	daemon.SdNotify(false, daemon.SdNotifyStopping)
	done := make(chan struct{})
	broker.Close() // ends GetContainerEvents streams, which GracefulStop would wait for
	go func() { g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(shutdownGrace):
		log.Warn("in-flight calls outlived the shutdown grace period; cancelling them", "grace", shutdownGrace)
		g.Stop()
	}
	// Releases of removed containers still running in the background get
	// a moment; what is left is finished by the next start-up, as after a
	// crash.
	ctx, cancel := context.WithTimeout(context.Background(), removalGrace)
	srv.Shutdown(ctx)
	cancel()
	log.Info("berth stopped")
	return nil
}

// cloneConfig deep-copies a configuration, so the reloader's view of the
// running configuration is never shared with the server's.
func cloneConfig(cfg *config.Config) (*config.Config, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("copy configuration: %w", err)
	}
	out := new(config.Config)
	if err := json.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("copy configuration: %w", err)
	}
	return out, nil
}
