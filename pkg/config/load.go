package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment override: ATTUNE__SECTION__KEY.
const EnvPrefix = "ATTUNE__"

// EnvConfigFile names the config file when --config is not given.
const EnvConfigFile = "ATTUNE_CONFIG"

// maxFileSize caps the config file read; a config is a few KiB.
const maxFileSize = 1 << 20

// Override sets one key (dotted, e.g. "database.url") to a string value, the
// way a flag or an environment variable does.
type Override struct {
	Key    string
	Value  string
	Source string // e.g. "--database-url" or "ATTUNE__DATABASE__URL", for messages
}

// LoadOptions says where configuration comes from.
type LoadOptions struct {
	// Path is --config; empty means ATTUNE_CONFIG, else ./config.yaml if present.
	Path string
	// Environ is the process environment (os.Environ() in production).
	Environ []string
	// Flags are applied last, in order.
	Flags []Override
}

// Loaded reports where the configuration came from.
type Loaded struct {
	// File is the config file read, or "" when none was.
	File string
	// Env lists the ATTUNE__ variables that were applied.
	Env []string
	// Warnings are about the config file: ignored because another user owns
	// it or may write it, or readable by everyone while it holds a
	// password. The caller prints them.
	Warnings []string
}

// Load builds the configuration: defaults, then the file, then ATTUNE__
// environment variables, then flags; and validates the result.
func Load(opts LoadOptions) (*Config, Loaded, error) {
	cfg := Default()
	var info Loaded

	path, explicit := opts.Path, opts.Path != ""
	if path == "" {
		if p := lookupEnv(opts.Environ, EnvConfigFile); p != "" {
			path, explicit = p, true
		} else {
			path = "config.yaml"
		}
	}
	var misspelled *MisspelledSectionError
	data, warnings, err := readConfigFile(path)
	info.Warnings = warnings
	switch {
	case errors.Is(err, errIgnored):
		// Not obeyed; the warning says why. Defaults, env and flags only.
	case err == nil:
		unknown, m, err := decodeFile(data, cfg)
		misspelled = m
		if err != nil {
			return nil, info, fmt.Errorf("reading config file %s: %w (fix the file or point --config elsewhere)", path, err)
		}
		for _, u := range unknown {
			info.Warnings = append(info.Warnings, "config file "+path+", "+u)
		}
		info.File = path
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		// No ./config.yaml: defaults, env and flags only.
	default:
		return nil, info, fmt.Errorf("reading config file: %w (check --config or %s)", err, EnvConfigFile)
	}

	info.Warnings = append(info.Warnings, unknownEnvKeys(opts.Environ)...)
	for _, kv := range opts.Environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		key := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, EnvPrefix), "__", "."))
		if !knownKey(key) {
			continue // a key of another Attune service
		}
		if err := Set(cfg, key, value); err != nil {
			return nil, info, fmt.Errorf("environment variable %s: %w", name, err)
		}
		info.Env = append(info.Env, name)
	}
	sort.Strings(info.Env)

	for _, o := range opts.Flags {
		if err := Set(cfg, o.Key, o.Value); err != nil {
			return nil, info, fmt.Errorf("%s: %w", o.Source, err)
		}
	}
	if misspelled != nil && cfg.Database.URL == "" {
		return nil, info, fmt.Errorf("reading config file %s: %w", path, misspelled)
	}
	if err := cfg.Validate(); err != nil {
		return nil, info, err
	}
	return cfg, info, nil
}

// decodeFile reads Attune's YAML: unknown sections are ignored, type errors
// in known keys are reported with their line, and the keys under
// attunectl's own sections that it does not know are returned (warnings,
// so that Attune's own keys in a shared file still load).
func decodeFile(data []byte, cfg *Config) (unknown []string, misspelled *MisspelledSectionError, err error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil, nil
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, nil, err
	}
	if len(root.Content) == 0 {
		return nil, nil, nil
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("line %d: the top level must be a mapping of sections (database:, sensor:, …)", doc.Line)
	}
	if err := doc.Decode(cfg); err != nil {
		return nil, nil, err
	}
	return unknownFileKeys(doc), misspelledDatabase(doc), nil
}

