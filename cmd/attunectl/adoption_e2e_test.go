package main

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/attune-automation/attunectl/migrations"
	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/testsupport"
)

// loadEra creates a fresh, unmigrated database and loads
// testdata/eras/<era>/era.sql into schema: the tables and rows of a database
// that Attune created in that era, before attunectl ever saw it.
func loadEra(t *testing.T, era, schema string) *dbtest.DB {
	t.Helper()
	sql, err := os.ReadFile(filepath.Join("..", "..", "testdata", "eras", era, "era.sql"))
	if err != nil {
		t.Fatal(err)
	}
	db := dbtest.NewEmpty(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	s := pgx.Identifier{schema}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+s+"; SET search_path TO "+s+";\n"+string(sql)); err != nil {
		t.Fatalf("loading era %s into schema %s: %v", era, schema, err)
	}
	return db
}

// noRawSQL fails when an operator would see PostgreSQL's raw error text.
func noRawSQL(t *testing.T, what string, r result) {
	t.Helper()
	for _, m := range []string{"SQLSTATE", "panic", "goroutine "} {
		if strings.Contains(r.Stderr, m) || strings.Contains(r.Stdout, m) {
			t.Errorf("%s printed %q:\n%s%s", what, m, r.Stdout, r.Stderr)
		}
	}
}

