package runtimes

import (
	"bytes"
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/attune-automation/attunectl/pkg/manifest"
	"github.com/attune-automation/attunectl/pkg/output"
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
	d := &nodeDecoder{manifest.NewDecoder("manifest")}
	var rts []Runtime
	d.Documents(data, "runtimes", "a runtime object", "ref, name, verification, ...", func(p string, n *yaml.Node) {
		if n == nil {
			d.Bad[p+".ref"], d.Bad[p+".name"] = true, true
			rts = append(rts, Runtime{})
			return
		}
		rts = append(rts, d.runtime(p, n))
	})
	if len(rts) == 0 && len(d.Problems) == 0 {
		d.Problems = append(d.Problems, Problem{Msg: "no runtimes found: the file must hold a runtime object, a list of them, or several YAML documents"})
	}
	if d.Exhausted() || (len(d.Problems) > 0 && len(rts) == 0) {
		return nil, d.Err()
	}
	v := validator{lines: d.Lines, skip: d.Bad, what: "manifest", problems: d.Problems}
	v.runtimes(rts)
	if err := v.err(); err != nil {
		ve := err.(*ValidationError)
		manifest.SortProblems(ve.Problems)
		return nil, ve
	}
	return rts, nil
}

func manifestError(p Problem) error {
	return &ValidationError{Problems: []Problem{p}, What: "manifest"}
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
		// As every -o json of attunectl: C1 and bidi characters escaped.
		out, err := output.MarshalJSON(rts, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("encoding runtimes as JSON: %w", err)
		}
		return append(out, '\n'), nil
	default:
		return nil, fmt.Errorf("unknown manifest format %q: use yaml or json", format)
	}
}

// nodeDecoder turns yaml nodes into Runtimes with the shared strict
// decoder, recording every problem.
type nodeDecoder struct{ *manifest.Decoder }

var runtimeKeys = []string{"ref", "name", "type", "pack_ref", "description", "aliases", "verification"}
var verificationKeys = []string{"always_available", "check_required", "commands"}
var commandKeys = []string{"binary", "args", "exit_code", "pattern", "priority", "optional"}

func (d *nodeDecoder) runtime(p string, n *yaml.Node) Runtime {
	var r Runtime
	d.Lines[p] = n.Line
	d.Fields(p, n, runtimeKeys, func(key, kp string, v *yaml.Node) {
		switch key {
		case "ref":
			r.Ref = d.String(kp, v)
		case "name":
			r.Name = d.String(kp, v)
		case "type":
			r.Type = d.String(kp, v)
		case "pack_ref":
			r.PackRef = d.String(kp, v)
		case "description":
			r.Description = d.String(kp, v)
		case "aliases":
			r.Aliases = d.Strings(kp, v, "[python3]")
		case "verification":
			r.Verification = d.verification(kp, v)
		}
	})
	// Mark missing required keys so they get a line: the object's own.
	for _, k := range []string{"ref", "name"} {
		if _, ok := d.Lines[p+"."+k]; !ok {
			d.Lines[p+"."+k] = n.Line
		}
	}
	if r.Type == "" && !d.Bad[p+".type"] {
		r.Type = TypeSensor
	}
	return r
}

func (d *nodeDecoder) verification(p string, n *yaml.Node) *Verification {
	if manifest.IsNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.TypeProblem(p, n, "must be an object (always_available, check_required, commands)")
		return nil
	}
	v := &Verification{}
	d.Lines[p+".commands"] = n.Line
	d.Fields(p, n, verificationKeys, func(key, kp string, val *yaml.Node) {
		switch key {
		case "always_available":
			if b := d.Bool(kp, val); b != nil {
				v.AlwaysAvailable = *b
			}
		case "check_required":
			v.CheckRequired = d.Bool(kp, val)
		case "commands":
			if manifest.IsNull(val) {
				return
			}
			if val.Kind != yaml.SequenceNode {
				d.TypeProblem(kp, val, "must be a list of commands")
				return
			}
			for i, item := range val.Content {
				if !d.Spend(1) {
					return
				}
				cp := fmt.Sprintf("%s[%d]", kp, i)
				item = manifest.Resolve(item)
				if item == nil || item.Kind != yaml.MappingNode {
					d.TypeProblem(cp, item, "must be a command object (binary, args, ...)")
					v.Commands = append(v.Commands, Command{}) // keeps the indexes of later commands
					d.Bad[cp+".binary"] = true
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
	d.Lines[p+".binary"] = n.Line
	d.Fields(p, n, commandKeys, func(key, kp string, v *yaml.Node) {
		switch key {
		case "binary":
			c.Binary = d.String(kp, v)
		case "args":
			c.Args = d.Strings(kp, v, "[--version]")
		case "exit_code":
			c.ExitCode = d.Int(kp, v)
		case "pattern":
			c.Pattern = d.String(kp, v)
		case "priority":
			c.Priority = d.Int(kp, v)
		case "optional":
			if b := d.Bool(kp, v); b != nil {
				c.Optional = *b
			}
		}
	})
	return c
}
