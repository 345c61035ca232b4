package sensors

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// exampleProgram is the example sensor `sensor add --example` installs: a
// Python program written to Attune's sensor contract, standard library only.
//
//go:embed example/hello.py
var exampleProgram []byte

// Example is the sensor `sensor add --example` adds: it runs the example
// program with the Python runtime and emits example.hello every two
// seconds. Entrypoint is set by InstallExample.
var Example = Sensor{
	Ref:         "example.hello",
	Label:       "Hello",
	Description: "attunectl's example sensor: an event every two seconds with the host's load",
	Runtime:     "core.sensor.python",
	Triggers:    []Trigger{{Ref: "example.hello", Label: "Hello", Config: map[string]any{"interval_seconds": 2}}},
}

// DefaultExampleDir is where InstallExample writes the program: as root
// /var/lib/attunectl/example (beside the embedded database's data, and
// readable by the unprivileged users sensors run as), otherwise
// $XDG_DATA_HOME/attunectl/example or ~/.local/share/attunectl/example.
func DefaultExampleDir() (string, error) {
	if os.Geteuid() == 0 {
		return "/var/lib/attunectl/example", nil
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "attunectl", "example"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding a directory for the example sensor: %w (give --example-dir)", err)
	}
	return filepath.Join(home, ".local", "share", "attunectl", "example"), nil
}

// InstallExample writes the example program to dir/hello.py (the
// directory 0755, the file 0644: readable by the user sensors run as, and
// writable only by its owner) and returns Example with that absolute
// entrypoint.
func InstallExample(dir string) (Sensor, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return Sensor{}, fmt.Errorf("installing the example sensor: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Sensor{}, fmt.Errorf("installing the example sensor: %w (give --example-dir a directory you can write)", err)
	}
	path := filepath.Join(dir, "hello.py")
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return Sensor{}, fmt.Errorf("installing the example sensor: %s exists and is not a regular file (remove it)", path)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Sensor{}, fmt.Errorf("installing the example sensor: %w", err)
	}
	if err := os.WriteFile(path, exampleProgram, 0o644); err != nil {
		return Sensor{}, fmt.Errorf("installing the example sensor: %w (give --example-dir a directory you can write)", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		return Sensor{}, fmt.Errorf("installing the example sensor: %w", err)
	}
	s := Example
	s.Entrypoint = path
	return s, nil
}
