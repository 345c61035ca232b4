package embeddedpg

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Authentication. Another local user must not be able to connect to the
// embedded server: whoever can write its runtime rows decides what every
// sensor host runs. So:
//
//   - On the Unix socket, peer authentication mapped to the invoking user:
//     the server asks the kernel which OS user is at the other end
//     (SO_PEERCRED), and pg_ident.conf maps only the user attunectl runs as
//     (root, when root started it) to the superuser role. Any other OS user
//     — nobody, and the server's own user postgres — is refused even when it
//     can reach the socket. When the invoking user has no name in the user
//     database, peer cannot work and the socket takes the password instead.
//   - Over TCP (only with Options.ListenAddress, loopback only):
//     scram-sha-256 with a generated password.
//   - The password: 32 random bytes, hex, set on the superuser role and kept
//     in DIR/attunectl.pgpass (a libpq password file, mode 0600, owned by
//     the server's user inside the 0700 data directory). Connection strings
//     name the file (passfile=…), never the password.
//
// A cluster made by an older attunectl (trust for every local connection)
// is upgraded by the next Start: the password is set over the old trust
// connection, pg_hba.conf and pg_ident.conf are rewritten, and a running
// server reloads them. A pg_hba.conf someone edited (it no longer starts
// with attunectl's header) is left alone.

const (
	// passFileName is the libpq password file inside the data directory.
	passFileName = "attunectl.pgpass"
	// identMap is the pg_ident.conf map of the invoking user.
	identMap = "attunectl"
	// hbaHeader starts the pg_hba.conf and pg_ident.conf attunectl writes;
	// only such a file is rewritten.
	hbaHeader = "# Written by attunectl"
)

// PassFile is the password file of the superuser: connection strings name
// it with passfile=, and psql reads it the same way.
func (s *Server) PassFile() string { return filepath.Join(s.opts.DataDir, passFileName) }

// invokingUser is the OS user name peer authentication maps to the
// superuser, or "" when this process's uid has no name.
func invokingUser() string {
	u, err := user.Current()
	if err != nil || u.Username == "" || strings.ContainsAny(u.Username, " \t\n\"#") {
		return ""
	}
	return u.Username
}

// hbaConf is the pg_hba.conf attunectl writes: peer on the socket for the
// mapped user (or the password when there is no user name to map), the
// password over loopback TCP, nothing else. trustSocket (Options.TrustSocket,
// throwaway test servers on a private socket directory only): the socket
// trusts every connection.
func hbaConf(osUser string, trustSocket bool) string {
	local := "peer map=" + identMap
	if osUser == "" {
		local = "scram-sha-256"
	}
	socketRule := `# The Unix socket: only the OS user attunectl runs as (pg_ident.conf), by
# peer authentication.`
	if trustSocket {
		local = "trust"
		socketRule = `# The Unix socket: every connection, as any role (a throwaway test server,
# Options.TrustSocket: its socket directory admits only the server's user).`
	}
	return hbaHeader + ` at every start of this server: edits here are lost
# unless you remove this first line (then attunectl leaves the file alone).
` + socketRule + ` Loopback TCP (only when the server listens on it):
# the password in attunectl.pgpass. Everything else is rejected.
# TYPE  DATABASE     USER  ADDRESS        METHOD
local   all          all                  ` + local + `
host    all          all   127.0.0.1/32   scram-sha-256
host    all          all   ::1/128        scram-sha-256
local   replication  all                  ` + local + `
host    replication  all   127.0.0.1/32   scram-sha-256
host    replication  all   ::1/128        scram-sha-256
`
}

func identConf(osUser, role string) string {
	b := hbaHeader + " at every start of this server: the OS user attunectl runs as is the\n# only one peer authentication lets in, as the superuser role.\n# MAPNAME   SYSTEM-USERNAME   PG-USERNAME\n"
	if osUser != "" {
		b += identMap + "   " + osUser + "   " + role + "\n"
	}
	return b
}

