package sensors

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/fence"
	"github.com/attune-automation/attunectl/pkg/placement"
	"github.com/attune-automation/attunectl/pkg/workers"
)

// Listed is one sensor with where it runs and its derived state: what
// `sensor list` prints. JSON field names are stable.
type Listed struct {
	ID           int64                  `json:"id"`
	Ref          string                 `json:"ref"`
	Runtime      string                 `json:"runtime"`
	RuntimeName  string                 `json:"runtime_name"`
	Enabled      bool                   `json:"enabled"`
	State        string                 `json:"state"`
	Worker       *string                `json:"worker"`
	WorkerID     *int64                 `json:"worker_id,omitempty"`
	Instance     *string                `json:"worker_instance,omitempty"`
	Workload     *int64                 `json:"workload,omitempty"`
	Generation   int64                  `json:"generation"`
	LeaseExpires *time.Time             `json:"lease_expires_at"`
	LeaseLeft    time.Duration          `json:"-"` // by the database clock
	AssignedAt   *time.Time             `json:"assigned_at,omitempty"`
	Restarts     int                    `json:"restarts"`
	LastEvent    *time.Time             `json:"last_event_at"`
	Reason       string                 `json:"reason"`
	Constraint   string                 `json:"runtime_version,omitempty"`
	Selector     map[string]string      `json:"selector,omitempty"`
	Tolerations  []placement.Toleration `json:"tolerations,omitempty"`
}

// ListOptions select sensors.
type ListOptions struct {
	Refs   []string
	Worker string // only sensors this worker holds
	State  string // one of States
}

// Listing is a list with the database clock it was derived at.
type Listing struct {
	At      time.Time
	Sensors []Listed
}

// ListQuery is the statement List runs (and the benchmark runs through psql).
func ListQuery(facts database.SchemaFacts, opts ListOptions) (string, []any) {
	var args []any
	add := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	var where []string
	if len(opts.Refs) > 0 {
		where = append(where, "s.ref = ANY("+add(opts.Refs)+"::text[])")
	}
	if opts.Worker != "" {
		where = append(where, "w.name = "+add(opts.Worker)+" AND a."+fence.Live)
	}
	q := `SELECT s.id, s.ref, s.runtime_ref, r.name, r.aliases, ` + facts.SensorOn("s") + `, ` + facts.SensorRuns("s") + `, coalesce(s.runtime_version_constraint, ''),
	CASE WHEN jsonb_typeof(s.worker_selector) = 'object' THEN s.worker_selector ELSE '{}' END,
	CASE WHEN jsonb_typeof(s.worker_tolerations) = 'array' THEN s.worker_tolerations ELSE '[]' END,
	` + facts.MoreTolerations("s") + `, ` + facts.MoreSelectors("s") + `,
	sw.id, w.name, a.worker, a.worker_instance::text, coalesce(a.generation, 0), a.lease_expires_at, a.assigned_at,
	coalesce(a.` + fence.Live + `, false),
	extract(epoch FROM a.lease_expires_at - clock_timestamp())::float8,
	st.state, coalesce(st.generation, -1), coalesce(st.restarts, 0), st.quarantined_at IS NOT NULL, coalesce(st.last_reason, ''),
	(SELECT max(e.created) FROM event e WHERE e.source = s.id),
	clock_timestamp()
FROM sensor s
JOIN runtime r ON r.id = s.runtime
LEFT JOIN sensor_workload sw ON sw.sensor = s.id AND sw.workload_key = 'default'
LEFT JOIN sensor_workload_assignment a ON a.workload = sw.id
LEFT JOIN worker w ON w.id = a.worker
LEFT JOIN sensor_workload_state st ON st.workload = sw.id`
	if len(where) > 0 {
		q += "\nWHERE " + strings.Join(where, " AND ")
	}
	return q + "\nORDER BY s.ref", args
}

// liveWorkersSQL reads every sensor worker as eligibility sees it.
var liveWorkersSQL = `
SELECT w.id, w.name, w.worker_role::text, w.capabilities, coalesce(w.cordoned, false),
	w.status = 'active' AND NOT ` + workers.StaleSQL("w") + `,
	(SELECT count(*) FROM sensor_workload_assignment a WHERE a.worker = w.id AND a.` + fence.Live + `)
FROM worker w WHERE w.worker_role::text IN ('sensor', 'hybrid')`

// LiveWorkers reads the sensor workers as eligibility sees them.
func LiveWorkers(ctx context.Context, db *database.DB) ([]placement.WorkerInfo, error) {
	rows, err := db.Pool.Query(ctx, liveWorkersSQL)
	if err != nil {
		return nil, fmt.Errorf("reading sensor workers: %w", err)
	}
	defer rows.Close()
	var out []placement.WorkerInfo
	for rows.Next() {
		var (
			id, held       int64
			name, role     string
			caps           []byte
			cordoned, live bool
		)
		if err := rows.Scan(&id, &name, &role, &caps, &cordoned, &live, &held); err != nil {
			return nil, fmt.Errorf("reading sensor workers: %w", err)
		}
		w := placement.WorkerInfoFromCapabilities(caps)
		w.ID, w.Name, w.Role, w.Cordoned, w.Live, w.Held = id, name, role, cordoned, live, int(held)
		out = append(out, w)
	}
	return out, rows.Err()
}

