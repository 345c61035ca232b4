package sensors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Errors of the repository, matched with errors.Is.
var (
	ErrExists = errors.New("sensor exists")
	// ErrManaged is matched by the error Add returns for a sensor Attune's
	// pack installs or platform catalog own, and SetEnabled for one of the
	// platform catalog.
	ErrManaged  = errors.New("the sensor's definition is Attune's")
	ErrNotFound = errors.New("sensor not found")
)

// AddResult says what Add wrote.
type AddResult struct {
	Created, Updated []string
	// TriggersCreated are the trigger refs that did not exist before.
	TriggersCreated []string
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// UnknownRuntimes lists, as problems at sensors[i].runtime, the runtimes
// the sensors name that the database lacks: `sensor add` reports them with
// a manifest's other problems, in one pass.
func UnknownRuntimes(ctx context.Context, db *database.DB, ss []Sensor) ([]Problem, error) {
	_, problems, err := runtimeIDs(ctx, db.Pool, ss)
	return problems, err
}

// runtimeIDs looks up every runtime the sensors name, all at once, so that
// every unknown ref is reported.
func runtimeIDs(ctx context.Context, q querier, ss []Sensor) (map[string]int64, []Problem, error) {
	refs := make([]string, 0, len(ss))
	for _, s := range ss {
		if s.Runtime != "" {
			refs = append(refs, s.Runtime)
		}
	}
	rows, err := q.Query(ctx, `SELECT ref, id FROM runtime WHERE ref = ANY($1)`, refs)
	if err != nil {
		return nil, nil, fmt.Errorf("looking up runtimes: %w", err)
	}
	ids := map[string]int64{}
	for rows.Next() {
		var ref string
		var id int64
		if err := rows.Scan(&ref, &id); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("looking up runtimes: %w", err)
		}
		ids[ref] = id
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("looking up runtimes: %w", err)
	}
	var problems []Problem
	for i, s := range ss {
		if _, ok := ids[s.Runtime]; !ok && s.Runtime != "" {
			problems = append(problems, Problem{Path: fmt.Sprintf("sensors[%d].runtime", i),
				Msg: fmt.Sprintf("unknown runtime %q: add it with `attunectl runtime add`, or use one of `attunectl runtime list`", s.Runtime)})
		}
	}
	return ids, problems, nil
}

