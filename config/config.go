// Package config defines Berth's configuration: the TOML schema with its
// defaults, how files, drop-ins and flags are merged, and validation.
package config

import "time"

// Config is the effective configuration of a Berth daemon. The toml tags are
// the file's keys; the comment tags become the comments of `berth config`.
type Config struct {
	API     APIConfig     `toml:"api" comment:"Where Berth listens: the CRI socket, the streaming server and metrics."`
	Storage StorageConfig `toml:"storage" comment:"Image and container layer storage (containers/storage)."`
	Image   ImageConfig   `toml:"image" comment:"Image pulls: registries, signature policy, credentials."`
	Runtime RuntimeConfig `toml:"runtime" comment:"OCI runtimes, conmon and the defaults of every container."`
	Network NetworkConfig `toml:"network" comment:"Pod networking through CNI."`
	NRI     NRIConfig     `toml:"nri" comment:"NRI (Node Resource Interface): plugins that see every pod and container event and adjust containers before they are created. Changes need a restart."`
	Log     LogConfig     `toml:"log" comment:"The daemon's own log."`
}

// APIConfig is where Berth listens.
type APIConfig struct {
	Listen         string `toml:"listen" comment:"Path of the CRI gRPC unix socket."`
	StreamAddress  string `toml:"stream_address" comment:"Address the streaming server (exec, attach, port-forward) binds to."`
	StreamPort     string `toml:"stream_port" comment:"Port of the streaming server; \"0\" picks a free port."`
	StreamTLSCert  string `toml:"stream_tls_cert" comment:"TLS certificate of the streaming server; empty serves plain HTTP."`
	StreamTLSKey   string `toml:"stream_tls_key" comment:"TLS key of the streaming server."`
	MetricsAddress string `toml:"metrics_address" comment:"Address of the Prometheus endpoint (host:port); empty disables it."`
	// Profiling is off by default: a profile shows what the daemon runs.
	ProfilingSocket    string `toml:"profiling_socket" comment:"Unix socket (root only) serving Go's pprof profiles at /debug/pprof/; empty disables it. E.g. curl --unix-socket <path> http://berth/debug/pprof/profile?seconds=30 > cpu.pprof"`
	ProfilingOnMetrics bool   `toml:"profiling_on_metrics" comment:"Also serve /debug/pprof/ on metrics_address."`
}

// StorageConfig configures containers/storage.
type StorageConfig struct {
	Driver        string   `toml:"driver" comment:"Storage driver: overlay, or vfs where overlay cannot mount. Empty picks overlay with a vfs fallback."`
	Root          string   `toml:"root" comment:"Persistent storage root, shared with podman and skopeo on the node."`
	RunRoot       string   `toml:"runroot" comment:"Volatile storage state (tmpfs)."`
	DriverOptions []string `toml:"driver_options" comment:"Options passed to the storage driver, e.g. \"overlay.mountopt=nodev\"."`
}

// ImageConfig configures image pulls.
type ImageConfig struct {
	RegistriesConf      string   `toml:"registries_conf" comment:"registries.conf: short-name search, mirrors, insecure and blocked registries."`
	SignaturePolicy     string   `toml:"signature_policy" comment:"Signature policy (policy.json) enforced on every pull."`
	PauseImage          string   `toml:"pause_image" comment:"Image of the infra container of pods that need one."`
	PinnedImages        []string `toml:"pinned_images" comment:"Images reported pinned, never garbage collected by kubelet."`
	AuthFile            string   `toml:"auth_file" comment:"Registry credentials (containers-auth.json format); empty uses none."`
	PullProgressTimeout Duration `toml:"pull_progress_timeout" comment:"A pull that makes no progress for this long is cancelled; 0 disables."`
}

// RuntimeHandler is one OCI runtime, selected by RuntimeClass handler name.
type RuntimeHandler struct {
	Path string `toml:"path" comment:"Path of the OCI runtime binary."`
	Root string `toml:"root" comment:"State directory passed to the runtime as --root."`
}

