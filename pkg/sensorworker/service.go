// Package sensor is the long-lived sensor worker of `attunectl sensor run`:
// it waits for the database, detects the runtimes of this host (the engine
// of pkg/detect, the one `runtime verify` runs), registers the worker row
// (pkg/workers), heartbeats, re-verifies the runtimes on an interval, and
// deregisters on shutdown. It optionally serves Prometheus metrics,
// /healthz and /readyz.
//
// The database is never a reason to exit once the worker is registered: a
// failed heartbeat is logged and retried with a capped, jittered backoff
// (never longer than one heartbeat interval, so that the worker heartbeats
// again within one interval of the database's return); a row that was
// pruned is registered again. Only losing the row to another instance
// (`--replace` elsewhere) stops the service, with an error.
package sensorworker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/detect"
	"github.com/attune-automation/attunectl/pkg/sandbox"
	"github.com/attune-automation/attunectl/pkg/workers"
)

// DefaultShutdownTimeout bounds Stop when Config.ShutdownTimeout is 0.
const DefaultShutdownTimeout = 10 * time.Second

// Config is what the service runs as, resolved from attunectl's
// configuration and flags.
type Config struct {
	// Name is the worker's unique name (sensor.worker_name).
	Name string
	// Host is the host the worker advertises (sensor.host).
	Host string
	// HeartbeatInterval is the time between heartbeats (sensor.heartbeat_interval).
	HeartbeatInterval time.Duration
	// ReverifyInterval re-runs detection while the worker lives; 0 disables
	// (sensor.reverify_interval).
	ReverifyInterval time.Duration
	// ShutdownTimeout bounds the whole of Stop: waiting for the loops,
	// deregistration, closing the metrics server and the database
	// connections (sensor.shutdown_timeout).
	ShutdownTimeout time.Duration
	// WaitForDatabase is how long startup retries an unreachable database
	// before it gives up; 0 tries once (--wait-for-database).
	WaitForDatabase time.Duration
	// Replace takes the name over from a live sensor worker (--replace).
	Replace bool
	// MetricsAddr serves /metrics, /healthz and /readyz when set
	// (sensor.metrics_addr, e.g. ":9464" or "127.0.0.1:0").
	MetricsAddr string
	// MaxConcurrentSensors is advertised as max_concurrent_sensors.
	MaxConcurrentSensors int
	// ExtraCapabilities are sensor.capabilities other than runtimes,
	// advertised as given.
	ExtraCapabilities map[string]any
	// Version is advertised as sensor_version and stored in meta.
	Version string
	// Sensors is how the worker places and runs sensors.
	Sensors SensorsConfig
}

// Options are the service's dependencies.
type Options struct {
	// Connect opens the database (with the schema checked); called until it
	// succeeds or Config.WaitForDatabase runs out. The service closes the
	// database it returns in Stop.
	Connect func(ctx context.Context) (*database.DB, error)
	// Detect runs runtime detection (at startup and on every
	// re-verification), usually detect.Detect with the runtimes of db.
	Detect func(ctx context.Context, db *database.DB) (detect.Result, error)
	// Logger receives the service's structured logs; nil discards them.
	Logger *slog.Logger
	// Clock drives every timer; nil is the real clock.
	Clock Clock
	// Instance identifies this process in the row's meta; zero makes a new one.
	Instance workers.Instance
	// Rand returns a number in [0, 1) for backoff jitter; nil uses math/rand.
	Rand func() float64
	// Sandbox runs sensor processes (as sensor.run_as, with its limits);
	// nil runs only built-in sensors.
	Sandbox *sandbox.Sandbox
	// Environ and PassthroughEnv make the sensor processes' scrubbed
	// environment (os.Environ() and sensor.passthrough_env).
	Environ        []string
	PassthroughEnv []string
	// Allow, when set, holds a sensor process's command line to the
	// verification allow-list (detect.Options.Allows): a row of the
	// database names a sensor's interpreter as it names a verification
	// command. nil allows every command line.
	Allow func(binary, resolved string, args []string) (bool, string)
}

