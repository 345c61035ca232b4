package sensors

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/Masterminds/semver/v3"
	"go.yaml.in/yaml/v3"

	"github.com/attune-automation/attunectl/pkg/manifest"
	"github.com/attune-automation/attunectl/pkg/placement"
	"github.com/attune-automation/attunectl/pkg/supervise"
)

// MaxManifestSize is the largest manifest accepted (1 MiB).
const MaxManifestSize = 1 << 20

var (
	// refRE is Attune's pack.name (sensor_ref_format), lower case.
	refRE = regexp.MustCompile(`^[a-z0-9_-]+\.[a-z0-9_-]+$`)
	// runtimeRefRE is a runtime ref: dotted, lower case.
	runtimeRefRE = regexp.MustCompile(`^[a-z0-9_-]+(\.[a-z0-9_-]+)+$`)
	// labelKeyRE is a label or taint key: a Kubernetes-style qualified name.
	labelKeyRE = regexp.MustCompile(`^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
)

// Problem is one thing wrong with a manifest, at a path such as
// sensors[0].placement.tolerations[1].effect (pkg/manifest's).
type Problem = manifest.Problem

// ValidationError lists every problem of a manifest; nothing is written
// when a manifest has one. The CLI maps it to exit status 2.
type ValidationError = manifest.ValidationError

// what names a sensor manifest in messages.
const what = "sensor manifest"

// ParseManifestFile is ParseManifest for the content of a named file: a
// file whose name ends in .json is held to JSON's grammar first (see
// manifest.CheckJSON).
func ParseManifestFile(name string, data []byte) ([]Sensor, error) {
	if msg := manifest.CheckJSON(name, data); msg != "" {
		return nil, &ValidationError{What: what, Problems: []Problem{{Msg: msg}}}
	}
	return ParseManifest(data)
}

// ParseManifest parses sensor definitions strictly: a file holds one
// sensor object, a list of them, or several YAML documents (JSON is YAML).
// Unknown keys, wrong types, bad refs, bad semver constraints, bad
// selectors and tolerations, and duplicate refs are problems, each with its
// path; the error is always a *ValidationError, returned with the sensors
// as far as they could be read, so that a caller can add the problems only
// the database can tell (UnknownRuntimes) and report all of them at once.
// That runtimes exist is checked by Add against the database.
//
//	ref: acme.disk_watch            # pack.name, lower case
//	label: Disk watcher             # default: the name part of ref
//	description: …
//	runtime: core.sensor.python     # a runtime ref
//	runtime_version: ">=3.12"       # semver constraint (optional)
//	entrypoint: sensors/disk.py
//	enabled: true                   # default true
//	config: {threshold: 90}         # object
//	triggers:                       # refs, created when missing
//	  - acme.disk_full
//	  - {ref: acme.disk_ok, label: Disk OK, config: {}}
//	placement:
//	  selector: {zone: eu-1}        # labels the worker must have
//	  tolerations:                  # taints it may sit on
//	    - {key: gpu, operator: equal, value: "true", effect: no_schedule}
func ParseManifest(data []byte) ([]Sensor, error) {
	d := &decoder{manifest.NewDecoder(what)}
	var out []Sensor
	d.Documents(data, "sensors", "a sensor object", "ref, runtime, entrypoint, ...", func(p string, n *yaml.Node) {
		if n == nil {
			out = append(out, Sensor{})
			return
		}
		out = append(out, d.sensor(p, n))
	})
	if len(out) == 0 && len(d.Problems) == 0 {
		d.Add("", nil, "no sensors found: the file must hold a sensor object or a list of them")
	}
	seen := map[string]int{}
	for i, s := range out {
		if s.Ref == "" {
			continue
		}
		if j, dup := seen[s.Ref]; dup {
			d.Add(fmt.Sprintf("sensors[%d].ref", i), nil, "duplicate ref %q (also sensors[%d])", s.Ref, j)
		}
		seen[s.Ref] = i
	}
	return out, d.Err()
}

// decoder turns yaml nodes into Sensors with the shared strict decoder.
type decoder struct{ *manifest.Decoder }

var (
	sensorKeys     = []string{"ref", "label", "description", "runtime", "runtime_version", "entrypoint", "enabled", "config", "triggers", "placement"}
	triggerKeys    = []string{"ref", "label", "config"}
	placementKeys  = []string{"selector", "tolerations"}
	tolerationKeys = []string{"key", "operator", "value", "effect"}
)

func (d *decoder) sensor(p string, n *yaml.Node) Sensor {
	var s Sensor
	d.Fields(p, n, sensorKeys, func(key, kp string, v *yaml.Node) {
		switch key {
		case "ref":
			s.Ref = d.String(kp, v)
			if s.Ref != "" && !refRE.MatchString(s.Ref) {
				d.Add(kp, v, "%q is not a sensor ref: write pack.name in lower case (letters, digits, _ and -), such as acme.disk_watch", s.Ref)
			}
		case "label":
			s.Label = d.String(kp, v)
		case "description":
			s.Description = d.String(kp, v)
		case "runtime":
			s.Runtime = d.String(kp, v)
			if s.Runtime != "" && !runtimeRefRE.MatchString(s.Runtime) {
				d.Add(kp, v, "%q is not a runtime ref: write it as listed by `attunectl runtime list`, such as core.sensor.python", s.Runtime)
			}
		case "runtime_version":
			s.RuntimeVersion = d.String(kp, v)
			if s.RuntimeVersion != "" {
				if _, err := semver.NewConstraint(s.RuntimeVersion); err != nil {
					d.Add(kp, v, "%q is not a semver constraint (%v): write it like \">=3.12\", \">=3.12, <4\" or \"~18.0\"", s.RuntimeVersion, err)
				}
			}
		case "entrypoint":
			s.Entrypoint = d.String(kp, v)
		case "enabled":
			if manifest.IsNull(v) {
				return
			}
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" {
				d.Add(kp, v, "must be true or false, got %s", manifest.KindName(v))
				return
			}
			b := v.Value == "true" || v.Value == "True" || v.Value == "TRUE"
			s.Enabled = &b
		case "config":
			s.Config = d.Object(kp, v)
		case "triggers":
			s.Triggers = d.triggers(kp, v)
		case "placement":
			s.Placement = d.placement(kp, v)
		}
	})
	required := map[string]string{"ref": s.Ref, "runtime": s.Runtime, "entrypoint": strings.TrimSpace(s.Entrypoint)}
	for _, k := range []string{"ref", "runtime", "entrypoint"} {
		if required[k] == "" && !d.Bad[p+"."+k] {
			d.Add(p+"."+k, n, "is required")
		}
	}
	if s.Label == "" && s.Ref != "" {
		s.Label = s.Ref[strings.IndexByte(s.Ref, '.')+1:]
	}
	// A built-in timer's entrypoint and config are checked as the worker
	// will read them, bounds included: a timer that would spin a core of
	// every worker is refused here, not found there.
	if s.Runtime == supervise.BuiltinRuntimeRef && s.Entrypoint != "" && !d.Bad[p+".config"] {
		if _, err := supervise.ParseBuiltin(s.Entrypoint, s.Config); err != nil {
			d.Add(p+".config", n, "%v", err)
		}
	}
	return s
}

func (d *decoder) triggers(p string, n *yaml.Node) []Trigger {
	if manifest.IsNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.Add(p, n, "must be a list of trigger refs or objects, got %s", manifest.KindName(n))
		return nil
	}
	var out []Trigger
	seen := map[string]bool{}
	for i, item := range n.Content {
		ip := fmt.Sprintf("%s[%d]", p, i)
		var t Trigger
		switch {
		case item.Kind == yaml.ScalarNode && item.ShortTag() == "!!str":
			t.Ref = item.Value
		case item.Kind == yaml.MappingNode:
			d.Fields(ip, item, triggerKeys, func(key, kp string, v *yaml.Node) {
				switch key {
				case "ref":
					t.Ref = d.String(kp, v)
				case "label":
					t.Label = d.String(kp, v)
				case "config":
					t.Config = d.Object(kp, v)
				}
			})
			ip += ".ref"
		default:
			d.Add(ip, item, "must be a trigger ref or an object (ref, label, config), got %s", manifest.KindName(item))
			continue
		}
		switch {
		case t.Ref == "":
			d.Add(ip, item, "is required")
		case !refRE.MatchString(t.Ref):
			d.Add(ip, item, "%q is not a trigger ref: write pack.name in lower case", t.Ref)
		case seen[t.Ref]:
			d.Add(ip, item, "duplicate trigger %q", t.Ref)
		}
		seen[t.Ref] = true
		if t.Label == "" && strings.Contains(t.Ref, ".") {
			t.Label = t.Ref[strings.IndexByte(t.Ref, '.')+1:]
		}
		out = append(out, t)
	}
	return out
}

func (d *decoder) placement(p string, n *yaml.Node) Placement {
	var pl Placement
	if manifest.IsNull(n) {
		return pl
	}
	if n.Kind != yaml.MappingNode {
		d.Add(p, n, "must be an object (selector, tolerations), got %s", manifest.KindName(n))
		return pl
	}
	d.Fields(p, n, placementKeys, func(key, kp string, v *yaml.Node) {
		switch key {
		case "selector":
			pl.Selector = d.selector(kp, v)
		case "tolerations":
			pl.Tolerations = d.tolerations(kp, v)
		}
	})
	return pl
}

func (d *decoder) selector(p string, n *yaml.Node) map[string]string {
	if manifest.IsNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.Add(p, n, "must be an object of labels, such as {zone: eu-1}, got %s", manifest.KindName(n))
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			d.Add(p, k, "label keys must be strings, got %s", manifest.KindName(k))
			continue
		}
		kp := p + "." + k.Value
		if !labelKeyRE.MatchString(k.Value) || len(k.Value) > 253 {
			d.Add(kp, k, "%q is not a label key: letters, digits, -, _ and ., optionally with a prefix/", k.Value)
			continue
		}
		if _, dup := out[k.Value]; dup {
			d.Add(kp, k, "duplicate label %q", k.Value)
			continue
		}
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
			d.Add(kp, v, "label values must be strings (quote numbers and booleans), got %s", manifest.KindName(v))
			continue
		}
		if strings.TrimSpace(v.Value) == "" {
			d.Add(kp, v, "label values must not be empty")
			continue
		}
		out[k.Value] = v.Value
	}
	return out
}

func (d *decoder) tolerations(p string, n *yaml.Node) []placement.Toleration {
	if manifest.IsNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.Add(p, n, "must be a list of tolerations, got %s", manifest.KindName(n))
		return nil
	}
	var out []placement.Toleration
	for i, item := range n.Content {
		ip := fmt.Sprintf("%s[%d]", p, i)
		if item.Kind != yaml.MappingNode {
			d.Add(ip, item, "must be a toleration object (key, operator, value, effect), got %s", manifest.KindName(item))
			continue
		}
		var t placement.Toleration
		d.Fields(ip, item, tolerationKeys, func(key, kp string, v *yaml.Node) {
			val := d.String(kp, v)
			switch key {
			case "key":
				t.Key = val
				if val != "" && !labelKeyRE.MatchString(val) {
					d.Add(kp, v, "%q is not a taint key", val)
				}
			case "operator":
				switch strings.ToLower(val) {
				case "", placement.OperatorEqual, placement.OperatorExists:
					t.Operator = strings.ToLower(val)
				default:
					d.Add(kp, v, "unknown operator %q: use equal or exists", val)
				}
			case "value":
				t.Value = val
			case "effect":
				e := placement.NormalizeEffect(val)
				if val != "" && e != placement.EffectNoSchedule && e != placement.EffectPreferNoSchedule {
					d.Add(kp, v, "unknown effect %q: use no_schedule or prefer_no_schedule", val)
				}
				if val != "" {
					t.Effect = e
				}
			}
		})
		if t.Key == "" {
			d.Add(ip+".key", item, "is required")
		}
		if t.Operator == placement.OperatorExists && t.Value != "" {
			d.Add(ip+".value", item, "must be empty with operator exists")
		}
		if t.Operator != placement.OperatorExists && t.Value == "" && t.Key != "" {
			d.Add(ip+".value", item, "is required with operator equal (or use operator: exists)")
		}
		out = append(out, t)
	}
	return out
}
