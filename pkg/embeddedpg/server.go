package embeddedpg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Server is a running PostgreSQL server on one data directory, started or
// adopted by Start.
type Server struct {
	opts Options // with every default filled in
	run  runAs

	// opMu serializes Stop, Kill and Restart.
	opMu sync.Mutex

	// mu guards the fields below: where the server is and, when this
	// process spawned it in the foreground, the child.
	mu        sync.Mutex
	pid       int
	port      int
	socketDir string
	listen    string // the server's first listen address, "" for socket only
	child     *child

	// createdDB is set when this Start created the database "attune".
	createdDB bool
}

// child is a postgres process this process spawned (Options.Foreground).
type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and been reaped
	err  error         // cmd.Wait's result, valid after done
}

// Start makes sure a server runs on opts.DataDir and returns it. It creates
// the cluster (initdb) when the directory is missing or empty, starts the
// server unless one already runs there (postmaster.pid names a live process
// that accepts connections), waits until it accepts connections (bounded by
// ctx) and creates the database "attune" when missing.
//
// Start holds an exclusive lock on DataDir.lock while it works, so several
// processes or goroutines calling Start at once end with one server and all
// succeed. A Server returned for an adopted server has no child process;
// its Stop still stops the server. An adopted server keeps the port and
// socket it was started with; Port, SocketDir and ConnString report those
// (from its postmaster.pid), not opts.
func Start(ctx context.Context, opts Options) (*Server, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := o.resolveBinDir(); err != nil {
		return nil, err
	}
	run, err := resolveRunAs(o.RunAsUser)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: o, run: run}
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) start(ctx context.Context) error {
	o := s.opts
	if err := s.prepareDirs(); err != nil {
		return err
	}
	unlock, err := lockFile(ctx, o.DataDir+".lock")
	if err != nil {
		return fmt.Errorf("starting postgresql in %s: %w", o.DataDir, err)
	}
	defer unlock()

	adopted, err := s.adopt(ctx)
	if err != nil {
		return err
	}
	if !adopted {
		if err := s.initdb(ctx); err != nil {
			return err
		}
		if err := s.launch(ctx); err != nil {
			return err
		}
	}
	if err := s.ensureDatabase(ctx); err != nil {
		if !adopted {
			s.mu.Lock()
			foreground := s.child != nil
			s.mu.Unlock()
			if foreground {
				_ = s.shutdown(context.Background(), sigImmediate, true)
			}
		}
		return err
	}
	return nil
}

// prepareDirs creates the directories around the data directory and checks
// that the server's user can reach them.
func (s *Server) prepareDirs() error {
	o := s.opts
	for _, dir := range []string{filepath.Dir(o.DataDir), filepath.Dir(o.LogFile)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating %s for the embedded database: %w (choose a data directory you can write to)", dir, err)
		}
	}
	// The server's user opens the data directory and the socket directory
	// and, when pg_ctl starts it, the log file.
	reach := []string{filepath.Dir(o.DataDir), filepath.Dir(o.SocketDir)}
	if !o.Foreground {
		reach = append(reach, filepath.Dir(o.LogFile))
	}
	for _, dir := range reach {
		if err := s.run.checkTraversable(dir); err != nil {
			return fmt.Errorf("preparing the embedded database: %w", err)
		}
	}
	return nil
}

// adopt finds a server already running on the data directory and waits
// until it accepts connections. false when none runs.
func (s *Server) adopt(ctx context.Context) (bool, error) {
	o := s.opts
	pf, err := readPidFile(o.DataDir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", filepath.Join(o.DataDir, "postmaster.pid"), err)
	}
	if !processAlive(pf.pid) {
		return false, nil // stale: the server crashed or was killed; postgres cleans up at start
	}
	if name := processName(pf.pid); name != "" && !strings.Contains(name, "postgres") && !strings.Contains(name, "postmaster") {
		return false, fmt.Errorf("%s names pid %d, which is not a PostgreSQL server (it is %q): if no server runs on %s, remove that postmaster.pid and try again",
			filepath.Join(o.DataDir, "postmaster.pid"), pf.pid, name, o.DataDir)
	}
	if err := s.waitReady(ctx, pf.pid, nil); err != nil {
		return false, fmt.Errorf("a server (pid %d) already runs on %s but does not accept connections: %w%s\n(it may still be recovering: wait and try again, or stop it with `attunectl embedded stop`)",
			pf.pid, o.DataDir, err, s.logTail())
	}
	return true, nil
}

