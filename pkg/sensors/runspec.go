package sensors

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

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
	// Rules is set on a schema with Attune's rules: the sensor then runs
	// for its rule instances (Instances), and TriggerTypes are the refs of
	// all its triggers that are not retired, enabled or not, sorted.
	Rules        bool
	Instances    []RunTrigger
	TriggerTypes []string
	// ReleaseDigest is the pack release the sensor's workload is pinned to
	// (sensor_workload.pack_release_digest, Attune's newest schema): its
	// files are what runs. "" where workloads are not pinned.
	ReleaseDigest string
	// Version changes whenever what the sensor runs changes: its row, its
	// runtime's, its rule instances (database.SchemaFacts.SensorVersion;
	// placement.Lease.Version is the same).
	Version string
}

// RunTrigger is one trigger of a RunSpec, or one rule instance: then ID
// and Ref are the rule's, TriggerRef its trigger's and Config the rule's
// trigger_params, as Attune's sensor manager hands them to a sensor.
type RunTrigger struct {
	ID         int64           `json:"id"`
	Ref        string          `json:"ref"`
	TriggerRef string          `json:"trigger_ref,omitempty"`
	Config     json.RawMessage `json:"config"`
}

// runSpecSQL reads the sensors by id with their runtime's execution config
// and their triggers, and where the schema has Attune's rules, their rule
// instances and trigger types. execution_config is read through
// to_jsonb(r) so that a runtime table without the column (Attune's seed
// era) reads as {}.
func runSpecSQL(f database.SchemaFacts) string {
	instances, types := `'[]'::json`, `'[]'::json`
	if f.Rules() {
		instances = `coalesce((SELECT json_agg(json_build_object('id', r.id, 'ref', r.ref, 'trigger_ref', t.ref,
                 'config', coalesce(r.trigger_params, '{}'::jsonb)) ORDER BY t.id, r.id)
                 FROM ` + f.RuleInstances("s") + `), '[]')`
		retired := ""
		if f.Has("trigger", "retired_at") {
			retired = " AND t.retired_at IS NULL"
		}
		types = `coalesce((SELECT json_agg(DISTINCT btrim(t.ref)) FROM trigger t WHERE t.sensor = s.id` + retired + `), '[]')`
	}
	digest := `''`
	if f.Has("sensor_workload", "pack_release_digest") {
		digest = `coalesce((SELECT sw.pack_release_digest FROM sensor_workload sw WHERE sw.sensor = s.id AND sw.workload_key = '` + DefaultWorkloadKey + `'), '')`
	}
	return `
SELECT s.id, s.ref, coalesce(s.pack_ref, split_part(s.ref, '.', 1)), s.runtime_ref, ` + digest + `,
       coalesce(to_jsonb(r)->'execution_config', '{}'::jsonb), s.entrypoint, coalesce(s.config, '{}'::jsonb),
       coalesce((SELECT json_agg(json_build_object('id', t.id, 'ref', t.ref) ORDER BY t.ref)
                 FROM trigger t WHERE t.sensor = s.id), '[]'),
       ` + instances + `, ` + types + `,
       ` + f.SensorVersion("s", "r") + `
FROM sensor s JOIN runtime r ON r.id = s.runtime
WHERE s.id = ANY($1)`
}

func RunSpecs(ctx context.Context, db *database.DB, ids []int64) (map[int64]RunSpec, error) {
	rows, err := db.Pool.Query(ctx, runSpecSQL(db.Facts), ids)
	if err != nil {
		return nil, fmt.Errorf("reading sensor definitions: %w", err)
	}
	defer rows.Close()
	out := make(map[int64]RunSpec, len(ids))
	for rows.Next() {
		var s RunSpec
		var cfg, triggers, instances, types []byte
		if err := rows.Scan(&s.ID, &s.Ref, &s.PackRef, &s.RuntimeRef, &s.ReleaseDigest, &s.ExecutionConfig, &s.Entrypoint, &cfg, &triggers, &instances, &types, &s.Version); err != nil {
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
		if s.Rules = db.Facts.Rules(); s.Rules {
			s.Instances = []RunTrigger{}
			_ = json.Unmarshal(instances, &s.Instances)
			_ = json.Unmarshal(types, &s.TriggerTypes)
			slices.Sort(s.TriggerTypes)
		}
		out[s.ID] = s
	}
	return out, rows.Err()
}
