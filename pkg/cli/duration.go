package cli

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/attune-automation/attunectl/pkg/config"
)

// durationValue is a duration flag that also takes bare seconds, as
// Attune's configuration does: --older-than 300 is --older-than 5m.
type durationValue time.Duration

func (d *durationValue) Set(s string) error {
	v, err := config.ParseSeconds(s)
	if err != nil {
		return err
	}
	*d = durationValue(v)
	return nil
}

func (d *durationValue) String() string { return time.Duration(*d).String() }
func (d *durationValue) Type() string   { return "duration" }

// durationVar adds a duration flag that accepts seconds (300) or a Go
// duration (5m, 1m30s); every duration flag of attunectl is one.
func durationVar(fs *pflag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var((*durationValue)(p), name, usage)
	if value == 0 {
		fs.Lookup(name).DefValue = "0" // no "(default 0s)" in --help, as for DurationVar
	}
}
