package events

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/fence"
	"github.com/attune-automation/attunectl/pkg/supervise"
)

// On Attune's schema the supervisor also keeps Attune's sensor_process row
// of each sensor it runs — one per sensor and worker, which Attune's UI and
// API read (status, consecutive failures, next restart, stderr excerpt,
// active rules) — as Attune's sensor manager keeps it
// (crates/common/src/repositories/sensor_process.rs:
// upsert_starting_or_running, mark_failed_or_backoff, mark_stopped). Its
// own record stays sensor_workload_state, under the fence.

// processSQL upserts the sensor_process row of the workload's sensor and
// the fence's worker: $1 workload, $2 worker, $3 Attune's status, $4
// consecutive failures, $5 exit code, $6 signal, $7 seconds to the next
// restart, $8 the stderr excerpt. The active rule count is read where the
// schema has rules.
func processSQL(f database.SchemaFacts) string {
	rules := "0"
	if f.Rules() {
		rules = "(SELECT count(*) FROM " + f.RuleInstances("s") + ")"
	}
	return `
INSERT INTO sensor_process AS p (sensor, sensor_ref, worker, worker_name, status, pid, consecutive_failures,
	last_exit_code, last_signal, last_started_at, last_stopped_at, next_restart_at, stderr_excerpt, active_rule_count)
SELECT s.id, s.ref, w.id, w.name, $3::text::sensor_process_status_enum, NULL, $4, $5, $6,
	CASE WHEN $3 IN ('starting', 'running') THEN clock_timestamp() END,
	CASE WHEN $3 IN ('stopped', 'failed', 'backoff') THEN clock_timestamp() END,
	CASE WHEN $7::float8 > 0 THEN clock_timestamp() + make_interval(secs => $7::float8) END,
	nullif($8, ''), ` + rules + `
FROM sensor_workload sw JOIN sensor s ON s.id = sw.sensor, worker w
WHERE sw.id = $1 AND w.id = $2
ON CONFLICT (sensor, worker) DO UPDATE SET
	sensor_ref = EXCLUDED.sensor_ref, worker_name = EXCLUDED.worker_name, status = EXCLUDED.status, pid = NULL,
	consecutive_failures = EXCLUDED.consecutive_failures,
	last_exit_code = EXCLUDED.last_exit_code, last_signal = EXCLUDED.last_signal,
	last_started_at = coalesce(EXCLUDED.last_started_at, p.last_started_at),
	last_stopped_at = CASE WHEN EXCLUDED.status IN ('starting', 'running') THEN NULL
	                       ELSE coalesce(EXCLUDED.last_stopped_at, p.last_stopped_at) END,
	next_restart_at = EXCLUDED.next_restart_at, stderr_excerpt = EXCLUDED.stderr_excerpt,
	active_rule_count = EXCLUDED.active_rule_count, updated = now()`
}

// hasProcessTable reports whether the schema has Attune's sensor_process.
func hasProcessTable(f database.SchemaFacts) bool {
	return f.Has("sensor_process", "active_rule_count") && f.Has("sensor_process", "next_restart_at")
}

// attuneStatus is Attune's sensor_process_status_enum value of a run state.
func attuneStatus(runState string) string {
	switch runState {
	case supervise.StateQuarantined:
		return "failed"
	case supervise.StateStarting, supervise.StateRunning, supervise.StateBackoff:
		return runState
	}
	return "stopped"
}

// exitOf reads an exit code or a signal from a State's LastExit ("exit 3",
// "killed by signal 9").
func exitOf(last string) (code, signal *int) {
	if rest, ok := strings.CutPrefix(last, "exit "); ok {
		if n, err := strconv.Atoi(rest); err == nil {
			return &n, nil
		}
	}
	if rest, ok := strings.CutPrefix(last, "killed by signal "); ok {
		if n, err := strconv.Atoi(rest); err == nil {
			return nil, &n
		}
	}
	return nil, nil
}

// saveProcess keeps Attune's sensor_process row, where there is one.
func (s Store) saveProcess(ctx context.Context, f fence.Fence, runState string, st supervise.State, wait float64) error {
	if s.processSQL == "" {
		return nil
	}
	code, signal := exitOf(st.LastExit)
	if runState == supervise.StateStarting || runState == supervise.StateRunning {
		code, signal = nil, nil
	}
	excerpt := st.StderrTail
	if runState == supervise.StateRunning {
		excerpt = ""
	}
	if _, err := s.Pool.Exec(ctx, s.processSQL, f.Workload, f.Worker, attuneStatus(runState), st.ConsecutiveFailures, code, signal, wait, excerpt); err != nil {
		return fmt.Errorf("recording Attune's sensor_process row of workload %d: %w", f.Workload, err)
	}
	return nil
}

// Stopped records that this worker's process of the workload's sensor is
// gone (the sensor was stopped, handed over or lost): Attune's
// sensor_process row is the worker's own, so no fence is needed.
func (s Store) Stopped(ctx context.Context, f fence.Fence) error {
	return s.saveProcess(ctx, f, "stopped", supervise.State{}, 0)
}
