package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Network is the bridge CNI network of one runtime of the bench: its own
// bridge, subnet and network name (all three the same short name), with a
// conflist in ConfDir and host-local's reservations in IPAMDir.
type Network struct {
	Name    string // network and bridge name
	Subnet  *net.IPNet
	ConfDir string
	IPAMDir string
}

// NewNetwork writes the conflist under dir: bridge (gateway, masquerade,
// hairpin) on host-local and portmap, what `make install` lays down. Each
// runtime brings up lo its own way: containerd runs the loopback plugin for
// every pod, Berth sets lo up when it makes the netns. It fails when the subnet overlaps an address or route of the host.
func NewNetwork(dir, name, subnet string) (*Network, error) {
	_, sn, err := net.ParseCIDR(subnet)
	if err != nil {
		return nil, err
	}
	if err := subnetFree(sn); err != nil {
		return nil, err
	}
	n := &Network{Name: name, Subnet: sn, ConfDir: filepath.Join(dir, "net.d"), IPAMDir: filepath.Join(dir, "ipam")}
	data, err := Conflist(name, sn.String(), n.IPAMDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(n.ConfDir, 0o755); err != nil {
		return nil, err
	}
	return n, os.WriteFile(filepath.Join(n.ConfDir, "10-"+name+".conflist"), data, 0o644)
}

// Conflist is the CNI network configuration of NewNetwork.
func Conflist(name, subnet, ipamDir string) ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"cniVersion": "1.0.0",
		"name":       name,
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": name, "isGateway": true, "ipMasq": true, "hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"dataDir": ipamDir,
					"ranges":  [][]map[string]string{{{"subnet": subnet}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}, "", "  ")
}

// subnetFree fails if sn overlaps an IPv4 address of the host (the bridge
// of an earlier run that was not cleaned up shows here too).
func subnetFree(sn *net.IPNet) error {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && (sn.Contains(ipn.IP) || ipn.Contains(sn.IP)) {
			return fmt.Errorf("subnet %s overlaps %s on this host (a leftover bridge? ip -4 addr)", sn, ipn)
		}
	}
	return nil
}

// Remove deletes what the plugins leave behind: the masquerade rules and
// chains of pods that were not torn down (the bridge plugin's, commented
// with the network name), the bridge, and the IP reservations. It returns
// how many rules it had to delete, which should be none.
func (n *Network) Remove() (leftRules int, err error) {
	var errs []error
	leftRules, err = removeMasquerade(n.Name)
	if err != nil {
		errs = append(errs, err)
	}
	if _, ierr := net.InterfaceByName(n.Name); ierr == nil {
		if out, err := exec.Command("ip", "link", "del", n.Name).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("delete bridge %s: %w: %s", n.Name, err, strings.TrimSpace(string(out))))
		}
	}
	if err := os.RemoveAll(n.IPAMDir); err != nil {
		errs = append(errs, err)
	}
	return leftRules, errors.Join(errs...)
}

// removeMasquerade deletes the nat POSTROUTING rules the bridge plugin
// made for network name (`-m comment --comment "name: \"<name>\" id: ..."`)
// and the per-pod chains they jump to.
func removeMasquerade(name string) (int, error) {
	out, err := exec.Command("iptables", "-w", "-t", "nat", "-S", "POSTROUTING").Output()
	if err != nil {
		return 0, fmt.Errorf("iptables -t nat -S POSTROUTING: %w", err)
	}
	rules, chains := MasqueradeRules(string(out), name)
	var errs []error
	for _, r := range rules {
		args := append([]string{"-w", "-t", "nat", "-D"}, r[1:]...)
		if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out))))
		}
	}
	for _, c := range chains {
		_ = exec.Command("iptables", "-w", "-t", "nat", "-F", c).Run()
		_ = exec.Command("iptables", "-w", "-t", "nat", "-X", c).Run()
	}
	return len(rules), errors.Join(errs...)
}

// MasqueradeRules picks out of `iptables -S POSTROUTING` output the rules
// commented with network name, split into arguments (quotes removed), and
// the chains they jump to.
func MasqueradeRules(save, name string) (rules [][]string, chains []string) {
	marker := fmt.Sprintf(`name: \"%s\" `, name)
	for _, line := range strings.Split(save, "\n") {
		if !strings.HasPrefix(line, "-A POSTROUTING") || !strings.Contains(line, marker) {
			continue
		}
		args := splitQuoted(line)
		rules = append(rules, args)
		for i, a := range args {
			if a == "-j" && i+1 < len(args) && strings.HasPrefix(args[i+1], "CNI-") {
				chains = append(chains, args[i+1])
			}
		}
	}
	return rules, chains
}

// splitQuoted splits an iptables -S line into arguments: double quotes
// group, \" is a literal quote.
func splitQuoted(s string) []string {
	var args []string
	var cur strings.Builder
	in, have := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && s[i+1] == '"':
			cur.WriteByte('"')
			have = true
			i++
		case c == '"':
			in = !in
			have = true
		case c == ' ' && !in:
			if have {
				args = append(args, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		args = append(args, cur.String())
	}
	return args
}
