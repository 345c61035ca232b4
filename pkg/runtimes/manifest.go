package runtimes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"

	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/attune-automation/attunectl/pkg/manifest"
)

// ParseManifestFile is ParseManifest for the content of a named file: a
// file whose name ends in .json is held to JSON's grammar first (see
// manifest.CheckJSON).
func ParseManifestFile(name string, data []byte) ([]Runtime, error) {
	if msg := manifest.CheckJSON(name, data); msg != "" {
		return nil, manifestError(Problem{Msg: msg})
	}
	return ParseManifest(data)
}

// ParseManifest parses and validates a manifest strictly: unknown keys,
// wrong types and every rule of Validate are problems, all of them reported
// with their path (and line). The error is always a *ValidationError.
// Explicit nulls and empty lists mean "not set". YAML anchors and aliases
// are followed (merge keys `<<` are not supported), within a bound that
// stops alias bombs. A file without any runtime is an error.
//
// A manifest is what `runtime add -f` reads and `runtime list -o yaml|json`
// writes. A file holds one runtime object, a list of them, or several YAML
// documents each holding an object or a list (JSON is YAML, so JSON files
// parse the same way). Runtimes are numbered across the whole file:
// runtimes[0] is the first runtime whatever form the file has.
//
//	ref: core.sensor.python          # required, lower case, dotted
//	name: Python                     # required
//	type: sensor                     # sensor (default) or action
//	pack_ref: core                   # optional
//	description: Python 3 sensors    # optional
//	aliases: [python3]               # optional
//	verification:                    # optional; without it the runtime is never available
//	  always_available: false
//	  check_required: true           # Attune's spelling: false = available without checking
//	  commands:                      # required unless always available
//	    - binary: python3            # bare name on PATH or absolute path
//	      args: [--version]
//	      exit_code: 0               # default 0
//	      pattern: 'Python 3\.'      # Go RE2, searched in stdout then stderr
//	      priority: 1                # ascending; missing sorts last
//	      optional: false            # only quiets logging
//
// A missing type means sensor: attunectl manages sensor workers, and a
// manifest written for it is about sensor runtimes unless it says otherwise.
func ParseManifest(data []byte) ([]Runtime, error) {
	if len(data) > MaxManifestSize {
		return nil, manifestError(Problem{Msg: fmt.Sprintf("manifest is larger than the %d byte (1 MiB) limit: split it into several files", MaxManifestSize)})
	}
	if !utf8.Valid(data) {
		return nil, manifestError(Problem{Msg: "manifest is not valid UTF-8: save it as UTF-8 text"})
	}
	d := &nodeDecoder{lines: map[string]int{}, bad: map[string]bool{}, budget: maxNodeVisits}
	var rts []Runtime
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// yaml's messages carry the line: "yaml: line 3: mapping values are not allowed in this context".
			d.problems = append(d.problems, Problem{Msg: fmt.Sprintf("%v%s: fix the YAML/JSON syntax", err, jsonHint(data))})
			break
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := resolve(doc.Content[0])
		switch {
		case root == nil:
			d.problems = append(d.problems, Problem{Msg: "invalid alias", Line: doc.Line})
		case root.ShortTag() == "!!null":
			// An empty document (a stray ---) holds nothing.
		case root.Kind == yaml.MappingNode:
			rts = append(rts, d.runtime(fmt.Sprintf("runtimes[%d]", len(rts)), root))
		case root.Kind == yaml.SequenceNode:
			for _, item := range root.Content {
				if !d.spend(1) {
					break
				}
				p := fmt.Sprintf("runtimes[%d]", len(rts))
				item = resolve(item)
				if item == nil || item.Kind != yaml.MappingNode {
					d.typeProblem(p, item, "must be a runtime object (ref, name, verification, ...)")
					d.bad[p+".ref"], d.bad[p+".name"] = true, true
					rts = append(rts, Runtime{})
					continue
				}
				rts = append(rts, d.runtime(p, item))
			}
		default:
			d.problems = append(d.problems, Problem{Msg: fmt.Sprintf("a manifest holds a runtime object or a list of them, got %s", kindName(root)), Line: root.Line})
		}
	}
	if len(rts) == 0 && len(d.problems) == 0 {
		d.problems = append(d.problems, Problem{Msg: "no runtimes found: the file must hold a runtime object, a list of them, or several YAML documents"})
	}
	if d.exhausted || (len(d.problems) > 0 && len(rts) == 0) {
		return nil, &ValidationError{Problems: d.problems, what: "manifest"}
	}
	v := validator{lines: d.lines, skip: d.bad, what: "manifest", problems: d.problems}
	v.runtimes(rts)
	if err := v.err(); err != nil {
		ve := err.(*ValidationError)
		sortProblems(ve.Problems)
		return nil, ve
	}
	return rts, nil
}

