package embeddedpg

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// helperEnv makes the test binary act as a second process calling Start
// (see TestConcurrentStartProcesses).
const helperEnv = "ATTUNE_EMBEDDEDPG_HELPER_DATADIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		os.Exit(helperStart(dir))
	}
	if conn, ok := os.LookupEnv(connectEnv); ok {
		os.Exit(helperConnect(conn))
	}
	os.Exit(m.Run())
}

// helperStart is the second process: it starts a daemon server on dir and
// prints its pid.
func helperStart(dir string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := Start(ctx, Options{DataDir: dir, Ephemeral: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("pid=%d\n", srv.PID())
	return 0
}

// testRoot makes a short directory under /tmp that the server's user can
// traverse (t.TempDir() is 0700 root-owned when the tests run as root, and
// its path can be too long for a socket).
func testRoot(t testing.TB) string {
	t.Helper()
	root, err := os.MkdirTemp("/tmp", "apg-")
	if err != nil {
		t.Fatalf("creating test directory: %v", err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatalf("chmod test directory: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(root, "data.log")); err == nil {
				t.Logf("server log:\n%s", lastLines(string(b), 40))
			}
		}
		os.RemoveAll(root)
	})
	return root
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startTest starts a foreground ephemeral server and stops it at cleanup.
func startTest(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = filepath.Join(testRoot(t), "data")
	}
	opts.Ephemeral, opts.Foreground = true, true
	begin := time.Now()
	srv, err := Start(testCtx(t), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("server started in %v (pid %d, socket %s)", time.Since(begin).Round(time.Millisecond), srv.PID(), srv.SocketDir())
	t.Cleanup(func() {
		if err := srv.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return srv
}

func queryString(t testing.TB, connString, sql string) string {
	t.Helper()
	ctx := testCtx(t)
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		t.Fatalf("connecting to %s: %v", connString, err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestStartConnectReuseStop(t *testing.T) {
	t.Parallel()
	root := testRoot(t)
	opts := Options{DataDir: filepath.Join(root, "data"), Ephemeral: true, Foreground: true}
	ctx := testCtx(t)

	begin := time.Now()
	srv, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("initdb + start took %v", time.Since(begin).Round(time.Millisecond))
	defer srv.Stop(context.Background())

	if got := queryString(t, srv.ConnString(DefaultDatabase), "SELECT current_user || ' ' || current_database()"); got != "attune attune" {
		t.Errorf("current_user current_database = %q, want %q", got, "attune attune")
	}
	if got := queryString(t, srv.ConnString("postgres"), "SHOW fsync"); got != "off" {
		t.Errorf("fsync = %q on an ephemeral server, want off", got)
	}
	if got := queryString(t, srv.ConnString("postgres"), "SHOW listen_addresses"); got != "" {
		t.Errorf("listen_addresses = %q, want empty (socket only)", got)
	}
	if srv.SocketDir() != opts.DataDir || srv.Port() != DefaultPort {
		t.Errorf("socket %s port %d, want %s %d", srv.SocketDir(), srv.Port(), opts.DataDir, DefaultPort)
	}
	sock, err := os.Stat(socketPath(srv.SocketDir(), srv.Port()))
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	if perm := sock.Mode().Perm(); perm != 0o700 {
		t.Errorf("socket mode %#o, want 0700", perm)
	}
	if os.Geteuid() == 0 {
		fi, _ := os.Stat(opts.DataDir)
		if uid, _, _ := fileOwner(fi); uid == 0 {
			t.Errorf("data directory is owned by root, want the server's user")
		}
	}
	if _, err := os.Stat(opts.DataDir + ".log"); err != nil {
		t.Errorf("log file: %v", err)
	}

	// A second Start adopts the running server.
	begin = time.Now()
	again, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("second Start: %v", err)
	}
	t.Logf("second Start (reuse) took %v", time.Since(begin).Round(time.Millisecond))
	if again.PID() != srv.PID() {
		t.Fatalf("second Start: pid %d, want the running server's %d", again.PID(), srv.PID())
	}
	// Only the Start that created the database says so: the embedded
	// default migrates then, and never again by itself.
	if !srv.CreatedDatabase() || again.CreatedDatabase() {
		t.Errorf("CreatedDatabase: first Start %v, second %v; want true, false", srv.CreatedDatabase(), again.CreatedDatabase())
	}

	st, err := StatusOf(opts)
	if err != nil {
		t.Fatalf("StatusOf: %v", err)
	}
	if !st.Running || st.PID != srv.PID() || !st.Initialized || !strings.HasPrefix(st.Version, "1") || st.BinDir == "" {
		t.Errorf("StatusOf running server = %+v", st)
	}

	pid := srv.PID()
	if err := srv.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if processAlive(pid) {
		t.Errorf("pid %d still alive after Stop", pid)
	}
	if srv.PID() != 0 {
		t.Errorf("PID after Stop = %d, want 0", srv.PID())
	}
	if err := srv.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	st, err = StatusOf(opts)
	if err != nil {
		t.Fatalf("StatusOf: %v", err)
	}
	if st.Running || !st.Initialized {
		t.Errorf("StatusOf stopped server = %+v", st)
	}
	// The adopted handle sees the server gone, too.
	if err := again.Stop(ctx); err != nil {
		t.Errorf("Stop of the adopted handle after the server stopped: %v", err)
	}
	if err := StopDir(ctx, opts); err != nil {
		t.Errorf("StopDir on a stopped server: %v", err)
	}
}

func TestConcurrentStartGoroutines(t *testing.T) {
	t.Parallel()
	opts := Options{DataDir: filepath.Join(testRoot(t), "data"), Ephemeral: true, Foreground: true}
	ctx := testCtx(t)
	const n = 4
	servers := make([]*Server, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			servers[i], errs[i] = Start(ctx, opts)
		}()
	}
	wg.Wait()
	var owner *Server
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Start #%d: %v", i, err)
		}
		if servers[i].child != nil {
			if owner != nil {
				t.Errorf("two Starts spawned a server")
			}
			owner = servers[i]
		}
	}
	if owner == nil {
		t.Fatalf("no Start spawned the server")
	}
	defer owner.Stop(context.Background())
	for i, s := range servers {
		if s.PID() != owner.PID() {
			t.Errorf("Start #%d: pid %d, want %d", i, s.PID(), owner.PID())
		}
	}
	queryString(t, owner.ConnString(DefaultDatabase), "SELECT 'ok'")
}

// TestConcurrentStartProcesses starts two other processes and this one on
// the same data directory at once: one server, everyone gets it, and the
// daemon outlives the processes that started it.
func TestConcurrentStartProcesses(t *testing.T) {
	t.Parallel()
	opts := Options{DataDir: filepath.Join(testRoot(t), "data"), Ephemeral: true}
	ctx := testCtx(t)
	t.Cleanup(func() {
		if err := StopDir(context.Background(), opts); err != nil {
			t.Errorf("StopDir: %v", err)
		}
	})

	type result struct {
		pid int
		err error
	}
	results := make(chan result, 3)
	for range 2 {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"="+opts.DataDir)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting helper process: %v", err)
		}
		go func() {
			var pid int
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if v, ok := strings.CutPrefix(sc.Text(), "pid="); ok {
					pid, _ = strconv.Atoi(v)
				}
			}
			err := cmd.Wait()
			if err != nil {
				err = fmt.Errorf("helper process: %v: %s", err, stderr.String())
			}
			results <- result{pid, err}
		}()
	}
	go func() {
		srv, err := Start(ctx, opts)
		if err != nil {
			results <- result{0, err}
			return
		}
		results <- result{srv.PID(), nil}
	}()

	var pids []int
	for range 3 {
		r := <-results
		if r.err != nil {
			t.Fatalf("Start: %v", r.err)
		}
		pids = append(pids, r.pid)
	}
	if pids[0] == 0 || pids[0] != pids[1] || pids[1] != pids[2] {
		t.Fatalf("pids %v: want one server", pids)
	}
	// The helpers have exited; their daemon still serves.
	st, err := StatusOf(opts)
	if err != nil {
		t.Fatalf("StatusOf: %v", err)
	}
	if !st.Running || st.PID != pids[0] {
		t.Fatalf("after the starting processes exited: status %+v, want running pid %d", st, pids[0])
	}
	srv, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	queryString(t, srv.ConnString(DefaultDatabase), "SELECT 'ok'")

	if err := StopDir(ctx, opts); err != nil {
		t.Fatalf("StopDir: %v", err)
	}
	if processAlive(pids[0]) {
		t.Errorf("pid %d alive after StopDir", pids[0])
	}
	if st, _ := StatusOf(opts); st.Running {
		t.Errorf("status after StopDir: %+v", st)
	}
}

