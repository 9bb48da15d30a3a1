package network

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/namespaces"
)

const debianPlugins = "/usr/lib/cni"

// testEnv is one isolated CNI setup: its own conf, cache, host-local data
// and netns dirs, a bridge name and a 10.x.y.0/24 subnet nobody else uses.
type testEnv struct {
	confDir, cacheDir, dataDir, nsDir, pluginDir string
	bridge, subnet                               string
	ipnet                                        *net.IPNet
}

func requireEnv(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, p := range []string{"bridge", "host-local", "portmap", "loopback"} {
		if _, err := os.Stat(filepath.Join(debianPlugins, p)); err != nil {
			t.Skipf("CNI plugin %s not installed: %v", p, err)
		}
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("iptables not installed")
	}
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	requireEnv(t)
	base := t.TempDir()
	e := &testEnv{
		confDir:   filepath.Join(base, "net.d"),
		cacheDir:  filepath.Join(base, "cache"),
		dataDir:   filepath.Join(base, "ipam"),
		nsDir:     filepath.Join(base, "ns"),
		pluginDir: filepath.Join(base, "bin"),
		bridge:    fmt.Sprintf("bt%08x", rand.Uint32()),
	}
	for _, d := range []string{e.confDir, e.pluginDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.subnet = freeSubnet(t)
	_, e.ipnet, _ = net.ParseCIDR(e.subnet)
	t.Cleanup(func() {
		// The bridge plugin creates the bridge and never removes it.
		_ = exec.Command("ip", "link", "del", e.bridge).Run()
	})
	return e
}

// freeSubnet picks a 10.x.y.0/24 that no address or route on the host uses.
func freeSubnet(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "-4", "route", "show", "table", "all").CombinedOutput()
	if err != nil {
		t.Fatalf("ip route: %v: %s", err, out)
	}
	used := string(out)
	for range 100 {
		prefix := fmt.Sprintf("10.%d.%d.", 100+rand.IntN(150), rand.IntN(256))
		if !strings.Contains(used, prefix) && !strings.Contains(used, "10.0.0.0/8") {
			return prefix + "0/24"
		}
	}
	t.Fatal("no free 10.x.y.0/24")
	return ""
}

// conflist is DefaultConflist with the env's data dir and a network name;
// extra plugin configs are appended.
func (e *testEnv) conflist(t *testing.T, name string, extra ...map[string]any) []byte {
	t.Helper()
	var conf map[string]any
	if err := json.Unmarshal(DefaultConflist(e.bridge, e.subnet), &conf); err != nil {
		t.Fatal(err)
	}
	conf["name"] = name
	plugins := conf["plugins"].([]any)
	plugins[0].(map[string]any)["ipam"].(map[string]any)["dataDir"] = e.dataDir
	for _, p := range extra {
		plugins = append(plugins, p)
	}
	conf["plugins"] = plugins
	b, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeConf drops a config into the conf dir atomically, as a network
// provider should.
func (e *testEnv) writeConf(t *testing.T, file string, data []byte) {
	t.Helper()
	tmp := filepath.Join(e.confDir, ".tmp-"+file)
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(e.confDir, file)); err != nil {
		t.Fatal(err)
	}
}

