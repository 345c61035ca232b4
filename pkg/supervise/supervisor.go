package supervise

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/attune-automation/attunectl/pkg/fence"
	"github.com/attune-automation/attunectl/pkg/ratelog"
)

// DefaultStopTimeout is the wait between SIGTERM and SIGKILL.
const DefaultStopTimeout = 5 * time.Second

// Options configure a Supervisor.
type Options struct {
	// Policy is the restart policy; zero fields take DefaultPolicy's.
	Policy Policy
	// StopTimeout is the wait between SIGTERM and SIGKILL (sensor.stop_timeout).
	StopTimeout time.Duration
	// LogLevel is passed to sensor processes as ATTUNE_LOG_LEVEL.
	LogLevel string
	// Logger receives the supervisor's and the sensors' logs.
	Logger *slog.Logger
	// OnState is called when a sensor's run state changes (metrics).
	OnState func(ref, state string)
	// OnLost is called when a fenced write finds the assignment moved on.
	OnLost func(f fence.Fence)
	// OnEvent is called for each event a built-in sensor writes (metrics).
	OnEvent func(ref string, err error)
}

// Supervisor runs the sensors this worker holds. Reconcile tells it the
// current set; it starts what is new and stops what is gone.
type Supervisor struct {
	opts     Options
	policy   Policy
	launcher Launcher
	store    Store
	endpoint *Endpoint
	log      *slog.Logger

	mu      sync.Mutex
	runners map[int64]*runner // by workload
	// stopping are the runners asked to stop whose process is not gone
	// yet, by workload: a stop never blocks the caller (the placement
	// loop must go on renewing, heartbeating, shutting down), and a
	// workload is started again, or released, only once its runner is
	// done. finished is signalled when one is.
	stopping map[int64]*runner
	finished chan struct{}
	// logLimit keeps a hot path's failures (timer events that cannot be
	// written) to a line per sensor per ratelog.Window.
	logLimit *ratelog.Limiter
}

// New makes a supervisor. launcher may be nil on a worker that runs only
// built-in sensors; endpoint serves the events of external sensors.
func New(launcher Launcher, store Store, endpoint *Endpoint, opts Options) *Supervisor {
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = DefaultStopTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "info"
	}
	return &Supervisor{opts: opts, policy: opts.Policy.withDefaults(), launcher: launcher, store: store, logLimit: ratelog.New(ratelog.Window),
		endpoint: endpoint, log: opts.Logger, runners: map[int64]*runner{}, stopping: map[int64]*runner{}, finished: make(chan struct{}, 1)}
}

// Reconcile makes the running set equal held: it starts a runner for each
// new assignment and stops the runners whose workload is no longer held by
// this worker and instance, or whose sensor changed (started again once
// the old process is gone, by a later Reconcile). It does not wait for a
// stop: see Stopped.
func (s *Supervisor) Reconcile(ctx context.Context, held []Assignment) {
	want := map[int64]Assignment{}
	for _, a := range held {
		want[a.Fence.Workload] = a
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for w, r := range s.runners {
		a, ok := want[w]
		r.mu.Lock()
		lost, parked := r.lost, r.state == StateQuarantined
		r.mu.Unlock()
		changed := ok && !sameDefinition(a.Sensor, r.a.Sensor)
		// A quarantined runner waits for its stop; an operator's change of
		// the sensor (`sensor enable` clears the quarantine) starts it anew.
		touched := ok && parked && a.Sensor.Version != r.a.Sensor.Version
		if !ok || lost || changed || touched || a.Fence.Worker != r.a.Fence.Worker || a.Fence.Instance != r.a.Fence.Instance {
			switch {
			case lost:
			case changed:
				r.log.Info("the sensor's definition changed; restarting it with the new one")
			case touched:
				r.log.Info("the quarantined sensor was changed by an operator; starting it again")
			}
			s.stopLocked(r)
		}
	}
	for w, a := range want {
		_, running := s.runners[w]
		_, stopping := s.stopping[w]
		if running || stopping {
			continue
		}
		rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		r := &runner{sup: s, a: a, fence: a.Fence, cancel: cancel, done: make(chan struct{}),
			log: s.log.With("sensor", a.Sensor.Ref, "workload", w)}
		s.runners[w] = r
		go r.run(rctx)
	}
}

// stopLocked asks r to stop and moves it to the stopping set; s.mu held.
func (s *Supervisor) stopLocked(r *runner) {
	w := r.a.Fence.Workload
	delete(s.runners, w)
	s.stopping[w] = r
	r.cancel()
	go func() {
		<-r.done
		select {
		case s.finished <- struct{}{}:
		default:
		}
	}()
}

// Stop asks the runners of the given workloads (handed over, drained,
// disabled, lost) to stop, and returns at once: Stopped reports them once
// their processes are gone.
func (s *Supervisor) Stop(workloads ...int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range workloads {
		if r, ok := s.runners[w]; ok {
			s.stopLocked(r)
		}
	}
}

// Finished is signalled when a stopping runner is done: the caller then
// collects it with Stopped (and may start its workload again).
func (s *Supervisor) Finished() <-chan struct{} { return s.finished }

// Stopped returns the last fences of the runners that were stopping and
// are done since the last call (their processes and everything they
// started are gone), so the caller can release them.
func (s *Supervisor) Stopped() []fence.Fence {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []fence.Fence
	for w, r := range s.stopping {
		select {
		case <-r.done:
			out = append(out, r.currentFence())
			delete(s.stopping, w)
		default:
		}
	}
	return out
}

// StopAll stops every runner (worker shutdown), waits until all of them,
// and those already stopping, are done, and returns their fences. The
// caller bounds the wait.
func (s *Supervisor) StopAll() []fence.Fence {
	s.mu.Lock()
	for _, r := range s.runners {
		s.stopLocked(r)
	}
	all := make([]*runner, 0, len(s.stopping))
	for _, r := range s.stopping {
		all = append(all, r)
	}
	s.mu.Unlock()
	fences := make([]fence.Fence, 0, len(all))
	for _, r := range all {
		<-r.done
		fences = append(fences, r.currentFence())
	}
	s.mu.Lock()
	for _, r := range all {
		delete(s.stopping, r.a.Fence.Workload)
	}
	s.mu.Unlock()
	return fences
}

// Running returns the run state of each workload this worker runs.
func (s *Supervisor) Running() map[int64]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int64]string, len(s.runners))
	for w, r := range s.runners {
		r.mu.Lock()
		out[w] = r.state
		r.mu.Unlock()
	}
	return out
}
