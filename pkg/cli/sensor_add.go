package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/manifest"
	"github.com/attune-automation/attunectl/pkg/output"
	"github.com/attune-automation/attunectl/pkg/sensors"
)

// sensorAddOptions are the options of `sensor add`.
type sensorAddOptions struct {
	// File is a manifest path, or "-" for stdin.
	File string
	// Example installs the example sensor program into ExampleDir and adds
	// sensors.Example.
	Example    bool
	ExampleDir string
	Update     bool
	Format     output.Format
}

// Validate checks what can be checked before reading the manifest.
func (o *sensorAddOptions) Validate() error {
	if o.File == "" && !o.Example {
		return usageErrorf("nothing to add: give a manifest with -f FILE, or -f - for stdin, or --example for the example sensor (see `attunectl sensor add --help`)")
	}
	if o.ExampleDir != "" && !o.Example {
		return usageErrorf("--example-dir is where --example writes its program: give --example too")
	}
	return nil
}

func newSensorAddCmd(app *App) *cobra.Command {
	o := &sensorAddOptions{}
	cmd := &cobra.Command{
		Use:   "add (-f FILE | --example) [--update]",
		Short: "Add sensor definitions and their triggers from a manifest",
		Long: `Add every sensor of a manifest (YAML or JSON; one sensor object, a list of
them, or several YAML documents; -f - reads stdin):

  - ref: acme.disk_watch            # pack.name, lower case
    label: Disk watcher             # default: the name part of ref
    runtime: core.sensor.python     # a runtime ref (attunectl runtime list)
    runtime_version: ">=3.10"       # semver constraint on the worker's version (optional)
    entrypoint: disk.py             # absolute, or <packs_dir>/<pack>/sensors/<entrypoint>
    enabled: true                   # default true
    config: {threshold: 90}         # an object, given to the sensor
    triggers:                       # created when missing
      - acme.disk_full
      - {ref: acme.disk_ok, label: Disk OK, config: {quiet: true}}
    placement:
      selector: {zone: eu-1}        # labels the worker must have
      tolerations:                  # taints it may sit on
        - {key: gpu, operator: exists}

Everything is validated before anything is written: unknown keys, bad refs,
unknown runtime refs, bad semver constraints, selectors and tolerations are
reported with the path of the field (sensors[0].placement.selector.zone) and
the exit status is 2 with nothing written. The sensors of a file are written
in one transaction: all of them or none.

A ref that exists already is an error (exit 2) unless --update is given;
--update replaces the definition (not a patch) and keeps the sensor's id,
workload and owner, so a running sensor is not moved.

Output (-o): table (default: what was created or updated, and which triggers
were created), json and yaml ({created, updated, triggers_created}), name
(the sensor refs).`,
		Example: `  attunectl sensor add --example
  attunectl sensor add -f sensors.yaml
  attunectl sensor add -f sensors.yaml --update
  cat sensors.json | attunectl sensor add -f -`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			f, err := app.outputFormat(cmd)
			if err != nil {
				return err
			}
			o.Format = f
			if o.Example {
				return runSensorAddExample(cmd.Context(), app, *o)
			}
			// Nothing is written unless the whole input is valid; a manifest
			// with problems is still held against the database's runtimes,
			// so that every problem is reported in one pass.
			ss, err := readSensorManifest(app, o.File)
			var ve *sensors.ValidationError
			if errors.As(err, &ve) {
				return sensorManifestError(o.File, withUnknownRuntimes(cmd.Context(), app, ss, ve))
			}
			if err != nil {
				return err
			}
			return withDB(cmd.Context(), app, func(db *database.DB) error {
				return runSensorAdd(cmd.Context(), app, db, ss, *o)
			})
		},
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	offerFormats(cmd, output.Formats{output.Table, output.JSON, output.YAML, output.Name})
	fs := cmd.Flags()
	fs.StringVarP(&o.File, "filename", "f", "", "manifest to add (YAML or JSON; - reads stdin)")
	fs.BoolVar(&o.Update, "update", false, "replace sensors whose ref exists already")
	fs.BoolVar(&o.Example, "example", false, "add the example sensor example.hello (Python 3, an event every 2 s) and write its program")
	fs.StringVar(&o.ExampleDir, "example-dir", "", "where --example writes its program (default /var/lib/attunectl/example as root, else ~/.local/share/attunectl/example)")
	markExclusive(cmd, "filename", "example")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
	return cmd
}

// runSensorAddExample writes the example program and adds the example
// sensor with it as the entrypoint.
func runSensorAddExample(ctx context.Context, app *App, o sensorAddOptions) error {
	dir := o.ExampleDir
	if dir == "" {
		d, err := sensors.DefaultExampleDir()
		if err != nil {
			return usageError(err)
		}
		dir = d
	}
	s, err := sensors.InstallExample(dir)
	if err != nil {
		return err
	}
	if o.Format == output.Table {
		fmt.Fprintf(app.Out, "example program written to %s\n", output.Escape(s.Entrypoint))
	}
	return withDB(ctx, app, func(db *database.DB) error {
		return runSensorAdd(ctx, app, db, []sensors.Sensor{s}, o)
	})
}

// withUnknownRuntimes adds to ve the runtimes of ss that the database
// lacks. When the database cannot be reached, ve is reported as it is.
func withUnknownRuntimes(ctx context.Context, app *App, ss []sensors.Sensor, ve *sensors.ValidationError) error {
	if len(ss) == 0 {
		return ve
	}
	db, err := app.connect(ctx, connectOptions{})
	if err != nil {
		return ve
	}
	defer db.Close()
	more, err := sensors.UnknownRuntimes(ctx, db, ss)
	if err != nil || len(more) == 0 {
		return ve
	}
	return &sensors.ValidationError{What: ve.What, Problems: manifest.SortProblems(append(slices.Clone(ve.Problems), more...))}
}

// sensorAddReport is what `sensor add -o json|yaml` prints.
type sensorAddReport struct {
	Created         []string `json:"created"`
	Updated         []string `json:"updated"`
	TriggersCreated []string `json:"triggers_created"`
}

// runSensorAdd writes the valid sensors ss in one transaction and says what
// it wrote.
func runSensorAdd(ctx context.Context, app *App, db *database.DB, ss []sensors.Sensor, o sensorAddOptions) error {
	res, err := sensors.Add(ctx, db, ss, o.Update)
	var ve *sensors.ValidationError
	switch {
	case errors.As(err, &ve), errors.Is(err, sensors.ErrExists), errors.Is(err, sensors.ErrManaged):
		return usageError(fmt.Errorf("%w; nothing was written", err))
	case err != nil:
		return fmt.Errorf("%w; nothing was written", database.RedactError(err))
	}
	rep := sensorAddReport{Created: orEmpty(res.Created), Updated: orEmpty(res.Updated), TriggersCreated: orEmpty(res.TriggersCreated)}
	switch o.Format {
	case output.JSON, output.YAML:
		return output.Write(app.Out, o.Format, rep)
	case output.Name:
		for _, s := range ss {
			fmt.Fprintln(app.Out, output.Escape(s.Ref))
		}
		return nil
	}
	for _, ref := range rep.Created {
		fmt.Fprintf(app.Out, "sensor %s created\n", output.Escape(ref))
	}
	for _, ref := range rep.Updated {
		fmt.Fprintf(app.Out, "sensor %s updated\n", output.Escape(ref))
	}
	for _, ref := range rep.TriggersCreated {
		fmt.Fprintf(app.Out, "trigger %s created\n", output.Escape(ref))
	}
	return nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
