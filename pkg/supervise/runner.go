package supervise

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/attune-automation/attunectl/pkg/fence"
)

// Sensor is what the supervisor needs to know to run one sensor.
type Sensor struct {
	ID         int64
	Ref        string
	RuntimeRef string
	Entrypoint string
	Config     map[string]any
	// PackRef is the sensor's pack (ATTUNE_PACK_REF).
	PackRef string
	// Triggers are the sensor's triggers: what its events may name.
	Triggers []Trigger
	// Rules is set on a schema with Attune's rules: ATTUNE_SENSOR_TRIGGERS
	// then carries Instances, the rule instances (id and ref the rule's,
	// config its trigger_params), and ATTUNE_SENSOR_TRIGGER_TYPES the
	// TriggerTypes, as Attune's sensor manager passes them.
	Rules        bool
	Instances    []Trigger
	TriggerTypes []string
	// Argv is the resolved command line of an external sensor (interpreter
	// and entrypoint); empty for a built-in sensor.
	Argv []string
	// Dir is the working directory of the process ("" is the sandbox's).
	Dir string
	// Unrunnable, when set, says why the sensor cannot start on this
	// worker (entrypoint missing, not executable, …): it is quarantined
	// at once with that reason rather than crash-looping.
	Unrunnable string
	// Version changes whenever an operator changes the sensor (its
	// definition, its runtime, its enablement, its quarantine, its rules):
	// a quarantined sensor whose version moves is started again (`sensor
	// enable`).
	Version string
}

// sameDefinition reports whether a and b run the same way (their versions
// aside).
func sameDefinition(a, b Sensor) bool {
	a.Version, b.Version = "", ""
	return reflect.DeepEqual(a, b)
}

// Builtin reports whether the sensor runs inside the worker.
func (s Sensor) Builtin() bool { return s.RuntimeRef == BuiltinRuntimeRef }

// Assignment is one workload this worker holds, under a fence.
type Assignment struct {
	Fence  fence.Fence
	Sensor Sensor
}

// ProcessSpec is one sensor process to start.
type ProcessSpec struct {
	Argv []string
	// Env is added to the sandbox's scrubbed baseline.
	Env []string
	Dir string
}

// Process is a started sensor process.
type Process interface {
	// Stdout and Stderr are the process's output streams.
	Stdout() io.Reader
	Stderr() io.Reader
	// Wait blocks until the process and everything it spawned are gone and
	// describes the exit ("exit status 1", "signal: killed").
	Wait() string
	// Stop sends SIGTERM to the process and its descendants, then SIGKILL
	// after grace; it returns when nothing is left.
	Stop(grace time.Duration)
}

// Launcher starts sensor processes; it is the one sandbox every external
// command of attunectl goes through.
type Launcher interface {
	Launch(ctx context.Context, spec ProcessSpec) (Process, error)
}

// Run states shown by `sensor list`.
const (
	StateStarting    = "starting"
	StateRunning     = "running"
	StateBackoff     = "backoff"
	StateQuarantined = "quarantined"
)

// Store holds the fenced writes the supervisor makes on behalf of a
// sensor. Every method fails with fence.ErrStale when the fence is stale.
type Store interface {
	EventWriter
	// BeginRun starts a run: it bumps the generation of the assignment held
	// under f's worker and instance and returns the new fence with the
	// workload's restart state.
	BeginRun(ctx context.Context, f fence.Fence) (fence.Fence, State, error)
	// SaveState records the workload's run state under f.
	SaveState(ctx context.Context, f fence.Fence, runState string, st State) error
	// Stopped records that this worker's process of f's sensor is gone
	// (where the schema keeps such a record: Attune's sensor_process).
	Stopped(ctx context.Context, f fence.Fence) error
}

// runner supervises one workload on this worker until stopped.
type runner struct {
	sup *Supervisor
	a   Assignment
	log *slog.Logger

	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	fence fence.Fence
	state string
	lost  bool
}

func (r *runner) currentFence() fence.Fence {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fence
}

func (r *runner) setState(s string) {
	r.mu.Lock()
	r.state = s
	r.mu.Unlock()
	if r.sup.opts.OnState != nil {
		r.sup.opts.OnState(r.a.Sensor.Ref, s)
	}
}

// The waits between attempts to begin a run after a database error.
const (
	startRetryFirst = 500 * time.Millisecond
	startRetryMax   = 30 * time.Second
)

