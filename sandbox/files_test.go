package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/checkpoint"
)

func TestResolvConf(t *testing.T) {
	for _, tc := range []struct {
		name string
		dns  *runtime.DNSConfig
		want string
	}{
		{"servers only", &runtime.DNSConfig{Servers: []string{"10.0.0.10", "10.0.0.11"}},
			"nameserver 10.0.0.10\nnameserver 10.0.0.11\n"},
		{"everything", &runtime.DNSConfig{Servers: []string{"10.0.0.10"}, Searches: []string{"ns.svc.cluster.local", "svc.cluster.local"}, Options: []string{"ndots:5"}},
			"search ns.svc.cluster.local svc.cluster.local\nnameserver 10.0.0.10\noptions ndots:5\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(resolvConf(tc.dns)); got != tc.want {
				t.Errorf("resolvConf = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestHostsFile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ips     []string
		wantPod string
	}{
		{"with an ip", []string{"10.88.0.5", "fd00::5"}, "10.88.0.5\tweb-0\n"},
		{"without", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(hostsFile("web-0", tc.ips))
			if !strings.HasPrefix(got, "127.0.0.1\tlocalhost\n") {
				t.Errorf("hosts lacks localhost: %q", got)
			}
			if tc.wantPod != "" && !strings.HasSuffix(got, tc.wantPod) {
				t.Errorf("hosts = %q, want it to end with %q", got, tc.wantPod)
			}
			if tc.wantPod == "" && strings.Contains(got, "web-0") {
				t.Errorf("hosts names the pod without an ip: %q", got)
			}
		})
	}
}

// podWithFiles is a pod with cfg whose files go to a temp dir, and a node
// whose resolv.conf and hosts files are in another.
func podWithFiles(t *testing.T, cfg *runtime.PodSandboxConfig) (sb *Sandbox, nodeResolv, nodeHosts string) {
	t.Helper()
	node := t.TempDir()
	nodeResolv, nodeHosts = filepath.Join(node, "resolv.conf"), filepath.Join(node, "hosts")
	for p, content := range map[string]string{nodeResolv: "nameserver 192.0.2.53\n", nodeHosts: "192.0.2.1\tnode\n"} {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return New("pod1", "k8s_POD_a", cfg, "", "crun", t.TempDir(), checkpoint.Dir(t.TempDir())), nodeResolv, nodeHosts
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriteResolvConf(t *testing.T) {
	for _, tc := range []struct {
		name   string
		dns    *runtime.DNSConfig
		noNode bool // the node has no resolv.conf
		want   string
	}{
		{name: "the node's without DNS config", want: "nameserver 192.0.2.53\n"},
		{name: "empty on a node without one", noNode: true, want: ""},
		{name: "the pod's DNS config", dns: &runtime.DNSConfig{Servers: []string{"10.0.0.10"}}, want: "nameserver 10.0.0.10\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb, nodeResolv, _ := podWithFiles(t, &runtime.PodSandboxConfig{DnsConfig: tc.dns})
			if tc.noNode {
				nodeResolv = filepath.Join(t.TempDir(), "missing")
			}
			if err := sb.WriteResolvConf(nodeResolv); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, sb.ResolvPath()); got != tc.want {
				t.Errorf("resolv.conf = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestWriteHostsAndHostname(t *testing.T) {
	for _, tc := range []struct {
		name string
		ns   runtime.NamespaceMode
		want string // the end of the hosts file
	}{
		{"node network: the node's hosts", runtime.NamespaceMode_NODE, "192.0.2.1\tnode\n"},
		{"pod network: the pod's own", runtime.NamespaceMode_POD, "10.88.0.5\tweb-0\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb, _, nodeHosts := podWithFiles(t, &runtime.PodSandboxConfig{
				Hostname: "web-0",
				Linux: &runtime.LinuxPodSandboxConfig{SecurityContext: &runtime.LinuxSandboxSecurityContext{
					NamespaceOptions: &runtime.NamespaceOption{Network: tc.ns},
				}},
			})
			if err := sb.SetNetwork(true, []string{"10.88.0.5"}); err != nil {
				t.Fatal(err)
			}
			if err := sb.WriteHostsAndHostname(nodeHosts); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, sb.HostsPath()); !strings.HasSuffix(got, tc.want) {
				t.Errorf("hosts = %q, want it to end with %q", got, tc.want)
			}
			if got := readFile(t, sb.HostnamePath()); got != "web-0\n" {
				t.Errorf("hostname = %q", got)
			}
		})
	}
}
