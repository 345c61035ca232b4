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
		endpoint: endpoint, log: opts.Logger, runners: map[int64]*runner{}}
}

// Reconcile makes the running set equal held: it starts a runner for each
// new assignment and stops (and waits for) the runners whose workload is
// no longer held by this worker and instance. It returns the fences of the
// runners it stopped.
func (s *Supervisor) Reconcile(ctx context.Context, held []Assignment) []fence.Fence {
	want := map[int64]Assignment{}
	for _, a := range held {
		want[a.Fence.Workload] = a
	}
	var stop []*runner
	restart := map[int64]bool{} // a new definition: started once the old one is gone
	s.mu.Lock()
	for w, r := range s.runners {
		a, ok := want[w]
		r.mu.Lock()
		lost, parked := r.lost, r.state == StateQuarantined
		r.mu.Unlock()
		changed := ok && !sameDefinition(a.Sensor, r.a.Sensor)
		// A quarantined runner waits for its stop; an operator's change of
		// the sensor (`sensor enable` clears the quarantine) starts it anew.
		touched := ok && parked && !a.Sensor.Version.Equal(r.a.Sensor.Version)
		if !ok || lost || changed || touched || a.Fence.Worker != r.a.Fence.Worker || a.Fence.Instance != r.a.Fence.Instance {
			switch {
			case lost:
			case changed:
				r.log.Info("the sensor's definition changed; restarting it with the new one")
				restart[w] = true
			case touched:
				r.log.Info("the quarantined sensor was changed by an operator; starting it again")
				restart[w] = true
			}
			stop = append(stop, r)
			delete(s.runners, w)
		}
	}
	start := func(w int64, a Assignment) {
		rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		r := &runner{sup: s, a: a, fence: a.Fence, cancel: cancel, done: make(chan struct{}),
			log: s.log.With("sensor", a.Sensor.Ref, "workload", w)}
		s.runners[w] = r
		go r.run(rctx)
	}
	for w, a := range want {
		if _, ok := s.runners[w]; !ok && !restart[w] {
			start(w, a)
		}
	}
	s.mu.Unlock()
	fences := s.stopRunners(stop)
	if len(restart) > 0 {
		s.mu.Lock()
		for w := range restart {
			if _, ok := s.runners[w]; !ok {
				start(w, want[w])
			}
		}
		s.mu.Unlock()
	}
	return fences
}

// Stop stops the runners of the given workloads (handed over, drained,
// disabled) and returns their last fences, so the caller can release them.
func (s *Supervisor) Stop(workloads ...int64) []fence.Fence {
	var stop []*runner
	s.mu.Lock()
	for _, w := range workloads {
		if r, ok := s.runners[w]; ok {
			stop = append(stop, r)
			delete(s.runners, w)
		}
	}
	s.mu.Unlock()
	return s.stopRunners(stop)
}

// StopAll stops every runner (worker shutdown) and returns their fences.
func (s *Supervisor) StopAll() []fence.Fence {
	s.mu.Lock()
	stop := make([]*runner, 0, len(s.runners))
	for w, r := range s.runners {
		stop = append(stop, r)
		delete(s.runners, w)
	}
	s.mu.Unlock()
	return s.stopRunners(stop)
}

func (s *Supervisor) stopRunners(rs []*runner) []fence.Fence {
	var wg sync.WaitGroup
	fences := make([]fence.Fence, len(rs))
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.cancel()
			<-r.done
			fences[i] = r.currentFence()
		}()
	}
	wg.Wait()
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
