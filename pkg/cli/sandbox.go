package cli

import (
	"os"
	"path/filepath"

	"github.com/attune-automation/attunectl/pkg/detect"
	"github.com/attune-automation/attunectl/pkg/embeddedpg"
)

// detectOptions are the options of the sandbox verification commands and
// sensor processes run in, from the configuration, with the paths they
// must not read.
func (a *App) detectOptions() detect.Options {
	o := detect.ConfigOptions(a.Config.Sensor, a.Environ)
	o.Hide = a.secretPaths()
	return o
}

// secretPaths are the files through which a command could reach the
// database as attunectl does: the configuration file read and
// /etc/attune, libpq's password and service files, and the embedded
// server's data and socket directories. Inside a sensor's box they read as
// empty — also where a row names one of them as an argument, which would
// otherwise keep it visible through the box's private /tmp.
func (a *App) secretPaths() []string {
	var out []string
	add := func(p string) {
		if p == "" {
			return
		}
		if abs, err := filepath.Abs(p); err == nil {
			out = append(out, abs)
		}
	}
	add(a.Loaded.File)
	add("/etc/attune")
	add(a.Getenv("PGPASSFILE"))
	add(a.Getenv("PGSERVICEFILE"))
	if home, err := os.UserHomeDir(); err == nil {
		add(filepath.Join(home, ".pgpass"))
		add(filepath.Join(home, ".pg_service.conf"))
		add(filepath.Join(home, ".config", "attune"))
	}
	if a.Config.Database.URL == "" {
		if opts, err := a.embeddedOptions(); err == nil {
			add(opts.DataDir)
			add(opts.SocketDir)
			add(embeddedpg.RecordedSocketDir(opts.DataDir))
		}
	}
	return out
}
