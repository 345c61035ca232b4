-- An Attune-shaped database, as Attune's own migrations leave it (column
-- sets, types, constraints and triggers of 20250101000004_trigger_sensor_event_rule,
-- 20260902000003_sensor_workload_assignment and the worker cordon columns),
-- reduced to the tables placement touches and what they reference. It is
-- written for this test from those migrations; it is not a copy of them.
-- Loaded into schema attune before attunectl's migrations run.

CREATE FUNCTION update_updated_column() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updated = now(); RETURN NEW; END $$;

CREATE TABLE identity (id bigserial PRIMARY KEY, login text NOT NULL UNIQUE);
CREATE TABLE pack (id bigserial PRIMARY KEY, ref text NOT NULL UNIQUE);
CREATE TYPE artifact_retention_enum AS ENUM ('versions', 'days', 'hours', 'minutes');
CREATE TYPE worker_type_enum AS ENUM ('local', 'remote', 'container');
CREATE TYPE worker_role_enum AS ENUM ('action', 'sensor', 'hybrid');
CREATE TYPE worker_status_enum AS ENUM ('active', 'inactive', 'busy', 'error');

-- Unified runtimes: no runtime_type column, retired_at instead.
CREATE TABLE runtime (
    id bigserial PRIMARY KEY,
    ref text NOT NULL UNIQUE,
    pack bigint REFERENCES pack (id) ON DELETE CASCADE,
    pack_ref text,
    description text,
    name text NOT NULL,
    aliases text[] NOT NULL DEFAULT '{}',
    distributions jsonb NOT NULL DEFAULT '{}',
    installation jsonb,
    execution_config jsonb NOT NULL DEFAULT '{}',
    retired_at timestamptz,
    created timestamptz NOT NULL DEFAULT now(),
    updated timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT runtime_ref_lowercase CHECK (ref = lower(ref))
);

