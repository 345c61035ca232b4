package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/embeddedpg"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// TestShortRun runs the simulator briefly against a test database, so that
// it keeps compiling and keeps measuring what the README says it measures.
func TestShortRun(t *testing.T) {
	db := dbtest.New(t)
	var stdout, stderr bytes.Buffer
	code := runMain(context.Background(), []string{
		"--database-url", db.URL, "--workers", "300", "--interval", "1s", "--duration", "3s",
		"--connections", "4", "--report-every", "1s", "--json",
		// A shared test server on a busy CI machine: judge the mechanics,
		// not the latency.
		"--max-p99", "1s",
	}, &stdout, &stderr)
	if code != exitOK && code != exitMissed {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr.String())
	}
	var rep struct {
		Workers    int                `json:"workers"`
		Heartbeats int                `json:"heartbeats"`
		After      int                `json:"after_window"`
		Missed     int                `json:"missed"`
		LateMS     map[string]float64 `json:"late_ms"`
		Errors     int                `json:"errors"`
		Updates    int64              `json:"updates"`
		HOTUpdates int64              `json:"hot_updates"`
		HOTShare   float64            `json:"hot_share"`
		Fillfactor string             `json:"fillfactor"`
		LatencyMS  map[string]float64 `json:"latency_ms"`
		Start      struct {
			TableBytes int64 `json:"table_bytes"`
			IndexBytes int64 `json:"index_bytes"`
		} `json:"start"`
		Checks []struct {
			What string `json:"what"`
			OK   bool   `json:"ok"`
		} `json:"checks"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, stdout.String())
	}
	// 300 workers at 1 s for 3 s: 900 heartbeats are due.
	if rep.Heartbeats < 880 || rep.Heartbeats > 900 || rep.Errors != 0 {
		t.Errorf("heartbeats = %d with %d errors, want about 900 and none\n%s", rep.Heartbeats, rep.Errors, stderr.String())
	}
	// Every heartbeat is exactly one update of the worker table.
	if rep.Updates != int64(rep.Heartbeats+rep.After) {
		t.Errorf("n_tup_upd grew by %d for %d heartbeats: the statistics are not read right", rep.Updates, rep.Heartbeats)
	}
	// The migrations' fillfactor leaves room on every page: the heartbeats
	// of a fresh table are HOT updates.
	if rep.Fillfactor != "70" || rep.HOTShare < 0.9 {
		t.Errorf("fillfactor %s, HOT share %.2f (%d of %d): want 70 and at least 0.9", rep.Fillfactor, rep.HOTShare, rep.HOTUpdates, rep.Updates)
	}
	if rep.Start.TableBytes <= 0 || rep.Start.IndexBytes <= 0 || rep.LatencyMS["p99"] <= 0 {
		t.Errorf("sizes and latency missing from the report:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "hb/s") {
		t.Errorf("no progress lines on stderr:\n%s", stderr.String())
	}
	// The schema was dropped at the end.
	var n int
	if err := db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM pg_namespace WHERE nspname = 'attune_loadsim'").Scan(&n); err != nil || n != 0 {
		t.Errorf("schema attune_loadsim left behind (%d, %v)", n, err)
	}
}

// TestRefusesForeignSchema: loadsim drops its schema at the end, so it never
// works in one it did not create.
func TestRefusesForeignSchema(t *testing.T) {
	db := dbtest.New(t)
	var stdout, stderr bytes.Buffer
	code := runMain(context.Background(), []string{"--database-url", db.URL, "--schema", "attune", "--workers", "1", "--duration", "1s"}, &stdout, &stderr)
	if code != exitError || !strings.Contains(stderr.String(), `schema "attune" exists and was not created by loadsim: choose another --schema`) {
		t.Errorf("exit %d, stderr:\n%s", code, stderr.String())
	}
	var workers int
	if err := db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM attune.worker").Scan(&workers); err != nil || workers != 0 {
		t.Errorf("worker rows in the refused schema: %d (%v)", workers, err)
	}
}

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--workers", "0"}, "--workers must be at least 1"},
		{[]string{"--interval", "0s"}, "--interval must be greater than 0"},
		{[]string{"--fillfactor", "5"}, "--fillfactor must be between 10 and 100"},
		{[]string{"--heartbeat-synchronous-commit", "maybe"}, `--heartbeat-synchronous-commit "maybe": use on, off`},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		var stdout, stderr bytes.Buffer
		if code := runMain(context.Background(), tc.args, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want exit 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// TestHeartbeatCommitDurability checks, on a durable server (fsync and
// synchronous_commit on), that a heartbeat does not wait for its WAL
// flush — the server fsyncs the WAL a few dozen times a second (the WAL
// writer, and writes of freshly dirtied pages), not once per heartbeat —
// and that attunectl.heartbeat_synchronous_commit = on makes heartbeats
// durable again.
func TestHeartbeatCommitDurability(t *testing.T) {
	root, err := os.MkdirTemp("/tmp", "loadsim-t-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	srv, err := embeddedpg.Start(ctx, embeddedpg.Options{DataDir: filepath.Join(root, "data"), Foreground: true})
	if err != nil {
		t.Fatalf("starting a durable server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })

	syncsPerHeartbeat := func(extra ...string) float64 {
		t.Helper()
		var stdout, stderr bytes.Buffer
		args := append([]string{"--database-url", srv.ConnString("attune"), "--workers", "2000", "--interval", "1s", "--duration", "2s",
			"--connections", "4", "--report-every", "0", "--json", "--max-p99", "1s"}, extra...)
		if code := runMain(ctx, args, &stdout, &stderr); code != exitOK && code != exitMissed {
			t.Fatalf("loadsim %v: exit %d\n%s", extra, code, stderr.String())
		}
		var rep struct {
			Heartbeats int     `json:"heartbeats"`
			After      int     `json:"after_window"`
			Errors     int     `json:"errors"`
			Syncs      float64 `json:"wal_syncs_per_second"`
			Elapsed    float64 `json:"elapsed_seconds"`
			Server     struct {
				Fsync             string `json:"fsync"`
				SynchronousCommit string `json:"synchronous_commit"`
			} `json:"server"`
		}
		// loadsim counts only heartbeats completed inside the window and
		// drops those a loaded machine could not start in it; the WAL
		// counters see every heartbeat that ran, inside the window or
		// after it. This test is about fsyncs per heartbeat, not about the
		// rate (TestShortRun and loadsim's own checks judge that): it needs
		// a sample large enough for the ratio, on the same footing as the
		// counters.
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil || rep.Errors != 0 {
			t.Fatalf("loadsim %v: %v, %d errors\n%s", extra, err, rep.Errors, stdout.String())
		}
		ran := rep.Heartbeats + rep.After
		if ran < 500 {
			t.Fatalf("loadsim %v: only %d heartbeats ran, too few to count fsyncs per heartbeat\n%s", extra, ran, stdout.String())
		}
		if rep.Server.Fsync != "on" || rep.Server.SynchronousCommit != "on" {
			t.Fatalf("the server is not durable: fsync %s, synchronous_commit %s", rep.Server.Fsync, rep.Server.SynchronousCommit)
		}
		return rep.Syncs * rep.Elapsed / float64(ran)
	}
	async := syncsPerHeartbeat()
	durable := syncsPerHeartbeat("--heartbeat-synchronous-commit", "on")
	t.Logf("WAL fsyncs per heartbeat: %.3f by default, %.3f with attunectl.heartbeat_synchronous_commit = on", async, durable)
	if async > 0.1 {
		t.Errorf("%.3f WAL fsyncs per heartbeat: heartbeats wait for their WAL flush", async)
	}
	if durable < 0.3 {
		t.Errorf("%.3f WAL fsyncs per heartbeat with attunectl.heartbeat_synchronous_commit = on: the setting is not honoured", durable)
	}
}

// TestReportJudgesTheWindow: heartbeats completed after the window, or due
// in it and never started, do not count toward the rate, and a p99
// lateness over --max-late-p99 fails the run.
func TestReportJudgesTheWindow(t *testing.T) {
	o := options{Workers: 100, Interval: time.Second, Duration: 10 * time.Second, MaxP99: time.Second, MaxLateP99: time.Second, MaxGrowth: 1}
	judge := func(fill func(*recorder)) *report {
		rec := newRecorder()
		fill(rec)
		rep := &report{Options: o, TargetPerSecond: 100}
		rep.Start.TableBytes, rep.End.TableBytes = 1, 1
		rep.Start.Updates, rep.End.Updates, rep.End.HOTUpdates = 0, 1000, 1000
		rep.finish(rec, 12*time.Second)
		return rep
	}
	ok := judge(func(r *recorder) {
		for range 1000 {
			r.add(time.Millisecond, 10*time.Millisecond, nil, true)
		}
	})
	if !ok.Passed || ok.Heartbeats != 1000 || ok.AchievedPerSecond != 100 {
		t.Fatalf("a run on schedule: passed %v, %d heartbeats, %.0f/s: %+v", ok.Passed, ok.Heartbeats, ok.AchievedPerSecond, ok.Checks)
	}
	late := judge(func(r *recorder) {
		for i := range 1000 {
			switch {
			case i < 900:
				r.add(time.Millisecond, 10*time.Millisecond, nil, true)
			case i < 950:
				r.add(time.Millisecond, 3*time.Second, nil, false) // finished after the window
			default:
				r.miss(4 * time.Second)
			}
		}
	})
	if late.Passed || late.Heartbeats != 900 || late.AfterWindow != 50 || late.Missed != 50 || late.AchievedPerSecond != 90 {
		t.Fatalf("a run 10%% short and late: passed %v, %d in the window, %d after, %d missed, %.0f/s", late.Passed,
			late.Heartbeats, late.AfterWindow, late.Missed, late.AchievedPerSecond)
	}
	var missed []string
	for _, c := range late.Checks {
		if !c.OK {
			missed = append(missed, c.What)
		}
	}
	if strings.Join(missed, ",") != "heartbeats/s,lateness p99" {
		t.Errorf("missed checks %v, want the rate and the lateness", missed)
	}
}
