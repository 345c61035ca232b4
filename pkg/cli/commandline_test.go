package cli

import (
	"context"
	"strings"
	"testing"
)

// The command line never lies: unknown subcommands, --version, bare seconds
// for durations, --role's list, --to past the last migration.
func TestCommandLineSaysWhatIsWrong(t *testing.T) {
	t.Parallel()
	db := fleetDB(t)
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string // a prefix
	}{
		{[]string{"worker", "lsit"}, ExitUsage, "", "Error: unknown command \"lsit\" for \"attunectl worker\": did you mean list? (see `attunectl worker --help`)\n"},
		{[]string{"runtime", "lst"}, ExitUsage, "", "Error: unknown command \"lst\" for \"attunectl runtime\": did you mean list?"},
		{[]string{"sensor", "rn"}, ExitUsage, "", "Error: unknown command \"rn\" for \"attunectl sensor\": did you mean run?"},
		{[]string{"migrate", "sideways"}, ExitUsage, "", "Error: unknown command \"sideways\" for \"attunectl migrate\" (see `attunectl migrate --help`)\n"},
		{[]string{"completion", "tcsh"}, ExitUsage, "", "Error: unknown command \"tcsh\" for \"attunectl completion\""},
		{[]string{"worker", "stale", "--role", "sensor", "--older-than", "300", "-o", "name"}, ExitOK, "sensor-new-01\nsensor-old-01\n", ""},
		{[]string{"worker", "list", "--older-than", "2.5", "-o", "name", "--status", "active", "--role", "action"}, ExitOK, "", ""},
		{[]string{"worker", "list", "--older-than", "soon"}, ExitUsage, "", "Error: invalid argument \"soon\" for \"--older-than\" flag: invalid duration \"soon\": give seconds (30) or a duration (30s, 1m)"},
		{[]string{"worker", "list", "--role", "sensors"}, ExitUsage, "", "Error: unknown worker role \"sensors\": use one of action, sensor, hybrid, all\n"},
		{[]string{"migrate", "up", "--to", "999"}, ExitUsage, "", "Error: --to 999: the latest migration is "},
		{[]string{"runtime", "remove"}, ExitUsage, "", "Error: attunectl runtime remove needs at least one argument: REF... (see `attunectl runtime remove --help`)\n"},
		{[]string{"migrate", "up", "extra"}, ExitUsage, "", "Error: attunectl migrate up takes no arguments, got \"extra\" (see `attunectl migrate up --help`)\n"},
		{[]string{"sensor", "run", "--dry-run", "--once"}, ExitUsage, "", "Error: --dry-run and --once cannot be combined (see `attunectl sensor run --help`)\n"},
		{[]string{"sensor", "run", "--metrics-addr", "9464", "--runtimes", "shell"}, ExitUsage, "", "Error: --metrics-addr \"9464\": address 9464: missing port in address: give host:port or :port, e.g. :9464 (sensor.metrics_addr)\n"},
		{[]string{"worker", "list", "--database-url", "postgres://u:secret@[::1/attune"}, ExitUsage, "", "Error: parsing database URL: "},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			app, out, errOut := testApp("")
			app.Environ = []string{"ATTUNE__DATABASE__URL=" + db.URL}
			code := Execute(context.Background(), app, tc.args)
			if code != tc.code || out.String() != tc.stdout || !strings.HasPrefix(errOut.String(), tc.stderr) {
				t.Errorf("exit %d, want %d\nstdout %q, want %q\nstderr %q, want %q…", code, tc.code, out, tc.stdout, errOut, tc.stderr)
			}
		})
	}
	app, out, _ := testApp("")
	if code := Execute(context.Background(), app, []string{"--version"}); code != 0 || !strings.HasPrefix(out.String(), "attunectl ") {
		t.Errorf("--version: exit %d, %q", code, out)
	}
	app, out, _ = testApp("")
	if code := Execute(context.Background(), app, []string{"worker"}); code != 0 || !strings.Contains(out.String(), "Available Commands:") {
		t.Errorf("a group without a subcommand prints its help: exit %d, %q", code, out)
	}
}
