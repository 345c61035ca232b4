package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/attune-automation/attunectl/pkg/runtimes"
	"github.com/spf13/cobra"
)

func newRuntimeCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "runtime",
		Aliases: []string{"runtimes"},
		Short:   "Add, list, verify and remove runtimes and their verification metadata",
		Long: `A runtime (core.sensor.python, core.sensor.nodejs, …) says what a sensor
needs on a host, and its verification metadata says how a host finds out
whether it has it: "always available", or commands such as ` + "`python3 --version`" + `
whose exit code and output are checked. ` + "`attunectl sensor run`" + ` verifies the
sensor runtimes on its host and registers the available ones; ` + "`runtime verify`" + `
dry-runs exactly that detection.

Manifests (what ` + "`runtime add -f`" + ` reads and ` + "`runtime list -o yaml|json`" + ` writes)
hold one runtime object, a list of them, or several YAML documents:

  - ref: core.sensor.python        # lower case, dotted
    name: Python                   # detected name: lower(name)
    type: sensor                   # sensor (default) or action
    pack_ref: core
    description: Python 3 sensors
    aliases: [python3]
    verification:
      always_available: false      # or check_required: false
      commands:                    # tried by ascending priority; first success wins
        - binary: python3          # bare name on PATH or absolute path; never a shell
          args: [--version]
          exit_code: 0             # default 0
          pattern: 'Python 3\.'    # Go regular expression, stdout then stderr
          priority: 1`,
		Example: `  attunectl runtime list
  attunectl runtime add --ref acme.sensor.ruby --name Ruby --command 'ruby --version' --pattern '^ruby 3\.'
  attunectl runtime add -f runtimes.yaml
  attunectl runtime verify
  attunectl runtime remove acme.sensor.ruby`,
	}
	cmd.AddCommand(
		newRuntimeAddCmd(app),
		newRuntimeListCmd(app),
		newRuntimeVerifyCmd(app),
		newRuntimeRemoveCmd(app),
	)
	return cmd
}

// readManifestFile reads and validates a manifest; "-" is the App's stdin.
// Every error is a usage error (exit 2): the input is wrong.
func readManifestFile(app *App, path string) ([]runtimes.Runtime, error) {
	name := path
	if path == "-" {
		name = "stdin"
	}
	data, err := readManifestBytes(app, path, runtimes.MaxManifestSize)
	if err != nil {
		return nil, err
	}
	rts, err := runtimes.ParseManifestFile(path, data)
	if err != nil {
		return nil, usageError(fmt.Errorf("%s: %w", name, err))
	}
	return rts, nil
}

// readManifestBytes reads at most limit+1 bytes of a manifest file ("-" is
// the App's stdin): the parser refuses what is larger without reading it
// all. A file that cannot be read is bad input (exit 2).
func readManifestBytes(app *App, path string, limit int) ([]byte, error) {
	var r io.Reader = app.In
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, usageError(fmt.Errorf("reading manifest: %w: check the path given to -f", err))
		}
		defer f.Close()
		r = f
	}
	if r == nil {
		r = strings.NewReader("")
	}
	data, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, usageError(fmt.Errorf("reading manifest %s: %w", path, err))
	}
	return data, nil
}
