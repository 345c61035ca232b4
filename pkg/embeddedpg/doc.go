// Package embeddedpg runs a local PostgreSQL server from the server binaries
// already installed on the machine (initdb, pg_ctl, postgres). attunectl uses
// it as its default database when none is configured, and the test harness
// (pkg/dbtest) uses it for a throwaway server per test binary.
//
// One data directory has at most one server. Start is idempotent and safe to
// call from several processes at once: it holds an exclusive flock on a lock
// file beside the data directory while it initializes, adopts or launches the
// server, so concurrent callers end up sharing one server.
//
// Files beside a data directory DIR (for example ~/.local/state/attunectl/postgres):
//
//	DIR/                the cluster, created by initdb; socket .s.PGSQL.<port> inside it by default
//	DIR/attunectl.pgpass the superuser's generated password (libpq password file, 0600)
//	DIR.lock            the lock file Start and StopDir hold while they work
//	DIR.log             the server log, appended to and never truncated
//	DIR.socketdir       the socket directory Start made under /tmp, when DIR is too long for a socket
//	DIR.initdb/         initdb's work directory, renamed to DIR when initdb succeeds
//
// The server's own settings (port, sockets, listen addresses, Options.Settings)
// are written to DIR/attunectl.conf at every start and included from
// postgresql.conf. pg_hba.conf and pg_ident.conf are attunectl's while they
// start with its header (rewritten at every start; a cluster of an older
// attunectl, which trusted local connections, is upgraded that way): the
// Unix socket takes peer authentication for the invoking OS user only, the
// loopback addresses (listened on only when Options.ListenAddress is set)
// the password in DIR/attunectl.pgpass by scram-sha-256. The socket
// directory is checked before every use: a directory, not a symbolic link,
// owned by the server's user and writable by no one else (auth.go,
// socketdir.go). The cluster uses the C locale and UTF8.
//
// PostgreSQL refuses to run as root. When this process is root, initdb,
// pg_ctl and postgres run as an unprivileged user (Options.RunAsUser, by
// default "postgres", else "nobody"), and the data directory, socket directory
// and log file are owned by that user.
package embeddedpg
