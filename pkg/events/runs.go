package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/fence"
	"github.com/attune-automation/attunectl/pkg/supervise"
)

// Store is the PostgreSQL side of a supervised sensor: its events and its
// restart record (sensor_workload_state, on the workload), every write
// fenced.
type Store struct {
	supervise.EventWriter
	Pool *pgxpool.Pool
	// processSQL keeps Attune's sensor_process rows ("" on a schema
	// without them: process.go).
	processSQL string
}

// NewStore returns the store of a worker's supervisor; events go through w
// (a Writer or a BatchWriter on the same pool).
func NewStore(db *database.DB, w supervise.EventWriter) Store {
	pool := db.Pool
	if w == nil {
		w = Writer{Pool: pool}
	}
	st := Store{EventWriter: w, Pool: pool}
	if hasProcessTable(db.Facts) {
		st.processSQL = processSQL(db.Facts)
	}
	return st
}

var beginRunSQL = `
WITH a AS (
    UPDATE sensor_workload_assignment asg
    SET generation = asg.generation + 1, renewed_at = clock_timestamp()
    WHERE ` + fence.Where("asg") + `
    RETURNING asg.workload, asg.generation
)
SELECT a.generation,
       coalesce(r.restarts, 0), coalesce(r.consecutive_failures, 0),
       coalesce(extract(epoch FROM greatest(r.next_start_at - clock_timestamp(), interval '0')), 0)::float8,
       r.quarantined_at IS NOT NULL, coalesce(r.last_reason, ''), coalesce(r.last_signal, ''), coalesce(r.last_stderr, '')
FROM a LEFT JOIN sensor_workload_state r ON r.workload = a.workload`

// BeginRun bumps the assignment's generation for a new start (Attune's
// protocol: every start of a process is a new generation) and reads the
// workload's restart record. The wait before the next start is computed on
// the database clock and returned relative to this host's clock.
func (s Store) BeginRun(ctx context.Context, f fence.Fence) (fence.Fence, supervise.State, error) {
	var st supervise.State
	var wait float64
	err := s.Pool.QueryRow(ctx, beginRunSQL, fence.Args(f)...).Scan(
		&f.Generation, &st.Restarts, &st.ConsecutiveFailures, &wait, &st.Quarantined, &st.Reason, &st.LastExit, &st.StderrTail)
	if errors.Is(err, pgx.ErrNoRows) {
		return f, st, fmt.Errorf("starting %s: %w", f, fence.ErrStale)
	}
	if err != nil {
		return f, st, fmt.Errorf("starting a run of workload %d: %w", f.Workload, err)
	}
	if wait > 0 {
		st.NextStartAt = time.Now().Add(time.Duration(wait * float64(time.Second)))
	}
	return f, st, nil
}

var saveStateSQL = `
INSERT INTO sensor_workload_state AS r (workload, state, restarts, consecutive_failures, next_start_at,
                                        quarantined_at, last_reason, last_signal, last_stderr, generation,
                                        last_started_at, last_stopped_at, updated)
SELECT a.workload, $5, $6, $7,
       CASE WHEN $8::float8 > 0 THEN clock_timestamp() + make_interval(secs => $8::float8) END,
       CASE WHEN $9 THEN clock_timestamp() END, nullif($10, ''), nullif($11, ''), nullif($12, ''),
       a.generation,
       CASE WHEN $5 = 'starting' THEN clock_timestamp() END,
       CASE WHEN $5 IN ('stopped', 'backoff', 'quarantined') THEN clock_timestamp() END,
       clock_timestamp()
FROM sensor_workload_assignment a
WHERE ` + fence.Where("a") + `
ON CONFLICT (workload) DO UPDATE SET
    state = excluded.state, restarts = excluded.restarts,
    consecutive_failures = excluded.consecutive_failures, next_start_at = excluded.next_start_at,
    quarantined_at = CASE WHEN $9 THEN coalesce(r.quarantined_at, excluded.quarantined_at) END,
    last_reason = excluded.last_reason, last_signal = excluded.last_signal, last_stderr = excluded.last_stderr,
    generation = excluded.generation,
    last_started_at = coalesce(excluded.last_started_at, r.last_started_at),
    last_stopped_at = coalesce(excluded.last_stopped_at, r.last_stopped_at),
    updated = excluded.updated
RETURNING r.workload`

// SaveState records the workload's run state under the fence.
func (s Store) SaveState(ctx context.Context, f fence.Fence, runState string, st supervise.State) error {
	wait := 0.0
	if !st.NextStartAt.IsZero() {
		wait = max(time.Until(st.NextStartAt).Seconds(), 0)
	}
	var w int64
	err := s.Pool.QueryRow(ctx, saveStateSQL, fence.Args(f,
		runState, st.Restarts, st.ConsecutiveFailures, wait, st.Quarantined, st.Reason, st.LastExit, st.StderrTail)...).Scan(&w)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("recording the state of %s: %w", f, fence.ErrStale)
	}
	if err != nil {
		return fmt.Errorf("recording the state of workload %d: %w", f.Workload, err)
	}
	return s.saveProcess(ctx, f, runState, st, wait)
}

// ClearQuarantine forgets the failures and quarantine of the given sensors'
// workloads (`sensor enable`), so their next start is immediate. It returns
// how many workloads were quarantined.
func ClearQuarantine(ctx context.Context, db *database.DB, sensorIDs []int64) (int64, error) {
	// The sensors' own updated moves too: their owner's next renewal sees
	// a new version and starts a runner it had parked in quarantine.
	var n int64
	err := db.Pool.QueryRow(ctx, `
WITH cleared AS (
    UPDATE sensor_workload_state r
    SET consecutive_failures = 0, next_start_at = NULL, quarantined_at = NULL, last_reason = NULL,
        state = CASE WHEN r.state = 'quarantined' THEN 'starting' ELSE r.state END, updated = clock_timestamp()
    FROM sensor_workload w
    WHERE w.id = r.workload AND w.sensor = ANY($1) AND (r.quarantined_at IS NOT NULL OR r.consecutive_failures > 0)
    RETURNING w.sensor
), touched AS (
    UPDATE sensor s SET updated = clock_timestamp() WHERE s.id IN (SELECT sensor FROM cleared)
)
SELECT count(*) FROM cleared`, sensorIDs).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("clearing quarantine: %w", err)
	}
	return n, nil
}
