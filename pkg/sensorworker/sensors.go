package sensorworker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/attune-automation/attunectl/pkg/events"
	"github.com/attune-automation/attunectl/pkg/fence"
	"github.com/attune-automation/attunectl/pkg/placement"
	"github.com/attune-automation/attunectl/pkg/ratelog"
	"github.com/attune-automation/attunectl/pkg/sensors"
	"github.com/attune-automation/attunectl/pkg/supervise"
	"github.com/attune-automation/attunectl/pkg/workers"
)

// SensorsConfig is how the worker places and runs sensors (pkg/placement
// and pkg/supervise); the zero value with Enabled false only registers.
type SensorsConfig struct {
	// Enabled: take a share of the sensors and run them (sensor.run_sensors).
	Enabled bool
	// Labels and Taints are advertised in capabilities for placement.
	Labels map[string]string
	Taints []placement.Taint
	// PacksDir resolves relative entrypoints (sensor.packs_dir).
	PacksDir string
	// StopTimeout is SIGTERM → SIGKILL (sensor.stop_timeout).
	StopTimeout time.Duration
	// QuarantineAfter consecutive failures quarantine a sensor.
	QuarantineAfter int
	// Lease is a claim's and renewal's length (0: the worker's grace).
	Lease time.Duration
	// Budget is the handoffs per interval when rebalancing or draining.
	Budget int
	// EventsListen, EventRate and EventsAsync configure the event endpoint
	// and its writer (sensor.events.*).
	EventsListen string
	EventRate    int
	EventsAsync  bool
	// LogLevel is passed to sensor processes as ATTUNE_LOG_LEVEL.
	LogLevel string
}

// sensorsLoop places this worker's sensors and runs them: once per
// heartbeat interval (and at once when LISTEN reports released sensors) it
// ticks the placer — one statement renews every lease — stops what it no
// longer holds and starts what it claimed.
type sensorsLoop struct {
	s       *Service
	cfg     SensorsConfig
	placer  *placement.Placer
	sup     *supervise.Supervisor
	ep      *supervise.Endpoint
	writer  *events.BatchWriter
	log     *slog.Logger
	metrics *sensorMetrics
	// launcher starts sensor processes; nil when the worker runs none.
	launcher *sandboxLauncher
	// logLimit keeps the tick's repeated failures to a line per window.
	logLimit *ratelog.Limiter

	mu    sync.Mutex
	specs map[int64]sensors.RunSpec // by sensor id
	wake  chan struct{}
}

// fencedStore starts every run through the placer, which records the new
// generation, so the next renewal and a later fenced release name it.
type fencedStore struct {
	events.Store
	placer *placement.Placer
}

func (f fencedStore) BeginRun(ctx context.Context, cur fence.Fence) (fence.Fence, supervise.State, error) {
	var st supervise.State
	nf, err := f.placer.BeginRun(func() (fence.Fence, error) {
		var (
			nf  fence.Fence
			err error
		)
		nf, st, err = f.Store.BeginRun(ctx, cur)
		return nf, err
	})
	return nf, st, err
}

