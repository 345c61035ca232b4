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
server:
  port: 8080
message_queue:
  url: amqp://mq:5672
datbase:
  url: postgres://attune@elsewhere/attune
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
		// A section of neither attunectl nor Attune, with the nearest one;
		// database.url is set, so it is a warning and not an error.
		"line 17: section datbase is neither attunectl's nor one of Attune's services' and is ignored (did you mean database?)",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
	for _, notWanted := range []string{"server", "message_queue", "anything_goes", "zone"} {
		if strings.Contains(all, notWanted) {
			t.Errorf("warned about %s, which is not attunectl's to judge:\n%s", notWanted, all)
		}
	}
}

// TestMisspelledDatabaseSectionIsRefused: a section that looks like
// database, with no database.url anywhere, would quietly select the
// embedded database: Load refuses it, naming the line and the fix. With a
// URL from the environment it is only a warning.
func TestMisspelledDatabaseSectionIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("datbase:\n  url: postgres://attune@db/attune\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := Load(LoadOptions{Path: path})
	if err == nil || !strings.Contains(err.Error(), `line 1: section "datbase" is not a section attunectl knows (did you mean database?)`) {
		t.Fatalf("Load = %v, want the misspelled section refused", err)
	}
	cfg, info, err := Load(LoadOptions{Path: path, Environ: []string{"ATTUNE__DATABASE__URL=postgres://attune@db2/attune"}})
	if err != nil || cfg.Database.URL == "" {
		t.Fatalf("with a URL from the environment: %v", err)
	}
	if !strings.Contains(strings.Join(info.Warnings, "\n"), "did you mean database?") {
		t.Errorf("no warning for the misspelled section: %q", info.Warnings)
	}
}
