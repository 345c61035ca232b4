package runtimes

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// openDB gives the test a fresh migrated database (with the seed's five
// sensor runtimes) opened the way the CLI opens it.
func openDB(t *testing.T) (*database.DB, *dbtest.DB) {
	t.Helper()
	tdb := dbtest.New(t)
	db, err := database.Open(context.Background(), database.Options{URL: tdb.URL, Schema: tdb.Schema})
	if err != nil {
		t.Fatalf("opening the test database: %v", err)
	}
	t.Cleanup(db.Close)
	return db, tdb
}

var seedRefs = []string{"core.sensor.builtin", "core.sensor.native", "core.sensor.nodejs", "core.sensor.python", "core.sensor.shell"}

func seedManifest(t *testing.T) []Runtime {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(manifestsDir, "good", "seed.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return mustParse(t, string(data))
}

// tableSnapshot is every row as text, to prove that nothing changed.
func tableSnapshot(t *testing.T, db *database.DB) string {
	t.Helper()
	var s string
	err := db.Pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(r::text, E'\n' ORDER BY ref), '') FROM runtime r`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestListSeed(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t)
	ctx := context.Background()
	rts, err := List(ctx, db, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(Refs(rts), seedRefs) {
		t.Fatalf("refs = %v", Refs(rts))
	}
	// What the migration stored is what the seed manifest says.
	want := seedManifest(t)
	for i := range rts {
		got := rts[i]
		if got.ID == 0 || got.Created.IsZero() || got.Updated.IsZero() || got.VerificationProblem != "" {
			t.Errorf("%s: %+v", got.Ref, got)
		}
		got.ID, got.Created, got.Updated = 0, time.Time{}, time.Time{}
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("%s from the database:\n%s\nwant\n%s", got.Ref, js(got), js(want[i]))
		}
	}
	sensors, err := SensorRuntimes(ctx, db)
	if err != nil || len(sensors) != 5 {
		t.Errorf("SensorRuntimes = %d, %v", len(sensors), err)
	}
}

func TestListFilter(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t)
	ctx := context.Background()
	if _, err := Add(ctx, db, []Runtime{{Ref: "test.action.python", Name: "Python", Type: TypeAction}}, false); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		f    Filter
		want []string
	}{
		{Filter{Type: "action"}, []string{"test.action.python"}},
		{Filter{Type: "sensor"}, seedRefs},
		{Filter{Refs: []string{"core.sensor.shell", " CORE.SENSOR.PYTHON ", "nope.x"}}, []string{"core.sensor.python", "core.sensor.shell"}},
		{Filter{Type: "action", Refs: []string{"core.sensor.shell"}}, nil},
	} {
		rts, err := List(ctx, db, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		if got := Refs(rts); !reflect.DeepEqual(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("List(%+v) = %v, want %v", tc.f, got, tc.want)
		}
	}
	if _, err := List(ctx, db, Filter{Type: "worker"}); err == nil || !strings.Contains(err.Error(), `unknown type "worker": use sensor or action`) {
		t.Errorf("bad type: %v", err)
	}
	sensors, err := SensorRuntimes(ctx, db)
	if err != nil || !reflect.DeepEqual(Refs(sensors), seedRefs) {
		t.Errorf("SensorRuntimes = %v, %v (the action runtime must not be there)", Refs(sensors), err)
	}
}

func TestAddOne(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t)
	ctx := context.Background()
	rts := mustParse(t, `
ref: test.sensor.ruby
name: Ruby
pack_ref: test
description: Ruby sensors
aliases: [ruby3]
verification:
  commands:
    - {binary: ruby, args: [--version], pattern: '^ruby 3\.', priority: 1, exit_code: 0, optional: true}
`)
	res, err := Add(ctx, db, rts, false)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res, AddResult{Created: []string{"test.sensor.ruby"}}) {
		t.Errorf("result = %+v", res)
	}
	got, err := List(ctx, db, Filter{Refs: []string{"test.sensor.ruby"}})
	if err != nil || len(got) != 1 {
		t.Fatal(got, err)
	}
	g := got[0]
	g.ID, g.Created, g.Updated = 0, time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, rts[0]) {
		t.Errorf("stored:\n%s\nwant\n%s", js(g), js(rts[0]))
	}
	var dist string
	if err := db.Pool.QueryRow(ctx, `SELECT distributions::text FROM runtime WHERE ref = 'test.sensor.ruby'`).Scan(&dist); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dist, `"pattern": "^ruby 3\\."`) || !strings.Contains(dist, `"exit_code": 0`) {
		t.Errorf("distributions = %s", dist)
	}
	// Again: an error naming the ref, nothing changed.
	before := tableSnapshot(t, db)
	_, err = Add(ctx, db, rts, false)
	if !errors.Is(err, ErrExists) || err.Error() != "runtime test.sensor.ruby already exists: pass --update to replace it" {
		t.Errorf("second add: %v", err)
	}
	if tableSnapshot(t, db) != before {
		t.Error("the table changed")
	}
}

// TestAddAllOrNothing: a list whose last runtime exists writes nothing.
func TestAddAllOrNothing(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t)
	ctx := context.Background()
	before := tableSnapshot(t, db)
	rts := mustParse(t, `
- {ref: test.sensor.a, name: A, verification: {always_available: true}}
- {ref: test.sensor.b, name: B, verification: {always_available: true}}
- {ref: core.sensor.python, name: Python, verification: {always_available: true}}
`)
	_, err := Add(ctx, db, rts, false)
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "runtime core.sensor.python already exists: pass --update to replace it") {
		t.Fatalf("err = %v", err)
	}
	if tableSnapshot(t, db) != before {
		t.Error("the table changed: test.sensor.a/b were written although the batch failed")
	}
	// Invalid runtimes are refused before anything is written.
	_, err = Add(ctx, db, []Runtime{{Ref: "test.sensor.c", Name: "C"}, {Ref: "Bad", Name: ""}}, false)
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 2 {
		t.Errorf("invalid: %v", err)
	}
	if tableSnapshot(t, db) != before {
		t.Error("the table changed after a validation error")
	}
	// The bad corpus never reaches the table: ParseManifest refuses it first.
	files, _ := filepath.Glob(filepath.Join(manifestsDir, "bad", "*.[jy]*"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if rts, err := ParseManifest(data); err == nil {
			if _, err := Add(ctx, db, rts, true); err == nil {
				t.Errorf("%s was added", f)
			}
		}
	}
	if tableSnapshot(t, db) != before {
		t.Error("the table changed")
	}
	// With update, the whole batch is written.
	res, err := Add(ctx, db, rts, true)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res, AddResult{Created: []string{"test.sensor.a", "test.sensor.b"}, Updated: []string{"core.sensor.python"}}) {
		t.Errorf("result = %+v", res)
	}
}

// TestUpdateKeepsOtherDistributionsKeys: --update replaces
// distributions->'verification' and leaves Attune's other keys alone.
func TestUpdateKeepsOtherDistributionsKeys(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t)
	ctx := context.Background()
	_, err := db.Pool.Exec(ctx, `UPDATE runtime SET distributions = distributions || '{"ubuntu": {"packages": ["python3"]}, "note": "kept"}'::jsonb,
		updated = now() - interval '1 hour' WHERE ref = 'core.sensor.python'`)
	if err != nil {
		t.Fatal(err)
	}
	upd := mustParse(t, `
ref: core.sensor.python
name: Python 3
description: only python3
verification:
  commands:
    - {binary: python3, args: [--version], pattern: 'Python 3\.1\d'}
`)
	res, err := Add(ctx, db, upd, true)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res, AddResult{Updated: []string{"core.sensor.python"}}) {
		t.Errorf("result = %+v", res)
	}
	var ubuntu, note, verification, packRef string
	var fresh bool
	err = db.Pool.QueryRow(ctx, `SELECT distributions->'ubuntu'->'packages'->>0, distributions->>'note', distributions->'verification'->'commands'->0->>'pattern',
		coalesce(pack_ref, '<null>'), updated > now() - interval '1 minute' FROM runtime WHERE ref = 'core.sensor.python'`).Scan(&ubuntu, &note, &verification, &packRef, &fresh)
	if err != nil {
		t.Fatal(err)
	}
	if ubuntu != "python3" || note != "kept" || verification != `Python 3\.1\d` || packRef != "<null>" || !fresh {
		t.Errorf("ubuntu=%q note=%q pattern=%q pack_ref=%q updated-now=%v", ubuntu, note, verification, packRef, fresh)
	}
	got, err := List(ctx, db, Filter{Refs: []string{"core.sensor.python"}})
	if err != nil || got[0].Name != "Python 3" || len(got[0].Verification.Commands) != 1 {
		t.Errorf("%+v %v", got, err)
	}
	// Updating to no verification removes that key only.
	if _, err := Add(ctx, db, []Runtime{{Ref: "core.sensor.python", Name: "Python"}}, true); err != nil {
		t.Fatal(err)
	}
	var dist string
	if err := db.Pool.QueryRow(ctx, `SELECT distributions::text FROM runtime WHERE ref = 'core.sensor.python'`).Scan(&dist); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(dist, "verification") || !strings.Contains(dist, "kept") {
		t.Errorf("distributions = %s", dist)
	}
}

// TestRoundTripThroughDatabase: list -o yaml from one database is add -f
// input for another, and gives the same rows.
func TestRoundTripThroughDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, _ := openDB(t)
	if _, err := Add(ctx, src, mustParse(t, "ref: test.sensor.java\nname: Java\nverification: {commands: [{binary: java, args: [-version], pattern: 'version \"\\d+'}]}\n"), false); err != nil {
		t.Fatal(err)
	}
	all, err := List(ctx, src, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := Marshal(all, "yaml")
	if err != nil {
		t.Fatal(err)
	}
	dst, _ := openDB(t)
	if _, err := Remove(ctx, dst, seedRefs); err != nil {
		t.Fatal(err)
	}
	in, err := ParseManifest(out)
	if err != nil {
		t.Fatalf("list output is not add input: %v\n%s", err, out)
	}
	if _, err := Add(ctx, dst, in, false); err != nil {
		t.Fatal(err)
	}
	again, err := List(ctx, dst, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	strip := func(rts []Runtime) []Runtime {
		for i := range rts {
			rts[i].ID, rts[i].Created, rts[i].Updated = 0, time.Time{}, time.Time{}
		}
		return rts
	}
	if !reflect.DeepEqual(strip(again), strip(all)) {
		t.Errorf("rows differ after export/import:\n%s", out)
	}
}

func TestRemove(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t)
	ctx := context.Background()
	before := tableSnapshot(t, db)
	_, err := Remove(ctx, db, []string{"core.sensor.shell", "nope.x", "nope.y"})
	var nf *NotFoundError
	if !errors.As(err, &nf) || !errors.Is(err, ErrNotFound) || err.Error() != "runtime nope.x, nope.y not found: check `attunectl runtime list`" {
		t.Errorf("err = %v", err)
	}
	if tableSnapshot(t, db) != before {
		t.Error("a partial remove was committed")
	}
	removed, err := Remove(ctx, db, []string{"core.sensor.shell", "CORE.SENSOR.NATIVE", "core.sensor.shell"})
	if err != nil || !reflect.DeepEqual(removed, []string{"core.sensor.native", "core.sensor.shell"}) {
		t.Errorf("Remove = %v, %v", removed, err)
	}
	rts, _ := List(ctx, db, Filter{})
	if len(rts) != 3 {
		t.Errorf("%d runtimes left", len(rts))
	}
}

// TestUnifiedRuntimeTable: on a database shaped like newer Attune (no
// runtime_type, a retired_at column) every non-retired runtime is a sensor
// runtime, Add works without a type, and a type filter is refused clearly.
func TestUnifiedRuntimeTable(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `ALTER TABLE runtime DROP COLUMN runtime_type, ADD COLUMN retired_at timestamptz`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE runtime SET retired_at = now() WHERE ref = 'core.sensor.native'`); err != nil {
		t.Fatal(err)
	}
	if err := db.Introspect(ctx); err != nil {
		t.Fatal(err)
	}
	if db.Runtime.HasType || !db.Runtime.HasRetiredAt {
		t.Fatalf("introspection: %+v", db.Runtime)
	}
	if _, err := Add(ctx, db, mustParse(t, "ref: test.action.perl\nname: Perl\ntype: action\n"), false); err != nil {
		t.Fatal(err)
	}
	sensors, err := SensorRuntimes(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"core.sensor.builtin", "core.sensor.nodejs", "core.sensor.python", "core.sensor.shell", "test.action.perl"}
	if !reflect.DeepEqual(Refs(sensors), want) {
		t.Errorf("SensorRuntimes = %v, want %v", Refs(sensors), want)
	}
	for _, r := range sensors {
		if r.Type != "" {
			t.Errorf("%s: type %q on a unified table", r.Ref, r.Type)
		}
	}
	all, err := List(ctx, db, Filter{})
	if err != nil || len(all) != 6 {
		t.Errorf("List = %d, %v", len(all), err)
	}
	if _, err := List(ctx, db, Filter{Type: "sensor"}); err == nil || !strings.Contains(err.Error(), "no runtime_type column") {
		t.Errorf("type filter: %v", err)
	}
	// Without retired_at either: every row.
	if _, err := db.Pool.Exec(ctx, `ALTER TABLE runtime DROP COLUMN retired_at`); err != nil {
		t.Fatal(err)
	}
	if err := db.Introspect(ctx); err != nil {
		t.Fatal(err)
	}
	sensors, err = SensorRuntimes(ctx, db)
	if err != nil || len(sensors) != 6 {
		t.Errorf("SensorRuntimes without retired_at = %d, %v", len(sensors), err)
	}
	// Update on a unified table.
	if _, err := Add(ctx, db, []Runtime{{Ref: "test.action.perl", Name: "Perl 5", Type: TypeAction}}, true); err != nil {
		t.Errorf("update on a unified table: %v", err)
	}
}