// startSensors starts the placement loop after registration. Sensor
// processes run through the sandbox of Options.Sandbox; without one, only
// built-in sensors run and external ones are reported unrunnable.
func (s *Service) startSensors(ctx context.Context) error {
	c := s.cfg.Sensors
	if !c.Enabled {
		return nil
	}
	l := &sensorsLoop{s: s, cfg: c, log: s.log.With("component", "sensors"), specs: map[int64]sensors.RunSpec{},
		wake: make(chan struct{}, 1), metrics: s.metrics.sensors, logLimit: ratelog.New(ratelog.Window)}
	l.placer = placement.New(s.db, placement.Config{WorkerID: s.reg.ID(), InstanceID: s.opts.Instance.ID,
		Interval: s.cfg.HeartbeatInterval, Lease: c.Lease, Budget: c.Budget, DeferRelease: true, AdoptOwnLeases: !s.cfg.Replace})
	l.writer = events.NewBatchWriter(s.db, 2, c.EventsAsync)
	l.ep = supervise.NewEndpoint(l.writer, supervise.EndpointOptions{Addr: c.EventsListen, RatePerSecond: float64(c.EventRate),
		Burst: c.EventRate, Logger: l.log, Checker: events.NewChecker(s.db),
		OnStale:  func(f fence.Fence) { l.poke() },
		OnResult: func(ref string, status int) { l.metrics.events.WithLabelValues(eventResult(status)).Inc() }})
	if err := l.ep.Start(); err != nil {
		l.writer.Close()
		return err
	}
	var launcher supervise.Launcher
	if s.opts.Sandbox != nil {
		l.launcher = newSandboxLauncher(s.opts.Sandbox, s.opts.Environ, s.opts.PassthroughEnv, s.opts.Allow)
		launcher = l.launcher
	}
	l.sup = supervise.New(launcher, fencedStore{Store: events.NewStore(s.db, l.writer), placer: l.placer}, l.ep, supervise.Options{
		Policy:      supervise.Policy{QuarantineAfter: c.QuarantineAfter},
		StopTimeout: c.StopTimeout, LogLevel: c.LogLevel, Logger: l.log,
		OnState: func(ref, state string) {
			if state == supervise.StateStarting {
				l.metrics.starts.Inc()
			}
		},
		OnLost: func(f fence.Fence) { l.metrics.fenceRejections.Inc(); l.poke() },
		OnEvent: func(ref string, err error) {
			if err == nil {
				l.metrics.events.WithLabelValues("accepted").Inc()
			} else if errors.Is(err, fence.ErrStale) {
				l.metrics.events.WithLabelValues("stale_fence").Inc()
			}
		},
	})
	s.sensorsLoop = l
	s.wg.Add(1)
	go l.run(ctx)
	l.log.Info("running sensors", "event_endpoint", l.ep.URL(), "external_processes", launcher != nil,
		"labels", c.Labels, "taints", len(c.Taints))
	return nil
}

func (l *sensorsLoop) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *sensorsLoop) run(ctx context.Context) {
	defer l.s.wg.Done()
	l.ensureWorkloads(ctx)
	released, err := placement.Listen(ctx, l.s.db)
	if err != nil {
		l.log.Info("claims wait for the heartbeat tick", "reason", err)
	}
	// The service's clock drives the tick, as it does the heartbeat's.
	// Between heartbeats, one more timer: just after another worker's
	// earliest lease lapses (failover then takes lease + about a tenth of
	// a second, not up to a further interval), or soon after a claim that
	// lost sensors to other claimers.
	t := l.s.clock.NewTimer(l.s.cfg.HeartbeatInterval)
	var soon Timer
	var soonC <-chan time.Time
	defer func() {
		t.Stop()
		if soon != nil {
			soon.Stop()
		}
	}()
	next := l.tick(ctx)
	for {
		if soon != nil {
			soon.Stop()
			soon, soonC = nil, nil
		}
		if d, ok := next.Sooner(l.s.cfg.HeartbeatInterval); ok {
			soon = l.s.clock.NewTimer(d)
			soonC = soon.C()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			t = l.s.clock.NewTimer(l.s.cfg.HeartbeatInterval)
		case <-soonC:
		case <-l.wake:
		case <-l.sup.Finished():
			// A stopped sensor's process is gone: release it, or start
			// it again under its new definition.
		case _, ok := <-released:
			if !ok {
				released = nil
				continue
			}
		}
		next = l.tick(ctx)
	}
}

// ensureWorkloads gives the sensors another tool wrote without a workload
// one, so that they can be claimed — where Attune pins workloads to a pack
// release (sensor_workload.pack_release), only sensors without a pack:
// a pack's sensor gets its pinned workload from Attune
// (sensors.EnsureWorkloads). It is bounded like a tick, so a hung database
// never holds the loop, nor the worker's stop.
func (l *sensorsLoop) ensureWorkloads(ctx context.Context) {
	tctx, cancel := context.WithTimeout(ctx, l.s.heartbeatTimeout())
	defer cancel()
	if n, err := sensors.EnsureWorkloads(tctx, l.s.db); err != nil {
		if ctx.Err() == nil {
			l.log.Warn("creating the workloads of sensors that lack one failed; they wait for a worker's next start", "error", err)
		}
	} else if n > 0 {
		l.log.Info("created the workloads of sensors that lacked one", "rows", n)
	}
}

