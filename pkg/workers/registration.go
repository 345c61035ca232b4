package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/proc"
)

// RegistrationConfig is what a sensor worker registers as.
type RegistrationConfig struct {
	Name string
	Host string
	// Capabilities as first registered; UpdateCapabilities replaces them.
	Capabilities Capabilities
	// Instance defaults to NewInstance(Capabilities.SensorVersion).
	Instance Instance
}

// RegisterOptions modify one Register call.
type RegisterOptions struct {
	// Replace takes the name over from a live sensor worker of another
	// instance (--replace). It never takes a row of another role.
	Replace bool
}

// Registered is what Register wrote.
type Registered struct {
	ID int64
	// Inserted is true when the row was created, false when an existing row
	// (ours from an earlier registration, a stale one, or a replaced one)
	// was taken.
	Inserted      bool
	Created       time.Time
	LastHeartbeat time.Time
}

// Registration registers one sensor worker instance in the worker table and
// keeps its row: heartbeat, capability updates, deregistration. It is the
// SensorWorkerRegistration of Attune's design. Its methods are safe for concurrent use.
type Registration struct {
	db   *database.DB
	name string
	host string
	inst Instance

	mu   sync.Mutex
	caps Capabilities
	id   int64
}

// NewRegistration prepares a registration; nothing is written until Register.
func NewRegistration(db *database.DB, cfg RegistrationConfig) *Registration {
	if cfg.Instance.ID == "" {
		cfg.Instance = NewInstance(cfg.Capabilities.SensorVersion)
	}
	return &Registration{db: db, name: cfg.Name, host: cfg.Host, inst: cfg.Instance, caps: cloneCapabilities(cfg.Capabilities)}
}

// ID is the worker row's id, 0 before Register.
func (r *Registration) ID() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.id
}

// registerSQL inserts the sensor row, or takes over the existing row of the
// same name when the WHERE allows it, in one statement: the decision is made
// on the locked row at execution time, so two instances registering the same
// name at once cannot both win and no unique_violation escapes.
//
// Takeover is allowed only for a sensor row that is ours ($5 lists our
// instance id, and the id of a dead holder on this machine that Register
// found), or not live (status other than active, or no heartbeat within its
// grace), or when $6 (replace) is set. The capabilities keep every key that
// this tool does not own ($7), so what other tools wrote survives; meta keeps
// other keys too.
var registerSQL = `
INSERT INTO worker AS w (name, worker_type, worker_role, host, status, capabilities, meta, last_heartbeat, created, updated)
VALUES ($1, 'local', 'sensor', $2, 'active', $3::jsonb, $4::jsonb, now(), now(), now())
ON CONFLICT (name) DO UPDATE SET
	worker_type    = 'local',
	host           = EXCLUDED.host,
	status         = 'active',
	capabilities   = CASE WHEN jsonb_typeof(w.capabilities) = 'object'
	                      THEN (w.capabilities - $7::text[]) || EXCLUDED.capabilities
	                      ELSE EXCLUDED.capabilities END,
	meta           = CASE WHEN jsonb_typeof(w.meta) = 'object'
	                      THEN (w.meta - 'deregistered_instance') || EXCLUDED.meta
	                      ELSE EXCLUDED.meta END,
	last_heartbeat = now(),
	updated        = now()
WHERE w.worker_role = 'sensor'
  AND (w.meta->>'instance_id' = ANY($5::text[])
       OR w.status IS DISTINCT FROM 'active'
       OR ` + staleSQL("w", "NULL", false) + `
       OR $6::boolean)
RETURNING w.id, (w.xmax = 0) AS inserted, w.created, w.last_heartbeat`

// holderSQL reads the row that blocked a registration, only to explain the
// refusal; the decision was already made by registerSQL.
var holderSQL = `
SELECT id, worker_role::text, coalesce(host, ''), coalesce(status::text, ''),
	coalesce(capabilities::text, 'null'), coalesce(meta->>'instance_id', ''), coalesce(meta->>'hostname', ''),
	CASE WHEN jsonb_typeof(meta->'pid') = 'number' THEN (meta->>'pid')::float8::bigint ELSE 0 END,
	coalesce(meta->>'boot_id', ''), coalesce(meta->>'pid_namespace', ''), coalesce(meta->>'process_start', ''),
	last_heartbeat, extract(epoch FROM now() - last_heartbeat)::float8,
	worker_role = 'sensor' AND (status IS DISTINCT FROM 'active' OR ` + staleSQL("", "NULL", false) + `)
FROM worker WHERE name = $1`