// expect runs attunectl and checks its exit status, and that stdout and
// stderr together match every pattern.
func expect(t *testing.T, environ []string, code int, args []string, patterns ...string) result {
	t.Helper()
	r := run(t, environ, args...)
	noRawSQL(t, strings.Join(args, " "), r)
	if r.Code != code {
		t.Errorf("attunectl %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.Code, code, r.Stdout, r.Stderr)
		return r
	}
	for _, p := range patterns {
		if !regexp.MustCompile(p).MatchString(r.Stdout + r.Stderr) {
			t.Errorf("attunectl %s: no match for %s in\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), p, r.Stdout, r.Stderr)
		}
	}
	return r
}

func queryString(t *testing.T, db *dbtest.DB, sql string, args ...any) string {
	t.Helper()
	var s string
	if err := db.Pool.QueryRow(context.Background(), sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// latestMigration is the highest embedded migration version.
func latestMigration(t *testing.T) int64 {
	t.Helper()
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("embedded migrations: %v %v", files, err)
	}
	v, err := strconv.ParseInt(strings.SplitN(files[len(files)-1], "_", 2)[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// era is one published era of Attune's schema and what it holds.
type era struct {
	name string
	// before: the read commands that work before `migrate up`, with their
	// exit status and a pattern; the others must say to migrate.
	before []check
	// workers: the fixture's worker names.
	workers []string
	// noVerification is a fixture runtime without verification metadata.
	noVerification string
	// referenced is a fixture runtime a worker points at (worker.runtime),
	// removed by `runtime remove`.
	referenced, referencedBy string
	// stale is a fixture worker that is stale (empty: none).
	stale string
	// noUniqueName: the era's worker table has no unique constraint on name.
	noUniqueName bool
	// after: era-specific checks once migrated.
	after []check
}

type check struct {
	code    int
	args    []string
	pattern string
}

var migrateFirst = "run `attunectl migrate up`"

var eras = []era{
	{
		name: "seed",
		before: []check{
			{1, []string{"worker", "list"}, regexp.QuoteMeta(migrateFirst)},
			{1, []string{"runtime", "list"}, regexp.QuoteMeta(migrateFirst)},
			{1, []string{"sensor", "run", "--dry-run"}, regexp.QuoteMeta(migrateFirst)},
			{0, []string{"migrate", "status"}, `(?m)^00001\s+00001_base\.sql\s+pending`},
		},
		workers:        []string{"worker-exec-1", "worker-exec-2", "worker-ruby"},
		noVerification: "acme.sensor.ruby",
		referenced:     "acme.sensor.ruby", referencedBy: "worker-ruby",
		noUniqueName: true,
		after: []check{
			// Attune's check constraint on refs is explained, not a raw SQLSTATE.
			{1, []string{"runtime", "add", "--ref", "acme.ruby", "--name", "Ruby", "--always-available"},
				`adding runtime acme\.ruby: the runtime table's check constraint runtime_ref_format refuses the row: this database's runtime table requires refs of the form PACK\.sensor\.NAME or PACK\.action\.NAME \(nothing was written\)`},
		},
	},
	{
		name: "2025",
		before: []check{
			{0, []string{"worker", "list"}, `(?m)^sensor-old-host\s+sensor\s+stale\s`},
			{3, []string{"worker", "stale", "--exit-code"}, `sensor-old-host`},
			{0, []string{"runtime", "list"}, `(?m)^core\.python\s+Python\s`},
			{3, []string{"runtime", "verify"}, `(?m)^COBOL\s+core\.cobol\s+no\s.*no verification metadata`},
			{1, []string{"runtime", "add", "--ref", "test.sensor.early", "--name", "Early", "--always-available"},
				`adding runtimes: schema "(attune|public)" is not migrated: runtime\.aliases column not found \(run ` + "`attunectl migrate up`"},
			{0, []string{"migrate", "version"}, `version 0 of \d+`},
		},
		workers:        []string{"sensor-old-host", "worker-exec-1"},
		noVerification: "core.cobol",
		referenced:     "core.python", referencedBy: "worker-exec-1",
		stale: "sensor-old-host",
	},
	{
		name: "today",
		before: []check{
			{0, []string{"worker", "list", "-o", "wide"}, `(?m)^sensor-attune-1\s+sensor\s+active\s`},
			{0, []string{"worker", "stale"}, ``},
			{0, []string{"runtime", "list", "core.python", "-o", "yaml"}, `(?m)^  - python3$|aliases:`},
			{3, []string{"runtime", "verify"}, `(?m)^Go\s+core\.go\s+no\s.*no verification metadata`},
			{0, []string{"migrate", "status", "-o", "json"}, `"applied": false`},
		},
		workers:        []string{"sensor-attune-1", "worker-exec-1"},
		noVerification: "core.go",
		referenced:     "core.python", referencedBy: "worker-exec-1",
	},
	{
		// Attune's newest schema (its migrations to October 2026): the core
		// runtimes belong to the platform catalog, sensors and their
		// workloads are pinned to pack releases, event is partitioned.
		name: "attune-2026-10",
		before: []check{
			{0, []string{"worker", "list", "-o", "wide"}, `(?m)^sensor-attune-1\s+sensor\s+active\s`},
			{0, []string{"runtime", "list", "core.python", "-o", "yaml"}, `(?m)^  - python3$|aliases:`},
			{0, []string{"migrate", "status", "-o", "json"}, `"applied": false`},
		},
		workers:        []string{"sensor-attune-1", "worker-exec-1"},
		noVerification: "core.go",
		after: []check{
			// Rows of the platform catalog are never written.
			{2, []string{"runtime", "add", "--update", "--ref", "core.python", "--name", "Python", "--always-available"},
				`core\.python belongs to Attune's platform catalog`},
			{2, []string{"runtime", "remove", "core.go"}, `core\.go belongs to Attune's platform catalog`},
			{0, []string{"sensor", "list"}, `(?m)^acme\.watch\s`},
			{0, []string{"sensor", "disable", "acme.watch"}, `disabled`},
		},
	},
}

// TestAdoptEveryEra loads each era of Attune's schema into `attune` and into
// `public`, runs the read commands that can work before `migrate up`, then
// `migrate up` and every command, and checks exit statuses and output.
func TestAdoptEveryEra(t *testing.T) {
	t.Parallel()
	for _, e := range eras {
		for _, schema := range []string{"attune", "public"} {
			t.Run(e.name+"/"+schema, func(t *testing.T) {
				t.Parallel()
				adoptEra(t, e, schema)
			})
		}
	}
}

func adoptEra(t *testing.T, e era, schema string) {
	db := loadEra(t, e.name, schema)
	environ := dbEnv(t, db, "ATTUNE__DATABASE__SCHEMA="+schema)
	workerRows := func() string {
		return queryString(t, db, `SELECT string_agg(name, ',' ORDER BY name) FROM worker WHERE name = ANY($1)`, e.workers)
	}
	wantWorkers := strings.Join(e.workers, ",")

	// Before migrate up: what can work works, the rest says to migrate.
	for _, c := range e.before {
		expect(t, environ, c.code, c.args, c.pattern)
	}

	// Up to the migration before the unique name: registration needs that
	// constraint, and says so where the era has none.
	expect(t, environ, 0, []string{"migrate", "up", "--to", "6"}, `is at version 6`)
	once := []string{"sensor", "run", "--once", "--name", "sensor-early", "--runtimes", "shell"}
	if e.noUniqueName {
		expect(t, environ, 1, once, regexp.QuoteMeta(`registering sensor worker "sensor-early": schema "`+schema+`" is not migrated: unique constraint on worker.name (registration's INSERT … ON CONFLICT (name) needs it) not found (run `+"`attunectl migrate up`"))
	} else {
		expect(t, environ, 0, once)
	}

	// migrate up adopts the tables.
	latest := strconv.FormatInt(latestMigration(t), 10)
	atLatest := `schema "` + schema + `" is at version ` + latest
	expect(t, environ, 0, []string{"migrate", "up"}, `applied\s+00007 00007_worker_name_unique\.sql`, atLatest)
	if got := workerRows(); got != wantWorkers {
		t.Fatalf("workers after migrate up: %s, want %s", got, wantWorkers)
	}
	expect(t, environ, 0, []string{"migrate", "version"}, `version `+latest+` of `+latest)
	r := expect(t, environ, 0, []string{"migrate", "status", "-o", "json"})
	var st []struct {
		Applied bool `json:"applied"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil || len(st) != migrationCount(t) || strings.Contains(r.Stdout, `"applied": false`) {
		t.Errorf("migrate status -o json: %v\n%s", err, r.Stdout)
	}

	// Runtimes: the seed's five with their metadata beside the era's own rows.
	expect(t, environ, 0, []string{"runtime", "list"}, `(?m)^core\.sensor\.python\s+Python\s`, `(?m)^`+regexp.QuoteMeta(e.noVerification)+`\s`)
	r = expect(t, environ, 3, []string{"runtime", "verify", "-o", "json"})
	var v verifyJSON
	if err := json.Unmarshal([]byte(r.Stdout), &v); err != nil {
		t.Fatalf("runtime verify -o json: %v\n%s", err, r.Stdout)
	}
	for _, want := range []string{"built-in sensor", "native", "node.js", "python", "shell"} {
		if !slices.Contains(v.Available, want) {
			t.Errorf("runtime verify: %q not available: %v", want, v.Available)
		}
	}
	for _, rt := range v.Runtimes {
		if rt.Ref == e.noVerification && (rt.Available || !strings.Contains(rt.Reason, "no verification metadata (add it: attunectl runtime list "+e.noVerification)) {
			t.Errorf("runtime verify: %s: available=%v reason %q", rt.Ref, rt.Available, rt.Reason)
		}
		if rt.Ref == "core.python2" {
			t.Errorf("runtime verify considered the retired core.python2")
		}
	}
	expect(t, environ, 0, []string{"runtime", "verify", "core.sensor.python", "core.sensor.builtin"})
	for _, c := range e.after {
		expect(t, environ, c.code, c.args, c.pattern)
	}
	expect(t, environ, 0, []string{"runtime", "add", "--ref", "test.sensor.bash", "--name", "Bash", "--alias", "bash5",
		"--command", "bash --version", "--pattern", "GNU bash"}, `runtime test.sensor.bash created`)
	expect(t, environ, 0, []string{"runtime", "list", "test.sensor.bash", "-o", "yaml"}, `(?m)^\s+- bash5$`)
	if e.referenced != "" {
		expect(t, environ, 0, []string{"runtime", "remove", e.referenced}, `runtime `+regexp.QuoteMeta(e.referenced)+` removed`)
		if got := queryString(t, db, `SELECT coalesce(runtime::text, 'null') FROM worker WHERE name = $1`, e.referencedBy); got != "null" {
			t.Errorf("worker %s still points at removed runtime %s: runtime = %s", e.referencedBy, e.referenced, got)
		}
	}

	// Workers.
	r = expect(t, environ, 0, []string{"worker", "list", "-o", "json"})
	for _, w := range e.workers {
		if !strings.Contains(r.Stdout, `"name": "`+w+`"`) {
			t.Errorf("worker list -o json lacks %s:\n%s", w, r.Stdout)
		}
	}
	if e.stale != "" {
		expect(t, environ, 3, []string{"worker", "stale", "--exit-code"}, `(?m)^`+e.stale+`\s`)
		expect(t, environ, 0, []string{"worker", "prune", "--dry-run"}, e.stale)
		expect(t, environ, 0, []string{"worker", "prune", "--yes"}, `marked inactive 1 stale worker`)
		if got := queryString(t, db, `SELECT status::text FROM worker WHERE name = $1`, e.stale); got != "inactive" {
			t.Errorf("after prune, %s is %s", e.stale, got)
		}
	} else {
		expect(t, environ, 0, []string{"worker", "stale", "--exit-code"})
		expect(t, environ, 0, []string{"worker", "prune", "--yes"})
	}

	// The sensor worker: dry run, a smoke run, a real run stopped by a signal.
	r = expect(t, environ, 0, []string{"sensor", "run", "--dry-run"})
	if !strings.Contains(r.Stdout, `"python"`) || !strings.Contains(r.Stdout, `"built-in sensor"`) {
		t.Errorf("sensor run --dry-run:\n%s", r.Stdout)
	}
	expect(t, environ, 0, []string{"sensor", "run", "--once", "--name", "sensor-adopt-once", "--runtimes", "shell"})
	p := start(t, environ, "sensor", "run", "--name", "sensor-adopt", "--heartbeat-interval", "200ms")
	waitRegistered(t, p, db.Pool, "sensor-adopt")
	stopSensor(t, p, db.Pool, "sensor-adopt")
	expect(t, environ, 0, []string{"worker", "list", "--role", "sensor"}, `(?m)^sensor-adopt\s+sensor\s+inactive\s`)

	// Down one step and up again; then everything attunectl created goes,
	// and Attune's rows stay.
	expect(t, environ, 0, []string{"migrate", "down"}, `rolled back`)
	expect(t, environ, 0, []string{"migrate", "up"}, atLatest)
	// A worker pointing at a runtime attunectl seeded does not stop the
	// rollback (the seed's era has a foreign key without ON DELETE).
	execSQL(t, db.Pool, `UPDATE worker SET runtime = (SELECT id FROM runtime WHERE ref = 'core.sensor.shell') WHERE name = $1`, e.workers[0])
	expect(t, environ, 0, []string{"migrate", "down", "--to", "0"}, `schema "`+schema+`" is at version 0`)
	if got := workerRows(); got != wantWorkers {
		t.Errorf("workers after migrate down --to 0: %s, want %s", got, wantWorkers)
	}
	if got := queryString(t, db, `SELECT count(*)::text FROM runtime WHERE ref LIKE 'core.sensor.%' AND distributions ? 'verification'`); got != "0" {
		t.Errorf("after migrate down --to 0, %s core.sensor.* rows still carry the seed's verification metadata", got)
	}
	expect(t, environ, 0, []string{"migrate", "up"}, atLatest)
	expect(t, environ, 0, []string{"worker", "list"})
}

// TestAdoptRefusesDuplicateWorkerNames: a seed-era worker table where two
// rows share a name cannot get its unique constraint; `migrate up` refuses
// before changing anything, names the rows and says what to do.
func TestAdoptRefusesDuplicateWorkerNames(t *testing.T) {
	t.Parallel()
	db := loadEra(t, "seed", "attune")
	execSQL(t, db.Pool, `INSERT INTO worker (name, worker_type, host, status, last_heartbeat)
		VALUES ('worker-exec-1', 'remote', 'exec-1-old.internal', 'inactive', now() - interval '90 days')`)
	environ := dbEnv(t, db)
	snapshot := func() string {
		return queryString(t, db, `SELECT concat_ws(E'\n',
			(SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'attune'),
			(SELECT string_agg(indexname || ':' || indexdef, E'\n' ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'attune'),
			(SELECT string_agg(table_name || '.' || column_name, ',' ORDER BY table_name, column_name) FROM information_schema.columns WHERE table_schema = 'attune'),
			(SELECT string_agg(typname, ',' ORDER BY typname) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'attune'),
			(SELECT json_agg(w ORDER BY id)::text FROM worker w),
			(SELECT json_agg(r ORDER BY id)::text FROM runtime r))`)
	}
	before := snapshot()
	r := expect(t, environ, 1, []string{"migrate", "up"},
		`migrate up refused: a worker name is held by several rows in attune.worker`,
		`(?m)^\s+worker-exec-1\s+4\s+exec-1-old\.internal\s+inactive\s+\d{4}-`,
		`(?m)^\s+worker-exec-1\s+1\s+exec-1\.internal\s+active\s+\d{4}-`,
		`nothing was changed`,
		`DELETE FROM "attune"\."worker" WHERE id IN`,
		"run `attunectl migrate up` again")
	if strings.Contains(r.Stdout, "applied") {
		t.Errorf("migrate up applied something:\n%s", r.Stdout)
	}
	if after := snapshot(); after != before {
		t.Errorf("migrate up changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// Resolved as the message says, it goes through.
	execSQL(t, db.Pool, `DELETE FROM worker WHERE id = 4`)
	expect(t, environ, 0, []string{"migrate", "up"}, `is at version \d+`)
	if got := queryString(t, db, `SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint WHERE conname = 'worker_name_key'`); !strings.HasPrefix(got, "attunectl:") {
		t.Errorf("worker_name_key: %q", got)
	}
}

// TestAdoptTablesInAnotherSchema: Attune's tables in public while attunectl
// looks in attune (the default). Commands say where the tables are and which
// --schema to pass; `migrate up` refuses instead of creating an empty second
// set beside them.
func TestAdoptTablesInAnotherSchema(t *testing.T) {
	t.Parallel()
	db := loadEra(t, "today", "public")
	environ := dbEnv(t, db)
	where := `schema "attune" has no worker and runtime tables, but schema "public" has them: pass --schema public`
	for _, args := range [][]string{{"worker", "list"}, {"runtime", "list"}, {"runtime", "verify"}, {"sensor", "run", "--dry-run"}} {
		expect(t, environ, 1, args, regexp.QuoteMeta(where))
	}
	expect(t, environ, 1, []string{"migrate", "up"}, regexp.QuoteMeta(where))
	if got := queryString(t, db, `SELECT count(*)::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'attune'`); got != "0" {
		t.Errorf("migrate up created %s relations in schema attune", got)
	}
	// With the schema named, it works.
	expect(t, environ, 0, []string{"--schema", "public", "migrate", "up"}, `schema "public" is at version \d+`)
	expect(t, environ, 0, []string{"--schema", "public", "worker", "list"}, `(?m)^sensor-attune-1\s`)

	// A schema that is not on search_path is found too.
	db2 := loadEra(t, "2025", "attune_prod")
	expect(t, dbEnv(t, db2), 1, []string{"worker", "list"}, regexp.QuoteMeta(`but schema "attune_prod" has them: pass --schema attune_prod`))
	expect(t, dbEnv(t, db2), 1, []string{"migrate", "up"}, regexp.QuoteMeta(`pass --schema attune_prod`))
	expect(t, dbEnv(t, db2), 0, []string{"--schema", "attune_prod", "migrate", "up"}, `is at version \d+`)
}

// attuneEra is a database of Attune's newest era (testdata/eras/attune-2026-10)
// in schema attune, migrated, with environ for attunectl (plus extra).
func attuneEra(t *testing.T, extra ...string) (*dbtest.DB, []string) {
	t.Helper()
	db := loadEra(t, "attune-2026-10", "attune")
	environ := dbEnv(t, db, extra...)
	expect(t, environ, 0, []string{"migrate", "up"}, `is at version \d+`)
	return db, environ
}

// adHocSensor adds to Attune's schema, as an operator would, a sensor of no
// pack that runs program with runtime, and its trigger (outSchema "" for
// none).
func adHocSensor(t *testing.T, db *dbtest.DB, ref, runtime, program, trigger, outSchema string) {
	t.Helper()
	execSQL(t, db.Pool, `INSERT INTO sensor (ref, label, entrypoint, runtime, runtime_ref, enabled, config)
		SELECT $1, $1, $2, id, ref, true, '{}' FROM runtime WHERE ref = $3`, ref, program, runtime)
	execSQL(t, db.Pool, `INSERT INTO trigger (ref, label, sensor, sensor_ref, out_schema)
		SELECT $1, $1, id, ref, nullif($3, '')::jsonb FROM sensor WHERE ref = $2`, trigger, ref, outSchema)
}

// addRule adds an enabled rule of the era's pack acme on trigger, with
// trigger_params params (JSON).
func addRule(t *testing.T, db *dbtest.DB, ref, trigger, params string) {
	t.Helper()
	execSQL(t, db.Pool, `INSERT INTO rule (ref, pack, pack_ref, label, action_ref, trigger, trigger_ref, enabled, trigger_params)
		SELECT $1, 1, 'acme', $1, 'acme.notify', id, ref, true, $3::jsonb FROM trigger WHERE ref = $2`, ref, trigger, params)
}

// TestAttuneNewestEraOperatorsColumns: on Attune's newest schema `sensor
// enable|disable` write the operator's enabled_override, never the enabled
// the pack owns; `sensor list` and placement follow effective_enabled and
// retired_at; Attune's pinned workload is left to Attune.
func TestAttuneNewestEraOperatorsColumns(t *testing.T) {
	t.Parallel()
	db, environ := attuneEra(t)
	cols := func() string {
		return queryString(t, db, `SELECT enabled || '/' || coalesce(enabled_override::text, 'null') || '/' || effective_enabled FROM sensor WHERE ref = 'acme.watch'`)
	}
	// The pack's sensor is the pack's: `sensor add --update` refuses it
	// before writing anything.
	before := queryString(t, db, `SELECT to_jsonb(s)::text FROM sensor s WHERE ref = 'acme.watch'`)
	res := runIn(t, t.TempDir(), environ, "ref: acme.watch\nruntime: core.sensor.shell\nentrypoint: /bin/true\ntriggers: [acme.fired]\n", "sensor", "add", "--update", "-f", "-")
	if res.Code != 2 || !strings.Contains(res.Stderr, "acme.watch (pack acme): Attune installs and updates it") {
		t.Errorf("sensor add --update of a pack's sensor: exit %d\n%s", res.Code, res.Stderr)
	}
	if after := queryString(t, db, `SELECT to_jsonb(s)::text FROM sensor s WHERE ref = 'acme.watch'`); after != before {
		t.Errorf("the refused sensor add changed the pack's sensor:\n%s\n%s", before, after)
	}
	expect(t, environ, 0, []string{"sensor", "disable", "acme.watch"}, `disabled`)
	if got := cols(); got != "true/false/false" {
		t.Errorf("after sensor disable: enabled/enabled_override/effective_enabled = %s, want true/false/false", got)
	}
	expect(t, environ, 0, []string{"sensor", "list", "acme.watch"}, `(?m)^acme\.watch\s.*disabled`)
	expect(t, environ, 0, []string{"sensor", "enable", "acme.watch"}, `enabled`)
	if got := cols(); got != "true/true/true" {
		t.Errorf("after sensor enable: enabled/enabled_override/effective_enabled = %s, want true/true/true", got)
	}
	// A sensor of the platform catalog cannot be switched by anyone but
	// the catalog: refused with the reason, before any write.
	execSQL(t, db.Pool, `BEGIN; SET LOCAL attune.catalog_write = 'on';
		INSERT INTO sensor (ref, label, entrypoint, runtime, runtime_ref, enabled, catalog_revision)
		SELECT 'core.watchdog', 'Watchdog', 'watchdog', id, ref, true, 3 FROM runtime WHERE ref = 'core.python'; COMMIT`)
	expect(t, environ, 2, []string{"sensor", "disable", "core.watchdog"}, `core\.watchdog belongs to Attune's platform catalog`)
	// A pack that left the sensor out of its newer release disables it,
	// whatever the override says; so does retirement.
	execSQL(t, db.Pool, `UPDATE sensor SET omission_disabled = true WHERE ref = 'acme.watch'`)
	expect(t, environ, 0, []string{"sensor", "list", "acme.watch"}, `(?m)^acme\.watch\s.*disabled`)
	execSQL(t, db.Pool, `UPDATE sensor SET omission_disabled = false, retired_at = now() WHERE ref = 'acme.watch'`)
	expect(t, environ, 0, []string{"sensor", "list", "acme.watch"}, `(?m)^acme\.watch\s.*disabled`)

	// The retired sensor's lease lapses: an attunectl worker never claims it,
	// and creates no workload beside Attune's pinned one.
	execSQL(t, db.Pool, `UPDATE sensor_workload_assignment SET lease_expires_at = now() - interval '1 second'`)
	p := start(t, environ, "sensor", "run", "--name", "ac-1", "--heartbeat-interval", "200ms", "--runtimes", "python")
	waitRegistered(t, p, db.Pool, "ac-1")
	time.Sleep(time.Second)
	if n := queryString(t, db, `SELECT count(*)::text FROM sensor_workload_assignment a JOIN worker w ON w.id = a.worker WHERE w.name = 'ac-1'`); n != "0" {
		t.Errorf("attunectl claimed %s workloads of a retired sensor", n)
	}
	if n := queryString(t, db, `SELECT count(*)::text FROM sensor_workload WHERE pack_release IS NULL`); n != "0" {
		t.Errorf("attunectl wrote %s unpinned workloads on a schema where Attune pins them", n)
	}
	stopSensor(t, p, db.Pool, "ac-1")
}

// TestAttuneSDKSensorRunsForItsRules: on Attune's newest schema a sensor
// written to Attune's contract runs unchanged under attunectl, and only
// for its rules: ATTUNE_SENSOR_TRIGGERS carries the rule instances (the
// rule's id and ref, config = its trigger_params), a changed rule reaches
// the running sensor within a few intervals, and with no enabled rule left
// the sensor is idle and its process stopped.
func TestAttuneSDKSensorRunsForItsRules(t *testing.T) {
	t.Parallel()
	db, environ := attuneEra(t)
	prog := sensorProgram(t, "attune_sdk.py")
	adHocSensor(t, db, "acme.sdk", "core.python", prog, "acme.sdk_fired", "")
	expect(t, environ, 0, []string{"sensor", "list", "acme.sdk"}, `(?m)^acme\.sdk\s.*idle`)
	addRule(t, db, "acme.on_sdk", "acme.sdk_fired", `{"threshold": 1}`)

	w := start(t, environ, "sensor", "run", "--name", "sdk-1", "--heartbeat-interval", "200ms", "--runtimes", "python")
	type payload struct {
		Rule   string         `json:"rule"`
		Config map[string]any `json:"config"`
		Types  []string       `json:"types"`
		Pack   string         `json:"pack"`
	}
	latest := func() (payload, string) {
		var p payload
		var raw []byte
		var trigger string
		if err := db.Pool.QueryRow(context.Background(), `SELECT payload, trigger_ref FROM event WHERE source_ref = 'acme.sdk' ORDER BY id DESC LIMIT 1`).Scan(&raw, &trigger); err != nil {
			return p, ""
		}
		_ = json.Unmarshal(raw, &p)
		return p, trigger
	}
	waitUntil(t, w, 30*time.Second, "the SDK sensor's first event", func() bool { _, tr := latest(); return tr != "" })
	p, trigger := latest()
	if p.Rule != "acme.on_sdk" || p.Config["threshold"] != 1.0 || !slices.Equal(p.Types, []string{"acme.sdk_fired"}) || p.Pack != "acme" || trigger != "acme.sdk_fired" {
		t.Errorf("the sensor was given rule %q config %v types %v pack %q (event trigger %q); want acme.on_sdk {threshold 1} [acme.sdk_fired] acme",
			p.Rule, p.Config, p.Types, p.Pack, trigger)
	}

	// Attune's UI reads the process from sensor_process.
	process := func() string {
		return queryString(t, db, `SELECT coalesce((SELECT status::text || '/' || active_rule_count || '/' || worker_name
			FROM sensor_process WHERE sensor_ref = 'acme.sdk'), 'none')`)
	}
	if got := process(); got != "running/1/sdk-1" {
		t.Errorf("sensor_process of acme.sdk: %s, want running/1/sdk-1", got)
	}

	// The rule changes: the sensor gets the new instance.
	execSQL(t, db.Pool, `UPDATE rule SET trigger_params = '{"threshold": 2}' WHERE ref = 'acme.on_sdk'`)
	waitUntil(t, w, 10*time.Second, "the changed rule to reach the sensor", func() bool { p, _ := latest(); return p.Config["threshold"] == 2.0 })

	// No enabled rule left: idle, the process stopped.
	execSQL(t, db.Pool, `UPDATE rule SET enabled_override = false WHERE ref = 'acme.on_sdk'`)
	waitUntil(t, w, 10*time.Second, "the sensor without rules to stop", func() bool { return len(testsupport.ProcessesWith(prog)) == 0 })
	expect(t, environ, 0, []string{"sensor", "list", "acme.sdk"}, `(?m)^acme\.sdk\s.*idle`)
	waitFor(t, 5*time.Second, "sensor_process to say stopped", func() bool { return strings.HasPrefix(process(), "stopped/") })
	stopSensor(t, w, db.Pool, "sdk-1")
	// Not one statement failed on Attune's schema (an enum value it lacks,
	// a column it does not have).
	if strings.Contains(w.stderr.String(), "SQLSTATE") {
		t.Errorf("a statement failed on Attune's schema:\n%s", w.stderr)
	}
}

// TestPinnedReleaseFilesRun: on Attune's newest schema a pack's sensor
// runs the files of the release its workload is pinned to, laid out as
// Attune's volume transport lays them out under sensor.packs_dir, and only
// while the release's archive hashes to the pinned digest; otherwise
// `sensor list` says why.
func TestPinnedReleaseFilesRun(t *testing.T) {
	t.Parallel()
	packs := readableDir(t, "apacks-")
	// The era pins acme.watch to the release whose digest is that of
	// "foo\n" (so the archive here is those four bytes).
	const digest = "b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c"
	release := filepath.Join(packs, ".releases", "sha256", digest)
	if err := os.MkdirAll(filepath.Join(release, "pack", "sensors"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(release, "pack.tar.gz"), []byte("foo\n"), 0o644)
	os.WriteFile(filepath.Join(release, "pack", "pack.yaml"), []byte("ref: acme\nversion: 1.2.0\n"), 0o644)
	src, err := os.ReadFile(filepath.Join("..", "..", "testdata", "sensors", "attune_sdk.py"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(release, "pack", "sensors", "watch.py"), src, 0o755)

	db, environ := attuneEra(t, "ATTUNE__SENSOR__PACKS_DIR="+packs)
	// Attune's sensor service is gone: its lease lapses.
	execSQL(t, db.Pool, `UPDATE sensor_workload_assignment SET lease_expires_at = now() - interval '1 second'`)
	w := start(t, environ, "sensor", "run", "--name", "pin-1", "--heartbeat-interval", "200ms", "--runtimes", "python")
	waitUntil(t, w, 30*time.Second, "the pinned release's sensor to emit", func() bool {
		return queryString(t, db, `SELECT count(*)::text FROM event WHERE source_ref = 'acme.watch'`) != "0"
	})
	if got := queryString(t, db, `SELECT payload->>'rule' || '/' || (payload->'config'->>'threshold') FROM event WHERE source_ref = 'acme.watch' ORDER BY id DESC LIMIT 1`); got != "acme.on_fired/3" {
		t.Errorf("the sensor was given %s, want the era's rule acme.on_fired with threshold 3", got)
	}
	stopSensor(t, w, db.Pool, "pin-1")

	// An archive that no longer matches its digest: the sensor does not
	// run, and says why.
	os.WriteFile(filepath.Join(release, "pack.tar.gz"), []byte("tampered\n"), 0o644)
	execSQL(t, db.Pool, `UPDATE sensor SET updated = now() WHERE ref = 'acme.watch'`)
	w = start(t, environ, "sensor", "run", "--name", "pin-2", "--heartbeat-interval", "200ms", "--runtimes", "python")
	waitUntil(t, w, 30*time.Second, "the tampered release to be refused", func() bool {
		res := run(t, environ, "sensor", "list", "acme.watch")
		return strings.Contains(res.Stdout, "does not match its digest")
	})
	stopSensor(t, w, db.Pool, "pin-2")
}

// TestAttunePlacementFoldsInPackAndRules: on Attune's newest schema a
// sensor goes only to a worker whose labels match its own selector, its
// pack's (pack.worker_selector) and every rule instance's
// (rule.sensor_worker_selector), as Attune's admission folds them in.
func TestAttunePlacementFoldsInPackAndRules(t *testing.T) {
	t.Parallel()
	db, environ := attuneEra(t)
	execSQL(t, db.Pool, `UPDATE pack SET worker_selector = '{"zone": "eu"}' WHERE ref = 'acme'`)
	execSQL(t, db.Pool, `UPDATE rule SET sensor_worker_selector = '{"disk": "ssd"}' WHERE ref = 'acme.on_fired'`)
	execSQL(t, db.Pool, `UPDATE sensor_workload_assignment SET lease_expires_at = now() - interval '1 second'`)
	execSQL(t, db.Pool, `UPDATE worker SET status = 'inactive' WHERE name = 'sensor-attune-1'`)
	a := start(t, environ, "sensor", "run", "--name", "eu-only", "--heartbeat-interval", "200ms", "--runtimes", "python", "--label", "zone=eu")
	waitRegistered(t, a, db.Pool, "eu-only")
	time.Sleep(time.Second)
	owner := func() string {
		return queryString(t, db, `SELECT coalesce(w.name, '') FROM sensor_workload_assignment a LEFT JOIN worker w ON w.id = a.worker
			AND a.lease_expires_at > clock_timestamp() WHERE a.workload = 1`)
	}
	if o := owner(); o != "" {
		t.Fatalf("acme.watch went to %q, whose labels lack the rule's disk=ssd", o)
	}
	// sensor list names the labels no worker has: the pack's and the rule's.
	expect(t, environ, 0, []string{"sensor", "list", "acme.watch"}, `has the labels .*disk=ssd`, `zone=eu`)
	b := start(t, environ, "sensor", "run", "--name", "eu-ssd", "--heartbeat-interval", "200ms", "--runtimes", "python", "--label", "zone=eu", "--label", "disk=ssd")
	waitUntil(t, b, 15*time.Second, "the worker matching pack and rule to claim acme.watch", func() bool { return owner() == "eu-ssd" })
	stopSensor(t, a, db.Pool, "eu-only")
	stopSensor(t, b, db.Pool, "eu-ssd")
}

// TestEventsAreCheckedAsAttunesAPIChecksThem: on Attune's newest schema
// the worker's event endpoint makes the checks of Attune's API before it
// writes: a payload that breaks the trigger's out_schema is refused (422,
// naming the failing path), a trigger_instance_id that is malformed, names
// no rule, or a rule of another trigger is refused (400); none of them is
// stored; a valid "rule_<id>" links the event to its rule.
func TestEventsAreCheckedAsAttunesAPIChecksThem(t *testing.T) {
	t.Parallel()
	db, environ := attuneEra(t)
	prog := sensorProgram(t, "prober.py")
	other := queryString(t, db, `SELECT id::text FROM rule WHERE ref = 'acme.on_fired'`)
	posts := `[{"payload": {"count": "three"}},
		{"payload": {"count": 1}, "trigger_instance_id": "rule_999999"},
		{"payload": {"count": 1}, "trigger_instance_id": "bogus"},
		{"payload": {"count": 1}, "trigger_instance_id": "rule_` + other + `"},
		{"payload": {"count": 2}}]`
	adHocSensor(t, db, "acme.probe", "core.python", prog, "acme.probed",
		`{"type": "object", "properties": {"count": {"type": "integer"}}, "required": ["count"]}`)
	addRule(t, db, "acme.on_probe", "acme.probed", `{"posts": `+posts+`}`)
	w := start(t, environ, "sensor", "run", "--name", "probe-1", "--heartbeat-interval", "200ms", "--runtimes", "python")
	var report struct {
		Count   int `json:"count"`
		Answers []struct {
			Status int    `json:"status"`
			Error  string `json:"error"`
		} `json:"answers"`
	}
	waitUntil(t, w, 30*time.Second, "the prober's report", func() bool {
		raw := queryString(t, db, `SELECT coalesce((SELECT payload::text FROM event WHERE source_ref = 'acme.probe' AND payload ? 'answers' LIMIT 1), '')`)
		return raw != "" && json.Unmarshal([]byte(raw), &report) == nil
	})
	var statuses []int
	for _, a := range report.Answers {
		statuses = append(statuses, a.Status)
	}
	if !slices.Equal(statuses, []int{422, 400, 400, 400, 201}) {
		t.Errorf("answers %v, want 422, 400, 400, 400, 201: %+v", statuses, report.Answers)
	}
	if len(report.Answers) == 5 {
		for i, want := range []string{"/count", "unknown rule 999999", "rule_<positive numeric id>", "does not use trigger 'acme.probed'"} {
			if !strings.Contains(report.Answers[i].Error, want) {
				t.Errorf("answer %d: %q, want it to mention %q", i, report.Answers[i].Error, want)
			}
		}
	}
	if got := queryString(t, db, `SELECT count(*)::text FROM event WHERE source_ref = 'acme.probe'`); got != "2" {
		t.Errorf("%s events stored for the prober, want 2 (the valid one and the report)", got)
	}
	if got := queryString(t, db, `SELECT coalesce(rule_ref, '') || '/' || (rule = (SELECT id FROM rule WHERE ref = 'acme.on_probe'))::text
		FROM event WHERE source_ref = 'acme.probe' AND payload ? 'answers'`); got != "acme.on_probe/true" {
		t.Errorf("the report's rule link: %s, want acme.on_probe/true", got)
	}
	stopSensor(t, w, db.Pool, "probe-1")
}

// TestAttunePlacementFoldsInRuleTolerations: a worker's NoSchedule taint
// must be tolerated by the sensor, its pack and each of its rule instances
// (Attune's admission): the sensor and its pack tolerate it, the rule does
// not, so the tainted worker leaves the sensor and `sensor list` says why;
// once the rule tolerates it too, the worker takes the sensor.
func TestAttunePlacementFoldsInRuleTolerations(t *testing.T) {
	t.Parallel()
	db, environ := attuneEra(t)
	tol := `[{"key": "dedicated", "operator": "exists", "effect": "no_schedule"}]`
	execSQL(t, db.Pool, `UPDATE sensor SET worker_tolerations = $1::jsonb WHERE ref = 'acme.watch'`, tol)
	execSQL(t, db.Pool, `UPDATE pack SET worker_tolerations = $1::jsonb WHERE ref = 'acme'`, tol)
	// Attune's own sensor service is gone (its lease lapsed, its row
	// inactive): the tainted worker is the only one.
	execSQL(t, db.Pool, `UPDATE sensor_workload_assignment SET lease_expires_at = now() - interval '1 second'`)
	execSQL(t, db.Pool, `UPDATE worker SET status = 'inactive' WHERE name = 'sensor-attune-1'`)
	w := start(t, environ, "sensor", "run", "--name", "tainted", "--heartbeat-interval", "200ms", "--runtimes", "python",
		"--taint", "dedicated=ci:NoSchedule")
	waitRegistered(t, w, db.Pool, "tainted")
	time.Sleep(time.Second)
	owner := func() string {
		return queryString(t, db, `SELECT coalesce(w.name, '') FROM sensor_workload_assignment a LEFT JOIN worker w ON w.id = a.worker
			AND a.lease_expires_at > clock_timestamp() WHERE a.workload = 1`)
	}
	if o := owner(); o != "" {
		t.Fatalf("acme.watch went to %q although its rule does not tolerate the worker's taint", o)
	}
	expect(t, environ, 0, []string{"sensor", "list", "acme.watch"}, `taint`)
	execSQL(t, db.Pool, `UPDATE rule SET sensor_worker_tolerations = $1::jsonb WHERE ref = 'acme.on_fired'`, tol)
	waitUntil(t, w, 15*time.Second, "the tainted worker to take acme.watch once every placement tolerates it", func() bool { return owner() == "tainted" })
	stopSensor(t, w, db.Pool, "tainted")
}

// TestSensorFailureRaisesAttunesAlert: on Attune's newest schema a sensor
// with an active rule that keeps failing raises core.alert events with the
// payload of Attune's platform trigger (the fields its output lists) and
// one correlation id per sensor and worker, as Attune's sensor
// manager does from the third failure in a row on.
func TestSensorFailureRaisesAttunesAlert(t *testing.T) {
	t.Parallel()
	db, environ := attuneEra(t)
	// Attune's platform trigger, as its catalog reconciliation stores it
	// (crates/common/src/platform_catalog/triggers/alert.yaml at 126b167e:
	// out_schema is the yaml's output map).
	execSQL(t, db.Pool, `BEGIN; SET LOCAL attune.catalog_write = 'on';
		INSERT INTO trigger (ref, label, description, enabled, param_schema, out_schema, catalog_revision)
		VALUES ('core.alert', 'System Alert', 'Emitted when Attune detects unexpected operational activity', true, '{}',
		'{"severity": {"type": "string", "enum": ["info", "warning", "error", "critical"], "required": true},
		  "category": {"type": "string", "required": true}, "failure_type": {"type": "string", "required": true},
		  "component_type": {"type": "string", "required": true}, "component_id": {"type": "integer"},
		  "component_ref": {"type": "string"}, "worker_role": {"type": "string", "enum": ["action", "sensor"]},
		  "observed_at": {"type": "string", "format": "date-time", "required": true},
		  "summary": {"type": "string", "required": true}, "details": {"type": "object"},
		  "correlation_id": {"type": "string"}}', 1); COMMIT`)
	prog := sensorProgram(t, "crash.sh")
	adHocSensor(t, db, "acme.crashy", "core.shell", prog, "acme.crashed", "")
	addRule(t, db, "acme.on_crash", "acme.crashed", `{}`)
	w := start(t, environ, "sensor", "run", "--name", "crash-1", "--heartbeat-interval", "200ms", "--runtimes", "shell")
	waitUntil(t, w, 30*time.Second, "a core.alert event", func() bool {
		return queryString(t, db, `SELECT count(*)::text FROM event WHERE trigger_ref = 'core.alert'`) != "0"
	})
	var payload map[string]any
	raw := queryString(t, db, `SELECT payload::text FROM event WHERE trigger_ref = 'core.alert' ORDER BY id LIMIT 1`)
	if err := json.Unmarshal([]byte(raw), &payload); err != nil {
		t.Fatal(err)
	}
	sensorID := queryString(t, db, `SELECT id::text FROM sensor WHERE ref = 'acme.crashy'`)
	workerID := queryString(t, db, `SELECT id::text FROM worker WHERE name = 'crash-1'`)
	want := map[string]any{"severity": "error", "category": "sensor_process_health", "failure_type": "sensor_process_repeated_failure",
		"component_type": "sensor", "component_ref": "acme.crashy", "worker_role": "sensor",
		"correlation_id": "sensor:" + sensorID + ":worker:" + workerID + ":repeated_failure"}
	for k, v := range want {
		if payload[k] != v {
			t.Errorf("core.alert %s = %v, want %v", k, payload[k], v)
		}
	}
	for _, k := range []string{"observed_at", "summary", "details", "component_id"} {
		if payload[k] == nil {
			t.Errorf("core.alert has no %s: %s", k, raw)
		}
	}
	if d, _ := payload["details"].(map[string]any); d == nil || d["consecutive_failures"] != 3.0 || d["worker_name"] != "crash-1" {
		t.Errorf("core.alert details: %v, want the third failure of crash-1", payload["details"])
	}
	if n := queryString(t, db, `SELECT count(DISTINCT payload->>'correlation_id')::text FROM event WHERE trigger_ref = 'core.alert'`); n != "1" {
		t.Errorf("%s correlation ids, want one for the sensor on this worker", n)
	}
	stopSensor(t, w, db.Pool, "crash-1")
}
