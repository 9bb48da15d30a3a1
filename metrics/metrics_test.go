package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

type fakeStates struct{}

func (fakeStates) CountByState() (map[string]int, map[string]int) {
	return map[string]int{"running": 2, "exited": 1, "created": 0}, map[string]int{"ready": 1, "notready": 0}
}

type fakeEvents struct{}

func (fakeEvents) Subscribers() int { return 3 }
func (fakeEvents) Dropped() uint64  { return 1 }

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func TestMetricsExposition(t *testing.T) {
	m := New()
	m.WatchStates(fakeStates{})
	m.WatchEvents(fakeEvents{})
	m.ObserveCall("RunPodSandbox", codes.OK, 80*time.Millisecond)
	m.ObserveCall("RunPodSandbox", codes.OK, 90*time.Millisecond)
	m.ObserveCall("ContainerStatus", codes.NotFound, time.Millisecond)
	m.ObservePull(2<<20, 300*time.Millisecond, nil)
	m.ObservePull(0, time.Second, errors.New("registry down"))
	m.ObserveOCI("runtime_start", 30*time.Millisecond, nil)
	m.ObserveOCI("conmon_create", 40*time.Millisecond, errors.New("boom"))
	out := scrape(t, m.Handler())

	for _, tc := range []struct{ name, want string }{
		{"cri latency histogram", `berth_cri_request_duration_seconds_count{method="RunPodSandbox"} 2`},
		{"cri histogram buckets", `berth_cri_request_duration_seconds_bucket{method="RunPodSandbox",le="0.128"} 2`},
		{"cri errors by code", `berth_cri_request_errors_total{code="NotFound",method="ContainerStatus"} 1`},
		{"successful calls are no errors", `berth_cri_request_duration_seconds_count{method="ContainerStatus"} 1`},
		{"pull bytes", `berth_image_pull_bytes_total 2.097152e+06`},
		{"pull durations by result", `berth_image_pull_duration_seconds_count{result="failure"} 1`},
		{"oci latency", `berth_oci_operation_duration_seconds_count{operation="runtime_start"} 1`},
		{"oci failures", `berth_oci_operation_failures_total{operation="conmon_create"} 1`},
		{"containers by state", `berth_containers{state="running"} 2`},
		{"zero states are reported", `berth_containers{state="created"} 0`},
		{"pods by state", `berth_pods{state="ready"} 1`},
		{"event subscribers", `berth_container_event_subscribers 3`},
		{"dropped subscribers", `berth_container_event_subscribers_dropped_total 1`},
		{"go runtime", `go_goroutines `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(out, tc.want) {
				t.Errorf("scrape lacks %q", tc.want)
			}
		})
	}
	if strings.Contains(out, `berth_cri_request_errors_total{code="OK"`) {
		t.Error("successful calls counted as errors")
	}
}

// /metrics is served always, /debug/pprof/ beside it only when asked.
func TestServe(t *testing.T) {
	for _, profiling := range []bool{false, true} {
		t.Run(fmt.Sprintf("profiling %v", profiling), func(t *testing.T) {
			m := New()
			m.ObserveCall("Version", codes.OK, time.Millisecond)
			e, err := m.Serve("127.0.0.1:0", profiling, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			defer e.Shutdown(t.Context())
			code, body := get(t, http.DefaultClient, "http://"+e.Addr()+"/metrics")
			if code != http.StatusOK || !strings.Contains(body, `berth_cri_request_duration_seconds_count{method="Version"} 1`) {
				t.Errorf("GET /metrics = %d:\n%s", code, body)
			}
			code, body = get(t, http.DefaultClient, "http://"+e.Addr()+"/debug/pprof/cmdline")
			if served := code == http.StatusOK && strings.Contains(body, os.Args[0]); served != profiling {
				t.Errorf("GET /debug/pprof/cmdline = %d %q; want served %v", code, body, profiling)
			}
		})
	}
}

// The profiling socket serves profiles to root alone, and replaces the
// stale socket of a crashed daemon.
func TestServeProfiling(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "pprof.sock")
	for range 2 { // the second finds the first's socket left behind
		e, err := ServeProfiling(path, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("socket %v, %v; want mode 0600", fi, err)
		}
		client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}}}
		code, body := get(t, client, "http://berth/debug/pprof/profile?seconds=1")
		if code != http.StatusOK || len(body) == 0 {
			t.Errorf("CPU profile = %d, %d bytes", code, len(body))
		}
		if e.Addr() != "unix://"+path {
			t.Errorf("address %s, want unix://%s", e.Addr(), path)
		}
		e.Shutdown(t.Context()) // an http.Server leaves its unix socket file
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ServeProfiling(path, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("a regular file at the socket's path: %v, want refused", err)
	}
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestServeAddressInUse(t *testing.T) {
	m := New()
	lis := httptest.NewServer(http.NotFoundHandler())
	defer lis.Close()
	addr := strings.TrimPrefix(lis.URL, "http://")
	if _, err := m.Serve(addr, false, slog.Default()); err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("Serve on a taken port = %v, want an error naming %s", err, addr)
	}
}
