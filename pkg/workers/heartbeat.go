package workers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/attune-automation/attunectl/pkg/database"
)

// HeartbeatDurability is the first CTE of every statement that heartbeats
// (heartbeatSQL, and the placement tick that renews leases with the
// heartbeat). The heartbeat is the hot path: one statement, one round
// trip. It touches only last_heartbeat and status (unchanged while the
// worker is active, so no index entry changes and PostgreSQL can update
// the row in place, HOT), and proves in its WHERE that the row is still
// this instance's.
//
// Its commit does not wait for the WAL to reach the disk: set_config(…,
// true) sets synchronous_commit for this statement's own transaction only
// (registration, deregistration and capability updates stay as durable as
// the server is configured), without the round trips of BEGIN/SET LOCAL.
// A heartbeat lost in a server crash costs nothing (the next one follows
// within an interval). On a durable server not waiting for the WAL flush
// takes a heartbeat from about 400 to 115 µs, and at 3,333 heartbeats/s its
// p99 from 1.9 to 0.9 ms and the server's WAL fsyncs from 1,378/s to 5/s
// (`attunectl help performance`, Scale; cmd/loadsim). An operator who wants durable heartbeats
// sets attunectl.heartbeat_synchronous_commit (ALTER ROLE … SET
// attunectl.heartbeat_synchronous_commit = 'on'); it takes any value of
// synchronous_commit.
const HeartbeatDurability = `durability AS MATERIALIZED (
	SELECT set_config('synchronous_commit',
		coalesce(nullif(current_setting('attunectl.heartbeat_synchronous_commit', true), ''), 'off'), true))`

// HeartbeatUpdate is the heartbeat itself, the one statement that writes
// it: the UPDATE of the worker row whose id is the SQL expression worker,
// proving that the row is still the instance's (instance, an expression of
// the instance id) and that this instance has not deregistered, so that a
// heartbeat reaching the server after deregistration never revives the
// row. when, if not empty, is a further condition (a placement tick that
// heartbeats only when asked). It needs HeartbeatDurability in its WITH as
// "durability", and returns last_heartbeat.
func HeartbeatUpdate(worker, instance, when string) string {
	cond := "id = " + worker + " AND meta->>'instance_id' = " + instance +
		" AND meta->>'deregistered_instance' IS DISTINCT FROM " + instance
	if when != "" {
		cond = when + " AND " + cond
	}
	return `UPDATE worker SET last_heartbeat = now(), status = 'active'
	FROM durability
	WHERE ` + cond + `
	RETURNING last_heartbeat`
}

var heartbeatSQL = "WITH " + HeartbeatDurability + "\n" + HeartbeatUpdate("$1", "$2", "")

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