// initdb creates the cluster when the data directory is missing or empty.
// When it is missing, initdb works in a sibling directory that is renamed
// into place once it has succeeded, so an interrupted initdb never leaves a
// half-made cluster that later starts would trip over. An existing empty
// directory (perhaps a mount point) is initialized in place.
func (s *Server) initdb(ctx context.Context) error {
	o := s.opts
	if _, err := os.Stat(filepath.Join(o.DataDir, "PG_VERSION")); err == nil {
		return nil
	}
	target := o.DataDir
	entries, err := os.ReadDir(o.DataDir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		target = o.DataDir + ".initdb"
		if err := os.RemoveAll(target); err != nil { // left by an interrupted initdb; we hold the lock
			return fmt.Errorf("removing the leftovers of an interrupted initdb in %s: %w", target, err)
		}
		if err := os.Mkdir(target, 0o700); err != nil {
			return fmt.Errorf("creating %s for initdb: %w", target, err)
		}
		defer os.RemoveAll(target)
	case err != nil:
		return fmt.Errorf("reading data directory %s: %w", o.DataDir, err)
	case len(entries) > 0:
		return fmt.Errorf("data directory %s is not empty but holds no PostgreSQL cluster (no PG_VERSION): empty it or choose another data directory", o.DataDir)
	default:
		if err := os.Chmod(o.DataDir, 0o700); err != nil {
			return fmt.Errorf("restricting data directory %s to its owner: %w", o.DataDir, err)
		}
	}
	if err := s.run.chown(target); err != nil {
		return fmt.Errorf("preparing data directory: %w", err)
	}
	args := []string{"-D", target, "-U", o.Superuser, "--auth=trust", "--encoding=UTF8", "--locale=C"}
	if o.Ephemeral {
		args = append(args, "--no-sync")
	}
	out, err := s.command(ctx, "initdb", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("initializing a postgresql cluster in %s with %s: %w\n%s\n(fix the problem initdb reports and try again)",
			o.DataDir, filepath.Join(o.BinDir, "initdb"), err, indent(lastLines(string(out), 15)))
	}
	if err := s.writeOwnedFile(filepath.Join(target, "pg_hba.conf"), []byte(hbaConf)); err != nil {
		return err
	}
	if target != o.DataDir {
		if err := os.Rename(target, o.DataDir); err != nil {
			return fmt.Errorf("moving the new cluster into %s: %w", o.DataDir, err)
		}
	}
	return nil
}

// hbaConf trusts local connections only. TCP is reachable only when
// Options.ListenAddress is set, and then only from the loopback addresses.
const hbaConf = `# Written by attunectl when it initialized this cluster: trust the Unix socket
# (restricted to the server's user by unix_socket_permissions, root aside)
# and the loopback addresses, reject everything else.
# TYPE  DATABASE     USER  ADDRESS        METHOD
local   all          all                  trust
host    all          all   127.0.0.1/32   trust
host    all          all   ::1/128        trust
local   replication  all                  trust
host    replication  all   127.0.0.1/32   trust
host    replication  all   ::1/128        trust
`

// launch starts a server on an initialized, stopped data directory.
func (s *Server) launch(ctx context.Context) error {
	o := s.opts
	_, major, err := binaryVersion(ctx, o.BinDir)
	if err != nil {
		return err
	}
	if b, err := os.ReadFile(filepath.Join(o.DataDir, "PG_VERSION")); err == nil {
		if v := strings.TrimSpace(string(b)); v != major {
			return fmt.Errorf("data directory %s was created by PostgreSQL %s but the binaries in %s are PostgreSQL %s: "+
				"use PostgreSQL %s binaries (set the bin directory), or upgrade the cluster with pg_upgrade, or move the directory away to start with an empty one",
				o.DataDir, v, o.BinDir, major, v)
		}
	}
	if s.run.switchUser {
		if fi, err := os.Stat(o.DataDir); err == nil {
			if uid, _, ok := fileOwner(fi); ok && uid != s.run.uid {
				return fmt.Errorf("data directory %s is owned by uid %d but the server runs as user %s (uid %d): chown -R %s %s, or choose another data directory",
					o.DataDir, uid, s.run.name, s.run.uid, s.run.name, o.DataDir)
			}
		}
	}
	if err := s.writeConf(); err != nil {
		return err
	}
	if err := s.prepareSocketDir(); err != nil {
		return err
	}
	if err := s.prepareLogFile(); err != nil {
		return err
	}
	if o.Foreground {
		return s.launchChild(ctx)
	}
	return s.launchDaemon(ctx)
}

