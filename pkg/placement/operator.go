package placement

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/fence"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrWorkerNotFound: no worker has the name given.
var ErrWorkerNotFound = errors.New("no such worker")

// Cordoned is a worker's cordon as stored.
type Cordoned struct {
	Worker   string     `json:"worker"`
	Cordoned bool       `json:"cordoned"`
	Reason   string     `json:"cordon_reason,omitempty"`
	By       string     `json:"cordoned_by,omitempty"`
	At       *time.Time `json:"cordoned_at,omitempty"`
	// Changed is false when the worker was already in the asked state.
	Changed bool `json:"changed"`
}

// Cordon marks a worker so that it takes no new sensors; it keeps the ones
// it holds and keeps heartbeating (`worker cordon NAME --reason`). by is
// who asked (stored in cordoned_by_name; Attune's cordoned_by is the id of
// an Attune identity and is left alone). Cordoning a cordoned worker keeps
// the first reason unless a new one is given.
func Cordon(ctx context.Context, db *database.DB, name, reason, by string) (Cordoned, error) {
	return setCordon(ctx, db.Pool, name, true, reason, by)
}

// Uncordon lets a worker take sensors again (`worker uncordon NAME`). It
// also ends an unfinished drain of that worker.
func Uncordon(ctx context.Context, db *database.DB, name string) (Cordoned, error) {
	c, err := setCordon(ctx, db.Pool, name, false, "", "")
	if err != nil {
		return c, err
	}
	_, err = db.Pool.Exec(ctx, `UPDATE worker_drain d SET finished_at = now() FROM worker w
		WHERE w.name = $1 AND d.worker = w.id AND d.finished_at IS NULL`, name)
	if err != nil {
		return c, fmt.Errorf("uncordoning worker %q: ending its drain: %w", name, err)
	}
	return c, nil
}

func setCordon(ctx context.Context, pool *pgxpool.Pool, name string, on bool, reason, by string) (Cordoned, error) {
	c := Cordoned{Worker: name}
	var by2, reason2 *string
	err := pool.QueryRow(ctx, `
		WITH before AS (SELECT id, coalesce(cordoned, false) AS was FROM worker WHERE name = $1 FOR UPDATE)
		UPDATE worker w SET
			cordoned = $2,
			cordon_reason = CASE WHEN NOT $2 THEN NULL WHEN $3 <> '' THEN $3 WHEN before.was THEN w.cordon_reason END,
			cordoned_by_name = CASE WHEN NOT $2 THEN NULL WHEN before.was AND $4 = '' THEN w.cordoned_by_name ELSE nullif($4, '') END,
			cordoned_by = CASE WHEN $2 THEN w.cordoned_by END,
			cordoned_at = CASE WHEN NOT $2 THEN NULL WHEN before.was THEN w.cordoned_at ELSE now() END,
			updated = now()
		FROM before WHERE w.id = before.id
		RETURNING w.cordoned, w.cordon_reason, w.cordoned_by_name, w.cordoned_at, before.was <> $2`,
		name, on, reason, by).Scan(&c.Cordoned, &reason2, &by2, &c.At, &c.Changed)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("cordoning worker %q: %w (see `attunectl worker list`)", name, ErrWorkerNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("cordoning worker %q: %w", name, err)
	}
	if reason2 != nil {
		c.Reason = *reason2
	}
	if by2 != nil {
		c.By = *by2
	}
	return c, nil
}

// DrainOptions configure Drain.
type DrainOptions struct {
	// Deadline is how long the worker has to hand its sensors over; at the
	// deadline whatever is left is released regardless (default 10m).
	Deadline time.Duration
	// Budget is how many sensors it hands over per interval (default 2).
	Budget int
	Reason string
	By     string
}

// DrainStatus is a drain's progress.
type DrainStatus struct {
	Worker       string     `json:"worker"`
	WorkerID     int64      `json:"worker_id"`
	Held         int        `json:"held"`
	Deadline     time.Time  `json:"deadline"`
	Budget       int        `json:"budget"`
	HandedOver   int        `json:"handed_over"`
	AtDeadline   int        `json:"released_at_deadline"`
	RequestedAt  time.Time  `json:"requested_at"`
	FinishedAt   *time.Time `json:"finished_at,omitempty"`
	PastDeadline bool       `json:"past_deadline"`
}

