package check

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/network"
)

// The bridge network `make install` lays down; contrib/cni holds it as a
// file, and a unit test keeps the two equal.
const (
	DefaultBridge       = "berth0"
	DefaultSubnet       = "10.88.0.0/16"
	DefaultConflistName = "10-berth-bridge.conflist"
)

const (
	noConfFix = "`make install` lays down a default bridge conflist (" + DefaultConflistName +
		"), or install your network provider; network.cni_config_dir names the dir"
	pluginFix = "`apt-get install containernetworking-plugins` (Debian puts them in /usr/lib/cni), " +
		"or set network.cni_plugin_dirs to where they are"
)

// confFile is one network config file as the daemon sees it.
type confFile struct {
	path string
	list *libcni.NetworkConfigList // nil when the file does not parse
	err  error                     // why the daemon skips the file
	fix  string                    // what to do about err when no file is usable
}

// cni checks the network the daemon would use: like the daemon, the first
// file of the conf dir in lexical order that parses and whose plugins answer
// for its cniVersion; earlier broken files are skipped with a warning.
func cni(ctx context.Context, cfg *config.Config, host Host) []Result {
	const name = "cni network"
	dir, dirs := cfg.Network.CNIConfigDir, cfg.Network.CNIPluginDirs
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return append([]Result{fail(name, noConfFix, "no CNI network config: %s does not exist", dir)},
			defaultNetworkPlugins(ctx, dirs, host)...)
	case err != nil:
		return []Result{fail(name, fmt.Sprintf("make %s readable, or set network.cni_config_dir", dir), "%v", err)}
	}
	var files []confFile
	for _, e := range entries {
		if e.IsDir() || !slices.Contains([]string{".conflist", ".conf", ".json"}, filepath.Ext(e.Name())) {
			continue
		}
		files = append(files, confFile{path: filepath.Join(dir, e.Name())})
	}
	if len(files) == 0 {
		return append([]Result{fail(name, noConfFix, "no CNI network config (*.conflist, *.conf, *.json) in %s", dir)},
			defaultNetworkPlugins(ctx, dirs, host)...)
	}

	chosen := pickNetwork(ctx, files, dirs, host.CommandTimeout)
	if chosen < 0 {
		return noUsableNetwork(ctx, dir, files, dirs, host)
	}
	c := files[chosen]
	rs := []Result{ok(name, "%q (cniVersion %s) from %s", c.list.Name, c.list.CNIVersion, c.path)}
	for _, f := range files[:chosen] {
		rs = append(rs, warn(name, fmt.Sprintf("correct or remove %s", f.path),
			"%s is skipped (the daemon uses %s): %v", f.path, filepath.Base(c.path), f.err))
	}
	return append(rs, networkPlugins(ctx, c.list, dirs, host)...)
}

// pickNetwork returns the index of the first usable file, as the daemon
// picks it, having recorded in each file before it why it is not.
func pickNetwork(ctx context.Context, files []confFile, dirs []string, timeout time.Duration) int {
	cniConf := libcni.NewCNIConfig(dirs, nil)
	for i := range files {
		f := &files[i]
		if f.list, f.err = network.LoadConfFile(f.path); f.err != nil {
			f.fix = "correct the file (it must be a CNI network config), or move it away and run `make install` for the default bridge conflist"
			continue
		}
		if missing := missingPlugins(pluginTypes(f.list, false), dirs); len(missing) > 0 {
			f.err = fmt.Errorf("plugins %s not found in %s", strings.Join(missing, ", "), strings.Join(dirs, ", "))
			f.fix = pluginFix
			continue
		}
		vctx, cancel := context.WithTimeout(ctx, timeout)
		_, f.err = cniConf.ValidateNetworkList(vctx, f.list)
		cancel()
		if f.err == nil {
			return i
		}
		f.fix = fmt.Sprintf("install plugins that speak cniVersion %s (`apt-get install containernetworking-plugins`), or lower the file's cniVersion", f.list.CNIVersion)
	}
	return -1
}