func TestFindBinDir(t *testing.T) {
	saved := binSearchGlobs
	t.Cleanup(func() { binSearchGlobs = saved })
	empty := t.TempDir()
	t.Setenv("PATH", empty)

	t.Run("nothing installed", func(t *testing.T) {
		binSearchGlobs = []string{filepath.Join(empty, "*", "bin")}
		dir, err := FindBinDir()
		if err == nil {
			t.Fatalf("FindBinDir = %q, want an error", dir)
		}
		if !errors.Is(err, ErrNoBinaries) {
			t.Errorf("error %v does not wrap ErrNoBinaries", err)
		}
		for _, want := range []string{"apt-get install postgresql", "dnf install postgresql-server", "brew install postgresql@16", "--database-url", "ATTUNE__DATABASE__URL"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
	})

	t.Run("highest version wins", func(t *testing.T) {
		base := t.TempDir()
		for _, v := range []string{"9.6", "12", "16", "17"} {
			dir := filepath.Join(base, v, "bin")
			os.MkdirAll(dir, 0o755)
			names := serverBinaries
			if v == "17" {
				names = []string{"pg_ctl"} // client-only: incomplete
			}
			for _, name := range names {
				os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755)
			}
		}
		binSearchGlobs = []string{filepath.Join(empty, "*", "bin"), filepath.Join(base, "*", "bin")}
		dir, err := FindBinDir()
		if err != nil {
			t.Fatalf("FindBinDir: %v", err)
		}
		if want := filepath.Join(base, "16", "bin"); dir != want {
			t.Errorf("FindBinDir = %q, want %q", dir, want)
		}
	})

}

