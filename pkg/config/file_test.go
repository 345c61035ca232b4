package config

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/testsupport"
)

// childEnv makes the test binary load one config file and print the result
// as JSON, for the tests that run it as another user.
const childEnv = "ATTUNECTL_CONFIG_TEST_LOAD"

func TestMain(m *testing.M) {
	if path, ok := os.LookupEnv(childEnv); ok {
		cfg, info, err := Load(LoadOptions{Path: path})
		res := map[string]any{"file": info.File, "warnings": info.Warnings}
		if err != nil {
			res["error"] = err.Error()
		} else {
			res["url"] = cfg.Database.URL
		}
		json.NewEncoder(os.Stdout).Encode(res)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// lookupUser returns the uid and gid of a real OS user the tests need.
func lookupUser(t *testing.T, name string) (int, int) {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("these tests need the OS user %s: %v", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid
}

func requireRoot(t *testing.T) {
	t.Helper()
	testsupport.RequireRoot(t, "it gives files to other users")
}

// publicDir is a directory every user can traverse, removed at the end.
func publicDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "attunectl-cfg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// placeFile writes a config file with mode and owner.
func placeFile(t *testing.T, path, body string, mode os.FileMode, uid, gid int) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
}

const evilConfig = "database:\n  url: postgres://attacker.example/attune\n"

func TestConfigFileOfAnotherUserIsIgnored(t *testing.T) {
	requireRoot(t)
	nobody, nogroup := lookupUser(t, "nobody")
	dir := publicDir(t)
	t.Chdir(dir)
	placeFile(t, "config.yaml", evilConfig, 0o644, nobody, nogroup)

	for _, opts := range []LoadOptions{{}, {Path: filepath.Join(dir, "config.yaml")}, {Environ: []string{EnvConfigFile + "=config.yaml"}}} {
		cfg, info, err := Load(opts)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Database.URL != "" || info.File != "" {
			t.Errorf("%+v: the file of user nobody was obeyed: url=%q file=%q", opts, cfg.Database.URL, info.File)
		}
		if len(info.Warnings) != 1 || !strings.Contains(info.Warnings[0], "ignoring config file ") ||
			!strings.Contains(info.Warnings[0], "config.yaml: it is owned by nobody (uid 65534), not by you (root (uid 0)) or root") {
			t.Errorf("%+v: warnings %q", opts, info.Warnings)
		}
	}
}

func TestConfigFileSymlinkOfAnotherUserIsIgnored(t *testing.T) {
	requireRoot(t)
	nobody, nogroup := lookupUser(t, "nobody")
	dir := publicDir(t)
	target := filepath.Join(dir, "root-owned.yaml")
	placeFile(t, target, evilConfig, 0o644, 0, 0)
	link := filepath.Join(dir, "config.yaml")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, nobody, nogroup); err != nil {
		t.Fatal(err)
	}
	cfg, info, err := Load(LoadOptions{Path: link})
	if err != nil || cfg.Database.URL != "" || len(info.Warnings) != 1 ||
		!strings.Contains(info.Warnings[0], "it is a symbolic link owned by nobody") {
		t.Errorf("url=%q warnings=%q err=%v", cfg.Database.URL, info.Warnings, err)
	}
}

func TestConfigFileWritableByOthersIsIgnored(t *testing.T) {
	requireRoot(t)
	dir := publicDir(t)
	for _, tt := range []struct {
		mode os.FileMode
		who  string
	}{
		{0o666, "its group and every user (mode 0666)"},
		{0o646, "every user (mode 0646)"},
		{0o664, "its group (mode 0664)"},
	} {
		path := filepath.Join(dir, fmt.Sprintf("config-%o.yaml", tt.mode))
		placeFile(t, path, evilConfig, tt.mode, 0, 0)
		cfg, info, err := Load(LoadOptions{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		want := "ignoring config file " + path + ": it is writable by " + tt.who
		if cfg.Database.URL != "" || len(info.Warnings) != 1 || !strings.Contains(info.Warnings[0], want) {
			t.Errorf("mode %o: url=%q warnings=%q, want %q", tt.mode, cfg.Database.URL, info.Warnings, want)
		}
	}
}

func TestConfigFileWithPasswordReadableByOthersWarns(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		body string
		mode os.FileMode
		warn bool
	}{
		{"database:\n  url: postgres://attune:hunter2@db/attune\n", 0o644, true},
		{"database:\n  url: host=db password='hunter 2'\n", 0o604, true},
		{"database:\n  url: postgres://db/attune?password=hunter2\n", 0o644, true},
		{"database:\n  url: postgres://attune:hunter2@db/attune\n", 0o640, false},
		{"database:\n  url: postgres://attune:hunter2@db/attune\n", 0o600, false},
		{"database:\n  url: postgres://attune@db/attune\n", 0o644, false},
	}
	for i, tt := range tests {
		path := filepath.Join(dir, fmt.Sprintf("c%d.yaml", i))
		placeFile(t, path, tt.body, tt.mode, os.Geteuid(), os.Getegid())
		cfg, info, err := Load(LoadOptions{Path: path})
		if err != nil || cfg.Database.URL == "" || info.File != path {
			t.Fatalf("%d: not used: %+v %v", i, info, err)
		}
		warned := len(info.Warnings) == 1 && strings.Contains(info.Warnings[0], "holds a password and every user of this host can read it")
		if warned != tt.warn || (!tt.warn && len(info.Warnings) > 0) {
			t.Errorf("%d: mode %o, warnings %q, want a warning: %v", i, tt.mode, info.Warnings, tt.warn)
		}
	}
}

func TestConfigFileFIFOAndDeviceRefused(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "config.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for path, what := range map[string]string{fifo: "a FIFO", "/dev/zero": "a character device", t.TempDir(): "a directory"} {
		done := make(chan error, 1)
		go func() { _, _, err := Load(LoadOptions{Path: path}); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), path+" is not a regular file (it is "+what+"): refusing to read it") {
				t.Errorf("%s: err = %v", path, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("loading %s blocked", path)
		}
	}
	// ./config.yaml as a FIFO is refused too, not waited on.
	t.Chdir(filepath.Dir(fifo))
	if _, _, err := Load(LoadOptions{}); err == nil || !strings.Contains(err.Error(), "a FIFO") {
		t.Errorf("./config.yaml FIFO: err = %v", err)
	}
}

// TestConfigFileOwnerIsTheInvokingUser runs Load as the OS user nobody: its
// own file and root's are obeyed, another user's (daemon's) is not.
func TestConfigFileOwnerIsTheInvokingUser(t *testing.T) {
	requireRoot(t)
	nobody, nogroup := lookupUser(t, "nobody")
	daemon, daemonGroup := lookupUser(t, "daemon")
	dir := publicDir(t)
	bin := filepath.Join(dir, "config.test")
	copyExecutable(t, os.Args[0], bin)

	files := map[string]struct {
		uid, gid int
		obeyed   bool
	}{
		"own.yaml":    {nobody, nogroup, true},
		"root.yaml":   {0, 0, true},
		"daemon.yaml": {daemon, daemonGroup, false},
	}
	for name, f := range files {
		path := filepath.Join(dir, name)
		placeFile(t, path, "database:\n  url: postgres://"+strings.TrimSuffix(name, ".yaml")+".example/attune\n", 0o644, f.uid, f.gid)
		cmd := exec.Command(bin)
		cmd.Dir = dir
		cmd.Env = []string{childEnv + "=" + path, "PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(nobody), Gid: uint32(nogroup)}}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: running as nobody: %v", name, err)
		}
		var res struct {
			File     string   `json:"file"`
			URL      string   `json:"url"`
			Warnings []string `json:"warnings"`
			Error    string   `json:"error"`
		}
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("%s: %v: %s", name, err, out)
		}
		if f.obeyed && (res.File != path || res.URL == "" || len(res.Warnings) > 0 || res.Error != "") {
			t.Errorf("%s as nobody: %+v, want it obeyed", name, res)
		}
		if !f.obeyed && (res.URL != "" || len(res.Warnings) != 1 ||
			!strings.Contains(res.Warnings[0], "owned by daemon (uid 1), not by you (nobody (uid 65534)) or root")) {
			t.Errorf("%s as nobody: %+v, want it ignored with a warning", name, res)
		}
	}
}

func copyExecutable(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
