// Command loadsim simulates many sensor workers heartbeating against one
// PostgreSQL database, through attunectl's own registration package
// (pkg/workers: Register, then Heartbeat — the statements `attunectl sensor
// run` sends), so that an operator can size a database before pointing a
// fleet at it, and so that the Scale figures of `attunectl help performance` can be
// reproduced.
//
// It registers --workers workers in a schema of its own, then heartbeats
// each of them once per --interval for --duration, every worker at a fixed
// random phase within the interval (as independent hosts do), over a pool
// of --connections connections. It reports:
//
//   - heartbeats per second achieved against the target (workers/interval);
//   - the latency of one Heartbeat call (p50, p90, p99, p99.9, max) and how
//     late heartbeats started against their schedule (when the pool cannot
//     keep up, this grows);
//   - the share of the worker table's updates that PostgreSQL performed as
//     HOT updates (pg_stat_user_tables, n_tup_hot_upd / n_tup_upd, delta
//     over the run);
//   - the table and index sizes at the start (after registration) and at
//     the end, and the table's growth.
//
// Without --database-url it starts a throwaway PostgreSQL of its own
// (pkg/embeddedpg; durable settings, fsync on, unless --ephemeral) in a
// temporary directory and removes it at the end. With --database-url it
// works in --schema (default attune_loadsim), which must not exist or must
// be one loadsim created; it is dropped at the end unless --keep. The
// database needs max_connections of at least --connections + 5.
//
// Flags for comparing the design choices (the Scale table of `attunectl help performance`):
// --migrate-to 3 runs on the schema before the heartbeat tuning
// (fillfactor 100); --fillfactor N sets another fillfactor;
// --index-last-heartbeat adds the index that would make every heartbeat a
// non-HOT update; --heartbeat-synchronous-commit on makes the heartbeats
// wait for the WAL flush, as they did before attunectl turned that off for
// the heartbeat statement.
//
// The simulated workers share one pool, as they would share a connection
// pooler (PgBouncer) in front of a real server: 100,000 hosts with a
// connection each would need max_connections of 100,000.
//
// Only the heartbeats that complete inside the measured window (--duration
// from the first scheduled heartbeat) count toward the rate; one due in the
// window that the senders reach only after it is missed. Lateness is how
// far behind its schedule each heartbeat started (a missed one: how late it
// was when dropped), reported as p50, p99 and max.
//
// Exit status: 0 when every target was met, 3 when the run completed but a
// target was missed (--max-p99, --max-late-p99 (1 s), --min-hot,
// --max-growth, or less than 99% of the target rate inside the window), 1
// on error, 2 on bad flags.
//
//	go run ./cmd/loadsim                                            # 100,000 workers, 30 s, 5 minutes
//	go run ./cmd/loadsim --workers 20000 --interval 10s --duration 1m
//	go run ./cmd/loadsim --database-url postgres://u:p@db/attune --connections 16
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/attune-automation/attunectl/pkg/database"
)

// Exit statuses.
const (
	exitOK     = 0
	exitError  = 1
	exitUsage  = 2
	exitMissed = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// runMain parses the flags, runs the simulation and maps the outcome to an
// exit status.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadsim: %v\n", err)
		return exitUsage
	}
	rep, err := run(ctx, o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "loadsim: %s\n", database.Redact(err.Error()))
		return exitError
	}
	if o.JSON {
		err = rep.writeJSON(stdout)
	} else {
		err = rep.writeText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadsim: writing the report: %v\n", err)
		return exitError
	}
	if !rep.Passed {
		return exitMissed
	}
	return exitOK
}