func TestFindBinDirPATHSymlinks(t *testing.T) {
	// A PATH directory of symbolic links yields the directory they point to.
	realDir := t.TempDir()
	for _, name := range serverBinaries {
		os.WriteFile(filepath.Join(realDir, name), []byte("#!/bin/sh\n"), 0o755)
	}
	links := t.TempDir()
	for _, name := range serverBinaries {
		if err := os.Symlink(filepath.Join(realDir, name), filepath.Join(links, name)); err != nil {
			t.Fatal(err)
		}
	}
	saved := binSearchGlobs
	t.Cleanup(func() { binSearchGlobs = saved })
	binSearchGlobs = nil
	t.Setenv("PATH", links)
	dir, err := FindBinDir()
	if err != nil {
		t.Fatalf("FindBinDir: %v", err)
	}
	if dir != realDir {
		t.Errorf("FindBinDir = %q, want %q", dir, realDir)
	}
}

func TestSocketDirFallback(t *testing.T) {
	t.Parallel()
	root := testRoot(t)
	long := filepath.Join(root, strings.Repeat("d", 100), "data")
	o, err := Options{DataDir: long}.withDefaults()
	if err != nil {
		t.Fatalf("withDefaults: %v", err)
	}
	if !o.autoSocketDir || o.SocketDir != "" {
		t.Fatalf("socket dir for a long data dir = %q (auto %v), want one chosen at start", o.SocketDir, o.autoSocketDir)
	}
	if short, _ := (Options{DataDir: "/tmp/x/data"}).withDefaults(); short.SocketDir != "/tmp/x/data" || short.autoSocketDir {
		t.Errorf("socket dir for a short data dir = %q, want the data dir", short.SocketDir)
	}
	_, err = Options{DataDir: root, SocketDir: "/tmp/" + strings.Repeat("s", 100)}.withDefaults()
	if err == nil || !strings.Contains(err.Error(), "choose a shorter socket directory") {
		t.Errorf("too long SocketDir: err = %v", err)
	}

	srv := startTest(t, Options{DataDir: long})
	sock := srv.SocketDir()
	t.Cleanup(func() { os.RemoveAll(sock) })
	if !strings.HasPrefix(sock, "/tmp/apg-") || readSocketDirRecord(long) != sock {
		t.Errorf("server socket dir %q, recorded %q", sock, readSocketDirRecord(long))
	}
	queryString(t, srv.ConnString(DefaultDatabase), "SELECT 'ok'")
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("socket dir mode %#o, want 0700", perm)
	}
	// A restart reuses the recorded directory while it passes the checks.
	if err := srv.Restart(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if srv.SocketDir() != sock {
		t.Errorf("after a restart the socket dir is %q, want %q again", srv.SocketDir(), sock)
	}
	if st, err := StatusOf(Options{DataDir: long}); err != nil || st.SocketDir != sock {
		t.Errorf("StatusOf: socket dir %q, err %v", st.SocketDir, err)
	}
}

