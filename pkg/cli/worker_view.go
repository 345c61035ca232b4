package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/attune-automation/attunectl/pkg/output"
	"github.com/attune-automation/attunectl/pkg/placement"
	"github.com/attune-automation/attunectl/pkg/workers"
)

// workerView is a worker in -o json and -o yaml. The field names are part
// of attunectl's interface: add fields, never rename them.
type workerView struct {
	ID               int64                 `json:"id"`
	Name             string                `json:"name"`
	Role             string                `json:"role"`
	Type             string                `json:"type"`
	State            string                `json:"state"`  // derived: stale replaces active
	Status           string                `json:"status"` // as stored
	Host             string                `json:"host"`
	Port             *int                  `json:"port"`
	Runtimes         []string              `json:"runtimes"`
	RuntimeVersions  map[string]string     `json:"runtime_versions"`
	InstanceID       string                `json:"instance_id"`
	LastHeartbeat    *string               `json:"last_heartbeat"`
	SilentForSeconds *float64              `json:"silent_for_seconds"`
	GraceSeconds     float64               `json:"grace_seconds"`
	Capabilities     *workers.Capabilities `json:"capabilities"` // null when the worker advertises none
	Meta             map[string]any        `json:"meta"`
	Created          string                `json:"created"`
	Updated          string                `json:"updated"`
	// Cordoned and Sensors (live leases held) are left out where the
	// command does not read them (worker prune).
	Cordoned     *bool   `json:"cordoned,omitempty"`
	CordonReason string  `json:"cordon_reason,omitempty"`
	CordonedBy   string  `json:"cordoned_by,omitempty"`
	CordonedAt   *string `json:"cordoned_at,omitempty"`
	Sensors      *int    `json:"sensors,omitempty"`
}

// workerListing is a listing of workers with what placement knows about
// each (cordon, sensors held), by worker id; Placement is nil where the
// command does not read it. The listings that are read whole (prune's
// preview, tests) print through it; worker list and worker stale stream
// workers.Row instead.
type workerListing struct {
	workers.Listing
	Placement map[int64]placement.WorkerState
}

