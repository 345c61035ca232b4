package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/output"
	"github.com/attune-automation/attunectl/pkg/workers"
)

func init() { extraCommands = append(extraCommands, newWorkerCmd) }

// roleAll selects every role in --role.
const roleAll = "all"

// DefaultWatchInterval is how often --watch redraws.
const DefaultWatchInterval = 2 * time.Second

func newWorkerCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Show which workers are alive, which went silent, and clean up after them",
		Long: `Inspect the workers registered in the shared worker table, and clean up
after dead hosts.

Liveness is derived from the heartbeat, not trusted from the stored status: an
active worker whose last heartbeat is older than its grace is shown as stale.
The grace is three times the heartbeat interval the worker advertises in
capabilities.heartbeat_interval (30s when it advertises none, so 90s), or the
--older-than duration when given. A worker that never heartbeat is stale.
Every staleness test runs in the database with its clock (now()), so a host
with a skewed clock never makes a live worker look dead.`,
		Example: `  attunectl worker list --role sensor
  attunectl worker list --runtime python --status active
  attunectl worker stale --older-than 5m --exit-code
  attunectl worker prune --dry-run`,
	}
	cmd.AddCommand(newWorkerListCmd(app), newWorkerStaleCmd(app), newWorkerPruneCmd(app))
	return cmd
}

// selectorFlags are the filters every worker command shares.
type selectorFlags struct {
	Roles   []string
	Runtime string
	Host    string
	// Names are the command's NAME arguments.
	Names []string
}

// addSelectorFlags adds --role, --runtime and --host with the same help
// everywhere; roleDefault is what --role means when not given.
func addSelectorFlags(cmd *cobra.Command, s *selectorFlags, roleDefault []string, roleHelp string) {
	fs := cmd.Flags()
	fs.StringSliceVar(&s.Roles, "role", roleDefault, roleHelp)
	fs.StringVar(&s.Runtime, "runtime", "", `only workers that advertise this runtime in capabilities.runtimes, e.g. python, node.js, "built-in sensor" (compared lower case)`)
	fs.StringVar(&s.Host, "host", "", "only workers on this host (exact match)")
	_ = cmd.RegisterFlagCompletionFunc("role", cobra.FixedCompletions([]string{workers.RoleSensor, workers.RoleAction, workers.RoleHybrid, roleAll}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("runtime", cobra.FixedCompletions([]string{"python", "node.js", "shell", "native", "built-in sensor"}, cobra.ShellCompDirectiveNoFileComp))
}

// selector turns the flags into a workers.Selector: "all" selects every
// role, runtimes are lower case as detection writes them.
func (s selectorFlags) selector() workers.Selector {
	var roles []string
	for _, r := range s.Roles {
		r = strings.TrimSpace(r)
		if r == roleAll {
			roles = nil
			break
		}
		if r != "" && !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	return workers.Selector{Roles: roles, Runtime: strings.ToLower(strings.TrimSpace(s.Runtime)), Host: s.Host, Names: s.Names}
}

// describe says which workers a selector scopes, for messages.
func describeSelector(sel workers.Selector) string {
	parts := []string{"every role"}
	if len(sel.Roles) > 0 {
		parts[0] = "role " + strings.Join(sel.Roles, ",")
	}
	if sel.Runtime != "" {
		parts = append(parts, "runtime "+sel.Runtime)
	}
	if sel.Host != "" {
		parts = append(parts, "host "+sel.Host)
	}
	if len(sel.Names) > 0 {
		parts = append(parts, "name "+strings.Join(sel.Names, ","))
	}
	return strings.Join(parts, ", ")
}

// ---------------------------------------------------------------- list, stale

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
	return nil
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
	fs := cmd.Flags()
	addSelectorFlags(cmd, &o.Selector, nil, "only workers of these roles: sensor, action, hybrid (comma-separated or repeated; default every role)")
	fs.StringVar(&o.SortBy, "sort-by", workers.SortByName, "order: name, or heartbeat (oldest first, never-heartbeat first)")
	fs.DurationVar(&o.OlderThan, "older-than", 0, "stale after this long without a heartbeat, for every worker (default: 3× each worker's heartbeat interval; the seed's query uses 5m)")
	fs.BoolVarP(&o.Watch, "watch", "w", false, "redraw every --watch-interval until interrupted (Ctrl-C)")
	fs.DurationVar(&o.WatchInterval, "watch-interval", DefaultWatchInterval, "how often --watch redraws")
	_ = cmd.RegisterFlagCompletionFunc("sort-by", cobra.FixedCompletions([]string{workers.SortByName, workers.SortByHeartbeat}, cobra.ShellCompDirectiveNoFileComp))
}

const workerFormatsHelp = `Output (-o): table (default), wide (adds ID, TYPE, VERSIONS, CREATED,
INSTANCE), json and yaml (stable snake_case fields, RFC 3339 times in UTC; state
is the derived state, status the stored one), name (one name per line).
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
stale means active but silent), --runtime (the seed's
capabilities->'runtimes' ? 'python'), --host. Ages are relative to the
database's clock.

` + workerFormatsHelp + `

--watch redraws every --watch-interval until interrupted, clearing the screen
on a terminal and separating the listings with a "---" line otherwise.
Database errors while watching are printed and retried at the next redraw.

A statement that waits longer than database.statement_timeout (for example on
a lock held on the worker table) is cancelled with an error that says so.`,
		Example: `  attunectl worker list
  attunectl worker list --role sensor --runtime python --status active
  attunectl worker list --host web-01 -o wide
  attunectl worker list --sort-by heartbeat --watch
  attunectl worker list -o json | jq -r '.[] | select(.state == "stale") | .name'`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: completeWorkerNames(app),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Selector.Names = args
			return runWorkerListCmd(cmd.Context(), app, o)
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
heartbeat, with how long each has been silent. The seed's monitoring query is
` + "`worker stale --role sensor --older-than 5m`" + `.

The table shows the last heartbeat as a UTC time and SILENT FOR as a
duration; -o wide adds GRACE (the grace the worker was judged by) and the
columns of worker list -o wide. JSON and YAML carry silent_for_seconds and
grace_seconds.

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
			return runWorkerListCmd(cmd.Context(), app, o)
		},
	}
	addListFlags(cmd, o)
	cmd.Flags().BoolVar(&o.ExitCode, "exit-code", false, "exit with status 3 when any worker is stale (for monitoring scripts)")
	return cmd
}

