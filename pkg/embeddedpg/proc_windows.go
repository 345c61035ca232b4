package embeddedpg

import (
	"context"
	"errors"
	"os"
	"syscall"

	"github.com/attune-automation/attunectl/pkg/proc"
)

// The embedded server needs Unix sockets, flock and user switching; on
// Windows attunectl needs a configured database instead.
var errUnsupported = errors.New("the embedded database is not supported on windows: point attunectl at a server with --database-url / ATTUNE__DATABASE__URL")

const (
	sigFast      = syscall.SIGINT
	sigImmediate = syscall.SIGQUIT
	sigKill      = syscall.SIGKILL
)

func lockFile(context.Context, string) (func(), error) { return nil, errUnsupported }
func signalProcess(int, syscall.Signal) error          { return errUnsupported }
func processName(int) string                           { return "" }
func procAttr(runAs, bool) *syscall.SysProcAttr        { return nil }
func fileOwner(os.FileInfo) (uid, gid int, ok bool)    { return 0, 0, false }

// processAlive is proc.Alive, the one liveness check of attunectl.
func processAlive(pid int) bool { return proc.Alive(pid) }

// DataDirOwner has no meaning on Windows, where attunectl switches no user.
func DataDirOwner(string) (uint32, bool) { return 0, false }
