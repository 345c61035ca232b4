package sensors

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/Masterminds/semver/v3"
	"go.yaml.in/yaml/v3"

	"github.com/attune-automation/attunectl/pkg/manifest"
	"github.com/attune-automation/attunectl/pkg/placement"
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
// sensors[0].placement.tolerations[1].effect.
type Problem struct {
	Path string `json:"path"`
	Msg  string `json:"message"`
	Line int    `json:"line,omitempty"`
}

func (p Problem) String() string {
	s := p.Msg
	if p.Path != "" {
		s = p.Path + ": " + s
	}
	if p.Line > 0 {
		s += fmt.Sprintf(" (line %d)", p.Line)
	}
	return s
}

// ValidationError lists every problem of a manifest; nothing is written
// when a manifest has one. The CLI maps it to exit status 2.
type ValidationError struct{ Problems []Problem }

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid sensor manifest: %d problem", len(e.Problems))
	if len(e.Problems) != 1 {
		b.WriteString("s")
	}
	for _, p := range e.Problems {
		b.WriteString("\n  " + p.String())
	}
	return b.String()
}

// ParseManifestFile is ParseManifest for the content of a named file: a
// file whose name ends in .json is held to JSON's grammar first (see
// manifest.CheckJSON).
func ParseManifestFile(name string, data []byte) ([]Sensor, error) {
	if msg := manifest.CheckJSON(name, data); msg != "" {
		return nil, &ValidationError{[]Problem{{Msg: msg}}}
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
	if len(data) > MaxManifestSize {
		return nil, &ValidationError{[]Problem{{Msg: "manifest is larger than 1 MiB: split it into several files"}}}
	}
	if !utf8.Valid(data) {
		return nil, &ValidationError{[]Problem{{Msg: "manifest is not valid UTF-8"}}}
	}
	d := &decoder{}
	var out []Sensor
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			d.add("", nil, "%v: fix the YAML/JSON syntax", err)
			break
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		if root.Kind == yaml.AliasNode {
			d.add("", root, "aliases are not supported: write the sensors out")
			continue
		}
		switch {
		case root.ShortTag() == "!!null":
		case root.Kind == yaml.MappingNode:
			out = append(out, d.sensor(fmt.Sprintf("sensors[%d]", len(out)), root))
		case root.Kind == yaml.SequenceNode:
			for _, item := range root.Content {
				p := fmt.Sprintf("sensors[%d]", len(out))
				if item.Kind != yaml.MappingNode {
					d.add(p, item, "must be a sensor object (ref, runtime, entrypoint, ...), got %s", kind(item))
					out = append(out, Sensor{})
					continue
				}
				out = append(out, d.sensor(p, item))
			}
		default:
			d.add("", root, "a manifest holds a sensor object or a list of them, got %s", kind(root))
		}
	}
	if len(out) == 0 && len(d.problems) == 0 {
		d.add("", nil, "no sensors found: the file must hold a sensor object or a list of them")
	}
	seen := map[string]int{}
	for i, s := range out {
		if s.Ref == "" {
			continue
		}
		if j, dup := seen[s.Ref]; dup {
			d.add(fmt.Sprintf("sensors[%d].ref", i), nil, "duplicate ref %q (also sensors[%d])", s.Ref, j)
		}
		seen[s.Ref] = i
	}
	if len(d.problems) > 0 {
		return out, &ValidationError{SortProblems(d.problems)}
	}
	return out, nil
}

// SortProblems orders problems as a reader meets them: those of the whole
// file first, then by sensor (sensors[i]), then by line; it sorts ps in
// place and returns it.
func SortProblems(ps []Problem) []Problem {
	sensorIndex := func(p Problem) int {
		var i int
		if _, err := fmt.Sscanf(p.Path, "sensors[%d]", &i); err != nil {
			return -1
		}
		return i
	}
	sort.SliceStable(ps, func(i, j int) bool {
		si, sj := sensorIndex(ps[i]), sensorIndex(ps[j])
		if si != sj {
			return si < sj
		}
		li, lj := ps[i].Line, ps[j].Line
		if li == 0 || lj == 0 {
			return li != 0 && lj == 0
		}
		return li < lj
	})
	return ps
}

type decoder struct{ problems []Problem }

