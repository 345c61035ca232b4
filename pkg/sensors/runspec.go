package sensors

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/attune-automation/attunectl/pkg/database"
)

// RunSpec is what a worker needs to run one sensor it holds.
type RunSpec struct {
	ID         int64
	Ref        string
	PackRef    string
	RuntimeRef string
	// ExecutionConfig is the runtime's execution_config ({} when the
	// runtime table has none).
	ExecutionConfig json.RawMessage
	Entrypoint      string
	// Config is the sensor's config without the per-trigger part.
	Config map[string]any
	// Triggers are the sensor's triggers with their own config (kept in
	// the sensor's config under triggers.<ref>).
	Triggers []RunTrigger
	// Version is when the definition (the sensor's row or its runtime's)
	// last changed (placement.Lease.Version is the same).
	Version time.Time
}

// RunTrigger is one trigger of a RunSpec.
type RunTrigger struct {
	ID     int64           `json:"id"`
	Ref    string          `json:"ref"`
	Config json.RawMessage `json:"config"`
}

// runSpecSQL reads the sensors by id with their runtime's execution config
// and their triggers. execution_config is read through to_jsonb(r) so that
// a runtime table without the column (Attune's seed era) reads as {}.
const runSpecSQL = `
SELECT s.id, s.ref, coalesce(s.pack_ref, split_part(s.ref, '.', 1)), s.runtime_ref,
       coalesce(to_jsonb(r)->'execution_config', '{}'::jsonb), s.entrypoint, coalesce(s.config, '{}'::jsonb),
       coalesce((SELECT json_agg(json_build_object('id', t.id, 'ref', t.ref) ORDER BY t.ref)
                 FROM trigger t WHERE t.sensor = s.id), '[]'),
       greatest(s.updated, r.updated)
FROM sensor s JOIN runtime r ON r.id = s.runtime
WHERE s.id = ANY($1)`

// RunSpecs reads what a worker needs to run the given sensors.
func RunSpecs(ctx context.Context, db *database.DB, ids []int64) (map[int64]RunSpec, error) {
	rows, err := db.Pool.Query(ctx, runSpecSQL, ids)
	if err != nil {
		return nil, fmt.Errorf("reading sensor definitions: %w", err)
	}
	defer rows.Close()
	out := make(map[int64]RunSpec, len(ids))
	for rows.Next() {
		var s RunSpec
		var cfg, triggers []byte
		if err := rows.Scan(&s.ID, &s.Ref, &s.PackRef, &s.RuntimeRef, &s.ExecutionConfig, &s.Entrypoint, &cfg, &triggers, &s.Version); err != nil {
			return nil, fmt.Errorf("reading sensor definitions: %w", err)
		}
		if json.Unmarshal(cfg, &s.Config) != nil || s.Config == nil {
			s.Config = map[string]any{}
		}
		per, _ := s.Config["triggers"].(map[string]any)
		delete(s.Config, "triggers")
		var ts []RunTrigger
		_ = json.Unmarshal(triggers, &ts)
		for i := range ts {
			c := per[ts[i].Ref]
			if c == nil {
				c = map[string]any{}
			}
			ts[i].Config, _ = json.Marshal(c)
		}
		s.Triggers = ts
		out[s.ID] = s
	}
	return out, rows.Err()
}
