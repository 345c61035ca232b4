package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnknownKeysWarnWithSuggestion: a key attunectl does not know in its
// own sections, in the file or the environment, is a warning with the
// nearest key; Attune's sections and keys still load.
func TestUnknownKeysWarnWithSuggestion(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(`
database:
  url: postgres://attune@db/attune
  schema: attune
sensor:
  heartbeat_intervall: 10
  verification:
    timout: 3
  capabilities:
    anything_goes: 1
  labels:
    zone: eu
api:
  port: 8080
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, info, err := Load(LoadOptions{Path: path, Environ: []string{"ATTUNE__SENSOR__WORKER_NAM=w1", "ATTUNE__API__PORT=1"}})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Database.URL == "" || cfg.Sensor.Labels["zone"] != "eu" {
		t.Fatalf("known keys did not load: %+v", cfg)
	}
	all := strings.Join(info.Warnings, "\n")
	for _, want := range []string{
		"line 6: attunectl has no configuration key sensor.heartbeat_intervall and ignores it (did you mean sensor.heartbeat_interval?)",
		"line 8: attunectl has no configuration key sensor.verification.timout and ignores it (did you mean sensor.verification.timeout?)",
		"environment variable ATTUNE__SENSOR__WORKER_NAM: attunectl has no configuration key sensor.worker_nam and ignores it (did you mean sensor.worker_name?)",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
	for _, notWanted := range []string{"api", "anything_goes", "zone"} {
		if strings.Contains(all, notWanted) {
			t.Errorf("warned about %s, which is not attunectl's to judge:\n%s", notWanted, all)
		}
	}
}
