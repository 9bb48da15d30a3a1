package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// conmonBufSize is the size of conmon's read buffer; CRI-O rejects a smaller
// positive log_size_max for the same reason: conmon cannot honour it.
const conmonBufSize = 8192

// Validate reports every problem of the configuration at once, each naming
// its key, so an operator fixes a file in one pass. Paths are only checked
// for form; whether the binaries exist is `berth check`'s job.
func (c *Config) Validate() error {
	var p problems

	p.absPath("api.listen", c.API.Listen, true)
	p.port("api.stream_port", c.API.StreamPort)
	p.absPath("api.stream_tls_cert", c.API.StreamTLSCert, false)
	p.absPath("api.stream_tls_key", c.API.StreamTLSKey, false)
	switch {
	case c.API.StreamTLSCert != "" && c.API.StreamTLSKey == "":
		p.add("api.stream_tls_key", "must be set when api.stream_tls_cert is")
	case c.API.StreamTLSCert == "" && c.API.StreamTLSKey != "":
		p.add("api.stream_tls_cert", "must be set when api.stream_tls_key is")
	}
	if a := c.API.MetricsAddress; a != "" {
		if _, port, err := net.SplitHostPort(a); err != nil {
			p.add("api.metrics_address", "%q is not host:port: %v", a, err)
		} else {
			p.port("api.metrics_address", port)
		}
	}

	if s := c.API.ProfilingSocket; s != "" && !filepath.IsAbs(s) {
		p.add("api.profiling_socket", "%q is not an absolute path", s)
	}
	if c.API.ProfilingOnMetrics && c.API.MetricsAddress == "" {
		p.add("api.profiling_on_metrics", "needs api.metrics_address")
	}

	p.oneOf("storage.driver", c.Storage.Driver, "", "overlay", "vfs")
	p.absPath("storage.root", c.Storage.Root, true)
	p.absPath("storage.runroot", c.Storage.RunRoot, true)
	for _, o := range c.Storage.DriverOptions {
		if k, _, ok := strings.Cut(o, "="); !ok || k == "" {
			p.add("storage.driver_options", "%q is not in key=value form", o)
		}
	}

	p.absPath("image.registries_conf", c.Image.RegistriesConf, false)
	p.absPath("image.signature_policy", c.Image.SignaturePolicy, false)
	p.absPath("image.auth_file", c.Image.AuthFile, false)
	if c.Image.PauseImage == "" {
		p.add("image.pause_image", "must be set")
	}
	if slices.Contains(c.Image.PinnedImages, "") {
		p.add("image.pinned_images", "must not contain an empty name")
	}
	if c.Image.PullProgressTimeout.Duration < 0 {
		p.add("image.pull_progress_timeout", "must not be negative, got %s", c.Image.PullProgressTimeout)
	}

	c.Runtime.validate(&p)

	p.absPath("network.cni_config_dir", c.Network.CNIConfigDir, true)
	if len(c.Network.CNIPluginDirs) == 0 {
		p.add("network.cni_plugin_dirs", "must name at least one directory")
	}
	for _, d := range c.Network.CNIPluginDirs {
		p.absPath("network.cni_plugin_dirs", d, true)
	}

	p.absPath("nri.socket_path", c.NRI.SocketPath, c.NRI.Enable)
	if len(c.NRI.SocketPath) > 107 {
		p.add("nri.socket_path", "%q is longer than a unix socket path may be (107 bytes)", c.NRI.SocketPath)
	}
	p.absPath("nri.plugin_path", c.NRI.PluginPath, false)
	p.absPath("nri.plugin_config_path", c.NRI.PluginConfigPath, false)
	if c.NRI.RegistrationTimeout.Duration <= 0 {
		p.add("nri.plugin_registration_timeout", "must be positive, got %s", c.NRI.RegistrationTimeout)
	}
	if c.NRI.RequestTimeout.Duration <= 0 {
		p.add("nri.plugin_request_timeout", "must be positive, got %s", c.NRI.RequestTimeout)
	}

	p.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	p.oneOf("log.format", c.Log.Format, "text", "json")

	return errors.Join(p...)
}