// jsonHint adds encoding/json's exact position when a file that looks like
// JSON fails to parse: yaml's messages for flow syntax sometimes lack the
// line or give the line where the object started.
func jsonHint(data []byte) string {
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) == 0 || (trimmed[0] != '{' && trimmed[0] != '[') {
		return ""
	}
	var v any
	err := json.Unmarshal(data, &v)
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return ""
	}
	off := int(se.Offset)
	if off > len(data) {
		off = len(data)
	}
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := off - bytes.LastIndexByte(data[:off], '\n')
	return fmt.Sprintf(" (as JSON: line %d, column %d: %v)", line, col, err)
}

func manifestError(p Problem) error {
	return &ValidationError{Problems: []Problem{p}, what: "manifest"}
}

// sortProblems orders problems by runtime, then by line, keeping
// document-level problems (syntax errors) first.
func sortProblems(ps []Problem) {
	key := func(p Problem) (int, int) {
		group, line := 1, p.Line
		if p.Path == "" {
			group = 0
		}
		if line == 0 {
			line = math.MaxInt
		}
		return group, line
	}
	sort.SliceStable(ps, func(i, j int) bool {
		gi, li := key(ps[i])
		gj, lj := key(ps[j])
		if gi != gj {
			return gi < gj
		}
		return li < lj
	})
}

// Marshal writes runtimes as a manifest ("yaml" or "json"). The output is
// always a list (even of one) and is valid input for ParseManifest, so
// `runtime list -o yaml` in one database can be `runtime add -f` in another.
func Marshal(rts []Runtime, format string) ([]byte, error) {
	if rts == nil {
		rts = []Runtime{}
	}
	switch format {
	case "yaml", "yml":
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(rts); err != nil {
			return nil, fmt.Errorf("encoding runtimes as YAML: %w", err)
		}
		if err := enc.Close(); err != nil {
			return nil, fmt.Errorf("encoding runtimes as YAML: %w", err)
		}
		return buf.Bytes(), nil
	case "json":
		out, err := json.MarshalIndent(rts, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("encoding runtimes as JSON: %w", err)
		}
		return append(out, '\n'), nil
	default:
		return nil, fmt.Errorf("unknown manifest format %q: use yaml or json", format)
	}
}

// nodeDecoder turns yaml nodes into Runtimes, recording structural problems.
type nodeDecoder struct {
	problems []Problem
	lines    map[string]int
	bad      map[string]bool
	// budget bounds the number of nodes visited. Aliases are followed, so
	// without a bound a small file of nested aliases ("billion laughs")
	// would expand into an enormous number of runtimes, commands and args.
	budget    int
	exhausted bool
}

// maxNodeVisits is far above what a valid manifest of 1 MiB holds
// (a runtime is a dozen nodes; a command has at most MaxArgs args).
const maxNodeVisits = 1 << 18

// spend takes n visits from the budget; false once it is exhausted.
func (d *nodeDecoder) spend(n int) bool {
	d.budget -= n
	if d.budget >= 0 {
		return true
	}
	if !d.exhausted {
		d.exhausted = true
		d.problems = append(d.problems, Problem{Msg: "manifest expands to too much data through YAML aliases: write it without anchors (&) and aliases (*)"})
	}
	return false
}

func (d *nodeDecoder) add(path string, n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.problems = append(d.problems, Problem{Path: path, Msg: fmt.Sprintf(format, args...), Line: line})
	d.bad[path] = true
}

func (d *nodeDecoder) typeProblem(path string, n *yaml.Node, want string) {
	d.add(path, n, "%s, got %s", want, kindName(n))
}

// resolve follows aliases (depth-limited; yaml rejects cycles itself).
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i > 100 {
			return nil
		}
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "an object"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("the string %q", truncate(n.Value, 40))
		case "!!int":
			return "the integer " + truncate(n.Value, 40)
		case "!!float":
			return "the number " + truncate(n.Value, 40)
		case "!!bool":
			return n.Value
		case "!!null":
			return "null"
		}
		return fmt.Sprintf("%s %q", n.ShortTag(), truncate(n.Value, 40))
	}
	return "an unexpected node"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// fields walks a mapping: it rejects non-string and duplicate keys and
// unknown keys (with a suggestion), and calls fn for each known key.
func (d *nodeDecoder) fields(path string, n *yaml.Node, known []string, fn func(key string, kp string, v *yaml.Node)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !d.spend(1) {
			return
		}
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k == nil || v == nil {
			d.add(path, n.Content[i], "invalid alias")
			continue
		}
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			d.add(path+"."+k.Value, k, "unknown key %q: merge keys are not supported; write the keys out", k.Value)
			continue
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			d.add(path, k, "keys must be strings, got %s", kindName(k))
			continue
		}
		key := k.Value
		kp := path + "." + key
		if line, dup := seen[key]; dup {
			d.add(kp, k, "duplicate key %q (first at line %d)", key, line)
			continue
		}
		seen[key] = k.Line
		if !contains(known, key) {
			msg := fmt.Sprintf("unknown key %q", key)
			if s := suggest(key, known); s != "" {
				msg += fmt.Sprintf(": did you mean %q?", s)
			} else {
				msg += ": known keys are " + strings.Join(known, ", ")
			}
			d.add(kp, k, "%s", msg)
			continue
		}
		d.lines[kp] = v.Line
		fn(key, kp, v)
	}
}

