package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/events"
	"github.com/attune-automation/attunectl/pkg/output"
)

// Event list defaults.
const (
	defaultEventLimit = 100
	// eventFollowPoll is how often --follow looks for new events when
	// LISTEN is not possible (behind a transaction pooler).
	eventFollowPoll = time.Second
	// payloadWidth is where PAYLOAD is cut on a terminal.
	payloadWidth = 60
)

// eventListOptions are the options of `event list`.
type eventListOptions struct {
	Sensor  string
	Trigger string
	Since   time.Duration
	Limit   int
	Follow  bool
	Format  output.Format
	Palette output.Palette
	// Terminal: PAYLOAD is truncated to fit.
	Terminal bool
	// Poll is --follow's polling interval without LISTEN.
	Poll time.Duration
}

// Validate checks what can be checked without the database.
func (o *eventListOptions) Validate() error {
	if o.Since < 0 {
		return usageErrorf("--since %s: must be positive", o.Since)
	}
	if o.Limit < 0 {
		return usageErrorf("--limit %d: must be 0 (no limit) or more", o.Limit)
	}
	if o.Follow && o.Format == output.YAML {
		return usageErrorf("--follow prints table, wide or json (one object per line): drop -o yaml")
	}
	return nil
}

func newEventListCmd(app *App) *cobra.Command {
	o := &eventListOptions{Poll: eventFollowPoll}
	cmd := &cobra.Command{
		Use:     "list [--sensor REF] [--trigger REF] [--since DURATION] [--follow]",
		Aliases: []string{"ls"},
		Short:   "List events, oldest first; --follow streams new ones as they commit",
		Long: `List the events of the event table, oldest first: --sensor and --trigger
keep those of one sensor (source_ref) or trigger (trigger_ref), --since those
created at most that long ago (by the database's clock; seconds or 10m, 1h).
--limit keeps the newest N of them (default 100; 0 lists all).

--follow then keeps printing new events as they commit, until interrupted
(Ctrl-C, exit status 0). It wakes on the NOTIFY each committed event sends,
and polls every second where LISTEN is not possible (behind a transaction
pooler); events are read by id, so none is missed or repeated. With -o json
--follow writes one JSON object per line (JSON Lines), not an array, so that
each event can be read as it arrives.

Output (-o): table (default: ID, CREATED (age), TRIGGER, SENSOR, PAYLOAD, cut
to fit on a terminal), wide (adds GENERATION and WORKLOAD, the fence that
wrote the event), json and yaml (id, trigger_ref, source_ref, payload,
created in RFC 3339 UTC, source_workload, source_generation).`,
		Example: `  attunectl event list
  attunectl event list --sensor core.timer_1s --since 1m
  attunectl event list --trigger acme.disk_full -o json | jq '.[].payload'
  attunectl event list --follow -o json | jq -c .payload`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := app.outputFormat(cmd)
			if err != nil {
				return err
			}
			o.Format, o.Palette, o.Terminal = f, app.palette(), app.IsStdoutTTY()
			if err := o.Validate(); err != nil {
				return err
			}
			return withDB(cmd.Context(), app, func(db *database.DB) error {
				return runEventList(cmd.Context(), app, db, *o)
			})
		},
	}
	offerFormats(cmd, eventSpec(time.Time{}, false).Formats())
	fs := cmd.Flags()
	fs.StringVar(&o.Sensor, "sensor", "", "only events of this sensor (its ref)")
	fs.StringVar(&o.Trigger, "trigger", "", "only events of this trigger (its ref)")
	durationVar(fs, &o.Since, "since", 0, "only events created at most this long ago (seconds, or 10m, 1h)")
	fs.IntVar(&o.Limit, "limit", defaultEventLimit, "list at most the newest N events before following (0: all)")
	fs.BoolVarP(&o.Follow, "follow", "f", false, "keep printing new events as they commit, until interrupted (-o json: one object per line)")
	_ = cmd.RegisterFlagCompletionFunc("sensor", completeSensorRefs(app))
	return cmd
}

// runEventList prints the matching events and, with o.Follow, new ones
// until ctx ends.
func runEventList(ctx context.Context, app *App, db *database.DB, o eventListOptions) error {
	now := app.Now()
	f := events.Filter{Sensor: o.Sensor, Trigger: o.Trigger, Since: o.Since}
	if o.Limit > 0 {
		// The newest o.Limit: start after the id that precedes them.
		after, err := events.AfterForNewest(ctx, db, f, o.Limit)
		if err != nil {
			return database.RedactError(err)
		}
		f.AfterID = after
	}
	if !o.Follow {
		p := eventSpec(now, o.Terminal).NewPrinter(app.Out, o.Format, output.PrinterOptions{Palette: o.Palette})
		if err := events.List(ctx, db, f, p.Write); err != nil {
			_ = p.Drain() // what was printed reaches the output; the document stays unfinished
			return database.RedactError(err)
		}
		if err := p.Flush(); err != nil {
			return err
		}
		if p.Count() == 0 && (o.Format == output.Table || o.Format == output.Wide) {
			fmt.Fprintln(app.Err, "No events found.")
		}
		return nil
	}
	return followEvents(ctx, app, db, o, f)
}

