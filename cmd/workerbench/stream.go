package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/workers"
)

// streamMain is `workerbench stream`: a stand-in for `attunectl worker
// list` on the streaming path, until the CLI's printers use workers.Stream.
// It connects as attunectl does (database.Open: search_path, jit off, the
// default 30 s statement timeout), streams the listing with the fields the
// format shows, and writes each row as it arrives: -o name one name per
// line, -o table aligned columns of a fixed width (the columns of worker
// list), -o json a JSON array of objects with the fields of worker list -o
// json. workerbench runs it as a subprocess, so its wall time and peak RSS
// are a process's, like attunectl's.
func streamMain(args []string) int {
	fs := flag.NewFlagSet("workerbench stream", flag.ContinueOnError)
	url := fs.String("database-url", "", "PostgreSQL URL")
	schema := fs.String("schema", "workerbench", "schema")
	format := fs.String("o", "table", "table, json or name")
	runtimeName := fs.String("runtime", "", "only workers with this runtime")
	role := fs.String("role", "", "only workers of this role")
	stale := fs.Bool("stale", false, "stale workers only")
	olderThan := fs.Duration("older-than", 0, "grace override")
	timeout := fs.Duration("statement-timeout", 30*time.Second, "statement timeout (attunectl's default: 30s)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "workerbench stream: %v\n", err)
			return 1
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	ctx := context.Background()
	db, err := database.Open(ctx, database.Options{URL: *url, Schema: *schema, StatementTimeout: *timeout, MaxConns: 2})
	if err != nil {
		fmt.Fprintf(os.Stderr, "workerbench stream: %s\n", database.Redact(err.Error()))
		return 1
	}
	defer db.Close()
	opts := workers.ListOptions{StaleOnly: *stale, OlderThan: *olderThan, Selector: workers.Selector{Runtime: *runtimeName}}
	if *role != "" {
		opts.Roles = []string{*role}
	}
	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	f, ok := streamFormats[*format]
	if !ok {
		fmt.Fprintf(os.Stderr, "workerbench stream: -o %q: use table, json or name\n", *format)
		return 2
	}
	p := f.newPrinter(out)
	_, err = workers.Stream(ctx, db.Pool, opts, workers.StreamOptions{Fields: f.fields}, p.row)
	if err == nil {
		err = p.end()
	}
	if err == nil {
		err = out.Flush()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "workerbench stream: %s\n", database.Redact(err.Error()))
		return 1
	}
	return 0
}

type streamFormat struct {
	fields     workers.Fields
	newPrinter func(w *bufio.Writer) streamPrinter
}

var streamFormats = map[string]streamFormat{
	"name":  {workers.FieldsName, func(w *bufio.Writer) streamPrinter { return &namePrinter{w: w} }},
	"table": {workers.FieldsTable, func(w *bufio.Writer) streamPrinter { return &tablePrinter{w: w} }},
	"json":  {workers.FieldsAll, func(w *bufio.Writer) streamPrinter { return &jsonPrinter{w: w} }},
}

// StreamQueryOf is the statement `workerbench stream -o format` declares
// its cursor for, for psql to run.
func streamQueryOf(format string, opts workers.ListOptions) (string, []any) {
	return workers.StreamQuery(opts, streamFormats[format].fields)
}

type streamPrinter interface {
	row(workers.Row) error
	end() error
}

type namePrinter struct{ w *bufio.Writer }

func (p *namePrinter) row(r workers.Row) error {
	p.w.WriteString(r.Name)
	return p.w.WriteByte('\n')
}
func (p *namePrinter) end() error { return nil }

// tablePrinter writes worker list's columns padded to fixed widths (a
// streaming printer cannot measure every row first).
type tablePrinter struct {
	w      *bufio.Writer
	header bool
}

func (p *tablePrinter) row(r workers.Row) error {
	if !p.header {
		p.header = true
		p.cells("NAME", "ROLE", "STATUS", "HOST", "RUNTIMES", "LAST HEARTBEAT")
	}
	hb := "never"
	if r.LastHeartbeat != nil {
		hb = ago(r.At.Sub(*r.LastHeartbeat))
	}
	p.cells(r.Name, r.Role, r.State, r.Host, strings.Join(r.Capabilities.Runtimes, ","), hb)
	return nil
}

var widths = []int{24, 8, 10, 16, 32, 0}

func (p *tablePrinter) cells(cells ...string) {
	for i, c := range cells {
		p.w.WriteString(c)
		if i == len(cells)-1 {
			break
		}
		for n := len(c); n < widths[i]+2; n++ {
			p.w.WriteByte(' ')
		}
	}
	p.w.WriteByte('\n')
}

func (p *tablePrinter) end() error { return nil }

func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "in " + ago(-d)[:len(ago(-d))-4]
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + "h ago"
	}
	return strconv.Itoa(int(d.Hours()/24)) + "d ago"
}

// jsonPrinter writes a JSON array, one object per row, with the fields of
// worker list -o json.
type jsonPrinter struct {
	w   *bufio.Writer
	n   int
	buf []byte
}

type jsonView struct {
	ID               int64                 `json:"id"`
	Name             string                `json:"name"`
	Role             string                `json:"role"`
	Type             string                `json:"type"`
	State            string                `json:"state"`
	Status           string                `json:"status"`
	Host             string                `json:"host"`
	Port             *int                  `json:"port"`
	Runtimes         []string              `json:"runtimes"`
	RuntimeVersions  map[string]string     `json:"runtime_versions"`
	InstanceID       string                `json:"instance_id"`
	LastHeartbeat    *string               `json:"last_heartbeat"`
	SilentForSeconds *float64              `json:"silent_for_seconds"`
	GraceSeconds     float64               `json:"grace_seconds"`
	Capabilities     *workers.Capabilities `json:"capabilities"`
	Meta             map[string]any        `json:"meta"`
	Created          string                `json:"created"`
	Updated          string                `json:"updated"`
}

func (p *jsonPrinter) row(r workers.Row) error {
	v := jsonView{ID: r.ID, Name: r.Name, Role: r.Role, Type: r.Type, State: r.State, Status: r.Status, Host: r.Host, Port: r.Port,
		Runtimes: r.Capabilities.Runtimes, RuntimeVersions: r.Capabilities.RuntimeVersions, InstanceID: r.InstanceID,
		GraceSeconds: r.Grace.Seconds(), Capabilities: &r.Capabilities, Meta: r.Meta,
		Created: r.Created.Format(time.RFC3339Nano), Updated: r.Updated.Format(time.RFC3339Nano)}
	if r.LastHeartbeat != nil {
		s := r.LastHeartbeat.Format(time.RFC3339Nano)
		secs := r.Silence.Seconds()
		v.LastHeartbeat, v.SilentForSeconds = &s, &secs
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if p.n == 0 {
		p.w.WriteString("[\n")
	} else {
		p.w.WriteString(",\n")
	}
	p.n++
	_, err = p.w.Write(b)
	return err
}

func (p *jsonPrinter) end() error {
	if p.n == 0 {
		_, err := io.WriteString(p.w, "[]\n")
		return err
	}
	_, err := p.w.WriteString("\n]\n")
	return err
}
