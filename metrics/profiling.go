package metrics

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"time"
)

// profilingMux serves Go's pprof profiles under /debug/pprof/, as
// net/http/pprof does on the default mux (which Berth does not serve).
func addProfiling(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

// ServeProfiling serves /debug/pprof/ on the unix socket path, which only
// root may connect to, until Shutdown. A stale socket a crashed daemon left
// is replaced; anything else at path is an error.
func ServeProfiling(path string, log *slog.Logger) (*Endpoint, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("profiling socket dir: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("profiling socket %s: a file that is not a socket is in the way", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale profiling socket: %w", err)
		}
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen for profiling on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		lis.Close()
		return nil, fmt.Errorf("profiling socket %s: %w", path, err)
	}
	mux := http.NewServeMux()
	addProfiling(mux)
	// No write timeout: a CPU profile streams for as long as it was asked.
	e := &Endpoint{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, addr: "unix://" + path}
	go func() {
		if err := e.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("profiling endpoint stopped", "socket", path, "error", err)
		}
	}()
	log.Info("serving pprof profiles", "socket", path)
	return e, nil
}
