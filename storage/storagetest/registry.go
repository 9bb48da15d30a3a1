package storagetest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/bcrypt"
)

const registryBinary = "/usr/bin/docker-registry"

// Registry is a docker-registry (distribution 2.8) serving plain HTTP on a
// free 127.0.0.1 port, with its access log captured.
type Registry struct {
	Addr string // 127.0.0.1:port
	dir  string
	log  *SyncBuffer
	// creds is user:password when the registry requires basic auth.
	creds string
}

// RegistryOption configures StartRegistry.
type RegistryOption func(t testing.TB, r *Registry) string

// WithBasicAuth makes the registry require user and password (htpasswd).
func WithBasicAuth(user, password string) RegistryOption {
	return func(t testing.TB, r *Registry) string {
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(r.dir, "htpasswd")
		writeFile(t, path, []byte(user+":"+string(hash)+"\n"))
		r.creds = user + ":" + password
		return fmt.Sprintf("auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n", path)
	}
}

// StartRegistry starts a registry that stops when the test ends. It skips
// the test if docker-registry or skopeo is missing.
func StartRegistry(t testing.TB, opts ...RegistryOption) *Registry {
	t.Helper()
	for _, bin := range []string{registryBinary, "skopeo"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed", bin)
		}
	}
	dir := t.TempDir()
	r := &Registry{Addr: FreeAddr(t), dir: dir, log: &SyncBuffer{}}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "data"), r.Addr)
	for _, o := range opts {
		cfg += o(t, r)
	}
	cfgPath := filepath.Join(dir, "config.yml")
	writeFile(t, cfgPath, []byte(cfg))
	cmd := exec.Command(registryBinary, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = r.log, r.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start registry: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + r.Addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry on %s not ready: %v\n%s", r.Addr, err, r.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Push copies a built image to docker://<registry>/<dest> with skopeo.
func (r *Registry) Push(t testing.TB, b Built, dest string) {
	t.Helper()
	policy := filepath.Join(r.dir, "policy.json")
	writeFile(t, policy, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`))
	args := []string{"--policy", policy, "copy", "--quiet", "--dest-tls-verify=false"}
	if r.creds != "" {
		args = append(args, "--dest-creds", r.creds)
	}
	args = append(args, "oci:"+b.Dir+":"+b.Tag, "docker://"+r.Addr+"/"+dest)
	out, err := exec.Command("skopeo", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("push %s to %s/%s: %v\n%s", b.Tag, r.Addr, dest, err, out)
	}
}

// BlobGets counts the GET requests of a blob in the access log.
func (r *Registry) BlobGets(d digest.Digest) int {
	n := 0
	for _, line := range strings.Split(r.log.String(), "\n") {
		if strings.Contains(line, `"GET /v2/`) && strings.Contains(line, "/blobs/"+d.String()) {
			n++
		}
	}
	return n
}

// Log is the registry's output so far.
func (r *Registry) Log() string { return r.log.String() }

// FreeAddr returns a 127.0.0.1 address with a port nothing listens on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// WriteFile writes a file for a test (registries.conf, policy.json, ...).
func WriteFile(t testing.TB, path, content string) string {
	t.Helper()
	writeFile(t, path, []byte(content))
	return path
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