// followEvents prints events as they arrive: a table line at a time
// (columns as wide as the header or the widest cell so far), or one JSON
// object per line.
func followEvents(ctx context.Context, app *App, db *database.DB, o eventListOptions, f events.Filter) error {
	var write func(events.Event) error
	if o.Format == output.JSON {
		write = func(e events.Event) error {
			// One line an event (JSON Lines): compact, terminal-safe.
			b, err := output.MarshalJSON(eventView(e), "", "")
			if err != nil {
				return err
			}
			_, err = app.Out.Write(append(b, '\n'))
			return err
		}
	} else {
		var ft followTable
		write = func(e events.Event) error {
			// Ages in a stream are relative to when the line is printed.
			spec := eventSpec(app.Now(), o.Terminal)
			cols := spec.Columns
			if o.Format == output.Wide {
				cols = spec.Wide
			}
			return ft.write(app.Out, cols, e, o.Palette)
		}
	}
	err := events.Follow(ctx, db, f, o.Poll, write)
	if err != nil && ctx.Err() == nil {
		return database.RedactError(err)
	}
	return nil
}

// followMinWidth are the widths --follow starts its columns at, so that
// usual refs do not push the lines that follow them.
var followMinWidth = map[string]int{"ID": 6, "CREATED": 9, "TRIGGER": 20, "SENSOR": 20}

// followTable writes table lines one at a time, unbuffered: a column is
// as wide as its header, its starting width, or its widest cell so far.
type followTable struct {
	widths []int
}

func (t *followTable) write(w io.Writer, cols []output.Column[events.Event], e events.Event, p output.Palette) error {
	if t.widths == nil {
		t.widths = make([]int, len(cols))
		header := make([]string, len(cols))
		for i, c := range cols {
			header[i] = c.Header
			t.widths[i] = max(utf8.RuneCountInString(c.Header), followMinWidth[c.Header])
		}
		if err := t.line(w, header, header); err != nil {
			return err
		}
	}
	cells := make([]string, len(cols))
	painted := make([]string, len(cols))
	for i, c := range cols {
		cells[i] = output.Escape(c.Cell(e))
		painted[i] = cells[i]
		if c.Color != nil {
			painted[i] = p.Paint(c.Color(e), cells[i])
		}
	}
	return t.line(w, cells, painted)
}

func (t *followTable) line(w io.Writer, cells, painted []string) error {
	var b strings.Builder
	for i, c := range cells {
		n := utf8.RuneCountInString(c)
		t.widths[i] = max(t.widths[i], n)
		b.WriteString(painted[i])
		if i < len(cells)-1 {
			b.WriteString(strings.Repeat(" ", t.widths[i]-n+3))
		}
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

// eventSpec is how `event list` prints: CREATED is an age relative to now;
// on a terminal PAYLOAD is cut to payloadWidth characters.
func eventSpec(now time.Time, terminal bool) output.Spec[events.Event] {
	col := func(h string, cell func(events.Event) string) output.Column[events.Event] {
		return output.Column[events.Event]{Header: h, Cell: cell}
	}
	optInt := func(p *int64) string {
		if p == nil {
			return "-"
		}
		return strconv.FormatInt(*p, 10)
	}
	base := []output.Column[events.Event]{
		col("ID", func(e events.Event) string { return strconv.FormatInt(e.ID, 10) }),
		col("CREATED", func(e events.Event) string { return output.Age(now, &e.Created) }),
		col("TRIGGER", func(e events.Event) string { return e.TriggerRef }),
		col("SENSOR", func(e events.Event) string {
			if e.SourceRef == nil {
				return "-"
			}
			return *e.SourceRef
		}),
	}
	payload := col("PAYLOAD", func(e events.Event) string {
		s := compactJSON(e.Payload)
		if terminal {
			s = truncate(s, payloadWidth)
		}
		return s
	})
	return output.Spec[events.Event]{
		Columns: append(slices.Clone(base), payload),
		Wide: append(slices.Clone(base),
			col("GENERATION", func(e events.Event) string { return optInt(e.SourceGeneration) }),
			col("WORKLOAD", func(e events.Event) string { return optInt(e.SourceWorkload) }),
			payload),
		View: func(e events.Event) any { return eventView(e) },
	}
}

// eventView is an event in -o json and -o yaml: events.Event's stable
// field names, created in UTC.
func eventView(e events.Event) events.Event {
	e.Created = e.Created.UTC()
	if len(e.Payload) == 0 {
		e.Payload = json.RawMessage("null")
	}
	return e
}

// compactJSON writes a payload on one line.
func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

// truncate cuts s to at most n characters, ending in "…" when cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
