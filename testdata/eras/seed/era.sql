-- The seed's era: the runtime and worker tables as Attune created them before
-- the sensor-worker-registration work (before 20260131000001_add_worker_role
-- and 20260202000001_add_sensor_runtimes, the two migrations the seed names).
--
-- Derived from attune-system/attune:
--   migrations/20250101000001_initial_setup.sql   runtime_type_enum, worker_type_enum,
--                                                 worker_status_enum, update_updated_column()
--   migrations/20250101000002_core_tables.sql     pack (only the columns below), runtime
--                                                 (with runtime_type and the ref format check;
--                                                 no aliases, no execution_config), worker
--                                                 (no worker_role, no unique name, a runtime
--                                                 foreign key without ON DELETE, status
--                                                 nullable with default 'inactive')
--   Attune's sensor-worker-registration docs      the worker table of that era, as documented
-- These pre-consolidation files are no longer in attune-system/attune's tree;
-- their text is quoted in Attune's migration consolidation notes and scripts.
--
-- Rows: action runtimes and workers as Attune's executor wrote them, two of the
-- seed's core.sensor.* refs present with empty distributions (the seed's own
-- migration found core.sensor.builtin like that), and a pack's sensor runtime
-- without verification metadata.

CREATE TYPE runtime_type_enum AS ENUM ('action', 'sensor');
CREATE TYPE worker_type_enum AS ENUM ('local', 'remote', 'container');
CREATE TYPE worker_status_enum AS ENUM ('active', 'inactive', 'busy', 'error');

CREATE FUNCTION update_updated_column() RETURNS TRIGGER AS $$
BEGIN
    NEW.updated = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TABLE pack (
    id BIGSERIAL PRIMARY KEY,
    ref TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    description TEXT,
    version TEXT NOT NULL,
    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE TABLE runtime (
    id BIGSERIAL PRIMARY KEY,
    ref TEXT NOT NULL UNIQUE,
    pack BIGINT REFERENCES pack(id) ON DELETE CASCADE,
    pack_ref TEXT,
    description TEXT,
    runtime_type runtime_type_enum NOT NULL,
    name TEXT NOT NULL,
    distributions JSONB NOT NULL,
    installation JSONB,
    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated TIMESTAMPTZ NOT NULL DEFAULT NOW(),

    CONSTRAINT runtime_ref_lowercase CHECK (ref = LOWER(ref)),
    CONSTRAINT runtime_ref_format CHECK (ref ~ '^[^.]+\.(action|sensor)\.[^.]+$')
);

CREATE INDEX idx_runtime_ref ON runtime(ref);
CREATE INDEX idx_runtime_pack ON runtime(pack);
CREATE INDEX idx_runtime_type ON runtime(runtime_type);
CREATE INDEX idx_runtime_created ON runtime(created DESC);
CREATE INDEX idx_runtime_pack_type ON runtime(pack, runtime_type);
CREATE INDEX idx_runtime_type_created ON runtime(runtime_type, created DESC);

CREATE TRIGGER update_runtime_updated
    BEFORE UPDATE ON runtime
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_column();

CREATE TABLE worker (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    worker_type worker_type_enum NOT NULL,
    runtime BIGINT REFERENCES runtime(id),
    host TEXT,
    port INTEGER,
    status worker_status_enum DEFAULT 'inactive',
    capabilities JSONB,
    meta JSONB,
    last_heartbeat TIMESTAMPTZ,
    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated TIMESTAMPTZ NOT NULL DEFAULT NOW(),

    CONSTRAINT worker_port_range CHECK (port IS NULL OR (port > 0 AND port <= 65535))
);

CREATE INDEX idx_worker_name ON worker(name);
CREATE INDEX idx_worker_type ON worker(worker_type);
CREATE INDEX idx_worker_runtime ON worker(runtime);
CREATE INDEX idx_worker_status ON worker(status);
CREATE INDEX idx_worker_last_heartbeat ON worker(last_heartbeat DESC);
CREATE INDEX idx_worker_status_runtime ON worker(status, runtime);
CREATE INDEX idx_worker_type_status ON worker(worker_type, status);

CREATE TRIGGER update_worker_updated
    BEFORE UPDATE ON worker
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_column();

-- Rows.
INSERT INTO pack (ref, label, description, version) VALUES
    ('core', 'Core', 'Attune core pack', '1.0.0'),
    ('acme', 'Acme', 'Acme sensors', '0.3.1');

INSERT INTO runtime (ref, pack, pack_ref, description, runtime_type, name, distributions, installation) VALUES
    ('core.action.shell', 1, 'core', 'Shell actions', 'action', 'Shell',
     '{"linux": {"binary": "/bin/sh"}}', NULL),
    ('core.action.python', 1, 'core', 'Python 3 actions', 'action', 'Python',
     '{"linux": {"binary": "python3", "min_version": "3.9"}}', '{"method": "system"}'),
    ('core.sensor.builtin', 1, 'core', 'Sensors built into the Attune sensor service', 'sensor', 'Built-in Sensor',
     '{}', NULL),
    ('core.sensor.python', 1, 'core', 'Python 3 sensors', 'sensor', 'Python',
     '{}', NULL),
    ('acme.sensor.ruby', 2, 'acme', 'Ruby sensors of the acme pack', 'sensor', 'Ruby',
     '{}', NULL);

INSERT INTO worker (name, worker_type, runtime, host, port, status, capabilities, meta, last_heartbeat, created) VALUES
    ('worker-exec-1', 'local', 2, 'exec-1.internal', 8100, 'active',
     '{"max_concurrent_executions": 8, "runtimes": ["python", "shell"]}', '{"version": "0.1.0"}',
     now() - interval '5 seconds', now() - interval '40 days'),
    ('worker-exec-2', 'remote', 1, 'exec-2.internal', 8100, 'inactive',
     '{"max_concurrent_executions": 4}', NULL,
     now() - interval '12 days', now() - interval '60 days'),
    ('worker-ruby', 'container', 5, 'ruby-1.internal', NULL, NULL,
     NULL, NULL, NULL, now() - interval '3 days');