// launchChild runs postgres as a child of this process, its output appended
// to the log file.
func (s *Server) launchChild(ctx context.Context) error {
	o := s.opts
	logf, err := os.OpenFile(o.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("opening server log %s: %w", o.LogFile, err)
	}
	cmd := exec.Command(filepath.Join(o.BinDir, "postgres"), "-D", o.DataDir)
	cmd.Dir = "/"
	cmd.Env = s.run.env()
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = procAttr(s.run, true)
	err = cmd.Start()
	logf.Close()
	if err != nil {
		return fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	if err := s.waitReady(ctx, cmd.Process.Pid, c.done); err != nil {
		select {
		case <-c.done:
			if c.err != nil {
				err = fmt.Errorf("%w (%v)", err, c.err)
			}
		default:
			_ = signalProcess(cmd.Process.Pid, sigImmediate)
			select {
			case <-c.done:
			case <-time.After(10 * time.Second):
				_ = signalProcess(cmd.Process.Pid, sigKill)
				<-c.done
			}
		}
		s.mu.Lock()
		s.pid = 0
		s.mu.Unlock()
		return s.startError(err)
	}
	s.mu.Lock()
	s.child = c
	s.mu.Unlock()
	return nil
}

// launchDaemon starts the server with `pg_ctl start`: it runs in its own
// session and outlives this process.
func (s *Server) launchDaemon(ctx context.Context) error {
	o := s.opts
	wait := 5 * time.Minute
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl)
	}
	secs := int(wait.Seconds())
	if secs < 1 {
		secs = 1
	}
	out, err := s.command(ctx, "pg_ctl", "start", "-D", o.DataDir, "-l", o.LogFile, "-w", "-t", strconv.Itoa(secs), "-s").CombinedOutput()
	if err != nil {
		msg := strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "; ")), " ")
		if msg != "" {
			err = fmt.Errorf("pg_ctl start: %w: %s", err, msg)
		} else {
			err = fmt.Errorf("pg_ctl start: %w", err)
		}
		return s.startError(err)
	}
	pf, err := readPidFile(o.DataDir)
	if err != nil {
		return s.startError(fmt.Errorf("pg_ctl reported the server started, but reading postmaster.pid failed: %w", err))
	}
	if err := s.waitReady(ctx, pf.pid, nil); err != nil {
		return s.startError(err)
	}
	return nil
}

