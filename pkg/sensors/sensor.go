// Package sensors owns sensor definitions: the model, strict manifests
// (`sensor add -f`), the repository (add with --update semantics, enable,
// disable) and the listing with each sensor's derived state (`sensor
// list`). The rows are Attune's sensor, trigger and sensor_workload tables,
// so a definition written here is one an Attune sensor service reads, and
// one Attune wrote lists here.
package sensors

import (
	"github.com/attune-automation/attunectl/pkg/placement"
)

// DefaultWorkloadKey is the workload every sensor gets, as in Attune.
const DefaultWorkloadKey = "default"

// Sensor is one sensor definition, as a manifest names it.
type Sensor struct {
	Ref         string `json:"ref" yaml:"ref"`
	Label       string `json:"label,omitempty" yaml:"label,omitempty"`
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
	// Runtime is a runtime ref (core.sensor.python).
	Runtime string `json:"runtime" yaml:"runtime"`
	// RuntimeVersion is a semver constraint (">=3.12"), Attune's
	// runtime_version_constraint.
	RuntimeVersion string         `json:"runtime_version,omitempty" yaml:"runtime_version,omitempty"`
	Entrypoint     string         `json:"entrypoint" yaml:"entrypoint"`
	Enabled        *bool          `json:"enabled,omitempty" yaml:"enabled,omitempty"`
	Config         map[string]any `json:"config,omitempty" yaml:"config,omitempty"`
	Triggers       []Trigger      `json:"triggers,omitempty" yaml:"triggers,omitempty"`
	Placement      Placement      `json:"placement,omitzero" yaml:"placement,omitempty"`
}

// IsEnabled is Enabled with its default, true.
func (s Sensor) IsEnabled() bool { return s.Enabled == nil || *s.Enabled }

// PackRef is the part of the ref before the dot.
func (s Sensor) PackRef() string {
	for i := 0; i < len(s.Ref); i++ {
		if s.Ref[i] == '.' {
			return s.Ref[:i]
		}
	}
	return ""
}

// Trigger is a trigger the sensor emits; created when missing.
type Trigger struct {
	Ref    string         `json:"ref" yaml:"ref"`
	Label  string         `json:"label,omitempty" yaml:"label,omitempty"`
	Config map[string]any `json:"config,omitempty" yaml:"config,omitempty"`
}

// Placement is what a sensor asks of its worker beyond the runtime:
// labels it must have (Attune's worker_selector) and taints it may sit on
// (worker_tolerations).
type Placement struct {
	Selector    map[string]string      `json:"selector,omitempty" yaml:"selector,omitempty"`
	Tolerations []placement.Toleration `json:"tolerations,omitempty" yaml:"tolerations,omitempty"`
}

// States a sensor can be in, derived like a worker's.
const (
	StateDisabled = "disabled"
	// StateIdle: on Attune's schema, enabled but no enabled rule targets
	// its triggers; Attune (and attunectl) run a sensor only for rules.
	StateIdle          = "idle"
	StateUnschedulable = "unschedulable"
	StateUnassigned    = "unassigned"
	StateAssigned      = "assigned"
	// The running states the supervisor records on the workload.
	StateStarting    = "starting"
	StateRunning     = "running"
	StateBackoff     = "backoff"
	StateQuarantined = "quarantined"
)

// States lists every state, for --state validation.
var States = []string{StateDisabled, StateIdle, StateUnschedulable, StateUnassigned, StateAssigned, StateStarting, StateRunning, StateBackoff, StateQuarantined}
