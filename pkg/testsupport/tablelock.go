package testsupport

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TableLock is an ACCESS EXCLUSIVE lock held on a table by a session of
// its own: every statement that reads or writes the table waits, as behind
// a migration or an operator's forgotten transaction.
type TableLock struct {
	// PID is the backend holding the lock (pg_backend_pid()).
	PID  int
	conn *pgxpool.Conn
	tx   pgx.Tx
}

// LockTable takes the lock on table (a name the pool's search_path finds,
// or schema-qualified) and holds it until Release or the end of the test.
func LockTable(t testing.TB, pool *pgxpool.Pool, table string) *TableLock {
	t.Helper()
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		conn.Release()
		t.Fatal(err)
	}
	l := &TableLock{conn: conn, tx: tx}
	t.Cleanup(l.Release)
	if _, err := tx.Exec(ctx, "LOCK TABLE "+table+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&l.PID); err != nil {
		t.Fatal(err)
	}
	return l
}

// Release ends the transaction (and so the lock) and returns the
// connection. It may be called more than once.
func (l *TableLock) Release() {
	if l.conn == nil {
		return
	}
	_ = l.tx.Rollback(context.Background())
	l.conn.Release()
	l.conn = nil
}