func TestTCPAndSettings(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv := startTest(t, Options{ListenAddress: "127.0.0.1", Port: port, Settings: map[string]string{"max_connections": "37", "application_name": "it's \\ quoted"}})
	want := fmt.Sprintf("postgres://attune@127.0.0.1:%d/attune?sslmode=disable&passfile=%s", port, srv.PassFile())
	if got := srv.ConnString(DefaultDatabase); got != want {
		t.Errorf("ConnString = %q, want %q", got, want)
	}
	if got := queryString(t, srv.ConnString("postgres"), "SHOW max_connections"); got != "37" {
		t.Errorf("max_connections = %q, want 37", got)
	}
	if got := queryString(t, srv.ConnString("postgres"), "SELECT setting FROM pg_settings WHERE name = 'application_name' AND source = 'configuration file'"); got != `it's \ quoted` {
		t.Errorf("application_name from the configuration file = %q", got)
	}
}

func TestRestartAndKill(t *testing.T) {
	t.Parallel()
	srv := startTest(t, Options{})
	ctx := testCtx(t)
	exec1 := func(sql string) {
		conn, err := pgx.Connect(ctx, srv.ConnString(DefaultDatabase))
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec1("CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)")
	first := srv.PID()
	if err := srv.Restart(ctx); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if srv.PID() == first || srv.PID() == 0 {
		t.Errorf("pid after Restart %d (before %d)", srv.PID(), first)
	}
	if got := queryString(t, srv.ConnString(DefaultDatabase), "SELECT v::text FROM kept"); got != "7" {
		t.Errorf("after Restart: %q", got)
	}

	killed := srv.PID()
	if err := srv.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if processAlive(killed) {
		t.Fatalf("pid %d alive after Kill", killed)
	}
	if _, err := pgx.Connect(ctx, srv.ConnString(DefaultDatabase)); err == nil {
		t.Fatalf("connected after Kill")
	}
	if err := srv.Restart(ctx); err != nil {
		t.Fatalf("Restart after Kill: %v", err)
	}
	queryString(t, srv.ConnString(DefaultDatabase), "SELECT count(*)::text FROM kept")
}

func TestStartFailureShowsLog(t *testing.T) {
	t.Parallel()
	for _, foreground := range []bool{true, false} {
		t.Run(fmt.Sprintf("foreground=%v", foreground), func(t *testing.T) {
			t.Parallel()
			opts := Options{
				DataDir:    filepath.Join(testRoot(t), "data"),
				Ephemeral:  true,
				Foreground: foreground,
				Settings:   map[string]string{"shared_buffers": "lots"},
			}
			srv, err := Start(testCtx(t), opts)
			if err == nil {
				srv.Stop(context.Background())
				t.Fatalf("Start with a bad setting succeeded")
			}
			for _, want := range []string{"starting postgresql in " + opts.DataDir, "last lines of the server log", `"shared_buffers"`, "try again"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not contain %q:\n%v", want, err)
				}
			}
			if st, _ := StatusOf(opts); st.Running {
				t.Errorf("a server runs after the failed start: %+v", st)
			}
		})
	}
}

