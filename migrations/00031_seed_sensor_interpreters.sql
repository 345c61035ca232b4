-- seed_sensor_interpreters: the interpreters `sensor run` starts the seed's
-- sensor runtimes with (python → python3, nodejs → node, shell → sh; native
-- runs the entrypoint itself), written into execution_config.interpreter
-- of the seed's rows that name none. A row whose execution_config already
-- has an interpreter (an operator's, or Attune's) is left as it is; the
-- down step removes only the value written here. A runtime table without
-- execution_config (the seed's era of Attune) is left alone: `sensor run`
-- falls back to the same interpreters for these refs.

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = current_schema() AND table_name = 'runtime' AND column_name = 'execution_config') THEN
        UPDATE runtime r
        SET execution_config = coalesce(r.execution_config, '{}'::jsonb) || jsonb_build_object('interpreter', v.interp)
        FROM (VALUES ('core.sensor.python', 'python3'), ('core.sensor.nodejs', 'node'), ('core.sensor.shell', 'sh')) AS v(ref, interp)
        WHERE r.ref = v.ref AND NOT (coalesce(r.execution_config, '{}'::jsonb) ? 'interpreter');
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = current_schema() AND table_name = 'runtime' AND column_name = 'execution_config') THEN
        UPDATE runtime r
        SET execution_config = r.execution_config - 'interpreter'
        FROM (VALUES ('core.sensor.python', 'python3'), ('core.sensor.nodejs', 'node'), ('core.sensor.shell', 'sh')) AS v(ref, interp)
        WHERE r.ref = v.ref AND r.execution_config->'interpreter' = to_jsonb(v.interp);
    END IF;
END
$$;
-- +goose StatementEnd
