package sandbox

import (
	"strings"
	"testing"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
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
