package placement

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrStaleFence: a write on behalf of a sensor was refused because its
// fence (workload, worker, instance, generation) is no longer the
// assignment's, or the lease has expired. The writer must stop treating the
// sensor as its own.
var ErrStaleFence = errors.New("stale fence: this worker no longer owns the sensor")

// Fence identifies one ownership of one workload: every write a worker
// makes on behalf of a sensor carries it, and the database refuses the
// write unless the assignment still has exactly these values and an
// unexpired lease.
type Fence struct {
	Workload   int64  `json:"workload"`
	Worker     int64  `json:"worker"`
	Instance   string `json:"worker_instance"` // uuid text
	Generation int64  `json:"generation"`
}

func (f Fence) String() string {
	return fmt.Sprintf("workload %d, worker %d, instance %s, generation %d", f.Workload, f.Worker, f.Instance, f.Generation)
}

// Querier is what the fenced writes need: a pool, a connection or a transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// InstanceUUID maps a worker instance id (attunectl's are random base32
// text) to the uuid Attune's worker_instance column holds: a uuid is kept
// as it is, anything else becomes a name-based (SHA-256, RFC 9562 version 8)
// uuid, so the same instance always gets the same uuid.
func InstanceUUID(id string) string {
	if looksLikeUUID(id) {
		return strings.ToLower(id)
	}
	sum := sha256.Sum256([]byte("attunectl-instance:" + id))
	b := sum[:16]
	b[6] = (b[6] & 0x0f) | 0x80 // version 8
	b[8] = (b[8] & 0x3f) | 0x80 // variant RFC 9562
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func looksLikeUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}

// fenceWhere is the condition every fenced statement shares; a is the
// assignment's alias and the fence is $1..$4.
const fenceWhere = `a.workload = $1 AND a.worker = $2 AND a.worker_instance = $3::uuid
	AND a.generation = $4 AND a.lease_expires_at > clock_timestamp()`

func fenceArgs(f Fence, more ...any) []any {
	return append([]any{f.Workload, f.Worker, f.Instance, f.Generation}, more...)
}

// CheckFence locks the assignment row in share mode (so that no claim can
// take it before the caller's transaction ends) and fails with
// ErrStaleFence unless f is current. Call it inside the transaction of a
// write that must only happen under the fence.
func CheckFence(ctx context.Context, q Querier, f Fence) error {
	var ok bool
	err := q.QueryRow(ctx, `SELECT true FROM sensor_workload_assignment a WHERE `+fenceWhere+` FOR SHARE OF a`, fenceArgs(f)...).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w (%s)", ErrStaleFence, f)
	}
	if err != nil {
		return fmt.Errorf("checking the fence of %s: %w", f, err)
	}
	return nil
}

// InsertEvent writes an event for trigger triggerRef on behalf of the
// sensor that f owns, in one statement that inserts only while f is
// current: the assignment row is locked in share mode by the statement
// itself, so the insert and a takeover are ordered, and an event from a
// worker that lost the sensor is refused (ErrStaleFence). The trigger must
// belong to the sensor when it is known; an unknown ref is stored as given
// (Attune keeps trigger_ref even when the trigger row is gone).
func InsertEvent(ctx context.Context, q Querier, f Fence, triggerRef string, payload []byte) (int64, error) {
	if payload == nil {
		payload = []byte("null")
	}
	var id int64
	err := q.QueryRow(ctx, `
		WITH owner AS (
			SELECT sw.sensor FROM sensor_workload_assignment a
			JOIN sensor_workload sw ON sw.id = a.workload
			WHERE `+fenceWhere+`
			FOR SHARE OF a)
		INSERT INTO event (trigger, trigger_ref, payload, source, source_ref, created)
		SELECT t.id, $5, $6::jsonb, s.id, s.ref, now()
		FROM owner JOIN sensor s ON s.id = owner.sensor
		LEFT JOIN trigger t ON t.ref = $5
		RETURNING id`, fenceArgs(f, triggerRef, string(payload))...).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("inserting an event for %s: %w (%s)", triggerRef, ErrStaleFence, f)
	}
	if err != nil {
		return 0, fmt.Errorf("inserting an event for %s: %w", triggerRef, err)
	}
	return id, nil
}

// ProcessState is the running state of a workload that the supervisor
// reports under its fence; it lives on the workload (sensor_workload_state),
// so backoff and quarantine survive a move to another worker.
type ProcessState struct {
	State               string // starting, running, backoff, quarantined, stopped
	Restarts            int
	ConsecutiveFailures int
	NextStartAt         *time.Time
	Quarantined         bool
	ExitCode            *int
	Signal              string
	Reason              string
}