// waitReady polls until the server pid accepts connections, it exits, or
// ctx is done. It records where the server listens, as postmaster.pid says.
func (s *Server) waitReady(ctx context.Context, pid int, exited <-chan struct{}) error {
	o := s.opts
	var last error
	for {
		pf, err := readPidFile(o.DataDir)
		switch {
		case err != nil:
			last = fmt.Errorf("reading postmaster.pid: %w", err)
		case pf.pid != pid:
			last = fmt.Errorf("postmaster.pid names pid %d, not %d", pf.pid, pid)
		default:
			port, sock, listen := o.Port, o.SocketDir, o.ListenAddress
			if pf.port != 0 {
				port = pf.port
			}
			if pf.socketDir != "" {
				sock = pf.socketDir
			}
			if pf.lines >= 6 {
				listen = pf.listen
			}
			s.mu.Lock()
			s.pid, s.port, s.socketDir, s.listen = pid, port, sock, listen
			s.mu.Unlock()
			if last = ping(ctx, s.ConnString("postgres")); last == nil {
				return nil
			}
		}
		if exited != nil {
			select {
			case <-exited:
				return fmt.Errorf("the server (pid %d) exited during startup", pid)
			default:
			}
		} else if !processAlive(pid) {
			return fmt.Errorf("the server (pid %d) exited during startup", pid)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the server (pid %d) to accept connections: %w (last attempt: %v)", pid, ctx.Err(), last)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func ping(ctx context.Context, connString string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, connString)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// ensureDatabase creates the database "attune" when it is missing.
func (s *Server) ensureDatabase(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, s.ConnString("postgres"))
	if err != nil {
		return fmt.Errorf("connecting to the embedded server to create database %q: %w", DefaultDatabase, err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", DefaultDatabase).Scan(&exists); err != nil {
		return fmt.Errorf("looking for database %q on the embedded server: %w", DefaultDatabase, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{DefaultDatabase}.Sanitize()+" OWNER "+pgx.Identifier{s.opts.Superuser}.Sanitize())
	var pgErr *pgconn.PgError
	if err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "42P04") { // duplicate_database
		return fmt.Errorf("creating database %q on the embedded server: %w", DefaultDatabase, err)
	}
	s.mu.Lock()
	s.createdDB = err == nil
	s.mu.Unlock()
	return nil
}

// CreatedDatabase reports whether this Start created the database "attune"
// (a new cluster, or one whose database was dropped): the one moment the
// embedded default migrates by itself. Later invocations leave the schema
// to `attunectl migrate`, so that a read-only command never changes it —
// not after `migrate down`, not for a mistyped --schema. Of several
// processes starting at once, exactly one sees true.
func (s *Server) CreatedDatabase() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.createdDB
}

// Command prepares one of the PostgreSQL programs of BinDir (for example
// pg_basebackup or pg_ctl) to run as the server's user — the unprivileged
// user when this process is root, which PostgreSQL's programs require —
// with the server's environment (no PG* variables) in "/". For fault tests
// that build a standby or promote one.
func (s *Server) Command(ctx context.Context, program string, args ...string) *exec.Cmd {
	return s.command(ctx, program, args...)
}

// command prepares one of the PostgreSQL programs, as the server's user.
func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(s.opts.BinDir, name), args...)
	cmd.Dir = "/"
	cmd.Env = s.run.env()
	cmd.SysProcAttr = procAttr(s.run, false)
	return cmd
}

// writeConf writes the settings Start manages to DataDir/attunectl.conf and
// makes sure postgresql.conf includes that file.
func (s *Server) writeConf() error {
	o := s.opts
	var b strings.Builder
	b.WriteString("# Written by attunectl at every start of this server: edits here are lost.\n")
	b.WriteString("# Put your own settings in postgresql.conf above its include line, or use ALTER SYSTEM.\n")
	set := func(k, v string) { fmt.Fprintf(&b, "%s = %s\n", k, quoteConf(v)) }
	set("port", strconv.Itoa(o.Port))
	set("listen_addresses", o.ListenAddress)
	set("unix_socket_directories", o.SocketDir)
	set("unix_socket_permissions", "0700")
	if o.Ephemeral {
		b.WriteString("# Ephemeral (test) server: fast, and not crash safe.\n")
		set("fsync", "off")
		set("synchronous_commit", "off")
		set("full_page_writes", "off")
	}
	keys := make([]string, 0, len(o.Settings))
	for k := range o.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := o.Settings[k]
		if strings.ContainsAny(v, "\n\r") {
			return fmt.Errorf("embedded postgres: setting %s has a line break in its value: remove it", k)
		}
		set(k, v)
	}
	if err := s.writeOwnedFile(filepath.Join(o.DataDir, confFile), []byte(b.String())); err != nil {
		return err
	}

	main := filepath.Join(o.DataDir, "postgresql.conf")
	content, err := os.ReadFile(main)
	if err != nil {
		return fmt.Errorf("reading %s: %w", main, err)
	}
	include := "include_if_exists = '" + confFile + "'"
	if strings.Contains(string(content), include) {
		return nil
	}
	f, err := os.OpenFile(main, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("adding the include of %s to %s: %w", confFile, main, err)
	}
	_, err = fmt.Fprintf(f, "\n# Settings managed by attunectl (port, sockets, listen addresses, …).\n%s\n", include)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("adding the include of %s to %s: %w", confFile, main, err)
	}
	return nil
}

