package cli

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/attune-automation/attunectl/pkg/config"
	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/detect"
	"github.com/attune-automation/attunectl/pkg/output"
	"github.com/attune-automation/attunectl/pkg/placement"
	"github.com/attune-automation/attunectl/pkg/runtimes"
	"github.com/attune-automation/attunectl/pkg/sandbox"
	"github.com/attune-automation/attunectl/pkg/sensorworker"
	"github.com/attune-automation/attunectl/pkg/version"
)

// sensorRunOptions are `sensor run`'s own flags. --name, --host,
// --heartbeat-interval and --metrics-addr set configuration keys and are
// read from App.Config.
type sensorRunOptions struct {
	// Runtimes is --runtimes; RuntimesSet says it was given (it then
	// replaces ATTUNE_SENSOR_RUNTIMES).
	Runtimes        string
	RuntimesSet     bool
	Replace         bool
	DryRun          bool
	Once            bool
	WaitForDatabase time.Duration

	// Labels and Taints are --label key=value and --taint
	// key=value:Effect, added to sensor.labels and sensor.taints.
	Labels []string
	Taints []string

	// Storage for the flags that set configuration keys.
	name, host, heartbeat, metricsAddr string
}

func newSensorRunCmd(app *App) *cobra.Command {
	var opts sensorRunOptions
	run := &cobra.Command{
		Use:   "run",
		Short: "Run this host's sensor worker: register, take a share of the sensors, run them",
		Long: `Run the long-lived sensor worker of this host. It detects the runtimes
available here (ATTUNE_SENSOR_RUNTIMES or --runtimes, else
sensor.capabilities.runtimes, else every sensor runtime of the database,
verified on this host), registers the worker row (worker_role sensor,
status active, with --label and --taint in its capabilities), heartbeats
every sensor.heartbeat_interval, re-verifies the runtimes every
sensor.reverify_interval (0: never) and updates the row when they change.

It then takes its share of the sensors it can run (runtime, version,
labels, taints, capacity; leases renewed each interval) and runs them:
built-in timers inside the worker, other sensors as processes in the
sandbox, as sensor.run_as (required as root), restarted with backoff and
quarantined after sensor.quarantine_after failures. Their events are posted
to a loopback endpoint and written only while this worker holds the sensor.
sensor.run_sensors: false only registers and heartbeats.

SIGINT or SIGTERM stops it: the sensors are stopped and released, the
worker is deregistered (status inactive) within sensor.shutdown_timeout and
the exit status is 0; a second signal exits at once.

Database trouble never stops a registered worker: failures are logged and
retried, and a row pruned by an operator is registered again. The name is
never taken from a live worker of another instance (or from an action
worker): registration fails and says who holds it. --replace takes it over
from a live sensor worker; that worker stops at its next heartbeat.

Exit status: 0 after a signal or --once, 1 when registration fails or the
row was taken over, 2 for invalid flags or configuration.`,
		Example: `  # Register with the detected runtimes; Ctrl-C deregisters.
  attunectl sensor run

  # Show what would be registered, touch nothing.
  attunectl sensor run --dry-run

  # A named worker with fixed runtimes, metrics on :9464.
  attunectl sensor run --name sensor-web1 --runtimes python,shell --metrics-addr :9464

  # As root: sensors and verification commands run as nobody; a labelled,
  # tainted worker only gets sensors that select and tolerate it.
  attunectl sensor run --run-as nobody --label zone=eu --taint gpu=true:NoSchedule

  # Smoke test: register, heartbeat once, deregister.
  attunectl sensor run --once --wait-for-database 1m`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.RuntimesSet = cmd.Flags().Changed("runtimes")
			return runSensor(cmd.Context(), app, opts)
		},
	}
	fs := run.Flags()
	fs.StringVar(&opts.name, "name", "", "worker `name`, unique in the worker table (sensor.worker_name; default sensor-<hostname>)")
	fs.StringVar(&opts.host, "host", "", "`host` the worker advertises (sensor.host; default the hostname)")
	fs.StringVar(&opts.heartbeat, "heartbeat-interval", "", "time between heartbeats: `seconds` (30) or a duration (30s) (sensor.heartbeat_interval; default 30)")
	fs.StringVar(&opts.metricsAddr, "metrics-addr", "", "serve Prometheus /metrics, /healthz and /readyz on this `address`, e.g. :9464 (sensor.metrics_addr; default off)")
	fs.StringVar(&opts.Runtimes, "runtimes", "", "comma-separated `runtimes` to advertise instead of detecting them (like ATTUNE_SENSOR_RUNTIMES, which it overrides)")
	fs.StringArrayVar(&opts.Labels, "label", nil, "advertise a `key=value` label for sensors' placement selectors (repeatable; adds to sensor.labels)")
	fs.StringArrayVar(&opts.Taints, "taint", nil, "keep away sensors that do not tolerate this `key=value:NoSchedule` taint (repeatable; adds to sensor.taints; PreferNoSchedule is advisory)")
	fs.BoolVar(&opts.Replace, "replace", false, "take the name over from a live sensor worker of another instance (never from an action worker)")
	fs.BoolVar(&opts.DryRun, "dry-run", false, "print the capabilities that would be registered, as JSON, and exit without writing anything")
	fs.BoolVar(&opts.Once, "once", false, "register, heartbeat once, deregister and exit (a smoke test)")
	durationVar(fs, &opts.WaitForDatabase, "wait-for-database", 0, "at startup, retry an unreachable database this long (e.g. 2m) before giving up; 0 tries once")
	bindConfig(fs, "name", "sensor.worker_name")
	bindConfig(fs, "host", "sensor.host")
	bindConfig(fs, "heartbeat-interval", "sensor.heartbeat_interval")
	bindConfig(fs, "metrics-addr", "sensor.metrics_addr")
	addRunAsFlag(fs)
	markExclusive(run, "dry-run", "once")
	return offerFormats(run, output.Formats{output.Table, output.JSON})
}

