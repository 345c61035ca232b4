package workers

import (
	"context"
	"time"

	"github.com/attune-automation/attunectl/pkg/database"
)

// LockHolder is a session holding an exclusive lock on the worker table:
// what an operator needs to find it in pg_stat_activity.
type LockHolder struct {
	PID         int32
	Application string
	User        string
	// InTransaction is how long its transaction has been open.
	InTransaction time.Duration
}

// LockHolders returns up to three sessions that hold an ACCESS EXCLUSIVE
// lock on the worker table (the lock that blocks reading it), by pid. A
// relation's oid is only unique within its database (pg_locks lists every
// database's locks, and databases cloned from one template share oids), so
// the lock must also be in this database. It
// is best effort, for error messages: it gives up after a second, whatever
// ctx allows, and returns nothing on any error.
func LockHolders(ctx context.Context, db *database.DB) []LockHolder {
	if db.Pool == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	rows, err := db.Pool.Query(ctx, `
		SELECT l.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''),
		       coalesce(extract(epoch FROM now() - a.xact_start)::float8, 0)
		FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'relation' AND l.relation = to_regclass('worker')
		  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND l.granted AND l.mode = 'AccessExclusiveLock' AND l.pid <> pg_backend_pid()
		ORDER BY l.pid LIMIT 3`)
	if err != nil {
		return nil
	}
	defer rows.Close()
	var out []LockHolder
	for rows.Next() {
		var (
			h    LockHolder
			secs float64
		)
		if rows.Scan(&h.PID, &h.Application, &h.User, &secs) != nil {
			return nil
		}
		h.InTransaction = time.Duration(secs * float64(time.Second))
		out = append(out, h)
	}
	if rows.Err() != nil {
		return nil
	}
	return out
}
