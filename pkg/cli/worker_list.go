package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/output"
	"github.com/attune-automation/attunectl/pkg/workers"
	"github.com/spf13/cobra"
)

// workerListOptions are the options of `worker list` and `worker stale`.
type workerListOptions struct {
	Selector      selectorFlags
	Status        string
	SortBy        string
	OlderThan     time.Duration
	Watch         bool
	WatchInterval time.Duration
	// Stale lists the stale workers only (worker stale).
	Stale bool
	// ExitCode makes worker stale exit with ExitCondition when any are stale.
	ExitCode bool

	Format  output.Format
	Palette output.Palette
	// Terminal: the output is a terminal, so --watch clears the screen
	// instead of printing a separator.
	Terminal bool
	// Embedded: no database is configured, so the embedded one, whose enum
	// labels are attunectl's own, would serve: filters are checked before
	// it starts (on a configured database, against its enums at connect).
	Embedded bool
}

// Validate checks what can be checked without the database.
func (o *workerListOptions) Validate() error {
	if o.SortBy != workers.SortByName && o.SortBy != workers.SortByHeartbeat {
		return usageErrorf("--sort-by %q: use %s or %s", o.SortBy, workers.SortByName, workers.SortByHeartbeat)
	}
	if o.OlderThan < 0 {
		return usageErrorf("--older-than %s: must be positive", o.OlderThan)
	}
	if o.Watch && o.WatchInterval < 100*time.Millisecond {
		return usageErrorf("--watch-interval %s: must be at least 100ms", o.WatchInterval)
	}
	if o.Watch && o.ExitCode {
		return usageErrorf("--exit-code and --watch cannot be combined: --watch never ends on its own")
	}
	if !o.Embedded {
		return nil
	}
	return filterValueError(workers.CheckFilterValues(o.Selector.selector().Roles, strings.TrimSpace(o.Status)))
}

func (o workerListOptions) listOptions() workers.ListOptions {
	return workers.ListOptions{
		Selector:  o.Selector.selector(),
		Status:    strings.TrimSpace(o.Status),
		StaleOnly: o.Stale,
		SortBy:    o.SortBy,
		OlderThan: o.OlderThan,
	}
}

func addListFlags(cmd *cobra.Command, o *workerListOptions) {
	offerFormats(cmd, workerFormats)
	fs := cmd.Flags()
	addSelectorFlags(cmd, &o.Selector, nil, "only workers of these roles: sensor, action, hybrid (comma-separated or repeated; default every role)")
	fs.StringVar(&o.SortBy, "sort-by", workers.SortByName, "order: name, or heartbeat (oldest first, never-heartbeat first)")
	durationVar(fs, &o.OlderThan, "older-than", 0, "stale after this long without a heartbeat, for every worker (default: 3× each worker's heartbeat interval; the classic stale query uses 5m)")
	fs.BoolVarP(&o.Watch, "watch", "w", false, "redraw every --watch-interval until interrupted (Ctrl-C)")
	durationVar(fs, &o.WatchInterval, "watch-interval", DefaultWatchInterval, "how often --watch redraws")
	_ = cmd.RegisterFlagCompletionFunc("sort-by", cobra.FixedCompletions([]string{workers.SortByName, workers.SortByHeartbeat}, cobra.ShellCompDirectiveNoFileComp))
}

const workerFormatsHelp = `Output (-o): table (default; STATUS ends in ",cordoned" for a cordoned
worker, SENSORS is how many sensors it holds under an unexpired lease), wide
(adds CORDONED (reason and who), ID, TYPE, VERSIONS, CREATED, INSTANCE), json
and yaml (stable snake_case fields, RFC 3339 times in UTC; state is the
derived state, status the stored one, cordoned and sensors as in the table),
name (one name per line).
Colour only on a terminal, never with --no-color or NO_COLOR: active green,
late (missed a heartbeat, still within its grace) yellow, stale red, inactive
dim.`

