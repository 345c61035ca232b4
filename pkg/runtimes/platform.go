package runtimes

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/attune-automation/attunectl/pkg/database"
)

// ErrPlatformOwned is matched (errors.Is) by the error Add and Remove return
// for a runtime of Attune's platform catalog.
var ErrPlatformOwned = errors.New("runtime belongs to Attune's platform catalog")

// PlatformOwnedError names the runtimes of Attune's platform catalog a
// command was asked to change: rows with runtime.catalog_revision set
// (Attune's migration 20260916000001_platform_catalog), which only Attune's
// catalog reconciliation may write — its guard refuses everyone else, and
// attunectl never tries.
type PlatformOwnedError struct {
	Refs   []string
	Remove bool
}

func (e *PlatformOwnedError) Error() string {
	verb, what := "changes", "nothing was written"
	if e.Remove {
		verb, what = "removes", "nothing was removed"
	}
	noun := "runtime " + e.Refs[0] + " belongs"
	if len(e.Refs) > 1 {
		noun = "runtimes " + strings.Join(e.Refs, ", ") + " belong"
	}
	return fmt.Sprintf("%s to Attune's platform catalog: only Attune's catalog reconciliation %s it, and attunectl never does (%s); "+
		"add a runtime of your own instead (attunectl runtime add --ref PACK.NAME …), or a version of it to runtime_version through Attune", noun, verb, what)
}

func (e *PlatformOwnedError) Is(target error) bool { return target == ErrPlatformOwned }

// platformOwned returns those of refs that Attune's platform catalog owns
// (none on a runtime table without catalog_revision).
func platformOwned(ctx context.Context, db *database.DB, refs []string) ([]string, error) {
	if len(refs) == 0 || !db.Facts.Has("runtime", "catalog_revision") {
		return nil, nil
	}
	rows, err := db.Pool.Query(ctx, `SELECT ref FROM runtime WHERE ref = ANY($1) AND catalog_revision IS NOT NULL ORDER BY ref`, refs)
	if err != nil {
		return nil, fmt.Errorf("reading the platform catalog's runtimes: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
