package database

import (
	"path"
	"time"

	"github.com/pressly/goose/v3"
)

// MigrationResult is one migration applied or rolled back: attunectl's own
// type, so that callers (the cli) need not know goose.
type MigrationResult struct {
	Version int64
	// Name is the migration's file name, e.g. 00002_add_worker_role.sql.
	Name string
	// Down: it was rolled back (else applied).
	Down     bool
	Duration time.Duration
	// Err is why it failed; nil when it did not.
	Err error
}

// MigrationStatus is one embedded migration and whether it is applied.
type MigrationStatus struct {
	Version   int64
	Name      string
	Applied   bool
	AppliedAt time.Time // zero when unknown or pending
}

func migrationResult(r *goose.MigrationResult) *MigrationResult {
	if r == nil || r.Source == nil {
		return nil
	}
	return &MigrationResult{Version: r.Source.Version, Name: path.Base(r.Source.Path), Down: r.Direction == "down", Duration: r.Duration, Err: r.Error}
}

func migrationResults(rs []*goose.MigrationResult) []MigrationResult {
	out := make([]MigrationResult, 0, len(rs))
	for _, r := range rs {
		if m := migrationResult(r); m != nil {
			out = append(out, *m)
		}
	}
	return out
}