var runtimeKeys = []string{"ref", "name", "type", "pack_ref", "description", "aliases", "verification"}
var verificationKeys = []string{"always_available", "check_required", "commands"}
var commandKeys = []string{"binary", "args", "exit_code", "pattern", "priority", "optional"}

func (d *nodeDecoder) runtime(p string, n *yaml.Node) Runtime {
	var r Runtime
	d.lines[p] = n.Line
	d.fields(p, n, runtimeKeys, func(key, kp string, v *yaml.Node) {
		switch key {
		case "ref":
			d.str(kp, v, &r.Ref)
		case "name":
			d.str(kp, v, &r.Name)
		case "type":
			d.str(kp, v, &r.Type)
		case "pack_ref":
			d.str(kp, v, &r.PackRef)
		case "description":
			d.str(kp, v, &r.Description)
		case "aliases":
			d.strList(kp, v, &r.Aliases)
		case "verification":
			r.Verification = d.verification(kp, v)
		}
	})
	// Mark missing required keys so they get a line: the object's own.
	for _, k := range []string{"ref", "name"} {
		if _, ok := d.lines[p+"."+k]; !ok {
			d.lines[p+"."+k] = n.Line
		}
	}
	if r.Type == "" && !d.bad[p+".type"] {
		r.Type = TypeSensor
	}
	return r
}

func (d *nodeDecoder) verification(p string, n *yaml.Node) *Verification {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.typeProblem(p, n, "must be an object (always_available, check_required, commands)")
		return nil
	}
	v := &Verification{}
	d.lines[p+".commands"] = n.Line
	d.fields(p, n, verificationKeys, func(key, kp string, val *yaml.Node) {
		switch key {
		case "always_available":
			d.boolean(kp, val, &v.AlwaysAvailable)
		case "check_required":
			var b bool
			if d.boolean(kp, val, &b) && !isNull(val) {
				v.CheckRequired = &b
			}
		case "commands":
			if isNull(val) {
				return
			}
			if val.Kind != yaml.SequenceNode {
				d.typeProblem(kp, val, "must be a list of commands")
				return
			}
			for i, item := range val.Content {
				if !d.spend(1) {
					return
				}
				cp := fmt.Sprintf("%s[%d]", kp, i)
				item = resolve(item)
				if item == nil || item.Kind != yaml.MappingNode {
					d.typeProblem(cp, item, "must be a command object (binary, args, ...)")
					v.Commands = append(v.Commands, Command{}) // keeps the indexes of later commands
					d.bad[cp+".binary"] = true
					continue
				}
				v.Commands = append(v.Commands, d.command(cp, item))
			}
		}
	})
	return v
}

func (d *nodeDecoder) command(p string, n *yaml.Node) Command {
	var c Command
	d.lines[p+".binary"] = n.Line
	d.fields(p, n, commandKeys, func(key, kp string, v *yaml.Node) {
		switch key {
		case "binary":
			d.str(kp, v, &c.Binary)
		case "args":
			d.strList(kp, v, &c.Args)
		case "exit_code":
			c.ExitCode = d.integer(kp, v)
		case "pattern":
			d.str(kp, v, &c.Pattern)
		case "priority":
			c.Priority = d.integer(kp, v)
		case "optional":
			d.boolean(kp, v, &c.Optional)
		}
	})
	return c
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// str accepts a string scalar; null leaves the field empty.
func (d *nodeDecoder) str(p string, n *yaml.Node, dst *string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		d.typeProblem(p, n, "must be a string (quote it if it looks like a number or boolean)")
		return
	}
	*dst = n.Value
}

func (d *nodeDecoder) strList(p string, n *yaml.Node, dst *[]string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.typeProblem(p, n, "must be a list of strings, such as [--version]")
		return
	}
	var out []string // an empty list is the same as none
	for i, item := range n.Content {
		if !d.spend(1) {
			return
		}
		ip := fmt.Sprintf("%s[%d]", p, i)
		item = resolve(item)
		if item == nil || item.Kind != yaml.ScalarNode || item.ShortTag() != "!!str" {
			d.typeProblem(ip, item, "must be a string (quote it if it looks like a number or boolean)")
			out = append(out, "")
			continue
		}
		d.lines[ip] = item.Line
		out = append(out, item.Value)
	}
	*dst = out
}

func (d *nodeDecoder) boolean(p string, n *yaml.Node, dst *bool) bool {
	if isNull(n) {
		return true
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		d.typeProblem(p, n, "must be true or false")
		return false
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		d.add(p, n, "must be true or false: %v", err)
		return false
	}
	*dst = b
	return true
}

func (d *nodeDecoder) integer(p string, n *yaml.Node) *int {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		d.typeProblem(p, n, "must be an integer")
		return nil
	}
	var i int64
	if err := n.Decode(&i); err != nil || i < math.MinInt32 || i > math.MaxInt32 {
		d.add(p, n, "%s is out of range", truncate(n.Value, 40))
		return nil
	}
	v := int(i)
	return &v
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggest returns the known key closest to key when it is a likely typo
// (edit distance at most 2), or "".
func suggest(key string, known []string) string { return manifest.Nearest(key, known, 2) }
