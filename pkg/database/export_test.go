package database

import "context"

// ForgetSecrets empties the secrets RememberSecrets collected, so that one
// test's passwords do not mask text in another's.
func ForgetSecrets() {
	secrets.mu.Lock()
	defer secrets.mu.Unlock()
	secrets.list, secrets.seen = nil, nil
}

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

// MigrationLockID is the advisory lock id that serialises migrations of
// schema, for operators looking at pg_locks and for tests.
func MigrationLockID(schema string) int64 { return migrationLockID(schema) }
