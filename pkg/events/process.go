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

// alertSQL raises Attune's sensor-failure alert as its sensor manager does
// (crates/sensor/src/sensor_manager.rs maybe_emit_sensor_failure_alert,
// crates/common/src/system_alert.rs, commit f3e5d1c5): once a sensor of
// this worker has failed three times in a row and has an active rule, a
// core.alert event per new failure count, with Attune's payload and
// correlation id; sensor_process.last_alerted_failure_count makes it one
// per count, whichever statement gets there. $1 workload, $2 worker.
const alertSQL = `
WITH p AS (
	UPDATE sensor_process sp
	SET last_alerted_failure_count = sp.consecutive_failures, last_alerted_at = clock_timestamp()
	WHERE sp.sensor = (SELECT sensor FROM sensor_workload WHERE id = $1) AND sp.worker = $2
	  AND sp.consecutive_failures >= 3 AND sp.last_alerted_failure_count < sp.consecutive_failures
	  AND sp.active_rule_count > 0
	RETURNING sp.*
), t AS (SELECT id FROM trigger WHERE ref = 'core.alert')
INSERT INTO event (trigger, trigger_ref, payload, source_ref)
SELECT t.id, 'core.alert', jsonb_build_object(
	'severity', 'error', 'category', 'sensor_process_health', 'failure_type', 'sensor_process_repeated_failure',
	'component_type', 'sensor', 'component_id', p.sensor, 'component_ref', p.sensor_ref, 'worker_role', 'sensor',
	'observed_at', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
	'summary', format('Sensor ''%s'' failed %s consecutive time(s); restarting after %ss backoff', p.sensor_ref, p.consecutive_failures,
		coalesce(greatest(extract(epoch FROM p.next_restart_at - clock_timestamp()), 0)::bigint, 0)),
	'details', jsonb_build_object('sensor_id', p.sensor, 'sensor_ref', p.sensor_ref, 'worker_id', p.worker,
		'worker_name', p.worker_name, 'process_status', p.status, 'consecutive_failures', p.consecutive_failures,
		'last_exit_code', p.last_exit_code, 'last_signal', p.last_signal,
		'backoff_delay_seconds', coalesce(greatest(extract(epoch FROM p.next_restart_at - clock_timestamp()), 0)::bigint, 0),
		'next_restart_at', p.next_restart_at, 'active_rule_count', p.active_rule_count, 'stderr_excerpt', p.stderr_excerpt),
	'correlation_id', format('sensor:%s:worker:%s:repeated_failure', p.sensor, p.worker)),
	'attunectl'
FROM p, t`

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
	if runState == supervise.StateBackoff || runState == supervise.StateQuarantined {
		if _, err := s.Pool.Exec(ctx, alertSQL, f.Workload, f.Worker); err != nil {
			return fmt.Errorf("raising Attune's sensor-failure alert of workload %d: %w", f.Workload, err)
		}
	}
	return nil
}

// Stopped records that this worker's process of the workload's sensor is
// gone (the sensor was stopped, handed over or lost): Attune's
// sensor_process row is the worker's own, so no fence is needed.
func (s Store) Stopped(ctx context.Context, f fence.Fence) error {
	return s.saveProcess(ctx, f, "stopped", supervise.State{}, 0)
}