// Service is one sensor worker's lifecycle: Start, then Stop (or Run, which
// does both around a context). Done is closed when the service stops on its
// own, and Err says why.
type Service struct {
	cfg     Config
	opts    Options
	log     *slog.Logger
	clock   Clock
	rnd     func() float64
	metrics *metrics
	started time.Time

	db       *database.DB
	reg      *workers.Registration
	listener net.Listener
	server   *http.Server

	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan struct{}

	mu         sync.Mutex
	registered bool
	stopping   bool
	// maybeRegistered: Register was interrupted and may have committed.
	maybeRegistered bool
	lastBeat        time.Time
	fatal           error
	result          detect.Result
	firstBeatErr    error

	sensorsLoop *sensorsLoop

	stopOnce sync.Once
	stopErr  error
}

// New checks the configuration and prepares a service; nothing runs until
// Start.
func New(cfg Config, opts Options) (*Service, error) {
	switch {
	case cfg.Name == "":
		return nil, errors.New("sensor worker: the name is empty: set --name or sensor.worker_name")
	case cfg.HeartbeatInterval <= 0:
		return nil, fmt.Errorf("sensor worker: sensor.heartbeat_interval must be greater than 0, got %s (give seconds, e.g. 30, or a duration, e.g. 30s)", cfg.HeartbeatInterval)
	case cfg.ReverifyInterval < 0:
		return nil, fmt.Errorf("sensor worker: sensor.reverify_interval must be 0 (off) or more, got %s", cfg.ReverifyInterval)
	case cfg.WaitForDatabase < 0:
		return nil, fmt.Errorf("sensor worker: --wait-for-database must be 0 or more, got %s", cfg.WaitForDatabase)
	case opts.Connect == nil || opts.Detect == nil:
		return nil, errors.New("sensor worker: Options.Connect and Options.Detect are required")
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.MaxConcurrentSensors <= 0 {
		cfg.MaxConcurrentSensors = 10
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = RealClock{}
	}
	if opts.Rand == nil {
		opts.Rand = rand.Float64
	}
	if opts.Instance.ID == "" {
		opts.Instance = workers.NewInstance(cfg.Version)
	}
	s := &Service{cfg: cfg, opts: opts, log: opts.Logger, clock: opts.Clock, rnd: opts.Rand, done: make(chan struct{})}
	s.started = s.clock.Now()
	s.metrics = newMetrics(s)
	return s, nil
}

// Start serves the metrics endpoint (when configured), connects to the
// database (retrying a transient failure until Config.WaitForDatabase runs
// out), detects the runtimes, registers the worker, sends the first
// heartbeat and starts the heartbeat and re-verification loops. An error
// means the worker is not running; call Stop to release what Start opened.
// When ctx ends during the first heartbeat, Start returns nil without
// starting the loops: the caller is stopping, and Stop deregisters.
func (s *Service) Start(ctx context.Context) error {
	if s.cfg.MetricsAddr != "" {
		if err := s.serveMetrics(); err != nil {
			return err
		}
	}
	deadline := s.clock.Now().Add(s.cfg.WaitForDatabase)
	db, err := startupRetry(ctx, s, "connecting", deadline, func(ctx context.Context) (*database.DB, error) {
		db, err := s.opts.Connect(ctx)
		if err != nil {
			return nil, err
		}
		if err := requireWorkerColumns(db); err != nil {
			db.Close()
			return nil, err
		}
		return db, nil
	})
	if err != nil {
		return err
	}
	s.db = db

	res, err := startupRetry(ctx, s, "detecting runtimes", deadline, func(ctx context.Context) (detect.Result, error) {
		return s.opts.Detect(ctx, db)
	})
	if err != nil {
		return err
	}
	LogDetection(s.log, res)

	caps := BuildCapabilities(s.cfg, res)
	s.reg = workers.NewRegistration(db, workers.RegistrationConfig{Name: s.cfg.Name, Host: s.cfg.Host, Capabilities: caps, Instance: s.opts.Instance})
	reg, err := startupRetry(ctx, s, "registering", deadline, func(ctx context.Context) (workers.Registered, error) {
		return s.reg.Register(ctx, workers.RegisterOptions{Replace: s.cfg.Replace})
	})
	if err != nil {
		if ctx.Err() != nil {
			// Interrupted: the statement may have committed without its
			// answer reaching us. Stop deregisters by name and instance.
			s.mu.Lock()
			s.maybeRegistered = true
			s.mu.Unlock()
		}
		return err
	}
	s.mu.Lock()
	s.registered, s.lastBeat, s.result = true, s.clock.Now(), res
	s.mu.Unlock()
	s.metrics.registrations.Inc()
	s.metrics.registered.Set(1)
	s.metrics.setRuntimes(nil, res.Available)
	s.log.Info("registered sensor worker", "id", reg.ID, "name", s.cfg.Name, "host", s.cfg.Host,
		"runtimes", caps.Runtimes, "source", caps.DetectionSource, "new_row", reg.Inserted,
		"instance", s.opts.Instance.ID, "heartbeat_interval", s.cfg.HeartbeatInterval.String())

	// The loops outlive ctx (Stop ends them, after Run saw ctx end).
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	// The first heartbeat right after registering: it proves the hot path
	// works (and is what --once checks). Like everything before it, it ends
	// with ctx: a signal while it waits on a slow or hung server must not
	// wait for the heartbeat's own timeout.
	fatal, firstErr := s.firstBeat(ctx, loopCtx)
	if ctx.Err() != nil {
		// Interrupted: the caller stops (and deregisters) next; no loop is
		// worth starting.
		return nil
	}
	if fatal {
		s.fail(firstErr)
		return firstErr
	}
	failures := 0
	if firstErr != nil {
		failures = 1
		s.mu.Lock()
		s.firstBeatErr = firstErr
		s.mu.Unlock()
		s.log.Error("heartbeat failed; retrying", "id", s.reg.ID(), "attempt", 1, "error", firstErr)
	}
	s.wg.Add(1)
	go s.heartbeatLoop(loopCtx, failures)
	if s.cfg.ReverifyInterval > 0 {
		s.wg.Add(1)
		go s.reverifyLoop(loopCtx)
	}
	if err := s.startSensors(loopCtx); err != nil {
		return err
	}
	return nil
}

// Err is why the service stopped on its own (nil while it runs, or when it
// was stopped by Stop).
func (s *Service) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fatal
}