// RegisterRequirements are what registerSQL relies on beyond the columns
// every era of Attune's worker table has: the role column (migration 00002)
// and the unique constraint on name that ON CONFLICT (name) needs
// (migration 00007; Attune's runtime_type era has none).
var RegisterRequirements = []database.Requirement{
	database.Column("worker", "worker_role"),
	database.UniqueColumn("worker", "name", "registration's INSERT … ON CONFLICT (name) needs it"),
}

// maxRegisterAttempts bounds the retries when the holder changes between the
// refused statement and the read that explains it.
const maxRegisterAttempts = 4

// Register inserts the worker row or takes over the row of the same name,
// in one statement; see registerSQL for when a takeover is allowed. When it
// is not, the result is a *NameInUseError (errors.Is ErrNameInUse) that
// names the holder and what to do.
//
// A sensor row held by a process of this machine (same hostname in meta)
// that no longer runs is taken over without waiting for the grace: a worker
// restarted after a crash would otherwise be refused until its old row went
// stale. The takeover is conditional on that dead instance's id, so it is
// still decided atomically by the database.
func (r *Registration) Register(ctx context.Context, opts RegisterOptions) (Registered, error) {
	if err := r.db.Require(RegisterRequirements...); err != nil {
		return Registered{}, fmt.Errorf("registering sensor worker %q: %w", r.name, err)
	}
	r.mu.Lock()
	caps := r.caps
	r.mu.Unlock()
	capsJSON, err := json.Marshal(caps)
	if err != nil {
		return Registered{}, fmt.Errorf("registering sensor worker %q: encoding capabilities: %w", r.name, err)
	}
	metaJSON, err := json.Marshal(r.inst)
	if err != nil {
		return Registered{}, fmt.Errorf("registering sensor worker %q: encoding meta: %w", r.name, err)
	}
	ours := []string{r.inst.ID}
	for attempt := 0; attempt < maxRegisterAttempts; attempt++ {
		var reg Registered
		var hb *time.Time
		err := r.db.Pool.QueryRow(ctx, registerSQL, r.name, nullString(r.host), string(capsJSON), string(metaJSON),
			ours, opts.Replace, knownCapabilityKeys).Scan(&reg.ID, &reg.Inserted, &reg.Created, &hb)
		if err == nil {
			if hb != nil {
				reg.LastHeartbeat = *hb
			}
			r.mu.Lock()
			r.id = reg.ID
			r.mu.Unlock()
			return reg, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return Registered{}, fmt.Errorf("registering sensor worker %q: %w", r.name, database.RedactError(err))
		}
		holder, found, err := r.readHolder(ctx)
		if err != nil {
			return Registered{}, fmt.Errorf("registering sensor worker %q: reading the worker that holds the name: %w", r.name, database.RedactError(err))
		}
		switch {
		case !found, holder.allowed:
			// Deleted, or gone stale, since the statement: try again.
			continue
		case holder.Role == RoleSensor && contains(ours, holder.InstanceID):
			// Became takeable between the two statements: try again.
			continue
		case holder.Role == RoleSensor && r.holderIsDeadLocalProcess(holder):
			ours = append(ours, holder.InstanceID)
			continue
		}
		return Registered{}, holder.NameInUseError
	}
	return Registered{}, fmt.Errorf("registering sensor worker %q: the row changed under every attempt (another process is registering the same name): retry, or choose another --name", r.name)
}

// holder is the row that refused a registration.
type holder struct {
	*NameInUseError
	allowed bool
	// identity is the holder's proc.Identity from its meta.
	identity proc.Identity
}

