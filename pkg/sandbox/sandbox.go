// Package sandbox runs external commands on attunectl's behalf: the
// verification commands of runtime detection and the long-running sensor
// processes of the supervisor. Both come from rows of a database that every
// host trusts, so whoever can write those rows chooses what runs here; this
// package decides as whom, within which bounds, and what they can see.
//
// On Linux every command runs in a box under a small helper: attunectl's
// own binary re-executed through /proc/self/exe as "attunectl-sandbox";
// this package's init turns such a process into the helper before main
// runs, in attunectl and in every test binary that links the package.
//
//   - The box (box_linux.go) is a PID, mount and IPC namespace of its own,
//     the helper its PID 1: nothing the command starts outlives it, the
//     kernel ignores SIGKILL and SIGSTOP sent to the helper from inside,
//     and the command sees only its own processes. Its mounts are private:
//     a fresh /proc, tmpfs /tmp, /var/tmp and /dev/shm, HOME on that /tmp,
//     and Config.Hide (the worker's configuration and password files, the
//     embedded server's directories) read as empty. As root the helper
//     stays root (non-dumpable) and starts the command as the sandbox
//     user; as an ordinary user the box is also a user namespace that maps
//     only that user, in which the helper may mount and the command has no
//     capability. Where the host allows no namespaces, the helper runs as
//     the sandbox user without a box and finds daemons as a child
//     subreaper instead (Isolation says which).
//   - As root, each box also gets cgroups of its own (cgroup_linux.go:
//     processes and memory per box), which the helper joins before the
//     command exists, and, without sensor.run_as, a dynamic uid of its own
//     (DynamicUIDFirst…DynamicUIDLast, one no user, group, other box or
//     host process has; dynamic_linux.go).
//   - The helper sets no_new_privs and the open-files, memory and CPU-time
//     limits, then starts an exec shim ("attunectl-sandbox-exec", already
//     as the command's user) that sets the process limit on itself, drops
//     every capability and execs the command: every limit holds from the
//     command's first instruction.
//   - When the command exits (or is stopped), the helper kills everything
//     left in the box and reaps it, and only then exits; so when Wait
//     returns, nothing the command started is still running and its pipes
//     are closed.
//
// attunectl keeps inherited descriptors from every command, and outside a
// user namespace makes itself non-dumpable (PR_SET_DUMPABLE 0) before the
// first start: /proc/<attunectl>/environ, its memory and ptrace are then
// closed to processes of its own user. Nothing secret is ever put in a
// command's argv or environment: callers pass a scrubbed environment.
//
// As root, commands never run as root unless the operator said so:
// Config.RunAs names the user (sensor.run_as); "root" must be explicit.
// Commands run as another user get sensor.path as their PATH (Config.Path),
// never attunectl's own: root's PATH may name directories
// (/root/.pyenv/shims) the user cannot enter. What no box sees is a
// process the command asks someone else to start (at, systemd-run, a
// D-Bus service): the threat model (`attunectl help security`) says so.
//
// On other systems (the release builds macOS and Windows for the
// inspection commands) commands run directly in their own process group
// (Unix) without a helper; the user cannot be switched there.
//
// For a supervisor: New once (the user is resolved, the host probed), then
// per sensor Start with a Spec (path, argv, scrubbed env plus the sensor's
// own variables, *os.File pipes for stdout and stderr); Done or Wait tell
// when it and everything it started are gone; Stop(grace) sends SIGTERM to
// its process group, SIGKILL to everything in the box after grace, and
// kills the helper itself if that does not end it (the helper also ends
// everything by itself DefaultStopGrace after a SIGTERM, so a stop is
// bounded even if attunectl dies: the helper gets SIGTERM when it does).
// Run is the one-shot form used by verification: captured output, a
// timeout and a context.
package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Root is the Config.RunAs value that runs commands as root on purpose.
const Root = "root"

// The uids attunectl picks from when it runs as root and sensor.run_as is
// not set (Linux): systemd's range for dynamic users, which user databases
// leave free.
const (
	DynamicUIDFirst = 61184
	DynamicUIDLast  = 65519
)

