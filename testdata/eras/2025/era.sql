-- A 2025 era: Attune's consolidated migrations, with runtimes unified (no
-- runtime_type) but before aliases, execution_config and retirement, and the
-- worker table of its own migration (worker_role from the start, unique name,
-- runtime ON DELETE SET NULL, status NOT NULL DEFAULT 'active').
--
-- Derived from attune-system/attune:
--   migrations/20250101000001_initial_setup.sql   worker_type_enum, worker_status_enum,
--                                                 worker_role_enum, update_updated_column()
--                                                 (runtime_type_enum removed by the consolidation)
--   migrations/20250101000003_pack_system.sql     pack (only the columns below), runtime
--                                                 without runtime_type and without the ref
--                                                 format check; idx_runtime_name and the
--                                                 GIN index on distributions->'verification'
--   migrations/20250101000014_worker_table.sql    worker ("Migration: Worker Table")
-- as described in Attune's migration consolidation notes (the runtime table's
-- "REMOVE: runtime_type" and the new indexes).
--
-- Rows: the runtimes a pack loader wrote from runtime YAML (unified refs such as
-- core.python, with Attune's check_required and optional keys), an action
-- worker, and a sensor worker of Attune's own sensor service that stopped
-- heartbeating a day ago.

CREATE TYPE worker_type_enum AS ENUM ('local', 'remote', 'container');
CREATE TYPE worker_status_enum AS ENUM ('active', 'inactive', 'busy', 'error');
CREATE TYPE worker_role_enum AS ENUM ('action', 'sensor', 'hybrid');

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
    name TEXT NOT NULL,
    distributions JSONB NOT NULL,
    installation JSONB,
    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated TIMESTAMPTZ NOT NULL DEFAULT NOW(),

    CONSTRAINT runtime_ref_lowercase CHECK (ref = LOWER(ref))
);

CREATE INDEX idx_runtime_ref ON runtime(ref);
CREATE INDEX idx_runtime_pack ON runtime(pack);
CREATE INDEX idx_runtime_created ON runtime(created DESC);
CREATE INDEX idx_runtime_name ON runtime(name);
CREATE INDEX idx_runtime_verification ON runtime USING GIN ((distributions->'verification'));

CREATE TRIGGER update_runtime_updated
    BEFORE UPDATE ON runtime
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_column();

CREATE TABLE worker (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    worker_type worker_type_enum NOT NULL,
    worker_role worker_role_enum NOT NULL,
    runtime BIGINT REFERENCES runtime(id) ON DELETE SET NULL,
    host TEXT,
    port INTEGER,
    status worker_status_enum NOT NULL DEFAULT 'active',
    capabilities JSONB,
    meta JSONB,
    last_heartbeat TIMESTAMPTZ,
    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE INDEX idx_worker_name ON worker(name);
CREATE INDEX idx_worker_type ON worker(worker_type);
CREATE INDEX idx_worker_role ON worker(worker_role);
CREATE INDEX idx_worker_runtime ON worker(runtime);
CREATE INDEX idx_worker_status ON worker(status);
CREATE INDEX idx_worker_last_heartbeat ON worker(last_heartbeat DESC) WHERE last_heartbeat IS NOT NULL;
CREATE INDEX idx_worker_created ON worker(created DESC);
CREATE INDEX idx_worker_status_role ON worker(status, worker_role);
CREATE INDEX idx_worker_capabilities_gin ON worker USING GIN (capabilities);
CREATE INDEX idx_worker_meta_gin ON worker USING GIN (meta);

CREATE TRIGGER update_worker_updated
    BEFORE UPDATE ON worker
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_column();

-- Rows.
INSERT INTO pack (ref, label, description, version) VALUES ('core', 'Core', 'Attune core pack', '1.0.0');

INSERT INTO runtime (ref, pack, pack_ref, description, name, distributions) VALUES
    ('core.shell', 1, 'core', 'Shell (sh/bash)', 'Shell',
     '{"verification": {"check_required": false}}'),
    ('core.python', 1, 'core', 'Python 3', 'Python',
     '{"verification": {"check_required": true, "commands": [
        {"binary": "python3", "args": ["--version"], "exit_code": 0, "pattern": "Python 3\\.", "priority": 1, "optional": false},
        {"binary": "python", "args": ["--version"], "exit_code": 0, "pattern": "Python 3\\.", "priority": 2, "optional": true}]},
       "min_version": "3.9"}'),
    ('core.native', 1, 'core', 'Native binaries', 'Native',
     '{"verification": {"always_available": true, "check_required": false}}'),
    ('core.cobol', 1, 'core', 'COBOL (never verified)', 'COBOL', '{}');

INSERT INTO worker (name, worker_type, worker_role, runtime, host, port, status, capabilities, meta, last_heartbeat, created) VALUES
    ('worker-exec-1', 'local', 'action', 2, 'exec-1.internal', 8100, 'active',
     '{"max_concurrent_executions": 8, "runtimes": ["python", "shell"]}', '{"version": "0.1.0"}',
     now() - interval '3 seconds', now() - interval '90 days'),
    ('sensor-old-host', 'local', 'sensor', NULL, 'old-host', NULL, 'active',
     '{"runtimes": ["python", "shell"], "max_concurrent_sensors": 10, "sensor_version": "0.1.0"}', NULL,
     now() - interval '1 day', now() - interval '30 days');