// runWorkerListCmd fills what the flags cannot (format, colour, terminal),
// connects and runs.
func runWorkerListCmd(ctx context.Context, app *App, o *workerListOptions) error {
	f, err := app.outputFormat(output.Table, output.Wide, output.JSON, output.YAML, output.Name)
	if err != nil {
		return err
	}
	o.Format, o.Palette, o.Terminal = f, app.palette(app.Out), output.IsTerminal(app.Out)
	if err := o.Validate(); err != nil {
		return err
	}
	db, err := app.connect(ctx, connectOptions{})
	if err != nil {
		return err
	}
	defer db.Close()
	return runWorkerList(ctx, app, db.Pool, *o)
}

// runWorkerList lists (or watches) the workers and prints them to app.Out.
func runWorkerList(ctx context.Context, app *App, pool *pgxpool.Pool, o workerListOptions) error {
	lo := o.listOptions()
	if err := workers.CheckFilters(ctx, pool, lo.Roles, lo.Status); err != nil {
		return explainWorkerError(ctx, app, pool, err, "checking the filters")
	}
	what := "listing workers"
	if o.Stale {
		what = "listing stale workers"
	}
	query := func(ctx context.Context) (workers.Listing, error) {
		l, err := workers.List(ctx, pool, lo)
		if err != nil {
			return l, explainWorkerError(ctx, app, pool, err, what)
		}
		return l, nil
	}
	if o.Watch {
		return watchWorkers(ctx, app, o, query)
	}
	l, err := query(ctx)
	if err != nil {
		return err
	}
	if err := printWorkers(app.Out, l, o.Format, o.Palette, o.Stale); err != nil {
		return err
	}
	if len(l.Workers) == 0 && (o.Format == output.Table || o.Format == output.Wide) {
		fmt.Fprintln(app.Err, emptyMessage(o))
	}
	if o.Stale && o.ExitCode && len(l.Workers) > 0 {
		return conditionError(nil)
	}
	return nil
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
func watchWorkers(ctx context.Context, app *App, o workerListOptions, query func(context.Context) (workers.Listing, error)) error {
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
		var buf bytes.Buffer
		l, err := query(ctx)
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
			err = printWorkers(&buf, l, o.Format, o.Palette, o.Stale)
			if err == nil && len(l.Workers) == 0 && o.Terminal && (o.Format == output.Table || o.Format == output.Wide) {
				fmt.Fprintln(&buf, emptyMessage(o))
			}
		}
		if _, werr := app.Out.Write(buf.Bytes()); werr != nil {
			return werr
		}
		if err != nil {
			fmt.Fprintf(app.Err, "Error: %s (retrying in %s)\n", database.Redact(err.Error()), o.WatchInterval)
		}
		timer.Reset(o.WatchInterval)
	}
}

