package database

import (
	"context"
	"fmt"
)

// TableRows is a table and how many rows it holds.
type TableRows struct {
	Table string
	Rows  int64
}

// seedRuntimeRefs are the runtimes migration 3 adds; its down removes them
// (when unchanged) before migration 1's down drops the runtime table.
var seedRuntimeRefs = []string{"core.sensor.builtin", "core.sensor.native", "core.sensor.shell", "core.sensor.python", "core.sensor.nodejs"}

// DroppedTables returns the tables that rolling back to version target
// would drop while they hold rows: the worker and runtime tables when
// attunectl created them (tables it adopted are never dropped) and the
// rollback goes below version 1. The seeded runtimes, which the rollback
// removes anyway, do not count.
func (m *Migrator) DroppedTables(ctx context.Context, target int64) ([]TableRows, error) {
	current, _, err := m.Version(ctx)
	if err != nil || target >= 1 || current < 1 {
		return nil, err
	}
	var out []TableRows
	for _, table := range []string{"worker", "runtime"} {
		var owned bool
		err := m.db.Pool.QueryRow(ctx, `SELECT coalesce(obj_description(to_regclass($1), 'pg_class') LIKE 'attunectl:%', false)`, table).Scan(&owned)
		if err != nil {
			return nil, fmt.Errorf("checking what the rollback drops: %w", RedactError(err))
		}
		if !owned {
			continue
		}
		q, args := "SELECT count(*) FROM "+table, []any{}
		if table == "runtime" && current >= 3 {
			q, args = q+" WHERE ref <> ALL($1)", []any{seedRuntimeRefs}
		}
		var n int64
		if err := m.db.Pool.QueryRow(ctx, q, args...).Scan(&n); err != nil {
			return nil, fmt.Errorf("counting the rows of %s: %w", table, RedactError(err))
		}
		if n > 0 {
			out = append(out, TableRows{Table: table, Rows: n})
		}
	}
	return out, nil
}