// Drain cordons a worker and records a drain: the worker hands its sensors
// over a budget per interval (they are claimed by other eligible workers),
// and at the deadline whatever is left is released regardless — by the
// worker itself, or by DrainStep when the worker is not there to do it.
// Draining a worker already draining replaces the deadline and budget.
func Drain(ctx context.Context, db *database.DB, name string, opts DrainOptions) (DrainStatus, error) {
	if opts.Deadline <= 0 {
		opts.Deadline = 10 * time.Minute
	}
	if opts.Budget <= 0 {
		opts.Budget = 2
	}
	reason := opts.Reason
	if reason == "" {
		reason = "draining"
	}
	if _, err := Cordon(ctx, db, name, reason, opts.By); err != nil {
		return DrainStatus{}, err
	}
	_, err := db.Pool.Exec(ctx, `
		INSERT INTO worker_drain (worker, requested_by, deadline, budget)
		SELECT id, nullif($2, ''), now() + make_interval(secs => $3::float8), $4 FROM worker WHERE name = $1
		ON CONFLICT (worker) DO UPDATE SET requested_by = EXCLUDED.requested_by, requested_at = now(),
			deadline = EXCLUDED.deadline, budget = EXCLUDED.budget, finished_at = NULL,
			last_handoff_at = NULL, handed_over = 0, released_at_deadline = 0`,
		name, opts.By, opts.Deadline.Seconds(), opts.Budget)
	if err != nil {
		return DrainStatus{}, fmt.Errorf("draining worker %q: %w", name, err)
	}
	return GetDrain(ctx, db, name)
}

// GetDrain returns the drain of a worker (the latest, finished or not).
func GetDrain(ctx context.Context, db *database.DB, name string) (DrainStatus, error) {
	s := DrainStatus{Worker: name}
	err := db.Pool.QueryRow(ctx, `
		SELECT w.id, d.deadline, d.budget, d.handed_over, d.released_at_deadline, d.requested_at, d.finished_at,
			d.deadline <= now(),
			(SELECT count(*) FROM sensor_workload_assignment a WHERE a.worker = w.id AND a.`+fence.Live+`)
		FROM worker w JOIN worker_drain d ON d.worker = w.id WHERE w.name = $1`, name).
		Scan(&s.WorkerID, &s.Deadline, &s.Budget, &s.HandedOver, &s.AtDeadline, &s.RequestedAt, &s.FinishedAt, &s.PastDeadline, &s.Held)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, fmt.Errorf("reading the drain of worker %q: %w, or it was never drained", name, ErrWorkerNotFound)
	}
	if err != nil {
		return s, fmt.Errorf("reading the drain of worker %q: %w", name, err)
	}
	return s, nil
}

// DrainStep is the operator's side of a drain (`worker drain --wait` calls
// it once per interval): past the deadline it releases everything the
// worker still holds (ledger reason drained; the worker's next renewal
// fails and it stops those sensors at once) and finishes the drain; before
// it, it finishes the drain when the worker holds nothing. The handoffs
// themselves are the worker's (Placer.Tick), so a sensor is stopped before
// it is given away.
func DrainStep(ctx context.Context, db *database.DB, name string) (DrainStatus, error) {
	_, err := db.Pool.Exec(ctx, `
		WITH d AS (
			SELECT d.worker FROM worker_drain d JOIN worker w ON w.id = d.worker
			WHERE w.name = $1 AND d.finished_at IS NULL AND d.deadline <= now()),
		why AS MATERIALIZED (SELECT set_config('attunectl.end_reason', 'drained', true)),
		rel AS (
			UPDATE sensor_workload_assignment a
			SET worker = NULL, worker_instance = NULL, lease_expires_at = NULL, assigned_at = NULL, renewed_at = NULL, updated = now()
			FROM d, why WHERE a.worker = d.worker
			RETURNING a.workload)
		UPDATE worker_drain SET released_at_deadline = released_at_deadline + (SELECT count(*) FROM rel), finished_at = now()
		FROM d WHERE worker_drain.worker = d.worker`, name)
	if err != nil {
		return DrainStatus{}, fmt.Errorf("draining worker %q: %w", name, err)
	}
	if _, err := db.Pool.Exec(ctx, `
		UPDATE worker_drain d SET finished_at = now() FROM worker w
		WHERE w.name = $1 AND d.worker = w.id AND d.finished_at IS NULL
		  AND NOT EXISTS (SELECT 1 FROM sensor_workload_assignment a WHERE a.worker = w.id AND a.`+fence.Live+`)`, name); err != nil {
		return DrainStatus{}, fmt.Errorf("draining worker %q: %w", name, err)
	}
	return GetDrain(ctx, db, name)
}

// Channel is the NOTIFY channel on which releases are announced.
const Channel = "attunectl_placement"

// Listen returns a channel that receives a value whenever sensors are
// released anywhere (the ledger trigger notifies attunectl_placement), so
// the service loop can Tick at once instead of at its next interval. It
// holds one connection of the pool until ctx ends. Behind a transaction
// pooler LISTEN does not work: the error says so, and the loop falls back
// to its interval.
func Listen(ctx context.Context, db *database.DB) (<-chan struct{}, error) {
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("listening for released sensors: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		conn.Release()
		return nil, fmt.Errorf("listening for released sensors: %w (behind a transaction pooler, claims wait for the heartbeat tick)", err)
	}
	ch := make(chan struct{}, 1)
	go func() {
		defer close(ch)
		defer func() {
			// The connection is in LISTEN state: do not give it back to the db.Pool.
			_ = conn.Conn().Close(context.Background())
			conn.Release()
		}()
		for {
			if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
				return
			}
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	return ch, nil
}
