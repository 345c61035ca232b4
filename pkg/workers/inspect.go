package workers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Sort orders of List.
const (
	SortByName      = "name"
	SortByHeartbeat = "heartbeat" // oldest first; workers that never heartbeat come first
)

// Selector scopes the inspection and prune statements to some workers. The
// zero Selector matches every worker.
type Selector struct {
	// Roles keeps workers whose worker_role is one of these; empty keeps
	// every role. "sensor" matches sensor workers only, never hybrid or
	// action workers.
	Roles []string
	// Runtime keeps workers that advertise this runtime, capabilities->'runtimes' ? 'python'. It is compared as given (runtime
	// names are written lower case by detection).
	Runtime string
	// Host keeps the workers on this host (exact match).
	Host string
	// Names keeps the workers with these names; empty keeps every name.
	Names []string
}

// ListOptions select and order the workers List returns.
type ListOptions struct {
	Selector
	// Status keeps workers in this derived state: "active" (active and
	// heartbeating within its grace), "stale" (active but silent for longer
	// than its grace), or a stored status such as "inactive", "busy",
	// "error" — including values of the status enum that attunectl does not
	// know. Empty keeps every worker.
	Status string
	// StaleOnly keeps stale workers only (worker stale); it combines with
	// the Selector, not with Status.
	StaleOnly bool
	// SortBy is SortByName (the default) or SortByHeartbeat.
	SortBy string
	// OlderThan, when positive, is the grace for every worker instead of
	// three times the heartbeat interval each advertises.
	OlderThan time.Duration
}

// Listing is the workers one statement returned, with the database's clock
// at that statement: every derived state and silence in it was computed
// against At, never against the clock of the host running attunectl, so
// printing ages relative to At shows what the database decided.
type Listing struct {
	// At is the database's now() for the statement.
	At time.Time
	// OlderThan is the grace override the states were derived with (0: per worker).
	OlderThan time.Duration
	Workers   []Worker
}

// GraceOf returns the grace w was judged with: the override, else three of
// the heartbeat intervals it advertises.
func (l Listing) GraceOf(w Worker) time.Duration {
	if l.OlderThan > 0 {
		return l.OlderThan
	}
	return w.Capabilities.Grace()
}

// IntervalOf returns the heartbeat interval w advertises, or the default.
func IntervalOf(w Worker) time.Duration {
	if w.Capabilities.HeartbeatInterval > 0 {
		return time.Duration(w.Capabilities.HeartbeatInterval * float64(time.Second))
	}
	return DefaultHeartbeatInterval
}

// Late reports whether w is active and has missed at least one heartbeat
// but is still within its grace. Late is a hint for the eye (a colour), not
// a state: a late worker is still active. Part of List, which the
// tests hold Stream against.
func (l Listing) Late(w Worker) bool {
	return w.State == StatusActive && w.LastHeartbeat != nil && w.Silence > IntervalOf(w)
}

// InvalidValueError is a filter value that the worker table cannot hold,
// e.g. --status activ. Valid lists what it can hold.
type InvalidValueError struct {
	Field string // "role" or "status"
	Value string
	Valid []string
}

func (e *InvalidValueError) Error() string {
	return fmt.Sprintf("unknown worker %s %q: use one of %s", e.Field, e.Value, strings.Join(e.Valid, ", "))
}

// knownStatuses are the states List understands without asking the database.
var knownStatuses = []string{StatusActive, StateStale, StatusInactive, StatusBusy, StatusError}

// knownRoles are the roles of the worker_role_enum attunectl creates.
var knownRoles = []string{RoleAction, RoleSensor, RoleHybrid}

// CheckFilterValues refuses a role or status that no era of attunectl's
// worker table holds. The commands call it before anything connects when
// the database is the embedded one, whose labels are exactly these:
// "--status actve" is bad input, not a reason to start a database. On a
// configured database, which may define labels of its own, CheckFilters
// holds the values against its enums as learned at connect.
func CheckFilterValues(roles []string, status string) error {
	for _, r := range roles {
		if r != "" && !slices.Contains(knownRoles, r) {
			return &InvalidValueError{Field: "role", Value: r, Valid: knownRoles}
		}
	}
	if status != "" && !slices.Contains(knownStatuses, status) {
		return &InvalidValueError{Field: "status", Value: status, Valid: knownStatuses}
	}
	return nil
}