// rows turns the listing into the rows workerSpec prints.
func (l workerListing) rows() []workers.Row {
	rows := make([]workers.Row, len(l.Workers))
	for i, w := range l.Workers {
		r := workers.Row{Worker: w, At: l.At, Grace: l.GraceOf(w), InstanceID: instanceOf(w)}
		if ps, ok := l.Placement[w.ID]; ok {
			r.Placement = workers.Placement{Cordoned: ps.Cordoned, Reason: ps.Reason, By: ps.By, At: ps.At, Held: ps.Held}
		}
		rows[i] = r
	}
	return rows
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// viewOf is r's element of -o json and -o yaml; withPlacement adds the
// cordon and the sensors held, which prune does not read.
func viewOf(r workers.Row, withPlacement bool) workerView {
	w := r.Worker
	v := workerView{
		ID: w.ID, Name: w.Name, Role: w.Role, Type: w.Type, State: w.State, Status: w.Status,
		Host: w.Host, Port: w.Port,
		Runtimes:        w.Capabilities.Runtimes,
		RuntimeVersions: w.Capabilities.RuntimeVersions,
		InstanceID:      r.InstanceID,
		GraceSeconds:    r.Grace.Seconds(),
		Meta:            w.Meta,
		Created:         rfc3339(w.Created),
		Updated:         rfc3339(w.Updated),
	}
	if c := w.Capabilities; c.Runtimes != nil || c.MaxConcurrentSensors != 0 || c.SensorVersion != "" || c.RuntimeVersions != nil ||
		c.HeartbeatInterval != 0 || c.DetectionSource != "" || len(c.Extra) > 0 {
		v.Capabilities = &c
	}
	if v.Runtimes == nil {
		v.Runtimes = []string{}
	}
	if v.RuntimeVersions == nil {
		v.RuntimeVersions = map[string]string{}
	}
	if v.Meta == nil && r.MetaJSON != nil {
		_ = json.Unmarshal(r.MetaJSON, &v.Meta) // read as List reads it: what is not an object is {}
	}
	if v.Meta == nil {
		v.Meta = map[string]any{}
	}
	if withPlacement {
		ps := r.Placement
		v.Cordoned, v.Sensors = &ps.Cordoned, &ps.Held
		v.CordonReason, v.CordonedBy = ps.Reason, ps.By
		if ps.At != nil {
			at := rfc3339(*ps.At)
			v.CordonedAt = &at
		}
	}
	if w.LastHeartbeat != nil {
		s := rfc3339(*w.LastHeartbeat)
		secs := math.Round(w.Silence.Seconds()*1000) / 1000
		v.LastHeartbeat, v.SilentForSeconds = &s, &secs
	}
	return v
}

func instanceOf(w workers.Worker) string {
	if s, ok := w.Meta["instance_id"].(string); ok {
		return s
	}
	return ""
}

// workerSpec is how worker list, worker stale and prune --dry-run print
// workers. It is pure given the rows: every age is relative to the row's
// At, the database's clock when the statement ran, which is also the clock
// that derived the states. stale selects the `worker stale` table (SILENT
// FOR, and the heartbeat as a time); withPlacement the SENSORS and
// CORDONED columns and the cordon in STATUS, which prune does not read.
//
// Each format reads only what workerFields(format) asks the stream for.
func workerSpec(stale, withPlacement bool) output.Spec[workers.Row] {
	col := func(h string, cell func(workers.Row) string) output.Column[workers.Row] {
		return output.Column[workers.Row]{Header: h, Cell: cell}
	}
	// worker list and worker stale show the last heartbeat the same way,
	// as an age; stale adds the grace it was judged by, and its -o wide
	// the heartbeat's time.
	heartbeat := func(r workers.Row) string { return output.Age(r.At, r.LastHeartbeat) }
	base := []output.Column[workers.Row]{
		col("NAME", func(r workers.Row) string { return r.Name }),
		col("ROLE", func(r workers.Row) string { return r.Role }),
		{Header: "STATUS", Cell: func(r workers.Row) string {
			if r.Placement.Cordoned {
				return r.State + ",cordoned"
			}
			return r.State
		}, Color: stateColor},
		col("HOST", func(r workers.Row) string { return r.Host }),
		col("RUNTIMES", func(r workers.Row) string { return strings.Join(r.Capabilities.Runtimes, ",") }),
		col("SENSORS", func(r workers.Row) string { return strconv.Itoa(r.Placement.Held) }),
		col("LAST HEARTBEAT", heartbeat),
	}
	if !withPlacement {
		// worker prune: it does not read placement; show nothing rather than guesses.
		base = slices.Delete(base, 5, 6)
	}
	cordoned := col("CORDONED", func(r workers.Row) string {
		ps := r.Placement
		if !ps.Cordoned {
			return "no"
		}
		var parts []string
		if ps.Reason != "" {
			parts = append(parts, ps.Reason)
		}
		if ps.By != "" {
			parts = append(parts, "by "+ps.By)
		}
		if ps.At != nil {
			parts = append(parts, output.Age(r.At, ps.At))
		}
		if len(parts) == 0 {
			return "yes"
		}
		return "yes (" + strings.Join(parts, ", ") + ")"
	})
	grace := col("GRACE", func(r workers.Row) string { return output.Duration(r.Grace) })
	heartbeatAt := col("HEARTBEAT AT", func(r workers.Row) string {
		if r.LastHeartbeat == nil {
			return "never"
		}
		return r.LastHeartbeat.UTC().Format(time.RFC3339)
	})
	var extra []output.Column[workers.Row]
	if withPlacement {
		extra = append(extra, cordoned)
	}
	extra = append(extra,
		col("ID", func(r workers.Row) string { return fmt.Sprint(r.ID) }),
		col("TYPE", func(r workers.Row) string { return r.Type }),
		col("VERSIONS", func(r workers.Row) string { return versionsOf(r.Worker) }),
		col("CREATED", func(r workers.Row) string { return output.Age(r.At, &r.Created) }),
		col("INSTANCE", func(r workers.Row) string { return r.InstanceID }),
	)
	table, wide := slices.Clone(base), slices.Clone(base)
	if stale {
		table = append(table, grace)
		wide = append(wide, grace, heartbeatAt)
	}
	return output.Spec[workers.Row]{
		Columns: table,
		Wide:    append(wide, extra...),
		Name:    func(r workers.Row) string { return r.Name },
		View:    func(r workers.Row) any { return viewOf(r, withPlacement) },
		AppendJSON: func(b []byte, r workers.Row) ([]byte, bool) {
			return appendWorkerJSON(b, r, withPlacement)
		},
	}
}

// workerFields is what the stream reads for format f: names only for -o
// name, the table's few columns (no capabilities or meta decoded) for the
// table, everything for json and yaml. The heartbeat interval, which the
// table shows only as the colour of a late worker, is read only when the
// palette colours.
func workerFields(f output.Format, withPlacement bool, p output.Palette) workers.Fields {
	var fs workers.Fields
	switch f {
	case output.Name:
		return workers.FieldsName
	case output.Wide:
		fs = workers.FieldsWide
	case output.JSON, output.YAML:
		fs = workers.FieldsJSON
	default:
		fs = workers.FieldsTable
		if !p.On {
			fs &^= workers.FieldLate
		}
	}
	if withPlacement {
		fs |= workers.FieldPlacement
	}
	return fs
}

// workerFormats are the formats of every command that prints workers.
var workerFormats = workerSpec(false, true).Formats()

// printWorkers prints a listing read whole in format f (see workerSpec).
func printWorkers(w io.Writer, l workerListing, f output.Format, p output.Palette, stale bool) error {
	return workerSpec(stale, l.Placement != nil).PrintAll(w, f, output.PrinterOptions{Palette: p}, l.rows())
}

// stateColor colours a worker's derived state: active green (yellow when
// late), stale and error red, inactive dim; busy is alive and green; states
// attunectl does not know stay plain.
func stateColor(r workers.Row) output.Color {
	switch r.State {
	case workers.StatusActive:
		if r.Late() {
			return output.Yellow
		}
		return output.Green
	case workers.StatusBusy:
		return output.Green
	case workers.StateStale, workers.StatusError:
		return output.Red
	case workers.StatusInactive:
		return output.Dim
	}
	return output.NoColor
}

func versionsOf(w workers.Worker) string {
	v := w.Capabilities.RuntimeVersions
	keys := slices.Sorted(maps.Keys(v))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+v[k])
	}
	return strings.Join(parts, ",")
}