// noUsableNetwork reports every file's problem, and the plugins of the
// first file that parsed (or of the default network, if none did).
func noUsableNetwork(ctx context.Context, dir string, files []confFile, dirs []string, host Host) []Result {
	var problems, fixes []string
	var parsed *libcni.NetworkConfigList
	for _, f := range files {
		problems = append(problems, fmt.Sprintf("%s: %v", f.path, f.err))
		if !slices.Contains(fixes, f.fix) {
			fixes = append(fixes, f.fix)
		}
		if f.list != nil && parsed == nil {
			parsed = f.list
		}
	}
	rs := []Result{fail("cni network", strings.Join(fixes, "; "), "no usable CNI network config in %s: %s", dir, strings.Join(problems, "; "))}
	if parsed == nil {
		return append(rs, defaultNetworkPlugins(ctx, dirs, host)...)
	}
	return append(rs, networkPlugins(ctx, parsed, dirs, host)...)
}

// pluginTypes lists the plugin binaries a network runs, in order, with the
// IPAM plugins when withIPAM.
func pluginTypes(list *libcni.NetworkConfigList, withIPAM bool) []string {
	var types []string
	add := func(t string) {
		if t != "" && !slices.Contains(types, t) {
			types = append(types, t)
		}
	}
	for _, p := range list.Plugins {
		add(p.Network.Type)
		if withIPAM {
			add(p.Network.IPAM.Type)
		}
	}
	return types
}

func missingPlugins(types, dirs []string) []string {
	var missing []string
	for _, t := range types {
		if _, err := invoke.FindInPath(t, dirs); err != nil {
			missing = append(missing, t)
		}
	}
	return missing
}

// networkPlugins checks that every plugin of list, IPAM included, is in
// the plugin dirs (the daemon itself checks only the main ones, and a
// missing IPAM plugin fails every pod), and the iptables the list needs.
func networkPlugins(ctx context.Context, list *libcni.NetworkConfigList, dirs []string, host Host) []Result {
	rs := []Result{plugins(fmt.Sprintf("network %q", list.Name), pluginTypes(list, true), dirs)}
	if r, needed := iptables(ctx, list, host); needed {
		rs = append(rs, r)
	}
	return rs
}

// defaultNetworkPlugins checks the needs of the bridge network `make
// install` would lay down, for a node that has no network config yet.
func defaultNetworkPlugins(ctx context.Context, dirs []string, host Host) []Result {
	list, err := libcni.NetworkConfFromBytes(network.DefaultConflist(DefaultBridge, DefaultSubnet))
	if err != nil {
		return []Result{fail("cni plugins", "report a bug", "parse the default conflist: %v", err)}
	}
	rs := []Result{plugins("the default bridge network", pluginTypes(list, true), dirs)}
	if r, needed := iptables(ctx, list, host); needed {
		rs = append(rs, r)
	}
	return rs
}

// iptables checks for the iptables command that portmap and a masquerading
// bridge run (through go-iptables) on every pod; needed reports whether
// list uses either.
func iptables(ctx context.Context, list *libcni.NetworkConfigList, host Host) (r Result, needed bool) {
	const name = "cni iptables"
	var users []string
	for _, p := range list.Plugins {
		var conf struct {
			Type   string `json:"type"`
			IPMasq bool   `json:"ipMasq"`
		}
		if json.Unmarshal(p.Bytes, &conf) != nil {
			continue
		}
		if conf.Type == "portmap" || conf.Type == "firewall" || (conf.Type == "bridge" && conf.IPMasq) {
			users = append(users, conf.Type)
		}
	}
	if len(users) == 0 {
		return Result{}, false
	}
	const fix = "`apt-get install iptables`"
	path, err := exec.LookPath("iptables")
	if err != nil {
		return fail(name, fix, "%s need the iptables command: %v", strings.Join(users, ", "), err), true
	}
	ctx, cancel := context.WithTimeout(ctx, host.CommandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
	if err != nil {
		return fail(name, fix, "`%s --version` failed: %v: %s", path, err, firstLine(string(out))), true
	}
	return ok(name, "%s (for %s)", firstLine(string(out)), strings.Join(users, ", ")), true
}

func plugins(what string, types, dirs []string) Result {
	const name = "cni plugins"
	if missing := missingPlugins(types, dirs); len(missing) > 0 {
		return fail(name, pluginFix, "%s needs %s, not found in %s", what, strings.Join(missing, ", "), strings.Join(dirs, ", "))
	}
	var found []string
	for _, t := range types {
		p, _ := invoke.FindInPath(t, dirs)
		if d := filepath.Dir(p); !slices.Contains(found, d) {
			found = append(found, d)
		}
	}
	return ok(name, "%s needs %s: found in %s", what, strings.Join(types, ", "), strings.Join(found, ", "))
}