func newWorkerListCmd(app *App) *cobra.Command {
	o := &workerListOptions{}
	cmd := &cobra.Command{
		Use:   "list [NAME...]",
		Short: "List workers with their derived state, host, runtimes and last heartbeat",
		Long: `List the workers of the worker table with their derived state: active,
stale (active, but silent for longer than its grace), inactive, busy, error, or
any other status the database holds.

Filters combine: --role, --status (active means active and heartbeating;
stale means active but silent), --runtime (capabilities->'runtimes' ?
'python'), --host. Ages are relative to the
database's clock.

` + workerFormatsHelp + `

--watch redraws every --watch-interval until interrupted, clearing the screen
on a terminal and separating the listings with a "---" line otherwise.
Database errors while watching are printed and retried at the next redraw.

Workers are printed as they arrive from one statement, decoded a thousand at
a time, so memory stays flat whatever their number; when the output is read
slowly (a pager) the server waits. database.statement_timeout bounds
the wait to start (for example on a lock held on the worker table: the error
names its holder) and the server's work on each batch, never the time the
output takes to be read (a pager, a slow terminal).`,
		Example: `  attunectl worker list
  attunectl worker list --role sensor --runtime python --status active
  attunectl worker list --host web-01 -o wide
  attunectl worker list --sort-by heartbeat --watch
  attunectl worker list -o json | jq -r '.[] | select(.state == "stale") | .name'`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: completeWorkerNames(app),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Selector.Names = args
			return runWorkerListCmd(cmd, app, o)
		},
	}
	addListFlags(cmd, o)
	cmd.Flags().StringVar(&o.Status, "status", "", "only workers in this state: active, stale, inactive, busy, error (or another status the database holds)")
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions([]string{"active", "stale", "inactive", "busy", "error"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func newWorkerStaleCmd(app *App) *cobra.Command {
	o := &workerListOptions{Stale: true}
	cmd := &cobra.Command{
		Use:   "stale [NAME...]",
		Short: "List the stale workers: active, but silent for longer than their grace",
		Long: `List the workers whose status is active but whose last heartbeat is older
than their grace (three heartbeat intervals, or --older-than), or who never
heartbeat, with how long each has been silent. The classic monitoring query is
` + "`worker stale --role sensor --older-than 5m`" + `.

The table shows the last heartbeat as worker list does (an age, "10m ago")
and GRACE, the grace the worker was judged by; -o wide adds HEARTBEAT AT
(the heartbeat's UTC time) and the columns of worker list -o wide. JSON and
YAML carry silent_for_seconds and grace_seconds.

` + workerFormatsHelp + `

Exit status:
  0  no stale workers, or --exit-code not given
  1  the command failed (database unreachable, statement timed out, ...)
  2  bad input (unknown flag, --role or --sort-by value)
  3  with --exit-code: at least one worker is stale (after printing them)`,
		Example: `  attunectl worker stale
  attunectl worker stale --role sensor --older-than 5m
  attunectl worker stale --exit-code -o name || page-oncall
  attunectl worker stale --runtime python -o json`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: completeWorkerNames(app),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Selector.Names = args
			return runWorkerListCmd(cmd, app, o)
		},
	}
	addListFlags(cmd, o)
	cmd.Flags().BoolVar(&o.ExitCode, "exit-code", false, "exit with status 3 when any worker is stale (for monitoring scripts)")
	return cmd
}

// runWorkerListCmd fills what the flags cannot (format, colour, terminal),
// connects and runs.
func runWorkerListCmd(cmd *cobra.Command, app *App, o *workerListOptions) error {
	ctx := cmd.Context()
	f, err := app.outputFormat(cmd)
	if err != nil {
		return err
	}
	o.Format, o.Palette, o.Terminal = f, app.palette(), app.IsStdoutTTY()
	o.Embedded = app.Config.Database.URL == ""
	if err := o.Validate(); err != nil {
		return err
	}
	db, err := app.connect(ctx, connectOptions{})
	if err != nil {
		return err
	}
	defer db.Close()
	listingGC()
	return runWorkerList(ctx, app, db, *o)
}

// listingGC lets the heap of a listing grow to three times what it holds
// (GOGC 200) instead of twice, unless GOGC says otherwise: a listing holds
// two batches and throws away a little garbage for every row, and at a
// million rows the collections cost a quarter of -o json's time; the peak
// resident memory goes from about 31 to 39 MiB, whatever the row count.
func listingGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
}

