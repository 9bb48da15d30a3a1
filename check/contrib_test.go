package check

// The files under contrib/ that `make install` lays down, kept in step
// with the code they describe.

import (
	"bufio"
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/network"
)

var update = flag.Bool("update", false, "rewrite contrib/cni/"+DefaultConflistName+" from network.DefaultConflist")

const contrib = "../contrib"

func TestContribConflistIsDefaultConflist(t *testing.T) {
	path := filepath.Join(contrib, "cni", DefaultConflistName)
	want := network.DefaultConflist(DefaultBridge, DefaultSubnet)
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from network.DefaultConflist(%q, %q); regenerate it with `go test ./check -run ConflistIsDefault -update`\ngot:\n%s\nwant:\n%s",
			path, DefaultBridge, DefaultSubnet, got, want)
	}
	if _, err := network.LoadConfFile(path); err != nil {
		t.Errorf("libcni rejects %s: %v", path, err)
	}
}

// The completion offers every flag berth takes, and no other.
func TestCompletionFlags(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(contrib, "completion", "berth.bash"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)local flags="([^"]*)"`).FindSubmatch(data)
	if m == nil {
		t.Fatal(`no local flags="..." in berth.bash`)
	}
	got := strings.Fields(string(m[1]))
	slices.Sort(got)

	fs := flag.NewFlagSet("berth", flag.ContinueOnError)
	config.RegisterFlags(fs)
	want := []string{"--help"}
	fs.VisitAll(func(f *flag.Flag) { want = append(want, "--"+f.Name) })
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("berth.bash completes flags\n%v\nberth takes\n%v", got, want)
	}
	for _, sub := range []string{"check", "config", "status", "version"} {
		if !regexp.MustCompile(`subcommands="[^"]*\b` + sub + `\b`).Match(data) {
			t.Errorf("berth.bash does not complete the %s subcommand", sub)
		}
	}
}

func TestCrictlYAML(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(contrib, "crictl.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "unix://" + config.Default().API.Listen
	for _, want := range []string{
		"runtime-endpoint: " + endpoint + "\n",
		"image-endpoint: " + endpoint + "\n",
		"timeout: 10\n",
	} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("crictl.yaml lacks %q", want)
		}
	}
}

func TestContainersDefaults(t *testing.T) {
	if _, err := signature.NewPolicyFromFile(filepath.Join(contrib, "containers", "policy.json")); err != nil {
		t.Errorf("policy.json: %v", err)
	}
	path, _ := filepath.Abs(filepath.Join(contrib, "containers", "registries.conf"))
	sys := &types.SystemContext{SystemRegistriesConfPath: path, SystemRegistriesConfDirPath: t.TempDir()}
	search, err := sysregistriesv2.UnqualifiedSearchRegistries(sys)
	if err != nil {
		t.Fatalf("registries.conf: %v", err)
	}
	if !slices.Equal(search, []string{"docker.io"}) {
		t.Errorf("registries.conf searches %v, want docker.io", search)
	}
	mode, err := sysregistriesv2.GetShortNameMode(sys)
	if err != nil || mode != types.ShortNameModePermissive {
		t.Errorf("registries.conf short-name-mode = %v (%v), want permissive", mode, err)
	}
}

// The unit says what the issue asks of it; systemd-analyze verify (run by
// test/install on the installed unit) checks that systemd accepts it.
func TestSystemdUnit(t *testing.T) {
	f, err := os.Open(filepath.Join(contrib, "systemd", "berth.service"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, _ := strings.Cut(line, "=")
			got[section+"."+k] = append(got[section+"."+k], v)
		}
	}
	for key, want := range map[string]string{
		"Unit.After":             "network-online.target",
		"Unit.Wants":             "network-online.target",
		"Service.Type":           "notify",
		"Service.ExecStart":      "@BINDIR@/berth",
		"Service.ExecReload":     "/bin/kill -s HUP $MAINPID",
		"Service.KillMode":       "process",
		"Service.Restart":        "on-failure",
		"Service.Delegate":       "yes",
		"Service.LimitNOFILE":    "1048576",
		"Service.LimitNPROC":     "infinity",
		"Service.LimitCORE":      "infinity",
		"Service.TasksMax":       "infinity",
		"Service.OOMScoreAdjust": "-999",
		"Install.WantedBy":       "multi-user.target",
	} {
		if v := got[key]; len(v) != 1 || v[0] != want {
			t.Errorf("%s = %q, want %q", key, v, want)
		}
	}
	for _, key := range []string{"Unit.Description", "Unit.Documentation", "Service.RestartSec"} {
		if len(got[key]) != 1 {
			t.Errorf("%s is not set once: %q", key, got[key])
		}
	}
}
