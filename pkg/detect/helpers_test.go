package detect

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/attune-automation/attunectl/pkg/runtimes"
	"github.com/attune-automation/attunectl/pkg/sandbox"
)

const fakebinDir = "../../testdata/fakebin"

// fakePATH copies testdata/fakebin into a temporary directory (mode 0755,
// whatever git kept) and returns it, to be used as the only PATH entry.
func fakePATH(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(fakebinDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".md") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(fakebinDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// writeScript writes an executable #!/bin/sh script and returns its path.
// The script is the binary under test; the engine runs it by argv.
func writeScript(t testing.TB, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// envWithPATH is an Environ with dir first on PATH, then /usr/bin:/bin for
// the scripts' own tools (sleep, env, yes), plus extra.
func envWithPATH(dir string, extra ...string) func() []string {
	return func() []string { return append([]string{"PATH=" + dir + ":/usr/bin:/bin", "HOME=/root"}, extra...) }
}

// selfRunAs runs commands as the test process itself: root on purpose as
// root, otherwise that user.
func selfRunAs() string {
	if os.Geteuid() == 0 {
		return sandbox.Root
	}
	return ""
}

func cmd(binary string, args ...string) runtimes.Command {
	return runtimes.Command{Binary: binary, Args: args}
}

func rt(ref, name string, cmds ...runtimes.Command) runtimes.Runtime {
	return runtimes.Runtime{Ref: ref, Name: name, Type: runtimes.TypeSensor, Verification: &runtimes.Verification{Commands: cmds}}
}

func always(ref, name string) runtimes.Runtime {
	return runtimes.Runtime{Ref: ref, Name: name, Type: runtimes.TypeSensor, Verification: &runtimes.Verification{AlwaysAvailable: true}}
}

func loadSeed(t testing.TB) []runtimes.Runtime {
	t.Helper()
	data, err := os.ReadFile("../../testdata/manifests/good/seed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rts, err := runtimes.ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	return rts
}

// groupMembers lists the pids whose process group is pgid (from /proc).
func groupMembers(t testing.TB, pgid int) []int {
	t.Helper()
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may contain spaces: cut after the last ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 3 || f[0] == "Z" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			out = append(out, pid)
		}
	}
	return out
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	return len(f) > 0 && f[0] != "Z" && syscall.Kill(pid, 0) == nil
}