// runWorkerList lists (or watches) the workers and prints them to app.Out
// as they arrive from the database, so memory stays flat whatever the
// number of workers.
func runWorkerList(ctx context.Context, app *App, db *database.DB, o workerListOptions) error {
	lo := o.listOptions()
	if err := workers.CheckFilters(db, lo.Roles, lo.Status); err != nil {
		return explainWorkerError(ctx, app, db, err, "checking the filters")
	}
	if o.Watch {
		return watchWorkers(ctx, app, db, o)
	}
	n, err := streamWorkers(ctx, app, db, app.Out, o)
	if err != nil {
		return err
	}
	if n == 0 && (o.Format == output.Table || o.Format == output.Wide) {
		fmt.Fprintln(app.Err, emptyMessage(o))
	}
	if o.Stale && o.ExitCode && n > 0 {
		return conditionError(nil)
	}
	return nil
}

// streamWorkers prints the workers o selects to w as they arrive,
// reading only the fields o.Format shows; it returns how many it printed.
func streamWorkers(ctx context.Context, app *App, db *database.DB, w io.Writer, o workerListOptions) (int64, error) {
	what := "listing workers"
	if o.Stale {
		what = "listing stale workers"
	}
	return printStream(ctx, app, db, workerSpec(o.Stale, true).NewPrinter(w, o.Format, output.PrinterOptions{Palette: o.Palette}), what,
		func(fn func(workers.Row) error) (workers.StreamResult, error) {
			return workers.Stream(ctx, db, o.listOptions(), workers.StreamOptions{Fields: workerFields(o.Format, true, o.Palette)}, fn)
		})
}

// printStream writes the rows of stream to p as they arrive and flushes
// it. A database error is explained (explainWorkerError, doing what); an
// error writing the output is returned as it is. After a database error
// the rows printed so far are still written (with the table rows held back
// to measure the columns), but a JSON or YAML document is left unfinished,
// so that no script mistakes it for the whole listing.
func printStream(ctx context.Context, app *App, db *database.DB, p *output.Printer[workers.Row], what string,
	stream func(func(workers.Row) error) (workers.StreamResult, error)) (int64, error) {
	var werr error
	res, err := stream(func(r workers.Row) error {
		werr = p.Write(r)
		return werr
	})
	switch {
	case err != nil && werr != nil:
		return res.Rows, werr
	case err != nil:
		if p.Format() == output.Table || p.Format() == output.Wide {
			_ = p.Flush()
		} else {
			_ = p.Drain()
		}
		return res.Rows, explainWorkerError(ctx, app, db, err, what)
	}
	return res.Rows, p.Flush()
}

func emptyMessage(o workerListOptions) string {
	if o.Stale {
		return "No stale workers."
	}
	return "No workers found."
}

// watchWorkers redraws the listing every o.WatchInterval until ctx is
// cancelled (the first SIGINT or SIGTERM), then returns nil. On a terminal
// each frame clears the screen and starts with a header; otherwise frames
// follow each other, separated by a "---" line (a YAML document separator;
// JSON frames are simply concatenated, which jq reads as a stream).
func watchWorkers(ctx context.Context, app *App, db *database.DB, o workerListOptions) error {
	cmdline := "attunectl worker list"
	if o.Stale {
		cmdline = "attunectl worker stale"
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for frame := 0; ; frame++ {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		// A frame is drawn whole, so the screen never shows half a listing.
		var buf, body bytes.Buffer
		n, err := streamWorkers(ctx, app, db, &body, o)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case o.Terminal:
			fmt.Fprintf(&buf, "\x1b[H\x1b[2J%s\n\n", o.Palette.Bold(fmt.Sprintf("Every %s: %s    %s", o.WatchInterval, cmdline, app.Now().Format("2006-01-02 15:04:05"))))
		case frame > 0 && o.Format != output.JSON:
			buf.WriteString("---\n")
		}
		if err == nil {
			buf.Write(body.Bytes())
			if n == 0 && o.Terminal && (o.Format == output.Table || o.Format == output.Wide) {
				fmt.Fprintln(&buf, emptyMessage(o))
			}
		}
		if _, werr := app.Out.Write(buf.Bytes()); werr != nil {
			return werr
		}
		if err != nil {
			fmt.Fprintf(app.Err, "Error: %s (retrying in %s)\n", output.EscapeText(database.Redact(err.Error())), o.WatchInterval)
		}
		timer.Reset(o.WatchInterval)
	}
}