// Run starts the service, waits until ctx is cancelled (SIGINT/SIGTERM) or
// the service stops on its own, and stops it: the loops first, then the
// deregistration, bounded by Config.ShutdownTimeout. A cancelled ctx is a
// normal stop (nil); a failed deregistration is logged, not returned: the
// row then goes stale after its grace.
func (s *Service) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		_ = s.Stop()
		if ctx.Err() != nil {
			s.log.Info("stopped before the sensor worker was registered", "name", s.cfg.Name)
			return nil
		}
		return err
	}
	select {
	case <-ctx.Done():
		s.log.Info("stopping sensor worker", "name", s.cfg.Name, "reason", "signal")
	case <-s.done:
	}
	_ = s.Stop()
	return s.Err()
}

// Once registers, sends one heartbeat and deregisters (`sensor run
// --once`). Unlike Run, a failed heartbeat or deregistration is an error.
func (s *Service) Once(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		_ = s.Stop()
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	s.mu.Lock()
	beatErr := s.firstBeatErr
	s.mu.Unlock()
	stopErr := s.Stop()
	if beatErr != nil {
		return fmt.Errorf("sensor worker %q registered but its heartbeat failed: %w", s.cfg.Name, beatErr)
	}
	return stopErr
}

// Stop stops the loops, then deregisters the worker (status inactive, own
// row only) and closes the metrics server and the database, all within
// Config.ShutdownTimeout. It returns the deregistration's error, which is
// also logged. Calling it again returns the same result.
func (s *Service) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *Service) stop() error {
	// The whole stop, loops included, is bounded by the real clock: the
	// bound is what an operator (or Kubernetes' grace period) relies on.
	deadline := time.Now().Add(s.cfg.ShutdownTimeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	s.mu.Lock()
	s.stopping = true
	fatal, maybe := s.fatal, s.maybeRegistered
	s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
	}
	if !waitWithin(ctx, s.wg.Wait) {
		s.log.Warn("a loop of the sensor worker did not stop in time; deregistering anyway", "name", s.cfg.Name)
	}

	// The sensors first: their processes stop (SIGTERM, SIGKILL after the
	// stop timeout) and their leases are released, so the next owner
	// claims them at once; then the worker row.
	s.stopSensors(ctx)
	// Deregistration may use the time left but a reserve, so that the
	// connections are closed cleanly when the server answers.
	dctx, dcancel := context.WithDeadline(ctx, deadline.Add(-closeReserve(s.cfg.ShutdownTimeout)))
	defer dcancel()
	var err error
	if s.reg != nil && (s.reg.ID() != 0 || maybe) && !errors.Is(fatal, workers.ErrTakenOver) {
		id := s.reg.ID()
		err = s.reg.Deregister(dctx)
		switch {
		case err == nil:
			// Also after an interrupted registration that had committed
			// (maybe): the row was this instance's and is inactive now.
			s.log.Info("deregistered sensor worker", "id", s.reg.ID(), "name", s.cfg.Name, "status", workers.StatusInactive)
		case errors.Is(err, workers.ErrNotRegistered):
			// The interrupted registration had not committed: no row.
			err = nil
		case errors.Is(err, workers.ErrRowGone), errors.Is(err, workers.ErrTakenOver):
			s.log.Warn("sensor worker not deregistered: the row is no longer this instance's", "id", id, "name", s.cfg.Name, "error", err)
			err = nil
		default:
			err = fmt.Errorf("%w (the row will show as stale once its heartbeat is older than its grace)", err)
			s.log.Error("deregistering sensor worker failed", "id", id, "name", s.cfg.Name, "error", err)
		}
	}
	s.mu.Lock()
	s.registered = false
	s.mu.Unlock()
	s.metrics.registered.Set(0)
	if s.server != nil {
		if s.server.Shutdown(ctx) != nil {
			_ = s.server.Close()
		}
	}
	if s.db != nil {
		// pgx bounds closing a connection on its own clock (15 s when the
		// server does not answer, e.g. a cancel request to a hung server):
		// close in the background and abandon it at the deadline; the
		// process exits, and the kernel closes the sockets.
		if !waitWithin(ctx, s.db.Close) {
			s.log.Warn("closing the database connections did not finish within the shutdown timeout; abandoned", "name", s.cfg.Name,
				"shutdown_timeout", s.cfg.ShutdownTimeout.String())
		}
	}
	return err
}

