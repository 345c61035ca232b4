// Package workers owns the shared worker table: the model, sensor
// registration (register, heartbeat, deregister, capabilities), and the
// operator's queries (list, stale, prune).
//
// Liveness is derived from the heartbeat's age, never trusted from status: a
// worker whose status is 'active' but whose last heartbeat is older than its
// grace is stale. The grace is three heartbeat intervals as the worker
// advertises in capabilities.heartbeat_interval (seconds), or DefaultGrace
// when it advertises none; an operator may override it (--older-than). Every
// statement evaluates staleness with the database clock, now(), so host clock
// skew never makes a live worker look dead.
package workers

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/attune-automation/attunectl/pkg/database"
)

// Roles of the worker_role_enum.
const (
	RoleAction = "action"
	RoleSensor = "sensor"
	RoleHybrid = "hybrid"
)

// Statuses of the worker_status_enum, plus the derived StateStale.
const (
	StatusActive   = "active"
	StatusInactive = "inactive"
	StatusBusy     = "busy"
	StatusError    = "error"
	StateStale     = "stale"
)

// DefaultHeartbeatInterval is assumed for a worker that advertises none: the
// default heartbeat_interval of Attune's registration design.
const DefaultHeartbeatInterval = 30 * time.Second

// GraceIntervals is how many heartbeat intervals may pass before a worker is stale.
const GraceIntervals = 3

// DefaultGrace is the grace of a worker that advertises no interval.
const DefaultGrace = GraceIntervals * DefaultHeartbeatInterval

// Capabilities is what a sensor worker advertises in worker.capabilities.
// The first three keys are Attune's registration keys, exactly; the rest serve monitoring.
// Keys written by other tools are kept in Extra and written back untouched.
type Capabilities struct {
	Runtimes             []string `json:"runtimes"`
	MaxConcurrentSensors int      `json:"max_concurrent_sensors"`
	SensorVersion        string   `json:"sensor_version"`
	// RuntimeVersions maps a detected runtime name to the version its
	// verification command printed ("python": "3.11.7").
	RuntimeVersions map[string]string `json:"runtime_versions,omitempty"`
	// HeartbeatInterval is this worker's interval in seconds, so that
	// staleness is judged per worker.
	HeartbeatInterval float64 `json:"heartbeat_interval,omitempty"`
	// DetectionSource says where Runtimes came from: env, config or database.
	DetectionSource string `json:"detection_source,omitempty"`

	Extra map[string]json.RawMessage `json:"-"`
}

var knownCapabilityKeys = []string{"runtimes", "max_concurrent_sensors", "sensor_version", "runtime_versions", "heartbeat_interval", "detection_source"}

