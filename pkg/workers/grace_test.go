package workers_test

import (
	"context"
	"strings"
	"testing"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/workers"
)

// TestGraceBackfill: migration 00011 fills heartbeat_grace on rows written
// before the column existed (here: rows whose column was emptied), over
// several committed batches, and 00012 builds its index again after a down.
func TestGraceBackfill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := dbtest.New(t)
	_, err := tdb.Pool.Exec(ctx, `
		INSERT INTO worker (name, worker_type, status, capabilities, last_heartbeat)
		SELECT 'w-' || i, 'local', 'active', jsonb_build_object('heartbeat_interval', i % 7), now()
		FROM generate_series(1, 12000) AS i;
		UPDATE worker SET heartbeat_grace = NULL;`)
	if err != nil {
		t.Fatal(err)
	}
	db, err := database.Open(ctx, database.Options{URL: tdb.URL, Schema: tdb.Schema})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m, err := database.NewMigrator(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.DownTo(ctx, 10); err != nil {
		t.Fatal(err)
	}
	var idx int
	if err := tdb.Pool.QueryRow(ctx, "SELECT count(*) FROM pg_indexes WHERE indexname = 'idx_worker_capabilities_runtimes'").Scan(&idx); err != nil || idx != 0 {
		t.Fatalf("index after down to 10: %d %v", idx, err)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	var missing, wrong int
	err = tdb.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE heartbeat_grace IS NULL),
		count(*) FILTER (WHERE heartbeat_grace <> attunectl_worker_grace(capabilities)) FROM worker`).Scan(&missing, &wrong)
	if err != nil || missing != 0 || wrong != 0 {
		t.Fatalf("after the backfill: %d rows without a grace, %d with a wrong one (%v)", missing, wrong, err)
	}
	var comment string
	if err := tdb.Pool.QueryRow(ctx, "SELECT obj_description('idx_worker_capabilities_runtimes'::regclass, 'pg_class')").Scan(&comment); err != nil || comment != "attunectl: created by migration 00012" {
		t.Fatalf("index comment %q (%v)", comment, err)
	}
}

// TestWithoutGraceColumn: on a worker table attunectl has not migrated
// (an Attune database: no heartbeat_grace, no attunectl_worker_grace),
// listing, streaming and pruning judge the grace from capabilities.
func TestWithoutGraceColumn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	insert(t, db, fleet...)
	if _, err := db.Pool.Exec(ctx, `DROP TRIGGER attunectl_worker_grace ON worker;
		ALTER TABLE worker DROP COLUMN heartbeat_grace;
		DROP FUNCTION attunectl_worker_set_grace(); DROP FUNCTION attunectl_worker_grace(jsonb)`); err != nil {
		t.Fatal(err)
	}
	l, err := workers.Stale(ctx, db.Handle(t), workers.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(l), ","); got != "action-stale,sensor-never,sensor-stale" {
		t.Errorf("stale without the column: %s", got)
	}
	rows, _ := collect(t, db.Pool, workers.ListOptions{StaleOnly: true}, workers.StreamOptions{Fields: workers.FieldsAll})
	if len(rows) != 3 || rows[2].Name != "sensor-stale" || rows[2].Grace != workers.DefaultGrace {
		t.Errorf("streamed stale without the column: %+v", rows)
	}
	if _, err := workers.PruneCount(ctx, db.Handle(t), workers.PruneOptions{}); err != nil {
		t.Errorf("prune count without the column: %v", err)
	}
	if _, err := workers.Prune(ctx, db.Handle(t), workers.PruneOptions{Selector: workers.Selector{Roles: []string{"sensor"}}}); err != nil {
		t.Errorf("prune without the column: %v", err)
	}
}