// WriteState records the workload's process state, only while f is current.
func WriteState(ctx context.Context, q Querier, f Fence, st ProcessState) error {
	tag, err := q.Exec(ctx, `
		WITH owner AS (
			SELECT a.workload FROM sensor_workload_assignment a WHERE `+fenceWhere+` FOR SHARE OF a)
		INSERT INTO sensor_workload_state AS st (workload, state, generation, restarts, consecutive_failures,
			next_start_at, quarantined_at, last_exit_code, last_signal, last_reason,
			last_started_at, last_stopped_at, updated)
		SELECT owner.workload, $5, $4, $6, $7, $8, CASE WHEN $9 THEN now() END, $10, nullif($11, ''), nullif($12, ''),
			CASE WHEN $5 = 'starting' THEN now() END, CASE WHEN $5 IN ('stopped', 'backoff', 'quarantined') THEN now() END, now()
		FROM owner
		ON CONFLICT (workload) DO UPDATE SET
			state = EXCLUDED.state, generation = EXCLUDED.generation, restarts = EXCLUDED.restarts,
			consecutive_failures = EXCLUDED.consecutive_failures, next_start_at = EXCLUDED.next_start_at,
			quarantined_at = CASE WHEN $9 THEN coalesce(st.quarantined_at, now()) END,
			last_exit_code = coalesce(EXCLUDED.last_exit_code, st.last_exit_code),
			last_signal = coalesce(EXCLUDED.last_signal, st.last_signal),
			last_reason = coalesce(EXCLUDED.last_reason, st.last_reason),
			last_started_at = coalesce(EXCLUDED.last_started_at, st.last_started_at),
			last_stopped_at = coalesce(EXCLUDED.last_stopped_at, st.last_stopped_at),
			updated = now()`,
		fenceArgs(f, st.State, st.Restarts, st.ConsecutiveFailures, st.NextStartAt, st.Quarantined, st.ExitCode, st.Signal, st.Reason)...)
	if err != nil {
		return fmt.Errorf("recording the state of %s: %w", f, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("recording the state of workload %d: %w (%s)", f.Workload, ErrStaleFence, f)
	}
	return nil
}

// Release gives up the workload f owns, with the ledger reason (released,
// drained or rebalanced). It fails with ErrStaleFence when f is no longer
// current (someone else owns it now: nothing to give up).
func Release(ctx context.Context, q Querier, f Fence, reason string) error {
	n, err := releaseFenced(ctx, q, []Fence{f}, reason)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("releasing workload %d: %w (%s)", f.Workload, ErrStaleFence, f)
	}
	return nil
}

// releaseFenced releases the workloads of fs (all of one worker instance)
// in one statement, and returns how many it released.
func releaseFenced(ctx context.Context, q Querier, fs []Fence, reason string) (int, error) {
	if len(fs) == 0 {
		return 0, nil
	}
	if !validEndReason(reason) {
		return 0, fmt.Errorf("releasing: unknown ledger reason %q", reason)
	}
	ids := make([]int64, len(fs))
	gens := make([]int64, len(fs))
	for i, f := range fs {
		ids[i], gens[i] = f.Workload, f.Generation
	}
	tag, err := q.Exec(ctx, `
		WITH why AS MATERIALIZED (SELECT set_config('attunectl.end_reason', $4, true))
		UPDATE sensor_workload_assignment a
		SET worker = NULL, worker_instance = NULL, lease_expires_at = NULL, assigned_at = NULL, renewed_at = NULL, updated = now()
		FROM why, unnest($3::bigint[], $5::bigint[]) AS f(workload, generation)
		WHERE a.workload = f.workload AND a.generation = f.generation
		  AND a.worker = $1 AND a.worker_instance = $2::uuid`,
		fs[0].Worker, fs[0].Instance, ids, reason, gens)
	if err != nil {
		return 0, fmt.Errorf("releasing %d sensors: %w", len(fs), err)
	}
	return int(tag.RowsAffected()), nil
}

// Ledger end reasons.
const (
	EndReleased   = "released"
	EndExpired    = "expired"
	EndDrained    = "drained"
	EndRebalanced = "rebalanced"
	EndTakenOver  = "taken_over"
)

func validEndReason(r string) bool {
	switch r {
	case EndReleased, EndDrained, EndRebalanced:
		return true
	}
	return false
}
