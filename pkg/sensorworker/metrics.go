package sensorworker

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/attune-automation/attunectl/pkg/netguard"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the service's Prometheus metrics, in a registry of its own
// (never the global one), so that several services in one test binary do
// not collide.
type metrics struct {
	registry      *prometheus.Registry
	heartbeats    prometheus.Counter
	failures      prometheus.Counter
	registrations prometheus.Counter
	duration      prometheus.Histogram
	registered    prometheus.Gauge
	runtimes      *prometheus.GaugeVec
	sensors       *sensorMetrics
}

func newMetrics(s *Service) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		heartbeats: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "attunectl_sensor_heartbeats_total",
			Help: "Heartbeats written to the worker table.",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "attunectl_sensor_heartbeat_failures_total",
			Help: "Heartbeats that failed (database unreachable, statement error); each is retried.",
		}),
		registrations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "attunectl_sensor_registrations_total",
			Help: "Registrations of the worker row: 1 at startup, more when the row was pruned and registered again.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "attunectl_sensor_heartbeat_duration_seconds",
			Help:    "Time a successful heartbeat statement took, round trip included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		registered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "attunectl_sensor_registered",
			Help: "1 while the worker row is registered by this process, else 0.",
		}),
		runtimes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "attunectl_sensor_runtime_available",
			Help: "1 for each runtime this worker advertises; 0 for one it advertised before and lost.",
		}, []string{"runtime"}),
	}
	since := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "attunectl_sensor_seconds_since_last_heartbeat",
		Help: "Seconds since the last successful heartbeat (or registration); since the process started when there was none yet.",
	}, func() float64 { return s.sinceLastBeat().Seconds() })
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "attunectl_sensor_info",
		Help:        "The sensor worker this process runs, as labels; always 1.",
		ConstLabels: prometheus.Labels{"name": s.cfg.Name, "host": s.cfg.Host, "version": s.cfg.Version},
	})
	info.Set(1)
	m.registry.MustRegister(m.heartbeats, m.failures, m.registrations, m.duration, m.registered, m.runtimes, since, info,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.sensors = newSensorMetrics(m.registry)
	return m
}

// setRuntimes sets the gauge of every runtime in now to 1 and of every one
// only in before to 0.
func (m *metrics) setRuntimes(before, now []string) {
	_, removed := runtimeDiff(before, now)
	for _, r := range removed {
		m.runtimes.WithLabelValues(r).Set(0)
	}
	for _, r := range now {
		m.runtimes.WithLabelValues(r).Set(1)
	}
}

// Handler serves /metrics (Prometheus), /healthz (the process is alive:
// always 200) and /readyz (200 when registered and the last heartbeat
// succeeded within two intervals, else 503 with the reason).
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ready, why := s.Ready()
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %s\n", why)
			return
		}
		fmt.Fprintf(w, "ready: %s\n", why)
	})
	return mux
}

// Ready reports whether the worker is registered and its last heartbeat
// succeeded within two intervals, and why (or why not).
func (s *Service) Ready() (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.fatal != nil:
		return false, "stopped: " + s.fatal.Error()
	case s.stopping:
		return false, "shutting down"
	case !s.registered:
		return false, "not registered yet"
	}
	age := s.clock.Now().Sub(s.lastBeat)
	if limit := 2 * s.cfg.HeartbeatInterval; age > limit {
		return false, fmt.Sprintf("last successful heartbeat %s ago, more than two intervals (%s)", age.Round(time.Millisecond), limit)
	}
	return true, fmt.Sprintf("worker %d registered, last heartbeat %s ago", s.reg.ID(), age.Round(time.Millisecond))
}

func (s *Service) sinceLastBeat() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastBeat.IsZero() {
		return s.clock.Now().Sub(s.started)
	}
	return s.clock.Now().Sub(s.lastBeat)
}

// MetricsLimits bound what a client of the metrics endpoint can hold: the
// endpoint is often reachable by anyone on the network, and a scraper that
// connects and never speaks, or keeps a connection idle forever, must not
// pin goroutines and file descriptors in the sensor worker.
type MetricsLimits struct {
	// ReadHeader bounds reading a request's headers (and, on a new
	// connection, waiting for the first byte of it).
	ReadHeader time.Duration
	// Read bounds reading a whole request.
	Read time.Duration
	// Write bounds writing a response, from the end of the request's headers.
	Write time.Duration
	// Idle closes a keep-alive connection with no request for this long.
	Idle time.Duration
	// MaxConns is the most connections open at once; at the bound the one
	// idle the longest makes room for a new one (pkg/netguard), so idle
	// connections can neither exhaust descriptors nor lock out a probe.
	MaxConns int
}

// DefaultMetricsLimits are the metrics server's limits: generous for a
// Prometheus scrape every few seconds, small enough that idle or silent
// connections are gone within a minute.
var DefaultMetricsLimits = MetricsLimits{
	ReadHeader: 5 * time.Second,
	Read:       10 * time.Second,
	Write:      30 * time.Second,
	Idle:       60 * time.Second,
	MaxConns:   64,
}

// ListenMetrics listens on addr and returns the listener, guarded to
// limits.MaxConns open connections (pkg/netguard), and an HTTP server for h with the
// timeouts of limits whose own errors (a panicking handler, accept
// failures) are logged through log at warn level, never through Go's log
// package. The caller runs server.Serve(listener) and shuts it down.
func ListenMetrics(addr string, h http.Handler, log *slog.Logger, limits MetricsLimits) (net.Listener, *http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	srv := newMetricsServer(h, log, limits)
	if limits.MaxConns <= 0 {
		return ln, srv, nil
	}
	gl := netguard.Listen(ln, limits.MaxConns)
	gl.Track(srv)
	return gl, srv, nil
}

// newMetricsServer is the metrics endpoint's http.Server.
func newMetricsServer(h http.Handler, log *slog.Logger, limits MetricsLimits) *http.Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: limits.ReadHeader,
		ReadTimeout:       limits.Read,
		WriteTimeout:      limits.Write,
		IdleTimeout:       limits.Idle,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.With("component", "metrics").Handler(), slog.LevelWarn),
	}
}
