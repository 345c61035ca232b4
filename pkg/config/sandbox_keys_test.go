package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAllowListUnsetVersusEmpty: allowed_binaries absent stays nil (any
// binary); `allowed_binaries: []` is an empty, non-nil list (no binary).
func TestAllowListUnsetVersusEmpty(t *testing.T) {
	dir := t.TempDir()
	load := func(body string) *Config {
		t.Helper()
		p := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, _, err := Load(LoadOptions{Path: p})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	if got := load("sensor:\n  verification:\n    timeout: 5\n").Sensor.Verification.AllowedBinaries; got != nil {
		t.Errorf("unset: %#v, want nil", got)
	}
	if got := load("sensor:\n  verification:\n    allowed_binaries: []\n").Sensor.Verification.AllowedBinaries; got == nil || len(got) != 0 {
		t.Errorf("empty: %#v, want an empty non-nil list", got)
	}
	cfg := load("sensor:\n  run_as: nobody\n  limits:\n    open_files: 256\n    cpu_seconds: 30\n  verification:\n    deadline: 20\n    pinned_commands: [\"python3 --version\", \"/usr/bin/node --version\"]\n")
	s := cfg.Sensor
	if s.RunAs != "nobody" || s.Limits.OpenFiles != 256 || s.Limits.CPUSeconds != 30 || s.Limits.Processes != 4096 ||
		s.Verification.Deadline.D() != 20*time.Second || len(s.Verification.PinnedCommands) != 2 {
		t.Errorf("%+v", s)
	}
}

func TestSandboxKeysFromEnvAndValidation(t *testing.T) {
	// An empty file of our own, not /dev/null: a device is refused as a
	// config file (TestConfigFile…), and these keys come from the environment.
	empty := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := Load(LoadOptions{Path: empty, Environ: []string{"ATTUNE__SENSOR__RUN_AS=nobody", "ATTUNE__SENSOR__LIMITS__MEMORY_BYTES=1073741824", "ATTUNE__SENSOR__VERIFICATION__DEADLINE=30s"}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Sensor.RunAs != "nobody" || cfg.Sensor.Limits.MemoryBytes != 1<<30 || cfg.Sensor.Verification.Deadline.D() != 30*time.Second {
		t.Errorf("%+v", cfg.Sensor)
	}
	if d := Default().Sensor; d.Verification.AllowedBinaries != nil || d.RunAs != "" || d.Verification.Deadline.D() != 15*time.Second {
		t.Errorf("defaults: %+v", d)
	}
	bad := Default()
	bad.Sensor.RunAs = "no body"
	bad.Sensor.Limits.OpenFiles = 3
	bad.Sensor.Limits.MemoryBytes = 1000
	bad.Sensor.Verification.Deadline = 0
	bad.Sensor.Verification.PinnedCommands = []string{" ", "bin/python3 --version"}
	err = bad.Validate()
	for _, want := range []string{"sensor.run_as", "sensor.limits.open_files: must be 0 (no limit) or at least 16, got 3", "sensor.limits.memory_bytes", "sensor.verification.deadline", "sensor.verification.pinned_commands[0]", "sensor.verification.pinned_commands[1]"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}