// Validate checks what configuration validation does not.
func (o sensorRunOptions) Validate() error {
	if o.WaitForDatabase < 0 {
		return usageErrorf("--wait-for-database must be 0 or more, got %s", o.WaitForDatabase)
	}
	for _, l := range o.Labels {
		if k, _, ok := strings.Cut(l, "="); !ok || k == "" || strings.ContainsFunc(l, unicode.IsControl) {
			return usageErrorf("--label %q: give key=value, e.g. --label zone=eu", l)
		}
	}
	for _, t := range o.Taints {
		if _, err := config.ParseTaint(t); err != nil {
			return usageErrorf("--taint: %v", err)
		}
	}
	return nil
}

func runSensor(ctx context.Context, app *App, opts sensorRunOptions) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	if o := app.Global.Output; !opts.DryRun && o != "" && o != string(output.Table) {
		return usageErrorf("sensor run prints no output format: -o %s applies to --dry-run only (JSON)", o)
	}
	cfg, err := sensorConfig(app, opts)
	if err != nil {
		return err
	}
	if err := checkListenAddr(cfg.MetricsAddr); err != nil {
		return err
	}
	d := newSensorDetector(app, opts)
	// Verification commands (also of a dry run) and sensor processes are
	// programs named by database rows: they run in the sandbox, never as
	// the embedded server's user.
	if probe, err := d.options.Sandbox(); err == nil {
		if err := app.checkRunAsIsNotTheServer(probe); err != nil {
			return err
		}
	}
	if opts.DryRun {
		return runSensorDryRun(ctx, app, cfg, d)
	}
	var sb *sandbox.Sandbox
	if cfg.Sensors.Enabled {
		// As sensor.run_as; a run_as that cannot be used is refused here.
		if sb, err = d.options.Sandbox(); err != nil {
			return usageErrorf("sensor run: %v (or set sensor.run_sensors: false to only register)", err)
		}
		iso := sb.Isolation()
		app.Log.Info("sensor processes run isolated", "box", iso.Box, "user_namespace", iso.UserNamespace, "cgroups", iso.Cgroups, "user", sb.User().String())
		for _, off := range iso.Off {
			app.Log.Warn("a protection of sensor processes is off on this host", "protection", off)
		}
		if sb.Dynamic() {
			if sb.Isolation().Box {
				app.Log.Info("sensor.run_as is not set: each command from the database runs as an unprivileged uid of its own",
					"uids", fmt.Sprintf("%d-%d", sandbox.DynamicUIDFirst, sandbox.DynamicUIDLast), "hint", "set sensor.run_as (--run-as) to choose the user")
			} else {
				app.Log.Info("sensor.run_as is not set: commands from the database run as an unprivileged uid of their own",
					"user", sb.User().String(), "home", sb.User().Home, "hint", "set sensor.run_as (--run-as) to choose the user")
			}
		}
	}
	svc, err := sensorworker.New(cfg, sensorworker.Options{
		Connect: func(ctx context.Context) (*database.DB, error) { return app.connect(ctx, connectOptions{}) },
		Detect: func(ctx context.Context, db *database.DB) (detect.Result, error) {
			return d.detect(ctx, func(ctx context.Context) ([]runtimes.Runtime, error) { return runtimes.SensorRuntimes(ctx, db) })
		},
		Logger:         app.Log,
		Sandbox:        sb,
		Environ:        app.Environ,
		PassthroughEnv: app.Config.Sensor.PassthroughEnv,
		Allow:          d.options.Allows,
	})
	if err != nil {
		return usageError(err)
	}
	if opts.Once {
		return svc.Once(ctx)
	}
	return svc.Run(ctx)
}

