-- Today's era: unified runtimes with aliases, execution configuration,
-- installers, detection settings and retirement (retired_at); the worker table
-- with the operator's cordon columns.
--
-- Derived from attune-system/attune:
--   migrations/20250101000001_initial_setup.sql          enums, update_updated_column()
--   the pack system migration (20250101000003_pack_system.sql in the consolidation notes,
--   renumbered since)                                    pack (only the columns below), runtime
--                                                        (aliases, installers, execution_config,
--                                                        auto_detected, detection_config), as
--                                                        Attune's runtime detection docs show it
--                                                        ("Runtime Table (Unified)")
--   migrations/20250101000003_identity_and_auth.sql      identity (only the columns below)
--   migrations/20250101000005_execution_and_operations.sql
--                                                        worker with cordoned, cordon_reason,
--                                                        cordoned_by, cordoned_at and its indexes
--                                                        (as stored at commit 7f6dc895db8c)
--   migrations/20260916000003_component_retirement.sql   runtime.retired_at, idx_runtime_active
--                                                        (commit 126b167e)
--
-- Rows: runtimes as the pack loader writes them (one retired), a runtime without
-- verification, an action worker cordoned by an operator, and a live sensor
-- worker of Attune's sensor service.

CREATE TYPE worker_type_enum AS ENUM ('local', 'remote', 'container');
CREATE TYPE worker_status_enum AS ENUM ('active', 'inactive', 'busy', 'error');
CREATE TYPE worker_role_enum AS ENUM ('action', 'sensor', 'hybrid');

CREATE FUNCTION update_updated_column() RETURNS TRIGGER AS $$
BEGIN
    NEW.updated = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TABLE identity (
    id BIGSERIAL PRIMARY KEY,
    login TEXT NOT NULL UNIQUE,
    display_name TEXT,
    attributes JSONB NOT NULL DEFAULT '{}'::jsonb,
    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

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
    aliases TEXT[] NOT NULL DEFAULT '{}',
    distributions JSONB NOT NULL,
    installation JSONB,
    installers JSONB DEFAULT '[]',
    execution_config JSONB NOT NULL DEFAULT '{}',
    auto_detected BOOLEAN NOT NULL DEFAULT FALSE,
    detection_config JSONB NOT NULL DEFAULT '{}',
    created TIMESTAMPTZ DEFAULT NOW(),
    updated TIMESTAMPTZ DEFAULT NOW(),
    retired_at TIMESTAMPTZ,

    CONSTRAINT runtime_ref_lowercase CHECK (ref = LOWER(ref))
);

CREATE INDEX idx_runtime_ref ON runtime(ref);
CREATE INDEX idx_runtime_pack ON runtime(pack);
CREATE INDEX idx_runtime_created ON runtime(created DESC);
CREATE INDEX idx_runtime_name ON runtime(name);
CREATE INDEX idx_runtime_verification ON runtime USING GIN ((distributions->'verification'));
CREATE INDEX idx_runtime_active ON runtime (retired_at) WHERE retired_at IS NULL;

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
    cordoned BOOLEAN NOT NULL DEFAULT FALSE,
    cordon_reason TEXT,
    cordoned_by BIGINT REFERENCES identity(id) ON DELETE SET NULL,
    cordoned_at TIMESTAMPTZ,
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
CREATE INDEX idx_worker_capabilities_health_status ON worker USING GIN ((capabilities -> 'health' -> 'status'));
CREATE INDEX idx_worker_cordoned ON worker(cordoned) WHERE cordoned = TRUE;
CREATE INDEX idx_worker_role_cordoned_status ON worker(worker_role, cordoned, status);

CREATE TRIGGER update_worker_updated
    BEFORE UPDATE ON worker
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_column();

-- Rows.
INSERT INTO identity (login, display_name) VALUES ('ops', 'Operations');
INSERT INTO pack (ref, label, description, version) VALUES ('core', 'Core', 'Attune core pack', '2.4.0');

INSERT INTO runtime (ref, pack, pack_ref, description, name, aliases, distributions, execution_config, retired_at) VALUES
    ('core.shell', 1, 'core', 'Shell (sh/bash)', 'Shell', '{sh,bash}',
     '{"verification": {"check_required": false}}',
     '{"interpreter": {"binary": "/bin/sh"}}', NULL),
    ('core.python', 1, 'core', 'Python 3', 'Python', '{python3}',
     '{"verification": {"check_required": true, "commands": [
        {"binary": "python3", "args": ["--version"], "exit_code": 0, "pattern": "Python 3\\.", "priority": 1},
        {"binary": "python", "args": ["--version"], "exit_code": 0, "pattern": "Python 3\\.", "priority": 2, "optional": true}]}}',
     '{"interpreter": {"binary": "python3", "args": ["-u"]}, "environment": {"create_command": ["python3", "-m", "venv", "{env_dir}"]}}', NULL),
    ('core.python2', 1, 'core', 'Python 2 (retired)', 'Python 2', '{python2}',
     '{"verification": {"commands": [{"binary": "python2", "args": ["--version"], "pattern": "Python 2\\."}]}}',
     '{}', now() - interval '100 days'),
    ('core.go', 1, 'core', 'Go binaries built by the pack', 'Go', '{}', '{}', '{}', NULL);

INSERT INTO worker (name, worker_type, worker_role, runtime, host, port, status, capabilities, meta, last_heartbeat,
                    cordoned, cordon_reason, cordoned_by, cordoned_at, created) VALUES
    ('worker-exec-1', 'local', 'action', 2, 'exec-1.internal', 8100, 'active',
     '{"max_concurrent_executions": 8, "runtimes": ["python", "shell"], "health": {"status": "healthy"}}', '{"version": "2.4.0"}',
     now() - interval '2 seconds', TRUE, 'kernel upgrade', 1, now() - interval '1 hour', now() - interval '200 days'),
    ('sensor-attune-1', 'local', 'sensor', NULL, 'attune-1', NULL, 'active',
     '{"runtimes": ["python", "shell", "native"], "max_concurrent_sensors": 10, "sensor_version": "2.4.0"}', NULL,
     now() - interval '4 seconds', FALSE, NULL, NULL, NULL, now() - interval '200 days');
