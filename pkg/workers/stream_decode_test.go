package workers_test

import (
	"context"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/placement"
	"github.com/attune-automation/attunectl/pkg/workers"
)

// TestStreamDecodesEdgeValues: the stream reads its columns' bytes itself
// (see streamscan.go); on values at the edges — NULLs where the old
// statement had coalesce, a grace of years, months and days, a heartbeat in
// the future, names beyond ASCII, a cordon — it yields what List (pgx's
// decoding, the server's extract) and placement.WorkerStates read, directly
// and through PgBouncer in transaction mode, where the statement is
// described and bound in two round trips of one transaction.
func TestStreamDecodesEdgeValues(t *testing.T) {
	t.Parallel()
	d := dbtest.NewPgBouncer(t)
	db := &dbtest.DB{Pool: d.Pool}
	ctx := context.Background()
	insert(t, db, fleet...)
	insert(t, db,
		row{name: "edge-ñame-✓", host: "hôte-1", hbAgo: "-3 hours", caps: `{"runtimes": ["python", "ruby ✓"], "heartbeat_interval": 2.5}`},
		row{name: "edge-no-host", hbAgo: "10 seconds", caps: `{"runtimes": [], "heartbeat_interval": 1e2}`},
		row{name: "edge-grace-years", hbAgo: "400 days", caps: `{"runtimes": ["shell"]}`, meta: `{"instance_id": "i-✓", "n": [1, 2.50, null]}`},
		row{name: "edge-grace-negative", hbAgo: "1 second", caps: `{"runtimes": ["a\"b", "c\\d"]}`},
		row{name: "edge-cordoned", typ: "container", hbAgo: "2 seconds", caps: `{"runtimes": ["shell"], "heartbeat_interval": "30"}`},
		row{name: "edge-interval-null", hbAgo: "3 seconds", caps: `{"runtimes": ["shell"], "heartbeat_interval": null}`},
	)
	for _, q := range []string{
		`UPDATE worker SET heartbeat_grace = '1 year 2 mons 3 days 04:05:06.789012' WHERE name = 'edge-grace-years'`,
		`UPDATE worker SET heartbeat_grace = '-1 mons +2 days -00:00:00.000001' WHERE name = 'edge-grace-negative'`,
		`UPDATE worker SET port = 8443, cordoned = true, cordon_reason = 'kernel ✓', cordoned_by_name = 'ops', cordoned_at = now() - interval '5 minutes'
		 WHERE name = 'edge-cordoned'`,
	} {
		if _, err := d.Pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	pooled, err := database.Open(ctx, database.Options{URL: d.PoolerURL, Schema: d.Schema, StatementTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer pooled.Close()
	if !pooled.Pooler {
		t.Fatal("the pooler URL was not detected as a pooler")
	}
	states, err := placement.WorkerStates(ctx, d.Handle(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []struct {
		name string
		db   *dbtest.DB
	}{{"direct", db}, {"pgbouncer", &dbtest.DB{Pool: pooled.Pool}}} {
		for _, opts := range append(streamCases, workers.ListOptions{Selector: workers.Selector{Runtime: "ruby ✓"}}) {
			l, err := workers.List(ctx, d.Handle(t), opts)
			if err != nil {
				t.Fatal(err)
			}
			rows, _ := collect(t, path.db.Pool, opts, workers.StreamOptions{Fields: workers.FieldsAll | workers.FieldPlacement})
			if len(rows) != len(l.Workers) {
				t.Fatalf("%s %+v: streamed %d workers, List %d", path.name, opts, len(rows), len(l.Workers))
			}
			for i, r := range rows {
				sameWorkerButGrace(t, l, r, l.Workers[i])
				var grace float64
				if err := d.Pool.QueryRow(ctx, `SELECT extract(epoch FROM coalesce(heartbeat_grace, attunectl_worker_grace(capabilities)))::float8
					FROM worker WHERE id = $1`, r.ID).Scan(&grace); err != nil {
					t.Fatal(err)
				}
				wantGrace := time.Duration(grace * float64(time.Second))
				if opts.OlderThan > 0 {
					wantGrace = opts.OlderThan
				}
				if r.Grace != wantGrace {
					t.Errorf("%s %s: grace %v, the server's %v", path.name, r.Name, r.Grace, wantGrace)
				}
				ps := states[r.ID]
				want := workers.Placement{Cordoned: ps.Cordoned, Reason: ps.Reason, By: ps.By, At: ps.At, Held: ps.Held}
				if (r.Placement.At == nil) != (want.At == nil) || r.Placement.At != nil && !r.Placement.At.Equal(*want.At) {
					t.Errorf("%s %s: cordoned at %v, want %v", path.name, r.Name, r.Placement.At, want.At)
				}
				r.Placement.At, want.At = nil, nil
				if r.Placement != want {
					t.Errorf("%s %s: placement %+v, want %+v", path.name, r.Name, r.Placement, want)
				}
			}
		}
	}
	// The edges are what they were written as, not only what List says.
	rows, _ := collect(t, pooled.Pool, workers.ListOptions{}, workers.StreamOptions{Fields: workers.FieldsAll | workers.FieldPlacement})
	got := map[string]workers.Row{}
	for _, r := range rows {
		got[r.Name] = r
	}
	years := 365.25*86400 + 2*30*86400 + 3*86400 + 4*3600 + 5*60 + 6.789012
	if g := got["edge-grace-years"].Grace; g != time.Duration(years*float64(time.Second)) {
		t.Errorf("grace of 1 year 2 mons 3 days 04:05:06.789012: %v", g)
	}
	if r := got["edge-no-host"]; r.Host != "" || r.Capabilities.HeartbeatInterval != 100 || r.Capabilities.Runtimes == nil {
		t.Errorf("edge-no-host: host %q, interval %v, runtimes %#v", r.Host, r.Capabilities.HeartbeatInterval, r.Capabilities.Runtimes)
	}
	if r := got["edge-ñame-✓"]; r.Silence >= 0 || r.Host != "hôte-1" {
		t.Errorf("a heartbeat in the future: silence %v, host %q", r.Silence, r.Host)
	}
	if r := got["edge-cordoned"]; !r.Placement.Cordoned || r.Placement.Reason != "kernel ✓" || r.Port == nil || *r.Port != 8443 || r.Type != "container" {
		t.Errorf("edge-cordoned: %+v port %v type %q", r.Placement, r.Port, r.Type)
	}
}
