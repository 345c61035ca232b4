package database

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// uniqueNameVersion is the migration that puts a unique constraint on
// worker.name (00007_worker_name_unique.sql).
const uniqueNameVersion = 7

// preflight runs before `migrate up` applies anything, and refuses when a
// migration could not be applied safely to the database as it is, before
// anything changes:
//
//   - the configured schema has no worker and runtime tables while another
//     schema holds Attune's: migrating would create an empty second set
//     beside them (*ElsewhereError, naming the schema to pass);
//   - the worker table has no unique constraint on name and two rows share a
//     name: the constraint cannot be added (*DuplicateNamesError, naming the
//     rows and how to resolve them).
//
// When the unique constraint is missing and the names are unique, it builds
// the constraint's index with CREATE UNIQUE INDEX CONCURRENTLY, outside any
// transaction, so that no writer waits while it is built; migration 00007
// then only attaches it. target is the version being migrated to.
func (m *Migrator) preflight(ctx context.Context, target int64) error {
	db := m.db
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("checking the schema before migrating: %w", RedactError(err))
	}
	defer conn.Release()

	var hasRuntime, hasWorker bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass(format('%I.runtime', $1::text)) IS NOT NULL, to_regclass(format('%I.worker', $1::text)) IS NOT NULL`,
		db.Schema).Scan(&hasRuntime, &hasWorker); err != nil {
		return fmt.Errorf("checking the schema before migrating: %w", RedactError(err))
	}
	if !hasRuntime && !hasWorker {
		others, err := attuneTablesElsewhere(ctx, conn, db.Schema)
		if err != nil {
			return fmt.Errorf("checking the schema before migrating: %w", RedactError(err))
		}
		if len(others) > 0 {
			return &ElsewhereError{Schema: db.Schema, Found: sortedKeys(others)}
		}
		return nil
	}
	if !hasWorker || target < uniqueNameVersion {
		return nil
	}

	worker := pgx.Identifier{db.Schema, "worker"}.Sanitize()
	var unique bool
	var keyValid *bool
	if err := conn.QueryRow(ctx, `
		WITH w AS (SELECT to_regclass($1)::oid AS oid)
		SELECT EXISTS (
			SELECT 1 FROM pg_index i, w
			WHERE i.indrelid = w.oid AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
			  AND i.indexprs IS NULL AND i.indnatts = 1
			  AND i.indkey[0] = (SELECT attnum FROM pg_attribute WHERE attrelid = w.oid AND attname = 'name')),
			(SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass($2))`,
		worker, pgx.Identifier{db.Schema, "worker_name_key"}.Sanitize()).Scan(&unique, &keyValid); err != nil {
		return fmt.Errorf("checking the worker table before migrating: %w", RedactError(err))
	}
	if unique {
		return nil
	}
	if err := checkDuplicateNames(ctx, conn, db.Schema); err != nil {
		return err
	}
	key := pgx.Identifier{db.Schema, "worker_name_key"}.Sanitize()
	if keyValid != nil && !*keyValid {
		// Left by an interrupted build: drop it without blocking writers.
		if _, err := conn.Exec(ctx, "DROP INDEX CONCURRENTLY IF EXISTS "+key); err != nil {
			return fmt.Errorf("dropping the invalid index %s left by an interrupted migration: %w", key, RedactError(err))
		}
	}
	_, err = conn.Exec(ctx, "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS worker_name_key ON "+worker+" (name)")
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			// A duplicate arrived during the build: name it.
			_, _ = conn.Exec(ctx, "DROP INDEX CONCURRENTLY IF EXISTS "+key)
			if derr := checkDuplicateNames(ctx, conn, db.Schema); derr != nil {
				return derr
			}
		}
		return fmt.Errorf("building the unique index on worker.name (CREATE UNIQUE INDEX CONCURRENTLY): %w (nothing else was changed; run `attunectl migrate up` again)", RedactError(err))
	}
	if _, err := conn.Exec(ctx, "COMMENT ON INDEX "+key+" IS 'attunectl: built before migration 00007'"); err != nil {
		return fmt.Errorf("marking the index %s as attunectl's: %w", key, RedactError(err))
	}
	return nil
}

// DuplicateRow is one of the worker rows that share a name.
type DuplicateRow struct {
	Name          string
	ID            int64
	Host          string
	Status        string
	LastHeartbeat *time.Time
}

// DuplicateNamesError refuses `migrate up`: the worker table holds rows that
// share a name, so that the unique constraint registration relies on cannot
// be added. It lists them and says how to resolve it.
type DuplicateNamesError struct {
	Schema string
	Rows   []DuplicateRow
	// More is how many more duplicate rows exist than are listed.
	More int
}

func (e *DuplicateNamesError) Error() string {
	var b strings.Builder
	names := map[string]bool{}
	for _, r := range e.Rows {
		names[r.Name] = true
	}
	held := fmt.Sprintf("%d worker names are each held", len(names))
	if len(names) == 1 {
		held = "a worker name is held"
	}
	fmt.Fprintf(&b, "migrate up refused: %s by several rows in %s.worker, so the unique constraint on worker.name cannot be added; nothing was changed:\n", held, e.Schema)
	fmt.Fprintf(&b, "  %-24s %6s  %-20s %-9s %s\n", "NAME", "ID", "HOST", "STATUS", "LAST HEARTBEAT")
	for _, r := range e.Rows {
		hb := "never"
		if r.LastHeartbeat != nil {
			hb = r.LastHeartbeat.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(&b, "  %-24s %6d  %-20s %-9s %s\n", r.Name, r.ID, dash(r.Host), dash(r.Status), hb)
	}
	if e.More > 0 {
		fmt.Fprintf(&b, "  … and %d more\n", e.More)
	}
	w := pgx.Identifier{e.Schema, "worker"}.Sanitize()
	fmt.Fprintf(&b, "resolve it by keeping one row per name (of each name, the row listed last heartbeat most recently): delete the rows of workers that are gone (DELETE FROM %s WHERE id IN (…)) or rename them (UPDATE %s SET name = name || '-' || id WHERE id IN (…)), then run `attunectl migrate up` again", w, w)
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// maxListedDuplicates bounds the rows a DuplicateNamesError lists.
const maxListedDuplicates = 50

// checkDuplicateNames returns a *DuplicateNamesError when rows of the worker
// table share a name, nil otherwise.
func checkDuplicateNames(ctx context.Context, q querier, schema string) error {
	worker := pgx.Identifier{schema, "worker"}.Sanitize()
	rows, err := q.Query(ctx, `
		SELECT name, id, coalesce(host, ''), coalesce(status::text, ''), last_heartbeat, count(*) OVER ()
		FROM `+worker+`
		WHERE name IN (SELECT name FROM `+worker+` GROUP BY name HAVING count(*) > 1)
		ORDER BY name, last_heartbeat ASC NULLS FIRST, id
		LIMIT `+fmt.Sprint(maxListedDuplicates))
	if err != nil {
		return fmt.Errorf("looking for worker rows that share a name: %w", RedactError(err))
	}
	defer rows.Close()
	e := &DuplicateNamesError{Schema: schema}
	total := int64(0)
	for rows.Next() {
		var r DuplicateRow
		if err := rows.Scan(&r.Name, &r.ID, &r.Host, &r.Status, &r.LastHeartbeat, &total); err != nil {
			return fmt.Errorf("looking for worker rows that share a name: %w", RedactError(err))
		}
		e.Rows = append(e.Rows, r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("looking for worker rows that share a name: %w", RedactError(err))
	}
	if len(e.Rows) == 0 {
		return nil
	}
	if total > int64(len(e.Rows)) && total < math.MaxInt32 {
		e.More = int(total) - len(e.Rows)
	}
	return e
}
