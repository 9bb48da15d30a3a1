package metrics

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
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

func TestServe(t *testing.T) {
	m := New()
	m.ObserveCall("Version", codes.OK, time.Millisecond)
	e, err := m.Serve("127.0.0.1:0", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(t.Context())
	resp, err := http.Get("http://" + e.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `berth_cri_request_duration_seconds_count{method="Version"} 1`) {
		t.Errorf("GET /metrics = %d:\n%s", resp.StatusCode, body)
	}
}

func TestServeAddressInUse(t *testing.T) {
	m := New()
	lis := httptest.NewServer(http.NotFoundHandler())
	defer lis.Close()
	addr := strings.TrimPrefix(lis.URL, "http://")
	if _, err := m.Serve(addr, slog.Default()); err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("Serve on a taken port = %v, want an error naming %s", err, addr)
	}
}
