package placement

import (
	"context"
	"fmt"
	"time"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/fence"
)

// WorkerState is what placement knows about one worker: its cordon and how
// many sensors it holds under an unexpired lease (`worker list`'s CORDONED
// and SENSORS).
type WorkerState struct {
	Cordoned bool
	Reason   string
	By       string
	At       *time.Time
	Held     int
}

// WorkerStates returns the placement state of every worker, by worker id,
// in one statement. It works before `migrate up` on a database Attune
// created: cordon columns a worker table lacks read as not cordoned (they
// are read through to_jsonb of the row), and without an assignment table
// every worker holds nothing. `worker list` reads the same through
// workers.Stream; the tests of pkg/cli and pkg/workers hold its output
// against this.
func WorkerStates(ctx context.Context, db *database.DB) (map[int64]WorkerState, error) {
	held := `(SELECT NULL::bigint AS worker, 0::bigint AS n WHERE false)`
	if db.Facts.Found["sensor_workload_assignment"] != "" {
		held = `(SELECT worker, count(*) AS n FROM sensor_workload_assignment
			WHERE worker IS NOT NULL AND ` + fence.Live + ` GROUP BY worker)`
	}
	rows, err := db.Pool.Query(ctx, `
		SELECT w.id, coalesce((j.r->>'cordoned')::boolean, false), coalesce(j.r->>'cordon_reason', ''),
			coalesce(j.r->>'cordoned_by_name', ''), (j.r->>'cordoned_at')::timestamptz, coalesce(h.n, 0)
		FROM worker w
		CROSS JOIN LATERAL (SELECT to_jsonb(w) - 'capabilities' - 'meta' AS r) j
		LEFT JOIN `+held+` h ON h.worker = w.id`)
	if err != nil {
		return nil, fmt.Errorf("reading the cordons and sensors of workers: %w", err)
	}
	defer rows.Close()
	out := map[int64]WorkerState{}
	for rows.Next() {
		var id int64
		var s WorkerState
		if err := rows.Scan(&id, &s.Cordoned, &s.Reason, &s.By, &s.At, &s.Held); err != nil {
			return nil, fmt.Errorf("reading the cordons and sensors of workers: %w", err)
		}
		out[id] = s
	}
	return out, rows.Err()
}