// closeReserve is the part of the shutdown timeout kept for closing the
// connections after deregistering.
func closeReserve(timeout time.Duration) time.Duration {
	return min(timeout/4, 500*time.Millisecond)
}

// waitWithin runs fn in the background and waits until it returns or ctx
// ends; false when ctx ended first (fn then goes on, abandoned).
func waitWithin(ctx context.Context, fn func()) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// fail stops the service on its own with err.
func (s *Service) fail(err error) {
	s.mu.Lock()
	first := s.fatal == nil
	if first {
		s.fatal = err
	}
	s.mu.Unlock()
	if !first {
		return
	}
	s.log.Error("sensor worker stopping", "name", s.cfg.Name, "error", err)
	if s.cancel != nil {
		s.cancel()
	}
	close(s.done)
}

func (s *Service) serveMetrics() error {
	// Timeouts, a connection limit and errors through slog (ListenMetrics).
	ln, srv, err := ListenMetrics(s.cfg.MetricsAddr, s.Handler(), s.log, DefaultMetricsLimits)
	if err != nil {
		return fmt.Errorf("serving metrics on %s: %w (choose another --metrics-addr, or leave it empty to turn metrics off)", s.cfg.MetricsAddr, err)
	}
	s.listener, s.server = ln, srv
	go func() { _ = s.server.Serve(ln) }()
	s.log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return nil
}

// requireWorkerColumns checks the worker columns registration writes, so
// that a database another tool created fails with what is missing.
func requireWorkerColumns(db *database.DB) error {
	var missing []string
	for _, c := range []string{"name", "worker_type", "worker_role", "host", "status", "capabilities", "meta", "last_heartbeat", "created", "updated"} {
		if !db.Worker.Columns[c] {
			missing = append(missing, "worker."+c+" column")
		}
	}
	if len(missing) > 0 {
		return &database.SchemaError{Schema: db.Schema, Missing: missing}
	}
	return nil
}
