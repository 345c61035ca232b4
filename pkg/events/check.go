package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/supervise"
)

// Checker makes the checks Attune's API makes before it writes an event
// (crates/api/src/routes/events.rs, create_event): the trigger exists, is
// on (effective_enabled, not retired) and belongs to the posting sensor;
// trigger_instance_id "rule_<id>" names a rule of that trigger, whose id
// and ref the event then carries; and, where the trigger has an
// out_schema, the payload satisfies it (a check Attune leaves out). A
// trigger's row and compiled schema, and a rule's, are kept a second, so a
// sensor's stream of events costs a read or two a second.
type Checker struct {
	db    *database.DB
	mu    sync.Mutex
	cache map[string]checkedTrigger
	rules map[int64]checkedRule
}

// checkedRule is a rule as a check last read it.
type checkedRule struct {
	read    time.Time
	exists  bool
	ref     string
	trigger int64
}

type checkedTrigger struct {
	read    time.Time
	exists  bool
	id      int64
	sensor  int64
	on      bool
	schema  *jsonschema.Schema
	badSpec string // the out_schema does not compile: said once per event
}

// checkTTL is how long a trigger's row is trusted.
const checkTTL = time.Second

// NewChecker returns the checker of the event endpoint of a worker.
func NewChecker(db *database.DB) *Checker {
	return &Checker{db: db, cache: map[string]checkedTrigger{}, rules: map[int64]checkedRule{}}
}

func (c *Checker) trigger(ctx context.Context, ref string) (checkedTrigger, error) {
	c.mu.Lock()
	t, ok := c.cache[ref]
	c.mu.Unlock()
	if ok && time.Since(t.read) < checkTTL {
		return t, nil
	}
	t = checkedTrigger{read: time.Now()}
	var sensor *int64
	var schema []byte
	err := c.db.Pool.QueryRow(ctx, `SELECT t.id, t.sensor, `+c.db.Facts.On("trigger", "t")+`, to_jsonb(t)->'out_schema'
		FROM trigger t WHERE t.ref = $1`, ref).Scan(&t.id, &sensor, &t.on, &schema)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return t, fmt.Errorf("reading trigger %s: %w", ref, err)
	default:
		t.exists = true
		if sensor != nil {
			t.sensor = *sensor
		}
		t.schema, t.badSpec = compileSchema(ref, schema)
	}
	c.mu.Lock()
	c.cache[ref] = t
	c.mu.Unlock()
	return t, nil
}

func (c *Checker) rule(ctx context.Context, id int64) (checkedRule, error) {
	c.mu.Lock()
	r, ok := c.rules[id]
	c.mu.Unlock()
	if ok && time.Since(r.read) < checkTTL {
		return r, nil
	}
	r = checkedRule{read: time.Now()}
	var trig *int64
	err := c.db.Pool.QueryRow(ctx, `SELECT r.ref, r.trigger FROM rule r WHERE r.id = $1`, id).Scan(&r.ref, &trig)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return r, fmt.Errorf("reading rule %d: %w", id, err)
	default:
		r.exists = true
		if trig != nil {
			r.trigger = *trig
		}
	}
	c.mu.Lock()
	c.rules[id] = r
	c.mu.Unlock()
	return r, nil
}

// compileSchema compiles a trigger's out_schema (nil when it has none).
func compileSchema(ref string, raw []byte) (*jsonschema.Schema, string) {
	if len(raw) == 0 || string(raw) == "null" || string(raw) == "{}" {
		return nil, ""
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err.Error()
	}
	doc = fromOutputMap(doc)
	comp := jsonschema.NewCompiler()
	url := "attune:trigger/" + ref + "/out_schema"
	if err := comp.AddResource(url, doc); err != nil {
		return nil, err.Error()
	}
	s, err := comp.Compile(url)
	if err != nil {
		return nil, err.Error()
	}
	return s, ""
}

