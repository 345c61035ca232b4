package cli

import (
	"context"
	"strings"
	"testing"
)

// Colour follows the App's streams and environment, which a test sets.
func TestPaletteFromAppStreamsAndEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tty     bool
		environ []string
		noColor bool
		want    bool
	}{
		{"terminal", true, nil, false, true},
		{"not a terminal", false, nil, false, false},
		{"NO_COLOR, even empty", true, []string{"NO_COLOR="}, false, false},
		{"TERM=dumb", true, []string{"TERM=dumb"}, false, false},
		{"TERM=xterm", true, []string{"TERM=xterm"}, false, true},
		{"--no-color", true, nil, true, false},
	} {
		app, _, _ := testApp("")
		app.SetStdoutTTY(tc.tty)
		app.Environ, app.Global.NoColor = tc.environ, tc.noColor
		if got := app.palette().On; got != tc.want {
			t.Errorf("%s: colour %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCommandsSeeTheAppsTerminal(t *testing.T) {
	t.Parallel()
	db := fleetDB(t)
	app, out, errOut := testApp("")
	app.Environ = []string{"ATTUNE__DATABASE__URL=" + db.URL}
	app.SetStdoutTTY(true)
	if code := Execute(context.Background(), app, []string{"worker", "list", "--role", "action"}); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out.String(), "\x1b[32mbusy") {
		t.Errorf("no colour on a terminal: %q", out)
	}

	// A prune that asks: stdin and stderr are terminals, and the answer is read from In.
	app, out, errOut = testApp("n\n")
	app.Environ = []string{"ATTUNE__DATABASE__URL=" + db.URL}
	app.SetStdinTTY(true)
	app.SetStderrTTY(true)
	code := Execute(context.Background(), app, []string{"worker", "prune"})
	if code != ExitError || !strings.Contains(errOut.String(), "Mark inactive 2 stale workers (role sensor)? [y/N] ") {
		t.Errorf("exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
}

// A command without a machine format rejects -o json (exit 2), and --help
// lists the formats of the command asked about.
func TestOutputFormatsPerCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"migrate", "up", "-o", "json"}, ExitUsage, `Error: unknown output format "json": this command prints table only (drop -o)`},
		{[]string{"embedded", "stop", "-o", "yaml"}, ExitUsage, `Error: unknown output format "yaml": this command prints table only (drop -o)`},
		{[]string{"sensor", "run", "-o", "json"}, ExitUsage, `Error: sensor run prints no output format: -o json applies to --dry-run only (JSON)`},
		{[]string{"runtime", "verify", "-o", "name"}, ExitUsage, `Error: unknown output format "name": use one of table, wide, json, yaml`},
	} {
		app, _, errOut := testApp("")
		app.Environ = []string{"ATTUNE__DATABASE__URL=postgres://nowhere.invalid/attune"}
		if code := Execute(context.Background(), app, tc.args); code != tc.code || !strings.HasPrefix(errOut.String(), tc.want) {
			t.Errorf("%v: exit %d, want %d\nstderr %q\nwant   %q", tc.args, code, tc.code, errOut, tc.want)
		}
	}
	for args, want := range map[string]string{
		"worker list --help":    "output format: table|wide|json|yaml|name\n",
		"runtime verify --help": "output format: table|wide|json|yaml\n",
		"migrate up --help":     "output format: table (this command offers no machine format)\n",
		"config view --help":    "output format: yaml|json\n",
	} {
		app, out, _ := testApp("")
		if code := Execute(context.Background(), app, strings.Fields(args)); code != 0 || !strings.Contains(out.String(), want) {
			t.Errorf("%s: exit %d, want %q in\n%s", args, code, want, out)
		}
	}
}