// TestRowsSomeoneElseWrote: unknown keys are tolerated, and a row whose
// verification cannot be read is reported, not fatal for the others.
func TestRowsSomeoneElseWrote(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t)
	ctx := context.Background()
	_, err := db.Pool.Exec(ctx, `INSERT INTO runtime (ref, name, runtime_type, distributions, aliases) VALUES
		('other.sensor.tolerant', 'Tolerant', 'sensor', '{"verification": {"commands": [{"binary": "node", "timeout": 3, "exit_code": "0"}], "extra": true}}', '{}'),
		('other.sensor.broken', 'Broken', 'sensor', '{"verification": {"commands": [{"binary": 42}]}}', '{}'),
		('other.sensor.none', 'None', 'sensor', '{"ubuntu": {}}', '{}')`)
	if err != nil {
		t.Fatal(err)
	}
	rts, err := List(ctx, db, Filter{Refs: []string{"other.sensor.tolerant", "other.sensor.broken", "other.sensor.none"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rts) != 3 {
		t.Fatalf("%d rows", len(rts))
	}
	broken, none, tolerant := rts[0], rts[1], rts[2]
	if broken.Verification != nil || !strings.Contains(broken.VerificationProblem, "invalid verification metadata: verification.commands[0].binary: must be a string") {
		t.Errorf("broken: %+v", broken)
	}
	if none.Verification != nil || none.VerificationProblem != "" {
		t.Errorf("none: %+v", none)
	}
	if tolerant.Verification == nil || tolerant.Verification.Commands[0].Binary != "node" || *tolerant.Verification.Commands[0].ExitCode != 0 {
		t.Errorf("tolerant: %+v", tolerant)
	}
}
