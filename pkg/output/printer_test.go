package output

import (
	"bytes"
	"errors"
	"iter"
	"strings"
	"testing"
)

type item struct {
	Name  string `json:"name"`
	Host  string `json:"host"`
	Count int    `json:"count"`
}

func itemSpec() Spec[item] {
	return Spec[item]{
		Columns: []Column[item]{
			{Header: "NAME", Cell: func(i item) string { return i.Name }},
			{Header: "HOST", Cell: func(i item) string { return i.Host }, Color: func(item) Color { return Green }},
		},
		Wide: []Column[item]{
			{Header: "NAME", Cell: func(i item) string { return i.Name }},
			{Header: "HOST", Cell: func(i item) string { return i.Host }},
			{Header: "COUNT", Cell: func(i item) string { return strings.Repeat("#", i.Count) }},
		},
		Name: func(i item) string { return i.Name },
		View: func(i item) any { return i },
	}
}

var items = []item{{"a", "h1", 1}, {"b<&>", "", 3}, {"c", "h\"3", 0}}

// Streamed JSON and YAML are byte for byte what encoding the whole list gives.
func TestPrinterMachineFormatsStreamExactly(t *testing.T) {
	for _, n := range []int{0, 1, 3} {
		rows := items[:n]
		var whole, streamed bytes.Buffer
		for _, f := range []Format{JSON, YAML} {
			whole.Reset()
			streamed.Reset()
			if err := Write(&whole, f, append([]item{}, rows...)); err != nil {
				t.Fatal(err)
			}
			if err := itemSpec().PrintAll(&streamed, f, PrinterOptions{}, rows); err != nil {
				t.Fatal(err)
			}
			if whole.String() != streamed.String() {
				t.Errorf("%s, %d rows:\nstreamed %q\nwhole    %q", f, n, streamed.String(), whole.String())
			}
		}
	}
}

func TestPrinterFormats(t *testing.T) {
	s := itemSpec()
	if got := s.Formats().Join("|"); got != "table|wide|json|yaml|name" {
		t.Errorf("formats %s", got)
	}
	if got := (Spec[item]{Columns: s.Columns}).Formats().Join("|"); got != "table" {
		t.Errorf("table only: %s", got)
	}
	_, err := Formats{Table}.Parse("json")
	if err == nil || err.Error() != `unknown output format "json": this command prints table only (drop -o)` {
		t.Errorf("table only, -o json: %v", err)
	}
	_, err = s.Formats().Parse("csv")
	if err == nil || err.Error() != `unknown output format "csv": use one of table, wide, json, yaml, name` {
		t.Errorf("-o csv: %v", err)
	}
	p := Spec[item]{Columns: s.Columns}.NewPrinter(&bytes.Buffer{}, JSON, PrinterOptions{})
	if err := p.Write(items[0]); err == nil {
		t.Error("a spec without a machine view printed JSON")
	}
}

func TestPrinterTable(t *testing.T) {
	var buf bytes.Buffer
	if err := itemSpec().PrintAll(&buf, Table, PrinterOptions{}, items); err != nil {
		t.Fatal(err)
	}
	want := "NAME   HOST\na      h1\nb<&>\nc      h\"3\n"
	if buf.String() != want {
		t.Errorf("table %q, want %q", buf.String(), want)
	}
	buf.Reset()
	if err := itemSpec().PrintAll(&buf, Table, PrinterOptions{}, nil); err != nil || buf.Len() != 0 {
		t.Errorf("an empty table prints %q, %v; want nothing", buf.String(), err)
	}
	buf.Reset()
	if err := itemSpec().PrintAll(&buf, Table, PrinterOptions{Palette: Palette{On: true}}, items[:1]); err != nil || !strings.Contains(buf.String(), "\x1b[32mh1") {
		t.Errorf("colour lost: %q, %v", buf.String(), err)
	}
}

// After the probe rows the widths are fixed and rows are written as they
// arrive; a wider cell pushes the rest of its line to the right.
func TestPrinterStreamsAfterProbe(t *testing.T) {
	var buf bytes.Buffer
	p := itemSpec().NewPrinter(&buf, Wide, PrinterOptions{ProbeRows: 2})
	for _, it := range []item{{"a", "h1", 1}, {"longer-name", "h2", 2}, {"c", "h3", 3}} {
		if err := p.Write(it); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "NAME   HOST   COUNT\na      h1     #\nlonger-name   h2     ##\nc      h3     ###\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestPrintStopsAtTheFirstError(t *testing.T) {
	boom := errors.New("cursor broke")
	seq := iter.Seq2[item, error](func(yield func(item, error) bool) {
		if yield(items[0], nil) {
			yield(item{}, boom)
		}
	})
	var buf bytes.Buffer
	n, err := itemSpec().Print(&buf, Name, PrinterOptions{}, seq)
	if n != 1 || !errors.Is(err, boom) || buf.String() != "a\n" {
		t.Errorf("n %d, err %v, out %q", n, err, buf.String())
	}
}

// Control characters from database values never reach the terminal raw:
// not in a table, not in -o name; JSON and YAML stay exact.
func TestPrinterEscapesControlCharacters(t *testing.T) {
	evil := item{Name: "w\x1b]0;owned\a\x1b[2J", Host: "h\rx\x9b31m", Count: 1}
	for _, f := range []Format{Table, Wide, Name} {
		var buf bytes.Buffer
		if err := itemSpec().PrintAll(&buf, f, PrinterOptions{Palette: Palette{On: true}}, []item{evil}); err != nil {
			t.Fatal(err)
		}
		plain := strings.ReplaceAll(strings.ReplaceAll(buf.String(), "\x1b[32m", ""), "\x1b[0m", "")
		if strings.ContainsAny(plain, "\x1b\a\r\u009b") {
			t.Errorf("%s: raw control characters in %q", f, buf.String())
		}
		if !strings.Contains(plain, `w\x1b]0;owned\a\x1b[2J`) {
			t.Errorf("%s: escaped name missing from %q", f, plain)
		}
	}
	var buf bytes.Buffer
	if err := itemSpec().PrintAll(&buf, JSON, PrinterOptions{}, []item{evil}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"w\u001b]0;owned\u0007\u001b[2J"`) {
		t.Errorf("json is not exact: %s", buf.String())
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"plain":           "plain",
		"日本 ok":           "日本 ok",
		"a\nb\tc\r\nd\re": "a b c d e",
		"\x1b[31mred":     `\x1b[31mred`,
		"bell\a":          `bell\a`,
		"del\x7f":         `del\x7f`,
		"c1\u009b":        `c1\u009b`,
		"bad\xff":         `bad\xff`,
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
	if got := EscapeText("line 1\n\tline 2\r\x1b[2J"); got != "line 1\n\tline 2\\r\\x1b[2J" {
		t.Errorf("EscapeText = %q", got)
	}
}