func TestOptionErrors(t *testing.T) {
	t.Parallel()
	root := testRoot(t)
	cases := []struct {
		name string
		opts Options
		want string
	}{
		{"no data dir", Options{}, "no data directory given"},
		{"managed setting", Options{DataDir: root + "/d", Settings: map[string]string{"port": "1"}}, `setting "port" is managed by embeddedpg: use Options.Port`},
		{"bad setting name", Options{DataDir: root + "/d", Settings: map[string]string{"a b": "1"}}, "not a valid postgresql.conf setting name"},
		{"bad port", Options{DataDir: root + "/d", Port: 70000}, "port 70000 is out of range"},
		{"bin dir without binaries", Options{DataDir: root + "/d", BinDir: root}, "initdb, pg_ctl, postgres missing from " + root},
	}
	for _, c := range cases {
		_, err := Start(testCtx(t), c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to contain %q", c.name, err, c.want)
		}
	}

	notEmpty := filepath.Join(root, "notempty")
	os.MkdirAll(notEmpty, 0o755)
	os.WriteFile(filepath.Join(notEmpty, "file"), nil, 0o644)
	_, err := Start(testCtx(t), Options{DataDir: notEmpty, Ephemeral: true, Foreground: true})
	if err == nil || !strings.Contains(err.Error(), "is not empty but holds no PostgreSQL cluster") {
		t.Errorf("non-empty data dir: err = %v", err)
	}

	if os.Geteuid() == 0 {
		private, err := os.MkdirTemp("/tmp", "apg-private-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(private)
		_, err = Start(testCtx(t), Options{DataDir: filepath.Join(private, "data"), Ephemeral: true, Foreground: true})
		if err == nil || !strings.Contains(err.Error(), "cannot reach") {
			t.Errorf("data dir in a root-only directory: err = %v", err)
		}
	}
}

func TestConnString(t *testing.T) {
	s := &Server{opts: Options{Superuser: "attune", DataDir: "/d 1"}, port: 5433, socketDir: "/tmp/apg-1 2"}
	if got, want := s.ConnString("my db"), "postgres://attune@/my%20db?host=/tmp/apg-1+2&port=5433&sslmode=disable&passfile=/d+1/attunectl.pgpass"; got != want {
		t.Errorf("ConnString = %q, want %q", got, want)
	}
	s = &Server{opts: Options{Superuser: "attune", ListenAddress: "*", DataDir: "/d"}, port: 5433, socketDir: "/tmp/x", listen: "*"}
	if got, want := s.ConnString("attune"), "postgres://attune@127.0.0.1:5433/attune?sslmode=disable&passfile=/d/attunectl.pgpass"; got != want {
		t.Errorf("ConnString = %q, want %q", got, want)
	}
	s = &Server{opts: Options{Superuser: "attune", ListenAddress: "::1", DataDir: "/d"}, port: 5433, socketDir: "/tmp/x", listen: "::1"}
	if got, want := s.ConnString("attune"), "postgres://attune@[::1]:5433/attune?sslmode=disable&passfile=/d/attunectl.pgpass"; got != want {
		t.Errorf("ConnString = %q, want %q", got, want)
	}
}

func TestDefaultDataDir(t *testing.T) {
	if os.Geteuid() == 0 {
		if dir, _ := DefaultDataDir(); dir != "/var/lib/attunectl/postgres" {
			t.Errorf("DefaultDataDir as root = %q", dir)
		}
		return
	}
	t.Setenv("XDG_STATE_HOME", "/state")
	if dir, _ := DefaultDataDir(); dir != "/state/attunectl/postgres" {
		t.Errorf("DefaultDataDir = %q", dir)
	}
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "/home/u")
	if dir, _ := DefaultDataDir(); dir != "/home/u/.local/state/attunectl/postgres" {
		t.Errorf("DefaultDataDir = %q", dir)
	}
}

func TestInitdbPlaces(t *testing.T) {
	t.Parallel()
	t.Run("after an interrupted initdb", func(t *testing.T) {
		t.Parallel()
		dataDir := filepath.Join(testRoot(t), "data")
		os.MkdirAll(dataDir+".initdb/base", 0o700)
		os.WriteFile(dataDir+".initdb/PG_VERSION", []byte("15\n"), 0o600)
		srv := startTest(t, Options{DataDir: dataDir})
		queryString(t, srv.ConnString(DefaultDatabase), "SELECT 'ok'")
		if _, err := os.Stat(dataDir + ".initdb"); !os.IsNotExist(err) {
			t.Errorf("initdb's work directory is still there: %v", err)
		}
	})
	t.Run("existing empty directory, then a version mismatch", func(t *testing.T) {
		t.Parallel()
		dataDir := filepath.Join(testRoot(t), "data")
		os.Mkdir(dataDir, 0o755)
		srv := startTest(t, Options{DataDir: dataDir})
		queryString(t, srv.ConnString(DefaultDatabase), "SELECT 'ok'")
		fi, _ := os.Stat(dataDir)
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("data dir mode %#o, want 0700", fi.Mode().Perm())
		}
		if err := srv.Stop(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		versionFile := filepath.Join(dataDir, "PG_VERSION")
		orig, _ := os.ReadFile(versionFile)
		os.WriteFile(versionFile, []byte("11\n"), 0o600)
		_, err := Start(testCtx(t), Options{DataDir: dataDir, Ephemeral: true, Foreground: true})
		if err == nil || !strings.Contains(err.Error(), "was created by PostgreSQL 11 but the binaries in") {
			t.Errorf("version mismatch: err = %v", err)
		}
		os.WriteFile(versionFile, orig, 0o600)

		if os.Geteuid() == 0 {
			fi, _ := os.Stat(dataDir)
			uid, gid, _ := fileOwner(fi)
			os.Chown(dataDir, 0, 0)
			_, err := Start(testCtx(t), Options{DataDir: dataDir, Ephemeral: true, Foreground: true})
			if err == nil || !strings.Contains(err.Error(), "is owned by uid 0 but the server runs as user") {
				t.Errorf("root-owned data dir: err = %v", err)
			}
			os.Chown(dataDir, uid, gid)
		}
	})
}
