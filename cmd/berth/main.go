// Command berth is the Berth CRI daemon and its operator subcommands.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"go.podman.io/storage/pkg/reexec"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/version"
)

const usage = `berth — a Kubernetes container runtime (CRI server)

Usage:
  berth [flags]           serve the CRI on --listen
  berth config [flags]    print the effective configuration as commented TOML
  berth check [flags]     check that this node is ready for berth (no daemon needed)
  berth status [flags]    ask the running daemon for its conditions, pods and storage
  berth version           print the version

Flags:
`

func main() {
	// containers/storage re-executes this binary to unpack layers in a
	// chroot; such a child runs its task here and never reaches the CLI.
	if reexec.Init() {
		return
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("berth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	flags := config.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "berth %s: unexpected argument %q\n", cmd, fs.Arg(0))
		return 2
	}

	switch cmd {
	case "version":
		fmt.Fprintf(stdout, "%s version %s (commit %s)\n", version.Name, version.Version, version.GitCommit)
		return 0
	case "config":
		cfg, _, err := config.LoadWithFlags(fs, flags)
		if err != nil {
			fmt.Fprintf(stderr, "berth: %v\n", err)
			return 1
		}
		if err := config.Write(stdout, cfg); err != nil {
			fmt.Fprintf(stderr, "berth: %v\n", err)
			return 1
		}
		return 0
	case "check":
		return runCheck(fs, flags, stdout)
	case "status":
		return runStatus(fs, flags, stdout, stderr)
	case "serve":
		cfg, path, err := config.LoadWithFlags(fs, flags)
		if err != nil {
			fmt.Fprintf(stderr, "berth: %v\n", err)
			return 1
		}
		load := func() (*config.Config, error) {
			c, _, err := config.LoadWithFlags(fs, flags)
			return c, err
		}
		if err := serve(cfg, path, load, stderr); err != nil {
			fmt.Fprintf(stderr, "berth: %v\n", err)
			return 1
		}
		return 0
	default:
		fmt.Fprintf(stderr, "berth: unknown command %q\n", cmd)
		fs.Usage()
		return 2
	}
}