// tick renews, claims and balances (placement), then makes the running set
// what is held (supervise).
func (l *sensorsLoop) tick(ctx context.Context) placement.Held {
	tctx, cancel := context.WithTimeout(ctx, l.s.heartbeatTimeout())
	defer cancel()
	start := time.Now()
	held, err := l.placer.Tick(tctx)
	l.metrics.renewal.Observe(time.Since(start).Seconds())
	var dropped []int64
	for _, d := range held.Dropped {
		dropped = append(dropped, d.Workload)
		l.metrics.handoffs.WithLabelValues(d.Reason).Inc()
		l.log.Info("sensor no longer ours; stopping it", "sensor", d.SensorRef, "workload", d.Workload, "reason", d.Reason)
	}
	// Stop, and release what is handed over once its process is gone (a
	// later tick, woken when it is), so the next owner starts it at once
	// and never while the old process still runs. A stop never waits
	// here: the renewal of every other lease must go on.
	l.sup.Stop(dropped...)
	l.releaseStopped(ctx, tctx)
	if err != nil {
		if ctx.Err() == nil {
			if errors.Is(err, workers.ErrTakenOver) {
				l.log.Error("placement: the worker row is no longer ours", "error", err)
			} else if ok, left := l.logLimit.Allow("tick"); ok {
				// Claims and renewals: one line a window while it lasts.
				l.log.Warn("placement tick failed; retrying at the next tick", "error", err, "suppressed", left)
			}
		}
		if len(held.Leases) == 0 {
			return held
		}
	}
	for _, c := range held.Claimed {
		l.log.Info("claimed sensor", "sensor", c.SensorRef, "workload", c.Workload, "generation", c.Generation)
	}
	as, err := l.assignments(tctx, held.Leases)
	if err != nil {
		if ctx.Err() == nil {
			l.log.Warn("reading the definitions of held sensors failed; retrying at the next tick", "error", err)
		}
		return held
	}
	l.sup.Reconcile(ctx, as)
	l.metrics.observe(l.sup.Running())
	return held
}

// releaseStopped releases the handed-over sensors whose processes are
// gone, and says which will not end.
func (l *sensorsLoop) releaseStopped(ctx, tctx context.Context) {
	if err := l.placer.ReleaseStopped(tctx, l.sup.Stopped()); err != nil && ctx.Err() == nil {
		l.log.Warn("releasing handed-over sensors failed; retrying at the next tick", "error", err)
	}
}

// assignments joins the held leases with the sensors' definitions, read
// when a sensor is first held and again whenever the renewal says its
// definition changed (Lease.Version): `sensor add --update`, a runtime's
// new interpreter, reach the sensor at the next tick.
func (l *sensorsLoop) assignments(ctx context.Context, leases []placement.Lease) ([]supervise.Assignment, error) {
	l.mu.Lock()
	var missing []int64
	for _, le := range leases {
		spec, ok := l.specs[le.SensorID]
		if !ok || le.Version != "" && le.Version != spec.Version {
			missing = append(missing, le.SensorID)
		}
	}
	l.mu.Unlock()
	if len(missing) > 0 {
		got, err := sensors.RunSpecs(ctx, l.s.db, missing)
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		maps.Copy(l.specs, got)
		l.mu.Unlock()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]supervise.Assignment, 0, len(leases))
	for _, le := range leases {
		spec, ok := l.specs[le.SensorID]
		if !ok {
			continue // deleted since the tick
		}
		out = append(out, supervise.Assignment{Fence: le.Fence, Sensor: l.sensorOf(spec)})
	}
	return out, nil
}

