package cli

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/output"
	"github.com/attune-automation/attunectl/pkg/sensors"
)

// sensorListOptions are the options of `sensor list`.
type sensorListOptions struct {
	Refs    []string
	Worker  string
	State   string
	Format  output.Format
	Palette output.Palette
}

// Validate checks --state against the states a sensor can be in.
func (o *sensorListOptions) Validate() error {
	if o.State != "" && !slices.Contains(sensors.States, o.State) {
		return usageErrorf("--state %q: use one of %s", o.State, strings.Join(sensors.States, ", "))
	}
	return nil
}

func newSensorListCmd(app *App) *cobra.Command {
	o := &sensorListOptions{}
	cmd := &cobra.Command{
		Use:     "list [REF...]",
		Aliases: []string{"ls"},
		Short:   "List sensors with their derived state, owner and lease",
		Long: `List the sensors of the sensor table, ordered by ref, with where each runs
and its state, derived like a worker's:

  disabled       enabled is false (on Attune's schema: effective_enabled, which
                 folds in an operator's override and the pack's omission, is
                 false, or the sensor is retired)
  idle           on Attune's schema: no enabled rule targets its triggers, and
                 Attune runs a sensor only for its rules
  unschedulable  no live sensor worker fits; REASON says which requirement
                 no one meets ("no live worker advertises python satisfying >=3.12")
  unassigned     some worker fits, nobody holds it yet
  assigned       a worker holds an unexpired lease
  starting, running, backoff
                 what the owner's supervisor recorded under the current lease
  quarantined    stopped after too many consecutive failures (REASON: the
                 last exit); ` + "`attunectl sensor enable REF`" + ` clears it

Give refs to list only those (a missing ref is an error, exit 2); --worker
keeps the sensors a worker holds, --state those in one state. LEASE is how
long the owner's lease has left, LAST EVENT how long ago the sensor's last
event was written; both by the database's clock.

Output (-o): table (default), wide (adds GENERATION, INSTANCE, ASSIGNED,
VERSION (the runtime version constraint) and SELECTOR), json and yaml (stable
snake_case fields: ref, runtime, enabled, state, worker (null when
unowned), generation, lease_expires_at, reason, …; RFC 3339 times in UTC), name
(refs).`,
		Example: `  attunectl sensor list
  attunectl sensor list --worker sensor-web-01 -o wide
  attunectl sensor list --state unschedulable
  attunectl sensor list acme.disk_watch -o json`,
		ValidArgsFunction: completeSensorRefs(app),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			f, err := app.outputFormat(cmd)
			if err != nil {
				return err
			}
			o.Refs, o.Format, o.Palette = args, f, app.palette()
			return withDB(cmd.Context(), app, func(db *database.DB) error {
				return runSensorList(cmd.Context(), app, db, *o)
			})
		},
	}
	offerFormats(cmd, sensorSpec(sensors.Listing{}).Formats())
	fs := cmd.Flags()
	fs.StringVar(&o.Worker, "worker", "", "only the sensors this worker holds")
	fs.StringVar(&o.State, "state", "", "only sensors in this state: "+strings.Join(sensors.States, ", "))
	_ = cmd.RegisterFlagCompletionFunc("worker", completeWorkerNames(app))
	_ = cmd.RegisterFlagCompletionFunc("state", cobra.FixedCompletions(sensors.States, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func runSensorList(ctx context.Context, app *App, db *database.DB, o sensorListOptions) error {
	l, err := sensors.List(ctx, db, sensors.ListOptions{Refs: o.Refs, Worker: o.Worker, State: o.State})
	if err != nil {
		return database.RedactError(err)
	}
	if len(o.Refs) > 0 && o.Worker == "" && o.State == "" {
		if missing := missingSensorRefs(o.Refs, l.Sensors); len(missing) > 0 {
			return usageError(sensorsNotFound(missing))
		}
	}
	if err := printSensors(app.Out, l, o.Format, o.Palette); err != nil {
		return err
	}
	if len(l.Sensors) == 0 && (o.Format == output.Table || o.Format == output.Wide) {
		fmt.Fprintln(app.Err, "No sensors found.")
	}
	return nil
}

// missingSensorRefs returns the refs of want that are not in got.
func missingSensorRefs(want []string, got []sensors.Listed) []string {
	var missing []string
	for _, r := range want {
		if !slices.ContainsFunc(got, func(s sensors.Listed) bool { return s.Ref == r }) && !slices.Contains(missing, r) {
			missing = append(missing, r)
		}
	}
	return missing
}

// sensorsNotFound names refs that are not in the sensor table.
func sensorsNotFound(refs []string) error {
	if len(refs) == 1 {
		return fmt.Errorf("sensor %s not found (see `attunectl sensor list`)", refs[0])
	}
	return fmt.Errorf("sensors %s not found (see `attunectl sensor list`)", strings.Join(refs, ", "))
}

// sensorSpec is how `sensor list` prints; every age is relative to l.At,
// the database's clock when the listing was derived.
func sensorSpec(l sensors.Listing) output.Spec[sensors.Listed] {
	col := func(h string, cell func(sensors.Listed) string) output.Column[sensors.Listed] {
		return output.Column[sensors.Listed]{Header: h, Cell: cell}
	}
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	base := []output.Column[sensors.Listed]{
		col("REF", func(s sensors.Listed) string { return s.Ref }),
		col("RUNTIME", func(s sensors.Listed) string { return s.Runtime }),
		{Header: "STATE", Cell: func(s sensors.Listed) string { return s.State }, Color: sensorStateColor},
		col("WORKER", func(s sensors.Listed) string {
			if s.Worker == nil {
				return "-"
			}
			return *s.Worker
		}),
		col("LEASE", func(s sensors.Listed) string {
			if s.LeaseExpires == nil {
				return "-"
			}
			return output.Duration(s.LeaseLeft)
		}),
		col("RESTARTS", func(s sensors.Listed) string { return strconv.Itoa(s.Restarts) }),
		col("LAST EVENT", func(s sensors.Listed) string { return output.Age(l.At, s.LastEvent) }),
	}
	reason := col("REASON", func(s sensors.Listed) string { return s.Reason })
	wide := append(slices.Clone(base),
		col("GENERATION", func(s sensors.Listed) string { return strconv.FormatInt(s.Generation, 10) }),
		col("INSTANCE", func(s sensors.Listed) string {
			if s.Instance == nil {
				return "-"
			}
			return *s.Instance
		}),
		col("ASSIGNED", func(s sensors.Listed) string {
			if s.AssignedAt == nil {
				return "-"
			}
			return output.Age(l.At, s.AssignedAt)
		}),
		col("VERSION", func(s sensors.Listed) string { return dash(s.Constraint) }),
		col("SELECTOR", func(s sensors.Listed) string { return dash(formatSelector(s.Selector)) }),
		reason,
	)
	return output.Spec[sensors.Listed]{
		Columns: append(slices.Clone(base), reason),
		Wide:    wide,
		Name:    func(s sensors.Listed) string { return s.Ref },
		View:    sensorView,
	}
}

// sensorView is a sensor in -o json and -o yaml: sensors.Listed's stable
// field names, with times in UTC.
func sensorView(s sensors.Listed) any {
	for _, p := range []**time.Time{&s.LeaseExpires, &s.AssignedAt, &s.LastEvent} {
		if *p != nil {
			t := (*p).UTC()
			*p = &t
		}
	}
	if s.Selector == nil {
		s.Selector = map[string]string{}
	}
	return s
}

// formatSelector writes a selector as k=v pairs in key order.
func formatSelector(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

// sensorStateColor: running and assigned green, on their way yellow,
// unschedulable and quarantined red, disabled dim.
func sensorStateColor(s sensors.Listed) output.Color {
	switch s.State {
	case sensors.StateRunning, sensors.StateAssigned:
		return output.Green
	case sensors.StateStarting, sensors.StateUnassigned, sensors.StateBackoff:
		return output.Yellow
	case sensors.StateUnschedulable, sensors.StateQuarantined:
		return output.Red
	case sensors.StateDisabled:
		return output.Dim
	}
	return output.NoColor
}

// printSensors prints a listing in format f.
func printSensors(w io.Writer, l sensors.Listing, f output.Format, p output.Palette) error {
	return sensorSpec(l).PrintAll(w, f, output.PrinterOptions{Palette: p}, l.Sensors)
}