// writeAuthFiles writes pg_hba.conf and pg_ident.conf when they are
// attunectl's (or missing) and differ from what they should be. changed:
// a running server must reload them.
func (s *Server) writeAuthFiles() (changed bool, err error) {
	osUser := invokingUser()
	for name, want := range map[string]string{
		"pg_hba.conf":   hbaConf(osUser, s.opts.TrustSocket),
		"pg_ident.conf": identConf(osUser, s.opts.Superuser),
	} {
		path := filepath.Join(s.opts.DataDir, name)
		have, err := os.ReadFile(path)
		if err == nil && (bytes.Equal(have, []byte(want)) || (len(have) > 0 && !bytes.HasPrefix(have, []byte(hbaHeader)) && !isPristine(name, have))) {
			continue
		}
		if err := s.writeOwnedFile(path, []byte(want)); err != nil {
			return changed, err
		}
		changed = true
	}
	return changed, nil
}

// isPristine: the file is initdb's, never edited by anyone (initdb writes
// a pg_ident.conf of comments only); attunectl may replace it.
func isPristine(name string, b []byte) bool {
	if name != "pg_ident.conf" {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// ensurePassword gives the superuser a generated password and writes it to
// PassFile, unless that file already holds one. It connects over the
// socket, which peer (or, on a cluster of an older attunectl, trust)
// authentication lets this process use without a password.
func (s *Server) ensurePassword(ctx context.Context) error {
	if b, err := os.ReadFile(s.PassFile()); err == nil && bytes.Count(b, []byte(":")) >= 4 {
		return nil
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return fmt.Errorf("generating the embedded server's password: %w", err)
	}
	pw := hex.EncodeToString(raw)
	conn, err := pgx.Connect(ctx, s.socketConnString("postgres"))
	if err != nil {
		return fmt.Errorf("connecting to the embedded server to set its password: %w", err)
	}
	defer conn.Close(context.Background())
	// synchronous_commit on for this session: an Ephemeral server commits
	// asynchronously, and a password lost in a crash right after Start
	// (a fault test's Kill) would leave the password file naming a password
	// the role no longer has — ensurePassword trusts the file from then on.
	if _, err := conn.Exec(ctx, "SET synchronous_commit = on"); err != nil {
		return fmt.Errorf("setting the embedded server's password: %w", err)
	}
	if _, err := conn.Exec(ctx, "SET password_encryption = 'scram-sha-256'"); err != nil {
		return fmt.Errorf("setting the embedded server's password: %w", err)
	}
	// A utility statement takes no parameters; the password is hex.
	if _, err := conn.Exec(ctx, "ALTER ROLE "+pgx.Identifier{s.opts.Superuser}.Sanitize()+" PASSWORD '"+pw+"'"); err != nil {
		return fmt.Errorf("setting the embedded server's password: %w", err)
	}
	line := "*:*:*:" + strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(s.opts.Superuser) + ":" + pw + "\n"
	return s.writeOwnedFile(s.PassFile(), []byte(line))
}

// secureAuth sets the password and the authentication files of a server
// that accepts connections; reload: tell it to re-read them when they
// changed (a server that was already running).
func (s *Server) secureAuth(ctx context.Context, reload bool) error {
	if err := s.ensurePassword(ctx); err != nil {
		return err
	}
	changed, err := s.writeAuthFiles()
	if err != nil || !changed || !reload {
		return err
	}
	conn, err := pgx.Connect(ctx, s.socketConnString("postgres"))
	if err != nil {
		return fmt.Errorf("connecting to the embedded server to reload its authentication settings: %w", err)
	}
	defer conn.Close(context.Background())
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_reload_conf()").Scan(&ok); err != nil || !ok {
		return fmt.Errorf("reloading the embedded server's authentication settings: %v (restart it: attunectl embedded stop)", err)
	}
	return nil
}