// sensorConfig resolves the service's configuration: the sensor section
// with the flags applied, and the defaults that depend on the machine.
func sensorConfig(app *App, opts sensorRunOptions) (sensorworker.Config, error) {
	s := app.Config.Sensor
	name, host := s.WorkerName, s.Host
	if name == "" || host == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return sensorworker.Config{}, usageErrorf("finding the hostname for the default worker name and host: %v (set --name and --host, or sensor.worker_name and sensor.host)", err)
		}
		if name == "" {
			name = "sensor-" + h
		}
		if host == "" {
			host = h
		}
	}
	return sensorworker.Config{
		Name:                 name,
		Host:                 host,
		HeartbeatInterval:    s.HeartbeatInterval.D(),
		ReverifyInterval:     s.ReverifyInterval.D(),
		ShutdownTimeout:      s.ShutdownTimeout.D(),
		WaitForDatabase:      opts.WaitForDatabase,
		Replace:              opts.Replace,
		MetricsAddr:          s.MetricsAddr,
		MaxConcurrentSensors: s.MaxConcurrentSensors,
		ExtraCapabilities:    s.Capabilities,
		Version:              version.String(),
		Sensors:              sensorsConfig(app, opts),
	}, nil
}

// sensorsConfig is how the worker places and runs sensors: the sensor
// section with --label and --taint added (already validated).
func sensorsConfig(app *App, opts sensorRunOptions) sensorworker.SensorsConfig {
	s := app.Config.Sensor
	labels := maps.Clone(s.Labels)
	for _, l := range opts.Labels {
		if labels == nil {
			labels = map[string]string{}
		}
		k, v, _ := strings.Cut(l, "=")
		labels[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	var taints []placement.Taint
	for _, t := range append(slices.Clone(s.Taints), opts.Taints...) {
		if p, err := config.ParseTaint(t); err == nil {
			taints = append(taints, placement.Taint{Key: p.Key, Value: p.Value, Effect: p.Effect})
		}
	}
	return sensorworker.SensorsConfig{
		Enabled:         s.RunSensors && !opts.Once,
		Labels:          labels,
		Taints:          taints,
		PacksDir:        s.PacksDir,
		StopTimeout:     s.StopTimeout.D(),
		QuarantineAfter: s.QuarantineAfter,
		Lease:           s.Lease.D(),
		Budget:          s.HandoffBudget,
		EventsListen:    s.Events.Listen,
		EventRate:       s.Events.RateLimit,
		EventsAsync:     s.Events.Commit == "async",
		LogLevel:        app.Config.Log.Level,
	}
}

// sensorDetector runs the detection engine with the sources and limits of
// this invocation: the engine `runtime verify` runs, with the same
// precedence (--runtimes or ATTUNE_SENSOR_RUNTIMES, then
// sensor.capabilities.runtimes, then the database).
type sensorDetector struct {
	env     string
	config  []string
	options detect.Options
}

func newSensorDetector(app *App, opts sensorRunOptions) sensorDetector {
	s := app.Config.Sensor
	d := sensorDetector{env: app.Getenv(detect.EnvVar), options: app.detectOptions()}
	if opts.RuntimesSet {
		d.env = opts.Runtimes
	}
	d.config, _ = s.CapabilityRuntimes()
	return d
}

// detect runs detection; load is called only when the database decides.
func (d sensorDetector) detect(ctx context.Context, load func(context.Context) ([]runtimes.Runtime, error)) (detect.Result, error) {
	return detect.Detect(ctx, detect.Input{EnvRuntimes: d.env, ConfigRuntimes: d.config, Load: load}, d.options)
}

// runSensorDryRun detects and prints the capabilities as JSON on stdout. It
// connects only when detection needs the runtime table, and never writes a
// worker row. A configured database is not migrated either (an unmigrated
// one is an error that says so); the embedded default is migrated on first
// use, as by every command.
func runSensorDryRun(ctx context.Context, app *App, cfg sensorworker.Config, d sensorDetector) error {
	if o := app.Global.Output; o != "" && o != string(output.JSON) {
		return usageErrorf("sensor run --dry-run prints JSON only: drop -o %s", o)
	}
	var db *database.DB
	defer func() {
		if db != nil {
			db.Close()
		}
	}()
	res, err := d.detect(ctx, func(ctx context.Context) ([]runtimes.Runtime, error) {
		var err error
		embedded := app.Config.Database.URL == ""
		if db, err = app.connect(ctx, connectOptions{skipSchemaCheck: !embedded}); err != nil {
			return nil, err
		}
		if err := db.RequireSchema(); err != nil {
			return nil, err
		}
		return runtimes.SensorRuntimes(ctx, db)
	})
	if err != nil {
		return err
	}
	sensorworker.LogDetection(app.Log, res)
	app.Log.Info("dry run: nothing was written", "name", cfg.Name, "host", cfg.Host)
	return output.WriteJSON(app.Out, sensorworker.BuildCapabilities(cfg, res))
}

// checkListenAddr refuses a --metrics-addr (sensor.metrics_addr) that can
// never be listened on, before anything starts: bad input, exit 2. An
// address that is merely in use fails later, when the server starts.
func checkListenAddr(addr string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = net.LookupPort("tcp", port)
	}
	if err != nil {
		return usageErrorf("--metrics-addr %q: %v: give host:port or :port, e.g. :9464 (sensor.metrics_addr)", addr, err)
	}
	return nil
}