// RuntimeConfig configures OCI runtimes, conmon and container defaults.
type RuntimeConfig struct {
	StateDir            string                    `toml:"state_dir" comment:"Persistent state of Berth's pods and containers."`
	RunDir              string                    `toml:"run_dir" comment:"Volatile state (tmpfs): pinned namespaces, conmon sockets, exit files."`
	DefaultHandler      string                    `toml:"default_handler" comment:"Runtime handler used when a pod names none."`
	Handlers            map[string]RuntimeHandler `toml:"handlers" comment:"Runtime handlers by name (the RuntimeClass handler)."`
	Conmon              string                    `toml:"conmon" comment:"Path of the conmon binary."`
	CgroupManager       string                    `toml:"cgroup_manager" comment:"cgroupfs or systemd."`
	LogSizeMax          int64                     `toml:"log_size_max" comment:"Maximum size in bytes of a container log before conmon truncates it; -1 is unlimited."`
	DefaultCapabilities []string                  `toml:"default_capabilities" comment:"Capabilities of containers that ask for no change."`
	DefaultSysctls      []string                  `toml:"default_sysctls" comment:"Sysctls (name=value) set in every pod."`
	PidsLimit           int64                     `toml:"pids_limit" comment:"Maximum processes per container; 0 or -1 is unlimited."`
	SeccompProfile      string                    `toml:"seccomp_profile" comment:"JSON seccomp profile used for RuntimeDefault; empty uses the built-in default."`
	DropInfra           bool                      `toml:"drop_infra" comment:"Run no infra (pause) container for pods that do not share a PID namespace."`
	ShmSize             string                    `toml:"shm_size" comment:"Size of each pod's /dev/shm tmpfs."`
}

// NetworkConfig configures CNI.
type NetworkConfig struct {
	CNIConfigDir  string   `toml:"cni_config_dir" comment:"Directory of CNI conflists; the first in lexical order is the default network."`
	CNIPluginDirs []string `toml:"cni_plugin_dirs" comment:"Directories searched for CNI plugin binaries."`
}

// NRIConfig configures NRI.
type NRIConfig struct {
	Enable              bool     `toml:"enable" comment:"Serve NRI plugins."`
	SocketPath          string   `toml:"socket_path" comment:"Unix socket external plugins connect to; Berth refuses to start if another process serves it."`
	PluginPath          string   `toml:"plugin_path" comment:"Directory of pre-installed plugins Berth launches (executables named NN-name)."`
	PluginConfigPath    string   `toml:"plugin_config_path" comment:"Directory of the launched plugins' configuration (NN-name.conf or name.conf)."`
	RegistrationTimeout Duration `toml:"plugin_registration_timeout" comment:"How long a plugin may take to register."`
	RequestTimeout      Duration `toml:"plugin_request_timeout" comment:"How long a plugin may take to answer one event; one that takes longer is dropped and the call goes on without it."`
}

// LogConfig configures the daemon's own log.
type LogConfig struct {
	Level  string `toml:"level" comment:"debug, info, warn or error."`
	Format string `toml:"format" comment:"text or json."`
}

// Duration is a time.Duration written as a Go duration string ("30s") in TOML.
type Duration struct{ time.Duration }

// UnmarshalText parses a duration string such as "1m30s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// Default returns the configuration used when no file or flag says otherwise.
func Default() *Config {
	return &Config{
		API: APIConfig{
			Listen:        "/run/berth/berth.sock",
			StreamAddress: "127.0.0.1",
			StreamPort:    "0",
		},
		Storage: StorageConfig{
			Root:    "/var/lib/containers/storage",
			RunRoot: "/run/containers/storage",
		},
		Image: ImageConfig{
			RegistriesConf:      "/etc/containers/registries.conf",
			SignaturePolicy:     "/etc/containers/policy.json",
			PauseImage:          "registry.k8s.io/pause:3.10",
			PullProgressTimeout: Duration{time.Minute},
		},
		Runtime: RuntimeConfig{
			StateDir:       "/var/lib/berth",
			RunDir:         "/run/berth",
			DefaultHandler: "crun",
			Handlers: map[string]RuntimeHandler{
				"crun": {Path: "/usr/bin/crun", Root: "/run/crun"},
				"runc": {Path: "/usr/bin/runc", Root: "/run/runc"},
			},
			Conmon:        "/usr/bin/conmon",
			CgroupManager: "cgroupfs",
			LogSizeMax:    -1,
			DefaultCapabilities: []string{
				"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID",
				"SETPCAP", "NET_BIND_SERVICE", "KILL",
			},
			PidsLimit: -1,
			DropInfra: true,
			ShmSize:   "64m",
		},
		Network: NetworkConfig{
			CNIConfigDir:  "/etc/cni/net.d",
			CNIPluginDirs: []string{"/opt/cni/bin", "/usr/lib/cni"},
		},
		NRI: NRIConfig{
			Enable:              true,
			SocketPath:          "/var/run/nri/nri.sock",
			PluginPath:          "/opt/nri/plugins",
			PluginConfigPath:    "/etc/nri/conf.d",
			RegistrationTimeout: Duration{5 * time.Second},
			RequestTimeout:      Duration{2 * time.Second},
		},
		Log: LogConfig{Level: "info", Format: "text"},
	}
}
