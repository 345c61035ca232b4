package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPrecedence checks file < environment < flag for every kind of value.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, `
database:
  url: postgres://file/attune
  schema: from_file
sensor:
  heartbeat_interval: 60
  worker_name: file-name
  passthrough_env: [FROM_FILE]
`)
	tests := []struct {
		name    string
		environ []string
		flags   []Override
		check   func(*Config) (got, want any)
	}{
		{"file only", nil, nil, func(c *Config) (any, any) { return c.Database.URL, "postgres://file/attune" }},
		{"env beats file", []string{"ATTUNE__DATABASE__URL=postgres://env/attune"}, nil,
			func(c *Config) (any, any) { return c.Database.URL, "postgres://env/attune" }},
		{"flag beats env", []string{"ATTUNE__DATABASE__URL=postgres://env/attune"},
			[]Override{{Key: "database.url", Value: "postgres://flag/attune", Source: "--database-url"}},
			func(c *Config) (any, any) { return c.Database.URL, "postgres://flag/attune" }},
		{"env seconds", []string{"ATTUNE__SENSOR__HEARTBEAT_INTERVAL=15"}, nil,
			func(c *Config) (any, any) { return c.Sensor.HeartbeatInterval.D(), 15 * time.Second }},
		{"flag duration string beats env", []string{"ATTUNE__SENSOR__HEARTBEAT_INTERVAL=15"},
			[]Override{{Key: "sensor.heartbeat_interval", Value: "500ms"}},
			func(c *Config) (any, any) { return c.Sensor.HeartbeatInterval.D(), 500 * time.Millisecond }},
		{"file value kept when env sets another key", []string{"ATTUNE__SENSOR__HOST=h1"}, nil,
			func(c *Config) (any, any) { return c.Sensor.WorkerName + "/" + c.Sensor.Host, "file-name/h1" }},
		{"env list", []string{"ATTUNE__SENSOR__PASSTHROUGH_ENV= JAVA_HOME , ,GOPATH"}, nil,
			func(c *Config) (any, any) { return c.Sensor.PassthroughEnv, []string{"JAVA_HOME", "GOPATH"} }},
		{"nested section", []string{"ATTUNE__SENSOR__VERIFICATION__ALLOWED_BINARIES=python3,node"}, nil,
			func(c *Config) (any, any) { return c.Sensor.Verification.AllowedBinaries, []string{"python3", "node"} }},
		{"capabilities runtimes from env", []string{"ATTUNE__SENSOR__CAPABILITIES__RUNTIMES=python,shell"}, nil,
			func(c *Config) (any, any) {
				r, _ := c.Sensor.CapabilityRuntimes()
				return r, []string{"python", "shell"}
			}},
		{"later env wins", []string{"ATTUNE__DATABASE__SCHEMA=one", "ATTUNE__DATABASE__SCHEMA=two"}, nil,
			func(c *Config) (any, any) { return c.Database.Schema, "two" }},
		{"unknown ATTUNE__ keys of other services ignored", []string{"ATTUNE__SERVER__PORT=9000"}, nil,
			func(c *Config) (any, any) { return c.Database.Schema, "from_file" }},
		{"defaults", nil, nil, func(c *Config) (any, any) {
			return []any{c.Sensor.MaxConcurrentSensors, c.Sensor.PollInterval.D(), c.Sensor.SensorTimeout.D(), c.Sensor.ReverifyInterval.D()},
				[]any{10, 30 * time.Second, 30 * time.Second, 5 * time.Minute}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := Load(LoadOptions{Path: file, Environ: tt.environ, Flags: tt.flags})
			if err != nil {
				t.Fatal(err)
			}
			got, want := tt.check(cfg)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %#v, want %#v", got, want)
			}
		})
	}
}

