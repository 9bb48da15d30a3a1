package config

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
)

// Where the daemon looks for its configuration when no flag says otherwise.
const (
	DefaultConfigPath = "/etc/berth/berth.toml"
	DefaultConfigDir  = "/etc/berth/berth.toml.d"
)

// Flags are the command-line overrides of the configuration. As in CRI-O, a
// flag wins over every file, but only when it is given: its zero default must
// not undo a file's setting.
type Flags struct {
	fs         *flag.FlagSet
	configPath string
	configDir  string
	// apply sets a flag's value in a Config, by flag name.
	apply map[string]func(*Config)
}

// RegisterFlags defines Berth's flags on fs. Call Apply (or LoadWithFlags)
// after fs.Parse.
func RegisterFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{fs: fs, apply: map[string]func(*Config){}}
	fs.StringVar(&f.configPath, "config", DefaultConfigPath, "configuration file; it must exist when given")
	fs.StringVar(&f.configDir, "config-dir", DefaultConfigDir, "directory of *.toml drop-ins applied after --config in lexical order")

	f.str("listen", "api.listen", "path of the CRI socket", func(c *Config) *string { return &c.API.Listen })
	f.str("stream-address", "api.stream_address", "address of the streaming server", func(c *Config) *string { return &c.API.StreamAddress })
	f.str("stream-port", "api.stream_port", "port of the streaming server", func(c *Config) *string { return &c.API.StreamPort })
	f.str("metrics-address", "api.metrics_address", "host:port of the Prometheus endpoint", func(c *Config) *string { return &c.API.MetricsAddress })
	f.str("profiling-socket", "api.profiling_socket", "unix socket serving pprof profiles (off when empty)", func(c *Config) *string { return &c.API.ProfilingSocket })

	f.str("root", "storage.root", "persistent storage root", func(c *Config) *string { return &c.Storage.Root })
	f.str("runroot", "storage.runroot", "volatile storage root", func(c *Config) *string { return &c.Storage.RunRoot })
	f.str("storage-driver", "storage.driver", "storage driver (overlay or vfs)", func(c *Config) *string { return &c.Storage.Driver })

	f.str("registries-conf", "image.registries_conf", "registries.conf path", func(c *Config) *string { return &c.Image.RegistriesConf })
	f.str("signature-policy", "image.signature_policy", "signature policy (policy.json) path", func(c *Config) *string { return &c.Image.SignaturePolicy })
	f.str("pause-image", "image.pause_image", "image of the infra container", func(c *Config) *string { return &c.Image.PauseImage })
	f.str("auth-file", "image.auth_file", "registry credentials file", func(c *Config) *string { return &c.Image.AuthFile })
	timeout := fs.Duration("pull-progress-timeout", 0, "cancel a pull that makes no progress for this long; 0 disables (image.pull_progress_timeout)")
	f.apply["pull-progress-timeout"] = func(c *Config) { c.Image.PullProgressTimeout = Duration{*timeout} }

	f.str("state-dir", "runtime.state_dir", "persistent state directory", func(c *Config) *string { return &c.Runtime.StateDir })
	f.str("run-dir", "runtime.run_dir", "volatile state directory", func(c *Config) *string { return &c.Runtime.RunDir })
	f.str("default-runtime", "runtime.default_handler", "runtime handler used when a pod names none", func(c *Config) *string { return &c.Runtime.DefaultHandler })
	f.str("conmon", "runtime.conmon", "path of the conmon binary", func(c *Config) *string { return &c.Runtime.Conmon })
	f.str("cgroup-manager", "runtime.cgroup_manager", "cgroupfs or systemd", func(c *Config) *string { return &c.Runtime.CgroupManager })

	f.str("cni-config-dir", "network.cni_config_dir", "directory of CNI conflists", func(c *Config) *string { return &c.Network.CNIConfigDir })
	var pluginDirs stringList
	fs.Var(&pluginDirs, "cni-plugin-dir", "directory of CNI plugins; repeat for several, replacing the configured list (network.cni_plugin_dirs)")
	f.apply["cni-plugin-dir"] = func(c *Config) { c.Network.CNIPluginDirs = slices.Clone(pluginDirs) }

	enableNRI := fs.Bool("enable-nri", false, "serve NRI plugins; --enable-nri=false turns NRI off (nri.enable)")
	f.apply["enable-nri"] = func(c *Config) { c.NRI.Enable = *enableNRI }
	f.str("nri-socket", "nri.socket_path", "unix socket NRI plugins connect to", func(c *Config) *string { return &c.NRI.SocketPath })

	f.str("log-level", "log.level", "debug, info, warn or error", func(c *Config) *string { return &c.Log.Level })
	f.str("log-format", "log.format", "text or json", func(c *Config) *string { return &c.Log.Format })
	return f
}

// str defines a string flag that overrides the config key of the same
// meaning; the key is named in the usage so --help maps flags to the file.
func (f *Flags) str(name, key, usage string, field func(*Config) *string) {
	v := f.fs.String(name, "", usage+" ("+key+")")
	f.apply[name] = func(c *Config) { *field(c) = *v }
}

// Apply sets in cfg the flags given on the command line, and only those.
func (f *Flags) Apply(cfg *Config) {
	f.fs.Visit(func(fl *flag.Flag) {
		if apply, ok := f.apply[fl.Name]; ok {
			apply(cfg)
		}
	})
}

// ConfigPath returns the main configuration file and whether --config named
// it; a file the operator named must exist, the default need not.
func (f *Flags) ConfigPath() (path string, explicit bool) {
	return f.configPath, f.isSet("config")
}

// ConfigDir returns the drop-in directory.
func (f *Flags) ConfigDir() string { return f.configDir }

func (f *Flags) isSet(name string) bool {
	set := false
	f.fs.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
	return set
}

// LoadWithFlags is the daemon's start-up sequence: load the files --config
// and --config-dir name, apply the flags given, validate. It returns the
// configuration and the main file read, or "" when there was none.
func LoadWithFlags(fs *flag.FlagSet, f *Flags) (*Config, string, error) {
	if !fs.Parsed() {
		return nil, "", errors.New("load config: flags not parsed")
	}
	path, explicit := f.ConfigPath()
	cfg, read, err := load(path, f.ConfigDir(), explicit)
	if err != nil {
		return nil, "", err
	}
	f.Apply(cfg)
	if err := cfg.Validate(); err != nil {
		return nil, "", fmt.Errorf("invalid configuration: %w", err)
	}
	if !slices.Contains(read, path) {
		path = ""
	}
	return cfg, path, nil
}

// stringList is a repeatable flag: each occurrence adds one value.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}
