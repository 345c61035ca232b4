package database

import "context"

// Preflight runs the pre-flight of `migrate up` alone, for the tests.
func (m *Migrator) Preflight(ctx context.Context, target int64) error {
	return m.preflight(ctx, target)
}

// UpWithoutPreflight applies the migrations as goose alone would, without the
// pre-flight: what happens when goose is run by other means.
func (m *Migrator) UpWithoutPreflight(ctx context.Context) error {
	_, err := m.provider.Up(ctx)
	return err
}
