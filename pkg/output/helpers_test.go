package output

import (
	"bufio"
	"errors"
	"io"
	"iter"
)

// ParseFormat checks s against the formats a command offers; "" is the
// first. An unknown format is an error that lists the valid ones.
func ParseFormat(s string, allowed ...Format) (Format, error) {
	return Formats(allowed).Parse(s)
}

// Print writes every row of seq and flushes: the streaming form, for rows
// read from a database as they arrive. It stops at the first error, of seq
// or of writing, and returns how many rows were printed.
func (s Spec[T]) Print(w io.Writer, f Format, opts PrinterOptions, seq iter.Seq2[T, error]) (int, error) {
	p := s.NewPrinter(w, f, opts)
	for row, err := range seq {
		if err != nil {
			return p.Count(), errors.Join(err, p.Flush())
		}
		if err := p.Write(row); err != nil {
			return p.Count(), err
		}
	}
	return p.Count(), p.Flush()
}

// TablePrinter collects rows and prints them as kubectl does: an upper-case
// header, columns separated by three spaces, no borders, no trailing blanks.
//
// It lays the table out itself rather than through tablewriter's renderer:
// the layout is this simple, and tablewriter took about a second for 10,000
// rows, which `worker list` on a big table would pay on every call. Widths
// are display widths (tablewriter's twwidth: wide runes count two, colour
// escape sequences count nothing), so coloured cells stay aligned.
//
// Cells are printed as given (line breaks and tabs become blanks): callers
// that print database values go through Printer, which escapes them.
type TablePrinter struct {
	header []string
	rows   [][]string
	t      *tableStream
}

// NewTable starts a table with the given column headers.
func NewTable(w io.Writer, header ...string) *TablePrinter {
	return &TablePrinter{header: header, t: newTableStream(bufio.NewWriterSize(w, 64<<10), len(header), -1)}
}

// Append adds one row; missing cells are blank, extra cells are dropped.
func (t *TablePrinter) Append(cells ...string) {
	t.rows = append(t.rows, cells)
}

// Len returns the number of rows appended.
func (t *TablePrinter) Len() int { return len(t.rows) }

// Render writes the table. An empty table still prints its header.
func (t *TablePrinter) Render() error {
	if len(t.header) == 0 {
		return nil
	}
	if err := t.t.add(t.header); err != nil {
		return err
	}
	for _, r := range t.rows {
		if err := t.t.add(r); err != nil {
			return err
		}
	}
	return t.t.flush()
}