// run is the supervision loop.
func (r *runner) run(ctx context.Context) {
	defer close(r.done)
	s := r.a.Sensor
	retry := startRetryFirst
	for ctx.Err() == nil {
		f, st, err := r.sup.store.BeginRun(ctx, r.currentFence())
		if err != nil {
			if errors.Is(err, fence.ErrStale) {
				r.markLost()
				return
			}
			// A database error (a lock, a timeout, a restart): the start is
			// retried here with a growing wait, never left for a tick that
			// would find this runner alive and start nothing.
			if ctx.Err() == nil {
				r.log.Warn("starting a run failed; retrying", "in", retry.String(), "error", err)
			}
			if !sleep(ctx, retry) {
				return
			}
			retry = min(2*retry, startRetryMax)
			continue
		}
		retry = startRetryFirst
		r.mu.Lock()
		r.fence = f
		r.mu.Unlock()

		if st.Quarantined {
			r.setState(StateQuarantined)
			r.log.Warn("sensor is quarantined; not starting it", "reason", st.Reason)
			<-ctx.Done()
			return
		}
		if reason := r.unrunnable(); reason != "" {
			st.Quarantined, st.Reason = true, reason
			r.save(ctx, StateQuarantined, st)
			r.log.Error("sensor cannot run on this worker; quarantined", "reason", reason)
			<-ctx.Done()
			return
		}
		if wait := time.Until(st.NextStartAt); wait > 0 {
			r.save(ctx, StateBackoff, st)
			r.log.Info("sensor in backoff", "wait", wait.Round(time.Millisecond).String(), "failures", st.ConsecutiveFailures)
			if !sleep(ctx, wait) {
				return
			}
		}

		if s.Builtin() {
			r.runBuiltin(ctx, f, st)
			return
		}
		started := time.Now()
		exit, tail, stopped, transient := r.runProcess(ctx, f, st)
		if stopped {
			return
		}
		if transient {
			// The worker itself lacked something (descriptors, memory,
			// processes): not the sensor's failure, never a step towards
			// its quarantine. Try again after the first backoff.
			r.log.Warn("sensor process could not start for want of the worker's resources; retrying", "error", exit)
			st.NextStartAt = time.Now().Add(r.sup.policy.Initial)
			if !r.save(ctx, StateBackoff, st) {
				return
			}
			continue
		}
		st = r.sup.policy.AfterExit(st, time.Since(started), exit, tail, time.Now())
		st.Restarts++
		next := StateBackoff
		if st.Quarantined {
			next = StateQuarantined
		}
		r.log.Warn("sensor process exited", "exit", exit, "failures", st.ConsecutiveFailures, "quarantined", st.Quarantined)
		if !r.save(ctx, next, st) {
			return
		}
	}
}

func (r *runner) unrunnable() string {
	s := r.a.Sensor
	if s.Unrunnable != "" {
		return s.Unrunnable
	}
	if s.Builtin() {
		if _, err := ParseBuiltin(s.Entrypoint, s.Config); err != nil {
			return err.Error()
		}
		return ""
	}
	if len(s.Argv) == 0 {
		return "no command line: the runtime has no interpreter for this worker and the entrypoint is not a program"
	}
	if r.sup.launcher == nil {
		return "this worker runs no external sensor processes"
	}
	return ""
}

// save records the state under the current fence; false means the fence
// is stale and the runner has stopped being the owner.
func (r *runner) save(ctx context.Context, runState string, st State) bool {
	r.setState(runState)
	if err := r.sup.store.SaveState(ctx, r.currentFence(), runState, st); err != nil {
		if errors.Is(err, fence.ErrStale) {
			r.markLost()
			return false
		}
		if ctx.Err() == nil {
			r.log.Warn("recording the sensor's state failed", "state", runState, "error", err)
		}
	}
	return true
}

func (r *runner) markLost() {
	r.mu.Lock()
	r.lost = true
	r.mu.Unlock()
	r.log.Warn("the sensor's assignment moved on; stopping it here")
	if r.sup.opts.OnLost != nil {
		r.sup.opts.OnLost(r.currentFence())
	}
}

func (r *runner) runBuiltin(ctx context.Context, f fence.Fence, st State) {
	s := r.a.Sensor
	sched, _ := ParseBuiltin(s.Entrypoint, s.Config)
	r.save(ctx, StateRunning, st)
	r.log.Info("built-in sensor started", "entrypoint", s.Entrypoint, "generation", f.Generation)
	err := runBuiltin(ctx, sched, time.Now, func(ctx context.Context, p TimerPayload) error {
		payload, _ := json.Marshal(p)
		for _, t := range s.Triggers {
			_, err := r.sup.store.WriteEvent(ctx, Event{Fence: f, SensorID: s.ID, SensorRef: s.Ref,
				TriggerID: t.ID, TriggerRef: t.TriggerRef, Config: t.Config, Payload: payload})
			if r.sup.opts.OnEvent != nil {
				r.sup.opts.OnEvent(s.Ref, err)
			}
			if err != nil {
				if !errors.Is(err, fence.ErrStale) && ctx.Err() == nil {
					if ok, left := r.sup.logLimit.Allow("timer/" + s.Ref); ok {
						r.log.Warn("recording a timer event failed", "trigger", t.TriggerRef, "error", err, "suppressed", left)
					}
				}
				return err
			}
		}
		return nil
	})
	if errors.Is(err, fence.ErrStale) {
		r.markLost()
	}
}

