package embeddedpg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/testsupport"
	"github.com/jackc/pgx/v5/pgconn"
)

// connectEnv makes the test binary try one connection string and print
// "ok" or the error: the tests run it as other OS users.
const connectEnv = "ATTUNE_EMBEDDEDPG_CONNECT"

func helperConnect(conn string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgconn.Connect(ctx, conn)
	if err != nil {
		fmt.Println("error:", err)
		return 0
	}
	c.Close(ctx)
	fmt.Println("ok")
	return 0
}

// osUser is a real OS user the security tests act as.
type osUser struct {
	name     string
	uid, gid int
}

func lookupOSUser(t *testing.T, name string) osUser {
	t.Helper()
	testsupport.RequireRoot(t, "it acts as other OS users")
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("this test needs the OS user %s: %v", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return osUser{name, uid, gid}
}

// connectAs runs the test binary (copied to bin, which every user can run)
// as u and returns what it printed for conn.
func connectAs(t *testing.T, bin string, u osUser, conn string) string {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Dir = "/"
	cmd.Env = []string{connectEnv + "=" + conn, "PATH=/usr/bin:/bin", "HOME=/"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid)}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("running as %s: %v\n%s", u.name, err, out)
	}
	return strings.TrimSpace(string(out))
}

func publicTestBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "embeddedpg.test")
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestOtherUsersCannotConnect opens the socket to every user (directory
// 0755, socket 0777) so that authentication alone has to keep them out:
// another OS user (nobody) and the server's own user (postgres) are
// refused on the socket by peer authentication, and over TCP without the
// password, with a wrong one, or with a password file they cannot read.
// The invoking user (root) gets in both ways.
func TestOtherUsersCannotConnect(t *testing.T) {
	t.Parallel()
	nobody, pgUser := lookupOSUser(t, "nobody"), lookupOSUser(t, "postgres")
	root := testRoot(t)
	bin := publicTestBinary(t, root)
	sock := filepath.Join(root, "sock")
	if err := os.Mkdir(sock, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(sock, pgUser.uid, pgUser.gid); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	srv := startTest(t, Options{SocketDir: sock, ListenAddress: "127.0.0.1", Port: port,
		Settings: map[string]string{"unix_socket_permissions": "0777"}})

	viaSocket := fmt.Sprintf("postgres://attune@/postgres?host=%s&port=%d&sslmode=disable", sock, port)
	viaTCP := fmt.Sprintf("postgres://attune@127.0.0.1:%d/postgres?sslmode=disable", port)
	if fi, err := os.Stat(socketPath(sock, port)); err != nil || fi.Mode().Perm() != 0o777 {
		t.Fatalf("the socket is not open to everyone, so this test proves nothing: %v %v", fi.Mode(), err)
	}
	fi, err := os.Stat(srv.PassFile())
	if err != nil {
		t.Fatal(err)
	}
	if uid, _, _ := fileOwner(fi); fi.Mode().Perm() != 0o600 || uid != pgUser.uid {
		t.Errorf("password file mode %#o uid %d, want 0600 owned by postgres", fi.Mode().Perm(), uid)
	}

	// The invoking user: peer on the socket, the password file over TCP.
	queryString(t, viaSocket, "SELECT 'ok'")
	queryString(t, srv.ConnString("postgres"), "SELECT 'ok'")
	queryString(t, viaTCP+"&passfile="+srv.PassFile(), "SELECT 'ok'")

	cases := []struct {
		who  osUser
		conn string
		want string
	}{
		{nobody, viaSocket, `Peer authentication failed for user "attune"`},
		{pgUser, viaSocket, `Peer authentication failed for user "attune"`},
		{nobody, viaSocket + "&user=postgres", `Peer authentication failed for user "postgres"`},
		{nobody, viaTCP, "password"},
		{nobody, viaTCP + "&password=attune", `password authentication failed for user "attune"`},
		{nobody, viaTCP + "&passfile=" + srv.PassFile(), "password"},
		{pgUser, viaTCP, "password"},
	}
	for _, c := range cases {
		got := connectAs(t, bin, c.who, c.conn)
		if !strings.HasPrefix(got, "error:") || !strings.Contains(got, c.want) {
			t.Errorf("%s connecting to %s: %s, want an error with %q", c.who.name, c.conn, got, c.want)
		}
	}
}

// legacySocketDir is the predictable name attunectl used to give the
// socket directory of a long data directory.
func legacySocketDir(dataDir string) string {
	sum := sha256.Sum256([]byte(dataDir))
	return "/tmp/apg-" + hex.EncodeToString(sum[:6])
}

// TestSquattedSocketDirIsNotUsed: another user creates, before attunectl,
// the directory that used to be the predictable fallback, and the one
// attunectl recorded; Start uses neither. Then the directory of a running
// server is handed to that user: Start and StatusOf refuse to connect
// through it.
func TestSquattedSocketDirIsNotUsed(t *testing.T) {
	t.Parallel()
	nobody := lookupOSUser(t, "nobody")
	root := testRoot(t)
	long := filepath.Join(root, strings.Repeat("d", 100), "data")
	legacy := legacySocketDir(long)
	for _, d := range []string{legacy, legacy + "x"} {
		if err := os.Mkdir(d, 0o777); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, nobody.uid, nobody.gid); err != nil {
			t.Fatal(err)
		}
	}
	// An earlier run recorded legacy+"x", since removed and re-created by nobody.
	if err := os.MkdirAll(filepath.Dir(long), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(long+socketDirRecord, []byte(legacy+"x\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	srv := startTest(t, Options{DataDir: long})
	sock := srv.SocketDir()
	t.Cleanup(func() { os.RemoveAll(sock) })
	if sock == legacy || sock == legacy+"x" || !strings.HasPrefix(sock, "/tmp/apg-") {
		t.Fatalf("the server uses socket directory %s, squatted by nobody", sock)
	}
	for _, d := range []string{legacy, legacy + "x"} {
		if entries, _ := os.ReadDir(d); len(entries) != 0 {
			t.Errorf("attunectl wrote into %s, squatted by nobody: %v", d, entries)
		}
	}
	queryString(t, srv.ConnString("postgres"), "SELECT 'ok'")

	// The running server's directory changes hands.
	if err := os.Chown(sock, nobody.uid, nobody.gid); err != nil {
		t.Fatal(err)
	}
	_, err := Start(testCtx(t), Options{DataDir: long, Ephemeral: true, Foreground: true})
	want := "socket directory " + sock + " is owned by nobody (uid 65534), not by the server's user"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Start through a socket directory owned by nobody: err = %v, want %q", err, want)
	}
	st, err := StatusOf(Options{DataDir: long})
	if err != nil || !st.Running || !strings.Contains(st.Problem, want) {
		t.Errorf("StatusOf: problem %q, err %v", st.Problem, err)
	}
	if _, err := Clients(testCtx(t), Options{DataDir: long}, ""); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Clients: err = %v", err)
	}
	// Writable by others, though ours: refused as well.
	run, _ := resolveRunAs("")
	if err := os.Chown(sock, run.uid, run.gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sock, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(testCtx(t), Options{DataDir: long, Ephemeral: true, Foreground: true}); err == nil || !strings.Contains(err.Error(), "is writable by other users (mode 0777)") {
		t.Errorf("Start through a socket directory of mode 0777: err = %v", err)
	}
	os.Chmod(sock, 0o700)
}

// TestTrustClusterIsUpgraded: a cluster an older attunectl made trusts
// every local connection and has no password. The next Start upgrades it,
// whether it finds the server stopped or running.
func TestTrustClusterIsUpgraded(t *testing.T) {
	t.Parallel()
	const oldHBA = `# Written by attunectl when it initialized this cluster: trust the Unix socket
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
	port := freePort(t)
	opts := Options{ListenAddress: "127.0.0.1", Port: port, DataDir: filepath.Join(testRoot(t), "data")}
	srv := startTest(t, opts)
	noPassword := fmt.Sprintf("postgres://attune@127.0.0.1:%d/postgres?sslmode=disable", port)
	downgrade := func() {
		t.Helper()
		if err := srv.writeOwnedFile(filepath.Join(opts.DataDir, "pg_hba.conf"), []byte(oldHBA)); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(srv.PassFile()); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(opts.DataDir, "pg_ident.conf"))
	}
	trusted := func() bool {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := pgconn.Connect(ctx, noPassword)
		if err == nil {
			c.Close(ctx)
		}
		return err == nil
	}

	t.Run("stopped", func(t *testing.T) {
		downgrade()
		if err := srv.Restart(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		if trusted() {
			t.Error("after a restart, TCP without a password is still trusted")
		}
		queryString(t, srv.ConnString("postgres"), "SELECT 'ok'")
	})
	t.Run("running", func(t *testing.T) {
		downgrade()
		queryString(t, srv.socketConnString("postgres"), "SELECT pg_reload_conf()::text")
		if !trusted() {
			t.Fatal("the downgraded server does not trust TCP: the test set-up failed")
		}
		again, err := Start(testCtx(t), Options{ListenAddress: "127.0.0.1", Port: port, DataDir: opts.DataDir, Ephemeral: true, Foreground: true})
		if err != nil {
			t.Fatal(err)
		}
		if trusted() {
			t.Error("after Start adopted the running server, TCP without a password is still trusted")
		}
		queryString(t, again.ConnString("postgres"), "SELECT 'ok'")
	})
	t.Run("edited by its owner", func(t *testing.T) {
		mine := "local all all trust\nhost all all 127.0.0.1/32 trust\n"
		if err := srv.writeOwnedFile(filepath.Join(opts.DataDir, "pg_hba.conf"), []byte(mine)); err != nil {
			t.Fatal(err)
		}
		if err := srv.Restart(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(filepath.Join(opts.DataDir, "pg_hba.conf")); string(b) != mine {
			t.Errorf("a pg_hba.conf without attunectl's header was rewritten:\n%s", b)
		}
	})
}

// TestClientsAndConnectionInfo: Clients counts the sessions of a given
// application, not the one asking; StatusOf says how to connect with psql,
// and that command works.
func TestClientsAndConnectionInfo(t *testing.T) {
	t.Parallel()
	srv := startTest(t, Options{})
	opts := Options{DataDir: srv.DataDir()}
	ctx := testCtx(t)
	if cs, err := Clients(ctx, opts, "attunectl"); err != nil || len(cs) != 0 {
		t.Fatalf("no clients yet: %v %v", cs, err)
	}
	var conns []*pgconn.PgConn
	for _, app := range []string{"attunectl", "attunectl", "psql"} {
		c, err := pgconn.Connect(ctx, srv.ConnString(DefaultDatabase)+"&application_name="+app)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	cs, err := Clients(ctx, opts, "attunectl")
	if err != nil || len(cs) != 2 || cs[0].Application != "attunectl" || cs[0].Database != DefaultDatabase || cs[0].User != DefaultSuperuser || cs[0].PID == 0 {
		t.Errorf("attunectl clients: %+v %v", cs, err)
	}
	if all, err := Clients(ctx, opts, ""); err != nil || len(all) != 3 {
		t.Errorf("all clients: %+v %v", all, err)
	}
	for _, c := range conns {
		c.Close(ctx)
	}
	deadline := time.Now().Add(5 * time.Second)
	for cs, _ := Clients(ctx, opts, ""); len(cs) != 0 && time.Now().Before(deadline); cs, _ = Clients(ctx, opts, "") {
		time.Sleep(20 * time.Millisecond)
	}

	st, err := StatusOf(opts)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("psql -h %s -p %d -U attune attune", srv.SocketDir(), srv.Port())
	if st.User != "attune" || st.Database != "attune" || st.PassFile != srv.PassFile() || st.Psql != want || st.Problem != "" {
		t.Errorf("status: %+v, want psql %q", st, want)
	}
	psql := filepath.Join(srv.BinDir(), "psql")
	if _, err := os.Stat(psql); err != nil {
		if psql, err = exec.LookPath("psql"); err != nil {
			t.Fatalf("psql not found: %v", err)
		}
	}
	args := strings.Fields(st.Psql)[1:]
	out, err := exec.Command(psql, append(args, "-X", "-A", "-t", "-c", "SELECT current_user")...).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "attune" {
		t.Errorf("%s: %v\n%s", st.Psql, err, out)
	}
	if stopped, _ := StatusOf(Options{DataDir: filepath.Join(testRoot(t), "none")}); stopped.Psql != "" || stopped.Running {
		t.Errorf("status of no server: %+v", stopped)
	}
}

// TestDataDirUnderAWorldWritableDirectoryIsRefused: as root, a data
// directory below a directory every user may change (no sticky bit) is
// refused before anything is created or chowned there, and so is a data
// directory that is a symbolic link.
func TestDataDirUnderAWorldWritableDirectoryIsRefused(t *testing.T) {
	testsupport.RequireRoot(t, "only root switches to the server's user and chowns")
	base, err := os.MkdirTemp("", "apg-ww-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(testCtx(t), Options{DataDir: filepath.Join(open, "data"), Ephemeral: true, Foreground: true}); err == nil || !strings.Contains(err.Error(), "is writable by every user") {
		t.Errorf("a data directory below a world-writable directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(open, "data")); err == nil {
		t.Error("the refused data directory was created")
	}
	secret := filepath.Join(base, "secret")
	if err := os.Mkdir(secret, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "data")
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(testCtx(t), Options{DataDir: link, Ephemeral: true, Foreground: true}); err == nil || !strings.Contains(err.Error(), "is a symbolic link") {
		t.Errorf("a data directory that is a symbolic link: %v", err)
	}
	if fi, err := os.Stat(secret); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("the link's target changed hands: %v", err)
	}
}