// List returns sensors with their derived state:
//   - disabled: enabled is false (on Attune's schema: effective_enabled is
//     false, or the sensor is retired);
//   - idle: on Attune's schema, no enabled rule targets its triggers;
//   - assigned (or the supervisor's starting, running, backoff, recorded
//     under the current generation): a worker holds an unexpired lease;
//   - quarantined: the supervisor quarantined the workload (sticky, on the
//     workload, whoever owns it);
//   - unschedulable: no live worker fits; REASON says which requirement no
//     one meets ("no live worker advertises python satisfying >=3.12");
//   - unassigned: some worker fits, nobody holds it yet.
func List(ctx context.Context, db *database.DB, opts ListOptions) (Listing, error) {
	var l Listing
	if opts.State != "" && !slices.Contains(States, opts.State) {
		return l, fmt.Errorf("unknown sensor state %q: use one of %s", opts.State, strings.Join(States, ", "))
	}
	q, args := ListQuery(db.Facts, opts)
	rows, err := db.Pool.Query(ctx, q, args...)
	if err != nil {
		return l, fmt.Errorf("listing sensors: %w", err)
	}
	type pending struct {
		i   int
		req placement.Requirement
	}
	var waiting []pending
	for rows.Next() {
		var (
			s                   Listed
			aliases             []string
			sel, tol, moreTol   []byte
			moreSel             []byte
			worker              *string
			workerID            *int64
			leased, quarantined bool
			left                *float64
			st                  *string
			stGen               int64
			lastReason          string
			runs                bool
		)
		if err := rows.Scan(&s.ID, &s.Ref, &s.Runtime, &s.RuntimeName, &aliases, &s.Enabled, &runs, &s.Constraint, &sel, &tol, &moreTol, &moreSel,
			&s.Workload, &worker, &workerID, &s.Instance, &s.Generation, &s.LeaseExpires, &s.AssignedAt, &leased, &left,
			&st, &stGen, &s.Restarts, &quarantined, &lastReason, &s.LastEvent, &l.At); err != nil {
			rows.Close()
			return l, fmt.Errorf("listing sensors: %w", err)
		}
		_ = json.Unmarshal(sel, &s.Selector)
		_ = json.Unmarshal(tol, &s.Tolerations)
		if leased {
			s.Worker, s.WorkerID = worker, workerID
			if left != nil {
				s.LeaseLeft = time.Duration(*left * float64(time.Second))
			}
		} else {
			s.Instance, s.LeaseExpires, s.AssignedAt = nil, nil, nil
		}
		switch {
		case !s.Enabled:
			s.State = StateDisabled
		case !runs && !leased:
			s.State, s.Reason = StateIdle, "no enabled rule targets its triggers (Attune runs a sensor only for its rules)"
		case quarantined:
			s.State, s.Reason = StateQuarantined, lastReason
		case leased:
			s.State = StateAssigned
			if st != nil && stGen == s.Generation && slices.Contains([]string{StateStarting, StateRunning, StateBackoff}, *st) {
				s.State = *st
				if *st == StateBackoff {
					s.Reason = lastReason
				}
			}
		default:
			req := placement.Requirement{RuntimeName: s.RuntimeName,
				RuntimeAliases: aliases, Constraint: s.Constraint, Selector: s.Selector, Tolerations: s.Tolerations}
			_ = json.Unmarshal(moreTol, &req.MoreTolerations)
			_ = json.Unmarshal(moreSel, &req.MoreSelectors)
			waiting = append(waiting, pending{len(l.Sensors), req})
		}
		l.Sensors = append(l.Sensors, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return l, fmt.Errorf("listing sensors: %w", err)
	}
	l.At = l.At.UTC()
	if len(waiting) > 0 {
		ws, err := LiveWorkers(ctx, db)
		if err != nil {
			return l, err
		}
		// Sensors with the same requirement get the same answer.
		memo := map[string]string{}
		for _, p := range waiting {
			key := requirementKey(p.req)
			reason, ok := memo[key]
			if !ok {
				reason = placement.Explain(ws, p.req)
				memo[key] = reason
			}
			s := &l.Sensors[p.i]
			if reason == "" {
				s.State = StateUnassigned
			} else {
				s.State, s.Reason = StateUnschedulable, reason
			}
		}
	}
	if opts.State != "" {
		kept := l.Sensors[:0]
		for _, s := range l.Sensors {
			if s.State == opts.State {
				kept = append(kept, s)
			}
		}
		l.Sensors = kept
	}
	return l, nil
}

func requirementKey(r placement.Requirement) string {
	b, _ := json.Marshal(r)
	return string(b)
}
