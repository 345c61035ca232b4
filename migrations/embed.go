// Package migrations holds attunectl's goose migrations, embedded in the binary.
//
// The SQL uses unqualified names: the connection's search_path decides the
// schema, so the same files serve any --schema. Every migration creates only
// what is missing, so that running them on a database where Attune already
// created the worker and runtime tables adopts those tables instead of failing.
// Objects a migration did create are marked with a comment that begins with
// "attunectl:"; the down steps drop only objects carrying that mark, so that
// `migrate down` never drops a table, column, type or index someone else made.
package migrations

import "embed"

// FS holds the migration files, NNNNN_name.sql.
//
//go:embed *.sql
var FS embed.FS
