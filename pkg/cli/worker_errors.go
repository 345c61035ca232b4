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

// explainWorkerError says what failed while doing what. A statement that
// ran into database.statement_timeout says that the worker table is locked
// or the server overloaded — and, when it can find them, who holds an
// exclusive lock on the table — instead of PostgreSQL's bare "canceling
// statement due to statement timeout". A filter value the database cannot
// hold is bad input (exit status 2).
func explainWorkerError(ctx context.Context, app *App, db *database.DB, err error, what string) error {
	var inv *workers.InvalidValueError
	if errors.As(err, &inv) {
		if inv.Field == "role" && !slices.Contains(inv.Valid, roleAll) {
			withAll := *inv
			withAll.Valid = append(slices.Clone(inv.Valid), roleAll)
			return usageError(&withAll)
		}
		return usageError(err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: interrupted: %w", what, ctx.Err())
	}
	err = database.RedactError(err)
	if database.IsTimeout(err) {
		var holders []workers.LockHolder
		if db != nil {
			holders = workers.LockHolders(ctx, db.Pool)
		}
		return database.ExplainTimeout(what, "worker", app.statementTimeout(), describeLockHolders(holders), err)
	}
	return fmt.Errorf("%s: %w", what, err)
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
