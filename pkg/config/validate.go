package config

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// identRe is an unquoted PostgreSQL identifier as attunectl accepts it for a
// schema name: lower case, so that it never needs quoting in SQL or URLs.
var identRe = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// ValidationError lists every invalid key at once.
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string {
	if len(e.Problems) == 1 {
		return "invalid configuration: " + e.Problems[0]
	}
	return "invalid configuration:\n  " + strings.Join(e.Problems, "\n  ")
}

// Validate checks every key and names each invalid one.
func (c *Config) Validate() error {
	var p []string
	add := func(key, format string, args ...any) {
		p = append(p, key+": "+fmt.Sprintf(format, args...))
	}
	positive := func(key string, v Seconds) {
		if v <= 0 {
			add(key, "must be greater than 0, got %s (give seconds, e.g. 30, or a duration, e.g. 30s)", v)
		}
	}

	if !identRe.MatchString(c.Database.Schema) {
		add("database.schema", "%q is not a valid schema name (lower-case letters, digits and _, starting with a letter or _, at most 63)", c.Database.Schema)
	}
	positive("database.connect_timeout", c.Database.ConnectTimeout)
	if c.Database.StatementTimeout < 0 {
		add("database.statement_timeout", "must be 0 (off) or more, got %s", c.Database.StatementTimeout)
	}
	if c.Database.MaxConnections < 1 {
		add("database.max_connections", "must be at least 1, got %d", c.Database.MaxConnections)
	}

	s := c.Sensor
	if strings.ContainsAny(s.WorkerName, " \t\r\n") {
		add("sensor.worker_name", "%q must not contain whitespace", s.WorkerName)
	}
	if s.MaxConcurrentSensors < 1 {
		add("sensor.max_concurrent_sensors", "must be at least 1, got %d", s.MaxConcurrentSensors)
	}
	positive("sensor.heartbeat_interval", s.HeartbeatInterval)
	positive("sensor.poll_interval", s.PollInterval)
	positive("sensor.sensor_timeout", s.SensorTimeout)
	positive("sensor.shutdown_timeout", s.ShutdownTimeout)
	if s.ReverifyInterval < 0 {
		add("sensor.reverify_interval", "must be 0 (off) or more, got %s", s.ReverifyInterval)
	}
	if v, ok := s.Capabilities["runtimes"]; ok && v != nil {
		if _, ok := s.CapabilityRuntimes(); !ok {
			add("sensor.capabilities.runtimes", "must be a list of runtime names, e.g. [python, shell]")
		}
	}
	for i, name := range s.PassthroughEnv {
		if name == "" || strings.ContainsAny(name, "= \t") {
			add(fmt.Sprintf("sensor.passthrough_env[%d]", i), "%q is not an environment variable name", name)
		}
	}
	positive("sensor.stop_timeout", s.StopTimeout)
	if s.QuarantineAfter < 1 {
		add("sensor.quarantine_after", "must be at least 1, got %d", s.QuarantineAfter)
	}
	if s.Lease < 0 {
		add("sensor.lease", "must be 0 (the worker's grace) or more, got %s", s.Lease)
	}
	if s.HandoffBudget < 1 {
		add("sensor.handoff_budget", "must be at least 1, got %d", s.HandoffBudget)
	}
	for k, v := range s.Labels {
		if k == "" || strings.ContainsFunc(k+v, unicode.IsControl) {
			add("sensor.labels", "%q=%q: a label needs a key and no control characters", k, v)
		}
	}
	for i, t := range s.Taints {
		if _, err := ParseTaint(t); err != nil {
			add(fmt.Sprintf("sensor.taints[%d]", i), "%v", err)
		}
	}
	if s.Events.RateLimit < 1 {
		add("sensor.events.rate_limit", "must be at least 1 event per second, got %d", s.Events.RateLimit)
	}
	if s.Events.Commit != "durable" && s.Events.Commit != "async" {
		add("sensor.events.commit", "%q: want durable or async", s.Events.Commit)
	}
	positive("sensor.verification.timeout", s.Verification.Timeout)
	for i, b := range s.Verification.AllowedBinaries {
		if strings.TrimSpace(b) == "" {
			add(fmt.Sprintf("sensor.verification.allowed_binaries[%d]", i), "must not be empty")
		}
	}
	positive("sensor.verification.deadline", s.Verification.Deadline)
	for i, c := range s.Verification.PinnedCommands {
		f := strings.Fields(c)
		switch {
		case len(f) == 0:
			add(fmt.Sprintf("sensor.verification.pinned_commands[%d]", i), "must not be empty: give the exact command, e.g. \"python3 --version\"")
		case strings.Contains(f[0], "/") && !strings.HasPrefix(f[0], "/"):
			add(fmt.Sprintf("sensor.verification.pinned_commands[%d]", i), "%q: the binary must be a bare name or an absolute path", f[0])
		}
	}
	if strings.ContainsAny(s.RunAs, " \t\r\n:/") {
		add("sensor.run_as", "%q is not a user name or uid", s.RunAs)
	}
	if strings.TrimSpace(s.Path) == "" {
		add("sensor.path", "must not be empty: give absolute directories separated by ':', e.g. /usr/local/bin:/usr/bin:/bin")
	}
	for _, dir := range strings.Split(s.Path, ":") {
		if dir != "" && !strings.HasPrefix(dir, "/") {
			add("sensor.path", "%q is not an absolute directory: a relative one would depend on the working directory", dir)
		}
	}
	for _, l := range []struct {
		key      string
		v, least int64
	}{
		{"sensor.limits.open_files", s.Limits.OpenFiles, 16},
		{"sensor.limits.processes", s.Limits.Processes, 16},
		{"sensor.limits.memory_bytes", s.Limits.MemoryBytes, 64 << 20},
		{"sensor.limits.cpu_seconds", s.Limits.CPUSeconds, 1},
	} {
		if l.v != 0 && l.v < l.least {
			add(l.key, "must be 0 (no limit) or at least %d, got %d", l.least, l.v)
		}
	}
	if s.Verification.MaxOutputBytes < 1024 {
		add("sensor.verification.max_output_bytes", "must be at least 1024, got %d", s.Verification.MaxOutputBytes)
	}

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "unknown level %q: use debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		add("log.format", "unknown format %q: use text or json", c.Log.Format)
	}
	if len(p) > 0 {
		return &ValidationError{Problems: p}
	}
	return nil
}
