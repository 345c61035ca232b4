// Package config holds attunectl's configuration: the Config struct, its
// defaults, loading from a YAML file, ATTUNE__SECTION__KEY environment
// overrides and command-line flags (in that order, later wins), and
// validation that names the offending key.
//
// The file format is Attune's config.yaml: sections attunectl does not know
// (server, security, message_queue, …) and keys it does not know inside the
// sections it reads are ignored, so one file serves every Attune service.
package config

import (
	"time"
)

// Config is the resolved configuration of one attunectl invocation.
type Config struct {
	Database Database `yaml:"database" json:"database"`
	Sensor   Sensor   `yaml:"sensor" json:"sensor"`
	Log      Log      `yaml:"log" json:"log"`
	Embedded Embedded `yaml:"embedded" json:"embedded"`
}

// Embedded configures the local PostgreSQL attunectl starts when no
// database URL is configured.
type Embedded struct {
	// DataDir holds the server's data; empty means the user's state
	// directory (~/.local/state/attunectl/postgres, or
	// /var/lib/attunectl/postgres as root).
	DataDir string `yaml:"data_dir" json:"data_dir"`
}

// Database says where the worker registry lives. An empty URL selects the
// embedded local PostgreSQL.
type Database struct {
	// URL is a PostgreSQL URL or key=value DSN, multi-host URLs included.
	URL string `yaml:"url" json:"url"`
	// Schema holds attunectl's tables; connections put it first on search_path.
	Schema string `yaml:"schema" json:"schema"`
	// ConnectTimeout bounds each connection attempt.
	ConnectTimeout Seconds `yaml:"connect_timeout" json:"connect_timeout"`
	// StatementTimeout bounds every statement of the inspection and sensor
	// commands (0 disables); migrations run without it.
	StatementTimeout Seconds `yaml:"statement_timeout" json:"statement_timeout"`
	// MaxConnections caps the connection pool.
	MaxConnections int `yaml:"max_connections" json:"max_connections"`
}

// Sensor configures `attunectl sensor run` and the detection engine. The keys
// and defaults up to sensor_timeout are the registration design's.
type Sensor struct {
	WorkerName           string         `yaml:"worker_name" json:"worker_name"`
	Host                 string         `yaml:"host" json:"host"`
	Capabilities         map[string]any `yaml:"capabilities" json:"capabilities"`
	MaxConcurrentSensors int            `yaml:"max_concurrent_sensors" json:"max_concurrent_sensors"`
	HeartbeatInterval    Seconds        `yaml:"heartbeat_interval" json:"heartbeat_interval"`
	PollInterval         Seconds        `yaml:"poll_interval" json:"poll_interval"`
	SensorTimeout        Seconds        `yaml:"sensor_timeout" json:"sensor_timeout"`
	// ShutdownTimeout bounds the graceful stop (loops, then deregister).
	ShutdownTimeout Seconds `yaml:"shutdown_timeout" json:"shutdown_timeout"`
	// ReverifyInterval re-runs detection while the worker lives; 0 disables.
	ReverifyInterval Seconds `yaml:"reverify_interval" json:"reverify_interval"`
	// PassthroughEnv names the environment variables, beyond PATH, HOME,
	// LANG, LC_*, TZ and TMPDIR, that verification commands may see.
	PassthroughEnv []string `yaml:"passthrough_env" json:"passthrough_env"`
	// MetricsAddr serves Prometheus metrics, /healthz and /readyz when set.
	MetricsAddr string `yaml:"metrics_addr" json:"metrics_addr"`
	// RunAs is the user that commands from the database (verification
	// commands, sensors) run as: a name or uid; "root" runs them as root
	// on purpose. Empty as root: an unprivileged uid attunectl picks from
	// 61184-65519, with a private HOME. Empty as another user: that user.
	RunAs string `yaml:"run_as" json:"run_as"`
	// Path is the PATH of commands run as another user than attunectl's
	// (run_as, or the uid picked as root): directories that user can
	// search. attunectl's own PATH is used only when it runs them as
	// itself.
	Path         string       `yaml:"path" json:"path"`
	Limits       Limits       `yaml:"limits" json:"limits"`
	Verification Verification `yaml:"verification" json:"verification"`

	// RunSensors: `sensor run` takes its share of the sensors and runs
	// them (default true); false only registers and heartbeats.
	RunSensors bool `yaml:"run_sensors" json:"run_sensors"`
	// Labels are advertised in capabilities.labels for sensors' selectors
	// (env: "zone=eu,disk=ssd").
	Labels map[string]string `yaml:"labels" json:"labels"`
	// Taints keep sensors without a matching toleration away:
	// "key=value:NoSchedule" (or PreferNoSchedule).
	Taints []string `yaml:"taints" json:"taints"`
	// PacksDir is where a relative entrypoint is found:
	// <packs_dir>/<pack>/sensors/<entrypoint> (Attune's packs.base_dir).
	PacksDir string `yaml:"packs_dir" json:"packs_dir"`
	// StopTimeout is the wait between SIGTERM and SIGKILL of a sensor process.
	StopTimeout Seconds `yaml:"stop_timeout" json:"stop_timeout"`
	// QuarantineAfter consecutive failures stop a sensor until `sensor enable`.
	QuarantineAfter int `yaml:"quarantine_after" json:"quarantine_after"`
	// Lease is how long a claim or renewal of a sensor holds; 0 is the
	// worker's grace (three heartbeat intervals).
	Lease Seconds `yaml:"lease" json:"lease"`
	// HandoffBudget is how many sensors a worker hands over per interval
	// when it rebalances or drains.
	HandoffBudget int `yaml:"handoff_budget" json:"handoff_budget"`
	// Events configures the loopback event endpoint of sensor processes.
	Events Events `yaml:"events" json:"events"`
}

