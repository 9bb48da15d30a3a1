package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Paths of the files every container of the pod gets.
func (s *Sandbox) ResolvPath() string   { return filepath.Join(s.Dir, "resolv.conf") }
func (s *Sandbox) HostsPath() string    { return filepath.Join(s.Dir, "hosts") }
func (s *Sandbox) HostnamePath() string { return filepath.Join(s.Dir, "hostname") }
func (s *Sandbox) ShmPath() string      { return filepath.Join(s.Dir, "shm") }

// Hostname is the pod's host name: the configured one, or the node's for
// pods in the host's network namespace that set none.
func (s *Sandbox) Hostname() (string, error) {
	if h := s.Config.GetHostname(); h != "" {
		return h, nil
	}
	return os.Hostname()
}

// The node's files that pods copy: the resolv.conf of a pod that brings no
// DNS config, the hosts file of a pod in the node's network namespace. The
// daemon passes them to WriteResolvConf and WriteHostsAndHostname; tests
// pass their own.
const (
	NodeResolvConf = "/etc/resolv.conf"
	NodeHosts      = "/etc/hosts"
)

// WriteResolvConf writes the pod's resolv.conf from its DNSConfig, or copies
// the node's, nodeResolvConf, when the pod has none. A node without one
// gives an empty file.
func (s *Sandbox) WriteResolvConf(nodeResolvConf string) error {
	dns := s.Config.GetDnsConfig()
	var content []byte
	if len(dns.GetServers())+len(dns.GetSearches())+len(dns.GetOptions()) == 0 {
		b, err := os.ReadFile(nodeResolvConf)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("read node resolv.conf: %w", err)
		}
		content = b
	} else {
		content = resolvConf(dns)
	}
	return writeFile(s.ResolvPath(), content)
}

func resolvConf(dns *runtime.DNSConfig) []byte {
	var b bytes.Buffer
	if len(dns.GetSearches()) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(dns.GetSearches(), " "))
	}
	for _, srv := range dns.GetServers() {
		fmt.Fprintf(&b, "nameserver %s\n", srv)
	}
	if len(dns.GetOptions()) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(dns.GetOptions(), " "))
	}
	return b.Bytes()
}

// WriteHostsAndHostname writes /etc/hosts (localhost and the pod's own name
// on its primary IP) and /etc/hostname. Pods in the node's network namespace
// get a copy of the node's hosts file, nodeHosts, as they share its
// addresses.
func (s *Sandbox) WriteHostsAndHostname(nodeHosts string) error {
	hostname, err := s.Hostname()
	if err != nil {
		return fmt.Errorf("pod hostname: %w", err)
	}
	if err := writeFile(s.HostnamePath(), []byte(hostname+"\n")); err != nil {
		return err
	}
	if s.HostNetwork() {
		b, err := os.ReadFile(nodeHosts)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("read node hosts file: %w", err)
		}
		return writeFile(s.HostsPath(), b)
	}
	return writeFile(s.HostsPath(), hostsFile(hostname, s.IPs()))
}

func hostsFile(hostname string, ips []string) []byte {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
	if len(ips) > 0 {
		fmt.Fprintf(&b, "%s\t%s\n", ips[0], hostname)
	}
	return b.Bytes()
}

func writeFile(path string, content []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, content, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
