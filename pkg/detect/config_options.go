package detect

import "github.com/attune-automation/attunectl/pkg/config"

// ConfigOptions are the engine's options from the sensor section of the
// configuration: the one source of them for `sensor run` and `runtime
// verify`, so that the promise that both run the same detection holds.
// environ is the environment of the invocation, which the scrubbed
// environment of each command is built from.
func ConfigOptions(s config.Sensor, environ []string) Options {
	return Options{
		Timeout:         s.Verification.Timeout.D(),
		MaxOutput:       s.Verification.MaxOutputBytes,
		PassthroughEnv:  s.PassthroughEnv,
		AllowedBinaries: s.Verification.AllowedBinaries,
		Environ:         func() []string { return environ },
	}
}
