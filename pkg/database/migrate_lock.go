package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultMigrationLockTimeout is how long `migrate` waits for the migration
// lock before it gives up and says who holds it.
const DefaultMigrationLockTimeout = 2 * time.Minute

// migrationLocker serialises migrations with a transaction-scoped advisory
// lock (pg_try_advisory_xact_lock) taken in a transaction of its own, on a
// connection of its own, that stays open while goose migrates on others and
// commits at the end.
//
// goose's own Postgres session locker takes pg_advisory_lock on the
// connection that then runs the migrations. Through a transaction pooler the
// lock lands on whichever server connection the pooler lent for that one
// statement, stays there after the client is gone (blocking every later
// `migrate`), and does not even exclude a second client, whose statements
// may run on the very same server connection. A transaction, in contrast,
// keeps its server connection from BEGIN to COMMIT in every pool mode, and
// its lock ends with it — also when the process dies, since the pooler rolls
// back a client's open transaction when the client goes away.
//
// The lock id is the one earlier attunectl releases used with session locks,
// so a lock such a release leaked through a pooler is found and reported.
type migrationLocker struct {
	db      *DB
	id      int64
	timeout time.Duration
	conn    *pgx.Conn
	tx      pgx.Tx
}

func migrationLockID(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("attunectl-migrate:" + schema))
	return int64(h.Sum64() >> 1)
}

func newMigrationLocker(db *DB) *migrationLocker {
	t := db.MigrationLockTimeout
	if t <= 0 {
		t = DefaultMigrationLockTimeout
	}
	return &migrationLocker{db: db, id: migrationLockID(db.Schema), timeout: t}
}

// SessionLock implements goose's lock.SessionLocker; the *sql.Conn goose
// migrates on is not used (see the type's comment).
func (l *migrationLocker) SessionLock(ctx context.Context, _ *sql.Conn) error {
	// A connection outside the pool: goose already holds one of the pool's,
	// and a pool of one must not deadlock.
	conn, err := pgx.ConnectConfig(ctx, l.db.Pool.Config().ConnConfig)
	if err != nil {
		return fmt.Errorf("connecting for the migration lock: %w", RedactError(err))
	}
	deadline := time.Now().Add(l.timeout)
	for attempt := 0; ; attempt++ {
		tx, err := conn.Begin(ctx)
		if err != nil {
			conn.Close(context.WithoutCancel(ctx))
			return fmt.Errorf("taking the migration lock: %w", RedactError(err))
		}
		var got bool
		// The simple protocol: an extended-protocol SELECT leaves its
		// portal, and with it a snapshot, open until the next statement of
		// this idle transaction, and CREATE INDEX CONCURRENTLY in a migration
		// would wait for that snapshot for ever.
		if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1)", pgx.QueryExecModeSimpleProtocol, l.id).Scan(&got); err != nil {
			conn.Close(context.WithoutCancel(ctx))
			return fmt.Errorf("taking the migration lock: %w", RedactError(err))
		}
		if got {
			l.conn, l.tx = conn, tx
			return nil
		}
		_ = tx.Rollback(ctx)
		if attempt == 0 && l.db.Log != nil {
			h := lockHolder(ctx, conn, l.id)
			attrs := []any{"schema", l.db.Schema, "holder", h.String(), "gives_up_after", l.timeout}
			l.db.Log.Warn("waiting for the migration lock", attrs...)
		}
		if !time.Now().Before(deadline) {
			h := lockHolder(ctx, conn, l.id)
			conn.Close(context.WithoutCancel(ctx))
			return &MigrationLockError{Schema: l.db.Schema, Holder: h, Waited: l.timeout}
		}
		select {
		case <-ctx.Done():
			conn.Close(context.WithoutCancel(ctx))
			return fmt.Errorf("waiting for the migration lock of schema %q (held by %s): %w", l.db.Schema, lockHolder(context.WithoutCancel(ctx), conn, l.id), ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// SessionUnlock commits the lock's transaction, which releases the lock.
func (l *migrationLocker) SessionUnlock(ctx context.Context, _ *sql.Conn) error {
	if l.conn == nil {
		return errors.New("releasing the migration lock: not held")
	}
	err := l.tx.Commit(ctx)
	cerr := l.conn.Close(ctx)
	l.conn, l.tx = nil, nil
	if err != nil {
		return fmt.Errorf("releasing the migration lock: %w", RedactError(err))
	}
	if cerr != nil {
		return fmt.Errorf("closing the migration lock's connection: %w", RedactError(cerr))
	}
	return nil
}

// LockHolder is a server process holding the migration lock, from pg_locks
// and pg_stat_activity.
type LockHolder struct {
	PID        int
	AppName    string
	ClientAddr string // "local socket" for a Unix-socket client
	User       string
	State      string // pg_stat_activity.state: "idle" means a session lock left behind
	Since      time.Duration
}

func (h *LockHolder) String() string {
	if h == nil {
		return "an unknown session (it could not be read from pg_locks)"
	}
	s := fmt.Sprintf("pid %d (application_name %q, user %q, client %s, %s", h.PID, h.AppName, h.User, h.ClientAddr, h.State)
	if h.Since > 0 {
		s += fmt.Sprintf(" for %s", h.Since.Round(time.Second))
	}
	return s + ")"
}

// MigrationLockError says that another session held the migration lock for
// longer than attunectl waits, and who.
type MigrationLockError struct {
	Schema string
	Holder *LockHolder
	Waited time.Duration
}

func (e *MigrationLockError) Error() string {
	todo := "another `attunectl migrate` is running: wait for it to finish and try again"
	if e.Holder != nil && e.Holder.State == "idle" {
		todo = "that session is idle: a session lock left behind, as older attunectl releases leaked them through connection poolers; end it with SELECT pg_terminate_backend(" + fmt.Sprint(e.Holder.PID) + ")"
	} else if e.Holder != nil {
		todo += ", or if it is stuck end it with SELECT pg_terminate_backend(" + fmt.Sprint(e.Holder.PID) + ")"
	}
	return fmt.Sprintf("the migration lock of schema %q is held by %s; gave up after %s (%s)", e.Schema, e.Holder, e.Waited, todo)
}

// lockHolder finds who holds the advisory lock id in this database.
func lockHolder(ctx context.Context, conn *pgx.Conn, id int64) *LockHolder {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var h LockHolder
	var since *time.Duration
	err := conn.QueryRow(ctx, `
		SELECT a.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local socket'),
		       coalesce(a.usename::text, ''), coalesce(a.state, 'unknown'),
		       now() - coalesce(a.xact_start, a.state_change)
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted
		  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND l.classid::bigint = $1 AND l.objid::bigint = $2 AND l.objsubid = 1
		LIMIT 1`, int64(uint64(id)>>32), id&0xffffffff).Scan(&h.PID, &h.AppName, &h.ClientAddr, &h.User, &h.State, &since)
	if err != nil {
		return nil
	}
	if since != nil {
		h.Since = *since
	}
	return &h
}
