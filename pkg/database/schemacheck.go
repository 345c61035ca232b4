package database

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// SchemaFacts is what Introspect learns, once per connection, about the
// tables attunectl works on beyond their columns: where search_path found
// them, which single columns carry a unique constraint or index, and which
// other schemas hold tables of the same names. Commands check their
// Requirements against it without another round trip, so that a database
// Attune created in an older era gives "run `attunectl migrate up`" or the
// name of what is missing, never a raw SQLSTATE.
type SchemaFacts struct {
	// Found maps each table of introspectedTables to the schema
	// search_path resolved it to; a missing table has no entry.
	Found map[string]string
	// Columns maps a table to its columns.
	Columns map[string]map[string]bool
	// Enums maps "table.column" of every enum-typed column to its labels,
	// in their declared order: a value the enum lacks is never written or
	// compared (Attune's newest worker_role_enum has no "hybrid").
	Enums map[string][]string
	// Unique holds "table.column" for every column with a unique constraint
	// or a valid, non-partial unique index on exactly that column.
	Unique map[string]bool
	// Elsewhere maps a schema other than the configured one to the
	// attunectl tables ("runtime", "worker") it holds that attunectl did not
	// create (Attune's own tables), in the order of the schema names. It is
	// read only when Found is empty (the one case it is reported), and
	// empty otherwise.
	Elsewhere map[string][]string
}

// Requirement is a column, or a unique constraint on one column, that a
// command relies on. Each service package lists its own (e.g.
// runtimes.Requirements) and checks them with DB.Require before its first
// statement.
type Requirement struct {
	Table  string
	Column string
	// Unique: a unique constraint (or unique index) on exactly Column.
	Unique bool
	// Why says what needs it, for the message ("registration's ON CONFLICT (name)").
	Why string
}

// Column is a Requirement on table.column existing.
func Column(table, column string) Requirement { return Requirement{Table: table, Column: column} }

// UniqueColumn is a Requirement on a unique constraint on table.column.
func UniqueColumn(table, column, why string) Requirement {
	return Requirement{Table: table, Column: column, Unique: true, Why: why}
}

func (r Requirement) String() string {
	if r.Unique {
		s := "unique constraint on " + r.Table + "." + r.Column
		if r.Why != "" {
			s += " (" + r.Why + ")"
		}
		return s
	}
	return r.Table + "." + r.Column + " column"
}

// baseRequirements are the columns every command reads (runtime list and
// detection; worker list, stale, prune, registration): every era of Attune's
// tables has them, so that a table that lacks one is not Attune's as
// attunectl knows it. RequireSchema checks them; what a command needs beyond
// them (runtime.aliases to write, the unique worker.name to register) its
// package checks with Require.
var baseRequirements = []Requirement{
	Column("runtime", "id"), Column("runtime", "ref"), Column("runtime", "pack_ref"), Column("runtime", "name"),
	Column("runtime", "description"), Column("runtime", "distributions"), Column("runtime", "created"), Column("runtime", "updated"),
	Column("worker", "id"), Column("worker", "name"), Column("worker", "worker_type"), Column("worker", "worker_role"),
	Column("worker", "host"), Column("worker", "port"), Column("worker", "status"), Column("worker", "capabilities"),
	Column("worker", "meta"), Column("worker", "last_heartbeat"), Column("worker", "created"), Column("worker", "updated"),
}

// Require checks reqs against what Introspect found. What is missing is a
// *SchemaError that names it and says to run `attunectl migrate up`.
func (db *DB) Require(reqs ...Requirement) error {
	if err := db.requireHome(); err != nil {
		return err
	}
	var missing []string
	for _, r := range reqs {
		cols := db.Facts.Columns[r.Table]
		switch {
		case cols == nil:
			missing = append(missing, r.Table+" table")
		case !cols[r.Column]:
			missing = append(missing, r.String())
		case r.Unique && !db.Facts.Unique[r.Table+"."+r.Column]:
			missing = append(missing, r.String())
		default:
			continue
		}
	}
	missing = slices.Compact(missing)
	if len(missing) == 0 {
		return nil
	}
	return &SchemaError{Schema: db.Schema, Missing: missing}
}

