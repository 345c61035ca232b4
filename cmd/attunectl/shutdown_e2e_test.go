package main

// End-to-end tests of how `sensor run` stops (issue 11, section 3): within
// sensor.shutdown_timeout whatever the server does, one stop for signals
// that arrive together, and as PID 1 of a container, reaping orphans. They
// run the built binary with real signals, against real servers.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/embeddedpg"
	"github.com/attune-automation/attunectl/pkg/testsupport"
)

// startProgram is start for any program (attunectl under unshare or
// timeout); with group set, the program leads a process group of its own,
// as a shell's job does.
func startProgram(t testing.TB, environ []string, group bool, program string, args ...string) *proc {
	t.Helper()
	p := &proc{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(program, args...)
	p.cmd.Dir = t.TempDir()
	p.cmd.Env = environ
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if group {
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s %v: %v", program, args, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			if group {
				_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			}
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// procStat is the state and parent of pid from /proc/<pid>/stat.
func procStat(pid int) (state string, ppid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, false
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return "", 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	return f[0], ppid, true
}

// children lists the children of pid (as this test's PID namespace sees
// them) with their states.
func children(pid int) map[int]string {
	out := map[int]string{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		c, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if state, ppid, ok := procStat(c); ok && ppid == pid {
			out[c] = state
		}
	}
	return out
}

// attunectlUnder finds the attunectl process below pid (unshare's fork).
func attunectlUnder(t testing.TB, p *proc, pid int) int {
	t.Helper()
	found := 0
	waitUntil(t, p, 20*time.Second, "attunectl to start under "+strconv.Itoa(pid), func() bool {
		queue := []int{pid}
		for len(queue) > 0 {
			c := queue[0]
			queue = queue[1:]
			if b, err := os.ReadFile("/proc/" + strconv.Itoa(c) + "/comm"); err == nil && strings.TrimSpace(string(b)) == "attunectl" {
				found = c
				return true
			}
			for k := range children(c) {
				queue = append(queue, k)
			}
		}
		return false
	})
	return found
}

// waitActive waits until worker name is active (whatever its pid).
func waitActive(t testing.TB, p *proc, pool *pgxpool.Pool, name string) sensorRow {
	t.Helper()
	var r sensorRow
	waitUntil(t, p, 30*time.Second, "worker "+name+" to register", func() bool {
		var err error
		r, err = querySensorRow(pool, name)
		return err == nil && r.Status == "active"
	})
	return r
}

// `timeout -s INT`, a supervisor or a terminal deliver a signal to the
// process and to its process group at once: the two signals are one request
// to stop, and the row is deregistered every time (on main, about a third
// of the runs took the second as "exit now" and left the row active).
func TestSignalsArrivingTogetherAreOneStop(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	for i := range 10 {
		name := fmt.Sprintf("twice-%d", i)
		sig := []syscall.Signal{syscall.SIGINT, syscall.SIGTERM}[i%2]
		p := startProgram(t, dbEnv(t, db), true, binary(t), sensorRun(name, "--runtimes", "shell")...)
		waitRegistered(t, p, db.Pool, name)
		pid := p.cmd.Process.Pid
		// As timeout(1) does: the process, then its group.
		if err := syscall.Kill(pid, sig); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(-pid, sig); err != nil {
			t.Fatal(err)
		}
		if code := p.wait(t, 15*time.Second); code != 0 {
			t.Fatalf("run %d (%s twice): exit %d; want 0\n%s", i, sig, code, p.stderr)
		}
		if strings.Contains(p.stderr.String(), "second signal") {
			t.Errorf("run %d: two signals at once were taken as a second request:\n%s", i, p.stderr)
		}
		if r := readSensorRow(t, db.Pool, name); r.Status != "inactive" {
			t.Errorf("run %d (%s twice): status %s; want inactive\n%s", i, sig, r.Status, p.stderr)
		}
	}
}

// The README's own example of a bounded run: timeout(1) itself. Whether the
// signal comes before or after the registration, the worker exits 0 and
// never leaves an active row.
func TestTimeoutCommandStopsCleanly(t *testing.T) {
	t.Parallel()
	timeout, err := exec.LookPath("timeout")
	if err != nil {
		t.Fatalf("timeout(1) from coreutils is needed: %v", err)
	}
	db := dbtest.New(t)
	for i := range 3 {
		name := fmt.Sprintf("timeout-%d", i)
		args := append([]string{"--preserve-status", "-s", "INT", "3", binary(t)}, sensorRun(name, "--runtimes", "shell")...)
		p := startProgram(t, dbEnv(t, db), false, timeout, args...)
		if code := p.wait(t, 30*time.Second); code != 0 {
			t.Fatalf("run %d: timeout -s INT 3 attunectl sensor run: exit %d; want 0\n%s", i, code, p.stderr)
		}
		if r, err := querySensorRow(db.Pool, name); err == nil && r.Status == "active" {
			t.Errorf("run %d: the row is left active\n%s", i, p.stderr)
		}
	}
}

// A signal while the first heartbeat waits on the server stops the worker
// within sensor.shutdown_timeout, and the worker deregisters. Here the
// heartbeat waits on a lock that a trigger takes for heartbeats only (an
// UPDATE that leaves meta and status as they are); on main the first
// heartbeat ran detached from the signal and held exit for its own 15 s
// timeout.
func TestSignalDuringFirstHeartbeat(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	execSQL(t, db.Pool, `CREATE FUNCTION hold_heartbeat() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.status = 'active' AND OLD.status = 'active' AND NEW.meta IS NOT DISTINCT FROM OLD.meta THEN
				PERFORM pg_advisory_xact_lock(4242);
			END IF;
			RETURN NEW;
		END $$`)
	execSQL(t, db.Pool, `CREATE TRIGGER hold_heartbeat BEFORE UPDATE ON worker FOR EACH ROW EXECUTE FUNCTION hold_heartbeat()`)
	ctx := context.Background()
	locker, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Release()
	if _, err := locker.Exec(ctx, `SELECT pg_advisory_lock(4242)`); err != nil {
		t.Fatal(err)
	}
	defer locker.Exec(ctx, `SELECT pg_advisory_unlock_all()`)

	const shutdown = 5 * time.Second
	p := start(t, dbEnv(t, db, "ATTUNE__SENSOR__SHUTDOWN_TIMEOUT=5"),
		"sensor", "run", "--name", "s1", "--heartbeat-interval", "30s", "--runtimes", "shell")
	waitRegistered(t, p, db.Pool, "s1")
	waitUntil(t, p, 20*time.Second, "the first heartbeat to wait on the lock", func() bool {
		var n int
		err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&n)
		return err == nil && n > 0
	})
	begin := time.Now()
	p.signal(t, syscall.SIGTERM)
	code := p.wait(t, 30*time.Second)
	took := time.Since(begin)
	if code != 0 || took > shutdown+1500*time.Millisecond {
		t.Errorf("SIGTERM during the first heartbeat: exit %d after %s; want 0 within the %s shutdown timeout\n%s", code, took, shutdown, p.stderr)
	}
	if r := readSensorRow(t, db.Pool, "s1"); r.Status != "inactive" {
		t.Errorf("status %s; want inactive (deregistered)\n%s", r.Status, p.stderr)
	}
}

// A hung server (its processes stopped with SIGSTOP) holds the exit no
// longer than sensor.shutdown_timeout: the deregistration is attempted and
// fails, and the connections, whose close pgx bounds at 15 s of its own,
// are abandoned at the deadline. On main the exit took about 17 s.
func TestShutdownBoundedOnHungServer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		group bool // stop every server process, not only the postmaster
	}{
		{"whole server stopped", true},
		{"postmaster stopped", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := dbtest.NewServer(t, embeddedpg.Options{})
			url := srv.ConnString("attune")
			e := env(t, "ATTUNE__DATABASE__URL="+url, "ATTUNE__SENSOR__SHUTDOWN_TIMEOUT=2")
			if res := run(t, e, "migrate", "up"); res.Code != 0 {
				t.Fatalf("migrate up: exit %d\n%s", res.Code, res.Stderr)
			}
			ctx := context.Background()
			pcfg, err := pgxpool.ParseConfig(url)
			if err != nil {
				t.Fatal(err)
			}
			pcfg.ConnConfig.RuntimeParams["search_path"] = "attune"
			pool, err := pgxpool.NewWithConfig(ctx, pcfg)
			if err != nil {
				t.Fatal(err)
			}
			p := start(t, e, sensorRun("s1", "--runtimes", "shell")...)
			waitRegistered(t, p, pool, "s1")
			pool.Close()

			// The postmaster, and with group its children too: each backend
			// leads a session of its own (setsid), so no process group
			// holds them all. The postmaster is stopped first, so that no
			// backend is forked after its children are listed (one was,
			// under load, and served the deregistration); they are listed
			// twice to catch a fork that was under way.
			targets := []int{srv.PID()}
			_ = syscall.Kill(srv.PID(), syscall.SIGSTOP)
			if tc.group {
				seen := map[int]bool{}
				for range 2 {
					for c := range children(srv.PID()) {
						if !seen[c] {
							seen[c] = true
							targets = append(targets, c)
							_ = syscall.Kill(c, syscall.SIGSTOP)
						}
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			signalAll := func(sig syscall.Signal) {
				for _, pid := range targets {
					_ = syscall.Kill(pid, sig)
				}
			}
			resume := func() { signalAll(syscall.SIGCONT) }
			t.Cleanup(resume)  // before the server's own cleanup stops it
			time.Sleep(3 * hb) // heartbeats are now in flight on the hung server

			const shutdown = 2 * time.Second
			begin := time.Now()
			p.signal(t, syscall.SIGTERM)
			code := p.wait(t, 40*time.Second)
			took := time.Since(begin)
			resume()
			if code != 0 || took > shutdown+1500*time.Millisecond {
				t.Errorf("SIGTERM with a hung server: exit %d after %s; want 0 within the %s shutdown timeout\n%s", code, took, shutdown, p.stderr)
			}
			if tc.group && !strings.Contains(p.stderr.String(), `msg="deregistering sensor worker failed"`) {
				t.Errorf("the deregistration was not attempted, or its failure not logged:\n%s", p.stderr)
			}
		})
	}
}

// As PID 1 of a container (here a PID namespace of its own), attunectl
// reaps the orphans the kernel hands it: a process started by the shell
// that exec'd attunectl, whose parent exited, must not stay a zombie.
func TestPID1ReapsOrphans(t *testing.T) {
	t.Parallel()
	testsupport.RequireRoot(t, "unshare --pid needs CAP_SYS_ADMIN")
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatalf("unshare(1) from util-linux is needed: %v", err)
	}
	db := dbtest.New(t)
	script := `(sleep 1 &); exec "$0" "$@"`
	args := append([]string{"--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c", script, binary(t)}, sensorRun("init", "--runtimes", "shell")...)
	p := startProgram(t, dbEnv(t, db), false, unshare, args...)
	pid := attunectlUnder(t, p, p.cmd.Process.Pid)
	waitActive(t, p, db.Pool, "init")
	if !strings.Contains(readFile(t, "/proc/"+strconv.Itoa(pid)+"/status"), "NSpid:\t"+strconv.Itoa(pid)+"\t1") {
		t.Fatalf("attunectl (pid %d) is not PID 1 of its namespace:\n%s", pid, readFile(t, "/proc/"+strconv.Itoa(pid)+"/status"))
	}
	waitUntil(t, p, 20*time.Second, "the orphan to exit and be reaped", func() bool {
		return len(children(pid)) == 0
	})
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", code, p.stderr)
	}
	if r := readSensorRow(t, db.Pool, "init"); r.Status != "inactive" {
		t.Errorf("status %s after SIGTERM; want inactive", r.Status)
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
