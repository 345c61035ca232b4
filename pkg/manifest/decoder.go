package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// MaxSize is the largest manifest attunectl reads (1 MiB).
const MaxSize = 1 << 20

// maxShown bounds the problems ValidationError's message lists; all stay in
// Problems.
const maxShown = 50

// Problem is one thing wrong with a strict input, at a path such as
// runtimes[0].verification.commands[1].pattern. Line is the line in the
// file when known (0 otherwise).
type Problem struct {
	Path string `json:"path"`
	Msg  string `json:"message"`
	Line int    `json:"line,omitempty"`
}

func (p Problem) String() string {
	s := p.Msg
	if p.Path != "" {
		s = p.Path + ": " + p.Msg
	}
	if p.Line > 0 {
		s += fmt.Sprintf(" (line %d)", p.Line)
	}
	return s
}

// ValidationError lists every problem of an input; nothing is written when
// an input has one. The CLI maps it to exit status 2 with errors.As.
type ValidationError struct {
	// What the input is, for the message: "manifest", "sensor manifest",
	// "runtime".
	What     string
	Problems []Problem
}

func (e *ValidationError) Error() string {
	what := e.What
	if what == "" {
		what = "input"
	}
	switch len(e.Problems) {
	case 0:
		return "invalid " + what
	case 1:
		return "invalid " + what + ": " + e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "invalid %s: %d problems:", what, len(e.Problems))
	for i, p := range e.Problems {
		if i == maxShown {
			fmt.Fprintf(&b, "\n  … and %d more", len(e.Problems)-i)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// SortProblems orders problems as a reader meets them: those of the whole
// file first (no path), then by item (the index after the first '['), then
// by line, problems without a line last; stable otherwise. It sorts ps in
// place and returns it.
func SortProblems(ps []Problem) []Problem {
	item := func(p Problem) int {
		if p.Path == "" {
			return -1
		}
		i := strings.IndexByte(p.Path, '[')
		var n int
		if i < 0 || func() bool { _, err := fmt.Sscanf(p.Path[i:], "[%d]", &n); return err != nil }() {
			return math.MaxInt
		}
		return n
	}
	line := func(p Problem) int {
		if p.Line == 0 {
			return math.MaxInt
		}
		return p.Line
	}
	sort.SliceStable(ps, func(i, j int) bool {
		if a, b := item(ps[i]), item(ps[j]); a != b {
			return a < b
		}
		return line(ps[i]) < line(ps[j])
	})
	return ps
}

// Decoder walks the YAML nodes of a strict input (JSON is YAML), recording
// every problem with its path and line instead of stopping at the first:
// unknown keys (with the nearest known one), duplicate keys, wrong types,
// merge keys. It follows YAML aliases within a budget of node visits, so
// that a small file of nested aliases cannot expand into an enormous one.
type Decoder struct {
	// What names the input in messages ("manifest", "sensor manifest").
	What     string
	Problems []Problem
	// Lines maps a path to the line of its value, so that a later
	// validation can point at it.
	Lines map[string]int
	// Bad holds the paths that have a problem already.
	Bad map[string]bool

	budget    int
	exhausted bool
}

// maxNodeVisits is far above what a valid manifest of MaxSize holds.
const maxNodeVisits = 1 << 18

// NewDecoder returns a decoder for an input called what.
func NewDecoder(what string) *Decoder {
	return &Decoder{What: what, Lines: map[string]int{}, Bad: map[string]bool{}, budget: maxNodeVisits}
}

// Err is the decoder's problems as a *ValidationError, sorted, or nil.
func (d *Decoder) Err() error {
	if len(d.Problems) == 0 {
		return nil
	}
	return &ValidationError{What: d.What, Problems: SortProblems(d.Problems)}
}

// Exhausted reports whether the alias budget ran out (the input is refused
// whole).
func (d *Decoder) Exhausted() bool { return d.exhausted }

// Spend takes n visits from the budget; false once it is exhausted.
func (d *Decoder) Spend(n int) bool {
	d.budget -= n
	if d.budget >= 0 {
		return true
	}
	if !d.exhausted {
		d.exhausted = true
		d.Problems = append(d.Problems, Problem{Msg: d.What + " expands to too much data through YAML aliases: write it without anchors (&) and aliases (*)"})
	}
	return false
}

// Add records a problem at path, on the line of n.
func (d *Decoder) Add(path string, n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.Problems = append(d.Problems, Problem{Path: path, Msg: fmt.Sprintf(format, args...), Line: line})
	d.Bad[path] = true
}

// TypeProblem records that n at path is not what it must be: "want, got
// the string "x"".
func (d *Decoder) TypeProblem(path string, n *yaml.Node, want string) {
	d.Add(path, n, "%s, got %s", want, KindName(n))
}

// Documents reads every YAML document of data, each an item object or a
// list of them, and calls item for each item of the file with its path
// (plural[i], numbered across the whole file): with the object, or with a
// nil node for a list entry that is not an object (a problem is recorded;
// the caller keeps the numbering). A document that is neither is a
// problem. It checks the size and the encoding first. name is what an item
// is ("a runtime object"), keys its main keys for messages ("ref, name,
// verification, ..."). It returns how many items it saw.
func (d *Decoder) Documents(data []byte, plural, name, keys string, item func(path string, n *yaml.Node)) int {
	if len(data) > MaxSize {
		d.Problems = append(d.Problems, Problem{Msg: fmt.Sprintf("%s is larger than the %d byte (1 MiB) limit: split it into several files", d.What, MaxSize)})
		return 0
	}
	if !utf8.Valid(data) {
		d.Problems = append(d.Problems, Problem{Msg: d.What + " is not valid UTF-8: save it as UTF-8 text"})
		return 0
	}
	n := 0
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// yaml's messages carry the line: "yaml: line 3: mapping values are not allowed in this context".
			d.Problems = append(d.Problems, Problem{Msg: fmt.Sprintf("%v: fix the YAML/JSON syntax", err)})
			break
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := Resolve(doc.Content[0])
		switch {
		case root == nil:
			d.Problems = append(d.Problems, Problem{Msg: "invalid alias", Line: doc.Line})
		case IsNull(root):
			// An empty document (a stray ---) holds nothing.
		case root.Kind == yaml.MappingNode:
			item(fmt.Sprintf("%s[%d]", plural, n), root)
			n++
		case root.Kind == yaml.SequenceNode:
			for _, it := range root.Content {
				if !d.Spend(1) {
					break
				}
				p := fmt.Sprintf("%s[%d]", plural, n)
				n++
				it = Resolve(it)
				if it == nil || it.Kind != yaml.MappingNode {
					d.TypeProblem(p, it, "must be "+name+" ("+keys+")")
					item(p, nil)
					continue
				}
				item(p, it)
			}
		default:
			d.Problems = append(d.Problems, Problem{Msg: fmt.Sprintf("a manifest holds %s or a list of them, got %s", name, KindName(root)), Line: root.Line})
		}
	}
	return n
}

// Fields walks a mapping: it refuses non-string, duplicate, merge and
// unknown keys (naming the nearest known key), and calls fn for each known
// key with its path and value (aliases followed).
func (d *Decoder) Fields(path string, n *yaml.Node, known []string, fn func(key, kp string, v *yaml.Node)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !d.Spend(1) {
			return
		}
		k, v := Resolve(n.Content[i]), Resolve(n.Content[i+1])
		if k == nil || v == nil {
			d.Add(path, n.Content[i], "invalid alias")
			continue
		}
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			d.Add(path+"."+k.Value, k, "unknown key %q: merge keys are not supported; write the keys out", k.Value)
			continue
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			d.Add(path, k, "keys must be strings, got %s", KindName(k))
			continue
		}
		key := k.Value
		kp := path + "." + key
		if line, dup := seen[key]; dup {
			d.Add(kp, k, "duplicate key %q (first at line %d)", key, line)
			continue
		}
		seen[key] = k.Line
		if !contains(known, key) {
			msg := fmt.Sprintf("unknown key %q", key)
			if s := Nearest(key, known, 2); s != "" {
				msg += fmt.Sprintf(": did you mean %q?", s)
			} else {
				msg += ": known keys are " + strings.Join(known, ", ")
			}
			d.Add(kp, k, "%s", msg)
			continue
		}
		d.Lines[kp] = v.Line
		fn(key, kp, v)
	}
}

