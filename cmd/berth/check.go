package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/berth-dev/berth/check"
	"github.com/berth-dev/berth/config"
)

// runCheck is `berth check`: the node readiness check against the
// effective configuration. It needs no daemon. It exits 0 when no check
// failed, 1 otherwise.
func runCheck(fs *flag.FlagSet, flags *config.Flags, stdout io.Writer) int {
	cfg, path, err := config.LoadWithFlags(fs, flags)
	if err != nil {
		fmt.Fprintf(stdout, "FAIL config: %v; fix: correct the file (`berth config` prints every key with its meaning)\n", err)
		return 1
	}
	results := []check.Result{configResult(flags, path)}
	results = append(results, check.Run(context.Background(), cfg, check.RealHost())...)
	if !check.Print(stdout, results) {
		return 1
	}
	return 0
}

func configResult(flags *config.Flags, path string) check.Result {
	r := check.Result{Name: "config", Status: check.OK, Detail: path}
	if path == "" {
		def, _ := flags.ConfigPath()
		r.Detail = fmt.Sprintf("built-in defaults (no %s)", def)
	}
	if dir := flags.ConfigDir(); dir != "" {
		drops, _ := filepath.Glob(filepath.Join(dir, "*.toml"))
		r.Detail += fmt.Sprintf(", %d drop-ins in %s", len(drops), dir)
	}
	return r
}
