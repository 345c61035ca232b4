package workers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/attune-automation/attunectl/pkg/database"
)

// heartbeatSQL is the hot path: one statement, one round trip. It touches
// only last_heartbeat and status (unchanged while the worker is active, so
// no index entry changes and PostgreSQL can update the row in place, HOT),
// and proves in its WHERE that the row is still this instance's.
//
// Its commit does not wait for the WAL to reach the disk: set_config(…,
// true) sets synchronous_commit for this statement's own transaction only
// (registration, deregistration and capability updates stay as durable as
// the server is configured), without the round trips of BEGIN/SET LOCAL.
// A heartbeat lost in a server crash costs nothing (the next one follows
// within an interval). On a durable server not waiting for the WAL flush
// takes a heartbeat from about 400 to 115 µs, and at 3,333 heartbeats/s its
// p99 from 1.9 to 0.9 ms and the server's WAL fsyncs from 1,378/s to 5/s
// (README, Scale; cmd/loadsim). An operator who wants durable heartbeats
// sets attunectl.heartbeat_synchronous_commit (ALTER ROLE … SET
// attunectl.heartbeat_synchronous_commit = 'on'); it takes any value of
// synchronous_commit.
const heartbeatSQL = `
WITH durability AS MATERIALIZED (
	SELECT set_config('synchronous_commit',
		coalesce(nullif(current_setting('attunectl.heartbeat_synchronous_commit', true), ''), 'off'), true))
UPDATE worker SET last_heartbeat = now(), status = 'active'
FROM durability
WHERE id = $1 AND meta->>'instance_id' = $2 AND meta->>'deregistered_instance' IS DISTINCT FROM $2
RETURNING last_heartbeat`

// HeartbeatSQL is the heartbeat statement (parameters: worker id, instance
// id), for benchmarks that replay it on connections of their own, such as
// cmd/workerbench, so that they measure exactly what sensor workers send.
func HeartbeatSQL() string { return heartbeatSQL }

// Heartbeat sets last_heartbeat to the database's now() and status to
// active, and returns the new last_heartbeat. When the row is no longer
// this instance's, it finds out why (a second statement, only then): the
// error matches ErrRowGone when the row was deleted (Register again) or is
// a *TakenOverError (ErrTakenOver) when another instance holds it (stop).
func (r *Registration) Heartbeat(ctx context.Context) (time.Time, error) {
	id := r.ID()
	if id == 0 {
		return time.Time{}, fmt.Errorf("heartbeat of sensor worker %q: %w (call Register first)", r.name, ErrNotRegistered)
	}
	var at time.Time
	err := r.db.Pool.QueryRow(ctx, heartbeatSQL, id, r.inst.ID).Scan(&at)
	if err == nil {
		return at, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, fmt.Errorf("heartbeat of sensor worker %q: %w", r.name, database.RedactError(err))
	}
	return time.Time{}, r.lostRow(ctx, id, "heartbeat")
}
