// Package metrics is Berth's Prometheus endpoint: the latency and errors
// of every CRI call, image pulls, OCI runtime and conmon invocations, and
// the number of containers and pods by state, read from the server's
// stores at scrape time. It is off unless an address is configured
// (api.metrics_address, --metrics-address). Go's pprof profiles are served
// the same way, on a unix socket or beside the metrics, when asked.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/codes"
)

const namespace = "berth"

// Metrics holds Berth's collectors in a registry of its own. Its Observe
// methods are safe for concurrent use and never block.
type Metrics struct {
	reg *prometheus.Registry

	criDuration  *prometheus.HistogramVec
	criErrors    *prometheus.CounterVec
	pullDuration *prometheus.HistogramVec
	pullBytes    prometheus.Counter
	ociDuration  *prometheus.HistogramVec
	ociFailures  *prometheus.CounterVec
}

// New returns the daemon's metrics, with the Go runtime's and the
// process's own collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		criDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "cri", Name: "request_duration_seconds",
			Help:    "Latency of CRI calls by method (unary calls; streams are not timed).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18), // 0.5 ms .. 65 s
		}, []string{"method"}),
		criErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "cri", Name: "request_errors_total",
			Help: "CRI calls that failed, by method and gRPC status code.",
		}, []string{"method", "code"}),
		pullDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "image", Name: "pull_duration_seconds",
			Help:    "Duration of image pulls (a pull shared by concurrent callers counts once), by result.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 15), // 50 ms .. 13.6 min
		}, []string{"result"}),
		pullBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "image", Name: "pull_bytes_total",
			Help: "Bytes of images pulled, as their size in storage.",
		}),
		ociDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "oci", Name: "operation_duration_seconds",
			Help:    "Latency of OCI runtime (runtime_<command>) and conmon (conmon_create, conmon_exec) invocations.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1 ms .. 32 s
		}, []string{"operation"}),
		ociFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "oci", Name: "operation_failures_total",
			Help: "OCI runtime and conmon invocations that failed, by operation.",
		}, []string{"operation"}),
	}
	m.reg.MustRegister(m.criDuration, m.criErrors, m.pullDuration, m.pullBytes, m.ociDuration, m.ociFailures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the registry the metrics are in, for tests and extra
// collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveCall records one CRI call; server.UnaryInterceptor calls it.
func (m *Metrics) ObserveCall(method string, code codes.Code, d time.Duration) {
	m.criDuration.WithLabelValues(method).Observe(d.Seconds())
	if code != codes.OK {
		m.criErrors.WithLabelValues(method, code.String()).Inc()
	}
}

// ObservePull records one image pull; it is a storage.PullObserver.
func (m *Metrics) ObservePull(bytes int64, d time.Duration, err error) {
	result := "success"
	if err != nil {
		result = "failure"
	} else if bytes > 0 {
		m.pullBytes.Add(float64(bytes))
	}
	m.pullDuration.WithLabelValues(result).Observe(d.Seconds())
}

// ObserveOCI records one OCI runtime or conmon invocation; it is an
// oci.Observer.
func (m *Metrics) ObserveOCI(op string, d time.Duration, err error) {
	m.ociDuration.WithLabelValues(op).Observe(d.Seconds())
	if err != nil {
		m.ociFailures.WithLabelValues(op).Inc()
	}
}

// StateSource counts the objects a server holds by lifecycle state; the
// counts are read at every scrape.
type StateSource interface {
	CountByState() (containers, pods map[string]int)
}

// WatchStates exports src's counts as berth_containers{state} and
// berth_pods{state}.
func (m *Metrics) WatchStates(src StateSource) {
	m.reg.MustRegister(&stateCollector{
		src:        src,
		containers: prometheus.NewDesc(namespace+"_containers", "Containers by state.", []string{"state"}, nil),
		pods:       prometheus.NewDesc(namespace+"_pods", "Pod sandboxes by state.", []string{"state"}, nil),
	})
}

type stateCollector struct {
	src              StateSource
	containers, pods *prometheus.Desc
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.containers
	ch <- c.pods
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	containers, pods := c.src.CountByState()
	for _, g := range []struct {
		desc   *prometheus.Desc
		counts map[string]int
	}{{c.containers, containers}, {c.pods, pods}} {
		states := make([]string, 0, len(g.counts))
		for s := range g.counts {
			states = append(states, s)
		}
		sort.Strings(states)
		for _, s := range states {
			ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(g.counts[s]), s)
		}
	}
}

// EventSource is the container event broker, as the metrics see it.
type EventSource interface {
	Subscribers() int
	Dropped() uint64
}

// WatchEvents exports the GetContainerEvents subscribers of src and how
// many were dropped for falling behind.
func (m *Metrics) WatchEvents(src EventSource) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "container_event_subscribers",
			Help: "Open GetContainerEvents streams.",
		}, func() float64 { return float64(src.Subscribers()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: namespace, Name: "container_event_subscribers_dropped_total",
			Help: "GetContainerEvents streams ended because their client fell behind.",
		}, func() float64 { return float64(src.Dropped()) }),
	)
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Endpoint is a running metrics HTTP server.
type Endpoint struct {
	srv  *http.Server
	addr string
}

// Addr is the address the endpoint listens on.
func (e *Endpoint) Addr() string { return e.addr }

// Shutdown stops the endpoint, letting scrapes in flight finish until ctx
// ends.
func (e *Endpoint) Shutdown(ctx context.Context) error { return e.srv.Shutdown(ctx) }

// Serve listens on addr (host:port) and serves /metrics, and /debug/pprof/
// when profiling, until Shutdown. A port already in use fails here, at
// start-up.
func (m *Metrics) Serve(addr string, profiling bool, log *slog.Logger) (*Endpoint, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	if profiling {
		addProfiling(mux)
	}
	e := &Endpoint{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		addr: lis.Addr().String(),
	}
	go func() {
		if err := e.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics endpoint stopped", "address", e.addr, "error", err)
		}
	}()
	log.Info("serving metrics", "address", e.addr)
	return e, nil
}