func lookupEnv(environ []string, name string) string {
	for i := len(environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(environ[i], "="); ok && k == name {
			return v
		}
	}
	return ""
}

// Keys lists every configuration key, dotted, in file order. The
// configuration reference (`attunectl help configuration`) is checked
// against it.
func Keys() []string {
	var keys []string
	walkKeys(reflect.TypeOf(Config{}), "", &keys)
	return keys
}

func walkKeys(t reflect.Type, prefix string, keys *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := yamlName(f)
		if name == "" {
			continue
		}
		key := prefix + name
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(Seconds(0)) {
			walkKeys(f.Type, key+".", keys)
			continue
		}
		*keys = append(*keys, key)
	}
}

func yamlName(f reflect.StructField) string {
	tag := f.Tag.Get("yaml")
	name, _, _ := strings.Cut(tag, ",")
	if name == "-" {
		return ""
	}
	return name
}

func knownKey(key string) bool {
	if strings.HasPrefix(key, "sensor.capabilities.") {
		return true
	}
	for _, k := range Keys() {
		if k == key {
			return true
		}
	}
	return false
}

// Set assigns a string value to a dotted key, converting it to the key's
// type. Lists are comma-separated; sensor.capabilities.runtimes is a list,
// other sensor.capabilities.* keys are stored as given.
func Set(cfg *Config, key, value string) error {
	if rest, ok := strings.CutPrefix(key, "sensor.capabilities."); ok && rest != "" && !strings.Contains(rest, ".") {
		if cfg.Sensor.Capabilities == nil {
			cfg.Sensor.Capabilities = map[string]any{}
		}
		if rest == "runtimes" {
			list := splitList(value)
			items := make([]any, len(list))
			for i, s := range list {
				items[i] = s
			}
			cfg.Sensor.Capabilities[rest] = items
		} else {
			cfg.Sensor.Capabilities[rest] = value
		}
		return nil
	}
	v := reflect.ValueOf(cfg).Elem()
	for _, part := range strings.Split(key, ".") {
		if v.Kind() != reflect.Struct {
			return fmt.Errorf("unknown configuration key %q (see `attunectl config view` for the keys)", key)
		}
		found := false
		for i := 0; i < v.NumField(); i++ {
			if yamlName(v.Type().Field(i)) == part {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return fmt.Errorf("unknown configuration key %q (see `attunectl config view` for the keys)", key)
		}
	}
	switch v.Interface().(type) {
	case Seconds:
		d, err := ParseSeconds(value)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		v.Set(reflect.ValueOf(d))
		return nil
	case []string:
		v.Set(reflect.ValueOf(splitList(value)))
		return nil
	case map[string]string:
		m := map[string]string{}
		for _, kv := range splitList(value) {
			k, val, ok := strings.Cut(kv, "=")
			if !ok || strings.TrimSpace(k) == "" {
				return fmt.Errorf("%s: %q must be key=value (e.g. zone=eu,disk=ssd)", key, kv)
			}
			m[strings.TrimSpace(k)] = strings.TrimSpace(val)
		}
		v.Set(reflect.ValueOf(m))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(value)
	case reflect.Int, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		if err != nil {
			return fmt.Errorf("%s: %q is not a whole number", key, value)
		}
		v.SetInt(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(value))
		if err != nil {
			return fmt.Errorf("%s: %q is not true or false", key, value)
		}
		v.SetBool(b)
	default:
		return fmt.Errorf("%s: cannot be set from a flag or environment variable; set it in the config file", key)
	}
	return nil
}

// splitList splits a comma-separated list, trimming blanks and dropping empties.
func splitList(s string) []string {
	// A variable that is set, even to nothing, sets the list: an empty one
	// (for sensor.verification.allowed_binaries, "allow nothing"), never
	// "unset", which would turn an allow-list off.
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
