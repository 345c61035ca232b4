-- sensor_tables: Attune's sensor, trigger, event, sensor_workload and
-- sensor_workload_assignment, with Attune's column names and types, created
-- only where missing. On a database where Attune created them they are
-- adopted as they are (no column is added or changed); what this migration
-- creates is marked 'attunectl: …' and is all that its down step drops.
--
-- The shapes are the minimal ones attunectl reads and writes: Attune's pack,
-- identity, rule and retention columns are left out (pack is a plain bigint
-- without a foreign key, because attunectl has no pack table).

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    IF attunectl_table_missing('sensor') THEN
        CREATE TABLE sensor (
            id                         bigserial PRIMARY KEY,
            ref                        text NOT NULL UNIQUE,
            pack                       bigint,
            pack_ref                   text,
            label                      text NOT NULL,
            description                text,
            entrypoint                 text NOT NULL,
            runtime                    bigint NOT NULL REFERENCES runtime (id) ON DELETE CASCADE,
            runtime_ref                text NOT NULL,
            enabled                    boolean NOT NULL,
            is_adhoc                   boolean NOT NULL DEFAULT false,
            param_schema               jsonb,
            config                     jsonb,
            runtime_version_constraint text,
            worker_selector            jsonb NOT NULL DEFAULT '{}'::jsonb,
            worker_tolerations         jsonb NOT NULL DEFAULT '[]'::jsonb,
            worker_affinity            jsonb NOT NULL DEFAULT '{}'::jsonb,
            created                    timestamptz NOT NULL DEFAULT now(),
            updated                    timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT sensor_ref_lowercase CHECK (ref = lower(ref)),
            CONSTRAINT sensor_ref_format CHECK (ref ~ '^[^.]+\.[^.]+$')
        );
        CREATE INDEX idx_sensor_runtime ON sensor (runtime);
        COMMENT ON TABLE sensor IS 'attunectl: created by migration 00020';
    END IF;

    IF attunectl_table_missing('trigger') THEN
        CREATE TABLE trigger (
            id           bigserial PRIMARY KEY,
            ref          text NOT NULL UNIQUE,
            pack         bigint,
            pack_ref     text,
            label        text NOT NULL,
            description  text,
            enabled      boolean NOT NULL DEFAULT true,
            is_adhoc     boolean NOT NULL DEFAULT false,
            param_schema jsonb,
            out_schema   jsonb,
            sensor       bigint REFERENCES sensor (id) ON DELETE SET NULL,
            sensor_ref   text,
            created      timestamptz NOT NULL DEFAULT now(),
            updated      timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT trigger_ref_lowercase CHECK (ref = lower(ref)),
            CONSTRAINT trigger_ref_format CHECK (ref ~ '^[^.]+\.[^.]+$')
        );
        CREATE INDEX idx_trigger_sensor ON trigger (sensor) WHERE sensor IS NOT NULL;
        COMMENT ON TABLE trigger IS 'attunectl: created by migration 00020';
    END IF;

    IF attunectl_table_missing('event') THEN
        CREATE TABLE event (
            id          bigserial PRIMARY KEY,
            trigger     bigint REFERENCES trigger (id) ON DELETE SET NULL,
            trigger_ref text NOT NULL,
            config      jsonb,
            payload     jsonb,
            source      bigint REFERENCES sensor (id) ON DELETE SET NULL,
            source_ref  text,
            created     timestamptz NOT NULL DEFAULT now(),
            rule        bigint,
            rule_ref    text
        );
        CREATE INDEX idx_event_source_created ON event (source, created DESC);
        COMMENT ON TABLE event IS 'attunectl: created by migration 00020';
    END IF;

    IF attunectl_table_missing('sensor_workload') THEN
        CREATE TABLE sensor_workload (
            id           bigserial PRIMARY KEY,
            sensor       bigint NOT NULL REFERENCES sensor (id) ON DELETE CASCADE,
            workload_key text NOT NULL,
            created      timestamptz NOT NULL DEFAULT now(),
            updated      timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT sensor_workload_key_nonempty CHECK (btrim(workload_key) <> ''),
            CONSTRAINT uq_sensor_workload_sensor_key UNIQUE (sensor, workload_key)
        );
        COMMENT ON TABLE sensor_workload IS 'attunectl: created by migration 00020';
    END IF;

    IF attunectl_table_missing('sensor_workload_assignment') THEN
        CREATE TABLE sensor_workload_assignment (
            workload         bigint PRIMARY KEY REFERENCES sensor_workload (id) ON DELETE CASCADE,
            worker           bigint REFERENCES worker (id) ON DELETE RESTRICT,
            worker_instance  uuid,
            generation       bigint NOT NULL DEFAULT 0,
            lease_expires_at timestamptz,
            assigned_at      timestamptz,
            renewed_at       timestamptz,
            created          timestamptz NOT NULL DEFAULT now(),
            updated          timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT sensor_workload_assignment_generation_nonnegative CHECK (generation >= 0),
            CONSTRAINT sensor_workload_assignment_owner_complete CHECK (
                (worker IS NULL AND worker_instance IS NULL AND lease_expires_at IS NULL
                    AND assigned_at IS NULL AND renewed_at IS NULL)
                OR
                (worker IS NOT NULL AND worker_instance IS NOT NULL AND lease_expires_at IS NOT NULL
                    AND assigned_at IS NOT NULL AND renewed_at IS NOT NULL))
        );
        CREATE INDEX idx_sensor_workload_assignment_worker
            ON sensor_workload_assignment (worker) WHERE worker IS NOT NULL;
        CREATE INDEX idx_sensor_workload_assignment_lease
            ON sensor_workload_assignment (lease_expires_at) WHERE worker IS NOT NULL;
        COMMENT ON TABLE sensor_workload_assignment IS 'attunectl: created by migration 00020';
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
    IF attunectl_owned('table', 'sensor_workload_assignment') THEN
        DROP TABLE sensor_workload_assignment;
    END IF;
    IF attunectl_owned('table', 'sensor_workload') THEN
        DROP TABLE sensor_workload;
    END IF;
    IF attunectl_owned('table', 'event') THEN
        DROP TABLE event;
    END IF;
    IF attunectl_owned('table', 'trigger') THEN
        DROP TABLE trigger;
    END IF;
    IF attunectl_owned('table', 'sensor') THEN
        DROP TABLE sensor;
    END IF;
END
$$;
-- +goose StatementEnd
