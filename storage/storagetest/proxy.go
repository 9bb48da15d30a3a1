package storagetest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
)

// StallProxy is an HTTP proxy in front of a registry that can stall chosen
// blobs: it sends half of the blob and then nothing until released, like a
// registry that hangs mid-download.
type StallProxy struct {
	Addr string // 127.0.0.1:port

	upstream string
	mu       sync.Mutex
	stalled  map[digest.Digest]chan struct{}
	started  map[digest.Digest]int
}

// NewStallProxy starts a proxy to the registry at upstream (host:port).
func NewStallProxy(t testing.TB, upstream string) *StallProxy {
	t.Helper()
	p := &StallProxy{upstream: upstream, stalled: map[digest.Digest]chan struct{}{}, started: map[digest.Digest]int{}}
	target, err := url.Parse("http://" + upstream)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if release, d := p.stallFor(r); release != nil {
			p.serveStalled(w, r, d, release)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		p.ReleaseAll()
		srv.CloseClientConnections()
		srv.Close()
	})
	p.Addr = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// Stall makes GETs of blob d hang halfway until the returned func is called.
func (p *StallProxy) Stall(d digest.Digest) (release func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch := make(chan struct{})
	p.stalled[d] = ch
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			delete(p.stalled, d)
			p.mu.Unlock()
			close(ch)
		})
	}
}

// ReleaseAll releases every stalled blob.
func (p *StallProxy) ReleaseAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for d, ch := range p.stalled {
		close(ch)
		delete(p.stalled, d)
	}
}

// Started counts the stalled GETs of d that began.
func (p *StallProxy) Started(d digest.Digest) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started[d]
}

func (p *StallProxy) stallFor(r *http.Request) (chan struct{}, digest.Digest) {
	if r.Method != http.MethodGet {
		return nil, ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for d, ch := range p.stalled {
		if strings.HasSuffix(r.URL.Path, "/blobs/"+d.String()) {
			p.started[d]++
			return ch, d
		}
	}
	return nil, ""
}

func (p *StallProxy) serveStalled(w http.ResponseWriter, r *http.Request, d digest.Digest, release chan struct{}) {
	resp, err := http.Get("http://" + p.upstream + r.URL.Path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		http.Error(w, "upstream failed", http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Docker-Content-Digest", d.String())
	w.WriteHeader(http.StatusOK)
	half := len(body) / 2
	_, _ = w.Write(body[:half])
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	select {
	case <-release:
		_, _ = w.Write(body[half:])
	case <-r.Context().Done():
	}
}