// options are loadsim's flags.
type options struct {
	URL         string
	Schema      string
	Workers     int
	Interval    time.Duration
	Duration    time.Duration
	Connections int
	Seed        uint64

	// Variants, for before/after comparisons of the design choices.
	MigrateTo           int64  // apply the migrations up to this version only (0: all)
	Fillfactor          int    // ALTER TABLE worker SET (fillfactor) before registering (0: as migrated)
	IndexLastHeartbeat  bool   // add an index on worker(last_heartbeat), which prevents HOT updates
	HeartbeatSyncCommit string // attunectl.heartbeat_synchronous_commit of the pool's sessions ("": the default, off)

	// The server loadsim starts without --database-url.
	Ephemeral bool
	Keep      bool

	// Targets.
	MaxP99     time.Duration
	MaxLateP99 time.Duration
	MinHOT     float64
	MaxGrowth  float64

	ReportEvery time.Duration
	JSON        bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.URL, "database-url", "", "PostgreSQL URL to run against (default: start a throwaway server of its own)")
	fs.StringVar(&o.Schema, "schema", "attune_loadsim", "schema to create the tables in: must not exist, or be one loadsim created; dropped at the end unless --keep")
	fs.IntVar(&o.Workers, "workers", 100_000, "simulated sensor workers")
	fs.DurationVar(&o.Interval, "interval", 30*time.Second, "heartbeat interval of every worker")
	fs.DurationVar(&o.Duration, "duration", 5*time.Minute, "how long to heartbeat, after registration")
	fs.IntVar(&o.Connections, "connections", 8, "database connections the heartbeats share (the pool size)")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the workers' random phases")
	fs.Int64Var(&o.MigrateTo, "migrate-to", 0, "apply the migrations up to this version only (at least 10), e.g. 11 for the schema before the GIN index on the runtimes (0: all)")
	fs.IntVar(&o.Fillfactor, "fillfactor", 0, "set the worker table's fillfactor (10-100) before registering (0: as the migrations leave it)")
	fs.BoolVar(&o.IndexLastHeartbeat, "index-last-heartbeat", false, "add an index on worker(last_heartbeat) before registering, to measure what it costs")
	fs.StringVar(&o.HeartbeatSyncCommit, "heartbeat-synchronous-commit", "", "synchronous_commit of the heartbeat statements (attunectl.heartbeat_synchronous_commit): on, off, local, remote_write, remote_apply (default: off, as in attunectl)")
	fs.BoolVar(&o.Ephemeral, "ephemeral", false, "own server only: fsync and synchronous_commit off (faster, not like production)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the schema (and the own server's directory) at the end")
	fs.DurationVar(&o.MaxP99, "max-p99", 25*time.Millisecond, "target: heartbeat latency p99 at most this")
	fs.DurationVar(&o.MaxLateP99, "max-late-p99", time.Second, "target: heartbeats start at most this late against their schedule (p99)")
	fs.Float64Var(&o.MinHOT, "min-hot", 0.90, "target: at least this share of the heartbeat updates are HOT")
	fs.Float64Var(&o.MaxGrowth, "max-growth", 0.20, "target: the table grows at most this share of its size after registration")
	fs.DurationVar(&o.ReportEvery, "report-every", 10*time.Second, "print progress on stderr this often (0: never)")
	fs.BoolVar(&o.JSON, "json", false, "print the report as JSON")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: loadsim [flags]\n\nSimulates sensor workers heartbeating through attunectl's registration package\nand reports heartbeats/s, latency, HOT updates and table bloat.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q: loadsim takes flags only (see --help)", fs.Arg(0))
	}
	return o, o.validate()
}

func (o options) validate() error {
	switch {
	case o.Workers < 1:
		return fmt.Errorf("--workers must be at least 1, got %d", o.Workers)
	case o.Interval <= 0:
		return fmt.Errorf("--interval must be greater than 0, got %s", o.Interval)
	case o.Duration <= 0:
		return fmt.Errorf("--duration must be greater than 0, got %s", o.Duration)
	case o.Connections < 1:
		return fmt.Errorf("--connections must be at least 1, got %d", o.Connections)
	case o.Fillfactor != 0 && (o.Fillfactor < 10 || o.Fillfactor > 100):
		return fmt.Errorf("--fillfactor must be between 10 and 100 (or 0 to keep the migrations'), got %d", o.Fillfactor)
	case o.MigrateTo < 0 || (o.MigrateTo > 0 && o.MigrateTo < 10):
		// Registration and heartbeats judge staleness by worker.heartbeat_grace (migration 00010).
		return fmt.Errorf("--migrate-to must be 0 (all) or at least 10, the schema registration needs, got %d (for the table before the heartbeat tuning, pass --fillfactor 100)", o.MigrateTo)
	case o.Schema == "":
		return errors.New("--schema must not be empty")
	case o.ReportEvery < 0:
		return fmt.Errorf("--report-every must be 0 or more, got %s", o.ReportEvery)
	}
	switch o.HeartbeatSyncCommit {
	case "", "on", "off", "local", "remote_write", "remote_apply":
	default:
		return fmt.Errorf("--heartbeat-synchronous-commit %q: use on, off, local, remote_write or remote_apply", o.HeartbeatSyncCommit)
	}
	return nil
}
