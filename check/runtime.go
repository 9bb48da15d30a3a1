package check

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/config"
)

// debianPackages names the Debian package of the binaries Berth runs, for
// fixes that say what to install.
var debianPackages = map[string]string{
	"crun":   "crun",
	"runc":   "runc",
	"conmon": "conmon",
}

// runtimeHandlers checks every handler's binary, the default one first. A
// broken default handler fails every pod; a broken other one fails only the
// pods of its RuntimeClass, so it warns.
func runtimeHandlers(ctx context.Context, cfg *config.Config, host Host) []Result {
	names := make([]string, 0, len(cfg.Runtime.Handlers))
	for name := range cfg.Runtime.Handlers {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int {
		switch {
		case a == cfg.Runtime.DefaultHandler:
			return -1
		case b == cfg.Runtime.DefaultHandler:
			return 1
		}
		return strings.Compare(a, b)
	})
	var rs []Result
	for _, name := range names {
		key := fmt.Sprintf("runtime.handlers.%s.path", name)
		r := binary(ctx, "runtime handler "+name, cfg.Runtime.Handlers[name].Path, key, host.CommandTimeout)
		if r.Status == Fail && name != cfg.Runtime.DefaultHandler {
			r.Status = Warn
			r.Detail += fmt.Sprintf(" (only pods of RuntimeClass handler %q need it)", name)
		}
		rs = append(rs, r)
	}
	return rs
}

func conmon(ctx context.Context, cfg *config.Config, host Host) Result {
	return binary(ctx, "conmon", cfg.Runtime.Conmon, "runtime.conmon", host.CommandTimeout)
}

// binary checks that path is an executable file that answers --version.
func binary(ctx context.Context, name, path, key string, timeout time.Duration) Result {
	install, reinstall := "install it", "reinstall it"
	if pkg, ok := debianPackages[filepath.Base(path)]; ok {
		install = fmt.Sprintf("`apt-get install %s`", pkg)
		reinstall = fmt.Sprintf("`apt-get install --reinstall %s`", pkg)
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fail(name, fmt.Sprintf("%s, or set %s to where it is", install, key), "%s does not exist", path)
	case err != nil:
		return fail(name, fmt.Sprintf("make %s readable, or set %s", path, key), "%v", err)
	case fi.IsDir() || fi.Mode().Perm()&0o111 == 0:
		return fail(name, fmt.Sprintf("`chmod 0755 %s`, or set %s to the binary", path, key), "%s is not an executable file", path)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
	if err != nil {
		detail := fmt.Sprintf("`%s --version` failed: %v", path, err)
		if l := firstLine(string(out)); l != "" {
			detail += ": " + l
		}
		return fail(name, fmt.Sprintf("%s, or set %s to a working binary", reinstall, key), "%s", detail)
	}
	v := firstLine(string(out))
	if v == "" {
		v = "no version printed"
	}
	return ok(name, "%s: %s", path, v)
}
