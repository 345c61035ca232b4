package cli

import (
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
// command does not read it.
type workerListing struct {
	workers.Listing
	Placement map[int64]placement.WorkerState
}

// placementOf returns the placement state of w, ok false when unknown.
func (l workerListing) placementOf(w workers.Worker) (placement.WorkerState, bool) {
	if l.Placement == nil {
		return placement.WorkerState{}, false
	}
	return l.Placement[w.ID], true
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func viewOf(l workerListing, w workers.Worker) workerView {
	v := workerView{
		ID: w.ID, Name: w.Name, Role: w.Role, Type: w.Type, State: w.State, Status: w.Status,
		Host: w.Host, Port: w.Port,
		Runtimes:        w.Capabilities.Runtimes,
		RuntimeVersions: w.Capabilities.RuntimeVersions,
		InstanceID:      instanceOf(w),
		GraceSeconds:    l.GraceOf(w).Seconds(),
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
	if v.Meta == nil {
		v.Meta = map[string]any{}
	}
	if ps, ok := l.placementOf(w); ok {
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
// workers. It is pure given the listing: every age is relative to l.At, the
// database's clock when the statement ran, which is also the clock that
// derived the states. stale selects the `worker stale` table (SILENT FOR,
// and the heartbeat as a time).
func workerSpec(l workerListing, stale bool) output.Spec[workers.Worker] {
	col := func(h string, cell func(workers.Worker) string) output.Column[workers.Worker] {
		return output.Column[workers.Worker]{Header: h, Cell: cell}
	}
	heartbeat := func(w workers.Worker) string {
		if stale && w.LastHeartbeat != nil {
			return w.LastHeartbeat.UTC().Format(time.RFC3339)
		}
		return output.Age(l.At, w.LastHeartbeat)
	}
	base := []output.Column[workers.Worker]{
		col("NAME", func(w workers.Worker) string { return w.Name }),
		col("ROLE", func(w workers.Worker) string { return w.Role }),
		{Header: "STATUS", Cell: func(w workers.Worker) string {
			if ps, _ := l.placementOf(w); ps.Cordoned {
				return w.State + ",cordoned"
			}
			return w.State
		}, Color: func(w workers.Worker) output.Color { return stateColor(l.Listing, w) }},
		col("HOST", func(w workers.Worker) string { return w.Host }),
		col("RUNTIMES", func(w workers.Worker) string { return strings.Join(w.Capabilities.Runtimes, ",") }),
		col("SENSORS", func(w workers.Worker) string {
			ps, _ := l.placementOf(w)
			return strconv.Itoa(ps.Held)
		}),
		col("LAST HEARTBEAT", heartbeat),
	}
	if l.Placement == nil {
		// worker prune: it does not read placement; show nothing rather than guesses.
		base = slices.Delete(base, 5, 6)
	}
	cordoned := col("CORDONED", func(w workers.Worker) string {
		ps, _ := l.placementOf(w)
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
			parts = append(parts, output.Age(l.At, ps.At))
		}
		if len(parts) == 0 {
			return "yes"
		}
		return "yes (" + strings.Join(parts, ", ") + ")"
	})
	silent := col("SILENT FOR", func(w workers.Worker) string {
		if w.LastHeartbeat == nil {
			return "never"
		}
		return output.Duration(w.Silence)
	})
	grace := col("GRACE", func(w workers.Worker) string { return output.Duration(l.GraceOf(w)) })
	var extra []output.Column[workers.Worker]
	if l.Placement != nil {
		extra = append(extra, cordoned)
	}
	extra = append(extra,
		col("ID", func(w workers.Worker) string { return fmt.Sprint(w.ID) }),
		col("TYPE", func(w workers.Worker) string { return w.Type }),
		col("VERSIONS", versionsOf),
		col("CREATED", func(w workers.Worker) string { return output.Age(l.At, &w.Created) }),
		col("INSTANCE", instanceOf),
	)
	table, wide := slices.Clone(base), slices.Clone(base)
	if stale {
		table = append(table, silent)
		wide = append(wide, silent, grace)
	}
	return output.Spec[workers.Worker]{
		Columns: table,
		Wide:    append(wide, extra...),
		Name:    func(w workers.Worker) string { return w.Name },
		View:    func(w workers.Worker) any { return viewOf(l, w) },
	}
}

// workerFormats are the formats of every command that prints workers.
var workerFormats = workerSpec(workerListing{}, false).Formats()

// printWorkers prints a listing in format f (see workerSpec).
func printWorkers(w io.Writer, l workerListing, f output.Format, p output.Palette, stale bool) error {
	return workerSpec(l, stale).PrintAll(w, f, output.PrinterOptions{Palette: p}, l.Workers)
}

// stateColor colours a worker's derived state: active green (yellow when
// late), stale and error red, inactive dim; busy is alive and green; states
// attunectl does not know stay plain.
func stateColor(l workers.Listing, w workers.Worker) output.Color {
	switch w.State {
	case workers.StatusActive:
		if l.Late(w) {
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
