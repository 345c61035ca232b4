package runtimes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/attune-automation/attunectl/pkg/manifest"
)

// ParseDistributions reads the verification metadata out of a runtime row's
// distributions column. It is lenient on purpose, because the row may have
// been written by Attune or another tool: unknown keys are ignored; numbers
// may be JSON numbers or numeric strings; args may be a single string. A
// missing, null or empty column, or one without a "verification" key, gives
// (nil, nil). What cannot be understood at all (verification not an object,
// a binary that is not a string) is an error; callers keep the runtime and
// report it unavailable with that error.
//
// The engine re-checks every binary with ValidateBinary before running it,
// so leniency here never lets a shell command through.
func ParseDistributions(raw []byte) (*Verification, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var dist map[string]json.RawMessage
	if err := json.Unmarshal(raw, &dist); err != nil {
		return nil, fmt.Errorf("distributions is not a JSON object: %w", err)
	}
	vraw, ok := dist["verification"]
	if !ok || string(bytes.TrimSpace(vraw)) == "null" {
		return nil, nil
	}
	var lv struct {
		AlwaysAvailable json.RawMessage   `json:"always_available"`
		CheckRequired   json.RawMessage   `json:"check_required"`
		Commands        []json.RawMessage `json:"commands"`
	}
	if err := json.Unmarshal(vraw, &lv); err != nil {
		return nil, fmt.Errorf("verification: %w", err)
	}
	v := &Verification{}
	var err error
	if v.AlwaysAvailable, _, err = lenientBool(lv.AlwaysAvailable); err != nil {
		return nil, fmt.Errorf("verification.always_available: %w", err)
	}
	if b, set, err := lenientBool(lv.CheckRequired); err != nil {
		return nil, fmt.Errorf("verification.check_required: %w", err)
	} else if set {
		v.CheckRequired = &b
	}
	for i, craw := range lv.Commands {
		c, field, err := lenientCommand(craw)
		if err != nil {
			return nil, fmt.Errorf("verification.commands[%d]%s: %w", i, field, err)
		}
		v.Commands = append(v.Commands, c)
	}
	return v, nil
}

// lenientCommand decodes one command; field is ".binary" etc. on error.
func lenientCommand(raw json.RawMessage) (c Command, field string, err error) {
	var lc struct {
		Binary   json.RawMessage `json:"binary"`
		Args     json.RawMessage `json:"args"`
		ExitCode json.RawMessage `json:"exit_code"`
		Pattern  json.RawMessage `json:"pattern"`
		Priority json.RawMessage `json:"priority"`
		Optional json.RawMessage `json:"optional"`
	}
	if err := json.Unmarshal(raw, &lc); err != nil {
		return c, "", fmt.Errorf("must be an object, got %s", manifest.Truncate(string(raw), 40))
	}
	if c.Binary, err = lenientString(lc.Binary); err != nil {
		return c, ".binary", err
	}
	if c.Pattern, err = lenientString(lc.Pattern); err != nil {
		return c, ".pattern", err
	}
	if c.Args, err = lenientArgs(lc.Args); err != nil {
		return c, ".args", err
	}
	if c.ExitCode, err = lenientInt(lc.ExitCode); err != nil {
		return c, ".exit_code", err
	}
	if c.Priority, err = lenientInt(lc.Priority); err != nil {
		return c, ".priority", err
	}
	if c.Optional, _, err = lenientBool(lc.Optional); err != nil {
		return c, ".optional", err
	}
	return c, "", nil
}

func isJSONNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

func lenientString(raw json.RawMessage) (string, error) {
	if isJSONNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("must be a string, got %s", manifest.Truncate(string(raw), 40))
	}
	return s, nil
}

func lenientArgs(raw json.RawMessage) ([]string, error) {
	if isJSONNull(raw) {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("must be a list of strings, got %s", manifest.Truncate(string(raw), 40))
	}
	return list, nil
}

func lenientInt(raw json.RawMessage) (*int, error) {
	if isJSONNull(raw) {
		return nil, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, fmt.Errorf("must be a number, got %s", manifest.Truncate(string(raw), 40))
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || f != math.Trunc(f) || f < math.MinInt32 || f > math.MaxInt32 {
		return nil, fmt.Errorf("must be an integer, got %s", manifest.Truncate(string(raw), 40))
	}
	i := int(f)
	return &i, nil
}

// lenientBool accepts true/false and the strings "true"/"false"; null or
// absent is (false, unset).
func lenientBool(raw json.RawMessage) (val, set bool, err error) {
	if isJSONNull(raw) {
		return false, false, nil
	}
	if err := json.Unmarshal(raw, &val); err == nil {
		return val, true, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if b, err := strconv.ParseBool(s); err == nil {
			return b, true, nil
		}
	}
	return false, false, fmt.Errorf("must be true or false, got %s", manifest.Truncate(string(raw), 40))
}