// quoteConf quotes a postgresql.conf value: backslashes and quotes escaped.
func quoteConf(v string) string {
	v = strings.ReplaceAll(v, `\`, `\\`)
	v = strings.ReplaceAll(v, `'`, `''`)
	return "'" + v + "'"
}

// writeOwnedFile writes a file the server reads, owned by the server's user.
func (s *Server) writeOwnedFile(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return s.run.chown(path)
}

// prepareSocketDir creates a socket directory outside the data directory,
// 0700 and owned by the server's user, or checks that an existing one is
// writable by that user.
func (s *Server) prepareSocketDir() error {
	dir := s.opts.SocketDir
	if dir == s.opts.DataDir {
		return nil
	}
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("creating socket directory %s: %w (choose a socket directory you can write to)", dir, err)
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("restricting socket directory %s: %w", dir, err)
		}
		return s.run.chown(dir)
	}
	if err != nil {
		return fmt.Errorf("checking socket directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("socket directory %s is not a directory: remove it or choose another socket directory", dir)
	}
	if uid, gid, ok := fileOwner(fi); ok {
		mode := fi.Mode().Perm()
		writable := (uid == s.run.uid && mode&0o300 == 0o300) ||
			(uid != s.run.uid && (gid == s.run.gid || s.run.inGroup(gid)) && mode&0o030 == 0o030) ||
			(uid != s.run.uid && mode&0o003 == 0o003)
		if !writable {
			return fmt.Errorf("socket directory %s (mode %#o, uid %d) is not writable by the server's user %s (uid %d): remove it or choose another socket directory",
				dir, mode, uid, s.run.name, s.run.uid)
		}
	}
	return nil
}

// prepareLogFile creates the log file; as root it belongs to the server's
// user, because pg_ctl opens it as that user.
func (s *Server) prepareLogFile() error {
	f, err := os.OpenFile(s.opts.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("creating server log %s: %w (choose a log file you can write to)", s.opts.LogFile, err)
	}
	f.Close()
	return s.run.chown(s.opts.LogFile)
}

// startError adds the end of the server log to a failed start.
func (s *Server) startError(err error) error {
	return fmt.Errorf("starting postgresql in %s: %w%s\n(fix what the log reports and try again)", s.opts.DataDir, err, s.logTail())
}

// logTail is the end of the server log, formatted to follow an error.
func (s *Server) logTail() string {
	tail := readTail(s.opts.LogFile, 20)
	if tail == "" {
		return fmt.Sprintf("\nserver log %s is empty or unreadable", s.opts.LogFile)
	}
	return fmt.Sprintf("\nlast lines of the server log %s:\n%s", s.opts.LogFile, indent(tail))
}

// readTail returns the last n lines of a file (at most 16 KiB of it).
func readTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 16 << 10
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	off := fi.Size() - max
	if off < 0 {
		off = 0
	}
	buf := make([]byte, fi.Size()-off)
	k, _ := f.ReadAt(buf, off)
	return lastLines(string(buf[:k]), n)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "  | " + strings.ReplaceAll(s, "\n", "\n  | ")
}

// ConnString is a pgx connection URL for database dbname as the superuser:
// postgres://attune@/DB?host=<socket dir>&port=<port>&sslmode=disable, or
// postgres://attune@127.0.0.1:<port>/DB?sslmode=disable when the server was
// asked to listen on TCP (Options.ListenAddress).
func (s *Server) ConnString(dbname string) string {
	s.mu.Lock()
	port, sock, listen := s.port, s.socketDir, s.listen
	s.mu.Unlock()
	user := url.User(s.opts.Superuser).String()
	db := url.PathEscape(dbname)
	if host := tcpHost(s.opts.ListenAddress, listen); host != "" {
		return "postgres://" + user + "@" + net.JoinHostPort(host, strconv.Itoa(port)) + "/" + db + "?sslmode=disable"
	}
	return "postgres://" + user + "@/" + db + "?host=" + strings.ReplaceAll(url.QueryEscape(sock), "%2F", "/") +
		"&port=" + strconv.Itoa(port) + "&sslmode=disable"
}

// tcpHost is the address to connect to over TCP, or "" for the socket: TCP
// only when it was asked for and the server listens on it.
func tcpHost(asked, listening string) string {
	if asked == "" || listening == "" {
		return ""
	}
	first := strings.TrimSpace(strings.Split(listening, ",")[0])
	switch first {
	case "*", "0.0.0.0", "localhost", "127.0.0.1":
		return "127.0.0.1"
	case "::", "::1":
		return "::1"
	}
	return first
}

