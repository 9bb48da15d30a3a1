package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// netSeq gives every test network its own bridge and subnet, so tests and
// their daemons never share CNI state.
var netSeq atomic.Int32

// testNetwork is a bridge network of the test's own.
type testNetwork struct {
	confDir string // pass as --cni-config-dir
	ipamDir string // host-local's reservations
	bridge  string
	subnet  string // 10.199.N.0/24
}

// newTestNetwork writes a bridge + host-local + portmap + loopback conflist
// (what `make install` lays down) with host-local's reservations in a temp
// dir, and deletes the bridge when the test ends.
func newTestNetwork(t *testing.T) *testNetwork {
	t.Helper()
	n := (netSeq.Add(1)+int32(os.Getpid()%50)*4)%250 + 1
	dir := t.TempDir()
	tn := &testNetwork{
		confDir: filepath.Join(dir, "net.d"),
		ipamDir: filepath.Join(dir, "ipam"),
		bridge:  fmt.Sprintf("brt%d", n),
		subnet:  fmt.Sprintf("10.199.%d.0/24", n),
	}
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "berth-test",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": tn.bridge, "isGateway": true, "ipMasq": true, "hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"dataDir": tn.ipamDir,
					"ranges":  [][]map[string]string{{{"subnet": tn.subnet}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
			map[string]any{"type": "loopback"},
		},
	}
	b, _ := json.MarshalIndent(conf, "", "  ")
	writeFile(t, filepath.Join(tn.confDir, "10-berth-test.conflist"), string(b))
	// A run killed half-way (a ^C, a CI timeout) leaves its pods' bridge
	// and masquerade rules on the machine; the subnet comes round again in
	// a later run, whose leak checks must see only what it leaves itself.
	exec.Command("ip", "link", "del", tn.bridge).Run()
	flushMasquerade(t, tn)
	t.Cleanup(func() { exec.Command("ip", "link", "del", tn.bridge).Run() })
	return tn
}

// args are the daemon flags that select this network.
func (tn *testNetwork) args() []string { return []string{"--cni-config-dir", tn.confDir} }

// reservations lists host-local's reserved addresses.
func (tn *testNetwork) reservations(t *testing.T) []string {
	t.Helper()
	var ips []string
	entries, err := os.ReadDir(filepath.Join(tn.ipamDir, "berth-test"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range entries {
		if net.ParseIP(e.Name()) != nil {
			ips = append(ips, e.Name())
		}
	}
	return ips
}