CREATE TABLE worker (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    worker_type worker_type_enum NOT NULL,
    worker_role worker_role_enum NOT NULL,
    runtime bigint REFERENCES runtime (id) ON DELETE SET NULL,
    host text,
    port integer,
    status worker_status_enum NOT NULL DEFAULT 'active',
    capabilities jsonb,
    meta jsonb,
    last_heartbeat timestamptz,
    cordoned boolean NOT NULL DEFAULT false,
    cordon_reason text,
    cordoned_by bigint REFERENCES identity (id) ON DELETE SET NULL,
    cordoned_at timestamptz,
    created timestamptz NOT NULL DEFAULT now(),
    updated timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_worker_role ON worker (worker_role);

CREATE TABLE trigger (
    id bigserial PRIMARY KEY,
    ref text NOT NULL UNIQUE,
    pack bigint REFERENCES pack (id) ON DELETE CASCADE,
    pack_ref text,
    label text NOT NULL,
    description text,
    enabled boolean NOT NULL DEFAULT true,
    is_adhoc boolean DEFAULT false NOT NULL,
    param_schema jsonb,
    out_schema jsonb,
    webhook_enabled boolean NOT NULL DEFAULT false,
    webhook_key varchar(64) UNIQUE,
    webhook_config jsonb DEFAULT '{}'::jsonb,
    sensor bigint,
    sensor_ref text,
    created timestamptz NOT NULL DEFAULT now(),
    updated timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT trigger_ref_lowercase CHECK (ref = lower(ref)),
    CONSTRAINT trigger_ref_format CHECK (ref ~ '^[^.]+\.[^.]+$')
);

CREATE TABLE sensor (
    id bigserial PRIMARY KEY,
    ref text NOT NULL UNIQUE,
    pack bigint REFERENCES pack (id) ON DELETE CASCADE,
    pack_ref text,
    label text NOT NULL,
    description text,
    entrypoint text NOT NULL,
    runtime bigint NOT NULL REFERENCES runtime (id) ON DELETE CASCADE,
    runtime_ref text NOT NULL,
    enabled boolean NOT NULL,
    is_adhoc boolean NOT NULL DEFAULT false,
    param_schema jsonb,
    config jsonb,
    runtime_version_constraint text,
    worker_selector jsonb NOT NULL DEFAULT '{}'::jsonb,
    worker_tolerations jsonb NOT NULL DEFAULT '[]'::jsonb,
    worker_affinity jsonb NOT NULL DEFAULT '{}'::jsonb,
    log_retention_policy artifact_retention_enum,
    log_retention_limit integer,
    artifact_retention_policy artifact_retention_enum,
    artifact_retention_limit integer,
    created timestamptz NOT NULL DEFAULT now(),
    updated timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sensor_ref_lowercase CHECK (ref = lower(ref)),
    CONSTRAINT sensor_ref_format CHECK (ref ~ '^[^.]+\.[^.]+$')
);
ALTER TABLE trigger ADD CONSTRAINT trigger_sensor_fk FOREIGN KEY (sensor) REFERENCES sensor (id) ON DELETE SET NULL;
CREATE TRIGGER update_sensor_updated BEFORE UPDATE ON sensor FOR EACH ROW EXECUTE FUNCTION update_updated_column();

CREATE TABLE event (
    id bigserial PRIMARY KEY,
    trigger bigint REFERENCES trigger (id) ON DELETE SET NULL,
    trigger_ref text NOT NULL,
    config jsonb,
    payload jsonb,
    source bigint REFERENCES sensor (id) ON DELETE SET NULL,
    source_ref text,
    created timestamptz NOT NULL DEFAULT now(),
    rule bigint,
    rule_ref text
);
CREATE INDEX idx_event_source_created ON event (source, created DESC);

CREATE TABLE sensor_workload (
    id bigserial PRIMARY KEY,
    sensor bigint NOT NULL REFERENCES sensor (id) ON DELETE CASCADE,
    workload_key text NOT NULL,
    pack_release bigint,
    pack_release_digest text,
    executable_snapshot jsonb,
    created timestamptz NOT NULL DEFAULT now(),
    updated timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sensor_workload_key_nonempty CHECK (btrim(workload_key) <> ''),
    CONSTRAINT uq_sensor_workload_sensor_key UNIQUE (sensor, workload_key)
);
CREATE INDEX idx_sensor_workload_sensor ON sensor_workload (sensor);
CREATE TRIGGER update_sensor_workload_updated BEFORE UPDATE ON sensor_workload FOR EACH ROW EXECUTE FUNCTION update_updated_column();

CREATE TABLE sensor_workload_assignment (
    workload bigint PRIMARY KEY REFERENCES sensor_workload (id) ON DELETE CASCADE,
    worker bigint REFERENCES worker (id) ON DELETE RESTRICT,
    worker_instance uuid,
    generation bigint NOT NULL DEFAULT 0,
    lease_expires_at timestamptz,
    assigned_at timestamptz,
    renewed_at timestamptz,
    created timestamptz NOT NULL DEFAULT now(),
    updated timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sensor_workload_assignment_generation_nonnegative CHECK (generation >= 0),
    CONSTRAINT sensor_workload_assignment_owner_complete CHECK (
        (worker IS NULL AND worker_instance IS NULL AND lease_expires_at IS NULL AND assigned_at IS NULL AND renewed_at IS NULL)
        OR (worker IS NOT NULL AND worker_instance IS NOT NULL AND lease_expires_at IS NOT NULL AND assigned_at IS NOT NULL AND renewed_at IS NOT NULL))
);
CREATE INDEX idx_sensor_workload_assignment_worker ON sensor_workload_assignment (worker) WHERE worker IS NOT NULL;
CREATE INDEX idx_sensor_workload_assignment_lease ON sensor_workload_assignment (lease_expires_at) WHERE worker IS NOT NULL;
CREATE TRIGGER update_sensor_workload_assignment_updated BEFORE UPDATE ON sensor_workload_assignment FOR EACH ROW EXECUTE FUNCTION update_updated_column();

-- Data an Attune deployment has: a shell runtime under Attune's own ref,
-- an Attune sensor service that is live and owns one sensor, and a second
-- sensor nobody owns.
INSERT INTO pack (ref) VALUES ('acme');
INSERT INTO runtime (ref, pack_ref, name, aliases, distributions)
VALUES ('core.shell', 'core', 'Shell', '{sh,bash}', '{"verification": {"always_available": true}}');
INSERT INTO worker (name, worker_type, worker_role, host, status, capabilities, meta, last_heartbeat)
VALUES ('attune-sensor-1', 'local', 'sensor', 'attune-host', 'active',
        '{"runtimes": ["shell"], "max_concurrent_sensors": 10, "heartbeat_interval": 30}',
        '{"instance_id": "attune-native"}', now());
INSERT INTO sensor (ref, pack, pack_ref, label, entrypoint, runtime, runtime_ref, enabled)
VALUES ('acme.owned', 1, 'acme', 'Owned by Attune', 'owned.sh', 1, 'core.shell', true),
       ('acme.free', 1, 'acme', 'Nobody owns it', 'free.sh', 1, 'core.shell', true);
INSERT INTO sensor_workload (sensor, workload_key) VALUES (1, 'default'), (2, 'default');
INSERT INTO sensor_workload_assignment (workload, worker, worker_instance, generation, lease_expires_at, assigned_at, renewed_at)
VALUES (1, 1, '6f1c2a9e-0b1d-4c1e-9a55-3f0d2b7c8e11', 3, now() + interval '120 seconds', now(), now()),
       (2, NULL, NULL, 0, NULL, NULL, NULL);
