// Package events owns the event table: the fenced insert a sensor's events
// go through, and the listing and following behind `attunectl event list`.
//
// An event is inserted by one statement that also checks its fence: the
// assignment row must still name the writer's worker, instance and
// generation with an unexpired lease on the database clock, and it is
// locked FOR SHARE while the insert commits, so a takeover (which updates
// that row) either waits for the insert or makes it find no fence. A
// process whose owner lost the lease therefore never writes an event, even
// while it still runs. Each committed event is announced with NOTIFY on
// Channel.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/supervise"
)

// Channel is the NOTIFY channel of committed events; the payload is the
// event's id.
const Channel = "attunectl_event"

// Writer records events through a pool.
type Writer struct {
	Pool *pgxpool.Pool
}

// WriteEvent inserts ev if, and only if, its fence is current; otherwise it
// returns fence.ErrStale and writes nothing. It sends the one event insert
// (insertSQL) with a batch of one.
func (w Writer) WriteEvent(ctx context.Context, ev supervise.Event) (int64, error) {
	ids, err := insertEvents(ctx, w.Pool, []supervise.Event{ev}, false)
	if err != nil {
		return 0, err
	}
	if ids[0] == 0 {
		return 0, staleEvent(ev)
	}
	return ids[0], nil
}

// Event is one row of the event table as `event list` shows it.
type Event struct {
	ID               int64           `json:"id"`
	TriggerRef       string          `json:"trigger_ref"`
	SourceRef        *string         `json:"source_ref"`
	Payload          json.RawMessage `json:"payload"`
	Created          time.Time       `json:"created"`
	SourceWorkload   *int64          `json:"source_workload"`
	SourceGeneration *int64          `json:"source_generation"`
}

// Filter selects events.
type Filter struct {
	// Sensor and Trigger match source_ref and trigger_ref exactly.
	Sensor  string
	Trigger string
	// Since keeps events created at most this long ago (0: all).
	Since time.Duration
	// AfterID keeps events with a greater id (for following).
	AfterID int64
	// Limit bounds the rows of one call (0: no bound).
	Limit int
}

const listSQL = `
SELECT id, trigger_ref, source_ref, coalesce(payload, 'null'::jsonb), created, source_workload, source_generation
FROM event
WHERE ($1 = '' OR source_ref = $1)
  AND ($2 = '' OR trigger_ref = $2)
  AND ($3::float8 = 0 OR created >= now() - make_interval(secs => $3::float8))
  AND id > $4
ORDER BY id
LIMIT CASE WHEN $5 > 0 THEN $5 END`

// List calls fn for each matching event, oldest first, as rows arrive.
func List(ctx context.Context, db *database.DB, f Filter, fn func(Event) error) error {
	rows, err := db.Pool.Query(ctx, listSQL, f.Sensor, f.Trigger, f.Since.Seconds(), f.AfterID, f.Limit)
	if err != nil {
		return fmt.Errorf("listing events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e Event
		var payload []byte
		if err := rows.Scan(&e.ID, &e.TriggerRef, &e.SourceRef, &payload, &e.Created, &e.SourceWorkload, &e.SourceGeneration); err != nil {
			return fmt.Errorf("reading events: %w", err)
		}
		e.Payload = json.RawMessage(payload)
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("listing events: %w", err)
	}
	return nil
}

// Follow lists the matching events, then keeps calling fn for new ones as
// they commit, until ctx ends. It waits on LISTEN Channel when the pool's
// connections allow it and polls every interval otherwise (a transaction
// pooler has no LISTEN); either way rows are read by id, so none is missed
// or repeated.
func Follow(ctx context.Context, db *database.DB, f Filter, interval time.Duration, fn func(Event) error) error {
	if interval <= 0 {
		interval = time.Second
	}
	last := f.AfterID
	emit := func(e Event) error {
		last = e.ID
		return fn(e)
	}
	if err := List(ctx, db, f, emit); err != nil {
		return err
	}
	f.Since = 0 // from now on, by id only

	wake := make(chan struct{}, 1)
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	go listen(lctx, db.Pool, wake)

	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-t.C:
		}
		f.AfterID = last
		if err := List(ctx, db, f, emit); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// listen holds one connection in LISTEN and signals wake for each
// notification; it gives up quietly (polling remains) when LISTEN is not
// possible.
func listen(ctx context.Context, pool *pgxpool.Pool, wake chan<- struct{}) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return
	}
	defer func() {
		if ctx.Err() != nil {
			// The connection may be mid-wait; do not return it to the pool
			// still listening.
			conn.Conn().Close(context.Background())
		}
	}()
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			return
		}
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}
