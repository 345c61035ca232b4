package workers

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Batch sizes of Prune.
const (
	// DefaultPruneBatchSize keeps each batch's transaction to a few
	// milliseconds on an ordinary server, so a heartbeat that needs one of
	// its rows never waits long.
	DefaultPruneBatchSize = 5000
	// MaxPruneBatchSize bounds how many row locks one batch may hold.
	MaxPruneBatchSize = 100_000
)

// PruneOptions say which workers Prune changes and how.
type PruneOptions struct {
	// Selector scopes the prune. The CLI defaults Roles to sensor: action
	// workers belong to Attune's executors and are only pruned when asked for.
	Selector
	// Delete removes the rows instead of marking them inactive.
	Delete bool
	// OlderThan, when marking, is an optional grace for every worker (as
	// ListOptions.OlderThan). When deleting it is required: a worker is
	// deleted when it is inactive, or active but stale, and its last
	// heartbeat (its last update, when it never heartbeat) is older than
	// OlderThan.
	OlderThan time.Duration
	// BatchSize is how many workers one statement examines, and so changes
	// at most (DefaultPruneBatchSize when 0).
	BatchSize int
	// OnBatch, when set, is called after each batch that changed rows.
	OnBatch func(PruneBatch)
}

// PrunedWorker is a worker a batch changed.
type PrunedWorker struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Host string `json:"host"`
}

// PruneBatch reports one committed batch that changed workers.
type PruneBatch struct {
	Number  int            // 1-based, counting batches that changed workers
	Workers []PrunedWorker // changed by this batch
	Changed int64          // changed so far, this batch included
	Scanned int64          // workers examined so far
}

// PruneResult counts what Prune did.
type PruneResult struct {
	Changed    int64
	Batches    int   // batches that changed at least one worker
	Statements int   // batches run, one statement and transaction each
	Scanned    int64 // workers examined
	Elapsed    time.Duration
}

// Validate checks the options before anything touches the database.
func (o PruneOptions) Validate() error {
	if o.Delete && o.OlderThan <= 0 {
		return fmt.Errorf("deleting workers needs an age: pass --older-than (e.g. 720h)")
	}
	if o.OlderThan < 0 {
		return fmt.Errorf("--older-than %s: must be positive", o.OlderThan)
	}
	if o.BatchSize < 0 || o.BatchSize > MaxPruneBatchSize {
		return fmt.Errorf("batch size %d: must be between 1 and %d", o.BatchSize, MaxPruneBatchSize)
	}
	return nil
}

// Action says what o does, for messages: "mark inactive" or "delete".
func (o PruneOptions) Action() string {
	if o.Delete {
		return "delete"
	}
	return "mark inactive"
}

func (o PruneOptions) batchSize() int {
	if o.BatchSize <= 0 {
		return DefaultPruneBatchSize
	}
	return o.BatchSize
}

// pruneWhere is the condition a worker must meet to be pruned, the
// staleness expression to derive its state with, and the grace it is
// judged by. It is evaluated by the database when the statement runs, with
// its clock.
func pruneWhere(o PruneOptions, a *sqlArgs, graceColumn bool) (where, stale, grace string) {
	conds := selectorSQL(o.Selector, a)
	if o.Delete {
		stale, grace = staleSQL("", "NULL", graceColumn), graceSQL("", "NULL", graceColumn)
		conds = append(conds,
			"(status = 'inactive' OR (status = 'active' AND "+stale+"))",
			"coalesce(last_heartbeat, updated) < now() - "+a.add(o.OlderThan)+"::interval")
	} else {
		p := a.add(graceArg(o.OlderThan))
		stale, grace = staleSQL("", p, graceColumn), graceSQL("", p, graceColumn)
		conds = append(conds, "status = 'active'", stale)
	}
	return strings.Join(conds, "\n\t  AND "), stale, grace
}

// PruneQuery returns one batch's statement and its arguments. The last two
// arguments are the keyset position (the highest id the previous batch
// examined, 0 at first) and the batch size.
//
// A batch examines the next BatchSize workers in id order (a range of the
// primary key, whatever the share of candidates in it, so that every batch
// costs about the same and no plan ever scans the whole table), locks the
// candidates among them — skipping rows another transaction holds: a worker
// heartbeating right now is alive and is not waited for — and changes them in
// the same statement, testing the prune condition again on the locked rows.
// The condition is evaluated when the statement runs, with the database's
// now(): a worker that heartbeat after a dry run or after the listing is
// never touched, because both its row lock and the re-check see the new
// heartbeat. Each batch is its own transaction, so the row locks a heartbeat
// could wait for are held for one short statement only.
func PruneQuery(o PruneOptions) (string, []any) {
	return pruneQuery(o, true)
}

