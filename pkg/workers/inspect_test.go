package workers_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/workers"
)

// row is a worker inserted by a test with SQL, so that the inspection
// tests do not depend on the registration code.
type row struct {
	name   string
	role   string // default sensor
	typ    string // default local
	status string // default active; "null" for NULL
	host   string
	hbAgo  string // an interval ("12 seconds"); "" for a worker that never heartbeat
	caps   string // JSON; "" for NULL
	meta   string // JSON; "" for NULL
	age    string // created and updated this long ago; default 1 day
}

func insert(t testing.TB, db *dbtest.DB, rows ...row) {
	t.Helper()
	for _, r := range rows {
		if r.role == "" {
			r.role = workers.RoleSensor
		}
		if r.typ == "" {
			r.typ = "local"
		}
		if r.age == "" {
			r.age = "1 day"
		}
		var status, hb, caps, meta, host any
		if r.status != "null" {
			status = r.status
			if r.status == "" {
				status = workers.StatusActive
			}
		}
		if r.hbAgo != "" {
			hb = r.hbAgo
		}
		if r.caps != "" {
			caps = r.caps
		}
		if r.meta != "" {
			meta = r.meta
		}
		if r.host != "" {
			host = r.host
		}
		_, err := db.Pool.Exec(context.Background(), `
			INSERT INTO worker (name, worker_role, worker_type, status, host, capabilities, meta, last_heartbeat, created, updated)
			VALUES ($1, $2::text::worker_role_enum, $3::text::worker_type_enum, $4::text::worker_status_enum, $5,
			        $6::jsonb, $7::jsonb, now() - $8::interval, now() - $9::interval, now() - $9::interval)`,
			r.name, r.role, r.typ, status, host, caps, meta, hb, r.age)
		if err != nil {
			t.Fatalf("inserting worker %s: %v", r.name, err)
		}
	}
}

func names(l workers.Listing) []string {
	var out []string
	for _, w := range l.Workers {
		out = append(out, w.Name)
	}
	return out
}

func byName(t testing.TB, l workers.Listing, name string) workers.Worker {
	t.Helper()
	for _, w := range l.Workers {
		if w.Name == name {
			return w
		}
	}
	t.Fatalf("worker %s not in listing %v", name, names(l))
	return workers.Worker{}
}

// fleet is a mixed set of workers covering every derived state.
var fleet = []row{
	{name: "sensor-live", host: "h1", hbAgo: "5 seconds", caps: `{"runtimes": ["python", "shell"], "heartbeat_interval": 30}`},
	{name: "sensor-late", host: "h1", hbAgo: "45 seconds", caps: `{"runtimes": ["shell"]}`},
	{name: "sensor-stale", host: "h2", hbAgo: "10 minutes", caps: `{"runtimes": ["python"]}`},
	{name: "sensor-never", host: "h2", caps: `{"runtimes": ["node.js"]}`},
	{name: "sensor-slow", host: "h3", hbAgo: "4 minutes", caps: `{"runtimes": ["python"], "heartbeat_interval": 120}`},
	{name: "sensor-off", host: "h3", status: "inactive", hbAgo: "2 days", caps: `{"runtimes": ["python"]}`},
	{name: "action-busy", role: "action", typ: "remote", status: "busy", host: "h1", hbAgo: "3 seconds"},
	{name: "action-stale", role: "action", host: "h2", hbAgo: "1 hour"},
	{name: "hybrid-err", role: "hybrid", typ: "container", status: "error", host: "h4", hbAgo: "3 minutes", caps: `{"runtimes": ["python"]}`},
}

