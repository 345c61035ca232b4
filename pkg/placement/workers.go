package placement

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
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
// in one statement.
func WorkerStates(ctx context.Context, pool *pgxpool.Pool) (map[int64]WorkerState, error) {
	rows, err := pool.Query(ctx, `
		SELECT w.id, coalesce(w.cordoned, false), coalesce(w.cordon_reason, ''), coalesce(w.cordoned_by_name, ''), w.cordoned_at,
			coalesce(h.n, 0)
		FROM worker w
		LEFT JOIN (SELECT worker, count(*) AS n FROM sensor_workload_assignment
			WHERE worker IS NOT NULL AND lease_expires_at > clock_timestamp() GROUP BY worker) h ON h.worker = w.id`)
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
