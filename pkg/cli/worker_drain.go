package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/output"
	"github.com/attune-automation/attunectl/pkg/placement"
)

// Drain defaults, as placement applies them.
const (
	defaultDrainDeadline = 10 * time.Minute
	defaultDrainBudget   = 2
	// drainPollInterval is how often --wait looks at the drain.
	drainPollInterval = time.Second
)

// workerDrainOptions are the options of `worker drain`.
type workerDrainOptions struct {
	Name     string
	Deadline time.Duration
	Budget   int
	Reason   string
	Wait     bool
	By       string
	// Poll is how often --wait looks (drainPollInterval; tests shorten it).
	Poll   time.Duration
	Format output.Format
}

// Validate checks the deadline and budget.
func (o *workerDrainOptions) Validate() error {
	if o.Deadline <= 0 {
		return usageErrorf("--deadline %s: must be positive", o.Deadline)
	}
	if o.Budget < 1 {
		return usageErrorf("--budget %d: must be at least 1", o.Budget)
	}
	return nil
}

func newWorkerDrainCmd(app *App) *cobra.Command {
	o := &workerDrainOptions{Poll: drainPollInterval}
	cmd := &cobra.Command{
		Use:   "drain NAME [--deadline DURATION] [--budget N] [--wait]",
		Short: "Cordon a worker and move its sensors to other workers",
		Long: `Drain a worker: cordon it (it takes no new sensors), then let it hand its
sensors over to other eligible workers, --budget of them per interval (like
Nomad's max_parallel), each stopped before another worker starts it. At the
deadline, whatever it still holds is released regardless (ledger reason
drained) and its next renewal fails, so it stops those sensors at once.
Draining a worker that is draining replaces its deadline and budget.

Without --wait the command returns once the drain is recorded. With --wait it
returns when the worker holds nothing, with a summary: how many sensors were
handed over, how many were released at the deadline, and how long it took.
Interrupting --wait (Ctrl-C) leaves the drain in place (exit status 130);
` + "`attunectl worker uncordon NAME`" + ` cancels it.

A sensor with nowhere else to go stays on the draining worker until the
deadline. An unknown worker is an error (exit 2).

Output (-o): table (default: what happened, in words), json and yaml (the
drain: worker, held, deadline, budget, handed_over, released_at_deadline,
requested_at, finished_at).`,
		Example: `  attunectl worker drain sensor-web-01
  attunectl worker drain sensor-web-01 --deadline 5m --budget 5 --wait
  attunectl worker drain sensor-web-01 --deadline 300 --wait && ssh web-01 sudo reboot`,
		Args:              exactArgs(1),
		ValidArgsFunction: completeOneWorkerName(app),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			f, err := app.outputFormat(cmd)
			if err != nil {
				return err
			}
			o.Name, o.Format, o.By = args[0], f, operatorName(app)
			return withDB(cmd.Context(), app, func(db *database.DB) error {
				return runWorkerDrain(cmd.Context(), app, db, *o)
			})
		},
	}
	offerFormats(cmd, output.Formats{output.Table, output.JSON, output.YAML})
	fs := cmd.Flags()
	durationVar(fs, &o.Deadline, "deadline", defaultDrainDeadline, "release whatever the worker still holds after this long (seconds, or 90s, 5m)")
	fs.IntVar(&o.Budget, "budget", defaultDrainBudget, "sensors handed over per interval")
	fs.StringVar(&o.Reason, "reason", "", `cordon reason (default "draining")`)
	fs.BoolVar(&o.Wait, "wait", false, "return when the worker holds nothing, with a summary")
	return cmd
}

// runWorkerDrain records the drain and, with o.Wait, follows it to its end.
func runWorkerDrain(ctx context.Context, app *App, db *database.DB, o workerDrainOptions) error {
	st, err := placement.Drain(ctx, db, o.Name, placement.DrainOptions{Deadline: o.Deadline, Budget: o.Budget, Reason: o.Reason, By: o.By})
	if errors.Is(err, placement.ErrWorkerNotFound) {
		return usageError(fmt.Errorf("%w; nothing was changed", err))
	}
	if err != nil {
		return database.RedactError(err)
	}
	name := output.Escape(o.Name)
	table := o.Format == output.Table
	if table {
		fmt.Fprintf(app.Out, "worker %s cordoned and draining: it hands over up to %d %s per interval; what it holds after %s is released\n",
			name, st.Budget, sensorsWord(st.Budget), output.Duration(o.Deadline))
	}
	if o.Wait {
		if st, err = waitDrain(ctx, app, db, o, st); err != nil {
			return err
		}
	}
	if !table {
		return output.Write(app.Out, o.Format, drainView(st))
	}
	switch {
	case st.FinishedAt != nil:
		took := st.FinishedAt.Sub(st.RequestedAt)
		if took < 0 {
			took = 0
		}
		fmt.Fprintf(app.Out, "worker %s drained in %s: %d handed over, %d released at the deadline; it stays cordoned (`attunectl worker uncordon %s` lets it take sensors again)\n",
			name, output.Duration(took), st.HandedOver, st.AtDeadline, name)
	default:
		fmt.Fprintf(app.Out, "worker %s holds %d %s (follow with `attunectl sensor list --worker %s`, or drain with --wait)\n",
			name, st.Held, sensorsWord(st.Held), name)
	}
	return nil
}

// waitDrain steps the drain every o.Poll until it finishes; an interrupt
// leaves it in place and says so (exit 130).
func waitDrain(ctx context.Context, app *App, db *database.DB, o workerDrainOptions, st placement.DrainStatus) (placement.DrainStatus, error) {
	interrupted := func() (placement.DrainStatus, error) {
		return st, &exitError{code: ExitInterrupt, err: fmt.Errorf("interrupted: the drain of worker %s stays in place (it holds %d %s and ends at its deadline, %s; `attunectl worker uncordon %s` cancels it)",
			o.Name, st.Held, sensorsWord(st.Held), st.Deadline.UTC().Format(time.RFC3339), o.Name)}
	}
	held := -1
	t := time.NewTicker(o.Poll)
	defer t.Stop()
	for {
		next, err := placement.DrainStep(ctx, db, o.Name)
		if ctx.Err() != nil {
			return interrupted()
		}
		if err != nil {
			return st, database.RedactError(err)
		}
		st = next
		if st.FinishedAt != nil {
			return st, nil
		}
		if st.Held != held && app.IsStderrTTY() {
			fmt.Fprintf(app.Err, "waiting: worker %s holds %d %s\n", output.Escape(o.Name), st.Held, sensorsWord(st.Held))
		}
		held = st.Held
		select {
		case <-ctx.Done():
			return interrupted()
		case <-t.C:
		}
	}
}

// drainView is a drain in -o json and -o yaml, times in UTC.
func drainView(st placement.DrainStatus) placement.DrainStatus {
	st.Deadline, st.RequestedAt = st.Deadline.UTC(), st.RequestedAt.UTC()
	if st.FinishedAt != nil {
		t := st.FinishedAt.UTC()
		st.FinishedAt = &t
	}
	return st
}

func sensorsWord(n int) string {
	if n == 1 {
		return "sensor"
	}
	return "sensors"
}