func TestListDerivesState(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	insert(t, db, fleet...)
	l, err := workers.List(context.Background(), db.Handle(t), workers.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"sensor-live": "active", "sensor-late": "active", "sensor-stale": "stale", "sensor-never": "stale",
		"sensor-slow": "active", "sensor-off": "inactive", "action-busy": "busy", "action-stale": "stale", "hybrid-err": "error",
	}
	if got := names(l); !slices.IsSorted(got) || len(got) != len(want) {
		t.Fatalf("names = %v, want all %d sorted by name", got, len(want))
	}
	for _, w := range l.Workers {
		if w.State != want[w.Name] {
			t.Errorf("%s: state %q, want %q", w.Name, w.State, want[w.Name])
		}
	}
	if time.Since(l.At).Abs() > time.Minute {
		t.Errorf("At = %v, want the database's now", l.At)
	}
	late := byName(t, l, "sensor-late")
	if !l.Late(late) || l.Late(byName(t, l, "sensor-live")) || !l.Late(byName(t, l, "sensor-slow")) {
		t.Errorf("late: sensor-late %v, sensor-live %v, sensor-slow %v; want true, false, true",
			l.Late(late), l.Late(byName(t, l, "sensor-live")), l.Late(byName(t, l, "sensor-slow")))
	}
	if late.Silence < 45*time.Second || late.Silence > 50*time.Second {
		t.Errorf("sensor-late silence %v, want about 45s", late.Silence)
	}
	never := byName(t, l, "sensor-never")
	if never.LastHeartbeat != nil || never.Silence != 0 {
		t.Errorf("sensor-never: last heartbeat %v, silence %v; want nil, 0", never.LastHeartbeat, never.Silence)
	}
	if g := l.GraceOf(byName(t, l, "sensor-slow")); g != 6*time.Minute {
		t.Errorf("grace of sensor-slow %v, want 6m (3 × 120s)", g)
	}
	if g := l.GraceOf(late); g != workers.DefaultGrace {
		t.Errorf("grace of sensor-late %v, want the default %v", g, workers.DefaultGrace)
	}
	busy := byName(t, l, "action-busy")
	if busy.Role != "action" || busy.Type != "remote" || busy.Status != "busy" || busy.Host != "h1" {
		t.Errorf("action-busy = %+v", busy)
	}
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	insert(t, db, fleet...)
	for _, tc := range []struct {
		name string
		opts workers.ListOptions
		want []string
	}{
		{"role sensor", workers.ListOptions{Selector: workers.Selector{Roles: []string{"sensor"}}},
			[]string{"sensor-late", "sensor-live", "sensor-never", "sensor-off", "sensor-slow", "sensor-stale"}},
		{"roles action and hybrid", workers.ListOptions{Selector: workers.Selector{Roles: []string{"action", "hybrid"}}},
			[]string{"action-busy", "action-stale", "hybrid-err"}},
		{"status stale", workers.ListOptions{Status: "stale"},
			[]string{"action-stale", "sensor-never", "sensor-stale"}},
		{"status active excludes stale", workers.ListOptions{Status: "active"},
			[]string{"sensor-late", "sensor-live", "sensor-slow"}},
		{"status inactive", workers.ListOptions{Status: "inactive"}, []string{"sensor-off"}},
		{"status busy", workers.ListOptions{Status: "busy"}, []string{"action-busy"}},
		{"runtime python (the seed's query)", workers.ListOptions{Selector: workers.Selector{Roles: []string{"sensor"}, Runtime: "python"}, Status: "active"},
			[]string{"sensor-live", "sensor-slow"}},
		{"runtime python, any role or state", workers.ListOptions{Selector: workers.Selector{Runtime: "python"}},
			[]string{"hybrid-err", "sensor-live", "sensor-off", "sensor-slow", "sensor-stale"}},
		{"runtime without workers", workers.ListOptions{Selector: workers.Selector{Runtime: "java"}}, nil},
		{"host", workers.ListOptions{Selector: workers.Selector{Host: "h2"}},
			[]string{"action-stale", "sensor-never", "sensor-stale"}},
		{"host and runtime and role", workers.ListOptions{Selector: workers.Selector{Host: "h2", Runtime: "python", Roles: []string{"sensor"}}},
			[]string{"sensor-stale"}},
		{"stale only", workers.ListOptions{StaleOnly: true, Selector: workers.Selector{Roles: []string{"sensor"}}},
			[]string{"sensor-never", "sensor-stale"}},
		{"older-than overrides the per-worker grace", workers.ListOptions{StaleOnly: true, OlderThan: 40 * time.Second, Selector: workers.Selector{Roles: []string{"sensor"}}},
			[]string{"sensor-late", "sensor-never", "sensor-slow", "sensor-stale"}},
		{"the seed's 5 minutes", workers.ListOptions{StaleOnly: true, OlderThan: 5 * time.Minute},
			[]string{"action-stale", "sensor-never", "sensor-stale"}},
		{"sort by heartbeat: never first, then oldest", workers.ListOptions{SortBy: workers.SortByHeartbeat, Selector: workers.Selector{Roles: []string{"sensor"}}},
			[]string{"sensor-never", "sensor-off", "sensor-stale", "sensor-slow", "sensor-late", "sensor-live"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := workers.List(context.Background(), db.Handle(t), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(l); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStaleIgnoresStatus(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	insert(t, db, fleet...)
	l, err := workers.Stale(context.Background(), db.Handle(t), workers.ListOptions{Status: "inactive"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(l), []string{"action-stale", "sensor-never", "sensor-stale"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestListEmpty(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	l, err := workers.List(context.Background(), db.Handle(t), workers.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Workers) != 0 || l.At.IsZero() {
		t.Errorf("listing = %+v, want no workers and the database's clock", l)
	}
}

// An Attune database may have columns attunectl does not know (the cordon
// columns were such until migration 00021 made them attunectl's own, so
// the test adds columns no migration knows) and enum values it does not know (draining), and capabilities written by
// other tools: listing must work and show them as they are.
func TestListUnknownColumnsAndEnumValues(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	for _, stmt := range []string{
		`ALTER TABLE worker ADD COLUMN agent_version text NOT NULL DEFAULT '', ADD COLUMN maintenance_note text`,
		`ALTER TYPE worker_status_enum ADD VALUE 'draining'`,
		`ALTER TYPE worker_role_enum ADD VALUE 'notifier'`,
	} {
		if _, err := db.Pool.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	insert(t, db,
		row{name: "w-draining", status: "draining", hbAgo: "1 hour"},
		row{name: "w-notifier", role: "notifier", hbAgo: "2 seconds"},
		row{name: "w-odd-caps", hbAgo: "2 seconds", caps: `{"runtimes": "python", "heartbeat_interval": "often", "x": 1}`},
		row{name: "w-array-caps", hbAgo: "2 seconds", caps: `[1, 2]`, meta: `"just a string"`},
		row{name: "w-null-status", status: "null", hbAgo: "2 seconds"},
	)
	if _, err := db.Pool.Exec(ctx, `UPDATE worker SET agent_version = '0.9', maintenance_note = 'maintenance' WHERE name = 'w-draining'`); err != nil {
		t.Fatal(err)
	}
	l, err := workers.List(ctx, db.Handle(t), workers.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"w-draining": "draining", "w-notifier": "active", "w-odd-caps": "active", "w-array-caps": "active", "w-null-status": "unknown"}
	for _, w := range l.Workers {
		if w.State != want[w.Name] {
			t.Errorf("%s: state %q, want %q", w.Name, w.State, want[w.Name])
		}
	}
	if w := byName(t, l, "w-notifier"); w.Role != "notifier" {
		t.Errorf("w-notifier role %q", w.Role)
	}

	l, err = workers.List(ctx, db.Handle(t), workers.ListOptions{Status: "draining", Selector: workers.Selector{Roles: []string{"sensor"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(l); !slices.Equal(got, []string{"w-draining"}) {
		t.Errorf("--status draining: %v", got)
	}
	l, err = workers.List(ctx, db.Handle(t), workers.ListOptions{Selector: workers.Selector{Roles: []string{"notifier"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(l); !slices.Equal(got, []string{"w-notifier"}) {
		t.Errorf("--role notifier: %v", got)
	}

	if err := workers.CheckFilters(db.Handle(t), []string{"sensor", "notifier"}, "draining"); err != nil {
		t.Errorf("CheckFilters(known labels of this database) = %v", err)
	}
	err = workers.CheckFilters(db.Handle(t), nil, "drainin")
	var inv *workers.InvalidValueError
	if !errors.As(err, &inv) || inv.Field != "status" || !slices.Contains(inv.Valid, "draining") || !slices.Contains(inv.Valid, "stale") {
		t.Fatalf("CheckFilters(drainin) = %v, want an InvalidValueError listing draining and stale", err)
	}
	if want := `unknown worker status "drainin": use one of active, stale, inactive, busy, error, draining`; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	err = workers.CheckFilters(db.Handle(t), []string{"sensors"}, "")
	if !errors.As(err, &inv) || inv.Field != "role" || !strings.Contains(err.Error(), "notifier") {
		t.Errorf("CheckFilters(role sensors) = %v", err)
	}
}

// CheckFilters reads the enum labels learned at connect, never the
// database (a nil pool proves it): a value attunectl knows but this era's
// enum lacks is refused with the labels it has.
func TestCheckFiltersUseTheLabelsLearnedAtConnect(t *testing.T) {
	t.Parallel()
	attune := &database.DB{Facts: database.SchemaFacts{Enums: map[string][]string{
		"worker.worker_role": {"action", "sensor"},
		"worker.status":      {"active", "inactive", "busy", "error"},
	}}}
	if err := workers.CheckFilters(attune, []string{"sensor", "action"}, "stale"); err != nil {
		t.Fatal(err)
	}
	err := workers.CheckFilters(attune, []string{"hybrid"}, "")
	if want := `unknown worker role "hybrid": use one of action, sensor`; err == nil || err.Error() != want {
		t.Errorf("hybrid on an enum without it: %v, want %q", err, want)
	}
	// A text column (no enum): the values attunectl knows.
	if err := workers.CheckFilters(&database.DB{}, []string{"hybrid"}, "busy"); err != nil {
		t.Errorf("known values without an enum: %v", err)
	}
}

// benchFleet fills a database with n sensor workers, 1% of them stale.
func benchFleet(b *testing.B, n int) *dbtest.DB {
	b.Helper()
	db := dbtest.New(b)
	_, err := db.Pool.Exec(context.Background(), `
		INSERT INTO worker (name, worker_role, worker_type, status, host, capabilities, meta, last_heartbeat)
		SELECT 'w-' || i, 'sensor', 'local', 'active', 'host-' || (i % 100),
		       '{"runtimes": ["built-in sensor", "python", "shell"], "heartbeat_interval": 30}',
		       jsonb_build_object('instance_id', 'i-' || i),
		       CASE WHEN i % 100 = 0 THEN now() - interval '1 hour' ELSE now() END
		FROM generate_series(1, $1::int) AS i`, n)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Pool.Exec(context.Background(), "VACUUM ANALYZE worker"); err != nil {
		b.Fatal(err)
	}
	return db
}

// BenchmarkStale lists the 100 stale workers among 10,000 (the 1,000,000-row
// figures come from cmd/workerbench).
func BenchmarkStale(b *testing.B) {
	db := benchFleet(b, 10_000)
	dbh := db.Handle(b)
	for b.Loop() {
		l, err := workers.Stale(context.Background(), dbh, workers.ListOptions{})
		if err != nil || len(l.Workers) != 100 {
			b.Fatalf("%d workers, %v", len(l.Workers), err)
		}
	}
}

// BenchmarkList reads and decodes 10,000 workers.
func BenchmarkList(b *testing.B) {
	db := benchFleet(b, 10_000)
	dbh := db.Handle(b)
	for b.Loop() {
		l, err := workers.List(context.Background(), dbh, workers.ListOptions{})
		if err != nil || len(l.Workers) != 10_000 {
			b.Fatalf("%d workers, %v", len(l.Workers), err)
		}
	}
}
