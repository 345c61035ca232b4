package output

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DefaultProbeRows is how many rows a streamed table holds back to measure
// its column widths before it writes them; later rows are written as they
// arrive, in those widths. Listings up to this size are laid out exactly.
const DefaultProbeRows = 1000

// Column is one column of a table: its header, the text of a row's cell,
// and optionally the cell's colour. Cell returns the raw value (a database
// value, say): the printer escapes control characters before colouring, so
// colour codes are the only escape sequences that reach a terminal.
type Column[T any] struct {
	Header string
	Cell   func(T) string
	// Color picks the cell's colour for a row; nil is plain. Colour is
	// shown only when the Palette is on (a terminal, no NO_COLOR).
	Color func(T) Color
}

// Spec declares, once, how a command prints its rows of type T in every
// format it offers (in the spirit of kubectl's ResourcePrinter): the
// table's columns, the wide columns, the name of a row, and the machine
// view. A format whose field is nil is not offered, and -o asking for it is
// an error that lists those that are.
type Spec[T any] struct {
	// Columns are -o table's columns (the default format; always offered).
	Columns []Column[T]
	// Wide are -o wide's columns; nil: -o wide is not offered.
	Wide []Column[T]
	// WideLines, when set, turns a row into the lines -o wide prints, such
	// as one line per verification command; the Wide cells read each line.
	WideLines func(T) []T
	// Name is a row's line in -o name; nil: -o name is not offered.
	Name func(T) string
	// View is a row's element of -o json's array and -o yaml's sequence,
	// written as the row arrives; field names are its json tags in both.
	View func(T) any
	// AppendJSON, when set, appends a row's element of -o json exactly as
	// encoding/json writes View's value there (indented one level, as
	// inside the array), without reflection, for listings of millions of
	// rows. It reports false, having appended nothing, for a row it cannot
	// write so; View's value is encoded instead.
	AppendJSON func(b []byte, row T) ([]byte, bool)
	// Encode writes the whole -o json or -o yaml document at once, for
	// documents that are not a plain list of rows (a manifest, a report);
	// rows are collected until Flush. Set View or Encode, or neither (no
	// machine format).
	Encode func(w io.Writer, f Format, rows []T) error
}

// Formats lists the formats the spec offers, table first.
func (s Spec[T]) Formats() Formats {
	fs := Formats{Table}
	if s.Wide != nil {
		fs = append(fs, Wide)
	}
	if s.View != nil || s.Encode != nil {
		fs = append(fs, JSON, YAML)
	}
	if s.Name != nil {
		fs = append(fs, Name)
	}
	return fs
}

// Formats is the set of output formats a command offers, in the order its
// help and errors list them; the first is the default.
type Formats []Format

// Parse checks -o's value s against the set; "" is the first format. An
// unknown format is an error that lists the valid ones.
func (fs Formats) Parse(s string) (Format, error) {
	if s == "" && len(fs) > 0 {
		return fs[0], nil
	}
	for _, f := range fs {
		if string(f) == s {
			return f, nil
		}
	}
	if len(fs) == 1 {
		return "", fmt.Errorf("unknown output format %q: this command prints %s only (drop -o)", s, fs[0])
	}
	return "", fmt.Errorf("unknown output format %q: use one of %s", s, fs.Join(", "))
}

// Join lists the formats separated by sep.
func (fs Formats) Join(sep string) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = string(f)
	}
	return strings.Join(names, sep)
}

// Printer prints the rows of one listing, one at a time, in one format:
// Write each row as it arrives (from a database cursor, say), then Flush.
// Tables hold back their first DefaultProbeRows rows to measure the
// columns; every other format writes each row at once. An empty table
// prints nothing, not even its header (kubectl does the same): the command
// says so on stderr.
type Printer[T any] struct {
	spec    Spec[T]
	w       *bufio.Writer // every format writes through it; Flush and Drain empty it
	format  Format
	palette Palette
	probe   int

	count   int
	table   *tableStream
	columns []Column[T]
	cells   []string
	rows    []T    // Encode's rows
	jsonBuf []byte // AppendJSON's element, reused
	ended   bool
	err     error
}

// PrinterOptions tune a Printer; the zero value is the default.
type PrinterOptions struct {
	// Palette colours table cells; the zero Palette prints plain text.
	Palette Palette
	// ProbeRows overrides DefaultProbeRows; negative measures every row.
	ProbeRows int
}

// NewPrinter returns a printer of spec's rows to w in format f, which must
// be one of spec.Formats() (parse -o with spec.Formats().Parse).
func (s Spec[T]) NewPrinter(w io.Writer, f Format, opts PrinterOptions) *Printer[T] {
	p := &Printer[T]{spec: s, w: bufio.NewWriterSize(w, 64<<10), format: f, palette: opts.Palette, probe: opts.ProbeRows}
	if p.probe == 0 {
		p.probe = DefaultProbeRows
	}
	switch f {
	case Table, "":
		p.format, p.columns = Table, s.Columns
	case Wide:
		p.columns = s.Wide
	}
	if (f == JSON || f == YAML) && s.View == nil && s.Encode == nil || f == Wide && s.Wide == nil || f == Name && s.Name == nil {
		p.err = fmt.Errorf("output format %q is not offered here: use one of %s", f, s.Formats().Join(", "))
	}
	return p
}

