package database

import "context"

// Preflight runs the pre-flight of `migrate up` alone, for the tests.
func (m *Migrator) Preflight(ctx context.Context, target int64) error {
	return m.preflight(ctx, target)
}