// runProcess starts the sensor process and waits for it. stopped reports
// that the runner was asked to stop (or lost the fence) and the process
// was stopped for that reason.
func (r *runner) runProcess(ctx context.Context, f fence.Fence, st State) (exit, tail string, stopped, transient bool) {
	s := r.a.Sensor
	token := r.sup.endpoint.Grant(f, s.ID, s.Ref, s.Triggers)
	defer r.sup.endpoint.Revoke(token)
	instances := s.Triggers
	if s.Rules {
		instances = s.Instances
	}
	triggers, _ := json.Marshal(instances)
	if instances == nil {
		triggers = []byte("[]")
	}
	config := []byte("null")
	if s.Config != nil {
		config, _ = json.Marshal(s.Config)
	}
	types := s.TriggerTypes
	if !s.Rules {
		for _, t := range s.Triggers {
			types = append(types, t.TriggerRef)
		}
		slices.Sort(types)
	}
	typesJSON, _ := json.Marshal(types)
	if types == nil {
		typesJSON = []byte("[]")
	}
	env := []string{
		"ATTUNE_API_URL=" + r.sup.endpoint.URL(),
		"ATTUNE_API_TOKEN=" + token,
		"ATTUNE_SENSOR_ID=" + strconv.FormatInt(s.ID, 10),
		"ATTUNE_SENSOR_REF=" + s.Ref,
		"ATTUNE_SENSOR_WORKLOAD_ID=" + strconv.FormatInt(f.Workload, 10),
		"ATTUNE_SENSOR_ASSIGNMENT_GENERATION=" + strconv.FormatInt(f.Generation, 10),
		"ATTUNE_SENSOR_TRIGGERS=" + string(triggers),
		"ATTUNE_SENSOR_TRIGGER_TYPES=" + string(typesJSON),
		"ATTUNE_SENSOR_CONFIG_JSON=" + string(config),
		"ATTUNE_PACK_REF=" + s.PackRef,
		"ATTUNE_LOG_LEVEL=" + r.sup.opts.LogLevel,
	}
	r.setState(StateStarting)
	p, err := r.sup.launcher.Launch(ctx, ProcessSpec{Argv: s.Argv, Env: env, Dir: s.Dir})
	if err != nil {
		if ctx.Err() != nil {
			return "", "", true, false
		}
		var te interface{ Temporary() bool }
		return fmt.Sprintf("could not start: %v", err), "", false, errors.As(err, &te) && te.Temporary()
	}
	r.save(ctx, StateRunning, st)
	r.log.Info("sensor process started", "argv", s.Argv, "generation", f.Generation)
	out := newOutputPump(r.log)
	var pumps sync.WaitGroup
	pumps.Add(2)
	go func() { defer pumps.Done(); out.pump(p.Stdout(), "stdout") }()
	go func() { defer pumps.Done(); out.pump(p.Stderr(), "stderr") }()
	exited := make(chan string, 1)
	go func() { exited <- p.Wait() }()
	select {
	case exit = <-exited:
		pumps.Wait()
		out.flushDropped()
		return exit, out.stderrTail(), false, false
	case <-ctx.Done():
		// Reported when the box outlasts SIGTERM, SIGKILL and the kill of
		// its helper: its lease stays this worker's until it is gone.
		stuck := time.AfterFunc(r.sup.opts.StopTimeout+10*time.Second, func() {
			r.log.Error("the sensor's process does not end after SIGKILL; its lease is kept until it does")
		})
		p.Stop(r.sup.opts.StopTimeout)
		exit = <-exited
		stuck.Stop()
		if err := r.sup.store.Stopped(context.WithoutCancel(ctx), f); err != nil {
			r.log.Warn("recording the stopped process failed", "error", err)
		}
		pumps.Wait()
		out.flushDropped()
		r.log.Info("sensor process stopped", "exit", exit)
		return exit, out.stderrTail(), true, false
	}
}

// sleep waits d, or until ctx ends; it says whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