func (d *decoder) add(path string, n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.problems = append(d.problems, Problem{Path: path, Msg: fmt.Sprintf(format, args...), Line: line})
}

func kind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "an object"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.ShortTag() {
	case "!!str":
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return fmt.Sprintf("the string %q", v)
	case "!!null":
		return "null"
	case "!!bool":
		return n.Value
	}
	return "the value " + n.Value
}

// fields walks a mapping, refusing non-string, duplicate and unknown keys.
func (d *decoder) fields(path string, n *yaml.Node, known []string, fn func(key, kp string, v *yaml.Node)) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			d.add(path, k, "keys must be strings, got %s", kind(k))
			continue
		}
		kp := path + "." + k.Value
		if path == "" {
			kp = k.Value
		}
		if seen[k.Value] {
			d.add(kp, k, "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		if v.Kind == yaml.AliasNode {
			d.add(kp, v, "aliases are not supported: write the value out")
			continue
		}
		if !contains(known, k.Value) {
			d.add(kp, k, "unknown key %q: known keys are %s", k.Value, strings.Join(known, ", "))
			continue
		}
		fn(k.Value, kp, v)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var (
	sensorKeys     = []string{"ref", "label", "description", "runtime", "runtime_version", "entrypoint", "enabled", "config", "triggers", "placement"}
	triggerKeys    = []string{"ref", "label", "config"}
	placementKeys  = []string{"selector", "tolerations"}
	tolerationKeys = []string{"key", "operator", "value", "effect"}
)

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func (d *decoder) str(p string, n *yaml.Node) string {
	if isNull(n) {
		return ""
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		d.add(p, n, "must be a string (quote it if it looks like a number or boolean), got %s", kind(n))
		return ""
	}
	return n.Value
}

func (d *decoder) object(p string, n *yaml.Node) map[string]any {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.add(p, n, "must be an object, got %s", kind(n))
		return nil
	}
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		d.add(p, n, "must be an object with string keys: %v", err)
		return nil
	}
	return m
}

func (d *decoder) sensor(p string, n *yaml.Node) Sensor {
	var s Sensor
	d.fields(p, n, sensorKeys, func(key, kp string, v *yaml.Node) {
		switch key {
		case "ref":
			s.Ref = d.str(kp, v)
			if s.Ref != "" && !refRE.MatchString(s.Ref) {
				d.add(kp, v, "%q is not a sensor ref: write pack.name in lower case (letters, digits, _ and -), such as acme.disk_watch", s.Ref)
			}
		case "label":
			s.Label = d.str(kp, v)
		case "description":
			s.Description = d.str(kp, v)
		case "runtime":
			s.Runtime = d.str(kp, v)
			if s.Runtime != "" && !runtimeRefRE.MatchString(s.Runtime) {
				d.add(kp, v, "%q is not a runtime ref: write it as listed by `attunectl runtime list`, such as core.sensor.python", s.Runtime)
			}
		case "runtime_version":
			s.RuntimeVersion = d.str(kp, v)
			if s.RuntimeVersion != "" {
				if _, err := semver.NewConstraint(s.RuntimeVersion); err != nil {
					d.add(kp, v, "%q is not a semver constraint (%v): write it like \">=3.12\", \">=3.12, <4\" or \"~18.0\"", s.RuntimeVersion, err)
				}
			}
		case "entrypoint":
			s.Entrypoint = d.str(kp, v)
		case "enabled":
			if isNull(v) {
				return
			}
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" {
				d.add(kp, v, "must be true or false, got %s", kind(v))
				return
			}
			b := v.Value == "true" || v.Value == "True" || v.Value == "TRUE"
			s.Enabled = &b
		case "config":
			s.Config = d.object(kp, v)
		case "triggers":
			s.Triggers = d.triggers(kp, v)
		case "placement":
			s.Placement = d.placement(kp, v)
		}
	})
	required := map[string]string{"ref": s.Ref, "runtime": s.Runtime, "entrypoint": strings.TrimSpace(s.Entrypoint)}
	for _, k := range []string{"ref", "runtime", "entrypoint"} {
		if required[k] == "" && !d.lastPathIs(p+"."+k) {
			d.add(p+"."+k, n, "is required")
		}
	}
	if s.Label == "" && s.Ref != "" {
		s.Label = s.Ref[strings.IndexByte(s.Ref, '.')+1:]
	}
	return s
}