// requireHome fails when search_path found attunectl's tables in another
// schema than the configured one (they live in public while --schema says
// attune), or found none while another schema holds Attune's: the operator
// most likely means that schema. It names where they are and the flag.
func (db *DB) requireHome() error {
	var away []string
	for _, t := range []string{"runtime", "worker"} {
		if s, ok := db.Facts.Found[t]; ok && s != db.Schema {
			away = append(away, s)
		}
	}
	if len(away) > 0 {
		return &ElsewhereError{Schema: db.Schema, Found: slices.Compact(away), Visible: true}
	}
	if db.Facts.Found["runtime"] == "" && db.Facts.Found["worker"] == "" && len(db.Facts.Elsewhere) > 0 {
		return &ElsewhereError{Schema: db.Schema, Found: sortedKeys(db.Facts.Elsewhere)}
	}
	return nil
}

// ElsewhereError says that attunectl's tables are not in the configured
// schema but in another one, and how to point attunectl there.
type ElsewhereError struct {
	Schema string
	Found  []string
	// Visible: search_path reaches them (public), so that a command would
	// silently work on them while `migrate up` would create a second,
	// empty set in Schema.
	Visible bool
}

func (e *ElsewhereError) Error() string {
	where := "schema " + quoteList(e.Found)
	if len(e.Found) > 1 {
		where = "schemas " + quoteList(e.Found)
	}
	return fmt.Sprintf("schema %q has no worker and runtime tables, but %s has them: pass --schema %s (or set database.schema, ATTUNE__DATABASE__SCHEMA) to use those; attunectl will not work on tables outside its schema, nor create an empty second set beside them",
		e.Schema, where, e.Found[0])
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// introspectedTables are the tables whose columns Introspect records: the
// ones attunectl reads or writes, attunectl's own and Attune's.
var introspectedTables = []string{"runtime", "worker", "sensor", "trigger", "rule", "event", "pack",
	"sensor_workload", "sensor_workload_assignment", "sensor_process"}

// Has reports whether table exists with column (where search_path finds
// it), as learned at connect time.
func (f SchemaFacts) Has(table, column string) bool { return f.Columns[table][column] }

// introspectFacts fills db.Runtime, db.Worker and db.Facts. Introspect
// calls it. The schemas elsewhere that hold Attune's tables are looked for
// only when search_path finds neither table: that is the one case
// requireHome reports them.
func (db *DB) introspectFacts(ctx context.Context) error {
	f := SchemaFacts{Found: map[string]string{}, Columns: map[string]map[string]bool{}, Enums: map[string][]string{}, Unique: map[string]bool{}, Elsewhere: map[string][]string{}}
	rt := RuntimeColumns{}
	wk := WorkerColumns{Columns: map[string]bool{}}
	rows, err := db.Pool.Query(ctx, `
		SELECT c.relname, n.nspname, a.attname,
			(SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = a.atttypid),
			EXISTS (SELECT 1 FROM pg_index i
			        WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
			          AND i.indexprs IS NULL AND i.indnatts = 1 AND i.indkey[0] = a.attnum)
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		WHERE c.oid IN (SELECT to_regclass(t) FROM unnest($1::text[]) AS t)`, introspectedTables)
	if err != nil {
		return err
	}
	for rows.Next() {
		var table, schema, col string
		var labels []string
		var unique bool
		if err := rows.Scan(&table, &schema, &col, &labels, &unique); err != nil {
			rows.Close()
			return err
		}
		f.Found[table] = schema
		if f.Columns[table] == nil {
			f.Columns[table] = map[string]bool{}
		}
		f.Columns[table][col] = true
		if unique {
			f.Unique[table+"."+col] = true
		}
		if labels != nil {
			f.Enums[table+"."+col] = labels
		}
		switch table {
		case "runtime":
			rt.Exists = true
			switch col {
			case "runtime_type":
				rt.HasType = true
			case "retired_at":
				rt.HasRetiredAt = true
			}
		case "worker":
			wk.Exists = true
			wk.Columns[col] = true
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	wk.HasRole = wk.Columns["worker_role"]
	if f.Found["runtime"] == "" && f.Found["worker"] == "" {
		others, err := attuneTablesElsewhere(ctx, db.Pool, db.Schema)
		if err != nil {
			return err
		}
		f.Elsewhere = others
	}
	db.Runtime, db.Worker, db.Facts = rt, wk, f
	return nil
}

// querier is what attuneTablesElsewhere needs of a pool or connection.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// attuneTablesElsewhere returns the schemas other than schema that hold a
// runtime or worker table attunectl did not create (no "attunectl:" mark):
// Attune's own tables, which `--schema` should name. Schemas where attunectl
// created its tables are another deployment of attunectl and not reported.
func attuneTablesElsewhere(ctx context.Context, q querier, schema string) (map[string][]string, error) {
	rows, err := q.Query(ctx, `
		SELECT n.nspname, c.relname
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relname IN ('runtime', 'worker') AND c.relkind IN ('r', 'p')
		  AND n.nspname <> $1 AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
		  AND coalesce(obj_description(c.oid, 'pg_class'), '') NOT LIKE 'attunectl:%'
		ORDER BY 1, 2`, schema)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var s, t string
		if err := rows.Scan(&s, &t); err != nil {
			return nil, err
		}
		out[s] = append(out[s], t)
	}
	return out, rows.Err()
}

// On is the SQL condition under which the row a (an alias) of table
// (sensor, trigger, rule) is on: where the schema has them, Attune's
// generated effective_enabled (the pack's enabled, an operator's
// enabled_override, and never a component a newer pack release left out)
// and no retired_at; enabled elsewhere.
func (f SchemaFacts) On(table, a string) string {
	on := a + ".enabled"
	if f.Has(table, "effective_enabled") {
		on = a + ".effective_enabled"
	}
	if f.Has(table, "retired_at") {
		on = "(" + on + " AND " + a + ".retired_at IS NULL)"
	}
	return on
}

// SensorOn is On("sensor", a).
func (f SchemaFacts) SensorOn(a string) string { return f.On("sensor", a) }

// Rules reports whether the schema has Attune's rules: a sensor then runs
// only for the enabled rules that target its triggers (rule instances).
func (f SchemaFacts) Rules() bool { return f.Has("rule", "trigger") && f.Has("rule", "trigger_params") }

// RuleInstances is the FROM … WHERE of the rule instances of the sensor
// row s: enabled, not retired rules on enabled, not retired triggers of
// that sensor, as Attune's sensor manager selects them (r the rule, t the
// trigger). Only when Rules().
func (f SchemaFacts) RuleInstances(s string) string {
	return "rule r JOIN trigger t ON t.id = r.trigger WHERE t.sensor = " + s + ".id AND " + f.On("rule", "r") + " AND " + f.On("trigger", "t")
}

// SensorRuns is the SQL condition under which the sensor row a is placed
// and run: SensorOn, and where the schema has rules, at least one rule
// instance (Attune starts a sensor only for rules).
func (f SchemaFacts) SensorRuns(a string) string {
	if !f.Rules() {
		return f.SensorOn(a)
	}
	return "(" + f.SensorOn(a) + " AND EXISTS (SELECT 1 FROM " + f.RuleInstances(a) + "))"
}

// SensorVersion is the SQL text that changes whenever what the sensor row
// s runs changes: its row, its runtime's row rt, the pack release its
// workload is pinned to, and where the schema has rules, its rule
// instances (a rule created, changed, disabled or deleted).
func (f SchemaFacts) SensorVersion(s, rt string) string {
	v := "greatest(" + s + ".updated, " + rt + ".updated)::text"
	if f.Has("sensor_workload", "pack_release_digest") {
		// The pack release its workload is pinned to (Attune moves the pin).
		v += " || coalesce((SELECT string_agg(coalesce(sw.pack_release_digest, ''), ',') FROM sensor_workload sw WHERE sw.sensor = " + s + ".id), '')"
	}
	if !f.Rules() {
		return v
	}
	return "md5(" + v + " || coalesce((SELECT string_agg(r.id || '@' || r.updated::text || '@' || t.updated::text, ',' ORDER BY r.id) FROM " + f.RuleInstances(s) + "), ''))"
}

// SelectorsFit is the SQL condition under which every node selector that
// applies to the sensor row s is a subset of the labels (a jsonb
// expression): the sensor's worker_selector, and on Attune's schema its
// pack's worker_selector and the sensor_worker_selector of each of its rule
// instances, as Attune's admission folds them in (all must match).
func (f SchemaFacts) SelectorsFit(s, labels string) string {
	fit := s + ".worker_selector <@ " + labels
	if f.Has("pack", "worker_selector") && f.Has("sensor", "pack") {
		fit += " AND coalesce((SELECT p.worker_selector FROM pack p WHERE p.id = " + s + ".pack), '{}') <@ " + labels
	}
	if f.Rules() && f.Has("rule", "sensor_worker_selector") {
		fit += " AND NOT EXISTS (SELECT 1 FROM " + f.RuleInstances(s) + " AND NOT r.sensor_worker_selector <@ " + labels + ")"
	}
	return "(" + fit + ")"
}

// MoreTolerations is an SQL jsonb array of the toleration lists that also
// apply to the sensor row s besides its own worker_tolerations: on Attune's
// schema its pack's worker_tolerations and each rule instance's
// sensor_worker_tolerations; a worker's NoSchedule taint must be tolerated
// by every one of them. '[]' elsewhere.
func (f SchemaFacts) MoreTolerations(s string) string {
	return f.foldedPlacement(s, "worker_tolerations", "sensor_worker_tolerations", "array")
}

// MoreSelectors is an SQL jsonb array of the node selectors that also
// apply to the sensor row s besides its own worker_selector (as
// SelectorsFit folds them in), for `sensor list` to name them. '[]'
// elsewhere.
func (f SchemaFacts) MoreSelectors(s string) string {
	return f.foldedPlacement(s, "worker_selector", "sensor_worker_selector", "object")
}

// foldedPlacement aggregates the pack's packColumn and each rule
// instance's ruleColumn of the sensor row s, those of jsonb type kind.
func (f SchemaFacts) foldedPlacement(s, packColumn, ruleColumn, kind string) string {
	var parts []string
	if f.Has("pack", packColumn) && f.Has("sensor", "pack") {
		parts = append(parts, "SELECT p."+packColumn+" AS v FROM pack p WHERE p.id = "+s+".pack")
	}
	if f.Rules() && f.Has("rule", ruleColumn) {
		parts = append(parts, "SELECT r."+ruleColumn+" FROM "+f.RuleInstances(s))
	}
	if len(parts) == 0 {
		return "'[]'::jsonb"
	}
	return "coalesce((SELECT jsonb_agg(q.v) FROM (" + strings.Join(parts, " UNION ALL ") + ") q WHERE jsonb_typeof(q.v) = '" + kind + "'), '[]'::jsonb)"
}

// SensorEnabledColumn is the column an operator's `sensor enable|disable`
// writes: Attune's enabled_override where it exists (its pack installs
// own enabled and overwrite it), enabled elsewhere.
func (f SchemaFacts) SensorEnabledColumn() string {
	if f.Has("sensor", "enabled_override") {
		return "enabled_override"
	}
	return "enabled"
}
