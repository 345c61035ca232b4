package runtimes

import (
	"strings"
)

// NormalizeRef is how a ref typed by an operator is compared with the
// table's: trimmed and lower case (refs are stored lower case).
func NormalizeRef(ref string) string { return strings.ToLower(strings.TrimSpace(ref)) }

// MissingRefs returns the requested refs (normalised) that are not among
// rts, in the order asked, without duplicates (with no rts: every
// requested ref, normalised, once).
func MissingRefs(requested []string, rts []Runtime) []string {
	have := map[string]bool{}
	for _, r := range rts {
		have[r.Ref] = true
	}
	var missing []string
	for _, ref := range requested {
		ref = NormalizeRef(ref)
		if !have[ref] {
			have[ref] = true
			missing = append(missing, ref)
		}
	}
	return missing
}

// NotFoundInSchema is the error for refs asked for that the runtime table
// of schema does not hold.
func NotFoundInSchema(refs []string, schema string) error {
	return &NotFoundError{Refs: refs, In: "schema " + schema, Hint: "see `attunectl runtime list`"}
}

// NotFoundInFile is the error for refs asked for that a manifest does not hold.
func NotFoundInFile(refs []string, path string) error {
	return &NotFoundError{Refs: refs, In: path}
}

// Error says which refs are missing, where, and what to do.
func (e *NotFoundError) Error() string {
	msg := "runtime " + strings.Join(e.Refs, ", ") + " not found"
	if e.In != "" {
		msg += " in " + e.In
	}
	switch {
	case e.Hint != "":
		return msg + ": " + e.Hint
	case e.In == "":
		return msg + ": check `attunectl runtime list`"
	}
	return msg
}
