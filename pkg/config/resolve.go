package config

import (
	"errors"
	"fmt"
	"os"
)

// ResolveOptions are the facts of the machine that Resolved fills the
// remaining defaults from.
type ResolveOptions struct {
	// Hostname returns the host's name; nil uses os.Hostname.
	Hostname func() (string, error)
	// DefaultDataDir returns the embedded server's default data directory
	// (embeddedpg.DefaultDataDir); nil leaves embedded.data_dir as it is.
	DefaultDataDir func() (string, error)
}

// Resolved returns a copy of c with the defaults that depend on the machine
// filled in, as the commands will use them: sensor.worker_name
// (sensor-<hostname>), sensor.host (the hostname) and embedded.data_dir.
// Values set by the file, the environment or flags are kept. When a fact
// cannot be found, the key stays empty and the error says which and how to
// set it; the copy is still returned.
//
// database.url is copied as it is: pass it through database.Redact before
// printing it.
func (c *Config) Resolved(o ResolveOptions) (*Config, error) {
	r := *c
	if o.Hostname == nil {
		o.Hostname = os.Hostname
	}
	var errs []error
	if r.Sensor.WorkerName == "" || r.Sensor.Host == "" {
		h, err := o.Hostname()
		if err == nil && h == "" {
			err = errors.New("the hostname is empty")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("finding the hostname for the default sensor.worker_name and sensor.host: %w (set them in the config file or with --name and --host)", err))
		} else {
			if r.Sensor.WorkerName == "" {
				r.Sensor.WorkerName = "sensor-" + h
			}
			if r.Sensor.Host == "" {
				r.Sensor.Host = h
			}
		}
	}
	if r.Embedded.DataDir == "" && o.DefaultDataDir != nil {
		d, err := o.DefaultDataDir()
		if err != nil {
			errs = append(errs, fmt.Errorf("finding the default embedded.data_dir: %w (set embedded.data_dir or ATTUNE__EMBEDDED__DATA_DIR)", err))
		} else {
			r.Embedded.DataDir = d
		}
	}
	return &r, errors.Join(errs...)
}
