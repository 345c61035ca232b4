package workers

import (
	"context"

	"github.com/attune-automation/attunectl/pkg/database"
)

// MaxNames bounds Names: shell completion needs no more.
const MaxNames = 1000

// Names returns the worker names that start with prefix, in order, at most
// MaxNames of them (for shell completion).
func Names(ctx context.Context, db *database.DB, prefix string) ([]string, error) {
	rows, err := db.Pool.Query(ctx, "SELECT name FROM worker WHERE starts_with(name, $1) ORDER BY name LIMIT $2", prefix, MaxNames)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}
