package output

import (
	"bytes"
	"io"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
)

// TablePrinter collects rows and prints them as kubectl does: an upper-case
// header, columns separated by three spaces, no borders, no trailing blanks.
type TablePrinter struct {
	w      io.Writer
	header []string
	rows   [][]string
}

// NewTable starts a table with the given column headers.
func NewTable(w io.Writer, header ...string) *TablePrinter {
	return &TablePrinter{w: w, header: header}
}

// Append adds one row; missing cells are blank.
func (t *TablePrinter) Append(cells ...string) {
	t.rows = append(t.rows, cells)
}

// Len returns the number of rows appended.
func (t *TablePrinter) Len() int { return len(t.rows) }

// Render writes the table. An empty table still prints its header.
func (t *TablePrinter) Render() error {
	var buf bytes.Buffer
	tb := tablewriter.NewTable(&buf,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{
			Borders: tw.BorderNone,
			Symbols: tw.NewSymbols(tw.StyleNone),
			Settings: tw.Settings{
				Separators: tw.Separators{BetweenRows: tw.Off, BetweenColumns: tw.Off, ShowHeader: tw.Off, ShowFooter: tw.Off},
				Lines:      tw.Lines{ShowHeaderLine: tw.Off, ShowFooterLine: tw.Off, ShowTop: tw.Off, ShowBottom: tw.Off},
			},
		})),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithHeaderAlignment(tw.AlignLeft),
		tablewriter.WithRowAlignment(tw.AlignLeft),
		tablewriter.WithPadding(tw.Padding{Left: "", Right: "   ", Overwrite: true}),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithHeaderAutoWrap(tw.WrapNone),
		tablewriter.WithTrimSpace(tw.Off),
	)
	tb.Header(t.header)
	for _, r := range t.rows {
		row := make([]string, len(t.header))
		copy(row, r)
		for i, c := range row {
			if c == "" {
				row[i] = " " // an empty cell would collapse the column alignment
			}
		}
		if err := tb.Append(row); err != nil {
			return err
		}
	}
	if err := tb.Render(); err != nil {
		return err
	}
	var out strings.Builder
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if line == "" {
			continue
		}
		out.WriteString(strings.TrimRight(line, " \n"))
		out.WriteByte('\n')
	}
	_, err := io.WriteString(t.w, out.String())
	return err
}