func (l *sensorsLoop) sensorOf(spec sensors.RunSpec) supervise.Sensor {
	s := supervise.Sensor{ID: spec.ID, Ref: spec.Ref, PackRef: spec.PackRef, RuntimeRef: spec.RuntimeRef, Entrypoint: spec.Entrypoint,
		Config: spec.Config, Version: spec.Version, Rules: spec.Rules, TriggerTypes: spec.TriggerTypes}
	for _, t := range spec.Triggers {
		s.Triggers = append(s.Triggers, supervise.Trigger{ID: t.ID, Ref: t.Ref, TriggerRef: t.Ref, Config: t.Config})
	}
	if spec.Rules {
		s.Instances = []supervise.Trigger{}
		for _, r := range spec.Instances {
			s.Instances = append(s.Instances, supervise.Trigger{ID: r.ID, Ref: r.Ref, TriggerRef: r.TriggerRef, Config: r.Config})
		}
	}
	if s.Builtin() {
		return s
	}
	// A workload Attune pinned to a pack release runs that release's
	// files, once they are on this host and match the digest.
	packsDir, packRef := l.cfg.PacksDir, spec.PackRef
	if spec.ReleaseDigest != "" {
		if why := supervise.CheckRelease(l.cfg.PacksDir, spec.ReleaseDigest); why != "" {
			s.Unrunnable = why
			return s
		}
		packsDir, packRef = supervise.ReleaseRoot(l.cfg.PacksDir, spec.ReleaseDigest)
	}
	// The entrypoint is judged as the sensor's user sees it: as root,
	// attunectl says nothing about a path that user cannot reach.
	if sb := l.s.opts.Sandbox; sb != nil && sb.SwitchesUser() {
		interp, _ := supervise.Interpreter(spec.RuntimeRef, spec.ExecutionConfig)
		if path, err := supervise.EntrypointPath(packsDir, packRef, spec.Entrypoint); err == nil && !sb.User().MayRead(path, len(interp) == 0) {
			s.Unrunnable = fmt.Sprintf("entrypoint %s: missing, or not readable by %s, whom the sensor runs as (make it and its directories readable by that user, or change sensor.run_as)", path, sb.User())
			return s
		}
	}
	s.Argv, s.Unrunnable = supervise.CommandLine(spec.RuntimeRef, spec.ExecutionConfig, packsDir, packRef, spec.Entrypoint)
	if s.Unrunnable == "" && l.s.opts.Sandbox == nil {
		s.Unrunnable = "this worker runs no external sensor processes (no sandbox: see sensor.run_as)"
	}
	if s.Unrunnable == "" && l.launcher != nil {
		s.Unrunnable = l.launcher.allowed(s.Argv)
	}
	return s
}

// stopSensors stops every sensor process (SIGTERM, SIGKILL after the stop
// timeout) and then releases every lease, so that the next owner claims
// them at once; bounded by ctx.
func (s *Service) stopSensors(ctx context.Context) {
	l := s.sensorsLoop
	if l == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		n := len(l.sup.StopAll())
		dropped, err := l.placer.ReleaseAll(ctx)
		if err != nil {
			l.log.Warn("releasing the sensors failed; their leases expire instead", "error", err)
		} else if n > 0 || len(dropped) > 0 {
			l.log.Info("released sensors", "stopped", n, "released", len(dropped))
		}
		_ = l.ep.Close(ctx)
		l.writer.Close()
	}()
	select {
	case <-done:
	case <-ctx.Done():
		l.log.Warn("stopping the sensors took longer than the shutdown timeout; their leases expire instead")
	}
}

func eventResult(status int) string {
	switch status {
	case http.StatusCreated:
		return "accepted"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden_trigger"
	case http.StatusConflict:
		return "stale_fence"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusTooManyRequests:
		return "rate_limited"
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusNotFound:
		return "unknown_trigger"
	case http.StatusUnprocessableEntity:
		return "invalid_payload"
	}
	return "error_" + strconv.Itoa(status)
}