func (r *Registration) readHolder(ctx context.Context) (holder, bool, error) {
	e := &NameInUseError{Name: r.name}
	var (
		id      int64
		capsRaw string
		pid     int64
		hb      *time.Time
		silence *float64
		allowed bool
		ident   proc.Identity
		started string
	)
	err := r.db.Pool.QueryRow(ctx, holderSQL, r.name).Scan(&id, &e.Role, &e.Host, &e.Status, &capsRaw,
		&e.InstanceID, &e.Hostname, &pid, &ident.BootID, &ident.PIDNamespace, &started, &hb, &silence, &allowed)
	if errors.Is(err, pgx.ErrNoRows) {
		return holder{}, false, nil
	}
	if err != nil {
		return holder{}, false, err
	}
	e.WorkerID, e.PID, e.LastHeartbeat = id, int(pid), hb
	if silence != nil && *silence > 0 {
		e.Silence = time.Duration(*silence * float64(time.Second))
	}
	var caps Capabilities
	if json.Unmarshal([]byte(capsRaw), &caps) == nil {
		e.Grace = caps.Grace()
	} else {
		e.Grace = DefaultGrace
	}
	ident.StartTime, _ = strconv.ParseUint(started, 10, 64)
	return holder{NameInUseError: e, allowed: allowed, identity: ident}, true, nil
}

// lostRow explains why a conditional write on row id matched nothing.
func (r *Registration) lostRow(ctx context.Context, id int64, what string) error {
	var (
		instance, host, hostname string
		pid                      int64
	)
	err := r.db.Pool.QueryRow(ctx, `
		SELECT coalesce(meta->>'instance_id', ''), coalesce(host, ''), coalesce(meta->>'hostname', ''),
			CASE WHEN jsonb_typeof(meta->'pid') = 'number' THEN (meta->>'pid')::float8::bigint ELSE 0 END
		FROM worker WHERE id = $1`, id).Scan(&instance, &host, &hostname, &pid)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s of sensor worker %q: row %d was deleted (pruned?): %w", what, r.name, id, ErrRowGone)
	}
	if err != nil {
		return fmt.Errorf("%s of sensor worker %q: the row was not updated, and reading it failed: %w", what, r.name, database.RedactError(err))
	}
	if instance == r.inst.ID {
		// Ours after all (e.g. written between the two statements): say so
		// as a retryable error rather than a takeover.
		return fmt.Errorf("%s of sensor worker %q: row %d changed during the update: retry", what, r.name, id)
	}
	return &TakenOverError{Name: r.name, WorkerID: id, Host: host, Hostname: hostname, PID: int(pid), InstanceID: instance}
}

// Deregister marks this instance's row inactive and notes in meta that
// this instance deregistered it (deregistered_instance), so that a
// heartbeat of this instance that reaches the server afterwards — one
// cancelled by the client at shutdown but already sent — can no longer make
// the row active again. A row that is no longer
// ours (taken over, or deleted) is left alone: the error then matches
// ErrTakenOver or ErrRowGone. Deregistering before Register is a no-op.
func (r *Registration) Deregister(ctx context.Context) error {
	id := r.ID()
	if id == 0 {
		// Register may have committed although its caller gave up (ctx
		// cancelled while the answer was on its way): match by name.
		tag, err := r.db.Pool.Exec(ctx, `UPDATE worker SET status = 'inactive', updated = now(),
			meta = meta || jsonb_build_object('deregistered_instance', $2::text)
			WHERE name = $1 AND meta->>'instance_id' = $2`, r.name, r.inst.ID)
		if err != nil {
			return fmt.Errorf("deregistering sensor worker %q: %w", r.name, database.RedactError(err))
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("deregistering sensor worker %q: %w (the registration did not commit)", r.name, ErrNotRegistered)
		}
		return nil
	}
	tag, err := r.db.Pool.Exec(ctx, `UPDATE worker SET status = 'inactive', updated = now(),
		meta = meta || jsonb_build_object('deregistered_instance', $2::text)
		WHERE id = $1 AND meta->>'instance_id' = $2`, id, r.inst.ID)
	if err != nil {
		return fmt.Errorf("deregistering sensor worker %q: %w", r.name, database.RedactError(err))
	}
	if tag.RowsAffected() == 0 {
		return r.lostRow(ctx, id, "deregistration")
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
