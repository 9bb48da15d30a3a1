package critest

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Network is a bridge CNI network of the run's own: a conflist in ConfDir
// (pass it as the runtime's CNI conf dir) with host-local's reservations in
// a dataDir next to it, on a 10.x subnet no interface or route of the host
// uses.
type Network struct {
	ConfDir string
	IPAMDir string
	Bridge  string
	Subnet  *net.IPNet
}

// NewNetwork writes the conflist under dir: bridge (gateway, masquerade,
// hairpin), portmap for hostPort and loopback, what `make install` lays
// down, named berth-critest.
func NewNetwork(dir, bridge string) (*Network, error) {
	subnet, err := FreeSubnet()
	if err != nil {
		return nil, err
	}
	n := &Network{
		ConfDir: filepath.Join(dir, "net.d"),
		IPAMDir: filepath.Join(dir, "ipam"),
		Bridge:  bridge,
		Subnet:  subnet,
	}
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "berth-critest",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": true, "hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"dataDir": n.IPAMDir,
					"ranges":  [][]map[string]string{{{"subnet": subnet.String()}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
			map[string]any{"type": "loopback"},
		},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(n.ConfDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(n.ConfDir, "10-berth-critest.conflist"), data, 0o644); err != nil {
		return nil, err
	}
	return n, nil
}

// Reset forgets host-local's reservations, so that a second runtime starts
// on a clean network.
func (n *Network) Reset() error {
	return os.RemoveAll(n.IPAMDir)
}

// Remove deletes the bridge, which the plugin leaves behind.
func (n *Network) Remove() error {
	if _, err := net.InterfaceByName(n.Bridge); err != nil {
		return nil
	}
	if out, err := exec.Command("ip", "link", "del", n.Bridge).CombinedOutput(); err != nil {
		return fmt.Errorf("delete bridge %s: %w: %s", n.Bridge, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// FreeSubnet picks a 10.N.0.0/24 (N from 200 down) that overlaps no address
// of the host's interfaces and no route.
func FreeSubnet() (*net.IPNet, error) {
	used, err := usedNets()
	if err != nil {
		return nil, err
	}
	for n := 200; n > 0; n-- {
		_, cand, _ := net.ParseCIDR(fmt.Sprintf("10.%d.0.0/24", n))
		free := true
		for _, u := range used {
			if u.Contains(cand.IP) || cand.Contains(u.IP) {
				free = false
				break
			}
		}
		if free {
			return cand, nil
		}
	}
	return nil, fmt.Errorf("no free 10.x.0.0/24 subnet")
}

// usedNets lists the networks of the host's addresses and IPv4 routes
// (the default route aside).
func usedNets() ([]*net.IPNet, error) {
	var used []*net.IPNet
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			used = append(used, &net.IPNet{IP: n.IP.Mask(n.Mask), Mask: n.Mask})
		}
	}
	// /proc/net/route: Iface Destination Gateway Flags RefCnt Use Metric
	// Mask ..., addresses in little-endian hex.
	data, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return used, nil
	}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		dst, mask := hexIP(f[1]), hexIP(f[7])
		if dst == nil || mask == nil || dst.IsUnspecified() {
			continue
		}
		used = append(used, &net.IPNet{IP: dst, Mask: net.IPMask(mask)})
	}
	return used, nil
}

func hexIP(s string) net.IP {
	var v uint32
	if _, err := fmt.Sscanf(s, "%08X", &v); err != nil {
		return nil
	}
	return net.IPv4(byte(v), byte(v>>8), byte(v>>16), byte(v>>24)).To4()
}
