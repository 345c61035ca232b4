package detect

import (
	"github.com/attune-automation/attunectl/pkg/config"
	"github.com/attune-automation/attunectl/pkg/sandbox"
)

// ConfigOptions are the engine's options from the sensor section of the
// configuration: the one source of them for `sensor run` and `runtime
// verify`, so that the promise that both run the same detection holds.
// environ is the environment of the invocation, which the scrubbed
// environment of each command is built from. The sandbox settings (whom
// commands run as, their limits) come from here too, and so do the ones of
// sensor processes.
func ConfigOptions(s config.Sensor, environ []string) Options {
	return Options{
		Timeout:         s.Verification.Timeout.D(),
		MaxOutput:       s.Verification.MaxOutputBytes,
		PassthroughEnv:  s.PassthroughEnv,
		AllowedBinaries: s.Verification.AllowedBinaries,
		PinnedCommands:  s.Verification.PinnedCommands,
		Deadline:        s.Verification.Deadline.D(),
		RunAs:           s.RunAs,
		Path:            s.Path,
		Limits: sandbox.Limits{
			OpenFiles:   uint64(s.Limits.OpenFiles),
			Processes:   uint64(s.Limits.Processes),
			MemoryBytes: uint64(s.Limits.MemoryBytes),
			CPUSeconds:  uint64(s.Limits.CPUSeconds),
		},
		Environ: func() []string { return environ },
	}
}
