package workers

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/attune-automation/attunectl/pkg/database"
)

// Errors a Registration returns, matched with errors.Is. Each is carried by
// a typed error (*NameInUseError, *TakenOverError) or wrapped with the
// worker's name, so the text says what to do.
var (
	// ErrNameInUse: Register found the name held by a live worker of another
	// instance, or by a worker of another role.
	ErrNameInUse = errors.New("worker name in use")
	// ErrTakenOver: the row now belongs to another instance (it registered
	// with --replace, or re-registered the name after a prune). This
	// instance must stop.
	ErrTakenOver = errors.New("worker row taken over by another instance")
	// ErrRowGone: the row was deleted (pruned). Register again.
	ErrRowGone = errors.New("worker row no longer exists")
	// ErrNotRegistered: the Registration has not registered yet.
	ErrNotRegistered = errors.New("sensor worker is not registered")
)

// Instance identifies one process of a sensor worker. It is stored in the
// row's meta; every write after Register is conditional on meta.instance_id,
// so that a process never heartbeats or deregisters a row that another
// process has taken over.
type Instance struct {
	ID        string    `json:"instance_id"`
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
	// Hostname is the machine's own name (os.Hostname), which may differ
	// from the host the worker advertises.
	Hostname string `json:"hostname"`
	Version  string `json:"version"`
}

// NewInstance describes this process with a fresh random instance id.
func NewInstance(version string) Instance {
	h, _ := os.Hostname()
	return Instance{
		ID:        rand.Text(),
		PID:       os.Getpid(),
		StartedAt: time.Now().UTC().Truncate(time.Millisecond),
		Hostname:  h,
		Version:   version,
	}
}

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
// seed's SensorWorkerRegistration. Its methods are safe for concurrent use.
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

// Name is the worker's name.
func (r *Registration) Name() string { return r.name }

// Host is the host the worker advertises.
func (r *Registration) Host() string { return r.host }

// Instance is this process's identity.
func (r *Registration) Instance() Instance { return r.inst }

// ID is the worker row's id, 0 before Register.
func (r *Registration) ID() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.id
}

