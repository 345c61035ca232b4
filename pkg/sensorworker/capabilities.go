package sensorworker

import (
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/attune-automation/attunectl/pkg/detect"
	"github.com/attune-automation/attunectl/pkg/workers"
)

// BuildCapabilities is what a sensor worker advertises for a detection
// result: the three registration keys (runtimes, max_concurrent_sensors,
// sensor_version), then the versions detected per runtime, the heartbeat
// interval (so staleness is judged per worker) and where the runtimes came
// from. Keys of sensor.capabilities other than runtimes are passed through
// as given (the capabilities map); they never replace a key above.
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
	// Labels and taints, as Attune's sensor workers advertise them, for the
	// selectors and tolerations of sensors (pkg/placement reads them).
	if len(cfg.Sensors.Labels) > 0 || len(cfg.Sensors.Taints) > 0 {
		caps.Extra = map[string]json.RawMessage{}
		if len(cfg.Sensors.Labels) > 0 {
			caps.Extra["labels"], _ = json.Marshal(cfg.Sensors.Labels)
		}
		if len(cfg.Sensors.Taints) > 0 {
			caps.Extra["taints"], _ = json.Marshal(cfg.Sensors.Taints)
		}
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

// KeepLastGood merges a new detection with the last good one: a runtime
// whose check failed transiently this time (the host ran out of file
// descriptors, memory or processes, or the detection deadline came first:
// RuntimeResult.Transient) keeps the outcome it had in last, so a passing
// shortage on the host does not withdraw it from the worker row. Every
// other runtime takes its new outcome. kept lists the runtimes carried
// over (with the new, transient outcome, for logging). Results from the
// environment or the config run nothing and are returned unchanged.
func KeepLastGood(last, next detect.Result) (merged detect.Result, kept []detect.RuntimeResult) {
	if next.Source != detect.SourceDatabase || len(last.Runtimes) == 0 {
		return next, nil
	}
	prev := map[string]detect.RuntimeResult{}
	for _, rr := range last.Runtimes {
		prev[rr.Ref] = rr
	}
	merged = next
	merged.Runtimes = make([]detect.RuntimeResult, len(next.Runtimes))
	merged.Versions = maps.Clone(next.Versions)
	if merged.Versions == nil {
		merged.Versions = map[string]string{}
	}
	names := append([]string{}, next.Available...)
	for i, rr := range next.Runtimes {
		merged.Runtimes[i] = rr
		old, ok := prev[rr.Ref]
		if rr.Available || !rr.Transient || !ok {
			continue
		}
		kept = append(kept, rr)
		merged.Runtimes[i] = old
		if old.Available {
			name := strings.ToLower(strings.TrimSpace(old.Name))
			names = append(names, name)
			if v, ok := last.Versions[name]; ok {
				if _, dup := merged.Versions[name]; !dup {
					merged.Versions[name] = v
				}
			}
		}
	}
	merged.Available = detect.Normalize(names)
	return merged, kept
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