// Limits are the resource limits of every command attunectl runs for the
// database (pkg/sandbox). 0 leaves attunectl's own limit.
type Limits struct {
	// OpenFiles is RLIMIT_NOFILE per process.
	OpenFiles int64 `yaml:"open_files" json:"open_files"`
	// Processes is RLIMIT_NPROC: processes and threads of the run_as user
	// in all (root is exempt).
	Processes int64 `yaml:"processes" json:"processes"`
	// MemoryBytes is RLIMIT_DATA per process.
	MemoryBytes int64 `yaml:"memory_bytes" json:"memory_bytes"`
	// CPUSeconds is RLIMIT_CPU per process.
	CPUSeconds int64 `yaml:"cpu_seconds" json:"cpu_seconds"`
}

// Verification limits what verification commands may do on this host.
type Verification struct {
	// Timeout per command, matching its pattern included; the command and
	// everything it started are killed when it fires.
	Timeout Seconds `yaml:"timeout" json:"timeout"`
	// AllowedBinaries, when set, is the only binaries that may run. Unset
	// (nil, the default) allows any; set to an empty list, it allows none.
	AllowedBinaries []string `yaml:"allowed_binaries" json:"allowed_binaries"`
	// PinnedCommands are exact commands ("python3 --version") that may run
	// whatever AllowedBinaries says; setting any turns the allow-list on.
	PinnedCommands []string `yaml:"pinned_commands" json:"pinned_commands"`
	// Deadline bounds a whole detection; commands not started by then are
	// reported as not run.
	Deadline Seconds `yaml:"deadline" json:"deadline"`
	// MaxOutputBytes caps what is read of a command's stdout and stderr.
	MaxOutputBytes int `yaml:"max_output_bytes" json:"max_output_bytes"`
}

// Events configures the event endpoint and how events are written.
type Events struct {
	// Listen is the loopback address of the endpoint (port 0: any free one).
	Listen string `yaml:"listen" json:"listen"`
	// RateLimit is the events per second one sensor process may post.
	RateLimit int `yaml:"rate_limit" json:"rate_limit"`
	// Commit is "durable" (each batch waits for its WAL flush) or "async"
	// (synchronous_commit off: a server crash can lose the last fraction of
	// a second of accepted events).
	Commit string `yaml:"commit" json:"commit"`
}

// Log configures the structured logs written to stderr.
type Log struct {
	Level  string `yaml:"level" json:"level"`
	Format string `yaml:"format" json:"format"`
}

// Default returns the configuration used when nothing is set.
func Default() *Config {
	return &Config{
		Database: Database{
			Schema:           "attune",
			ConnectTimeout:   Seconds(10 * time.Second),
			StatementTimeout: Seconds(30 * time.Second),
			MaxConnections:   4,
		},
		Sensor: Sensor{
			MaxConcurrentSensors: 10,
			HeartbeatInterval:    Seconds(30 * time.Second),
			PollInterval:         Seconds(30 * time.Second),
			SensorTimeout:        Seconds(30 * time.Second),
			ShutdownTimeout:      Seconds(10 * time.Second),
			ReverifyInterval:     Seconds(5 * time.Minute),
			// pkg/sandbox's defaults (DefaultLimits).
			RunSensors:      true,
			PacksDir:        "/opt/attune/packs",
			Path:            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			StopTimeout:     Seconds(5 * time.Second),
			QuarantineAfter: 5,
			HandoffBudget:   2,
			Events:          Events{Listen: "127.0.0.1:0", RateLimit: 10000, Commit: "durable"},
			Limits: Limits{
				OpenFiles:   1024,
				Processes:   4096,
				MemoryBytes: 4 << 30,
				CPUSeconds:  0,
			},
			Verification: Verification{
				Timeout:        Seconds(5 * time.Second),
				MaxOutputBytes: 64 << 10,
				Deadline:       Seconds(15 * time.Second),
			},
		},
		Log: Log{Level: "info", Format: "text"},
	}
}

// CapabilityRuntimes returns sensor.capabilities.runtimes, the
// config-level runtime list, and whether it was set.
func (s Sensor) CapabilityRuntimes() ([]string, bool) {
	v, ok := s.Capabilities["runtimes"]
	if !ok || v == nil {
		return nil, false
	}
	switch t := v.(type) {
	case []string:
		return t, true
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out, true
	case string:
		return splitList(t), true
	}
	return nil, false
}