func (e *testEnv) manager(t *testing.T, pluginDirs ...string) *Manager {
	t.Helper()
	if len(pluginDirs) == 0 {
		pluginDirs = []string{debianPlugins}
	}
	m, err := New(Options{
		ConfDir: e.confDir, PluginDirs: pluginDirs, CacheDir: e.cacheDir,
		Logger:       testLogger(t),
		PollInterval: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newPod pins a fresh netns for a pod; the pin is removed at cleanup.
func (e *testEnv) newPod(t *testing.T, name string) Pod {
	t.Helper()
	id := fmt.Sprintf("%s-%016x", name, rand.Uint64())
	p, err := namespaces.Pin(context.Background(), id, namespaces.Options{Dir: e.nsDir, NewNet: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = namespaces.Unpin(p) })
	return Pod{ID: id, Name: name, Namespace: "default", UID: "uid-" + id, NetNS: p.Net}
}

// reservations maps the addresses host-local holds in network to the
// container ids holding them.
func (e *testEnv) reservations(t *testing.T, network string) map[string]string {
	t.Helper()
	dir := filepath.Join(e.dataDir, network)
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, en := range entries {
		if net.ParseIP(en.Name()) == nil {
			continue // lock, last_reserved_ip.0
		}
		b, err := os.ReadFile(filepath.Join(dir, en.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[en.Name()], _, _ = strings.Cut(string(b), "\n")
		out[en.Name()] = strings.TrimSpace(out[en.Name()])
	}
	return out
}

// natRules returns the nat table rules that mention s.
func natRules(t *testing.T, s string) []string {
	t.Helper()
	out, err := exec.Command("iptables", "-w", "-t", "nat", "-S").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables -t nat -S: %v: %s", err, out)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, s) {
			lines = append(lines, l)
		}
	}
	return lines
}

func ping(t *testing.T, ip string) error {
	t.Helper()
	if _, err := exec.LookPath("ping"); err != nil {
		t.Log("ping not installed (apt-get install iputils-ping); skipping the ping")
		return nil
	}
	out, err := exec.Command("ping", "-c1", "-W2", ip).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ping %s: %v: %s", ip, err, bytes.TrimSpace(out))
	}
	return nil
}

// eventually polls cond for up to a minute: generous, so that a busy
// machine makes a test slow rather than failing it.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The test binary doubles as a CNI plugin: linked into a plugin dir as
// fake-ok or fake-fail, TestMain runs fakePlugin instead of the tests.
func TestMain(m *testing.M) {
	switch filepath.Base(os.Args[0]) {
	case "fake-ok", "fake-fail":
		os.Exit(fakePlugin(filepath.Base(os.Args[0])))
	}
	hostportChains := sharedNATChains()
	code := m.Run()
	removeSharedNATChains(hostportChains)
	os.Exit(code)
}

// The portmap plugin makes shared CNI-HOSTPORT-* chains on first use and
// never removes them; the tests remove those they caused.
var hostportChains = []string{"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"}

func sharedNATChains() map[string]bool {
	out, _ := exec.Command("iptables", "-w", "-t", "nat", "-S").Output()
	had := map[string]bool{}
	for _, c := range hostportChains {
		had[c] = strings.Contains(string(out), "-N "+c+"\n")
	}
	return had
}

func removeSharedNATChains(had map[string]bool) {
	out, err := exec.Command("iptables", "-w", "-t", "nat", "-S").Output()
	if err != nil {
		return
	}
	for _, c := range hostportChains {
		if had[c] || !strings.Contains(string(out), "-N "+c+"\n") {
			continue
		}
		// Drop the jumps into the chain from the built-in chains.
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "-A ") && strings.Contains(l, "-j "+c) {
				_ = runQuiet("sh", "-c", "iptables -w -t nat -D "+strings.TrimPrefix(l, "-A "))
			}
		}
	}
	for _, c := range hostportChains {
		if !had[c] {
			_ = runQuiet("iptables", "-w", "-t", "nat", "-F", c)
		}
	}
	for _, c := range hostportChains {
		if !had[c] {
			_ = runQuiet("iptables", "-w", "-t", "nat", "-X", c)
		}
	}
}

// fakePlugin appends "<tag> <command> <CNI_ARGS>" to the config's logFile,
// passes prevResult through on ADD (fake-ok) or fails ADD (fake-fail).
func fakePlugin(name string) int {
	cmd := os.Getenv("CNI_COMMAND")
	if cmd == "VERSION" {
		fmt.Println(`{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}`)
		return 0
	}
	var conf struct {
		CNIVersion string          `json:"cniVersion"`
		Tag        string          `json:"tag"`
		LogFile    string          `json:"logFile"`
		PrevResult json.RawMessage `json:"prevResult"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&conf); err != nil {
		fmt.Printf(`{"cniVersion":"1.0.0","code":6,"msg":%q}`+"\n", err.Error())
		return 1
	}
	if f, err := os.OpenFile(conf.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
		fmt.Fprintf(f, "%s %s %s\n", conf.Tag, cmd, os.Getenv("CNI_ARGS"))
		f.Close()
	}
	if cmd != "ADD" {
		return 0
	}
	if name == "fake-fail" {
		fmt.Printf(`{"cniVersion":%q,"code":999,"msg":"%s refuses ADD"}`+"\n", conf.CNIVersion, conf.Tag)
		return 1
	}
	if len(conf.PrevResult) == 0 {
		fmt.Printf(`{"cniVersion":%q}`+"\n", conf.CNIVersion)
		return 0
	}
	var prev map[string]any
	_ = json.Unmarshal(conf.PrevResult, &prev)
	prev["cniVersion"] = conf.CNIVersion
	_ = json.NewEncoder(os.Stdout).Encode(prev)
	return 0
}

// installFakePlugins links the test binary into the env's plugin dir as
// fake-ok and fake-fail.
func (e *testEnv) installFakePlugins(t *testing.T) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"fake-ok", "fake-fail"} {
		if err := os.Symlink(self, filepath.Join(e.pluginDir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// fakeConf is the config of a fake plugin in a list.
func (e *testEnv) fakeConf(typ, tag string) map[string]any {
	return map[string]any{"type": typ, "tag": tag, "logFile": filepath.Join(e.pluginDir, "calls.log")}
}

// calls returns the fake plugins' log lines.
func (e *testEnv) calls(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.pluginDir, "calls.log"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func runQuiet(name string, args ...string) error {
	return exec.Command(name, args...).Run()
}