func (r *RuntimeConfig) validate(p *problems) {
	p.absPath("runtime.state_dir", r.StateDir, true)
	p.absPath("runtime.run_dir", r.RunDir, true)
	if _, ok := r.Handlers[r.DefaultHandler]; !ok {
		have := "none"
		if len(r.Handlers) > 0 {
			have = strings.Join(slices.Sorted(maps.Keys(r.Handlers)), ", ")
		}
		p.add("runtime.default_handler", "%q is not a configured handler (have: %s)", r.DefaultHandler, have)
	}
	for _, name := range slices.Sorted(maps.Keys(r.Handlers)) {
		h := r.Handlers[name]
		if name == "" {
			p.add("runtime.handlers", "a handler has an empty name")
			continue
		}
		key := "runtime.handlers." + formatKey([]string{name})
		p.absPath(key+".path", h.Path, true)
		p.absPath(key+".root", h.Root, false)
	}
	p.absPath("runtime.conmon", r.Conmon, true)
	p.oneOf("runtime.cgroup_manager", r.CgroupManager, "cgroupfs", "systemd")
	if r.LogSizeMax >= 0 && r.LogSizeMax < conmonBufSize {
		p.add("runtime.log_size_max", "must be negative (unlimited) or at least %d, got %d", conmonBufSize, r.LogSizeMax)
	}
	for _, c := range r.DefaultCapabilities {
		if c == "" || strings.TrimFunc(c, isCapRune) != "" {
			p.add("runtime.default_capabilities", "%q is not a capability name", c)
		}
	}
	for _, s := range r.DefaultSysctls {
		if name, _, ok := strings.Cut(s, "="); !ok || name == "" || strings.ContainsAny(name, " \t") {
			p.add("runtime.default_sysctls", "%q is not in name=value form", s)
		}
	}
	if r.PidsLimit < -1 {
		p.add("runtime.pids_limit", "must be -1, 0 or positive, got %d", r.PidsLimit)
	}
	p.absPath("runtime.seccomp_profile", r.SeccompProfile, false)
	if n, err := ParseSize(r.ShmSize); err != nil {
		p.add("runtime.shm_size", "%v", err)
	} else if n <= 0 {
		p.add("runtime.shm_size", "must be positive, got %q", r.ShmSize)
	}
}

func isCapRune(r rune) bool {
	return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_'
}

// ParseSize parses a byte count with an optional binary suffix, as in
// "65536", "512k", "64m" or "1g"; "64M", "64mb" and "64MiB" mean the same.
func ParseSize(s string) (int64, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], strings.ToLower(s[i:])
	var mult int64
	switch unit {
	case "", "b":
		mult = 1
	case "k", "kb", "kib":
		mult = 1 << 10
	case "m", "mb", "mib":
		mult = 1 << 20
	case "g", "gb", "gib":
		mult = 1 << 30
	default:
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (want k, m or g)", s, unit)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: want a whole number of bytes with an optional k, m or g suffix", s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return n * mult, nil
}

// problems collects validation errors, each prefixed with its key.
type problems []error

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

func (p *problems) absPath(key, path string, required bool) {
	switch {
	case path == "" && required:
		p.add(key, "must be set")
	case path != "" && !filepath.IsAbs(path):
		p.add(key, "must be an absolute path, got %q", path)
	}
}

func (p *problems) oneOf(key, v string, allowed ...string) {
	if slices.Contains(allowed, v) {
		return
	}
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = strconv.Quote(a)
	}
	want := strings.Join(quoted, ", ")
	if len(quoted) > 1 {
		want = strings.Join(quoted[:len(quoted)-1], ", ") + " or " + quoted[len(quoted)-1]
	}
	p.add(key, "must be %s, got %q", want, v)
}

func (p *problems) port(key, v string) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 65535 {
		p.add(key, "port %q is not a number from 0 to 65535", v)
	}
}
