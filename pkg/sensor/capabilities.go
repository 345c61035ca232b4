package sensor

import (
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/attune-automation/attunectl/pkg/detect"
	"github.com/attune-automation/attunectl/pkg/workers"
)

// BuildCapabilities is what a sensor worker advertises for a detection
// result: the seed's three keys (runtimes, max_concurrent_sensors,
// sensor_version), then the versions detected per runtime, the heartbeat
// interval (so staleness is judged per worker) and where the runtimes came
// from. Keys of sensor.capabilities other than runtimes are passed through
// as given (the seed's capabilities map); they never replace a key above.
// `sensor run --dry-run` prints exactly this.
func BuildCapabilities(cfg Config, res detect.Result) workers.Capabilities {
	caps := workers.Capabilities{
		Runtimes:             append([]string{}, res.Available...),
		MaxConcurrentSensors: cfg.MaxConcurrentSensors,
		SensorVersion:        cfg.Version,
		HeartbeatInterval:    cfg.HeartbeatInterval.Seconds(),
		DetectionSource:      string(res.Source),
	}
	if len(res.Versions) > 0 {
		caps.RuntimeVersions = maps.Clone(res.Versions)
	}
	for k, v := range cfg.ExtraCapabilities {
		if k == "runtimes" {
			continue
		}
		raw, err := json.Marshal(v)
		if err != nil {
			continue // config values come from YAML: always encodable
		}
		if caps.Extra == nil {
			caps.Extra = map[string]json.RawMessage{}
		}
		caps.Extra[k] = raw
	}
	return caps
}

// runtimeDiff returns the names in next that are not in prev (added) and
// those in prev that are not in next (removed).
func runtimeDiff(prev, next []string) (added, removed []string) {
	for _, n := range next {
		if !slices.Contains(prev, n) {
			added = append(added, n)
		}
	}
	for _, p := range prev {
		if !slices.Contains(next, p) {
			removed = append(removed, p)
		}
	}
	return added, removed
}

// LogDetection logs a detection result: its source and, for database
// detection, each runtime's outcome with the reason when it is unavailable.
func LogDetection(log *slog.Logger, res detect.Result) {
	for _, rt := range res.Runtimes {
		if rt.Available {
			log.Info("runtime available", "ref", rt.Ref, "name", rt.Name, "via", rt.Via, "version", rt.Version)
		} else {
			log.Info("runtime not available", "ref", rt.Ref, "name", rt.Name, "reason", rt.Reason)
		}
	}
	log.Info("runtimes detected", "source", string(res.Source), "runtimes", res.Available, "duration", res.Duration.Round(100*time.Microsecond).String())
}