// MarshalJSON writes the known keys and every extra key.
func (c Capabilities) MarshalJSON() ([]byte, error) {
	type plain Capabilities
	b, err := json.Marshal(plain(c))
	if err != nil || len(c.Extra) == 0 {
		return b, err
	}
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range c.Extra {
		if _, known := m[k]; !known {
			m[k] = v
		}
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads the known keys leniently (a value of the wrong type
// written by another tool is kept in Extra, not an error) and keeps the rest.
func (c *Capabilities) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*c = Capabilities{}
	for k, v := range m {
		var err error
		switch k {
		case "runtimes":
			err = json.Unmarshal(v, &c.Runtimes)
		case "max_concurrent_sensors":
			err = json.Unmarshal(v, &c.MaxConcurrentSensors)
		case "sensor_version":
			err = json.Unmarshal(v, &c.SensorVersion)
		case "runtime_versions":
			err = json.Unmarshal(v, &c.RuntimeVersions)
		case "heartbeat_interval":
			err = json.Unmarshal(v, &c.HeartbeatInterval)
		case "detection_source":
			err = json.Unmarshal(v, &c.DetectionSource)
		default:
			err = fmt.Errorf("extra")
		}
		if err != nil {
			if c.Extra == nil {
				c.Extra = map[string]json.RawMessage{}
			}
			c.Extra[k] = v
		}
	}
	return nil
}

// Grace returns how long this worker may be silent before it is stale.
func (c Capabilities) Grace() time.Duration {
	if c.HeartbeatInterval > 0 {
		return time.Duration(GraceIntervals * c.HeartbeatInterval * float64(time.Second))
	}
	return DefaultGrace
}

// Worker is one row of the worker table, with its derived state.
type Worker struct {
	ID            int64          `json:"id"`
	Name          string         `json:"name"`
	Type          string         `json:"type"`
	Role          string         `json:"role"`
	Status        string         `json:"status"` // as stored
	State         string         `json:"state"`  // derived: stale replaces active when the heartbeat is too old
	Host          string         `json:"host"`
	Port          *int           `json:"port,omitempty"`
	Capabilities  Capabilities   `json:"capabilities"`
	Meta          map[string]any `json:"meta,omitempty"`
	LastHeartbeat *time.Time     `json:"last_heartbeat"`
	// Silence is how long since the last heartbeat, by the database clock.
	Silence time.Duration `json:"-"`
	Created time.Time     `json:"created"`
	Updated time.Time     `json:"updated"`
}

// staleSQL is the staleness test as SQL on the worker table's columns,
// evaluated by the database at execution time. It is the one definition
// list, stale, prune and register share. alias qualifies the columns ("w"
// inside ON CONFLICT, where a bare last_heartbeat is ambiguous; "" for
// none). graceParam (an interval parameter such as "$3", or "NULL" for "per
// worker") overrides the worker's own grace.
//
// column says where the worker's own grace comes from: false evaluates it
// from capabilities (ownGraceSQL), which works on any database, migrated
// or not — the registration statements, which test one row, use it so;
// true reads the plain column heartbeat_grace (graceColumnSQL), which the
// inspection and prune statements, which test every row, use on a schema
// that has it (migration 00010; database.DB.Facts says so at connect).
func staleSQL(alias, graceParam string, column bool) string {
	return `(` + col(alias, "last_heartbeat") + ` IS NULL OR ` + col(alias, "last_heartbeat") + ` < now() - ` + graceSQL(alias, graceParam, column) + `)`
}

// graceSQL is the grace staleSQL judges a worker by, as an interval.
func graceSQL(alias, graceParam string, column bool) string {
	own := ownGraceSQL(alias)
	if column {
		own = graceColumnSQL(alias)
	}
	return `coalesce(` + graceParam + `::interval, ` + own + `)`
}

// ownGraceSQL is a worker's own grace from its capabilities: three of the
// heartbeat intervals it advertises, or of the default when it advertises
// none or something that is not a positive number (another tool wrote it),
// as Capabilities.Grace. attunectl_worker_grace (migration 00010) is the
// same expression.
func ownGraceSQL(alias string) string {
	c := col(alias, "capabilities")
	return `make_interval(secs => ` + fmt.Sprint(GraceIntervals) + ` * CASE WHEN jsonb_typeof(` + c + `->'heartbeat_interval') = 'number'
			AND (` + c + `->>'heartbeat_interval')::float8 > 0
			THEN (` + c + `->>'heartbeat_interval')::float8 ELSE ` + fmt.Sprint(DefaultHeartbeatInterval.Seconds()) + ` END)`
}

// graceColumnSQL reads a worker's grace from the column heartbeat_grace
// (migration 00010), which a trigger keeps equal to
// attunectl_worker_grace(capabilities) whenever capabilities are written,
// so the test reads one interval per row instead of evaluating jsonb; a row
// the backfill (migration 00011) has not reached yet falls back to the
// function. Neither is written by a heartbeat, so neither costs a heartbeat
// its HOT update.
func graceColumnSQL(alias string) string {
	return `coalesce(` + col(alias, "heartbeat_grace") + `, attunectl_worker_grace(` + col(alias, "capabilities") + `))`
}

// schema is what the worker statements need to know of the database,
// learned once at connect (database.DB.Facts), never asked per statement.
type schema struct {
	// graceColumn: worker.heartbeat_grace exists (migration 00010).
	graceColumn bool
	// placement: the assignment table and the cordon columns exist, so a
	// listing can count the sensors each worker holds.
	placement bool
}

func schemaOf(db *database.DB) schema {
	return schema{
		graceColumn: db.Facts.Has("worker", "heartbeat_grace"),
		placement:   db.Facts.Found["sensor_workload_assignment"] != "" && db.Facts.Has("worker", "cordoned_by_name"),
	}
}

// col qualifies column c with alias, when there is one.
func col(alias, c string) string {
	if alias == "" {
		return c
	}
	return alias + "." + c
}
