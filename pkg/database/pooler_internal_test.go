package database

import (
	"testing"
	"time"
)

// TestPoolerSettingsNotInFrontOf: the statements that must not get the
// settings in front of them (transaction ends, statements that refuse a
// transaction block), and ones that must.
func TestPoolerSettingsNotInFrontOf(t *testing.T) {
	for q, skip := range map[string]bool{
		"commit":                              true,
		"  ROLLBACK":                          true,
		"rollback to savepoint s":             true,
		"end":                                 true,
		"VACUUM ANALYZE worker":               true,
		"create index concurrently i on w(x)": true,
		"CREATE UNIQUE INDEX CONCURRENTLY i ON w (x)": true,
		"reindex table concurrently worker":           true,
		"create database x":                           true,
		"begin":                                       false,
		"begin isolation level serializable":          false,
		"SELECT 1":                                    false,
		"-- ping":                                     false,
		"UPDATE worker SET x = 1":                     false,
		"create index i on w (x)":                     false,
		"endpoint_stuff()":                            false,
	} {
		if got := noPrefix.MatchString(q); got != skip {
			t.Errorf("%q: skipped %v, want %v", q, got, skip)
		}
	}
}

func TestPoolerSettingsSQL(t *testing.T) {
	got := poolerSettings(`we"ird'schema`, Options{StatementTimeout: 2500 * time.Millisecond})
	want := `SELECT pg_catalog.set_config('search_path', '"we""ird''schema", public', true), pg_catalog.set_config('jit', 'off', true), pg_catalog.set_config('statement_timeout', '2500', true)`
	if got != want {
		t.Errorf("poolerSettings =\n%s\nwant\n%s", got, want)
	}
}
