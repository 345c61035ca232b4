package runtimes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/attune-automation/attunectl/pkg/database"
)

// ErrExists is matched (errors.Is) by the error Add returns when a ref is
// already in the table and update was not asked for.
var ErrExists = errors.New("runtime already exists")

// ErrNotFound is matched (errors.Is) by the error Remove returns when a ref
// is not in the table.
var ErrNotFound = errors.New("runtime not found")

// ExistsError names the ref that already exists.
type ExistsError struct{ Ref string }

func (e *ExistsError) Error() string {
	return fmt.Sprintf("runtime %s already exists: pass --update to replace it", e.Ref)
}
func (e *ExistsError) Is(target error) bool { return target == ErrExists }

// NotFoundError names the refs that do not exist, and where they were
// looked for (In: "schema attune", a manifest's path; empty: the table).
type NotFoundError struct {
	Refs []string
	In   string
	Hint string // what to do; the default points at `attunectl runtime list`
}

func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// Filter selects runtimes for List. Zero values select everything.
type Filter struct {
	// Type is "sensor" or "action". On a database without a runtime_type
	// column List refuses a Type filter (there is nothing to filter on).
	Type string
	// Refs restricts the result to these refs (compared lower-cased).
	Refs []string
}

// AddResult says which refs Add inserted and which it replaced.
type AddResult struct {
	Created []string `json:"created"`
	Updated []string `json:"updated"`
}

// Requirements are the runtime columns Add writes; `migrate up` adds those
// an adopted table lacks (aliases: migration 00005). Reading needs none of
// the optional ones: List reads a missing aliases column as empty.
var Requirements = []database.Requirement{
	database.Column("runtime", "ref"),
	database.Column("runtime", "pack_ref"),
	database.Column("runtime", "name"),
	database.Column("runtime", "description"),
	database.Column("runtime", "aliases"),
	database.Column("runtime", "distributions"),
	database.Column("runtime", "updated"),
}

// selectColumns names every column read; never SELECT *, because Attune's
// own tables may have more columns than attunectl knows. Columns an older
// era of Attune's table lacks (aliases before unified runtimes) read as empty.
func selectColumns(db *database.DB) string {
	typ := "NULL::text"
	if db.Runtime.HasType {
		typ = "runtime_type::text"
	}
	aliases := "aliases"
	if cols := db.Facts.Columns["runtime"]; cols != nil && !cols["aliases"] {
		aliases = "'{}'::text[]"
	}
	return "id, ref, pack_ref, name, description, " + aliases + ", " + typ + ", distributions::text, created, updated"
}

// List returns the runtimes matching f, ordered by ref.
func List(ctx context.Context, db *database.DB, f Filter) ([]Runtime, error) {
	var where []string
	var args []any
	if f.Type != "" {
		if f.Type != TypeSensor && f.Type != TypeAction {
			return nil, fmt.Errorf("listing runtimes: unknown type %q: use sensor or action", f.Type)
		}
		if !db.Runtime.HasType {
			return nil, fmt.Errorf("listing runtimes: the runtime table in schema %s has no runtime_type column (unified runtimes): drop the type filter", db.Schema)
		}
		args = append(args, f.Type)
		where = append(where, fmt.Sprintf("runtime_type::text = $%d", len(args)))
	}
	if len(f.Refs) > 0 {
		refs := make([]string, len(f.Refs))
		for i, r := range f.Refs {
			refs[i] = NormalizeRef(r)
		}
		args = append(args, refs)
		where = append(where, fmt.Sprintf("ref = ANY($%d)", len(args)))
	}
	q := "SELECT " + selectColumns(db) + " FROM runtime"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY ref"
	rts, err := query(ctx, db, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing runtimes: %w", err)
	}
	return rts, nil
}