// ---------------------------------------------------------------- printing

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
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func viewOf(l workers.Listing, w workers.Worker) workerView {
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

// printWorkers prints a listing in format f. It is pure given the listing:
// every age is relative to l.At, the database's clock when the statement
// ran, which is also the clock that derived the states. stale selects the
// `worker stale` table (SILENT FOR, and the heartbeat as a time).
func printWorkers(w io.Writer, l workers.Listing, f output.Format, p output.Palette, stale bool) error {
	switch f {
	case output.JSON, output.YAML:
		views := make([]workerView, 0, len(l.Workers))
		for _, wk := range l.Workers {
			views = append(views, viewOf(l, wk))
		}
		if f == output.JSON {
			return output.WriteJSON(w, views)
		}
		return output.WriteYAML(w, views)
	case output.Name:
		var b strings.Builder
		for _, wk := range l.Workers {
			b.WriteString(wk.Name)
			b.WriteByte('\n')
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	if len(l.Workers) == 0 {
		return nil // the caller says so on stderr; stdout stays empty, as kubectl's
	}
	wide := f == output.Wide
	header := []string{"NAME", "ROLE", "STATUS", "HOST", "RUNTIMES", "LAST HEARTBEAT"}
	if stale {
		header = append(header, "SILENT FOR")
		if wide {
			header = append(header, "GRACE")
		}
	}
	if wide {
		header = append(header, "ID", "TYPE", "VERSIONS", "CREATED", "INSTANCE")
	}
	t := output.NewTable(w, header...)
	for _, wk := range l.Workers {
		status := paintState(p, l, wk)
		heartbeat := output.Age(l.At, wk.LastHeartbeat)
		if stale && wk.LastHeartbeat != nil {
			heartbeat = wk.LastHeartbeat.UTC().Format(time.RFC3339)
		}
		cells := []string{wk.Name, wk.Role, status, wk.Host, strings.Join(wk.Capabilities.Runtimes, ","), heartbeat}
		if stale {
			silent := "never"
			if wk.LastHeartbeat != nil {
				silent = output.Duration(wk.Silence)
			}
			cells = append(cells, silent)
			if wide {
				cells = append(cells, output.Duration(l.GraceOf(wk)))
			}
		}
		if wide {
			cells = append(cells, fmt.Sprint(wk.ID), wk.Type, versionsOf(wk), output.Age(l.At, &wk.Created), instanceOf(wk))
		}
		t.Append(cells...)
	}
	return t.Render()
}

// paintState colours a worker's derived state: active green (yellow when
// late), stale and error red, inactive dim; busy is alive and green; states
// attunectl does not know stay plain.
func paintState(p output.Palette, l workers.Listing, w workers.Worker) string {
	switch w.State {
	case workers.StatusActive:
		if l.Late(w) {
			return p.Yellow(w.State)
		}
		return p.Green(w.State)
	case workers.StatusBusy:
		return p.Green(w.State)
	case workers.StateStale, workers.StatusError:
		return p.Red(w.State)
	case workers.StatusInactive:
		return p.Dim(w.State)
	}
	return w.State
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

// ---------------------------------------------------------------- prune

// workerPruneOptions are the options of `worker prune`.
type workerPruneOptions struct {
	Selector  selectorFlags
	Delete    bool
	OlderThan time.Duration
	BatchSize int
	DryRun    bool
	Yes       bool
	Every     time.Duration

	Format  output.Format
	Palette output.Palette
	// Interactive: stdin and stderr are a terminal, so prune may ask.
	Interactive bool
	// Progress: stderr is a terminal, so long prunes show their progress.
	Progress bool
}

// Validate checks the options before anything connects: a prune that would
// have to ask and cannot is refused here.
func (o *workerPruneOptions) Validate() error {
	if o.Delete && o.OlderThan <= 0 {
		return usageErrorf("--delete needs --older-than: workers inactive or stale and silent for longer than it are deleted (e.g. --older-than 720h)")
	}
	if err := o.pruneOptions().Validate(); err != nil {
		return usageError(err)
	}
	if o.BatchSize == 0 {
		return usageErrorf("--batch-size 0: must be between 1 and %d", workers.MaxPruneBatchSize)
	}
	if o.Every < 0 || (o.Every > 0 && o.Every < time.Second) {
		return usageErrorf("--every %s: must be at least 1s", o.Every)
	}
	if o.DryRun || o.Yes {
		return nil
	}
	if o.Every > 0 {
		return usageErrorf("--every prunes unattended and cannot ask: pass --yes (or --dry-run to only report)")
	}
	if !o.Interactive {
		return usageErrorf("refusing to %s workers without confirmation: stdin is not a terminal (pass --yes to prune, or --dry-run to see what would change)", o.pruneOptions().Action())
	}
	return nil
}

func (o workerPruneOptions) pruneOptions() workers.PruneOptions {
	return workers.PruneOptions{Selector: o.Selector.selector(), Delete: o.Delete, OlderThan: o.OlderThan, BatchSize: o.BatchSize}
}

func newWorkerPruneCmd(app *App) *cobra.Command {
	o := &workerPruneOptions{}
	cmd := &cobra.Command{
		Use:   "prune [NAME...]",
		Short: "Mark stale workers inactive, or delete long-dead workers",
		Long: `Clean up after workers that stopped heartbeating.

By default prune marks stale workers inactive: workers whose status is active
but whose last heartbeat is older than their grace (three heartbeat intervals,
or --older-than). With --delete it instead deletes the workers that are
inactive, or active but stale, and whose last heartbeat (their last update,
for a worker that never heartbeat) is older than --older-than, which --delete
requires (e.g. 720h). Busy and error workers are never pruned.

Scope: --role defaults to sensor, the workers attunectl manages; action
workers belong to Attune's executors and are pruned only when asked for
(--role action, or --role all). --role sensor never touches action or hybrid
workers. --runtime and --host narrow the scope further.

Safety: prune works in batches: each examines the next --batch-size workers in
id order and is one statement, and one short transaction, that locks the
candidates among them (skipping rows a heartbeat holds right now, without
waiting) and tests the prune condition again, with the database's clock, when
it runs. A worker that heartbeats after --dry-run listed it, or while prune
runs, is never touched, and a large prune never holds locks that stall
heartbeats (500,000 rows: 200 batches of about 20 ms each).

--dry-run lists exactly the workers that would change now, in the format of
worker stale (-o table|wide|json|yaml|name), and changes nothing. Otherwise
prune asks for confirmation on a terminal unless --yes; without a terminal and
without --yes it refuses (exit status 2). At the end it prints the count
(-o json|yaml: a report with every changed worker; -o name: their names), and
on a terminal it shows its progress when there are several batches.

--every DURATION keeps running and prunes on that interval (a health monitor
that can run as a service; needs --yes or --dry-run). It logs each round to
stderr, logs and retries database errors at the next round, and exits 0 on
SIGINT or SIGTERM after the batch in flight.

Exit status: 0 done (or nothing to prune); 1 failed or declined at the prompt;
2 bad input or confirmation needed but impossible; 130 interrupted.`,
		Example: `  attunectl worker prune --dry-run
  attunectl worker prune --yes
  attunectl worker prune --older-than 5m --runtime python --yes
  attunectl worker prune --delete --older-than 720h --dry-run -o name
  attunectl worker prune --delete --older-than 720h --yes --batch-size 10000
  attunectl worker prune --every 1m --yes --log-format json`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: completeWorkerNames(app),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Selector.Names = args
			f, err := app.outputFormat(output.Table, output.Wide, output.JSON, output.YAML, output.Name)
			if err != nil {
				return err
			}
			o.Format, o.Palette = f, app.palette(app.Out)
			o.Interactive = isTerminalReader(app.In) && output.IsTerminal(app.Err)
			o.Progress = output.IsTerminal(app.Err)
			if err := o.Validate(); err != nil {
				return err
			}
			db, err := app.connect(cmd.Context(), connectOptions{})
			if err != nil {
				return err
			}
			defer db.Close()
			return runWorkerPrune(cmd.Context(), app, db.Pool, *o)
		},
	}
	fs := cmd.Flags()
	addSelectorFlags(cmd, &o.Selector, []string{workers.RoleSensor}, "only workers of these roles: sensor, action, hybrid, or all (comma-separated or repeated)")
	fs.BoolVar(&o.Delete, "delete", false, "delete workers inactive or stale for longer than --older-than instead of marking stale workers inactive")
	fs.DurationVar(&o.OlderThan, "older-than", 0, "with --delete (required): delete workers silent for longer than this, e.g. 720h; without: the grace, as for worker stale")
	fs.IntVar(&o.BatchSize, "batch-size", workers.DefaultPruneBatchSize, "workers examined (and so changed at most) per statement and transaction")
	fs.BoolVar(&o.DryRun, "dry-run", false, "list the workers that would change and change nothing (wins over --yes)")
	fs.BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation")
	fs.DurationVar(&o.Every, "every", 0, "keep running and prune on this interval until SIGINT/SIGTERM (needs --yes or --dry-run)")
	return cmd
}

func isTerminalReader(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// pruneReport is prune's result in -o json and -o yaml.
type pruneReport struct {
	Action         string                 `json:"action"` // mark_inactive or delete
	Scope          string                 `json:"scope"`
	Changed        int64                  `json:"changed"`
	Batches        int                    `json:"batches"`
	ElapsedSeconds float64                `json:"elapsed_seconds"`
	Workers        []workers.PrunedWorker `json:"workers"`
}

func runWorkerPrune(ctx context.Context, app *App, pool *pgxpool.Pool, o workerPruneOptions) error {
	po := o.pruneOptions()
	if err := workers.CheckFilters(ctx, pool, po.Roles, ""); err != nil {
		return explainWorkerError(ctx, app, pool, err, "checking the filters")
	}
	if o.Every > 0 {
		return pruneEvery(ctx, app, pool, o)
	}
	if o.DryRun {
		return pruneDryRun(ctx, app, pool, o)
	}
	scope := describeSelector(po.Selector)
	if !o.Yes {
		n, err := workers.PruneCount(ctx, pool, po)
		if err != nil {
			return explainWorkerError(ctx, app, pool, err, "counting the workers to prune")
		}
		if n == 0 {
			fmt.Fprintf(app.Out, "nothing to %s (%s)\n", po.Action(), scope)
			return nil
		}
		ok, err := confirm(app, fmt.Sprintf("%s %d %s (%s)? [y/N] ", capitalize(po.Action()), n, pruneNoun(po, n), scope))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("prune declined: nothing was changed")
		}
	}

	var changed []workers.PrunedWorker
	keep := o.Format == output.JSON || o.Format == output.YAML || o.Format == output.Name
	progressed := false
	po.OnBatch = func(b workers.PruneBatch) {
		if keep {
			changed = append(changed, b.Workers...)
		}
		if o.Format == output.Name {
			for _, w := range b.Workers {
				fmt.Fprintln(app.Out, w.Name)
			}
		}
		if o.Progress && b.Number > 1 {
			progressed = true
			fmt.Fprintf(app.Err, "\r%s %d %s so far, %d examined", pruneVerb(po), b.Changed, pruneNoun(po, b.Changed), b.Scanned)
		}
	}
	res, err := workers.Prune(ctx, pool, po)
	if progressed {
		fmt.Fprintln(app.Err)
	}
	if err != nil {
		if ctx.Err() != nil {
			return &exitError{code: ExitInterrupt, err: fmt.Errorf("interrupted: %s %d %s before stopping; the batch in flight was rolled back (run it again to finish)", pruneVerb(po), res.Changed, pruneNoun(po, res.Changed))}
		}
		return explainWorkerError(ctx, app, pool, err, "pruning workers")
	}
	switch o.Format {
	case output.JSON, output.YAML:
		rep := pruneReport{Action: strings.ReplaceAll(po.Action(), " ", "_"), Scope: scope, Changed: res.Changed, Batches: res.Batches,
			ElapsedSeconds: math.Round(res.Elapsed.Seconds()*1000) / 1000, Workers: changed}
		if rep.Workers == nil {
			rep.Workers = []workers.PrunedWorker{}
		}
		if o.Format == output.JSON {
			return output.WriteJSON(app.Out, rep)
		}
		return output.WriteYAML(app.Out, rep)
	case output.Name:
		return nil
	}
	fmt.Fprintln(app.Out, pruneSummary(po, res))
	return nil
}

// pruneSummary is the one line prune prints (or logs) after a round.
func pruneSummary(po workers.PruneOptions, res workers.PruneResult) string {
	scope := describeSelector(po.Selector)
	if res.Changed == 0 {
		return fmt.Sprintf("nothing to %s (%s)", po.Action(), scope)
	}
	batches := "1 batch"
	if res.Batches != 1 {
		batches = fmt.Sprintf("%d batches", res.Batches)
	}
	return fmt.Sprintf("%s %d %s (%s; %s, %s)", pruneVerb(po), res.Changed, pruneNoun(po, res.Changed), scope, batches, res.Elapsed.Round(time.Millisecond))
}

func pruneVerb(po workers.PruneOptions) string {
	if po.Delete {
		return "deleted"
	}
	return "marked inactive"
}

func pruneNoun(po workers.PruneOptions, n int64) string {
	noun := "stale worker"
	if po.Delete {
		noun = "worker"
	}
	if n != 1 {
		noun += "s"
	}
	return noun
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// confirm asks on stderr and reads the answer from stdin: only y or yes
// (any case) agrees.
func confirm(app *App, prompt string) (bool, error) {
	fmt.Fprint(app.Err, prompt)
	line, err := bufio.NewReader(app.In).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("reading the answer: %w", err)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

func pruneDryRun(ctx context.Context, app *App, pool *pgxpool.Pool, o workerPruneOptions) error {
	po := o.pruneOptions()
	l, err := workers.PrunePreview(ctx, pool, po)
	if err != nil {
		return explainWorkerError(ctx, app, pool, err, "listing the workers to prune")
	}
	if err := printWorkers(app.Out, l, o.Format, o.Palette, true); err != nil {
		return err
	}
	n := int64(len(l.Workers))
	verb := "marked inactive"
	if po.Delete {
		verb = "deleted"
	}
	fmt.Fprintf(app.Err, "dry run: %d %s would be %s (%s); nothing was changed\n", n, pruneNoun(po, n), verb, describeSelector(po.Selector))
	return nil
}

// pruneEvery prunes now and then every o.Every until ctx is cancelled,
// logging each round. A failed round is logged and retried at the next one:
// the monitor outlives a database restart.
func pruneEvery(ctx context.Context, app *App, pool *pgxpool.Pool, o workerPruneOptions) error {
	po := o.pruneOptions()
	scope := describeSelector(po.Selector)
	app.Log.Info("pruning workers periodically", "action", po.Action(), "scope", scope, "every", o.Every, "dry_run", o.DryRun)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			app.Log.Info("stopped pruning")
			return nil
		case <-timer.C:
		}
		if o.DryRun {
			n, err := workers.PruneCount(ctx, pool, po)
			switch {
			case ctx.Err() != nil:
			case err != nil:
				app.Log.Error("counting the workers to prune failed; retrying at the next round", "err", explainWorkerError(ctx, app, pool, err, "counting the workers to prune"))
			default:
				app.Log.Info("dry run: nothing was changed", "would_"+strings.ReplaceAll(po.Action(), " ", "_"), n, "scope", scope)
			}
		} else {
			res, err := workers.Prune(ctx, pool, po)
			switch {
			case ctx.Err() != nil:
				if res.Changed > 0 {
					app.Log.Info(pruneSummary(po, res))
				}
			case err != nil:
				app.Log.Error("pruning failed; retrying at the next round", "changed_before_error", res.Changed, "err", explainWorkerError(ctx, app, pool, err, "pruning workers"))
			case res.Changed > 0:
				app.Log.Info(pruneSummary(po, res), "changed", res.Changed, "batches", res.Batches)
			default:
				app.Log.Debug(pruneSummary(po, res))
			}
		}
		timer.Reset(o.Every)
	}
}

// ---------------------------------------------------------------- errors

// workerQueryError is a database error explained for the operator; the
// original stays reachable for errors.Is/As.
type workerQueryError struct {
	msg string
	err error
}

func (e *workerQueryError) Error() string { return e.msg }
func (e *workerQueryError) Unwrap() error { return e.err }

// explainWorkerError says what failed while doing what. A statement that
// ran into database.statement_timeout says that the worker table is locked
// or the server overloaded — and, when it can find them, who holds an
// exclusive lock on the table — instead of PostgreSQL's bare "canceling
// statement due to statement timeout". A filter value the database cannot
// hold is bad input (exit status 2).
func explainWorkerError(ctx context.Context, app *App, pool *pgxpool.Pool, err error, what string) error {
	var inv *workers.InvalidValueError
	if errors.As(err, &inv) {
		return usageError(err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: interrupted: %w", what, ctx.Err())
	}
	err = database.RedactError(err)
	if database.IsTimeout(err) {
		after := "timed out"
		if t := statementTimeout(app); t > 0 {
			after = "timed out after " + t.String()
		}
		msg := fmt.Sprintf("%s: %s: the worker table is locked or the server is overloaded", what, after)
		if holders := workerLockHolders(pool); holders != "" {
			msg += " (" + holders + ")"
		}
		msg += "; retry later, find the blocking session in pg_stat_activity, or raise database.statement_timeout"
		return &workerQueryError{msg: msg, err: err}
	}
	return fmt.Errorf("%s: %w", what, err)
}

func statementTimeout(app *App) time.Duration {
	if app == nil || app.Config == nil {
		return 0
	}
	return app.Config.Database.StatementTimeout.D()
}

// workerLockHolders names the sessions holding or waiting for a lock on
// the worker table that conflicts with reading it, e.g. "locked by pid 4242
// (psql, user attune, in transaction for 35s)". Best effort: empty when it
// cannot tell within a second.
func workerLockHolders(pool *pgxpool.Pool) string {
	if pool == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	rows, err := pool.Query(ctx, `
		SELECT l.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''),
		       coalesce(extract(epoch FROM now() - a.xact_start)::float8, 0)
		FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'relation' AND l.relation = to_regclass('worker')
		  AND l.granted AND l.mode = 'AccessExclusiveLock' AND l.pid <> pg_backend_pid()
		ORDER BY l.pid LIMIT 3`)
	if err != nil {
		return ""
	}
	defer rows.Close()
	var parts []string
	for rows.Next() {
		var (
			pid       int32
			app, user string
			secs      float64
		)
		if rows.Scan(&pid, &app, &user, &secs) != nil {
			return ""
		}
		who := []string{}
		if app != "" {
			who = append(who, app)
		}
		if user != "" {
			who = append(who, "user "+user)
		}
		who = append(who, "in a transaction for "+output.Duration(time.Duration(secs*float64(time.Second))))
		parts = append(parts, fmt.Sprintf("pid %d: %s", pid, strings.Join(who, ", ")))
	}
	if rows.Err() != nil || len(parts) == 0 {
		return ""
	}
	return "locked exclusively by " + strings.Join(parts, "; ")
}