// CheckFilters holds the roles and status against the labels of this
// database's enums, learned at connect (database.DB.Facts), so that a typo
// or a value this era lacks ("hybrid" where Attune's worker_role_enum is
// action and sensor) is an InvalidValueError rather than an empty result or
// a raw SQLSTATE. "stale" is a state, not a status label.
func CheckFilters(db *database.DB, roles []string, status string) error {
	check := func(column, field string, known []string, values ...string) error {
		valid := filterValues(db, column, known)
		for _, v := range values {
			if v != "" && !slices.Contains(valid, v) {
				return &InvalidValueError{Field: field, Value: v, Valid: valid}
			}
		}
		return nil
	}
	if err := check("worker_role", "role", knownRoles, roles...); err != nil {
		return err
	}
	return check("status", "status", knownStatuses, status)
}

// filterValues are the values a filter on column may take on this
// database: the known ones its enum has (stale, a state, always), then the
// labels attunectl does not know. Without the enum's labels (a text
// column), the known ones.
func filterValues(db *database.DB, column string, known []string) []string {
	labels, ok := db.Facts.Enums["worker."+column]
	if !ok {
		return known
	}
	var valid []string
	for _, k := range known {
		if k == StateStale || slices.Contains(labels, k) {
			valid = append(valid, k)
		}
	}
	for _, l := range labels {
		if !slices.Contains(valid, l) {
			valid = append(valid, l)
		}
	}
	return valid
}

// sqlArgs numbers the parameters of a statement as they are added.
type sqlArgs []any

func (a *sqlArgs) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// graceArg is the grace parameter of staleSQL: NULL for "per worker".
func graceArg(d time.Duration) any {
	if d > 0 {
		return d
	}
	return nil
}

// selectorSQL returns the conditions of sel. Roles and statuses are cast to
// the column's enum type so that the indexes on worker_role and status serve
// them; the enum type names are Attune's (worker_role_enum).
func selectorSQL(sel Selector, a *sqlArgs) []string {
	var where []string
	if len(sel.Roles) > 0 {
		where = append(where, "worker_role = ANY("+a.add(sel.Roles)+"::text[]::worker_role_enum[])")
	}
	if sel.Runtime != "" {
		where = append(where, "capabilities->'runtimes' ? "+a.add(sel.Runtime))
	}
	if sel.Host != "" {
		where = append(where, "host = "+a.add(sel.Host))
	}
	if len(sel.Names) > 0 {
		where = append(where, "name = ANY("+a.add(sel.Names)+"::text[])")
	}
	return where
}

// inspectColumns are the columns List and the prune preview read. They are
// named, never *, and enums are read as text: a database may have columns
// and enum values attunectl does not know. state and silence are computed
// by the database, so its clock decides who is stale.
func inspectColumns(stale string) string {
	return `id, name, worker_type::text, worker_role::text, coalesce(status::text, ''),
		CASE WHEN status = 'active' AND ` + stale + ` THEN 'stale' ELSE coalesce(status::text, 'unknown') END,
		coalesce(host, ''), port, capabilities, meta, last_heartbeat,
		extract(epoch FROM now() - last_heartbeat)::float8,
		created, updated, now()`
}

// ListQuery returns the statement List runs for opts on a schema migrated
// by attunectl (with worker.heartbeat_grace) and its arguments; the
// benchmark runs the same text through psql. The tests of pkg/workers
// call it; `worker list` sends Stream's statement.
func ListQuery(opts ListOptions) (string, []any) {
	return listQuery(opts, true)
}

// listQuery is List's statement, the grace read from the column or from
// capabilities, for List and ListQuery.
func listQuery(opts ListOptions, graceColumn bool) (string, []any) {
	p := newListParts(opts, graceColumn)
	return p.finish("SELECT " + inspectColumns(p.stale) + "\nFROM worker" + p.tail)
}

// listParts is what the statements of List and Stream share: the
// conditions and order of opts, and the staleness test and grace the state
// column derives with. Those refer to the grace override as graceHole,
// which finish numbers as the last parameter if the statement uses it (a
// statement selecting names only may not).
type listParts struct {
	tail  string // WHERE … ORDER BY …
	stale string // staleSQL with the grace override
	grace string // graceSQL with the grace override
	args  sqlArgs
	over  any // the grace override's argument
}

const graceHole = "\x00grace\x00"

