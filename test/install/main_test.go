// Package install tests what an operator of a node runs: `make install`
// into a DESTDIR (every file, its mode, an admin's edits kept), the systemd
// unit under systemd-analyze verify, `berth check` on this machine and
// `berth status` against a real daemon.
package install

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// repo is the repository root; berth is the binary under test, bin/berth,
// which `make install` installs.
var repo, berth string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var err error
	if repo, err = filepath.Abs("../.."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	berth = filepath.Join(repo, "bin", "berth")
	// `make integration` has just built bin/berth and says so; rebuilding
	// it here could rewrite a binary other test packages are running.
	if bin := os.Getenv("BERTH_BINARY"); bin == "" || bin != berth {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "build")
		cmd.Dir = repo
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "make build:", err)
			return 1
		}
	}
	if _, err := os.Stat(berth); err != nil {
		fmt.Fprintln(os.Stderr, "no berth binary to install:", err)
		return 1
	}
	return m.Run()
}

// run runs a command and returns its stdout, its stderr and its exit code;
// a command that could not run at all fails the test.
func run(t *testing.T, dir string, name string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("%s %q: %v", name, args, err)
	}
	return out.String(), errb.String(), 0
}

// makeInstall runs `make install` with the given variables, without
// rebuilding bin/berth (-o build: TestMain built it).
func makeInstall(t *testing.T, vars ...string) string {
	t.Helper()
	args := append([]string{"--no-print-directory", "-o", "build", "install"}, vars...)
	out, errOut, code := run(t, repo, "make", args...)
	if code != 0 {
		t.Fatalf("make install %q: exit %d\n%s%s", vars, code, out, errOut)
	}
	return out
}
