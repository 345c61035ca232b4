// Package placement decides which sensor worker owns which sensor, and keeps
// that true in the shared database: eligibility, claims, lease renewal,
// release, the fence every write on behalf of a sensor carries, balancing,
// cordon and drain, and the ownership ledger. It is pure SQL and Go: it
// starts no processes (pkg/supervise runs what placement hands out).
//
// The tables and the lease protocol are Attune's (sensor_workload,
// sensor_workload_assignment), so attunectl workers and an Attune sensor
// service sharing one database never both own a sensor: a claim locks the
// assignment row and takes it only when it is unowned, its lease has
// expired by the database clock (clock_timestamp()), or it is already held
// by this worker; a claim starts a process, so it bumps the generation; a
// renewal or release succeeds only while (worker, instance, generation)
// still match and the lease has not expired.
package placement

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/attune-automation/attunectl/pkg/workers"
)

// Taint effects, as Attune spells them in capabilities.taints.
const (
	EffectNoSchedule       = "no_schedule"
	EffectPreferNoSchedule = "prefer_no_schedule"
)

// Toleration operators.
const (
	OperatorEqual  = "equal"
	OperatorExists = "exists"
)

// Taint is one entry of a worker's capabilities.taints. Only no_schedule
// taints keep sensors away; prefer_no_schedule is advisory.
type Taint struct {
	Key    string `json:"key" yaml:"key"`
	Value  string `json:"value,omitempty" yaml:"value,omitempty"`
	Effect string `json:"effect,omitempty" yaml:"effect,omitempty"`
}

func (t Taint) String() string {
	s := t.Key
	if t.Value != "" {
		s += "=" + t.Value
	}
	return s + ":" + NormalizeEffect(t.Effect)
}

// Toleration lets a sensor onto workers with a matching taint
// (sensor.worker_tolerations, Attune's shape).
type Toleration struct {
	Key      string `json:"key" yaml:"key"`
	Operator string `json:"operator,omitempty" yaml:"operator,omitempty"`
	Value    string `json:"value,omitempty" yaml:"value,omitempty"`
	Effect   string `json:"effect,omitempty" yaml:"effect,omitempty"`
}

// NormalizeEffect maps the spellings operators type (NoSchedule,
// no-schedule) to Attune's (no_schedule); empty means no_schedule.
func NormalizeEffect(e string) string {
	switch strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(e)) {
	case "", "noschedule":
		return EffectNoSchedule
	case "prefernoschedule":
		return EffectPreferNoSchedule
	}
	return e
}

// Tolerates reports whether tol lets a sensor onto a worker with taint t.
func (tol Toleration) Tolerates(t Taint) bool {
	if tol.Key != t.Key {
		return false
	}
	if tol.Effect != "" && NormalizeEffect(tol.Effect) != NormalizeEffect(t.Effect) {
		return false
	}
	if strings.EqualFold(tol.Operator, OperatorExists) {
		return true
	}
	return tol.Value == t.Value
}

// WorkerInfo is what eligibility needs to know about one worker.
type WorkerInfo struct {
	ID       int64
	Name     string
	Role     string
	Live     bool // by workers.StaleSQL, the predicate of `worker list`
	Cordoned bool
	// Runtimes are the names the worker advertises (capabilities.runtimes).
	Runtimes []string
	// Versions maps an advertised runtime name to its detected version
	// (capabilities.runtime_versions).
	Versions map[string]string
	Labels   map[string]string
	Taints   []Taint
	// Capacity is max_concurrent_sensors (0: no limit known, Attune's default 10 applies).
	Capacity int
	// Held is the number of live leases the worker holds.
	Held int
}

// DefaultCapacity is Attune's max_concurrent_sensors when a worker advertises none.
const DefaultCapacity = 10

// FreeCapacity is how many more sensors w may take.
func (w WorkerInfo) FreeCapacity() int {
	c := w.Capacity
	if c <= 0 {
		c = DefaultCapacity
	}
	return c - w.Held
}

// WorkerInfoFromCapabilities fills the capability-derived fields of a
// WorkerInfo from a worker.capabilities document, leniently (a key another
// tool wrote with the wrong type counts as absent).
func WorkerInfoFromCapabilities(raw []byte) WorkerInfo {
	var w WorkerInfo
	var caps workers.Capabilities
	if len(raw) == 0 || json.Unmarshal(raw, &caps) != nil {
		return w
	}
	w.Runtimes = caps.Runtimes
	w.Versions = caps.RuntimeVersions
	w.Capacity = caps.MaxConcurrentSensors
	if v, ok := caps.Extra["labels"]; ok {
		_ = json.Unmarshal(v, &w.Labels)
	}
	if v, ok := caps.Extra["taints"]; ok {
		_ = json.Unmarshal(v, &w.Taints)
	}
	return w
}

// Requirement is what a sensor asks of its worker.
type Requirement struct {
	// RuntimeName is the runtime's name (sensor workers advertise
	// lower(name)); RuntimeAliases are its other names.
	RuntimeName    string
	RuntimeAliases []string
	// Constraint is a semver constraint such as ">=3.12" (empty: any).
	Constraint  string
	Selector    map[string]string
	Tolerations []Toleration
	// MoreTolerations are other toleration lists that apply too (on
	// Attune's schema the pack's and each rule's): a NoSchedule taint must
	// be tolerated by Tolerations and by every one of them.
	MoreTolerations [][]Toleration
	// MoreSelectors are other node selectors that apply too (on Attune's
	// schema the pack's and each rule's): a worker must have every label of
	// Selector and of each of them.
	MoreSelectors []map[string]string
}