func newListParts(opts ListOptions, graceColumn bool) listParts {
	var a sqlArgs
	stale := staleSQL("", graceHole, graceColumn)
	where := selectorSQL(opts.Selector, &a)
	switch {
	case opts.StaleOnly || opts.Status == StateStale:
		where = append(where, "status = 'active' AND "+stale)
	case opts.Status == StatusActive:
		where = append(where, "status = 'active' AND NOT "+stale)
	case opts.Status != "":
		where = append(where, "status = "+a.add(opts.Status)+"::text::worker_status_enum")
	}
	var q string
	if len(where) > 0 {
		q += "\nWHERE " + strings.Join(where, "\n  AND ")
	}
	if opts.SortBy == SortByHeartbeat {
		q += "\nORDER BY last_heartbeat ASC NULLS FIRST, name"
	} else {
		q += "\nORDER BY name"
	}
	return listParts{tail: q, stale: stale, grace: graceSQL("", graceHole, graceColumn), args: a, over: graceArg(opts.OlderThan)}
}

// finish numbers the grace override in q and returns q with its arguments.
func (p listParts) finish(q string) (string, []any) {
	a := p.args
	if strings.Contains(q, graceHole) {
		q = strings.ReplaceAll(q, graceHole, a.add(p.over))
	}
	return q, a
}

// List returns the workers opts selects, with their derived state, all
// at once. `worker list` streams them (Stream); List is the reference the
// tests of pkg/workers and pkg/cli hold Stream against.
func List(ctx context.Context, db *database.DB, opts ListOptions) (Listing, error) {
	if err := opts.validate(); err != nil {
		return Listing{}, err
	}
	q, args := listQuery(opts, schemaOf(db).graceColumn)
	l, err := queryListing(ctx, db.Pool, q, args...)
	l.OlderThan = opts.OlderThan
	return l, err
}

func (opts ListOptions) validate() error {
	if opts.SortBy != "" && opts.SortBy != SortByName && opts.SortBy != SortByHeartbeat {
		return fmt.Errorf("unknown sort order %q: use %s or %s", opts.SortBy, SortByName, SortByHeartbeat)
	}
	return nil
}

// Stale returns the stale workers opts selects: active, but silent for
// longer than their grace. Like List, the reference `worker stale`'s
// stream is held against in the tests of pkg/workers and pkg/cli.
func Stale(ctx context.Context, db *database.DB, opts ListOptions) (Listing, error) {
	opts.StaleOnly = true
	opts.Status = ""
	return List(ctx, db, opts)
}

// queryListing runs a statement selecting inspectColumns.
func queryListing(ctx context.Context, pool *pgxpool.Pool, q string, args ...any) (Listing, error) {
	var l Listing
	rows, err := pool.Query(ctx, q, args...)
	if err != nil {
		return l, err
	}
	defer rows.Close()
	for rows.Next() {
		w, at, err := scanInspected(rows)
		if err != nil {
			return l, err
		}
		l.At = at
		l.Workers = append(l.Workers, w)
	}
	if err := rows.Err(); err != nil {
		return l, err
	}
	if l.At.IsZero() {
		// No rows: the listing still needs the database's clock.
		if err := pool.QueryRow(ctx, "SELECT now()").Scan(&l.At); err != nil {
			return l, err
		}
		l.At = l.At.UTC()
	}
	return l, nil
}

// scanInspected reads one row of inspectColumns. Capabilities or meta that
// are not JSON objects (another tool wrote them) are left empty rather than
// failing the listing.
func scanInspected(rows pgx.Rows) (Worker, time.Time, error) {
	var (
		w            Worker
		port         *int32
		caps, meta   []byte
		silence      *float64
		hb           *time.Time
		at           time.Time
		created, upd time.Time
	)
	if err := rows.Scan(&w.ID, &w.Name, &w.Type, &w.Role, &w.Status, &w.State, &w.Host, &port,
		&caps, &meta, &hb, &silence, &created, &upd, &at); err != nil {
		return w, at, fmt.Errorf("reading a worker row: %w", err)
	}
	if port != nil {
		p := int(*port)
		w.Port = &p
	}
	if len(caps) > 0 {
		_ = json.Unmarshal(caps, &w.Capabilities)
	}
	if len(meta) > 0 {
		_ = json.Unmarshal(meta, &w.Meta)
	}
	if hb != nil {
		t := hb.UTC()
		w.LastHeartbeat = &t
	}
	if silence != nil {
		w.Silence = time.Duration(*silence * float64(time.Second))
	}
	w.Created, w.Updated = created.UTC(), upd.UTC()
	return w, at.UTC(), nil
}