// Add writes sensors in one transaction, all or nothing. A ref that exists
// is an error matching ErrExists unless update is set (`sensor add
// --update`), in which case its definition is replaced (its id, workload
// and assignment stay, so a running sensor keeps its owner). A runtime ref
// the database does not have is a *ValidationError naming the field;
// triggers are created when missing and bound to the sensor. Each sensor
// gets its default workload and assignment row, so workers can claim it at
// once (they are notified).
func Add(ctx context.Context, db *database.DB, ss []Sensor, update bool) (AddResult, error) {
	var res AddResult
	if len(ss) == 0 {
		return res, nil
	}
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("adding sensors: %w", err)
	}
	defer tx.Rollback(ctx)

	if err := refuseManaged(ctx, tx, db, ss); err != nil {
		return res, err
	}
	ids, problems, err := runtimeIDs(ctx, tx, ss)
	if err != nil {
		return res, fmt.Errorf("adding sensors: %w", err)
	}
	if len(problems) > 0 {
		return res, &ValidationError{What: what, Problems: problems}
	}

	for i, s := range ss {
		config, _ := json.Marshal(configWithTriggers(s))
		if configWithTriggers(s) == nil {
			config = nil
		}
		selector, _ := json.Marshal(orEmptyMap(s.Placement.Selector))
		tolerations, _ := json.Marshal(orEmptySlice(s.Placement.Tolerations))
		var id int64
		var inserted bool
		err := tx.QueryRow(ctx, `
			INSERT INTO sensor AS s (ref, pack_ref, label, description, entrypoint, runtime, runtime_ref, enabled,
				config, runtime_version_constraint, worker_selector, worker_tolerations)
			VALUES ($1, $2, $3, nullif($4, ''), $5, $6, $7, $8, $9::jsonb, nullif($10, ''), $11::jsonb, $12::jsonb)
			ON CONFLICT (ref) DO UPDATE SET
				pack_ref = EXCLUDED.pack_ref, label = EXCLUDED.label, description = EXCLUDED.description,
				entrypoint = EXCLUDED.entrypoint, runtime = EXCLUDED.runtime, runtime_ref = EXCLUDED.runtime_ref,
				enabled = EXCLUDED.enabled, config = EXCLUDED.config,
				runtime_version_constraint = EXCLUDED.runtime_version_constraint,
				worker_selector = EXCLUDED.worker_selector, worker_tolerations = EXCLUDED.worker_tolerations,
				updated = now()
			WHERE $13::boolean
			RETURNING s.id, s.xmax = 0`,
			s.Ref, s.PackRef(), s.Label, s.Description, s.Entrypoint, ids[s.Runtime], s.Runtime, s.IsEnabled(),
			nullJSON(config), s.RuntimeVersion, string(selector), string(tolerations), update).Scan(&id, &inserted)
		if errors.Is(err, pgx.ErrNoRows) {
			return AddResult{}, fmt.Errorf("adding sensor %q (sensors[%d]): %w (pass --update to replace it)", s.Ref, i, ErrExists)
		}
		if err != nil {
			return AddResult{}, fmt.Errorf("adding sensor %q: %w", s.Ref, err)
		}
		if inserted {
			res.Created = append(res.Created, s.Ref)
		} else {
			res.Updated = append(res.Updated, s.Ref)
		}
		if err := ensureWorkload(ctx, tx, id); err != nil {
			return AddResult{}, fmt.Errorf("adding sensor %q: %w", s.Ref, err)
		}
		for j, t := range s.Triggers {
			var created bool
			var boundTo *string
			err := tx.QueryRow(ctx, `
				WITH prior AS (SELECT sensor_ref FROM trigger WHERE ref = $1)
				INSERT INTO trigger AS t (ref, pack_ref, label, sensor, sensor_ref)
				VALUES ($1, split_part($1, '.', 1), $2, $3, $4)
				ON CONFLICT (ref) DO UPDATE SET sensor = EXCLUDED.sensor, sensor_ref = EXCLUDED.sensor_ref,
					label = EXCLUDED.label, updated = now()
				WHERE t.sensor IS NULL OR t.sensor = EXCLUDED.sensor
				RETURNING t.xmax = 0, (SELECT sensor_ref FROM prior)`,
				t.Ref, t.Label, id, s.Ref).Scan(&created, &boundTo)
			if errors.Is(err, pgx.ErrNoRows) {
				var other string
				_ = tx.QueryRow(ctx, `SELECT coalesce(sensor_ref, '') FROM trigger WHERE ref = $1`, t.Ref).Scan(&other)
				return AddResult{}, &ValidationError{What: what, Problems: []Problem{{Path: fmt.Sprintf("sensors[%d].triggers[%d]", i, j),
					Msg: fmt.Sprintf("trigger %q belongs to sensor %q: a trigger has one sensor", t.Ref, other)}}}
			}
			if err != nil {
				return AddResult{}, fmt.Errorf("adding trigger %q of sensor %q: %w", t.Ref, s.Ref, err)
			}
			if created {
				res.TriggersCreated = append(res.TriggersCreated, t.Ref)
			}
		}
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify('attunectl_placement', 'sensors')`); err != nil {
		return AddResult{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return AddResult{}, fmt.Errorf("adding sensors: %w", err)
	}
	return res, nil
}

// ensureWorkload creates the sensor's default workload and its assignment
// row when missing (Attune creates them lazily; workers claim rows).
func ensureWorkload(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, sensor int64) error {
	_, err := q.Exec(ctx, `
		WITH wl AS (
			INSERT INTO sensor_workload (sensor, workload_key) VALUES ($1, $2)
			ON CONFLICT (sensor, workload_key) DO NOTHING RETURNING id)
		INSERT INTO sensor_workload_assignment (workload)
		SELECT id FROM wl
		UNION ALL
		SELECT sw.id FROM sensor_workload sw WHERE sw.sensor = $1 AND sw.workload_key = $2
		ON CONFLICT (workload) DO NOTHING`, sensor, DefaultWorkloadKey)
	return err
}

// EnsureWorkloads creates the default workload and assignment of every
// sensor that lacks them (sensors Attune or another tool wrote), in one
// statement; it returns how many it created. `sensor run` calls it when it
// starts, `sensor add` for what it adds.
func EnsureWorkloads(ctx context.Context, db *database.DB) (int, error) {
	// Where Attune pins workloads to pack releases, a pack's sensor gets
	// its workload from Attune's sensor service (ensure_default, pinned to
	// the pack's release): an unpinned row written first would stop Attune
	// from running it. Attune creates none for a sensor without a pack
	// outside its platform catalog, so those — the ones `sensor add`
	// writes — are attunectl's to create.
	mine, mineSW := "", ""
	if db.Facts.Has("sensor_workload", "pack_release") {
		own := "pack IS NULL"
		if db.Facts.Has("sensor", "catalog_revision") {
			own += " AND catalog_revision IS NULL" // the platform catalog's are Attune's too
		}
		mine = " AND s." + strings.ReplaceAll(own, " AND ", " AND s.")
		mineSW = " AND sw.sensor IN (SELECT id FROM sensor WHERE " + own + ")"
	}
	tag, err := db.Pool.Exec(ctx, `
		WITH wl AS (
			INSERT INTO sensor_workload (sensor, workload_key)
			SELECT s.id, $1 FROM sensor s
			WHERE NOT EXISTS (SELECT 1 FROM sensor_workload sw WHERE sw.sensor = s.id AND sw.workload_key = $1)`+mine+`
			ON CONFLICT (sensor, workload_key) DO NOTHING RETURNING id)
		INSERT INTO sensor_workload_assignment (workload)
		SELECT id FROM wl
		UNION ALL
		SELECT sw.id FROM sensor_workload sw
		WHERE NOT EXISTS (SELECT 1 FROM sensor_workload_assignment a WHERE a.workload = sw.id)`+mineSW+`
		ON CONFLICT (workload) DO NOTHING`, DefaultWorkloadKey)
	if err != nil {
		return 0, fmt.Errorf("creating sensor workloads: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// refuseManaged refuses, before anything is written, to replace sensors a
// pack installs (sensor.pack set) or Attune's platform catalog
// (catalog_revision set) own on Attune's schema: their definitions come
// from the pack's release or the catalog and would be overwritten, or the
// catalog's guard refuses the write.
func refuseManaged(ctx context.Context, tx pgx.Tx, db *database.DB, ss []Sensor) error {
	if !db.Facts.Has("sensor", "pack") {
		return nil
	}
	owner := "pack_ref"
	if db.Facts.Has("sensor", "catalog_revision") {
		owner = "CASE WHEN catalog_revision IS NOT NULL THEN 'the platform catalog' ELSE 'pack ' || pack_ref END"
	}
	refs := make([]string, len(ss))
	for i, s := range ss {
		refs[i] = s.Ref
	}
	cond := "pack IS NOT NULL"
	if db.Facts.Has("sensor", "catalog_revision") {
		cond += " OR catalog_revision IS NOT NULL"
	}
	rows, err := tx.Query(ctx, `SELECT ref, `+owner+` FROM sensor WHERE ref = ANY($1) AND (`+cond+`) ORDER BY ref`, refs)
	if err != nil {
		return fmt.Errorf("adding sensors: %w", err)
	}
	defer rows.Close()
	var owned []string
	for rows.Next() {
		var ref, by string
		if err := rows.Scan(&ref, &by); err != nil {
			return fmt.Errorf("adding sensors: %w", err)
		}
		owned = append(owned, ref+" ("+by+")")
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("adding sensors: %w", err)
	}
	if len(owned) > 0 {
		return fmt.Errorf("%w: %s: Attune installs and updates it from its pack release or platform catalog, and attunectl never rewrites it (nothing was written); "+
			"to turn it on or off use `attunectl sensor enable|disable`, which sets the operator's enabled_override, or give your own sensor another ref", ErrManaged, strings.Join(owned, ", "))
	}
	return nil
}

// SetEnabled enables or disables sensors, all or none: an unknown ref is an
// error matching ErrNotFound and nothing changes. A disabled sensor is
// released by its owner at its next tick. On Attune's schema it writes the
// operator's enabled_override, never the enabled its pack installs own.
func SetEnabled(ctx context.Context, db *database.DB, refs []string, enabled bool) ([]string, error) {
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx)
	if db.Facts.Has("sensor", "catalog_revision") {
		var owned []string
		rows, err := tx.Query(ctx, `SELECT ref FROM sensor WHERE ref = ANY($1) AND catalog_revision IS NOT NULL ORDER BY ref`, refs)
		if err == nil {
			owned, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if err != nil {
			return nil, fmt.Errorf("updating sensors: %w", err)
		}
		if len(owned) > 0 {
			return nil, fmt.Errorf("%w: %s belongs to Attune's platform catalog, whose rows only its catalog reconciliation may change (nothing was changed)", ErrManaged, strings.Join(owned, ", "))
		}
	}
	rows, err := tx.Query(ctx, `UPDATE sensor SET `+db.Facts.SensorEnabledColumn()+` = $2, updated = now() WHERE ref = ANY($1) RETURNING ref`, refs, enabled)
	if err != nil {
		return nil, fmt.Errorf("updating sensors: %w", err)
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("updating sensors: %w", err)
	}
	var missing []string
	for _, r := range refs {
		if !slices.Contains(done, r) {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s (see `attunectl sensor list`)", ErrNotFound, strings.Join(missing, ", "))
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify('attunectl_placement', 'sensors')`); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	slices.Sort(done)
	return done, nil
}

func nullJSON(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

func orEmptyMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func orEmptySlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// configWithTriggers is the sensor's config as stored: a trigger's own
// config (Attune's trigger table has no column for it) is kept in the
// sensor's config under triggers.<ref>, where the supervisor reads it to
// build ATTUNE_SENSOR_TRIGGERS.
func configWithTriggers(s Sensor) map[string]any {
	var tc map[string]any
	for _, t := range s.Triggers {
		if t.Config != nil {
			if tc == nil {
				tc = map[string]any{}
			}
			tc[t.Ref] = t.Config
		}
	}
	if tc == nil {
		return s.Config
	}
	out := map[string]any{}
	for k, v := range s.Config {
		out[k] = v
	}
	out["triggers"] = tc
	return out
}
