package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/output"
	"github.com/attune-automation/attunectl/pkg/workers"
)

// explainWorkerError says what failed while doing what. A stream's error
// after its first batch says what really stopped it (explainStreamError).
// Any other statement that ran into database.statement_timeout says that the worker table is locked
// or the server overloaded — and, when it can find them, who holds an
// exclusive lock on the table — instead of PostgreSQL's bare "canceling
// statement due to statement timeout". A filter value the database cannot
// hold is bad input (exit status 2).
// filterValueError is the usage error of a role or status filter the worker
// table cannot hold (a role list then offers "all" too), or nil when err is
// not one.
func filterValueError(err error) error {
	var inv *workers.InvalidValueError
	if !errors.As(err, &inv) {
		return nil
	}
	if inv.Field == "role" && !slices.Contains(inv.Valid, roleAll) {
		withAll := *inv
		withAll.Valid = append(slices.Clone(inv.Valid), roleAll)
		return usageError(&withAll)
	}
	return usageError(err)
}

func explainWorkerError(ctx context.Context, app *App, db *database.DB, err error, what string) error {
	if bad := filterValueError(err); bad != nil {
		return bad
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: interrupted: %w", what, ctx.Err())
	}
	err = database.RedactError(err)
	var se *workers.StreamError
	if errors.As(err, &se) {
		if se.Batch > 0 {
			return explainStreamError(app, se, what, err)
		}
		// Before the first row (connecting, waiting for the statement) a stream
		// fails as any statement does: explained the same way.
		err = database.RedactError(se.Err)
	}
	if database.IsTimeout(err) {
		var holders []workers.LockHolder
		if db != nil {
			holders = workers.LockHolders(ctx, db)
		}
		return database.ExplainTimeout(what, "worker", app.statementTimeout(), describeLockHolders(holders), err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// explainStreamError says what stopped a stream after its first rows.
// The statement timeout there bounds the server's work for one batch
// (workers.Stream keeps it per batch), never the time the rows took to be
// printed or read: so it is the server that was slow, not a lock (the
// statement already holds its lock), and not a slow terminal or pager.
// (A timeout before the first row is a wait for a lock, explained as for
// any other statement.)
func explainStreamError(app *App, se *workers.StreamError, what string, err error) error {
	switch {
	case se.ReadTooSlowly():
		return database.WithMessage(fmt.Sprintf("%s: %s: the server ended the session because the output was read too slowly "+
			"(idle_in_transaction_session_timeout; %d rows were printed): write the output to a file, or raise that setting for this role", what, se.Step, se.Delivered), err)
	case database.IsTimeout(err):
		after := "the statement timeout"
		if t := app.statementTimeout(); t > 0 {
			after = "database.statement_timeout (" + t.String() + ")"
		}
		return database.WithMessage(fmt.Sprintf("%s: %s: the server took longer than %s to produce the next %d rows (%d were printed before): "+
			"the time spent printing them does not count, so the server is overloaded or the filters make it scan far more rows than it returns; "+
			"narrow the filters, retry later, or raise database.statement_timeout", what, se.Step, after, se.BatchSize, se.Delivered), err)
	}
	return fmt.Errorf("%s: %s: %w", what, se.Step, se.Err)
}

// describeLockHolders names the sessions holding the worker table, e.g.
// "locked exclusively by pid 4242: psql, user attune, in a transaction for 35s".
func describeLockHolders(hs []workers.LockHolder) string {
	if len(hs) == 0 {
		return ""
	}
	parts := make([]string, 0, len(hs))
	for _, h := range hs {
		var who []string
		if h.Application != "" {
			who = append(who, h.Application)
		}
		if h.User != "" {
			who = append(who, "user "+h.User)
		}
		who = append(who, "in a transaction for "+output.Duration(h.InTransaction))
		parts = append(parts, fmt.Sprintf("pid %d: %s", h.PID, strings.Join(who, ", ")))
	}
	return "locked exclusively by " + strings.Join(parts, "; ")
}