// Capabilities returns a copy of the capabilities this instance advertises.
func (r *Registration) Capabilities() Capabilities {
	r.mu.Lock()
	defer r.mu.Unlock()
	return cloneCapabilities(r.caps)
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
	                      THEN w.meta || EXCLUDED.meta
	                      ELSE EXCLUDED.meta END,
	last_heartbeat = now(),
	updated        = now()
WHERE w.worker_role = 'sensor'
  AND (w.meta->>'instance_id' = ANY($5::text[])
       OR w.status IS DISTINCT FROM 'active'
       OR ` + staleSQL("w", "NULL") + `
       OR $6::boolean)
RETURNING w.id, (w.xmax = 0) AS inserted, w.created, w.last_heartbeat`

// holderSQL reads the row that blocked a registration, only to explain the
// refusal; the decision was already made by registerSQL.
var holderSQL = `
SELECT id, worker_role::text, coalesce(host, ''), coalesce(status::text, ''),
	coalesce(capabilities::text, 'null'), coalesce(meta->>'instance_id', ''), coalesce(meta->>'hostname', ''),
	CASE WHEN jsonb_typeof(meta->'pid') = 'number' THEN (meta->>'pid')::float8::bigint ELSE 0 END,
	last_heartbeat, extract(epoch FROM now() - last_heartbeat)::float8,
	worker_role = 'sensor' AND (status IS DISTINCT FROM 'active' OR ` + staleSQL("", "NULL") + `)
FROM worker WHERE name = $1`

// RegisterRequirements are what registerSQL relies on beyond the columns
// every era of Attune's worker table has: the role column (migration 00002)
// and the unique constraint on name that ON CONFLICT (name) needs
// (migration 00007; the seed's era of Attune's table has none).
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
	)
	err := r.db.Pool.QueryRow(ctx, holderSQL, r.name).Scan(&id, &e.Role, &e.Host, &e.Status, &capsRaw,
		&e.InstanceID, &e.Hostname, &pid, &hb, &silence, &allowed)
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
	return holder{NameInUseError: e, allowed: allowed}, true, nil
}

// holderIsDeadLocalProcess reports whether the holder ran on this machine
// and its process is gone (or its pid is now ours: a container restarted
// with the same hostname and pid).
func (r *Registration) holderIsDeadLocalProcess(h holder) bool {
	if h.InstanceID == "" || h.Hostname == "" || h.Hostname != r.inst.Hostname || h.PID <= 0 {
		return false
	}
	if h.PID == r.inst.PID {
		return true
	}
	return !processAlive(h.PID)
}

// processAlive reports whether pid runs on this machine. When in doubt it
// says yes: a wrong "alive" only delays a takeover until the row is stale.
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return runtime.GOOS != "windows"
	}
	if runtime.GOOS == "windows" {
		return true
	}
	err = p.Signal(syscall.Signal(0))
	return !errors.Is(err, os.ErrProcessDone) && !errors.Is(err, syscall.ESRCH)
}

// NameInUseError says who holds a worker name that Register may not take.
type NameInUseError struct {
	Name       string
	WorkerID   int64
	Role       string // the holder's worker_role
	Host       string // the holder's host column
	Hostname   string // meta.hostname: the machine the holder runs on
	PID        int    // meta.pid
	InstanceID string // meta.instance_id
	Status     string
	// LastHeartbeat is nil when the holder never heartbeat.
	LastHeartbeat *time.Time
	// Silence is the time since LastHeartbeat by the database clock.
	Silence time.Duration
	// Grace is how long the holder may be silent before it is stale.
	Grace time.Duration
}

func (e *NameInUseError) Error() string {
	where := e.Host
	if where == "" {
		where = e.Hostname
	}
	if where == "" {
		where = "an unknown host"
	} else {
		where = "host " + where
	}
	if e.Role != RoleSensor {
		article := "a"
		if strings.HasPrefix(e.Role, "a") {
			article = "an"
		}
		return fmt.Sprintf("registering sensor worker %q: the name belongs to %s %s worker (id %d) on %s, and a sensor never takes over another role's row, not even with --replace: choose another name with --name or sensor.worker_name",
			e.Name, article, e.Role, e.WorkerID, where)
	}
	proc := ""
	if e.PID > 0 {
		proc = fmt.Sprintf(" (pid %d)", e.PID)
	}
	wait := e.Grace - e.Silence
	if wait < time.Second {
		wait = time.Second
	}
	return fmt.Sprintf("registering sensor worker %q: the name is held by a live sensor worker on %s%s, last heartbeat %s ago: stop that worker, pass --replace to take the name over, wait %s until it is stale (no heartbeat for %s), or choose another --name",
		e.Name, where, proc, roundDuration(e.Silence), roundDuration(wait), roundDuration(e.Grace))
}

// Is matches ErrNameInUse.
func (e *NameInUseError) Is(target error) bool { return target == ErrNameInUse }

// TakenOverError says that another instance now holds this worker's row.
type TakenOverError struct {
	Name       string
	WorkerID   int64
	Host       string
	Hostname   string
	PID        int
	InstanceID string
}

func (e *TakenOverError) Error() string {
	by := e.Hostname
	if by == "" {
		by = e.Host
	}
	if by == "" {
		by = "an unknown host"
	}
	proc := ""
	if e.PID > 0 {
		proc = fmt.Sprintf(", pid %d", e.PID)
	}
	return fmt.Sprintf("sensor worker %q (id %d) was taken over by another instance (on %s%s, instance %s), probably started with --replace: this instance stops; if both should run, give each its own --name",
		e.Name, e.WorkerID, by, proc, e.InstanceID)
}

// Is matches ErrTakenOver.
func (e *TakenOverError) Is(target error) bool { return target == ErrTakenOver }

// heartbeatSQL is the hot path: one statement, one round trip. It touches
// only last_heartbeat and status (unchanged while the worker is active, so
// no index entry changes and PostgreSQL can update the row in place, HOT),
// and proves in its WHERE that the row is still this instance's.
//
// Its commit does not wait for the WAL to reach the disk: set_config(…,
// true) sets synchronous_commit for this statement's own transaction only
// (registration, deregistration and capability updates stay as durable as
// the server is configured), without the round trips of BEGIN/SET LOCAL.
// A heartbeat lost in a server crash costs nothing (the next one follows
// within an interval). On a durable server not waiting for the WAL flush
// takes a heartbeat from about 400 to 115 µs, and at 3,333 heartbeats/s its
// p99 from 1.9 to 0.9 ms and the server's WAL fsyncs from 1,378/s to 5/s
// (README, Scale; cmd/loadsim). An operator who wants durable heartbeats
// sets attunectl.heartbeat_synchronous_commit (ALTER ROLE … SET
// attunectl.heartbeat_synchronous_commit = 'on'); it takes any value of
// synchronous_commit.
const heartbeatSQL = `
WITH durability AS MATERIALIZED (
	SELECT set_config('synchronous_commit',
		coalesce(nullif(current_setting('attunectl.heartbeat_synchronous_commit', true), ''), 'off'), true))
UPDATE worker SET last_heartbeat = now(), status = 'active'
FROM durability
WHERE id = $1 AND meta->>'instance_id' = $2
RETURNING last_heartbeat`

// HeartbeatSQL is the heartbeat statement (parameters: worker id, instance
// id), for benchmarks that replay it on connections of their own, such as
// cmd/workerbench, so that they measure exactly what sensor workers send.
func HeartbeatSQL() string { return heartbeatSQL }

// Heartbeat sets last_heartbeat to the database's now() and status to
// active, and returns the new last_heartbeat. When the row is no longer
// this instance's, it finds out why (a second statement, only then): the
// error matches ErrRowGone when the row was deleted (Register again) or is
// a *TakenOverError (ErrTakenOver) when another instance holds it (stop).
func (r *Registration) Heartbeat(ctx context.Context) (time.Time, error) {
	id := r.ID()
	if id == 0 {
		return time.Time{}, fmt.Errorf("heartbeat of sensor worker %q: %w (call Register first)", r.name, ErrNotRegistered)
	}
	var at time.Time
	err := r.db.Pool.QueryRow(ctx, heartbeatSQL, id, r.inst.ID).Scan(&at)
	if err == nil {
		return at, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, fmt.Errorf("heartbeat of sensor worker %q: %w", r.name, database.RedactError(err))
	}
	return time.Time{}, r.lostRow(ctx, id, "heartbeat")
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

// Deregister marks this instance's row inactive. A row that is no longer
// ours (taken over, or deleted) is left alone: the error then matches
// ErrTakenOver or ErrRowGone. Deregistering before Register is a no-op.
func (r *Registration) Deregister(ctx context.Context) error {
	id := r.ID()
	if id == 0 {
		// Register may have committed although its caller gave up (ctx
		// cancelled while the answer was on its way): match by name.
		_, err := r.db.Pool.Exec(ctx, `UPDATE worker SET status = 'inactive', updated = now()
			WHERE name = $1 AND meta->>'instance_id' = $2`, r.name, r.inst.ID)
		if err != nil {
			return fmt.Errorf("deregistering sensor worker %q: %w", r.name, database.RedactError(err))
		}
		return nil
	}
	tag, err := r.db.Pool.Exec(ctx, `UPDATE worker SET status = 'inactive', updated = now()
		WHERE id = $1 AND meta->>'instance_id' = $2`, id, r.inst.ID)
	if err != nil {
		return fmt.Errorf("deregistering sensor worker %q: %w", r.name, database.RedactError(err))
	}
	if tag.RowsAffected() == 0 {
		return r.lostRow(ctx, id, "deregistration")
	}
	return nil
}

// UpdateCapabilities replaces the capabilities this instance advertises and,
// once registered, writes them in one statement that keeps every key other
// tools wrote (keys this tool does not own).
func (r *Registration) UpdateCapabilities(ctx context.Context, caps Capabilities) error {
	caps = cloneCapabilities(caps)
	r.mu.Lock()
	r.caps = caps
	id := r.id
	r.mu.Unlock()
	if id == 0 {
		return nil
	}
	b, err := json.Marshal(caps)
	if err != nil {
		return fmt.Errorf("updating capabilities of sensor worker %q: %w", r.name, err)
	}
	tag, err := r.db.Pool.Exec(ctx, `
		UPDATE worker SET
			capabilities = CASE WHEN jsonb_typeof(capabilities) = 'object'
			                    THEN (capabilities - $4::text[]) || $3::jsonb ELSE $3::jsonb END,
			updated = now()
		WHERE id = $1 AND meta->>'instance_id' = $2`, id, r.inst.ID, string(b), knownCapabilityKeys)
	if err != nil {
		return fmt.Errorf("updating capabilities of sensor worker %q: %w", r.name, database.RedactError(err))
	}
	if tag.RowsAffected() == 0 {
		return r.lostRow(ctx, id, "capability update")
	}
	return nil
}

// AddCapability sets one capability key (the seed's add_capability): a key
// of Capabilities (which must then have that field's type) or any other key,
// kept in Extra. Once registered, the key is written at once; other keys of
// the row are untouched.
func (r *Registration) AddCapability(ctx context.Context, key string, value any) error {
	raw, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("adding capability %q: encoding the value: %w", key, err)
	}
	r.mu.Lock()
	next, err := withCapability(r.caps, key, raw)
	if err != nil {
		r.mu.Unlock()
		return err
	}
	r.caps = next
	id := r.id
	r.mu.Unlock()
	if id == 0 {
		return nil
	}
	tag, err := r.db.Pool.Exec(ctx, `
		UPDATE worker SET
			capabilities = CASE WHEN jsonb_typeof(capabilities) = 'object' THEN capabilities ELSE '{}'::jsonb END
			               || jsonb_build_object($3::text, $4::jsonb),
			updated = now()
		WHERE id = $1 AND meta->>'instance_id' = $2`, id, r.inst.ID, key, string(raw))
	if err != nil {
		return fmt.Errorf("adding capability %q to sensor worker %q: %w", key, r.name, database.RedactError(err))
	}
	if tag.RowsAffected() == 0 {
		return r.lostRow(ctx, id, "capability update")
	}
	return nil
}

// withCapability returns caps with key set to raw.
func withCapability(caps Capabilities, key string, raw json.RawMessage) (Capabilities, error) {
	if key == "" {
		return caps, errors.New("adding capability: the key is empty")
	}
	if !contains(knownCapabilityKeys, key) {
		caps = cloneCapabilities(caps)
		if caps.Extra == nil {
			caps.Extra = map[string]json.RawMessage{}
		}
		caps.Extra[key] = raw
		return caps, nil
	}
	b, err := json.Marshal(caps)
	if err != nil {
		return caps, err
	}
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal(b, &m); err != nil {
		return caps, err
	}
	m[key] = raw
	b, _ = json.Marshal(m)
	var next Capabilities
	if err := json.Unmarshal(b, &next); err != nil {
		return caps, err
	}
	if _, wrong := next.Extra[key]; wrong {
		return caps, fmt.Errorf("adding capability %q: %s does not have the type of that key (see the capabilities in the README)", key, raw)
	}
	return next, nil
}

func cloneCapabilities(c Capabilities) Capabilities {
	c.Runtimes = append([]string{}, c.Runtimes...) // never null: the seed's key is a list
	if c.RuntimeVersions != nil {
		m := make(map[string]string, len(c.RuntimeVersions))
		for k, v := range c.RuntimeVersions {
			m[k] = v
		}
		c.RuntimeVersions = m
	}
	if c.Extra != nil {
		m := make(map[string]json.RawMessage, len(c.Extra))
		for k, v := range c.Extra {
			m[k] = v
		}
		c.Extra = m
	}
	return c
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

// roundDuration shortens a duration for messages: 12s, 1m30s, 250ms.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= 10*time.Second:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	default:
		return d.Round(time.Millisecond)
	}
}
