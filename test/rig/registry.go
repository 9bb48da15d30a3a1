package rig

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// RegistryBinary is Debian's docker-registry (distribution 2.8).
const RegistryBinary = "/usr/bin/docker-registry"

// Registry is a docker-registry process serving the rig's images over plain
// HTTP on loopback.
type Registry struct {
	Addr    string // 127.0.0.1:PORT
	Dir     string // config.yml, data/ (blob storage) and the log
	LogPath string // the registry's stdout+stderr, including its access log

	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
	err  error         // cmd.Wait's result, valid after done
}

// RegistryOptions tune StartRegistryWith.
type RegistryOptions struct {
	// Addr is host:port to listen on; empty picks a free loopback port.
	Addr string
	// Detach puts the registry in its own session so that it outlives the
	// caller and ignores the terminal's ^C (berth-rig serve --daemon).
	Detach bool
}

// StartRegistry starts a registry on a free loopback port, storing blobs
// under dir, and returns once /v2/ answers.
func StartRegistry(ctx context.Context, dir string) (*Registry, error) {
	return StartRegistryWith(ctx, dir, RegistryOptions{})
}

// StartRegistryWith is StartRegistry with options.
func StartRegistryWith(ctx context.Context, dir string, opts RegistryOptions) (*Registry, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolve registry dir %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, fmt.Errorf("create registry dir: %w", err)
	}
	// A free port picked by listening on :0 can be taken by someone else
	// before the registry binds it; try a few.
	attempts := 1
	if opts.Addr == "" {
		attempts = 5
	}
	for i := 0; ; i++ {
		addr := opts.Addr
		if addr == "" {
			if addr, err = freeLoopbackAddr(); err != nil {
				return nil, err
			}
		}
		r, err := startRegistry(ctx, dir, addr, opts.Detach)
		if err == nil || i+1 >= attempts || !strings.Contains(err.Error(), "address already in use") {
			return r, err
		}
	}
}

func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// registryConfig is distribution's config. The access log (on by default)
// goes to stdout in combined log format; BlobGets reads it. Upload purging is
// off so the registry never rewrites its storage behind a test's back.
const registryConfig = `version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  headers:
    X-Content-Type-Options: [nosniff]
`

func startRegistry(ctx context.Context, dir, addr string, detach bool) (*Registry, error) {
	r := &Registry{Addr: addr, Dir: dir, LogPath: filepath.Join(dir, "registry.log"), done: make(chan struct{})}
	configPath := filepath.Join(dir, "config.yml")
	config := fmt.Sprintf(registryConfig, filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		return nil, fmt.Errorf("write registry config: %w", err)
	}
	// Truncated per start: BlobGets counts requests to this instance.
	logFile, err := os.Create(r.LogPath)
	if err != nil {
		return nil, fmt.Errorf("create registry log: %w", err)
	}
	defer logFile.Close() // the child has its own descriptor

	// Not CommandContext: the registry's lifetime is Stop's business, not
	// that of the context that bounds start-up.
	r.cmd = exec.Command(RegistryBinary, "serve", configPath)
	r.cmd.Stdout = logFile
	r.cmd.Stderr = logFile
	r.cmd.Dir = dir
	if detach {
		r.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", RegistryBinary, err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()

	if err := r.waitReady(ctx, 15*time.Second); err != nil {
		_ = r.Stop()
		return nil, fmt.Errorf("start registry on %s: %w\n%s", addr, err, tailFile(r.LogPath, 20))
	}
	return r, nil
}

// waitReady polls GET /v2/ until it answers 200.
func (r *Registry) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.Addr+"/v2/", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-r.done:
			return fmt.Errorf("registry exited: %v", r.err)
		case <-ctx.Done():
			return fmt.Errorf("wait for /v2/: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// Exited returns a channel closed when the registry process has exited.
func (r *Registry) Exited() <-chan struct{} { return r.done }

// Pid is the registry's process id (for pid files).
func (r *Registry) Pid() int { return r.cmd.Process.Pid }

// Stop terminates the registry: SIGTERM, then SIGKILL after 10s.
func (r *Registry) Stop() error {
	select {
	case <-r.done:
		return nil
	default:
	}
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal registry %d: %w", r.cmd.Process.Pid, err)
	}
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
	return nil
}

// Push copies img from its OCI layout into the registry under
// "<Addr>/<img.Ref>": the image's registry host becomes a path prefix, which
// is what the mirrors in WriteRegistriesConf point at.
func (r *Registry) Push(ctx context.Context, img Image) error {
	src := fmt.Sprintf("oci:%s:%s", img.Layout, img.Tag)
	dst := "docker://" + r.Addr + "/" + img.Ref
	// --insecure-policy: the host's policy.json is no concern of a copy
	// between two local stores.
	cmd := exec.CommandContext(ctx, "skopeo", "--insecure-policy", "copy", "--quiet",
		"--dest-tls-verify=false", src, dst)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("push %s to %s: %w: %s", img.Ref, r.Addr, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// PushAll pushes every image, a few repositories at a time. Images of one
// repository (pause:3.9 and pause:3.10) go one after the other: they share
// blobs, and docker-registry's filesystem store answers a blob check with
// 500 while another push of that blob into the same repository writes its
// link (seen as "trying to reuse blob ...: 500" on a busy machine).
func (r *Registry) PushAll(ctx context.Context, images []Image) error {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []error
		sem    = make(chan struct{}, 4)
		byRepo = map[string][]Image{}
		repos  []string
	)
	for _, img := range images {
		repo := repository(img.Ref)
		if _, ok := byRepo[repo]; !ok {
			repos = append(repos, repo)
		}
		byRepo[repo] = append(byRepo[repo], img)
	}
	for _, repo := range repos {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			for _, img := range byRepo[repo] {
				if err := r.Push(ctx, img); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// repository is ref without its tag or digest: "registry.k8s.io/pause"
// for "registry.k8s.io/pause:3.9".
func repository(ref string) string {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	return ref
}

// blobGetRE matches an access-log line for a blob download, e.g.
// `"GET /v2/registry.k8s.io/pause/blobs/sha256:ab... HTTP/1.1" 200`.
var blobGetRE = regexp.MustCompile(`"GET /v2/(\S+)/blobs/(sha256:[0-9a-f]{64}) HTTP/[0-9.]+" (\d{3})`)

// BlobGets counts successful blob downloads (GET /v2/<repo>/blobs/<digest>
// answered 2xx or 3xx) per digest since the registry started, so a test can
// tell whether a pull fetched a layer or reused a local copy. HEAD requests
// (existence checks) are not counted.
func (r *Registry) BlobGets() (map[string]int, error) {
	f, err := os.Open(r.LogPath)
	if err != nil {
		return nil, fmt.Errorf("open registry log: %w", err)
	}
	defer f.Close()
	counts := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := blobGetRE.FindStringSubmatch(sc.Text())
		if m != nil && m[3][0] < '4' {
			counts[m[2]]++
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read registry log: %w", err)
	}
	return counts, nil
}

// tailFile returns the last n lines of a file, for error messages.
func tailFile(p string, n int) string {
	data, err := os.ReadFile(p)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
