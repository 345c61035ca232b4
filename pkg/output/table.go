package output

import (
	"bufio"
	"strings"

	"github.com/olekukonko/tablewriter/pkg/twwidth"
)

// columnGap separates the columns of a table, as kubectl does.
const columnGap = "   "

// tableStream lays out rows as they arrive. The first probe rows (the
// header included) are held back to measure the column widths; after them
// the widths are fixed and each row is written at once, a cell wider than
// its column pushing the rest of its line to the right (kubectl does the
// same). probe < 0 holds every row: exact widths, no streaming.
type tableStream struct {
	w        *bufio.Writer
	n        int
	probe    int
	pending  [][]string
	widths   [][]int
	colWidth []int
	fixed    bool
	line     []byte
	rowBuf   []string // the line being written once the widths are fixed
	wsBuf    []int
}

func newTableStream(w *bufio.Writer, columns, probe int) *tableStream {
	return &tableStream{w: w, n: columns, probe: probe, colWidth: make([]int, columns)}
}

// add takes one row of cells (header first). Once the widths are fixed
// the row is written at once and nothing of it is kept.
func (t *tableStream) add(r []string) error {
	if t.fixed {
		row, ws := t.scratch(r)
		return t.writeLine(row, ws)
	}
	row, ws := make([]string, t.n), make([]int, t.n)
	t.cells(r, row, ws)
	for i, w := range ws {
		t.colWidth[i] = max(t.colWidth[i], w)
	}
	t.pending, t.widths = append(t.pending, row), append(t.widths, ws)
	if t.probe >= 0 && len(t.pending) >= t.probe {
		return t.release()
	}
	return nil
}

// scratch lays r out in buffers the stream reuses for every line.
func (t *tableStream) scratch(r []string) ([]string, []int) {
	if t.rowBuf == nil {
		t.rowBuf, t.wsBuf = make([]string, t.n), make([]int, t.n)
	}
	clear(t.rowBuf)
	clear(t.wsBuf)
	t.cells(r, t.rowBuf, t.wsBuf)
	return t.rowBuf, t.wsBuf
}

// cells puts r's cells, line breaks and tabs made blanks, into row and
// their display widths into ws; missing cells stay blank. A cell of
// printable ASCII (nearly every one) is measured by its length in the same
// pass that finds it has nothing to replace.
func (t *tableStream) cells(r []string, row []string, ws []int) {
	for i := 0; i < t.n && i < len(r); i++ {
		c := r[i]
		w, ascii := asciiWidth(c)
		if !ascii {
			if strings.ContainsAny(c, "\r\n\t") {
				c = blanks.Replace(c)
			}
			w = twwidth.Width(c)
		}
		row[i] = c
		ws[i] = w
	}
}

// blanks makes line breaks and tabs blanks.
var blanks = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\t", " ")

// asciiWidth is len(c) and true when c is printable ASCII, where that is
// its width on a terminal.
func asciiWidth(c string) (int, bool) {
	for i := 0; i < len(c); i++ {
		if b := c[i]; b < 0x20 || b >= 0x7f {
			return 0, false
		}
	}
	return len(c), true
}

// release fixes the widths and writes the rows held back.
func (t *tableStream) release() error {
	t.fixed = true
	for i, row := range t.pending {
		if err := t.writeLine(row, t.widths[i]); err != nil {
			return err
		}
	}
	t.pending, t.widths = nil, nil
	return nil
}

func (t *tableStream) writeLine(row []string, ws []int) error {
	line := t.line[:0]
	for i, c := range row {
		line = append(line, c...)
		if i < t.n-1 {
			for pad := t.colWidth[i] - ws[i]; pad > 0; pad-- {
				line = append(line, ' ')
			}
			line = append(line, columnGap...)
		}
	}
	line = append(trimRightSpace(line), '\n')
	t.line = line
	_, err := t.w.Write(line)
	return err
}

// flush writes what is held back and everything buffered.
func (t *tableStream) flush() error {
	if !t.fixed {
		if err := t.release(); err != nil {
			return err
		}
	}
	return t.w.Flush()
}

func trimRightSpace(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b
}