// Format is the printer's format.
func (p *Printer[T]) Format() Format { return p.format }

// Count is the number of rows written so far.
func (p *Printer[T]) Count() int { return p.count }

// Write prints one row (or, for a table, queues it until the widths are known).
func (p *Printer[T]) Write(row T) error {
	if p.err != nil {
		return p.err
	}
	p.count++
	p.err = p.write(row)
	return p.err
}

func (p *Printer[T]) write(row T) error {
	switch p.format {
	case Name:
		p.w.WriteString(Escape(p.spec.Name(row)))
		return p.w.WriteByte('\n')
	case JSON, YAML:
		if p.spec.Encode != nil {
			p.rows = append(p.rows, row)
			return nil
		}
		if p.format == JSON && p.spec.AppendJSON != nil {
			b := p.jsonBuf[:0]
			if p.count == 1 {
				b = append(b, "[\n  "...)
			} else {
				b = append(b, ",\n  "...)
			}
			if b, ok := p.spec.AppendJSON(b, row); ok {
				p.jsonBuf = b
				_, err := p.w.Write(b)
				return err
			}
		}
		return p.writeView(p.spec.View(row))
	}
	if p.table == nil {
		p.table = newTableStream(p.w, len(p.columns), p.probe)
		header := make([]string, len(p.columns))
		for i, c := range p.columns {
			header[i] = c.Header
		}
		if err := p.table.add(header); err != nil {
			return err
		}
		p.cells = make([]string, len(p.columns))
	}
	if p.format == Wide && p.spec.WideLines != nil {
		for _, line := range p.spec.WideLines(row) {
			if err := p.tableRow(line); err != nil {
				return err
			}
		}
		return nil
	}
	return p.tableRow(row)
}

func (p *Printer[T]) tableRow(row T) error {
	cells := p.cells // the table copies what it holds back
	for i, c := range p.columns {
		s := Escape(c.Cell(row))
		if c.Color != nil {
			s = p.palette.Paint(c.Color(row), s)
		}
		cells[i] = s
	}
	return p.table.add(cells)
}

// writeView writes one element of the JSON array or the YAML sequence,
// byte for byte what encoding the whole list at once gives.
func (p *Printer[T]) writeView(v any) error {
	if p.format == JSON {
		var buf bytes.Buffer
		buf.WriteString(",\n  ")
		if p.count == 1 {
			buf.Reset()
			buf.WriteString("[\n  ")
		}
		b, err := MarshalJSON(v, "  ", "  ")
		if err != nil {
			return err
		}
		buf.Write(b)
		_, err = p.w.Write(buf.Bytes())
		return err
	}
	generic, err := jsonGeneric(v)
	if err != nil {
		return err
	}
	return encodeYAML(p.w, []any{generic})
}

// Flush ends the listing: it writes a table's held-back rows, closes the
// JSON array, or encodes the collected document. A printer that wrote no
// row prints an empty document ("[]") in JSON and YAML, and nothing in the
// other formats.
func (p *Printer[T]) Flush() error {
	if p.err != nil || p.ended {
		return p.err
	}
	p.ended = true
	switch p.format {
	case JSON, YAML:
		switch {
		case p.spec.Encode != nil:
			p.err = p.spec.Encode(p.w, p.format, p.rows)
		case p.count == 0:
			_, p.err = io.WriteString(p.w, "[]\n")
		case p.format == JSON:
			_, p.err = io.WriteString(p.w, "\n]\n")
		}
	case Table, Wide:
		if p.table != nil {
			p.err = p.table.flush()
		}
	}
	if p.err == nil {
		p.err = p.w.Flush()
	}
	return p.err
}

// Drain writes out the rows the printer has buffered, without ending the
// document: after an error, what was printed reaches the output, and a
// JSON array or YAML sequence stays unfinished (Flush would close it).
// Table rows held back to measure the columns are not written: Flush them.
func (p *Printer[T]) Drain() error {
	if err := p.w.Flush(); err != nil && p.err == nil {
		p.err = err
	}
	return p.err
}

// PrintAll writes rows and flushes.
func (s Spec[T]) PrintAll(w io.Writer, f Format, opts PrinterOptions, rows []T) error {
	p := s.NewPrinter(w, f, opts)
	for _, r := range rows {
		if err := p.Write(r); err != nil {
			return err
		}
	}
	return p.Flush()
}

// jsonGeneric turns v into maps, slices and numbers through its JSON
// form, so that YAML uses the json field names. It decodes with
// encoding/json rather than the YAML parser, which refuses the control
// characters a database value may hold (they are written escaped).
func jsonGeneric(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, err
	}
	return numbers(generic), nil
}

// numbers replaces the json.Numbers of v by int64 or float64, as the YAML
// parser would have read them.
func numbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		for k, e := range v {
			v[k] = numbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = numbers(e)
		}
	}
	return v
}

func encodeYAML(w io.Writer, v any) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return err
	}
	return enc.Close()
}
