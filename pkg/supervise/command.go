package supervise

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DefaultPacksDir is where pack sensors live when sensor.packs_dir is not
// set, as Attune's packs.base_dir defaults.
const DefaultPacksDir = "/opt/attune/packs"

// seedInterpreters are the interpreters of the default runtimes when their
// execution_config names none (migration 00031 also writes them).
var seedInterpreters = map[string]string{
	"core.sensor.python": "python3",
	"core.sensor.nodejs": "node",
	"core.sensor.shell":  "sh",
}

// Interpreter reads the interpreter of a runtime's execution_config:
// {"interpreter": "python3"} or {"interpreter": {"binary": "python3",
// "args": ["-u"]}}. A runtime without one runs its entrypoint itself
// (native). The default python, nodejs and shell runtimes fall back to
// python3, node and sh.
func Interpreter(runtimeRef string, executionConfig []byte) (argv []string, err error) {
	var ec struct {
		Interpreter json.RawMessage `json:"interpreter"`
	}
	if len(executionConfig) > 0 {
		if err := json.Unmarshal(executionConfig, &ec); err != nil {
			return nil, fmt.Errorf("runtime %s: execution_config is not a JSON object: %v", runtimeRef, err)
		}
	}
	raw := strings.TrimSpace(string(ec.Interpreter))
	switch {
	case raw == "" || raw == "null":
		if b, ok := seedInterpreters[runtimeRef]; ok {
			return []string{b}, nil
		}
		return nil, nil
	case strings.HasPrefix(raw, `"`):
		var b string
		_ = json.Unmarshal(ec.Interpreter, &b)
		if b == "" {
			return nil, fmt.Errorf("runtime %s: execution_config.interpreter is empty", runtimeRef)
		}
		return []string{b}, nil
	default:
		var o struct {
			Binary string   `json:"binary"`
			Args   []string `json:"args"`
		}
		if err := json.Unmarshal(ec.Interpreter, &o); err != nil || o.Binary == "" {
			return nil, fmt.Errorf("runtime %s: execution_config.interpreter must be a binary name or {\"binary\": …, \"args\": […]}", runtimeRef)
		}
		return append([]string{o.Binary}, o.Args...), nil
	}
}

// EntrypointPath resolves a sensor's entrypoint: an absolute path as it
// is, otherwise <packsDir>/<pack>/sensors/<entrypoint> (Attune's layout).
// A relative entrypoint may not climb out of the pack's sensors directory.
func EntrypointPath(packsDir, packRef, entrypoint string) (string, error) {
	if entrypoint == "" {
		return "", fmt.Errorf("the sensor has no entrypoint")
	}
	if filepath.IsAbs(entrypoint) {
		return filepath.Clean(entrypoint), nil
	}
	if packsDir == "" {
		packsDir = DefaultPacksDir
	}
	base := filepath.Join(packsDir, packRef, "sensors")
	p := filepath.Join(base, entrypoint)
	if rel, err := filepath.Rel(base, p); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("entrypoint %q leaves the pack's sensors directory %s", entrypoint, base)
	}
	return p, nil
}

// CommandLine is the argv of an external sensor: the runtime's interpreter
// and the entrypoint, or the entrypoint alone (native). The second result,
// when not empty, says why the sensor cannot run here (the entrypoint is
// missing, or a native entrypoint is not executable): a reason shown on the
// sensor rather than a crash loop.
func CommandLine(runtimeRef string, executionConfig []byte, packsDir, packRef, entrypoint string) ([]string, string) {
	interp, err := Interpreter(runtimeRef, executionConfig)
	if err != nil {
		return nil, err.Error()
	}
	path, err := EntrypointPath(packsDir, packRef, entrypoint)
	if err != nil {
		return nil, err.Error()
	}
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return nil, fmt.Sprintf("entrypoint %s: %v (install the pack under sensor.packs_dir, or give an absolute entrypoint)", path, unwrapPathError(err))
	case fi.IsDir():
		return nil, fmt.Sprintf("entrypoint %s is a directory", path)
	case len(interp) == 0 && fi.Mode().Perm()&0o111 == 0:
		return nil, fmt.Sprintf("entrypoint %s is not executable (chmod +x it, or give the runtime an interpreter)", path)
	}
	if why := writableByAnyone(path, fi); why != "" {
		return nil, why
	}
	return append(interp, path), ""
}

// writableByAnyone says why what path runs could be changed by any user of
// the host: the file itself writable by others, or a directory above it
// writable by others without the sticky bit (anyone could replace the
// file); "" when neither.
func writableByAnyone(path string, fi os.FileInfo) string {
	if fi.Mode().Perm()&0o002 != 0 {
		return fmt.Sprintf("entrypoint %s is writable by every user: anyone could change what the sensor runs (chmod o-w %s)", path, path)
	}
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		if di, err := os.Stat(dir); err == nil && di.Mode().Perm()&0o002 != 0 && di.Mode()&os.ModeSticky == 0 {
			return fmt.Sprintf("entrypoint %s is in %s, which every user may write: anyone could replace what the sensor runs (chmod o-w %s, or move the entrypoint)", path, dir, dir)
		}
		if dir == filepath.Dir(dir) {
			return ""
		}
	}
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
