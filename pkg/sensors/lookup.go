package sensors

import (
	"context"
	"fmt"

	"github.com/attune-automation/attunectl/pkg/database"
)

// IDs returns the ids of the sensors with these refs, by ref; a ref that
// does not exist is absent from the map.
func IDs(ctx context.Context, db *database.DB, refs []string) (map[string]int64, error) {
	rows, err := db.Pool.Query(ctx, `SELECT ref, id FROM sensor WHERE ref = ANY($1)`, refs)
	if err != nil {
		return nil, fmt.Errorf("looking up sensors: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var ref string
		var id int64
		if err := rows.Scan(&ref, &id); err != nil {
			return nil, fmt.Errorf("looking up sensors: %w", err)
		}
		out[ref] = id
	}
	return out, rows.Err()
}

// Refs returns the sensor refs that start with prefix, in order, at most
// 1,000 of them: what shell completion offers.
func Refs(ctx context.Context, db *database.DB, prefix string) ([]string, error) {
	rows, err := db.Pool.Query(ctx, `SELECT ref FROM sensor WHERE starts_with(ref, $1) ORDER BY ref LIMIT 1000`, prefix)
	if err != nil {
		return nil, fmt.Errorf("listing sensor refs: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var ref string
		if err := rows.Scan(&ref); err != nil {
			return nil, fmt.Errorf("listing sensor refs: %w", err)
		}
		out = append(out, ref)
	}
	return out, rows.Err()
}