// String reads a string scalar; null is "".
func (d *Decoder) String(path string, n *yaml.Node) string {
	if IsNull(n) {
		return ""
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		d.TypeProblem(path, n, "must be a string (quote it if it looks like a number or boolean)")
		return ""
	}
	return n.Value
}

// Strings reads a list of strings; null and an empty list are nil.
func (d *Decoder) Strings(path string, n *yaml.Node, example string) []string {
	if IsNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.TypeProblem(path, n, "must be a list of strings, such as "+example)
		return nil
	}
	var out []string
	for i, item := range n.Content {
		if !d.Spend(1) {
			return out
		}
		item = Resolve(item)
		ip := fmt.Sprintf("%s[%d]", path, i)
		if item == nil || item.Kind != yaml.ScalarNode || item.ShortTag() != "!!str" {
			// The entry keeps its place, so that later paths stay right.
			d.TypeProblem(ip, item, "must be a string (quote it if it looks like a number or boolean)")
			out = append(out, "")
			continue
		}
		d.Lines[ip] = item.Line
		out = append(out, item.Value)
	}
	return out
}

// Bool reads true or false; null is nil.
func (d *Decoder) Bool(path string, n *yaml.Node) *bool {
	if IsNull(n) {
		return nil
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		d.TypeProblem(path, n, "must be true or false")
		return nil
	}
	b := strings.EqualFold(n.Value, "true")
	return &b
}

// Int reads an integer of 32 bits; null is nil.
func (d *Decoder) Int(path string, n *yaml.Node) *int {
	if IsNull(n) {
		return nil
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		d.TypeProblem(path, n, "must be an integer")
		return nil
	}
	var i int64
	if err := n.Decode(&i); err != nil || i < math.MinInt32 || i > math.MaxInt32 {
		d.Add(path, n, "%s is out of range", Truncate(n.Value, 40))
		return nil
	}
	v := int(i)
	return &v
}

// Object reads a mapping with string keys as free-form data; null is nil.
func (d *Decoder) Object(path string, n *yaml.Node) map[string]any {
	if IsNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.TypeProblem(path, n, "must be an object")
		return nil
	}
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		d.Add(path, n, "must be an object with string keys: %v", err)
		return nil
	}
	return m
}

// Resolve follows aliases (depth-limited; yaml rejects cycles itself).
func Resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i > 100 {
			return nil
		}
		n = n.Alias
	}
	return n
}

// IsNull reports whether n is YAML's null (~, null, or nothing).
func IsNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// KindName words what a node is, for messages: "an object", "a list",
// "the string "x"", "the integer 3", "true", "null".
func KindName(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "an object"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("the string %q", Truncate(n.Value, 40))
		case "!!int":
			return "the integer " + Truncate(n.Value, 40)
		case "!!float":
			return "the number " + Truncate(n.Value, 40)
		case "!!bool":
			return n.Value
		case "!!null":
			return "null"
		}
		return fmt.Sprintf("%s %q", n.ShortTag(), Truncate(n.Value, 40))
	}
	return "an unexpected node"
}

// Truncate shortens s to n bytes and an ellipsis, for messages that quote
// input.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
