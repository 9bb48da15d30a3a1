// Command berth-critest runs cri-tools' critest against Berth on the test
// rig, as `make critest` and `make bench-critest` do:
//
//	berth-critest run   [--berth bin/berth] [--out _output/critest] [--skips test/critest/SKIPS.md]
//	berth-critest bench [--berth bin/berth] [--out _output/bench] [--containerd=true]
//	berth-critest node-e2e [--berth bin/berth] [--out _output/node-e2e] [--skips test/nodee2e/SKIPS.md] [--focus RE] [--skip RE]
//
// run starts the rig's registry (every image critest pulls, under the names
// it pulls them by), a bridge CNI network on a free 10.x subnet and a Berth
// daemon, all in a temp dir; runs the conformance suite with `critest
// -parallel 2`, skipping exactly the specs of SKIPS.md; prints passed,
// failed and skipped from the JUnit report; cleans up; and exits 1 on any
// failure.
//
// bench runs `critest -benchmark` against Berth and then, with the same
// registry and network, against containerd 1.6 (runc, cgroupfs), and
// prints the medians of each operation side by side.
//
// node-e2e runs Kubernetes' node e2e suite (e2e_node.test and kubelet,
// built by make node-e2e-build) against Berth on the same kind of rig, with
// the node e2e images' stand-ins pushed too: the suite starts etcd, an API
// server and a kubelet whose runtime is the run's Berth. See
// test/nodee2e/NOTES.md.
//
// Results, logs and the JUnit report go to --out. Needs root, critest,
// ginkgo, crictl and ipcmk (make deps).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/berth-dev/berth/test/rig"
)

type options struct {
	berth    string
	out      string
	skips    string
	critest  string
	imageDir string
	parallel int
	timeout  time.Duration
	verbose  bool
	keep     bool

	// bench
	containerd bool
	samples    int

	// node-e2e
	e2eBin      string
	focus, skip string
}

const usage = `usage:
  berth-critest run   [flags]   conformance suite against berth
  berth-critest bench [flags]   critest -benchmark against berth (and containerd)
  berth-critest node-e2e [flags] Kubernetes' node e2e suite (e2e_node.test) against berth
flags of either: berth-critest <command> -h
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet("berth-critest "+cmd, flag.ExitOnError)
	o := &options{}
	fs.StringVar(&o.berth, "berth", "bin/berth", "berth binary under test")
	fs.StringVar(&o.critest, "critest", "critest", "critest binary (cri-tools v1.37.0)")
	fs.StringVar(&o.imageDir, "image-dir", rig.DefaultImageDir(), "where the rig builds its images (a build is reused)")
	fs.BoolVar(&o.verbose, "v", false, "stream critest's output, not only into the log")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (runtime roots, registry) for inspection")
	var run func(context.Context, *options) (int, error)
	switch cmd {
	case "run":
		fs.StringVar(&o.out, "out", "_output/critest", "directory for junit.xml, critest.log, berth.log, summary.txt")
		fs.StringVar(&o.skips, "skips", "test/critest/SKIPS.md", "the skip list")
		fs.IntVar(&o.parallel, "parallel", 2, "critest -parallel (at least 2: 1 is not a supported mode here)")
		fs.DurationVar(&o.timeout, "timeout", 45*time.Minute, "Ginkgo's suite timeout")
		fs.StringVar(&o.focus, "focus", "", "run only the specs this Ginkgo regex matches (the rest count as skipped), e.g. NRI")
		run = runSuite
	case "bench":
		fs.StringVar(&o.out, "out", "_output/bench", "directory for each runtime's results and summary.txt")
		fs.BoolVar(&o.containerd, "containerd", true, "benchmark containerd too, for comparison")
		fs.IntVar(&o.samples, "n", 30, "samples of each pod, container and image lifecycle")
		fs.DurationVar(&o.timeout, "timeout", 20*time.Minute, "Ginkgo's suite timeout, per runtime")
		run = runBench
	case "node-e2e":
		fs.StringVar(&o.out, "out", "_output/node-e2e", "directory for junit.xml, node-e2e.log, kubelet.log, berth.log, summary.txt")
		fs.StringVar(&o.skips, "skips", "test/nodee2e/SKIPS.md", "the skip list")
		fs.StringVar(&o.e2eBin, "e2e-bin", "/var/cache/berth/node-e2e/bin", "where make node-e2e-build put e2e_node.test, kubelet and agnhost")
		fs.StringVar(&o.focus, "focus", envOr("NODE_E2E_FOCUS", defaultNodeFocus), "Ginkgo focus regex ($NODE_E2E_FOCUS)")
		fs.StringVar(&o.skip, "skip", envOr("NODE_E2E_SKIP", defaultNodeSkip), "Ginkgo skip regex, to which SKIPS.md's rows are added ($NODE_E2E_SKIP)")
		fs.IntVar(&o.parallel, "parallel", 1, "Ginkgo processes (above 1 runs the suite through the ginkgo CLI)")
		fs.DurationVar(&o.timeout, "timeout", 3*time.Hour, "Ginkgo's suite timeout")
		run = runNodeE2E
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "berth-critest: unknown command %q\n%s", cmd, usage)
		os.Exit(2)
	}
	_ = fs.Parse(os.Args[2:])
	for _, p := range []*string{&o.berth, &o.out, &o.skips, &o.imageDir, &o.e2eBin} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				fatal(err)
			}
			*p = abs
		}
	}
	if cmd == "run" && o.parallel < 2 {
		fatal(fmt.Errorf("-parallel %d: use 2 or more (critest -parallel 1 misbehaves)", o.parallel))
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	start := time.Now()
	code, err := run(ctx, o)
	if err != nil {
		logf("error: %v", err)
		if code == 0 {
			code = 1
		}
	}
	logf("done in %s, exit %d", time.Since(start).Round(time.Second), code)
	if closingLine != "" {
		// Last, alone on its line: the count a CI reader looks for.
		fmt.Println(closingLine)
	}
	os.Exit(code)
}

// closingLine is set by a run that got as far as counting the specs.
var closingLine string

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func logf(format string, args ...any) {
	fmt.Printf("berth-critest: "+format+"\n", args...)
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "berth-critest: %v\n", err)
	os.Exit(2)
}
