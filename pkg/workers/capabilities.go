package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/attune-automation/attunectl/pkg/database"
)

// UpdateCapabilities replaces the capabilities this instance advertises and,
// once registered, writes them in one statement that keeps every key other
// tools wrote (keys this tool does not own).
func (r *Registration) UpdateCapabilities(ctx context.Context, caps Capabilities) error {
	caps = cloneCapabilities(caps)
	r.mu.Lock()
	r.caps = caps
	id := r.id
	r.mu.Unlock()
	if id == 0 {
		return nil
	}
	b, err := json.Marshal(caps)
	if err != nil {
		return fmt.Errorf("updating capabilities of sensor worker %q: %w", r.name, err)
	}
	tag, err := r.db.Pool.Exec(ctx, `
		UPDATE worker SET
			capabilities = CASE WHEN jsonb_typeof(capabilities) = 'object'
			                    THEN (capabilities - $4::text[]) || $3::jsonb ELSE $3::jsonb END,
			updated = now()
		WHERE id = $1 AND meta->>'instance_id' = $2`, id, r.inst.ID, string(b), knownCapabilityKeys)
	if err != nil {
		return fmt.Errorf("updating capabilities of sensor worker %q: %w", r.name, database.RedactError(err))
	}
	if tag.RowsAffected() == 0 {
		return r.lostRow(ctx, id, "capability update")
	}
	return nil
}

// AddCapability sets one capability key (add_capability in Attune's registration design): a key
// of Capabilities (which must then have that field's type) or any other key,
// kept in Extra. Once registered, the key is written at once; other keys of
// the row are untouched. No command calls it yet: it is the
// add_capability of the registration API that Attune's sensor worker
// design documents, kept for integrators and tested here.
func (r *Registration) AddCapability(ctx context.Context, key string, value any) error {
	raw, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("adding capability %q: encoding the value: %w", key, err)
	}
	r.mu.Lock()
	next, err := withCapability(r.caps, key, raw)
	if err != nil {
		r.mu.Unlock()
		return err
	}
	r.caps = next
	id := r.id
	r.mu.Unlock()
	if id == 0 {
		return nil
	}
	tag, err := r.db.Pool.Exec(ctx, `
		UPDATE worker SET
			capabilities = CASE WHEN jsonb_typeof(capabilities) = 'object' THEN capabilities ELSE '{}'::jsonb END
			               || jsonb_build_object($3::text, $4::jsonb),
			updated = now()
		WHERE id = $1 AND meta->>'instance_id' = $2`, id, r.inst.ID, key, string(raw))
	if err != nil {
		return fmt.Errorf("adding capability %q to sensor worker %q: %w", key, r.name, database.RedactError(err))
	}
	if tag.RowsAffected() == 0 {
		return r.lostRow(ctx, id, "capability update")
	}
	return nil
}

// withCapability returns caps with key set to raw (for AddCapability).
func withCapability(caps Capabilities, key string, raw json.RawMessage) (Capabilities, error) {
	if key == "" {
		return caps, errors.New("adding capability: the key is empty")
	}
	if !contains(knownCapabilityKeys, key) {
		caps = cloneCapabilities(caps)
		if caps.Extra == nil {
			caps.Extra = map[string]json.RawMessage{}
		}
		caps.Extra[key] = raw
		return caps, nil
	}
	b, err := json.Marshal(caps)
	if err != nil {
		return caps, err
	}
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal(b, &m); err != nil {
		return caps, err
	}
	m[key] = raw
	b, _ = json.Marshal(m)
	var next Capabilities
	if err := json.Unmarshal(b, &next); err != nil {
		return caps, err
	}
	if _, wrong := next.Extra[key]; wrong {
		return caps, fmt.Errorf("adding capability %q: %s does not have the type of that key (see the capabilities in `attunectl help commands`)", key, raw)
	}
	return next, nil
}

func cloneCapabilities(c Capabilities) Capabilities {
	c.Runtimes = append([]string{}, c.Runtimes...) // never null: the runtimes key is a list
	if c.RuntimeVersions != nil {
		m := make(map[string]string, len(c.RuntimeVersions))
		for k, v := range c.RuntimeVersions {
			m[k] = v
		}
		c.RuntimeVersions = m
	}
	if c.Extra != nil {
		m := make(map[string]json.RawMessage, len(c.Extra))
		for k, v := range c.Extra {
			m[k] = v
		}
		c.Extra = m
	}
	return c
}