// pruneQuery is PruneQuery, the grace read from the column or from
// capabilities.
func pruneQuery(o PruneOptions, graceColumn bool) (string, []any) {
	var a sqlArgs
	where, _, _ := pruneWhere(o, &a, graceColumn)
	last := a.add(int64(0))
	limit := a.add(o.batchSize())
	change := `UPDATE worker w SET status = 'inactive', updated = now()
	WHERE w.id = ANY (ARRAY(SELECT id FROM batch))
	  AND ` + where
	if o.Delete {
		change = `DELETE FROM worker w
	WHERE w.id = ANY (ARRAY(SELECT id FROM batch))
	  AND ` + where
	}
	q := `WITH scan AS (
	SELECT id FROM worker WHERE id > ` + last + ` ORDER BY id LIMIT ` + limit + `
), batch AS (
	SELECT id FROM worker
	WHERE id > ` + last + ` AND id <= (SELECT max(id) FROM scan)
	  AND ` + where + `
	FOR UPDATE SKIP LOCKED
), changed AS (
	` + change + `
	RETURNING w.id, w.name, coalesce(w.host, '') AS host
)
SELECT s.last_id, s.scanned, c.id, c.name, c.host
FROM (SELECT max(id) AS last_id, count(*) AS scanned FROM scan) s
LEFT JOIN changed c ON true`
	return q, a
}

// Prune marks stale workers inactive, or with Delete removes old inactive
// and stale workers, in batches: each statement examines the next BatchSize
// workers in id order and changes the candidates among them, in a
// transaction of its own. One pass over the table ends it. When ctx is
// cancelled it stops between batches (a batch interrupted in flight is
// rolled back whole) and returns what was done with ctx's error.
func Prune(ctx context.Context, db *database.DB, o PruneOptions) (res PruneResult, err error) {
	if err := o.Validate(); err != nil {
		return res, err
	}
	begin := time.Now()
	defer func() { res.Elapsed = time.Since(begin) }()

	q, args := pruneQuery(o, schemaOf(db).graceColumn)
	lastArg := len(args) - 2
	size := int64(o.batchSize())
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		scanned, last, changed, err := pruneBatch(ctx, db.Pool, q, args)
		if err != nil {
			return res, fmt.Errorf("pruning workers (after id %d, %d changed before): %w", args[lastArg], res.Changed, err)
		}
		res.Statements++
		res.Scanned += scanned
		if len(changed) > 0 {
			res.Batches++
			res.Changed += int64(len(changed))
			if o.OnBatch != nil {
				o.OnBatch(PruneBatch{Number: res.Batches, Workers: changed, Changed: res.Changed, Scanned: res.Scanned})
			}
		}
		if scanned < size {
			return res, nil
		}
		args[lastArg] = last
	}
}

// pruneBatch runs one batch: how many workers it examined, the highest id
// among them, and the workers it changed.
func pruneBatch(ctx context.Context, pool *pgxpool.Pool, q string, args []any) (scanned, last int64, changed []PrunedWorker, err error) {
	rows, err := pool.Query(ctx, q, args...)
	if err != nil {
		return 0, 0, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			lastID     *int64
			id         *int64
			name, host *string
		)
		if err := rows.Scan(&lastID, &scanned, &id, &name, &host); err != nil {
			return 0, 0, nil, err
		}
		if lastID != nil {
			last = *lastID
		}
		if id != nil {
			changed = append(changed, PrunedWorker{ID: *id, Name: *name, Host: *host})
		}
	}
	return scanned, last, changed, rows.Err()
}

// PrunePreview lists exactly the workers Prune would change if it ran now,
// changing nothing: the dry run.
func PrunePreview(ctx context.Context, db *database.DB, o PruneOptions) (Listing, error) {
	if err := o.Validate(); err != nil {
		return Listing{}, err
	}
	var a sqlArgs
	where, stale, _ := pruneWhere(o, &a, schemaOf(db).graceColumn)
	q := "SELECT " + inspectColumns(stale) + "\nFROM worker\nWHERE " + where + "\nORDER BY name"
	l, err := queryListing(ctx, db.Pool, q, a...)
	if !o.Delete {
		l.OlderThan = o.OlderThan
	}
	return l, err
}

// PruneCount counts the workers Prune would change if it ran now.
func PruneCount(ctx context.Context, db *database.DB, o PruneOptions) (int64, error) {
	if err := o.Validate(); err != nil {
		return 0, err
	}
	var a sqlArgs
	where, _, _ := pruneWhere(o, &a, schemaOf(db).graceColumn)
	var n int64
	err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM worker WHERE "+where, a...).Scan(&n)
	return n, err
}