// selectors are Selector and MoreSelectors merged, for messages.
func (r Requirement) selectors() map[string]string {
	out := map[string]string{}
	for _, m := range append([]map[string]string{r.Selector}, r.MoreSelectors...) {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// Reason says which rule a worker failed. The order is the order in which
// Eligible checks them.
type Reason int

// Reasons, in checking order.
const (
	ReasonOK Reason = iota
	ReasonNotSensor
	ReasonStale
	ReasonRuntime
	ReasonVersion
	ReasonSelector
	ReasonTaint
	ReasonCordoned
	ReasonFull
)

func (r Reason) String() string {
	return [...]string{"eligible", "not a sensor worker", "stale", "runtime", "version", "selector", "taint", "cordoned", "at capacity"}[r]
}

// runtimeNames are the names under which a worker may advertise the runtime.
func (r Requirement) runtimeNames() []string {
	names := []string{strings.ToLower(r.RuntimeName)}
	for _, a := range r.RuntimeAliases {
		names = append(names, strings.ToLower(a))
	}
	return names
}

// advertised returns the name under which w advertises r's runtime.
func (r Requirement) advertised(w WorkerInfo) (string, bool) {
	names := r.runtimeNames()
	for _, n := range w.Runtimes {
		if slices.Contains(names, strings.ToLower(n)) {
			return n, true
		}
	}
	return "", false
}

// versionOf returns the detected version w advertises for r's runtime.
func (r Requirement) versionOf(w WorkerInfo, advertised string) string {
	if v := w.Versions[advertised]; v != "" {
		return v
	}
	for _, n := range r.runtimeNames() {
		for k, v := range w.Versions {
			if strings.ToLower(k) == n && v != "" {
				return v
			}
		}
	}
	return ""
}

// Satisfies reports whether version satisfies constraint (both as written
// by people: "3.11.7", "v20.1.0", ">=3.12, <4").
func Satisfies(constraint, version string) bool {
	if strings.TrimSpace(constraint) == "" {
		return true
	}
	c, err := semver.NewConstraint(constraint)
	if err != nil {
		return false
	}
	v, err := semver.NewVersion(strings.TrimSpace(version))
	if err != nil {
		return false
	}
	return c.Check(v)
}

// Eligible reports whether w may take a sensor with requirement r, and if
// not, the first rule it fails: role sensor (or hybrid), live, runtime by
// name or alias, a detected version satisfying the constraint, the
// selector's labels, a toleration for each no_schedule taint, not
// cordoned, free capacity.
func Eligible(w WorkerInfo, r Requirement) Reason {
	if w.Role != "" && w.Role != workers.RoleSensor && w.Role != workers.RoleHybrid {
		return ReasonNotSensor
	}
	if !w.Live {
		return ReasonStale
	}
	adv, ok := r.advertised(w)
	if !ok {
		return ReasonRuntime
	}
	if r.Constraint != "" && !Satisfies(r.Constraint, r.versionOf(w, adv)) {
		return ReasonVersion
	}
	for _, sel := range append([]map[string]string{r.Selector}, r.MoreSelectors...) {
		for k, v := range sel {
			if got, ok := w.Labels[k]; !ok || got != v {
				return ReasonSelector
			}
		}
	}
	for _, t := range w.Taints {
		if NormalizeEffect(t.Effect) != EffectNoSchedule {
			continue
		}
		tolerated := func(tols []Toleration) bool {
			return slices.ContainsFunc(tols, func(tol Toleration) bool { return tol.Tolerates(t) })
		}
		if !tolerated(r.Tolerations) || slices.ContainsFunc(r.MoreTolerations, func(tols []Toleration) bool { return !tolerated(tols) }) {
			return ReasonTaint
		}
	}
	if w.Cordoned {
		return ReasonCordoned
	}
	if w.FreeCapacity() <= 0 {
		return ReasonFull
	}
	return ReasonOK
}

// Explain says why no worker of ws may take a sensor with requirement r:
// the rule that the workers that came furthest failed, in words such as
// "no live worker advertises python satisfying >=3.12". It returns "" when
// some worker is eligible.
func Explain(ws []WorkerInfo, r Requirement) string {
	best := Reason(-1)
	var stuck []WorkerInfo
	for _, w := range ws {
		reason := Eligible(w, r)
		if reason == ReasonOK {
			return ""
		}
		if reason == ReasonNotSensor {
			continue
		}
		switch {
		case reason > best:
			best, stuck = reason, []WorkerInfo{w}
		case reason == best:
			stuck = append(stuck, w)
		}
	}
	rt := strings.ToLower(r.RuntimeName)
	withVersion := rt
	if r.Constraint != "" {
		withVersion += " satisfying " + r.Constraint
	}
	switch best {
	case -1, ReasonStale:
		return "no live sensor worker"
	case ReasonRuntime:
		return "no live worker advertises " + rt
	case ReasonVersion:
		return "no live worker advertises " + withVersion
	case ReasonSelector:
		return "no live worker with " + withVersion + " has the labels " + formatMap(r.selectors())
	case ReasonTaint:
		var taints []string
		for _, w := range stuck {
			for _, t := range w.Taints {
				if NormalizeEffect(t.Effect) == EffectNoSchedule && !slices.Contains(taints, t.String()) {
					taints = append(taints, t.String())
				}
			}
		}
		sort.Strings(taints)
		return "every live worker with " + withVersion + " has a taint the sensor does not tolerate (" + strings.Join(taints, ", ") + ")"
	case ReasonCordoned:
		return fmt.Sprintf("every live worker that fits is cordoned (%d)", len(stuck))
	case ReasonFull:
		return fmt.Sprintf("every live worker that fits is at capacity (%d, max_concurrent_sensors)", len(stuck))
	}
	return best.String()
}

func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}