// SocketDir is the directory holding the server's Unix socket.
func (s *Server) SocketDir() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.socketDir
}

// DataDir is the cluster directory.
func (s *Server) DataDir() string { return s.opts.DataDir }

// LogFile is the server log.
func (s *Server) LogFile() string { return s.opts.LogFile }

// BinDir is where the PostgreSQL programs were found.
func (s *Server) BinDir() string { return s.opts.BinDir }

// Port is the server's port (the socket's name, and its TCP port if any).
func (s *Server) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.port
}

// PID is the postmaster's process id, 0 after Stop.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid
}

// Stop shuts the server down (fast: sessions are rolled back, a checkpoint
// is written) and waits until it is gone. When ctx ends first, the server is
// shut down immediately and Stop reports the timeout. Stopping a stopped
// server is not an error.
func (s *Server) Stop(ctx context.Context) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	return s.shutdown(ctx, sigFast, true)
}

// Kill shuts the server down immediately, like a crash: the next start
// replays the WAL. For fault tests.
func (s *Server) Kill() error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.shutdown(ctx, sigImmediate, true)
}

// Restart stops the server and starts it again on the same data directory,
// port and socket. After Kill, it just starts it.
func (s *Server) Restart(ctx context.Context) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if err := s.shutdown(ctx, sigFast, true); err != nil {
		return err
	}
	return s.start(ctx)
}

// shutdown signals the postmaster and waits until it is gone. escalate:
// when ctx ends first, shut it down immediately (then SIGKILL).
func (s *Server) shutdown(ctx context.Context, sig syscall.Signal, escalate bool) error {
	s.mu.Lock()
	pid, c := s.pid, s.child
	s.mu.Unlock()
	if pid == 0 {
		return nil
	}
	var err error
	if c != nil {
		err = stopChild(ctx, c, pid, sig)
	} else {
		err = stopPID(ctx, s.opts.DataDir, pid, sig, escalate)
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.pid, s.child = 0, nil
	s.mu.Unlock()
	return nil
}

func stopChild(ctx context.Context, c *child, pid int, sig syscall.Signal) error {
	select {
	case <-c.done:
		return nil
	default:
	}
	if err := signalProcess(pid, sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stopping postgresql (pid %d): %w", pid, err)
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
	}
	_ = signalProcess(pid, sigImmediate)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = signalProcess(pid, sigKill)
		<-c.done
	}
	return fmt.Errorf("stopping postgresql (pid %d): %w; it was then shut down immediately (the next start recovers from the WAL)", pid, ctx.Err())
}

// stopPID stops a server this process did not spawn, after checking that
// postmaster.pid still names it (so a reused pid is never signalled).
func stopPID(ctx context.Context, dataDir string, pid int, sig syscall.Signal, escalate bool) error {
	pf, err := readPidFile(dataDir)
	if err != nil || pf.pid != pid || !processAlive(pid) {
		return nil
	}
	if err := signalProcess(pid, sig); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return nil
		}
		if errors.Is(err, syscall.EPERM) {
			return fmt.Errorf("stopping postgresql (pid %d) on %s: %w (run this as the user the server runs as, or as root)", pid, dataDir, err)
		}
		return fmt.Errorf("stopping postgresql (pid %d) on %s: %w", pid, dataDir, err)
	}
	if waitGone(ctx, pid) {
		return nil
	}
	if !escalate {
		return fmt.Errorf("postgresql (pid %d) on %s did not stop in time: %w (it may still be writing a checkpoint: wait and check again, or stop it at once with kill -QUIT %d)",
			pid, dataDir, ctx.Err(), pid)
	}
	_ = signalProcess(pid, sigImmediate)
	wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !waitGone(wctx, pid) {
		_ = signalProcess(pid, sigKill)
		kctx, kcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer kcancel()
		waitGone(kctx, pid)
	}
	return fmt.Errorf("stopping postgresql (pid %d): %w; it was then shut down immediately (the next start recovers from the WAL)", pid, ctx.Err())
}

// waitGone polls until pid no longer runs; false when ctx ends first.
func waitGone(ctx context.Context, pid int) bool {
	for processAlive(pid) {
		select {
		case <-ctx.Done():
			return !processAlive(pid)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return true
}