// DynamicUserName is how a dynamic uid is named in messages and output.
const DynamicUserName = "attunectl-sandbox"

// Default limits: generous for a `--version` check and for a sensor
// written in an interpreter, small enough to stop a fork bomb, a file
// descriptor leak or a runaway allocation from taking the host down.
const (
	DefaultOpenFiles   = 1024
	DefaultProcesses   = 4096
	DefaultMemoryBytes = 4 << 30 // RLIMIT_DATA: heap and private writable mappings
	DefaultCPUSeconds  = 0       // no CPU-time limit: a long-running sensor would be killed
)

// Limits are resource limits applied to a command and everything it
// starts (each is inherited). Zero leaves the limit attunectl itself runs
// with.
type Limits struct {
	// OpenFiles is RLIMIT_NOFILE: open file descriptors per process.
	OpenFiles uint64 `json:"open_files"`
	// Processes is RLIMIT_NPROC: processes (threads, on Linux) of the
	// sandbox user as a whole, checked at fork. Root is exempt.
	Processes uint64 `json:"processes"`
	// MemoryBytes is RLIMIT_DATA: the heap and private writable mappings of
	// each process. (Address-space limits would break runtimes such as
	// node, which reserve large unused regions.)
	MemoryBytes uint64 `json:"memory_bytes"`
	// CPUSeconds is RLIMIT_CPU: CPU time per process; SIGXCPU then SIGKILL.
	CPUSeconds uint64 `json:"cpu_seconds"`
}

// DefaultLimits returns the documented defaults.
func DefaultLimits() Limits {
	return Limits{OpenFiles: DefaultOpenFiles, Processes: DefaultProcesses, MemoryBytes: DefaultMemoryBytes, CPUSeconds: DefaultCPUSeconds}
}