// SensorRuntimes returns the runtimes sensor detection considers, ordered by
// ref: rows with runtime_type = 'sensor', or, on a unified database without
// that column, every row whose retired_at is null (every row when there is
// no retired_at either).
func SensorRuntimes(ctx context.Context, db *database.DB) ([]Runtime, error) {
	q := "SELECT " + selectColumns(db) + " FROM runtime"
	switch {
	case db.Runtime.HasType:
		q += " WHERE runtime_type::text = 'sensor'"
	case db.Runtime.HasRetiredAt:
		q += " WHERE retired_at IS NULL"
	}
	q += " ORDER BY ref"
	rts, err := query(ctx, db, q)
	if err != nil {
		return nil, fmt.Errorf("loading sensor runtimes: %w", err)
	}
	return rts, nil
}

func query(ctx context.Context, db *database.DB, q string, args ...any) ([]Runtime, error) {
	rows, err := db.Pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Runtime
	for rows.Next() {
		var (
			r                         Runtime
			packRef, descr, typ, dist *string
			created, updated          *time.Time
		)
		if err := rows.Scan(&r.ID, &r.Ref, &packRef, &r.Name, &descr, &r.Aliases, &typ, &dist, &created, &updated); err != nil {
			return nil, err
		}
		r.PackRef, r.Description, r.Type = deref(packRef), deref(descr), deref(typ)
		if len(r.Aliases) == 0 {
			r.Aliases = nil // as in a manifest without aliases
		}
		if created != nil {
			r.Created = *created
		}
		if updated != nil {
			r.Updated = *updated
		}
		if dist != nil {
			v, err := ParseDistributions([]byte(*dist))
			if err != nil {
				r.VerificationProblem = "invalid verification metadata: " + err.Error()
			}
			r.Verification = v
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Add writes rts in one transaction: all of them or none. The runtimes are
// validated first (a *ValidationError, nothing written). A ref that already
// exists is an *ExistsError (errors.Is ErrExists) unless update is true;
// with update, the row's ref stays, name, type, pack_ref, description,
// aliases are replaced, and distributions->'verification' is replaced while
// every other key of distributions (Attune's own data) is kept. A runtime
// without verification removes the key on update. Type "" means sensor; on
// a database without runtime_type the type is not stored.
func Add(ctx context.Context, db *database.DB, rts []Runtime, update bool) (AddResult, error) {
	var res AddResult
	if err := Validate(rts); err != nil {
		return res, err
	}
	if err := db.Require(Requirements...); err != nil {
		return res, fmt.Errorf("adding runtimes: %w", err)
	}
	if owned, err := platformOwned(ctx, db, Refs(rts)); err != nil {
		return res, err
	} else if len(owned) > 0 {
		return res, &PlatformOwnedError{Refs: owned}
	}
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("adding runtimes: starting a transaction: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit this is a no-op
	for _, r := range rts {
		created, err := addOne(ctx, db, tx, r, update)
		if err != nil {
			var ee *ExistsError
			if errors.As(err, &ee) {
				return AddResult{}, err
			}
			return AddResult{}, fmt.Errorf("adding runtime %s: %w (nothing was written)", r.Ref, explainCheck(err))
		}
		if created {
			res.Created = append(res.Created, r.Ref)
		} else {
			res.Updated = append(res.Updated, r.Ref)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return AddResult{}, fmt.Errorf("adding runtimes: committing: %w (nothing was written)", err)
	}
	return res, nil
}

func addOne(ctx context.Context, db *database.DB, tx pgx.Tx, r Runtime, update bool) (created bool, err error) {
	typ := r.Type
	if typ == "" {
		typ = TypeSensor
	}
	aliases := r.Aliases
	if aliases == nil {
		aliases = []string{}
	}
	var verification *string
	if r.Verification != nil {
		b, err := json.Marshal(r.Verification)
		if err != nil {
			return false, fmt.Errorf("encoding verification: %w", err)
		}
		s := string(b)
		verification = &s
	}
	// Insert; a conflicting ref inserts nothing (and waits for a concurrent
	// writer of the same ref to finish), then update or report it.
	cols := "ref, pack_ref, name, description, aliases, distributions"
	vals := "$1, $2, $3, $4, $5, CASE WHEN $6::jsonb IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('verification', $6::jsonb) END"
	args := []any{r.Ref, nullable(r.PackRef), r.Name, nullable(r.Description), aliases, verification}
	if db.Runtime.HasType {
		cols += ", runtime_type"
		vals += ", $7"
		args = append(args, typ)
	}
	var id int64
	err = tx.QueryRow(ctx, "INSERT INTO runtime ("+cols+") VALUES ("+vals+") ON CONFLICT (ref) DO NOTHING RETURNING id", args...).Scan(&id)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("inserting: %w", err)
	}
	if !update {
		return false, &ExistsError{Ref: r.Ref}
	}
	set := `pack_ref = $2, name = $3, description = $4, aliases = $5,
		distributions = CASE WHEN $6::jsonb IS NULL THEN coalesce(distributions, '{}'::jsonb) - 'verification'
		                     ELSE coalesce(distributions, '{}'::jsonb) || jsonb_build_object('verification', $6::jsonb) END,
		updated = now()`
	if db.Runtime.HasType {
		set += ", runtime_type = $7"
	}
	tag, err := tx.Exec(ctx, "UPDATE runtime SET "+set+" WHERE ref = $1", args...)
	if err != nil {
		return false, fmt.Errorf("updating: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return false, fmt.Errorf("updating: the row disappeared while adding it: run the command again")
	}
	return false, nil
}

// Remove deletes the runtimes with these refs in one transaction. When a
// ref does not exist nothing is deleted and the error is a *NotFoundError
// (errors.Is ErrNotFound). Workers pointing at a removed runtime keep
// running with worker.runtime set to NULL, in the same statement: Attune's
// worker table of the runtime_type era has a foreign key without ON DELETE SET
// NULL (checked at the end of the statement), later ones set it themselves.
// It returns the removed refs, sorted.
func Remove(ctx context.Context, db *database.DB, refs []string) ([]string, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	list := MissingRefs(refs, nil)
	if owned, err := platformOwned(ctx, db, list); err != nil {
		return nil, err
	} else if len(owned) > 0 {
		return nil, &PlatformOwnedError{Refs: owned, Remove: true}
	}
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("removing runtimes: starting a transaction: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit this is a no-op
	del := "DELETE FROM runtime WHERE ref = ANY($1) RETURNING ref"
	if db.Facts.Columns["worker"]["runtime"] {
		del = `WITH removed AS (DELETE FROM runtime WHERE ref = ANY($1) RETURNING id, ref),
			released AS (UPDATE worker SET runtime = NULL WHERE runtime IN (SELECT id FROM removed))
			SELECT ref FROM removed`
	}
	rows, err := tx.Query(ctx, del, list)
	if err != nil {
		return nil, fmt.Errorf("removing runtimes: %w", err)
	}
	removed, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("removing runtimes: %w", err)
	}
	got := map[string]bool{}
	for _, r := range removed {
		got[r] = true
	}
	var missing []string
	for _, r := range list {
		if !got[r] {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		return nil, &NotFoundError{Refs: missing}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("removing runtimes: committing: %w", err)
	}
	sort.Strings(removed)
	return removed, nil
}

// explainCheck turns a check constraint of Attune's runtime table that
// refuses a row (the runtime_type era requires refs of the form pack.action.name
// or pack.sensor.name) into a message that names it, instead of the raw
// SQLSTATE.
func explainCheck(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23514" {
		return err
	}
	hint := ""
	if pgErr.ConstraintName == "runtime_ref_format" {
		hint = ": this database's runtime table requires refs of the form PACK.sensor.NAME or PACK.action.NAME"
	}
	return fmt.Errorf("the runtime table's check constraint %s refuses the row%s", pgErr.ConstraintName, hint)
}
