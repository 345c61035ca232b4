package cli

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/output"
	"github.com/attune-automation/attunectl/pkg/workers"
	"github.com/spf13/cobra"
)

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
	// Embedded: no database is configured, so the embedded one, whose enum
	// labels are attunectl's own, would serve: filters are checked before
	// it starts.
	Embedded bool
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
	if o.Embedded {
		if err := filterValueError(workers.CheckFilterValues(o.Selector.selector().Roles, "")); err != nil {
			return err
		}
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
without --yes it refuses (exit status 2). The prompt first lists the workers
that would change (the first 20, then a count); any answer but y or yes
prints "aborted" and exits 1 with nothing changed. At the end it prints the count
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
			f, err := app.outputFormat(cmd)
			if err != nil {
				return err
			}
			o.Format, o.Palette = f, app.palette()
			o.Interactive = app.IsStdinTTY() && app.IsStderrTTY()
			o.Progress = app.IsStderrTTY()
			o.Embedded = app.Config.Database.URL == ""
			if err := o.Validate(); err != nil {
				return err
			}
			db, err := app.connect(cmd.Context(), connectOptions{})
			if err != nil {
				return err
			}
			defer db.Close()
			return runWorkerPrune(cmd.Context(), app, db, *o)
		},
	}
	offerFormats(cmd, workerFormats)
	fs := cmd.Flags()
	addSelectorFlags(cmd, &o.Selector, []string{workers.RoleSensor}, "only workers of these roles: sensor, action, hybrid, or all (comma-separated or repeated)")
	fs.BoolVar(&o.Delete, "delete", false, "delete workers inactive or stale for longer than --older-than instead of marking stale workers inactive")
	durationVar(fs, &o.OlderThan, "older-than", 0, "with --delete (required): delete workers silent for longer than this, e.g. 720h; without: the grace, as for worker stale")
	fs.IntVar(&o.BatchSize, "batch-size", workers.DefaultPruneBatchSize, "workers examined (and so changed at most) per statement and transaction")
	fs.BoolVar(&o.DryRun, "dry-run", false, "list the workers that would change and change nothing (wins over --yes)")
	fs.BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation")
	durationVar(fs, &o.Every, "every", 0, "keep running and prune on this interval until SIGINT/SIGTERM (needs --yes or --dry-run)")
	return cmd
}

// maxPromptListing is how many of the workers a prune will change it lists
// before asking; the rest are counted.
const maxPromptListing = 20

// pruneReport is prune's result in -o json and -o yaml.
type pruneReport struct {
	Action         string                 `json:"action"` // mark_inactive or delete
	Scope          string                 `json:"scope"`
	Changed        int64                  `json:"changed"`
	Batches        int                    `json:"batches"`
	ElapsedSeconds float64                `json:"elapsed_seconds"`
	Workers        []workers.PrunedWorker `json:"workers"`
}

