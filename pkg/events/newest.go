package events

import (
	"context"
	"fmt"

	"github.com/attune-automation/attunectl/pkg/database"
)

const newestSQL = `
SELECT coalesce(min(id) - 1, 0) FROM (
    SELECT id FROM event
    WHERE ($1 = '' OR source_ref = $1)
      AND ($2 = '' OR trigger_ref = $2)
      AND ($3::float8 = 0 OR created >= now() - make_interval(secs => $3::float8))
      AND id > $4
    ORDER BY id DESC
    LIMIT $5) newest`

// AfterForNewest returns the AfterID that makes List return only the
// newest n events matching f (`event list --limit`, which shows the last
// events oldest first, as `tail` does). With no match it returns f.AfterID.
func AfterForNewest(ctx context.Context, db *database.DB, f Filter, n int) (int64, error) {
	var after int64
	if err := db.Pool.QueryRow(ctx, newestSQL, f.Sensor, f.Trigger, f.Since.Seconds(), f.AfterID, n).Scan(&after); err != nil {
		return 0, fmt.Errorf("listing events: %w", err)
	}
	return max(after, f.AfterID), nil
}
