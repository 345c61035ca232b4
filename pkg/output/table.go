package output

import (
	"bufio"
	"io"
	"strings"

	"github.com/olekukonko/tablewriter/pkg/twwidth"
)

// columnGap separates the columns of a table, as kubectl does.
const columnGap = "   "

// TablePrinter collects rows and prints them as kubectl does: an upper-case
// header, columns separated by three spaces, no borders, no trailing blanks.
//
// It lays the table out itself rather than through tablewriter's renderer:
// the layout is this simple, and tablewriter took about a second for 10,000
// rows, which `worker list` on a big table would pay on every call. Widths
// are display widths (tablewriter's twwidth: wide runes count two, colour
// escape sequences count nothing), so coloured cells stay aligned.
type TablePrinter struct {
	w      io.Writer
	header []string
	rows   [][]string
}

// NewTable starts a table with the given column headers.
func NewTable(w io.Writer, header ...string) *TablePrinter {
	return &TablePrinter{w: w, header: header}
}

// Append adds one row; missing cells are blank, extra cells are dropped.
func (t *TablePrinter) Append(cells ...string) {
	t.rows = append(t.rows, cells)
}

// Len returns the number of rows appended.
func (t *TablePrinter) Len() int { return len(t.rows) }

// Render writes the table. An empty table still prints its header.
func (t *TablePrinter) Render() error {
	n := len(t.header)
	if n == 0 {
		return nil
	}
	cells := make([][]string, 0, len(t.rows)+1)
	widths := make([][]int, 0, len(t.rows)+1)
	colWidth := make([]int, n)
	add := func(r []string) {
		row := make([]string, n)
		ws := make([]int, n)
		for i := 0; i < n && i < len(r); i++ {
			c := r[i]
			if strings.ContainsAny(c, "\r\n\t") {
				c = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\t", " ").Replace(c)
			}
			row[i] = c
			ws[i] = twwidth.Width(c)
			colWidth[i] = max(colWidth[i], ws[i])
		}
		cells, widths = append(cells, row), append(widths, ws)
	}
	add(t.header)
	for _, r := range t.rows {
		add(r)
	}

	bw := bufio.NewWriterSize(t.w, 64<<10)
	var line []byte
	for r, row := range cells {
		line = line[:0]
		for i, c := range row {
			line = append(line, c...)
			if i < n-1 {
				for pad := colWidth[i] - widths[r][i]; pad > 0; pad-- {
					line = append(line, ' ')
				}
				line = append(line, columnGap...)
			}
		}
		line = append(trimRightSpace(line), '\n')
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func trimRightSpace(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b
}