// lastPathIs reports whether a problem was already recorded at path.
func (d *decoder) lastPathIs(path string) bool {
	for _, p := range d.problems {
		if p.Path == path {
			return true
		}
	}
	return false
}

func (d *decoder) triggers(p string, n *yaml.Node) []Trigger {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.add(p, n, "must be a list of trigger refs or objects, got %s", kind(n))
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
			d.fields(ip, item, triggerKeys, func(key, kp string, v *yaml.Node) {
				switch key {
				case "ref":
					t.Ref = d.str(kp, v)
				case "label":
					t.Label = d.str(kp, v)
				case "config":
					t.Config = d.object(kp, v)
				}
			})
			ip += ".ref"
		default:
			d.add(ip, item, "must be a trigger ref or an object (ref, label, config), got %s", kind(item))
			continue
		}
		switch {
		case t.Ref == "":
			d.add(ip, item, "is required")
		case !refRE.MatchString(t.Ref):
			d.add(ip, item, "%q is not a trigger ref: write pack.name in lower case", t.Ref)
		case seen[t.Ref]:
			d.add(ip, item, "duplicate trigger %q", t.Ref)
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
	if isNull(n) {
		return pl
	}
	if n.Kind != yaml.MappingNode {
		d.add(p, n, "must be an object (selector, tolerations), got %s", kind(n))
		return pl
	}
	d.fields(p, n, placementKeys, func(key, kp string, v *yaml.Node) {
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
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.add(p, n, "must be an object of labels, such as {zone: eu-1}, got %s", kind(n))
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			d.add(p, k, "label keys must be strings, got %s", kind(k))
			continue
		}
		kp := p + "." + k.Value
		if !labelKeyRE.MatchString(k.Value) || len(k.Value) > 253 {
			d.add(kp, k, "%q is not a label key: letters, digits, -, _ and ., optionally with a prefix/", k.Value)
			continue
		}
		if _, dup := out[k.Value]; dup {
			d.add(kp, k, "duplicate label %q", k.Value)
			continue
		}
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
			d.add(kp, v, "label values must be strings (quote numbers and booleans), got %s", kind(v))
			continue
		}
		if strings.TrimSpace(v.Value) == "" {
			d.add(kp, v, "label values must not be empty")
			continue
		}
		out[k.Value] = v.Value
	}
	return out
}

func (d *decoder) tolerations(p string, n *yaml.Node) []placement.Toleration {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.add(p, n, "must be a list of tolerations, got %s", kind(n))
		return nil
	}
	var out []placement.Toleration
	for i, item := range n.Content {
		ip := fmt.Sprintf("%s[%d]", p, i)
		if item.Kind != yaml.MappingNode {
			d.add(ip, item, "must be a toleration object (key, operator, value, effect), got %s", kind(item))
			continue
		}
		var t placement.Toleration
		d.fields(ip, item, tolerationKeys, func(key, kp string, v *yaml.Node) {
			val := d.str(kp, v)
			switch key {
			case "key":
				t.Key = val
				if val != "" && !labelKeyRE.MatchString(val) {
					d.add(kp, v, "%q is not a taint key", val)
				}
			case "operator":
				switch strings.ToLower(val) {
				case "", placement.OperatorEqual, placement.OperatorExists:
					t.Operator = strings.ToLower(val)
				default:
					d.add(kp, v, "unknown operator %q: use equal or exists", val)
				}
			case "value":
				t.Value = val
			case "effect":
				e := placement.NormalizeEffect(val)
				if val != "" && e != placement.EffectNoSchedule && e != placement.EffectPreferNoSchedule {
					d.add(kp, v, "unknown effect %q: use no_schedule or prefer_no_schedule", val)
				}
				if val != "" {
					t.Effect = e
				}
			}
		})
		if t.Key == "" {
			d.add(ip+".key", item, "is required")
		}
		if t.Operator == placement.OperatorExists && t.Value != "" {
			d.add(ip+".value", item, "must be empty with operator exists")
		}
		if t.Operator != placement.OperatorExists && t.Value == "" && t.Key != "" {
			d.add(ip+".value", item, "is required with operator equal (or use operator: exists)")
		}
		out = append(out, t)
	}
	return out
}