func runWorkerPrune(ctx context.Context, app *App, db *database.DB, o workerPruneOptions) error {
	po := o.pruneOptions()
	if err := workers.CheckFilters(db, po.Roles, ""); err != nil {
		return explainWorkerError(ctx, app, db, err, "checking the filters")
	}
	if o.Every > 0 {
		return pruneEvery(ctx, app, db, o)
	}
	if o.DryRun {
		return pruneDryRun(ctx, app, db, o)
	}
	scope := describeSelector(po.Selector)
	if !o.Yes {
		l, err := workers.PrunePreview(ctx, db, po)
		if err != nil {
			return explainWorkerError(ctx, app, db, err, "listing the workers to prune")
		}
		n := int64(len(l.Workers))
		if n == 0 {
			fmt.Fprintf(app.Out, "nothing to %s (%s)\n", po.Action(), scope)
			return nil
		}
		// Show what will change before asking (on stderr: stdout is the result).
		shown := l
		if len(l.Workers) > maxPromptListing {
			shown.Workers = l.Workers[:maxPromptListing]
		}
		if err := printWorkers(app.Err, workerListing{Listing: shown}, output.Table, app.stderrPalette(), true); err != nil {
			return err
		}
		if more := len(l.Workers) - len(shown.Workers); more > 0 {
			fmt.Fprintf(app.Err, "… and %d more\n", more)
		}
		ok, err := confirm(app, fmt.Sprintf("%s %d %s (%s)? [y/N] ", capitalize(po.Action()), n, pruneNoun(po, n), scope))
		if err != nil {
			return err
		}
		if !ok {
			fmt.Fprintln(app.Err, "aborted: nothing was changed")
			return &exitError{code: ExitError}
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
				fmt.Fprintln(app.Out, output.Escape(w.Name))
			}
		}
		if o.Progress && b.Number > 1 {
			progressed = true
			fmt.Fprintf(app.Err, "\r%s %d %s so far, %d examined", pruneVerb(po), b.Changed, pruneNoun(po, b.Changed), b.Scanned)
		}
	}
	res, err := workers.Prune(ctx, db, po)
	if progressed {
		fmt.Fprintln(app.Err)
	}
	if err != nil {
		if ctx.Err() != nil {
			return &exitError{code: ExitInterrupt, err: fmt.Errorf("interrupted: %s %d %s before stopping; the batch in flight was rolled back (run it again to finish)", pruneVerb(po), res.Changed, pruneNoun(po, res.Changed))}
		}
		return explainWorkerError(ctx, app, db, err, "pruning workers")
	}
	switch o.Format {
	case output.JSON, output.YAML:
		rep := pruneReport{Action: strings.ReplaceAll(po.Action(), " ", "_"), Scope: scope, Changed: res.Changed, Batches: res.Batches,
			ElapsedSeconds: math.Round(res.Elapsed.Seconds()*1000) / 1000, Workers: changed}
		if rep.Workers == nil {
			rep.Workers = []workers.PrunedWorker{}
		}
		return output.Write(app.Out, o.Format, rep)
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

func pruneDryRun(ctx context.Context, app *App, db *database.DB, o workerPruneOptions) error {
	po := o.pruneOptions()
	// Streamed: a dry run of a big prune lists every worker it would change.
	p := workerSpec(true, false).NewPrinter(app.Out, o.Format, output.PrinterOptions{Palette: o.Palette})
	n, err := printStream(ctx, app, db, p, "listing the workers to prune", func(fn func(workers.Row) error) (workers.StreamResult, error) {
		return workers.StreamPrunePreview(ctx, db, po, workers.StreamOptions{Fields: workerFields(o.Format, false, o.Palette)}, fn)
	})
	if err != nil {
		return err
	}
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
func pruneEvery(ctx context.Context, app *App, db *database.DB, o workerPruneOptions) error {
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
			n, err := workers.PruneCount(ctx, db, po)
			switch {
			case ctx.Err() != nil:
			case err != nil:
				app.Log.Error("counting the workers to prune failed; retrying at the next round", "err", explainWorkerError(ctx, app, db, err, "counting the workers to prune"))
			default:
				app.Log.Info("dry run: nothing was changed", "would_"+strings.ReplaceAll(po.Action(), " ", "_"), n, "scope", scope)
			}
		} else {
			res, err := workers.Prune(ctx, db, po)
			switch {
			case ctx.Err() != nil:
				if res.Changed > 0 {
					app.Log.Info(pruneSummary(po, res))
				}
			case err != nil:
				app.Log.Error("pruning failed; retrying at the next round", "changed_before_error", res.Changed, "err", explainWorkerError(ctx, app, db, err, "pruning workers"))
			case res.Changed > 0:
				app.Log.Info(pruneSummary(po, res), "changed", res.Changed, "batches", res.Batches)
			default:
				app.Log.Debug(pruneSummary(po, res))
			}
		}
		timer.Reset(o.Every)
	}
}
