package placement

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/attune-automation/attunectl/pkg/fence"
)

// Querier is what the fenced writes need: a pool, a connection or a transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// releaseFenced releases the workloads of fs (all of one worker instance)
// in one statement, and returns how many it released.
func releaseFenced(ctx context.Context, q Querier, fs []fence.Fence, reason string) (int, error) {
	if len(fs) == 0 {
		return 0, nil
	}
	if !validEndReason(reason) {
		return 0, fmt.Errorf("releasing: unknown ledger reason %q", reason)
	}
	ids := make([]int64, len(fs))
	gens := make([]int64, len(fs))
	for i, f := range fs {
		ids[i], gens[i] = f.Workload, f.Generation
	}
	tag, err := q.Exec(ctx, `
		WITH why AS MATERIALIZED (SELECT set_config('attunectl.end_reason', $4, true))
		UPDATE sensor_workload_assignment a
		SET worker = NULL, worker_instance = NULL, lease_expires_at = NULL, assigned_at = NULL, renewed_at = NULL, updated = now()
		FROM why, unnest($3::bigint[], $5::bigint[]) AS f(workload, generation)
		WHERE a.workload = f.workload AND a.generation = f.generation
		  AND a.worker = $1 AND a.worker_instance = $2::uuid`,
		fs[0].Worker, fs[0].Instance, ids, reason, gens)
	if err != nil {
		return 0, fmt.Errorf("releasing %d sensors: %w", len(fs), err)
	}
	return int(tag.RowsAffected()), nil
}

// Ledger end reasons.
const (
	EndReleased   = "released"
	EndExpired    = "expired"
	EndDrained    = "drained"
	EndRebalanced = "rebalanced"
	EndTakenOver  = "taken_over"
)

func validEndReason(r string) bool {
	switch r {
	case EndReleased, EndDrained, EndRebalanced:
		return true
	}
	return false
}