// User is whom commands run as.
type User struct {
	Name   string   `json:"name"`
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"-"`
	Home   string   `json:"home"`
}

// String is "nobody (uid 65534)".
func (u User) String() string { return fmt.Sprintf("%s (uid %d)", u.Name, u.UID) }

// Config says how a Sandbox runs commands.
type Config struct {
	// RunAs is the user commands run as: a name or a numeric uid from the
	// user database (sensor.run_as). Empty means attunectl's own user, or
	// as root a dynamic uid (one per box where there are boxes); Root runs
	// them as root on purpose.
	RunAs string
	// Limits apply to every command (sensor.limits.*).
	Limits Limits
	// Path is the PATH of commands run as another user than attunectl's
	// (sensor.path); default DefaultPATH.
	Path string
	// Hide are paths commands must not read: the worker's configuration
	// file, password files, the embedded server's directories. Inside a
	// box (see Isolation) they read as empty.
	Hide []string
	// TmpBytes bounds a box's private /tmp (default DefaultTmpBytes).
	TmpBytes uint64
	// euid replaces os.Geteuid in tests.
	euid func() int
}

// ErrRootWithoutRunAs is returned (wrapped) by New when attunectl runs as
// root and no user was chosen.
var ErrRootWithoutRunAs = errors.New("refusing to run commands from the database as root")

// Sandbox runs commands as one user within one set of limits. It is safe
// for concurrent use.
type Sandbox struct {
	user       User
	switchUser bool // start the helper with Credential (attunectl is root, the user is not)
	dynamic    bool // user is a uid attunectl picked (no sensor.run_as as root)
	limits     Limits
	path       string
	hide       []string
	tmpBytes   uint64
	isolation  Isolation
	box        bool // start commands in a box (namespaces)
	userns     bool // the box includes a user namespace (attunectl is not root)
	cgroups    bool // each box gets cgroups of its own
}

// New resolves cfg.RunAs. As root, an empty RunAs picks a dynamic uid (see
// the package comment); a RunAs that is not attunectl's own user needs root
// (only root can switch users).
func New(cfg Config) (*Sandbox, error) {
	euid := os.Geteuid
	if cfg.euid != nil {
		euid = cfg.euid
	}
	me := euid()
	path := cfg.Path
	if path == "" {
		path = DefaultPATH
	}
	if cfg.RunAs == "" {
		if me == 0 {
			if !canSwitchUser {
				return nil, fmt.Errorf("%w: set sensor.run_as (ATTUNE__SENSOR__RUN_AS, or --run-as) to root to run them as root on purpose (another user is supported on Linux only)", ErrRootWithoutRunAs)
			}
			u, err := dynamicUser()
			if err != nil {
				return nil, fmt.Errorf("%w: %v (set sensor.run_as, ATTUNE__SENSOR__RUN_AS or --run-as, to an unprivileged user)", ErrRootWithoutRunAs, err)
			}
			return finish(&Sandbox{user: u, switchUser: true, dynamic: true, limits: cfg.Limits, path: path}, cfg, me == 0)
		}
		u, err := lookupUID(me)
		if err != nil {
			return nil, err
		}
		return finish(&Sandbox{user: u, limits: cfg.Limits, path: path}, cfg, me == 0)
	}
	u, err := LookupUser(cfg.RunAs)
	if err != nil {
		return nil, err
	}
	switch {
	case int(u.UID) == me:
		return finish(&Sandbox{user: u, limits: cfg.Limits, path: path}, cfg, me == 0)
	case me != 0:
		cur := strconv.Itoa(me)
		if cu, err := lookupUID(me); err == nil {
			cur = cu.String()
		}
		return nil, fmt.Errorf("sensor.run_as is %s, but attunectl runs as %s: only root can run commands as another user (unset sensor.run_as, or run attunectl as %s)", u, cur, u.Name)
	case !canSwitchUser:
		return nil, fmt.Errorf("sensor.run_as is %s: running commands as another user is supported on Linux only (set sensor.run_as to root, or run attunectl as %s)", u, u.Name)
	}
	return finish(&Sandbox{user: u, switchUser: true, limits: cfg.Limits, path: path}, cfg, me == 0)
}

// finish completes a new Sandbox: the hidden paths, and the isolation this
// host allows, probed once per process.
func finish(s *Sandbox, cfg Config, root bool) (*Sandbox, error) {
	s.hide = append([]string(nil), cfg.Hide...)
	s.tmpBytes = cfg.TmpBytes
	s.isolation = probeIsolation(root)
	s.box = s.isolation.Box
	s.userns = s.isolation.UserNamespace
	s.cgroups = s.isolation.Cgroups
	return s, nil
}

// Isolation says which of the kernel's protections commands of this
// sandbox get on this host; Off lists the others with the reason.
type Isolation struct {
	// Box: their own PID, mount and IPC namespaces (private /tmp and
	// HOME, hidden secrets, nothing outlives them, other sensors
	// invisible).
	Box bool `json:"box"`
	// UserNamespace: the box is a user namespace (attunectl is not root).
	UserNamespace bool `json:"user_namespace"`
	// Cgroups: processes and memory bounded per box by cgroups (root).
	Cgroups bool `json:"cgroups"`
	// Off names each protection that is off and why.
	Off []string `json:"off,omitempty"`
}

// Isolation reports the protections commands of this sandbox get.
func (s *Sandbox) Isolation() Isolation { return s.isolation }

// User is whom this sandbox runs commands as.
func (s *Sandbox) User() User { return s.user }

// SwitchesUser reports whether commands run as another user than
// attunectl's own.
func (s *Sandbox) SwitchesUser() bool { return s.switchUser }

// Dynamic reports whether the user is a uid attunectl picked because
// sensor.run_as was not set as root.
func (s *Sandbox) Dynamic() bool { return s.dynamic }

// Env is the environment commands of this sandbox start with: environ
// scrubbed (ScrubEnv), and, when commands run as another user than
// attunectl's, PATH replaced by Config.Path: the user's own, one it can
// search.
func (s *Sandbox) Env(environ, passthrough []string) []string {
	env := ScrubEnv(environ, passthrough)
	if !s.switchUser {
		return env
	}
	out := env[:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PATH=") {
			out = append(out, kv)
		}
	}
	return append(out, "PATH="+s.path)
}

// Limits are the limits applied to every command.
func (s *Sandbox) Limits() Limits { return s.limits }

// users caches LookupUser: a sensor worker resolves its user once, so a
// later shortage of file descriptors (the user database is a file) does
// not turn into "no such user". A changed user entry needs a restart.
var users sync.Map // string -> User

// LookupUser finds a user by name or numeric uid in the user database,
// with its supplementary groups. A failure caused by a local shortage
// (EMFILE, ENOMEM, …) is a *StartError with Transient set.
func LookupUser(nameOrUID string) (User, error) {
	if u, ok := users.Load(nameOrUID); ok {
		return u.(User), nil
	}
	u, err := lookupUser(nameOrUID)
	if err == nil {
		users.Store(nameOrUID, u)
	}
	return u, err
}

func lookupUser(nameOrUID string) (User, error) {
	u, err := user.Lookup(nameOrUID)
	if err != nil {
		if _, convErr := strconv.Atoi(nameOrUID); convErr == nil {
			u, err = user.LookupId(nameOrUID)
		}
	}
	if err != nil {
		err = fmt.Errorf("sensor.run_as: looking up user %q: %w (name an existing user, e.g. nobody)", nameOrUID, err)
		if transientText(err) {
			return User{}, &StartError{Op: "resolving sensor.run_as", Err: err, Transient: true}
		}
		return User{}, err
	}
	return fromOSUser(u)
}

func lookupUID(uid int) (User, error) {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		// A uid without a passwd entry (containers) still runs commands.
		return User{Name: strconv.Itoa(uid), UID: uint32(uid), GID: uint32(os.Getegid()), Home: os.Getenv("HOME")}, nil
	}
	return fromOSUser(u)
}

func fromOSUser(u *user.User) (User, error) {
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return User{}, fmt.Errorf("user %s: uid %q or gid %q is not numeric", u.Username, u.Uid, u.Gid)
	}
	out := User{Name: u.Username, UID: uint32(uid), GID: uint32(gid), Home: u.HomeDir}
	if gids, err := u.GroupIds(); err == nil {
		for _, g := range gids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil && uint32(n) != out.GID {
				out.Groups = append(out.Groups, uint32(n))
			}
		}
	}
	return out, nil
}

// Spec is one command to start.
type Spec struct {
	// Path is the executable, absolute; Args is the full argv (Args[0]
	// included, usually what the command was called as).
	Path string
	Args []string
	// Env is the complete environment, already scrubbed by the caller.
	// When the sandbox switches users, HOME is replaced by the user's home.
	Env []string
	// Dir is the working directory; default "/".
	Dir string
	// Stdin is nil for /dev/null. Stdout and Stderr are nil for /dev/null;
	// an *os.File is handed to the command directly (no copying goroutine).
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// State is how a command ended.
type State struct {
	// Exited is true when the command exited by itself; ExitCode is then
	// its status.
	Exited   bool
	ExitCode int
	// Signal is the signal that killed it (0 when it exited).
	Signal int
	// Problem is set when the sandbox itself failed while the command ran
	// (its helper was killed); "" otherwise.
	Problem string
}

// String words the state: "exit 1", "killed by signal 9".
func (s State) String() string {
	switch {
	case s.Problem != "":
		return s.Problem
	case s.Exited:
		return fmt.Sprintf("exit %d", s.ExitCode)
	}
	return fmt.Sprintf("killed by signal %d", s.Signal)
}

// OpStartCommand is StartError.Op when the command itself could not be
// executed (not found, not executable, …), as opposed to the sandbox
// around it.
const OpStartCommand = "starting the command"

// StartError is why a command did not start.
type StartError struct {
	// Op is what failed ("creating a pipe", "starting the command", …).
	Op string
	// Err is the underlying error; Errno the errno when there is one.
	Err   error
	Errno int
	// Transient is true for a local shortage (EMFILE, ENFILE, ENOMEM,
	// EAGAIN): the command may well exist and work; try again later.
	Transient bool
}

func (e *StartError) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// Temporary reports a local shortage (Transient): a supervisor retries
// such a start without counting it as the command's failure.
func (e *StartError) Temporary() bool { return e.Transient }

// DefaultStopGrace is what a supervisor should wait between Stop's SIGTERM
// and Kill (Attune's sensor service waits 5 s).
const DefaultStopGrace = 5 * time.Second
