// Package streaming serves the CRI's streaming calls (exec, attach and
// port-forward) over HTTP, as CRI-O does: the CRI call returns a URL with a
// single-use token that expires after a minute, and the client (kubelet,
// crictl) connects to it to upgrade to SPDY or WebSocket streams. The
// protocols, the token cache and the URLs are k8s.io/cri-streaming's; this
// package chooses the address, adds TLS and ties the server's life to the
// daemon's.
package streaming

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
	cristreaming "k8s.io/cri-streaming/pkg/streaming"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/klog/v2"
)

// Runtime runs the streams once a client has connected: Exec, Attach and
// PortForward of the container or pod named in the original request.
type Runtime = cristreaming.Runtime

// TerminalSize is a client's terminal size, as sent on a session's resize
// stream.
type TerminalSize = remotecommand.TerminalSize

// Defaults of Config, as CRI-O's.
const (
	DefaultAddress = "127.0.0.1"
	DefaultPort    = "0"
)

// readHeaderTimeout bounds how long a client may take to send its request
// headers; the streams themselves live until their idle timeout.
const readHeaderTimeout = 30 * time.Second

// stopWait bounds how long Stop waits for the sessions it ended to clean up
// (kill their processes, remove their files).
const stopWait = 10 * time.Second

// Config says where and how the streaming server listens.
type Config struct {
	// Address is the IP or host name to bind; empty means DefaultAddress.
	Address string
	// Port is the TCP port; "0" or empty picks a free one.
	Port string
	// TLSCert and TLSKey are PEM files; both empty serves plain HTTP. They
	// are read again when they change, so a rotated certificate needs no
	// restart.
	TLSCert, TLSKey string
}

// Server is a running streaming server.
type Server struct {
	lib      cristreaming.Server
	http     *http.Server
	ln       net.Listener
	baseURL  *url.URL
	log      *slog.Logger
	sessions *sessions
	served   chan struct{}
}

// Start listens on cfg's address and serves streams for rt in the
// background until Stop. Binding errors (address in use, bad TLS files)
// are returned here, before anything is served.
func Start(cfg Config, rt Runtime, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	host, port := cfg.Address, cfg.Port
	if host == "" {
		host = DefaultAddress
	}
	if port == "" {
		port = DefaultPort
	}
	var tlsConfig *tls.Config
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		if cfg.TLSCert == "" || cfg.TLSKey == "" {
			return nil, errors.New("streaming server: TLS needs both a certificate and a key")
		}
		certs, err := newCertLoader(cfg.TLSCert, cfg.TLSKey, log)
		if err != nil {
			return nil, fmt.Errorf("streaming server: %w", err)
		}
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.get}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("streaming server: listen: %w", err)
	}
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
		ln = tls.NewListener(ln, tlsConfig)
	}
	base := &url.URL{Scheme: scheme, Host: ln.Addr().String()}

	sess := newSessions(rt)
	libCfg := cristreaming.DefaultConfig
	libCfg.Addr = base.Host
	libCfg.BaseURL = base
	libCfg.TLSConfig = tlsConfig
	lib, err := cristreaming.NewServer(libCfg, sess)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("streaming server: %w", err)
	}
	// The library reports errors of sessions through klog.
	klog.SetSlogLogger(log)

	s := &Server{
		lib:      lib,
		ln:       ln,
		baseURL:  base,
		log:      log,
		sessions: sess,
		served:   make(chan struct{}),
		http: &http.Server{
			Handler:           lib,
			ReadHeaderTimeout: readHeaderTimeout,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
	}
	go func() {
		defer close(s.served)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("streaming server stopped", "error", err)
		}
	}()
	log.Info("serving streams", "url", base.String())
	return s, nil
}

// URL is the server's base URL, e.g. http://127.0.0.1:43615.
func (s *Server) URL() string { return s.baseURL.String() }

// Stop closes the listener and the connections not yet upgraded, ends
// every session (their exec'd processes are killed) and waits a while for
// them to clean up.
func (s *Server) Stop() error {
	err := s.http.Close()
	<-s.served
	if !s.sessions.stop(stopWait) {
		s.log.Warn("streaming sessions still running after the server stopped", "waited", stopWait)
	}
	return err
}

// GetExec registers an exec request and returns its URL.
func (s *Server) GetExec(req *runtime.ExecRequest) (*runtime.ExecResponse, error) {
	return s.lib.GetExec(req)
}

// GetAttach registers an attach request and returns its URL.
func (s *Server) GetAttach(req *runtime.AttachRequest) (*runtime.AttachResponse, error) {
	return s.lib.GetAttach(req)
}

// GetPortForward registers a port-forward request and returns its URL.
func (s *Server) GetPortForward(req *runtime.PortForwardRequest) (*runtime.PortForwardResponse, error) {
	return s.lib.GetPortForward(req)
}
