package workers_test

import (
	"context"
	"testing"

	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/workers"
)

// TestLockHoldersOnlyThisDatabase: a lock on the worker table of another
// database is not a holder of this one's, although databases cloned from
// one template give their worker tables the same oid.
func TestLockHoldersOnlyThisDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	locked, other := dbtest.New(t), dbtest.New(t)
	tx, err := locked.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var pid int32
	if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE worker IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	if h := workers.LockHolders(ctx, locked.Handle(t)); len(h) != 1 || h[0].PID != pid {
		t.Errorf("holders in the locked database = %+v, want pid %d", h, pid)
	}
	if h := workers.LockHolders(ctx, other.Handle(t)); len(h) != 0 {
		t.Errorf("holders in another database = %+v, want none", h)
	}
}
