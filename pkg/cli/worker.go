package cli

import (
	"slices"
	"strings"
	"time"

	"github.com/attune-automation/attunectl/pkg/workers"
	"github.com/spf13/cobra"
)

// roleAll selects every role in --role.
const roleAll = "all"

// DefaultWatchInterval is how often --watch redraws.
const DefaultWatchInterval = 2 * time.Second

func newWorkerCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Show which workers are alive and what they hold; cordon, drain and clean up after them",
		Long: `Inspect the workers registered in the shared worker table, and clean up
after dead hosts.

Liveness is derived from the heartbeat, not trusted from the stored status: an
active worker whose last heartbeat is older than its grace is shown as stale.
The grace is three times the heartbeat interval the worker advertises in
capabilities.heartbeat_interval (30s when it advertises none, so 90s), or the
--older-than duration when given. A worker that never heartbeat is stale.
Every staleness test runs in the database with its clock (now()), so a host
with a skewed clock never makes a live worker look dead.

Cordon a sensor worker to keep it from taking new sensors (it keeps what it
holds), drain it to hand its sensors to other workers; list shows the cordon
and how many sensors each worker holds.`,
		Example: `  attunectl worker list --role sensor
  attunectl worker list --runtime python --status active
  attunectl worker stale --older-than 5m --exit-code
  attunectl worker prune --dry-run
  attunectl worker cordon sensor-web-01 --reason "kernel upgrade"
  attunectl worker drain sensor-web-01 --deadline 5m --wait`,
	}
	cmd.AddCommand(newWorkerListCmd(app), newWorkerStaleCmd(app), newWorkerPruneCmd(app),
		newWorkerCordonCmd(app), newWorkerUncordonCmd(app), newWorkerDrainCmd(app))
	return cmd
}

// selectorFlags are the filters every worker command shares.
type selectorFlags struct {
	Roles   []string
	Runtime string
	Host    string
	// Names are the command's NAME arguments.
	Names []string
}

// addSelectorFlags adds --role, --runtime and --host with the same help
// everywhere; roleDefault is what --role means when not given.
func addSelectorFlags(cmd *cobra.Command, s *selectorFlags, roleDefault []string, roleHelp string) {
	fs := cmd.Flags()
	fs.StringSliceVar(&s.Roles, "role", roleDefault, roleHelp)
	fs.StringVar(&s.Runtime, "runtime", "", `only workers that advertise this runtime in capabilities.runtimes, e.g. python, node.js, "built-in sensor" (compared lower case)`)
	fs.StringVar(&s.Host, "host", "", "only workers on this host (exact match)")
	_ = cmd.RegisterFlagCompletionFunc("role", cobra.FixedCompletions([]string{workers.RoleSensor, workers.RoleAction, workers.RoleHybrid, roleAll}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("runtime", cobra.FixedCompletions([]string{"python", "node.js", "shell", "native", "built-in sensor"}, cobra.ShellCompDirectiveNoFileComp))
}

// selector turns the flags into a workers.Selector: "all" selects every
// role, runtimes are lower case as detection writes them.
func (s selectorFlags) selector() workers.Selector {
	var roles []string
	for _, r := range s.Roles {
		r = strings.TrimSpace(r)
		if r == roleAll {
			roles = nil
			break
		}
		if r != "" && !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	return workers.Selector{Roles: roles, Runtime: strings.ToLower(strings.TrimSpace(s.Runtime)), Host: s.Host, Names: s.Names}
}

// describe says which workers a selector scopes, for messages.
func describeSelector(sel workers.Selector) string {
	parts := []string{"every role"}
	if len(sel.Roles) > 0 {
		parts[0] = "role " + strings.Join(sel.Roles, ",")
	}
	if sel.Runtime != "" {
		parts = append(parts, "runtime "+sel.Runtime)
	}
	if sel.Host != "" {
		parts = append(parts, "host "+sel.Host)
	}
	if len(sel.Names) > 0 {
		parts = append(parts, "name "+strings.Join(sel.Names, ","))
	}
	return strings.Join(parts, ", ")
}
