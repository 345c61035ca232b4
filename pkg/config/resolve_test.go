package config

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestResolvedFillsMachineDefaults(t *testing.T) {
	cfg, _, err := Load(LoadOptions{Path: writeFile(t, "sensor:\n  host: given-host\n")})
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	r, err := cfg.Resolved(ResolveOptions{DefaultDataDir: func() (string, error) { return "/var/lib/attunectl/postgres", nil }})
	if err != nil {
		t.Fatal(err)
	}
	if r.Sensor.WorkerName != "sensor-"+host || r.Sensor.Host != "given-host" || r.Embedded.DataDir != "/var/lib/attunectl/postgres" {
		t.Errorf("resolved: worker_name=%q host=%q data_dir=%q", r.Sensor.WorkerName, r.Sensor.Host, r.Embedded.DataDir)
	}
	if cfg.Sensor.WorkerName != "" || cfg.Embedded.DataDir != "" {
		t.Errorf("Resolved changed its receiver: %+v", cfg)
	}

	// What cannot be found stays empty, and the error says how to set it.
	r, err = cfg.Resolved(ResolveOptions{
		Hostname:       func() (string, error) { return "", nil },
		DefaultDataDir: func() (string, error) { return "", errors.New("$HOME is not set") },
	})
	if r.Sensor.WorkerName != "" || r.Sensor.Host != "given-host" || err == nil ||
		!strings.Contains(err.Error(), "set them in the config file or with --name and --host") ||
		!strings.Contains(err.Error(), "$HOME is not set (set embedded.data_dir") {
		t.Errorf("resolved %+v, err %v", r.Sensor, err)
	}
}