// fromOutputMap turns the flat form Attune's pack and catalog YAML write
// into out_schema — {"field": {"type": …, "required": true}, …}, the
// trigger's `output:` map — into the JSON Schema it means: an object with
// those properties, the ones marked required required. A document that is
// already a JSON Schema (it has "type", "properties", "$schema", …) is
// returned as it is.
func fromOutputMap(doc any) any {
	m, ok := doc.(map[string]any)
	if !ok || len(m) == 0 {
		return doc
	}
	for _, k := range []string{"type", "properties", "$schema", "$ref", "allOf", "anyOf", "oneOf", "items", "required"} {
		if _, ok := m[k]; ok {
			return doc
		}
	}
	props := map[string]any{}
	var required []any
	for k, v := range m {
		field, ok := v.(map[string]any)
		if !ok {
			return doc
		}
		if _, ok := field["type"]; !ok {
			return doc
		}
		clean := map[string]any{}
		for fk, fv := range field {
			if fk == "required" {
				if b, ok := fv.(bool); ok && b {
					required = append(required, k)
				}
				continue
			}
			clean[fk] = fv
		}
		props[k] = clean
	}
	out := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		out["required"] = required
	}
	return out
}

// Check implements supervise.EventChecker.
func (c *Checker) Check(ctx context.Context, sensorID int64, triggerRef, instance string, payload []byte) (supervise.CheckedEvent, error) {
	var out supervise.CheckedEvent
	t, err := c.trigger(ctx, triggerRef)
	if err != nil {
		return out, err
	}
	refuse := func(status int, format string, args ...any) (supervise.CheckedEvent, error) {
		return out, &supervise.CheckError{Status: status, Message: fmt.Sprintf(format, args...)}
	}
	switch {
	case !t.exists:
		return refuse(http.StatusNotFound, "Trigger '%s' not found", triggerRef)
	case !t.on:
		return refuse(http.StatusBadRequest, "Trigger '%s' is disabled", triggerRef)
	case t.sensor != sensorID:
		return refuse(http.StatusForbidden, "this sensor does not own trigger '%s'", triggerRef)
	}
	if instance != "" {
		rest, ok := strings.CutPrefix(instance, "rule_")
		id, err := strconv.ParseInt(rest, 10, 64)
		if !ok || err != nil || id <= 0 {
			return refuse(http.StatusBadRequest, "trigger_instance_id must use the format rule_<positive numeric id>")
		}
		if c.db.Facts.Rules() {
			r, err := c.rule(ctx, id)
			switch {
			case err != nil:
				return out, err
			case !r.exists:
				return refuse(http.StatusBadRequest, "trigger_instance_id references unknown rule %d", id)
			case r.trigger != t.id:
				return refuse(http.StatusBadRequest, "Rule '%s' does not use trigger '%s'", r.ref, triggerRef)
			}
			out.RuleID, out.RuleRef = id, r.ref
		}
	}
	if t.badSpec != "" {
		return refuse(http.StatusUnprocessableEntity, "trigger '%s' has an out_schema that is not a valid JSON Schema (%s): fix the trigger", triggerRef, t.badSpec)
	}
	if t.schema != nil {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
		if err != nil {
			return refuse(http.StatusBadRequest, "the payload is not JSON: %v", err)
		}
		if err := t.schema.Validate(doc); err != nil {
			var ve *jsonschema.ValidationError
			if errors.As(err, &ve) {
				return refuse(http.StatusUnprocessableEntity, "the payload does not satisfy trigger '%s''s out_schema: %s", triggerRef, validationMessage(ve))
			}
			return refuse(http.StatusUnprocessableEntity, "the payload does not satisfy trigger '%s''s out_schema: %v", triggerRef, err)
		}
	}
	return out, nil
}

// validationMessage names the failing path of the first leaf error
// ("/count: got string, want integer").
func validationMessage(ve *jsonschema.ValidationError) string {
	for len(ve.Causes) > 0 {
		ve = ve.Causes[0]
	}
	path := "/" + strings.Join(ve.InstanceLocation, "/")
	return path + ": " + ve.ErrorKind.LocalizedString(englishPrinter)
}

var englishPrinter = message.NewPrinter(language.English)