func TestConfigFileDiscovery(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	// No ./config.yaml: defaults.
	cfg, info, err := Load(LoadOptions{})
	if err != nil || info.File != "" || cfg.Database.Schema != "attune" {
		t.Fatalf("no file: cfg=%+v info=%+v err=%v", cfg, info, err)
	}
	// ./config.yaml is read when present.
	if err := os.WriteFile("config.yaml", []byte("database:\n  schema: local_file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, info, err = Load(LoadOptions{})
	if err != nil || info.File != "config.yaml" || cfg.Database.Schema != "local_file" {
		t.Fatalf("./config.yaml: schema=%q info=%+v err=%v", cfg.Database.Schema, info, err)
	}
	// ATTUNE_CONFIG beats ./config.yaml.
	other := writeFile(t, "database:\n  schema: from_env_file\n")
	cfg, _, err = Load(LoadOptions{Environ: []string{"ATTUNE_CONFIG=" + other}})
	if err != nil || cfg.Database.Schema != "from_env_file" {
		t.Fatalf("ATTUNE_CONFIG: %v %v", cfg, err)
	}
	// An explicit file that does not exist is an error.
	_, _, err = Load(LoadOptions{Path: filepath.Join(dir, "missing.yaml")})
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing explicit file: %v", err)
	}
}

// TestAttuneConfig loads an Attune config.yaml full of sections attunectl
// does not know.
func TestAttuneConfig(t *testing.T) {
	cfg, info, err := Load(LoadOptions{Path: filepath.Join("..", "..", "testdata", "config", "attune.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	if info.File == "" {
		t.Fatal("file not recorded")
	}
	if cfg.Database.URL != "postgresql://attune:s3cret-pass@db.internal:5432/attune" {
		t.Errorf("database.url = %q", cfg.Database.URL)
	}
	if cfg.Database.MaxConnections != 20 || cfg.Database.ConnectTimeout.D() != 5*time.Second {
		t.Errorf("database = %+v", cfg.Database)
	}
	if cfg.Sensor.WorkerName != "sensor-prod-01" || cfg.Sensor.HeartbeatInterval.D() != time.Minute || cfg.Sensor.MaxConcurrentSensors != 20 {
		t.Errorf("sensor = %+v", cfg.Sensor)
	}
	if r, ok := cfg.Sensor.CapabilityRuntimes(); !ok || !reflect.DeepEqual(r, []string{"python", "shell"}) {
		t.Errorf("capabilities.runtimes = %v %v", r, ok)
	}
	if cfg.Log.Format != "json" {
		t.Errorf("log.format = %q", cfg.Log.Format)
	}
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		name  string
		path  string
		env   []string
		flags []Override
		want  []string
	}{
		{"malformed yaml names the line", filepath.Join("..", "..", "testdata", "config", "malformed.yaml"), nil, nil,
			[]string{"malformed.yaml", "line 3"}},
		{"every invalid key named", filepath.Join("..", "..", "testdata", "config", "invalid.yaml"), nil, nil,
			[]string{"database.schema", "sensor.heartbeat_interval: must be greater than 0", "log.format: unknown format \"xml\""}},
		{"negative interval from env", "", []string{"ATTUNE__SENSOR__HEARTBEAT_INTERVAL=-5"}, nil,
			[]string{"sensor.heartbeat_interval: must be greater than 0"}},
		{"not a number", "", []string{"ATTUNE__SENSOR__MAX_CONCURRENT_SENSORS=many"}, nil,
			[]string{"ATTUNE__SENSOR__MAX_CONCURRENT_SENSORS", "not a whole number"}},
		{"bad duration", "", nil, []Override{{Key: "sensor.heartbeat_interval", Value: "soon", Source: "--heartbeat-interval"}},
			[]string{"--heartbeat-interval", "invalid duration"}},
		{"schema with a quote", "", nil, []Override{{Key: "database.schema", Value: `a"; drop table worker; --`}},
			[]string{"database.schema", "not a valid schema name"}},
		{"log level", "", []string{"ATTUNE__LOG__LEVEL=loud"}, nil, []string{"log.level"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Load(LoadOptions{Path: tt.path, Environ: tt.env, Flags: tt.flags})
			if err == nil {
				t.Fatal("expected an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestWrongTypeInFile(t *testing.T) {
	p := writeFile(t, "sensor:\n  max_concurrent_sensors: lots\n")
	_, _, err := Load(LoadOptions{Path: p})
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("want line 2 in error, got %v", err)
	}
	p = writeFile(t, "sensor:\n  heartbeat_interval: [1, 2]\n")
	_, _, err = Load(LoadOptions{Path: p})
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("want line 2 in error, got %v", err)
	}
}

func TestKeysAndEnvNames(t *testing.T) {
	keys := Keys()
	for _, want := range []string{"database.url", "database.schema", "sensor.worker_name", "sensor.heartbeat_interval",
		"sensor.verification.allowed_binaries", "log.format", "embedded.data_dir"} {
		found := false
		for _, k := range keys {
			found = found || k == want
		}
		if !found {
			t.Errorf("Keys() lacks %s: %v", want, keys)
		}
	}
	if got := EnvName("sensor.verification.timeout"); got != "ATTUNE__SENSOR__VERIFICATION__TIMEOUT" {
		t.Errorf("EnvName = %s", got)
	}
	// Every key can be set from the environment, except capabilities (a map).
	for _, k := range keys {
		if k == "sensor.capabilities" {
			continue
		}
		cfg := Default()
		val := "1"
		if err := Set(cfg, k, val); err != nil && !strings.Contains(err.Error(), "must") {
			t.Errorf("Set(%s): %v", k, err)
		}
	}
}

// An allow-list set to nothing in the environment ("", " ", ",") is an
// empty list — nothing may run — as [] in the file is; it never turns the
// allow-list off.
func TestEmptyAllowListFromTheEnvironmentAllowsNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("sensor:\n  verification:\n    allowed_binaries: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"", " ", ",", " , "} {
		cfg, _, err := Load(LoadOptions{Path: path, Environ: []string{"ATTUNE__SENSOR__VERIFICATION__ALLOWED_BINARIES=" + v}})
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if got := cfg.Sensor.Verification.AllowedBinaries; got == nil || len(got) != 0 {
			t.Errorf("ATTUNE__SENSOR__VERIFICATION__ALLOWED_BINARIES=%q: allowed_binaries %#v, want an empty list", v, got)
		}
	}
}
