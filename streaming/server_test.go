package streaming

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeRuntime is never reached by these tests: they check URLs, tokens and
// transport, not sessions.
type fakeRuntime struct{}

func (fakeRuntime) Exec(context.Context, string, []string, io.Reader, io.WriteCloser, io.WriteCloser, bool, <-chan TerminalSize) error {
	return nil
}
func (fakeRuntime) Attach(context.Context, string, io.Reader, io.WriteCloser, io.WriteCloser, bool, <-chan TerminalSize) error {
	return nil
}
func (fakeRuntime) PortForward(context.Context, string, int32, io.ReadWriteCloser) error { return nil }

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := Start(cfg, fakeRuntime{}, nil)
	if err != nil {
		t.Fatalf("Start(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

func TestStartAddress(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      Config
		wantHost string
	}{
		{"defaults: loopback and a free port", Config{}, "127.0.0.1"},
		{"explicit free port", Config{Address: "127.0.0.1", Port: "0"}, "127.0.0.1"},
		{"IPv6 loopback", Config{Address: "::1"}, "::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Start(tc.cfg, fakeRuntime{}, nil)
			if err != nil && tc.cfg.Address == "::1" {
				t.Skipf("no IPv6 loopback: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Stop()
			u, err := url.Parse(s.URL())
			if err != nil || u.Scheme != "http" || u.Hostname() != tc.wantHost || u.Port() == "" || u.Port() == "0" {
				t.Errorf("URL = %s, want http://%s:<port>", s.URL(), tc.wantHost)
			}
		})
	}
}

func TestStartErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, port, _ := net.SplitHostPort(busy.Addr().String())
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"port in use", Config{Port: port}, "address already in use"},
		{"cert without key", Config{TLSCert: "/c"}, "both a certificate and a key"},
		{"missing TLS files", Config{TLSCert: "/no/cert", TLSKey: "/no/key"}, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Start(tc.cfg, fakeRuntime{}, nil)
			if err == nil {
				s.Stop()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestURLsAndSingleUseTokens(t *testing.T) {
	s := start(t, Config{})
	exec, err := s.GetExec(&runtime.ExecRequest{ContainerId: "c1", Cmd: []string{"sh"}, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	attach, err := s.GetAttach(&runtime.AttachRequest{ContainerId: "c1", Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	pf, err := s.GetPortForward(&runtime.PortForwardRequest{PodSandboxId: "p1", Port: []int32{80}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ kind, url string }{{"exec", exec.GetUrl()}, {"attach", attach.GetUrl()}, {"portforward", pf.GetUrl()}} {
		t.Run(tc.kind, func(t *testing.T) {
			if !strings.HasPrefix(tc.url, s.URL()+"/"+tc.kind+"/") {
				t.Fatalf("URL %s is not under %s/%s/", tc.url, s.URL(), tc.kind)
			}
			// A plain GET spends the token (the upgrade then fails); the
			// token cannot be used again.
			if code := get(t, tc.url); code == http.StatusNotFound {
				t.Errorf("first use: %d", code)
			}
			if code := get(t, tc.url); code != http.StatusNotFound {
				t.Errorf("second use: %d, want 404", code)
			}
		})
	}
	if code := get(t, s.URL()+"/exec/made-up-token"); code != http.StatusNotFound {
		t.Errorf("unknown token: %d, want 404", code)
	}
}

func TestRequestValidation(t *testing.T) {
	s := start(t, Config{})
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"exec tty with stderr", func() error {
			_, err := s.GetExec(&runtime.ExecRequest{ContainerId: "c", Cmd: []string{"sh"}, Tty: true, Stderr: true})
			return err
		}},
		{"exec without streams", func() error {
			_, err := s.GetExec(&runtime.ExecRequest{ContainerId: "c", Cmd: []string{"sh"}})
			return err
		}},
		{"attach without container", func() error {
			_, err := s.GetAttach(&runtime.AttachRequest{Stdout: true})
			return err
		}},
		{"port-forward without pod", func() error {
			_, err := s.GetPortForward(&runtime.PortForwardRequest{})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); status.Code(err) != codes.InvalidArgument {
				t.Errorf("error = %v, want InvalidArgument", err)
			}
		})
	}
}

func TestStopClosesTheServer(t *testing.T) {
	s, err := Start(Config{}, fakeRuntime{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(s.URL())
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		c.Close()
		t.Errorf("server still accepts connections after Stop")
	}
}

func TestTLSAndCertificateRotation(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeCert(t, certFile, keyFile, 1)
	s := start(t, Config{TLSCert: certFile, TLSKey: keyFile})
	if !strings.HasPrefix(s.URL(), "https://") {
		t.Fatalf("URL = %s, want https", s.URL())
	}
	if got := serverSerial(t, s); got != 1 {
		t.Errorf("serial = %d, want 1", got)
	}
	// Rotate: a newer modification time makes the server read the pair again.
	writeCert(t, certFile, keyFile, 2)
	later := time.Now().Add(2 * time.Second)
	os.Chtimes(certFile, later, later)
	os.Chtimes(keyFile, later, later)
	if got := serverSerial(t, s); got != 2 {
		t.Errorf("serial after rotation = %d, want 2", got)
	}
	// A broken pair keeps the last good certificate in service.
	os.WriteFile(certFile, []byte("garbage"), 0o600)
	later = later.Add(2 * time.Second)
	os.Chtimes(certFile, later, later)
	if got := serverSerial(t, s); got != 2 {
		t.Errorf("serial with a broken certificate file = %d, want 2", got)
	}
	// Plain HTTP is refused.
	u, _ := url.Parse(s.URL())
	resp, err := http.Get("http://" + u.Host + "/exec/x")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS server: %s", resp.Status)
		}
	}
}

func get(t *testing.T, u string) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// serverSerial connects with TLS and returns the serial of the server's
// certificate.
func serverSerial(t *testing.T, s *Server) int64 {
	t.Helper()
	u, _ := url.Parse(s.URL())
	conn, err := tls.Dial("tcp", u.Host, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// writeCert writes a self-signed certificate for 127.0.0.1 with the given
// serial, and its key.
func writeCert(t *testing.T, certFile, keyFile string, serial int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "berth-streaming-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// blockingRuntime's sessions run until their context ends, then take a
// moment to clean up, as exec sessions killing their process do. A stuck one
// ignores its context.
type blockingRuntime struct {
	started chan string
	cleaned chan string
	stuck   chan struct{}
}

func (b blockingRuntime) session(ctx context.Context, name string) error {
	b.started <- name
	if name == "stuck" {
		<-b.stuck
		return nil
	}
	<-ctx.Done()
	time.Sleep(50 * time.Millisecond)
	b.cleaned <- name
	return ctx.Err()
}

func (b blockingRuntime) Exec(ctx context.Context, id string, _ []string, _ io.Reader, _, _ io.WriteCloser, _ bool, _ <-chan TerminalSize) error {
	return b.session(ctx, id)
}
func (b blockingRuntime) Attach(ctx context.Context, id string, _ io.Reader, _, _ io.WriteCloser, _ bool, _ <-chan TerminalSize) error {
	return b.session(ctx, id)
}
func (b blockingRuntime) PortForward(ctx context.Context, id string, _ int32, _ io.ReadWriteCloser) error {
	return b.session(ctx, id)
}

func TestStopEndsSessionsAndWaitsForThem(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sessions []string
		wait     time.Duration
		want     bool
	}{
		{"every kind of session ends", []string{"exec", "attach", "portforward"}, time.Minute, true},
		{"a stuck session is not waited for for ever", []string{"exec", "stuck"}, 200 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := blockingRuntime{started: make(chan string, 3), cleaned: make(chan string, 3), stuck: make(chan struct{})}
			defer close(rt.stuck)
			s := newSessions(rt)
			bg := context.Background() // as the library passes port-forwards
			for _, name := range tc.sessions {
				switch name {
				case "attach":
					go s.Attach(bg, name, nil, nil, nil, false, nil)
				case "portforward":
					go s.PortForward(bg, name, 80, nil)
				default:
					go s.Exec(bg, name, nil, nil, nil, nil, false, nil)
				}
				<-rt.started
			}
			if got := s.stop(tc.wait); got != tc.want {
				t.Errorf("stop = %v, want %v", got, tc.want)
			}
			if tc.want && len(rt.cleaned) != len(tc.sessions) {
				t.Errorf("stop returned before the sessions cleaned up: %d of %d", len(rt.cleaned), len(tc.sessions))
			}
			if err := s.Exec(bg, "late", nil, nil, nil, nil, false, nil); !errors.Is(err, errStopping) {
				t.Errorf("session after stop = %v, want errStopping", err)
			}
		})
	}
}
