-- =============================================================================
-- Attune schema fixture for attunectl (era attune-2026-10): transcribed from Attune's own migrations
-- =============================================================================
--
-- Source repository : attune-system/attune (GitHub)
-- Commit read       : e76cd03aa0a233c12ee2e4c8982328a2f90829b3
--   This is the newest commit of attune-system/attune found in the search index.
--   It holds the highest-numbered migration (20261007000001) and the newest
--   stored versions of 20250101000005, 20250101000006, 20250101000013 and
--   20261006000002. The git mirror could not be fetched ("no snapshot"), so the
--   files were read from the index. The index stores each distinct file version
--   under the commit where it first appeared. For every file below, the version
--   used was the newest one that exists at e76cd03 (it was not changed later),
--   and the commit shown in [...] is where the index recorded that version.
--   See NOTES.md for how each version was chosen and what is still uncertain.
--
-- Migration files this fixture draws on (in apply order):
--   20250101000001_initial_setup.sql                 [content stored deduplicated under
--                                                     AndroxxTraxxon/attune, HEAD 9206d4171faa2efd88c201a8240f7442fb4b9007;
--                                                     attune-system has no distinct version]
--   20250101000002_pack_system.sql                   [same as above]
--   20250101000003_identity_and_auth.sql             [346b08bf06fa02aa75e64a9afda97198869e900d]
--   20250101000004_trigger_sensor_event_rule.sql     [a354b9cf239eefd3a15d8589ac61bf65b8c50747]
--   20250101000005_execution_and_operations.sql      [e76cd03aa0a233c12ee2e4c8982328a2f90829b3]
--   20250101000009_timescaledb_history.sql           [a354b9cf239eefd3a15d8589ac61bf65b8c50747]
--   20250101000014_runtime_retention_supervisor.sql  [59c9a9a0d00fbc431cc01a5c512da243c86b6a6b] (table comments only)
--   20250101000015_metadata_cache_sync.sql           [9493b3f07957b45b50467ebc8be860f622aec5d7]
--   20250101000015_trace_tags.sql                    [20473d880775a82b7de7c6f4d5d52ef3f69efdcf]
--   20250101000016_source_trace_tags.sql             [92a4cd50cb65f7bcebe978f91081c7a21d59768c]
--   20250101000020_notification_payload_envelope.sql [232956ef4c0534392a336925cf6c935069dddd84]
--   20260818000002_pack_install_status.sql           [5ec2c01a3c375d28c776bcbf2a650dc5615fba79]
--   20260821000001_pack_worker_placement.sql         [6e67237696c8d145ccb979c485ef81d41e610b1b]
--   20260902000002_related_notification_trace_tags.sql [266eeef02ea6a636411ab9998487189097998276]
--   20260902000003_sensor_workload_assignment.sql    [ded181b5dd04fe008c0c4ea3bb51055b5659f879]
--   20260909000001_pack_releases.sql                 [03eeaa5b3f0cee74dcc0328b8294e928a4f9f362]
--   20260909000002_async_pack_release_pins.sql       [03eeaa5b3f0cee74dcc0328b8294e928a4f9f362]
--   20260909000004_immutable_log_segments.sql        [03eeaa5b3f0cee74dcc0328b8294e928a4f9f362] (log_stream stub only)
--   20260909000005_pack_release_object_storage.sql   [03eeaa5b3f0cee74dcc0328b8294e928a4f9f362]
--   20260909000006_storage_migration_maintenance.sql [03eeaa5b3f0cee74dcc0328b8294e928a4f9f362]
--   20260909000007_bounded_object_retention.sql      [03eeaa5b3f0cee74dcc0328b8294e928a4f9f362]
--   20260916000001_platform_catalog.sql              [126b167e984a1ef535b75e34ec6519346fd12378]
--   20260916000002_catalog_bootstrap_and_release_lock.sql [126b167e984a1ef535b75e34ec6519346fd12378]
--   20260916000003_component_retirement.sql          [126b167e984a1ef535b75e34ec6519346fd12378]
--   20260919000002_absent_metadata_policy.sql        [126b167e984a1ef535b75e34ec6519346fd12378]
--   20261006000001_native_partitions.sql             [a354b9cf239eefd3a15d8589ac61bf65b8c50747]
--   20261006000002_hourly_summaries.sql              [e76cd03aa0a233c12ee2e4c8982328a2f90829b3]
--
-- Objects -> source file(s):
--   enums worker_type_enum, worker_role_enum, worker_status_enum,
--     sensor_process_status_enum, artifact_retention_enum ..... 20250101000001
--   function update_updated_column() ........................... 20250101000001
--   enum action_reference_visibility_enum ........................ 20250101000004
--   enum management_origin ....................................... 20260916000001
--   enum native_partition_parent ................................. 20261006000001
--   enum native_summary_kind ..................................... 20261006000002
--   pack ...... 20250101000002 (+FK 20250101000003, install_status 20260818000002,
--               worker_* 20260821000001, active_release 20260909000001)
--   identity (minimal: id, login) ................................ 20250101000003
--   runtime ... 20250101000002 (+metadata trigger 20250101000015_metadata_cache_sync,
--               catalog columns/guards 20260916000001/000002, retired_at 20260916000003)
--   runtime_version ... 20250101000002 (+metadata trigger 20250101000015_metadata_cache_sync,
--               guard 20260916000001, retired_at/lifecycle guard 20260916000003,
--               managed_release/guard 20260919000002)
--   trigger ... 20250101000004 (+metadata trigger 20250101000015_metadata_cache_sync,
--               20260916000001/000002, 20260916000003, 20260919000002)
--   sensor .... 20250101000004 (+same as trigger)
--   event ..... 20250101000004 (RANGE(created) parent + event_default),
--               event_rule_fkey 20250101000005, comments 20250101000009/000014,
--               trace_tag 20250101000016, notify_event_created final text
--               20260902000002 (+ _notify_payload_guard 20250101000020),
--               day partitions + registry 20261006000001,
--               native_summary_* triggers 20261006000002
--   action (STUB, id only) ....................................... 20250101000004
--   rule ...... 20250101000005 (+metadata trigger 20250101000015_metadata_cache_sync,
--               trace_tag_template 20250101000015_trace_tags,
--               sensor_worker_* 20260902000003, 20260916000001/000002,
--               20260916000003, 20260919000002)
--   worker, sensor_process ....................................... 20250101000005
--   worker_history, sensor_process_history + history triggers .... 20250101000009
--   sensor_workload, sensor_workload_assignment .. 20260902000003 (+20260909000002, +20260909000007)
--   pack_release ..... 20260909000001 (+000005, +000006, +000007)
--   object_maintenance_ledger, enqueue_deleted_object(),
--     trg_pack_release_enqueue_object ........................... 20260909000007
--   log_stream (STUB: id, artifact_version) ...................... 20260909000004
--   native_partition_registry + event leaves ..................... 20261006000001
--   native_summary_invalidation, native_summary_notify() ......... 20261006000002
--
-- Fixture conventions (changes from the migration text):
--   * "SET search_path TO attune, public;", "CREATE SCHEMA" and "CREATE EXTENSION"
--     lines are dropped; the loader sets search_path.
--   * Where a migration loops over a list of tables in a DO block, the list is
--     cut down to the tables in this fixture. Each place says so and gives
--     Attune's full list.
--   * Tables, columns, indexes and statements for objects outside this set
--     are left out. FK targets outside the set are stubs, marked "-- stub:".
--   * Data-only statements (UPDATE/INSERT backfills) are left out, except
--     where they sit inside a copied DO block and do nothing on an empty DB.
--   * A function that migrations replace with CREATE OR REPLACE appears once,
--     with its final text. The comment above it names the file that text came from.
--   * Long "--" explanation comments inside the runtime / runtime_version
--     CREATE TABLE statements are shortened. The DDL itself is unchanged.
-- =============================================================================


-- =============================================================================
-- 20250101000001_initial_setup.sql
-- =============================================================================

-- WorkerType enum
DO $$ BEGIN
    CREATE TYPE worker_type_enum AS ENUM (
        'local',
        'remote',
        'container'
    );
EXCEPTION
    WHEN duplicate_object THEN null;
END $$;

COMMENT ON TYPE worker_type_enum IS 'Type of worker deployment';

-- WorkerRole enum
DO $$ BEGIN
    CREATE TYPE worker_role_enum AS ENUM (
        'action',
        'sensor'
    );
EXCEPTION
    WHEN duplicate_object THEN null;
END $$;

COMMENT ON TYPE worker_role_enum IS 'Role of worker (action executor or sensor)';


-- WorkerStatus enum
DO $$ BEGIN
    CREATE TYPE worker_status_enum AS ENUM (
        'active',
        'inactive',
        'busy',
        'error'
    );
EXCEPTION
    WHEN duplicate_object THEN null;
END $$;

COMMENT ON TYPE worker_status_enum IS 'Worker operational status';

-- SensorProcessStatus enum
DO $$ BEGIN
    CREATE TYPE sensor_process_status_enum AS ENUM (
        'starting',
        'running',
        'stopped',
        'failed',
        'backoff'
    );
EXCEPTION
    WHEN duplicate_object THEN null;
END $$;

COMMENT ON TYPE sensor_process_status_enum IS 'Lifecycle state of a managed sensor process';

-- RetentionPolicyType enum
DO $$ BEGIN
    CREATE TYPE artifact_retention_enum AS ENUM (
        'versions',
        'days',
        'hours',
        'minutes'
    );
EXCEPTION
    WHEN duplicate_object THEN null;
END $$;

COMMENT ON TYPE artifact_retention_enum IS 'Type of retention policy';

-- Function to automatically update the 'updated' timestamp
CREATE OR REPLACE FUNCTION update_updated_column()
RETURNS TRIGGER AS $$
BEGIN
    NEW.updated = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

COMMENT ON FUNCTION update_updated_column() IS 'Automatically updates the updated timestamp on row modification';


-- =============================================================================
-- 20250101000002_pack_system.sql  (pack_registry_index omitted)
-- =============================================================================

CREATE TABLE pack (
    id BIGSERIAL PRIMARY KEY,
    ref TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    description TEXT,
    version TEXT NOT NULL,
    conf_schema JSONB NOT NULL DEFAULT '{}'::jsonb,
    config JSONB NOT NULL DEFAULT '{}'::jsonb,
    meta JSONB NOT NULL DEFAULT '{}'::jsonb,
    tags TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    runtime_deps TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    dependencies TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    is_standard BOOLEAN NOT NULL DEFAULT FALSE,
    installers JSONB DEFAULT '[]'::jsonb,

    -- Installation metadata (nullable for non-installed packs)
    source_type TEXT,
    source_url TEXT,
    source_ref TEXT,
    checksum TEXT,
    checksum_verified BOOLEAN DEFAULT FALSE,
    installed_at TIMESTAMPTZ,
    installed_by BIGINT,
    installation_method TEXT,
    storage_path TEXT,

    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated TIMESTAMPTZ NOT NULL DEFAULT NOW(),

    -- Constraints
    CONSTRAINT pack_ref_lowercase CHECK (ref = LOWER(ref)),
    CONSTRAINT pack_ref_format CHECK (ref ~ '^[a-z][a-z0-9_-]+$'),
    CONSTRAINT pack_version_semver CHECK (
        version ~ '^\d+\.\d+\.\d+(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$'
    )
);

-- Indexes
CREATE INDEX idx_pack_ref ON pack(ref);
CREATE INDEX idx_pack_created ON pack(created DESC);
CREATE INDEX idx_pack_is_standard ON pack(is_standard) WHERE is_standard = TRUE;
CREATE INDEX idx_pack_is_standard_created ON pack(is_standard, created DESC);
CREATE INDEX idx_pack_version_created ON pack(version, created DESC);
CREATE INDEX idx_pack_config_gin ON pack USING GIN (config);
CREATE INDEX idx_pack_meta_gin ON pack USING GIN (meta);
CREATE INDEX idx_pack_tags_gin ON pack USING GIN (tags);
CREATE INDEX idx_pack_runtime_deps_gin ON pack USING GIN (runtime_deps);
CREATE INDEX idx_pack_dependencies_gin ON pack USING GIN (dependencies);
CREATE INDEX idx_pack_installed_at ON pack(installed_at DESC) WHERE installed_at IS NOT NULL;
CREATE INDEX idx_pack_installed_by ON pack(installed_by) WHERE installed_by IS NOT NULL;
CREATE INDEX idx_pack_source_type ON pack(source_type) WHERE source_type IS NOT NULL;

-- Trigger
CREATE TRIGGER update_pack_updated
    BEFORE UPDATE ON pack
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_column();

-- Comments
COMMENT ON TABLE pack IS 'Packs bundle related automation components';
COMMENT ON COLUMN pack.ref IS 'Unique pack reference identifier (e.g., "slack", "github")';
COMMENT ON COLUMN pack.label IS 'Human-readable pack name';
COMMENT ON COLUMN pack.version IS 'Semantic version of the pack';
COMMENT ON COLUMN pack.conf_schema IS 'JSON schema for pack configuration';
COMMENT ON COLUMN pack.config IS 'Pack configuration values';
COMMENT ON COLUMN pack.meta IS 'Pack metadata';
COMMENT ON COLUMN pack.runtime_deps IS 'Array of required runtime references (e.g., shell, python, nodejs)';
COMMENT ON COLUMN pack.dependencies IS 'Array of required pack references (e.g., core, utils)';
COMMENT ON COLUMN pack.is_standard IS 'Whether this is a core/built-in pack';
COMMENT ON COLUMN pack.source_type IS 'Installation source type (e.g., "git", "local", "registry")';
COMMENT ON COLUMN pack.source_url IS 'URL or path where pack was installed from';
COMMENT ON COLUMN pack.source_ref IS 'Git ref, version tag, or other source reference';
COMMENT ON COLUMN pack.checksum IS 'Content checksum for verification';
COMMENT ON COLUMN pack.checksum_verified IS 'Whether checksum has been verified';
COMMENT ON COLUMN pack.installed_at IS 'Timestamp when pack was installed';
COMMENT ON COLUMN pack.installed_by IS 'Identity ID of user who installed the pack';
COMMENT ON COLUMN pack.installation_method IS 'Method used for installation (e.g., "cli", "api", "auto")';
COMMENT ON COLUMN pack.storage_path IS 'Filesystem path where pack files are stored';

-- RUNTIME TABLE

CREATE TABLE runtime (
    id BIGSERIAL PRIMARY KEY,
    ref TEXT NOT NULL UNIQUE,
    pack BIGINT REFERENCES pack(id) ON DELETE CASCADE,
    pack_ref TEXT,
    description TEXT,
    name TEXT NOT NULL,
    aliases TEXT[] NOT NULL DEFAULT '{}'::text[],

    distributions JSONB NOT NULL,
    installation JSONB,
    installers JSONB DEFAULT '[]'::jsonb,

    -- Execution configuration (see migration file for the documented structure)
    execution_config JSONB NOT NULL DEFAULT '{}'::jsonb,

    -- Whether this runtime was auto-registered by an agent
    -- (vs. loaded from a pack's YAML file during pack registration)
    auto_detected BOOLEAN NOT NULL DEFAULT FALSE,

    -- Detection metadata for auto-discovered runtimes.
    detection_config JSONB NOT NULL DEFAULT '{}'::jsonb,

    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated TIMESTAMPTZ NOT NULL DEFAULT NOW(),

    -- Constraints
    CONSTRAINT runtime_ref_lowercase CHECK (ref = LOWER(ref))
);

-- Indexes
CREATE INDEX idx_runtime_ref ON runtime(ref);
CREATE INDEX idx_runtime_pack ON runtime(pack);
CREATE INDEX idx_runtime_created ON runtime(created DESC);
CREATE INDEX idx_runtime_name ON runtime(name);
CREATE INDEX idx_runtime_verification ON runtime USING GIN ((distributions->'verification'));
CREATE INDEX idx_runtime_execution_config ON runtime USING GIN (execution_config);
CREATE INDEX idx_runtime_auto_detected ON runtime(auto_detected);
CREATE INDEX idx_runtime_detection_config ON runtime USING GIN (detection_config);
CREATE INDEX idx_runtime_aliases ON runtime USING GIN (aliases);

-- Trigger
CREATE TRIGGER update_runtime_updated
    BEFORE UPDATE ON runtime
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_column();

-- Comments
COMMENT ON TABLE runtime IS 'Runtime environments for executing actions and sensors (unified)';
COMMENT ON COLUMN runtime.ref IS 'Unique runtime reference (format: pack.name, e.g., core.python)';
COMMENT ON COLUMN runtime.name IS 'Runtime name (e.g., "Python", "Node.js", "Shell")';
COMMENT ON COLUMN runtime.aliases IS 'Lowercase alias names for this runtime (e.g., ["ruby", "rb"] for the Ruby runtime). Used for alias-aware matching during auto-detection and scheduling.';
COMMENT ON COLUMN runtime.distributions IS 'Runtime distribution metadata including verification commands, version requirements, and capabilities';
COMMENT ON COLUMN runtime.installation IS 'Installation requirements and instructions including package managers and setup steps';
COMMENT ON COLUMN runtime.installers IS 'Array of installer actions to create pack-specific runtime environments. Each installer defines commands to set up isolated environments (e.g., Python venv, npm install).';
COMMENT ON COLUMN runtime.execution_config IS 'Execution configuration: interpreter, environment setup, and dependency management. Drives how the worker executes actions and how pack install sets up environments.';
COMMENT ON COLUMN runtime.auto_detected IS 'Whether this runtime was auto-registered by an agent (true) vs. loaded from a pack YAML (false)';
COMMENT ON COLUMN runtime.detection_config IS 'Detection metadata for auto-discovered runtimes: binaries probed, version regex, detected path/version';

-- RUNTIME VERSION TABLE

CREATE TABLE runtime_version (
    id BIGSERIAL PRIMARY KEY,
    runtime BIGINT NOT NULL REFERENCES runtime(id) ON DELETE CASCADE,
    runtime_ref TEXT NOT NULL,

    -- Semantic version string (e.g., "3.12.1", "20.11.0")
    version TEXT NOT NULL,

    -- Individual version components for efficient range queries.
    -- Nullable because some runtimes may use non-numeric versioning.
    version_major INT,
    version_minor INT,
    version_patch INT,

    -- Complete execution configuration for this specific version.
    execution_config JSONB NOT NULL DEFAULT '{}'::jsonb,

    -- Version-specific distribution/verification metadata.
    distributions JSONB NOT NULL DEFAULT '{}'::jsonb,

    -- Whether this version is the default for the parent runtime.
    -- At most one version per runtime should be marked as default.
    is_default BOOLEAN NOT NULL DEFAULT FALSE,

    -- Whether this version has been verified as available on the current system.
    available BOOLEAN NOT NULL DEFAULT TRUE,

    -- When this version was last verified (via running verification commands).
    verified_at TIMESTAMPTZ,

    -- Arbitrary version-specific metadata
    meta JSONB NOT NULL DEFAULT '{}'::jsonb,

    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated TIMESTAMPTZ NOT NULL DEFAULT NOW(),

    -- Constraints
    CONSTRAINT runtime_version_unique UNIQUE(runtime, version)
);

-- Indexes
CREATE INDEX idx_runtime_version_runtime ON runtime_version(runtime);
CREATE INDEX idx_runtime_version_runtime_ref ON runtime_version(runtime_ref);
CREATE INDEX idx_runtime_version_version ON runtime_version(version);
CREATE INDEX idx_runtime_version_available ON runtime_version(available) WHERE available = TRUE;
CREATE INDEX idx_runtime_version_is_default ON runtime_version(is_default) WHERE is_default = TRUE;
CREATE INDEX idx_runtime_version_components ON runtime_version(runtime, version_major, version_minor, version_patch);
CREATE INDEX idx_runtime_version_created ON runtime_version(created DESC);
CREATE INDEX idx_runtime_version_execution_config ON runtime_version USING GIN (execution_config);
CREATE INDEX idx_runtime_version_meta ON runtime_version USING GIN (meta);

-- Trigger
CREATE TRIGGER update_runtime_version_updated
    BEFORE UPDATE ON runtime_version
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_column();

-- Comments
COMMENT ON TABLE runtime_version IS 'Specific versions of a runtime (e.g., Python 3.11, 3.12) with version-specific execution configuration';
COMMENT ON COLUMN runtime_version.runtime IS 'Parent runtime this version belongs to';
COMMENT ON COLUMN runtime_version.runtime_ref IS 'Parent runtime ref (e.g., core.python) for display/filtering';
COMMENT ON COLUMN runtime_version.version IS 'Semantic version string (e.g., "3.12.1", "20.11.0")';
COMMENT ON COLUMN runtime_version.version_major IS 'Major version component for efficient range queries';
COMMENT ON COLUMN runtime_version.version_minor IS 'Minor version component for efficient range queries';
COMMENT ON COLUMN runtime_version.version_patch IS 'Patch version component for efficient range queries';
COMMENT ON COLUMN runtime_version.execution_config IS 'Complete execution configuration for this version (same structure as runtime.execution_config)';
COMMENT ON COLUMN runtime_version.distributions IS 'Version-specific distribution/verification metadata';
COMMENT ON COLUMN runtime_version.is_default IS 'Whether this is the default version for the parent runtime (at most one per runtime)';
COMMENT ON COLUMN runtime_version.available IS 'Whether this version has been verified as available on the system';
COMMENT ON COLUMN runtime_version.verified_at IS 'Timestamp of last availability verification';
COMMENT ON COLUMN runtime_version.meta IS 'Arbitrary version-specific metadata';


-- =============================================================================
-- 20250101000003_identity_and_auth.sql
-- =============================================================================

-- identity is included only because pack.installed_by, rule.owner_identity and
-- worker.cordoned_by reference it. Minimal columns: Attune's id and login,
-- copied as written. Left out: display_name, password_hash, attributes,
-- created, updated, frozen (and the indexes/trigger on them).
CREATE TABLE identity (
    id BIGSERIAL PRIMARY KEY,
    login TEXT NOT NULL UNIQUE
);

CREATE INDEX idx_identity_login ON identity(login);

COMMENT ON TABLE identity IS 'Identities represent users or service accounts';
COMMENT ON COLUMN identity.login IS 'Unique login identifier';

-- Add foreign key constraint for pack.installed_by now that identity table exists
ALTER TABLE pack
    ADD CONSTRAINT fk_pack_installed_by
    FOREIGN KEY (installed_by)
    REFERENCES identity(id)
    ON DELETE SET NULL;

-- =============================================================================
-- 20250101000004_trigger_sensor_event_rule.sql
--   (webhook_event_log, enforcement, policy FK and the webhook key function omitted)
-- =============================================================================

DO $$ BEGIN
    CREATE TYPE action_reference_visibility_enum AS ENUM (
        'public',
        'private',
        'restricted'
    );
EXCEPTION
    WHEN duplicate_object THEN null;
END $$;

COMMENT ON TYPE action_reference_visibility_enum IS
    'Controls which packs may reference an action, trigger, or queue from pack-owned components';

-- TRIGGER TABLE

CREATE TABLE trigger (
    id BIGSERIAL PRIMARY KEY,
    ref TEXT NOT NULL UNIQUE,
    pack BIGINT REFERENCES pack(id) ON DELETE CASCADE,
    pack_ref TEXT,
    label TEXT NOT NULL,
    description TEXT,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    is_adhoc BOOLEAN DEFAULT false NOT NULL,
    param_schema JSONB,
    out_schema JSONB,
    webhook_enabled BOOLEAN NOT NULL DEFAULT FALSE,
    webhook_key VARCHAR(64) UNIQUE,
    webhook_config JSONB DEFAULT '{}'::jsonb,
    sensor BIGINT,  -- FK added after sensor table is created
    sensor_ref TEXT,
    reference_visibility action_reference_visibility_enum NOT NULL DEFAULT 'public',
    reference_allowed_pack_refs TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated TIMESTAMPTZ NOT NULL DEFAULT NOW(),

    -- Constraints
    CONSTRAINT trigger_ref_lowercase CHECK (ref = LOWER(ref)),
    CONSTRAINT trigger_ref_format CHECK (ref ~ '^[^.]+\.[^.]+$'),
    CONSTRAINT trigger_reference_allowed_pack_refs_non_null
        CHECK (array_position(reference_allowed_pack_refs, NULL) IS NULL),
    CONSTRAINT trigger_reference_allowed_pack_refs_restricted_only
        CHECK (reference_visibility = 'restricted' OR cardinality(reference_allowed_pack_refs) = 0)
);

-- Indexes
CREATE INDEX idx_trigger_ref ON trigger(ref);
CREATE INDEX idx_trigger_pack ON trigger(pack);
CREATE INDEX idx_trigger_enabled ON trigger(enabled) WHERE enabled = TRUE;
CREATE INDEX idx_trigger_created ON trigger(created DESC);
CREATE INDEX idx_trigger_pack_enabled ON trigger(pack, enabled);
CREATE INDEX idx_trigger_webhook_key ON trigger(webhook_key) WHERE webhook_key IS NOT NULL;
CREATE INDEX idx_trigger_enabled_created ON trigger(enabled, created DESC) WHERE enabled = TRUE;
CREATE INDEX idx_trigger_sensor ON trigger(sensor) WHERE sensor IS NOT NULL;
CREATE INDEX idx_trigger_reference_visibility ON trigger(reference_visibility);
CREATE INDEX idx_trigger_reference_allowed_pack_refs ON trigger USING GIN (reference_allowed_pack_refs);

-- Trigger
CREATE TRIGGER update_trigger_updated
    BEFORE UPDATE ON trigger
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_column();

-- Comments
COMMENT ON TABLE trigger IS 'Trigger definitions that can activate rules';
COMMENT ON COLUMN trigger.ref IS 'Unique trigger reference (format: pack.name)';
COMMENT ON COLUMN trigger.label IS 'Human-readable trigger name';
COMMENT ON COLUMN trigger.enabled IS 'Whether this trigger is active';
COMMENT ON COLUMN trigger.param_schema IS 'JSON schema defining the expected configuration parameters when this trigger is used';
COMMENT ON COLUMN trigger.out_schema IS 'JSON schema defining the structure of event payloads generated by this trigger';
COMMENT ON COLUMN trigger.reference_visibility IS 'Pack-level reference visibility: public triggers may be subscribed to by rules from any pack; private triggers only by rules in their owning pack; restricted triggers by their owning pack and reference_allowed_pack_refs.';
COMMENT ON COLUMN trigger.reference_allowed_pack_refs IS 'Allow-list of pack refs that may subscribe to this trigger when reference_visibility is restricted.';

-- SENSOR TABLE

CREATE TABLE sensor (
    id BIGSERIAL PRIMARY KEY,
    ref TEXT NOT NULL UNIQUE,
    pack BIGINT REFERENCES pack(id) ON DELETE CASCADE,
    pack_ref TEXT,
    label TEXT NOT NULL,
    description TEXT,
    entrypoint TEXT NOT NULL,
    runtime BIGINT NOT NULL REFERENCES runtime(id) ON DELETE CASCADE,
    runtime_ref TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    is_adhoc BOOLEAN NOT NULL DEFAULT FALSE,
    param_schema JSONB,
    config JSONB,
    runtime_version_constraint TEXT,
    worker_selector JSONB NOT NULL DEFAULT '{}'::jsonb,
    worker_tolerations JSONB NOT NULL DEFAULT '[]'::jsonb,
    worker_affinity JSONB NOT NULL DEFAULT '{}'::jsonb,
    log_retention_policy artifact_retention_enum,
    log_retention_limit INTEGER,
    artifact_retention_policy artifact_retention_enum,
    artifact_retention_limit INTEGER,
    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated TIMESTAMPTZ NOT NULL DEFAULT NOW(),

    -- Constraints
    CONSTRAINT sensor_ref_lowercase CHECK (ref = LOWER(ref)),
    CONSTRAINT sensor_ref_format CHECK (ref ~ '^[^.]+\.[^.]+$'),
    CONSTRAINT sensor_log_retention_limit_positive CHECK (log_retention_limit IS NULL OR log_retention_limit > 0),
    CONSTRAINT sensor_artifact_retention_limit_positive CHECK (artifact_retention_limit IS NULL OR artifact_retention_limit > 0)
);

-- Indexes
CREATE INDEX idx_sensor_ref ON sensor(ref);
CREATE INDEX idx_sensor_pack ON sensor(pack);
CREATE INDEX idx_sensor_runtime ON sensor(runtime);
CREATE INDEX idx_sensor_enabled ON sensor(enabled) WHERE enabled = TRUE;
CREATE INDEX idx_sensor_is_adhoc ON sensor(is_adhoc) WHERE is_adhoc = true;
CREATE INDEX idx_sensor_created ON sensor(created DESC);
CREATE INDEX idx_sensor_worker_selector_gin ON sensor USING GIN (worker_selector);
CREATE INDEX idx_sensor_worker_tolerations_gin ON sensor USING GIN (worker_tolerations);
CREATE INDEX idx_sensor_worker_affinity_gin ON sensor USING GIN (worker_affinity);

-- Add FK from trigger.sensor → sensor(id) now that sensor table exists
ALTER TABLE trigger ADD CONSTRAINT trigger_sensor_fk FOREIGN KEY (sensor) REFERENCES sensor(id) ON DELETE SET NULL;

-- Trigger
CREATE TRIGGER update_sensor_updated
    BEFORE UPDATE ON sensor
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_column();

-- Comments
COMMENT ON TABLE sensor IS 'Sensors monitor for events and create trigger instances';
COMMENT ON COLUMN sensor.ref IS 'Unique sensor reference (format: pack.name)';
COMMENT ON COLUMN sensor.label IS 'Human-readable sensor name';
COMMENT ON COLUMN sensor.entrypoint IS 'Script or command to execute';
COMMENT ON COLUMN sensor.runtime IS 'Runtime environment for execution';
COMMENT ON COLUMN sensor.enabled IS 'Whether this sensor is active';
COMMENT ON COLUMN sensor.is_adhoc IS 'True if sensor was manually created (ad-hoc), false if installed from pack';
COMMENT ON COLUMN sensor.runtime_version_constraint IS 'Semver version constraint for the runtime (e.g., ">=3.12", ">=3.12,<4.0", "~18.0"). NULL means any version.';
COMMENT ON COLUMN sensor.worker_selector IS 'Exact sensor-worker label selector required to run this sensor';
COMMENT ON COLUMN sensor.worker_tolerations IS 'Tolerations allowing this sensor onto tainted sensor workers';
COMMENT ON COLUMN sensor.worker_affinity IS 'Required/preferred/anti-affinity placement rules for sensor workers';
COMMENT ON COLUMN sensor.log_retention_policy IS 'Optional per-sensor override for registered stdout/stderr log artifact retention policy. NULL inherits the service default.';
COMMENT ON COLUMN sensor.log_retention_limit IS 'Optional per-sensor override for registered stdout/stderr log artifact retention limit. NULL inherits the service default.';
COMMENT ON COLUMN sensor.artifact_retention_policy IS 'Optional per-sensor default retention policy for non-log artifacts created by this sensor. NULL uses API defaults.';
COMMENT ON COLUMN sensor.artifact_retention_limit IS 'Optional per-sensor default retention limit for non-log artifacts created by this sensor. NULL uses API defaults.';

-- EVENT TABLE

CREATE TABLE event (
    id BIGSERIAL NOT NULL,
    trigger BIGINT REFERENCES trigger(id) ON DELETE SET NULL,
    trigger_ref TEXT NOT NULL,
    config JSONB,
    payload JSONB,
    source BIGINT REFERENCES sensor(id) ON DELETE SET NULL,
    source_ref TEXT,
    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    rule BIGINT,
    rule_ref TEXT,
    PRIMARY KEY (id, created)
) PARTITION BY RANGE (created);

CREATE TABLE event_default PARTITION OF event DEFAULT;

-- Indexes
CREATE INDEX idx_event_trigger ON event(trigger);
CREATE INDEX idx_event_trigger_ref ON event(trigger_ref);
CREATE INDEX idx_event_source ON event(source);
CREATE INDEX idx_event_created ON event(created DESC);
CREATE INDEX idx_event_trigger_created ON event(trigger, created DESC);
CREATE INDEX idx_event_trigger_ref_created ON event(trigger_ref, created DESC);
CREATE INDEX idx_event_source_created ON event(source, created DESC);
CREATE INDEX idx_event_payload_gin ON event USING GIN (payload);

-- Comments
COMMENT ON TABLE event IS 'Events are instances of triggers firing';
COMMENT ON COLUMN event.trigger IS 'Trigger that fired (may be null if trigger deleted)';
COMMENT ON COLUMN event.trigger_ref IS 'Trigger reference (preserved even if trigger deleted)';
COMMENT ON COLUMN event.config IS 'Snapshot of trigger/sensor configuration at event time';
COMMENT ON COLUMN event.payload IS 'Event data payload';
COMMENT ON COLUMN event.source IS 'Sensor that generated this event';

-- ACTION TABLE
-- stub: only the id column, referenced by FK (rule.action). The real action
-- table (20250101000004, later altered by 000006 and the 2026091x catalog
-- migrations) has many more columns, constraints and triggers.
CREATE TABLE action (
    id BIGSERIAL PRIMARY KEY
);

-- EVENT NOTIFICATIONS
-- Function text is the final version from 20260902000002_related_notification_trace_tags.sql.
-- 20250101000004 created it, and 20250101000020 then 20260902000002 replaced it.
-- The trigger comes from 20250101000004 and the COMMENT from 20250101000020.
CREATE OR REPLACE FUNCTION notify_event_created()
RETURNS TRIGGER AS $$
DECLARE
    payload JSON;
    compact JSON;
BEGIN
    payload := json_build_object(
        'entity_type', 'event',
        'entity_id', NEW.id,
        'id', NEW.id,
        'trigger', NEW.trigger,
        'trigger_ref', NEW.trigger_ref,
        'source', NEW.source,
        'source_ref', NEW.source_ref,
        'rule', NEW.rule,
        'rule_ref', NEW.rule_ref,
        'trace_tag', NEW.trace_tag,
        'has_payload', NEW.payload IS NOT NULL,
        'created', NEW.created,
        'auth_mode', 'full'
    );

    compact := json_build_object(
        'entity_type', 'event',
        'entity_id', NEW.id,
        'id', NEW.id,
        'trigger_ref', NEW.trigger_ref,
        'rule_ref', NEW.rule_ref,
        'trace_tag', NEW.trace_tag,
        'auth_mode', 'deferred'
    );

    PERFORM _notify_payload_guard('event_created', payload::text, compact::text);

    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER event_created_notify
    AFTER INSERT ON event
    FOR EACH ROW
    EXECUTE FUNCTION notify_event_created();

COMMENT ON FUNCTION notify_event_created() IS 'Sends event creation notifications via PostgreSQL LISTEN/NOTIFY';


-- =============================================================================
-- 20250101000005_execution_and_operations.sql
--   (execution, execution_secret_value, inquiry, notification, views and helper
--    functions omitted)
-- =============================================================================

CREATE TABLE rule (
    id BIGSERIAL PRIMARY KEY,
    ref TEXT NOT NULL UNIQUE,
    pack BIGINT NOT NULL REFERENCES pack(id) ON DELETE CASCADE,
    pack_ref TEXT NOT NULL,
    label TEXT NOT NULL,
    description TEXT,
    action BIGINT REFERENCES action(id) ON DELETE SET NULL,
    action_ref TEXT NOT NULL,
    trigger BIGINT REFERENCES trigger(id) ON DELETE SET NULL,
    trigger_ref TEXT NOT NULL,
    conditions JSONB NOT NULL DEFAULT '[]'::jsonb,
    action_params JSONB DEFAULT '{}'::jsonb,
    trigger_params JSONB DEFAULT '{}'::jsonb,
    permission_set_refs TEXT[],
    enabled BOOLEAN NOT NULL,
    is_adhoc BOOLEAN NOT NULL DEFAULT FALSE,
    owner_identity BIGINT REFERENCES identity(id) ON DELETE SET NULL,
    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated TIMESTAMPTZ NOT NULL DEFAULT NOW(),

    -- Constraints
    CONSTRAINT rule_ref_lowercase CHECK (ref = LOWER(ref)),
    CONSTRAINT rule_ref_format CHECK (ref ~ '^[^.]+\.[^.]+$')
);

-- Indexes
CREATE INDEX idx_rule_ref ON rule(ref);
CREATE INDEX idx_rule_pack ON rule(pack);
CREATE INDEX idx_rule_action ON rule(action);
CREATE INDEX idx_rule_trigger ON rule(trigger);
CREATE INDEX idx_rule_enabled ON rule(enabled) WHERE enabled = TRUE;
CREATE INDEX idx_rule_is_adhoc ON rule(is_adhoc) WHERE is_adhoc = true;
CREATE INDEX idx_rule_created ON rule(created DESC);
CREATE INDEX idx_rule_trigger_enabled ON rule(trigger, enabled);
CREATE INDEX idx_rule_action_enabled ON rule(action, enabled);
CREATE INDEX idx_rule_pack_enabled ON rule(pack, enabled);
CREATE INDEX idx_rule_action_params_gin ON rule USING GIN (action_params);
CREATE INDEX idx_rule_trigger_params_gin ON rule USING GIN (trigger_params);
CREATE INDEX idx_rule_permission_set_refs ON rule USING GIN (permission_set_refs) WHERE permission_set_refs IS NOT NULL;
CREATE INDEX idx_rule_owner_identity ON rule(owner_identity);

-- Trigger
CREATE TRIGGER update_rule_updated
    BEFORE UPDATE ON rule
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_column();

-- Comments
COMMENT ON TABLE rule IS 'Rules link triggers to actions with conditions';
COMMENT ON COLUMN rule.ref IS 'Unique rule reference (format: pack.name)';
COMMENT ON COLUMN rule.label IS 'Human-readable rule name';
COMMENT ON COLUMN rule.action IS 'Action to execute when rule triggers (null if action deleted)';
COMMENT ON COLUMN rule.trigger IS 'Trigger that activates this rule (null if trigger deleted)';
COMMENT ON COLUMN rule.conditions IS 'Condition expressions to evaluate before executing action';
COMMENT ON COLUMN rule.action_params IS 'Parameter overrides for the action';
COMMENT ON COLUMN rule.trigger_params IS 'Parameter overrides for the trigger';
COMMENT ON COLUMN rule.permission_set_refs IS 'Optional override for execution-scoped API token permission sets. NULL inherits the action default; empty array forces no token.';
COMMENT ON COLUMN rule.enabled IS 'Whether this rule is active';
COMMENT ON COLUMN rule.is_adhoc IS 'True if rule was manually created (ad-hoc), false if installed from pack';
COMMENT ON COLUMN rule.owner_identity IS 'Identity that registered the rule. Used to attribute rule-triggered executions. NULL for system-loaded rules (init pack loader).';

-- Add foreign key constraints now that rule table exists
-- (enforcement_rule_fkey omitted: enforcement is not part of this fixture)
ALTER TABLE event
    ADD CONSTRAINT event_rule_fkey
    FOREIGN KEY (rule) REFERENCES rule(id) ON DELETE SET NULL;

-- WORKER TABLE

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

-- Indexes
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

-- Trigger
CREATE TRIGGER update_worker_updated
    BEFORE UPDATE ON worker
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_column();

-- Comments
COMMENT ON TABLE worker IS 'Worker registration and tracking table for action and sensor workers';
COMMENT ON COLUMN worker.name IS 'Unique worker identifier (typically hostname-based)';
COMMENT ON COLUMN worker.worker_type IS 'Worker deployment type (local or remote)';
COMMENT ON COLUMN worker.worker_role IS 'Worker role (action or sensor)';
COMMENT ON COLUMN worker.runtime IS 'Runtime environment this worker supports (optional)';
COMMENT ON COLUMN worker.host IS 'Worker host address';
COMMENT ON COLUMN worker.port IS 'Worker port number';
COMMENT ON COLUMN worker.status IS 'Worker operational status';
COMMENT ON COLUMN worker.capabilities IS 'Worker capabilities (e.g., max_concurrent_executions, supported runtimes)';
COMMENT ON COLUMN worker.meta IS 'Additional worker metadata';
COMMENT ON COLUMN worker.last_heartbeat IS 'Timestamp of last heartbeat from worker';
COMMENT ON COLUMN worker.cordoned IS 'Operator cordon flag: cordoned workers are intentionally unschedulable';
COMMENT ON COLUMN worker.cordon_reason IS 'Optional operator-provided reason for cordoning the worker';
COMMENT ON COLUMN worker.cordoned_by IS 'Identity that last cordoned this worker';
COMMENT ON COLUMN worker.cordoned_at IS 'Timestamp when the worker was last cordoned';

-- (execution_worker_fkey omitted: execution is not part of this fixture)

-- SENSOR_PROCESS TABLE

CREATE TABLE sensor_process (
    id                           BIGSERIAL PRIMARY KEY,
    sensor                       BIGINT NOT NULL REFERENCES sensor(id) ON DELETE CASCADE,
    sensor_ref                   TEXT NOT NULL,
    worker                       BIGINT NOT NULL REFERENCES worker(id) ON DELETE CASCADE,
    worker_name                  TEXT NOT NULL,
    status                       sensor_process_status_enum NOT NULL DEFAULT 'starting',
    pid                          INTEGER,
    consecutive_failures         INTEGER NOT NULL DEFAULT 0,
    last_exit_code               INTEGER,
    last_signal                  INTEGER,
    last_started_at              TIMESTAMPTZ,
    last_stopped_at              TIMESTAMPTZ,
    next_restart_at              TIMESTAMPTZ,
    stderr_excerpt               TEXT,
    log_artifact_ref             TEXT,
    active_rule_count            INTEGER NOT NULL DEFAULT 0,
    last_alerted_failure_count   INTEGER NOT NULL DEFAULT 0,
    last_alerted_at              TIMESTAMPTZ,
    meta                         JSONB NOT NULL DEFAULT '{}'::jsonb,
    created                      TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated                      TIMESTAMPTZ NOT NULL DEFAULT NOW(),

    CONSTRAINT sensor_process_pid_positive CHECK (pid IS NULL OR pid > 0),
    CONSTRAINT sensor_process_failures_nonnegative CHECK (consecutive_failures >= 0),
    CONSTRAINT sensor_process_active_rules_nonnegative CHECK (active_rule_count >= 0),
    CONSTRAINT sensor_process_alerted_failures_nonnegative CHECK (last_alerted_failure_count >= 0)
);

CREATE UNIQUE INDEX ux_sensor_process_sensor_worker
    ON sensor_process(sensor, worker);
CREATE UNIQUE INDEX ux_sensor_process_sensor_ref_worker_name
    ON sensor_process(sensor_ref, worker_name);
CREATE INDEX idx_sensor_process_sensor
    ON sensor_process(sensor);
CREATE INDEX idx_sensor_process_sensor_ref
    ON sensor_process(sensor_ref);
CREATE INDEX idx_sensor_process_worker
    ON sensor_process(worker);
CREATE INDEX idx_sensor_process_worker_status
    ON sensor_process(worker, status);
CREATE INDEX idx_sensor_process_status
    ON sensor_process(status);
CREATE INDEX idx_sensor_process_next_restart
    ON sensor_process(next_restart_at)
    WHERE status = 'backoff' AND next_restart_at IS NOT NULL;
CREATE INDEX idx_sensor_process_meta_gin
    ON sensor_process USING GIN (meta);

CREATE TRIGGER update_sensor_process_updated
    BEFORE UPDATE ON sensor_process
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_column();

COMMENT ON TABLE sensor_process IS 'Live durable state for managed pack sensor processes';
COMMENT ON COLUMN sensor_process.sensor_ref IS 'Denormalized sensor ref for lookup and history after sensor changes';
COMMENT ON COLUMN sensor_process.worker_name IS 'Denormalized owning worker name for lookup and history after worker changes';
COMMENT ON COLUMN sensor_process.stderr_excerpt IS 'Recent stderr excerpt captured when a process exits unexpectedly';
COMMENT ON COLUMN sensor_process.log_artifact_ref IS 'Artifact ref for the durable sensor process log stream';
COMMENT ON COLUMN sensor_process.active_rule_count IS 'Number of enabled rules currently associated with this sensor';
COMMENT ON COLUMN sensor_process.last_alerted_failure_count IS 'Failure count most recently included in a supervisor alert';

-- =============================================================================
-- 20250101000009_timescaledb_history.sql  (version without TimescaleDB)
--   Only the worker / sensor_process history parts, because their triggers sit
--   on worker and sensor_process. execution_history, _jsonb_digest_summary()
--   and the hourly views are omitted.
-- =============================================================================

-- worker_history

CREATE TABLE worker_history (
    time             TIMESTAMPTZ    NOT NULL DEFAULT NOW(),
    operation        TEXT           NOT NULL,
    entity_id        BIGINT         NOT NULL,
    entity_ref       TEXT,
    changed_fields   TEXT[]         NOT NULL DEFAULT '{}',
    old_values       JSONB,
    new_values       JSONB
);

CREATE INDEX idx_worker_history_time ON worker_history (time DESC);

CREATE INDEX idx_worker_history_entity
    ON worker_history (entity_id, time DESC);

CREATE INDEX idx_worker_history_entity_ref
    ON worker_history (entity_ref, time DESC);

CREATE INDEX idx_worker_history_status_changes
    ON worker_history (time DESC)
    WHERE 'status' = ANY(changed_fields);

CREATE INDEX idx_worker_history_changed_fields
    ON worker_history USING GIN (changed_fields);

COMMENT ON TABLE worker_history IS 'Append-only history of field-level changes to the worker table';
COMMENT ON COLUMN worker_history.entity_ref IS 'Denormalized worker name for JOIN-free queries';

-- sensor_process_history

CREATE TABLE sensor_process_history (
    time             TIMESTAMPTZ    NOT NULL DEFAULT NOW(),
    operation        TEXT           NOT NULL,
    entity_id        BIGINT         NOT NULL,
    entity_ref       TEXT           NOT NULL,
    worker_id        BIGINT,
    worker_name      TEXT,
    changed_fields   TEXT[]         NOT NULL DEFAULT '{}',
    old_values       JSONB,
    new_values       JSONB
);

CREATE INDEX idx_sensor_process_history_time ON sensor_process_history (time DESC);

CREATE INDEX idx_sensor_process_history_entity
    ON sensor_process_history (entity_id, time DESC);
CREATE INDEX idx_sensor_process_history_entity_ref
    ON sensor_process_history (entity_ref, time DESC);
CREATE INDEX idx_sensor_process_history_worker
    ON sensor_process_history (worker_id, time DESC);
CREATE INDEX idx_sensor_process_history_status_changes
    ON sensor_process_history (time DESC)
    WHERE 'status' = ANY(changed_fields);
CREATE INDEX idx_sensor_process_history_changed_fields
    ON sensor_process_history USING GIN (changed_fields);

COMMENT ON TABLE sensor_process_history IS 'Append-only history of field-level changes to sensor_process live state';
COMMENT ON COLUMN sensor_process_history.entity_ref IS 'Denormalized sensor ref for JOIN-free queries';
COMMENT ON COLUMN sensor_process_history.worker_name IS 'Denormalized worker name for JOIN-free queries';

-- Events are immutable after insert, with a partition-compatible (id, created) key.
COMMENT ON TABLE event IS 'Events are instances of triggers firing';

-- worker history trigger
-- Tracked fields: name, status, capabilities, meta, host, port, cordon state
-- Excludes: last_heartbeat when it is the only field that changed

CREATE OR REPLACE FUNCTION record_worker_history()
RETURNS TRIGGER AS $$
DECLARE
    changed TEXT[] := '{}';
    old_vals JSONB := '{}';
    new_vals JSONB := '{}';
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO worker_history (time, operation, entity_id, entity_ref, changed_fields, old_values, new_values)
        VALUES (NOW(), 'INSERT', NEW.id, NEW.name, '{}', NULL,
                jsonb_build_object(
                    'name', NEW.name,
                    'worker_type', NEW.worker_type,
                    'worker_role', NEW.worker_role,
                    'status', NEW.status,
                    'capabilities', NEW.capabilities,
                    'meta', NEW.meta,
                    'host', NEW.host,
                    'port', NEW.port,
                    'cordoned', NEW.cordoned,
                    'cordon_reason', NEW.cordon_reason,
                    'cordoned_by', NEW.cordoned_by,
                    'cordoned_at', NEW.cordoned_at
                ));
        RETURN NEW;
    END IF;

    IF TG_OP = 'DELETE' THEN
        INSERT INTO worker_history (time, operation, entity_id, entity_ref, changed_fields, old_values, new_values)
        VALUES (NOW(), 'DELETE', OLD.id, OLD.name, '{}', to_jsonb(OLD), NULL);
        RETURN OLD;
    END IF;

    -- UPDATE: detect which fields changed
    IF OLD.name IS DISTINCT FROM NEW.name THEN
        changed := array_append(changed, 'name');
        old_vals := old_vals || jsonb_build_object('name', OLD.name);
        new_vals := new_vals || jsonb_build_object('name', NEW.name);
    END IF;

    IF OLD.status IS DISTINCT FROM NEW.status THEN
        changed := array_append(changed, 'status');
        old_vals := old_vals || jsonb_build_object('status', OLD.status);
        new_vals := new_vals || jsonb_build_object('status', NEW.status);
    END IF;

    IF OLD.capabilities IS DISTINCT FROM NEW.capabilities THEN
        changed := array_append(changed, 'capabilities');
        old_vals := old_vals || jsonb_build_object('capabilities', OLD.capabilities);
        new_vals := new_vals || jsonb_build_object('capabilities', NEW.capabilities);
    END IF;

    IF OLD.meta IS DISTINCT FROM NEW.meta THEN
        changed := array_append(changed, 'meta');
        old_vals := old_vals || jsonb_build_object('meta', OLD.meta);
        new_vals := new_vals || jsonb_build_object('meta', NEW.meta);
    END IF;

    IF OLD.host IS DISTINCT FROM NEW.host THEN
        changed := array_append(changed, 'host');
        old_vals := old_vals || jsonb_build_object('host', OLD.host);
        new_vals := new_vals || jsonb_build_object('host', NEW.host);
    END IF;

    IF OLD.port IS DISTINCT FROM NEW.port THEN
        changed := array_append(changed, 'port');
        old_vals := old_vals || jsonb_build_object('port', OLD.port);
        new_vals := new_vals || jsonb_build_object('port', NEW.port);
    END IF;

    IF OLD.cordoned IS DISTINCT FROM NEW.cordoned THEN
        changed := array_append(changed, 'cordoned');
        old_vals := old_vals || jsonb_build_object('cordoned', OLD.cordoned);
        new_vals := new_vals || jsonb_build_object('cordoned', NEW.cordoned);
    END IF;

    IF OLD.cordon_reason IS DISTINCT FROM NEW.cordon_reason THEN
        changed := array_append(changed, 'cordon_reason');
        old_vals := old_vals || jsonb_build_object('cordon_reason', OLD.cordon_reason);
        new_vals := new_vals || jsonb_build_object('cordon_reason', NEW.cordon_reason);
    END IF;

    IF OLD.cordoned_by IS DISTINCT FROM NEW.cordoned_by THEN
        changed := array_append(changed, 'cordoned_by');
        old_vals := old_vals || jsonb_build_object('cordoned_by', OLD.cordoned_by);
        new_vals := new_vals || jsonb_build_object('cordoned_by', NEW.cordoned_by);
    END IF;

    IF OLD.cordoned_at IS DISTINCT FROM NEW.cordoned_at THEN
        changed := array_append(changed, 'cordoned_at');
        old_vals := old_vals || jsonb_build_object('cordoned_at', OLD.cordoned_at);
        new_vals := new_vals || jsonb_build_object('cordoned_at', NEW.cordoned_at);
    END IF;

    -- Only record if something besides last_heartbeat changed.
    -- Pure heartbeat-only updates are excluded to avoid high-volume noise.
    IF array_length(changed, 1) > 0 THEN
        INSERT INTO worker_history (time, operation, entity_id, entity_ref, changed_fields, old_values, new_values)
        VALUES (NOW(), 'UPDATE', NEW.id, NEW.name, changed, old_vals, new_vals);
    END IF;

    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

COMMENT ON FUNCTION record_worker_history() IS 'Records field-level changes to worker table in worker_history. Excludes heartbeat-only updates.';

-- sensor process history trigger

CREATE OR REPLACE FUNCTION record_sensor_process_history()
RETURNS TRIGGER AS $$
DECLARE
    changed TEXT[] := '{}';
    old_vals JSONB := '{}';
    new_vals JSONB := '{}';
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO sensor_process_history (
            time, operation, entity_id, entity_ref, worker_id, worker_name,
            changed_fields, old_values, new_values
        )
        VALUES (
            NEW.created,
            'INSERT',
            NEW.id,
            NEW.sensor_ref,
            NEW.worker,
            NEW.worker_name,
            '{}',
            NULL,
            jsonb_build_object(
                'sensor', NEW.sensor,
                'sensor_ref', NEW.sensor_ref,
                'worker', NEW.worker,
                'worker_name', NEW.worker_name,
                'status', NEW.status,
                'pid', NEW.pid,
                'consecutive_failures', NEW.consecutive_failures,
                'last_exit_code', NEW.last_exit_code,
                'last_signal', NEW.last_signal,
                'last_started_at', NEW.last_started_at,
                'last_stopped_at', NEW.last_stopped_at,
                'next_restart_at', NEW.next_restart_at,
                'stderr_excerpt', NEW.stderr_excerpt,
                'log_artifact_ref', NEW.log_artifact_ref,
                'active_rule_count', NEW.active_rule_count,
                'last_alerted_failure_count', NEW.last_alerted_failure_count,
                'last_alerted_at', NEW.last_alerted_at,
                'meta', NEW.meta
            )
        );
        RETURN NEW;
    END IF;

    IF TG_OP = 'DELETE' THEN
        INSERT INTO sensor_process_history (
            time, operation, entity_id, entity_ref, worker_id, worker_name,
            changed_fields, old_values, new_values
        )
        VALUES (
            NOW(),
            'DELETE',
            OLD.id,
            OLD.sensor_ref,
            OLD.worker,
            OLD.worker_name,
            '{}',
            to_jsonb(OLD),
            NULL
        );
        RETURN OLD;
    END IF;

    IF OLD.sensor_ref IS DISTINCT FROM NEW.sensor_ref THEN
        changed := array_append(changed, 'sensor_ref');
        old_vals := old_vals || jsonb_build_object('sensor_ref', OLD.sensor_ref);
        new_vals := new_vals || jsonb_build_object('sensor_ref', NEW.sensor_ref);
    END IF;

    IF OLD.worker_name IS DISTINCT FROM NEW.worker_name THEN
        changed := array_append(changed, 'worker_name');
        old_vals := old_vals || jsonb_build_object('worker_name', OLD.worker_name);
        new_vals := new_vals || jsonb_build_object('worker_name', NEW.worker_name);
    END IF;

    IF OLD.status IS DISTINCT FROM NEW.status THEN
        changed := array_append(changed, 'status');
        old_vals := old_vals || jsonb_build_object('status', OLD.status);
        new_vals := new_vals || jsonb_build_object('status', NEW.status);
    END IF;

    IF OLD.pid IS DISTINCT FROM NEW.pid THEN
        changed := array_append(changed, 'pid');
        old_vals := old_vals || jsonb_build_object('pid', OLD.pid);
        new_vals := new_vals || jsonb_build_object('pid', NEW.pid);
    END IF;

    IF OLD.consecutive_failures IS DISTINCT FROM NEW.consecutive_failures THEN
        changed := array_append(changed, 'consecutive_failures');
        old_vals := old_vals || jsonb_build_object('consecutive_failures', OLD.consecutive_failures);
        new_vals := new_vals || jsonb_build_object('consecutive_failures', NEW.consecutive_failures);
    END IF;

    IF OLD.last_exit_code IS DISTINCT FROM NEW.last_exit_code THEN
        changed := array_append(changed, 'last_exit_code');
        old_vals := old_vals || jsonb_build_object('last_exit_code', OLD.last_exit_code);
        new_vals := new_vals || jsonb_build_object('last_exit_code', NEW.last_exit_code);
    END IF;

    IF OLD.last_signal IS DISTINCT FROM NEW.last_signal THEN
        changed := array_append(changed, 'last_signal');
        old_vals := old_vals || jsonb_build_object('last_signal', OLD.last_signal);
        new_vals := new_vals || jsonb_build_object('last_signal', NEW.last_signal);
    END IF;

    IF OLD.last_started_at IS DISTINCT FROM NEW.last_started_at THEN
        changed := array_append(changed, 'last_started_at');
        old_vals := old_vals || jsonb_build_object('last_started_at', OLD.last_started_at);
        new_vals := new_vals || jsonb_build_object('last_started_at', NEW.last_started_at);
    END IF;

    IF OLD.last_stopped_at IS DISTINCT FROM NEW.last_stopped_at THEN
        changed := array_append(changed, 'last_stopped_at');
        old_vals := old_vals || jsonb_build_object('last_stopped_at', OLD.last_stopped_at);
        new_vals := new_vals || jsonb_build_object('last_stopped_at', NEW.last_stopped_at);
    END IF;

    IF OLD.next_restart_at IS DISTINCT FROM NEW.next_restart_at THEN
        changed := array_append(changed, 'next_restart_at');
        old_vals := old_vals || jsonb_build_object('next_restart_at', OLD.next_restart_at);
        new_vals := new_vals || jsonb_build_object('next_restart_at', NEW.next_restart_at);
    END IF;

    IF OLD.stderr_excerpt IS DISTINCT FROM NEW.stderr_excerpt THEN
        changed := array_append(changed, 'stderr_excerpt');
        old_vals := old_vals || jsonb_build_object('stderr_excerpt', OLD.stderr_excerpt);
        new_vals := new_vals || jsonb_build_object('stderr_excerpt', NEW.stderr_excerpt);
    END IF;

    IF OLD.log_artifact_ref IS DISTINCT FROM NEW.log_artifact_ref THEN
        changed := array_append(changed, 'log_artifact_ref');
        old_vals := old_vals || jsonb_build_object('log_artifact_ref', OLD.log_artifact_ref);
        new_vals := new_vals || jsonb_build_object('log_artifact_ref', NEW.log_artifact_ref);
    END IF;

    IF OLD.active_rule_count IS DISTINCT FROM NEW.active_rule_count THEN
        changed := array_append(changed, 'active_rule_count');
        old_vals := old_vals || jsonb_build_object('active_rule_count', OLD.active_rule_count);
        new_vals := new_vals || jsonb_build_object('active_rule_count', NEW.active_rule_count);
    END IF;

    IF OLD.last_alerted_failure_count IS DISTINCT FROM NEW.last_alerted_failure_count THEN
        changed := array_append(changed, 'last_alerted_failure_count');
        old_vals := old_vals || jsonb_build_object('last_alerted_failure_count', OLD.last_alerted_failure_count);
        new_vals := new_vals || jsonb_build_object('last_alerted_failure_count', NEW.last_alerted_failure_count);
    END IF;

    IF OLD.last_alerted_at IS DISTINCT FROM NEW.last_alerted_at THEN
        changed := array_append(changed, 'last_alerted_at');
        old_vals := old_vals || jsonb_build_object('last_alerted_at', OLD.last_alerted_at);
        new_vals := new_vals || jsonb_build_object('last_alerted_at', NEW.last_alerted_at);
    END IF;

    IF OLD.meta IS DISTINCT FROM NEW.meta THEN
        changed := array_append(changed, 'meta');
        old_vals := old_vals || jsonb_build_object('meta', OLD.meta);
        new_vals := new_vals || jsonb_build_object('meta', NEW.meta);
    END IF;

    IF array_length(changed, 1) > 0 THEN
        INSERT INTO sensor_process_history (
            time, operation, entity_id, entity_ref, worker_id, worker_name,
            changed_fields, old_values, new_values
        )
        VALUES (
            NEW.updated,
            'UPDATE',
            NEW.id,
            NEW.sensor_ref,
            NEW.worker,
            NEW.worker_name,
            changed,
            old_vals,
            new_vals
        );
    END IF;

    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

COMMENT ON FUNCTION record_sensor_process_history() IS 'Records field-level changes to sensor_process in sensor_process_history';

-- ATTACH TRIGGERS TO OPERATIONAL TABLES  (execution_history_trigger omitted)

CREATE TRIGGER worker_history_trigger
    AFTER INSERT OR UPDATE OR DELETE ON worker
    FOR EACH ROW
    EXECUTE FUNCTION record_worker_history();

CREATE TRIGGER sensor_process_history_trigger
    AFTER INSERT OR UPDATE OR DELETE ON sensor_process
    FOR EACH ROW
    EXECUTE FUNCTION record_sensor_process_history();


-- =============================================================================
-- 20250101000014_runtime_retention_supervisor.sql  (only the comments on tables in this fixture)
-- =============================================================================

COMMENT ON TABLE event IS
    'Events are instances of triggers firing; row retention is managed by attune-supervisor.';
COMMENT ON TABLE worker_history IS
    'Append-only history of field-level changes to the worker table; row retention is managed by attune-supervisor.';
COMMENT ON TABLE sensor_process_history IS
    'Append-only history of field-level changes to sensor_process live state; row retention is managed by attune-supervisor.';


-- =============================================================================
-- 20250101000015_metadata_cache_sync.sql
--   (triggers on action, work_queue, workflow_definition, policy, permission_set
--    and the permission-assignment variant omitted: those tables are not here)
-- =============================================================================

CREATE OR REPLACE FUNCTION notify_metadata_changed()
RETURNS TRIGGER AS $$
DECLARE
    current_row JSONB;
    old_row JSONB;
    payload JSONB;
BEGIN
    current_row := CASE
        WHEN TG_OP = 'DELETE' THEN to_jsonb(OLD)
        ELSE to_jsonb(NEW)
    END;

    old_row := CASE
        WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD)
        ELSE '{}'::jsonb
    END;

    payload := jsonb_build_object(
        'entity', TG_TABLE_NAME,
        'operation', TG_OP,
        'id', (current_row ->> 'id')::BIGINT,
        'ref', current_row ->> 'ref',
        'pack', CASE WHEN current_row ? 'pack' THEN (current_row ->> 'pack')::BIGINT ELSE NULL END,
        'enabled', CASE WHEN current_row ? 'enabled' THEN (current_row ->> 'enabled')::BOOLEAN ELSE NULL END,
        'action', CASE WHEN current_row ? 'action' THEN (current_row ->> 'action')::BIGINT ELSE NULL END,
        'trigger', CASE WHEN current_row ? 'trigger' THEN (current_row ->> 'trigger')::BIGINT ELSE NULL END,
        'sensor', CASE WHEN current_row ? 'sensor' THEN (current_row ->> 'sensor')::BIGINT ELSE NULL END,
        'runtime', CASE WHEN current_row ? 'runtime' THEN (current_row ->> 'runtime')::BIGINT ELSE NULL END,
        'runtime_ref', CASE WHEN current_row ? 'runtime_ref' THEN current_row ->> 'runtime_ref' ELSE NULL END,
        'version', CASE WHEN current_row ? 'version' THEN current_row ->> 'version' ELSE NULL END,
        'workflow_def', CASE WHEN current_row ? 'workflow_def' THEN (current_row ->> 'workflow_def')::BIGINT ELSE NULL END,
        'webhook_key', CASE WHEN current_row ? 'webhook_key' THEN current_row ->> 'webhook_key' ELSE NULL END,
        'name', CASE WHEN current_row ? 'name' THEN current_row ->> 'name' ELSE NULL END,
        'aliases', CASE WHEN current_row ? 'aliases' THEN current_row -> 'aliases' ELSE NULL END,
        'available', CASE WHEN current_row ? 'available' THEN (current_row ->> 'available')::BOOLEAN ELSE NULL END,
        'accepting_new_items', CASE WHEN current_row ? 'accepting_new_items' THEN (current_row ->> 'accepting_new_items')::BOOLEAN ELSE NULL END,
        'old_ref', CASE WHEN old_row ? 'ref' THEN old_row ->> 'ref' ELSE NULL END,
        'old_pack', CASE WHEN old_row ? 'pack' THEN (old_row ->> 'pack')::BIGINT ELSE NULL END,
        'old_enabled', CASE WHEN old_row ? 'enabled' THEN (old_row ->> 'enabled')::BOOLEAN ELSE NULL END,
        'old_action', CASE WHEN old_row ? 'action' THEN (old_row ->> 'action')::BIGINT ELSE NULL END,
        'old_trigger', CASE WHEN old_row ? 'trigger' THEN (old_row ->> 'trigger')::BIGINT ELSE NULL END,
        'old_sensor', CASE WHEN old_row ? 'sensor' THEN (old_row ->> 'sensor')::BIGINT ELSE NULL END,
        'old_runtime', CASE WHEN old_row ? 'runtime' THEN (old_row ->> 'runtime')::BIGINT ELSE NULL END,
        'old_runtime_ref', CASE WHEN old_row ? 'runtime_ref' THEN old_row ->> 'runtime_ref' ELSE NULL END,
        'old_version', CASE WHEN old_row ? 'version' THEN old_row ->> 'version' ELSE NULL END,
        'old_workflow_def', CASE WHEN old_row ? 'workflow_def' THEN (old_row ->> 'workflow_def')::BIGINT ELSE NULL END,
        'old_webhook_key', CASE WHEN old_row ? 'webhook_key' THEN old_row ->> 'webhook_key' ELSE NULL END,
        'old_name', CASE WHEN old_row ? 'name' THEN old_row ->> 'name' ELSE NULL END,
        'old_aliases', CASE WHEN old_row ? 'aliases' THEN old_row -> 'aliases' ELSE NULL END,
        'old_available', CASE WHEN old_row ? 'available' THEN (old_row ->> 'available')::BOOLEAN ELSE NULL END,
        'old_accepting_new_items', CASE WHEN old_row ? 'accepting_new_items' THEN (old_row ->> 'accepting_new_items')::BOOLEAN ELSE NULL END
    );

    PERFORM pg_notify('metadata_changed', payload::TEXT);

    RETURN CASE
        WHEN TG_OP = 'DELETE' THEN OLD
        ELSE NEW
    END;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER rule_metadata_changed_notify
    AFTER INSERT OR UPDATE OR DELETE ON rule
    FOR EACH ROW
    EXECUTE FUNCTION notify_metadata_changed();

CREATE TRIGGER trigger_metadata_changed_notify
    AFTER INSERT OR UPDATE OR DELETE ON trigger
    FOR EACH ROW
    EXECUTE FUNCTION notify_metadata_changed();

CREATE TRIGGER sensor_metadata_changed_notify
    AFTER INSERT OR UPDATE OR DELETE ON sensor
    FOR EACH ROW
    EXECUTE FUNCTION notify_metadata_changed();

CREATE TRIGGER runtime_metadata_changed_notify
    AFTER INSERT OR UPDATE OR DELETE ON runtime
    FOR EACH ROW
    EXECUTE FUNCTION notify_metadata_changed();

CREATE TRIGGER runtime_version_metadata_changed_notify
    AFTER INSERT OR UPDATE OR DELETE ON runtime_version
    FOR EACH ROW
    EXECUTE FUNCTION notify_metadata_changed();

COMMENT ON FUNCTION notify_metadata_changed() IS
    'Sends compact metadata cache notifications via PostgreSQL LISTEN/NOTIFY for cacheable metadata tables';


-- =============================================================================
-- 20250101000015_trace_tags.sql  (execution/work_queue parts omitted)
-- =============================================================================

ALTER TABLE rule
    ADD COLUMN trace_tag_template TEXT;

COMMENT ON COLUMN rule.trace_tag_template IS
    'Optional template used to resolve trace_tag for executions created from this rule. Defaults to <trigger_ref>.<event_id> when unset.';


-- =============================================================================
-- 20250101000016_source_trace_tags.sql  (work_queue_item part omitted)
-- =============================================================================

ALTER TABLE event
    ADD COLUMN trace_tag TEXT;

CREATE INDEX idx_event_trace_tag
    ON event(trace_tag)
    WHERE trace_tag IS NOT NULL;

COMMENT ON COLUMN event.trace_tag IS
    'Optional source trace tag attached at event creation (explicit request or execution-token inheritance). Used as fallback when rule trace_tag_template is unset.';


-- =============================================================================
-- 20250101000020_notification_payload_envelope.sql
--   (only the shared size guard; its notify_event_created text was replaced
--    again by 20260902000002 and appears in the event section above)
-- =============================================================================

-- Emit `full_payload` if it fits within the safe NOTIFY size budget, otherwise
-- emit `compact_payload`. PostgreSQL's NOTIFY payload hard limit is 8000 bytes;
-- 7000 leaves headroom for channel/frame overhead and multibyte encodings.
CREATE OR REPLACE FUNCTION _notify_payload_guard(
    channel TEXT,
    full_payload TEXT,
    compact_payload TEXT
)
RETURNS VOID AS $$
BEGIN
    IF octet_length(full_payload) <= 7000 THEN
        PERFORM pg_notify(channel, full_payload);
    ELSE
        PERFORM pg_notify(channel, compact_payload);
    END IF;
END;
$$ LANGUAGE plpgsql;

COMMENT ON FUNCTION _notify_payload_guard(TEXT, TEXT, TEXT) IS
    'Emits full NOTIFY payload when within the 7000-byte safe budget, else a compact fallback.';


-- =============================================================================
-- 20260818000002_pack_install_status.sql  (pack_install table omitted)
-- =============================================================================

-- Mark packs as pending while installation activities (including automated
-- tests) are in progress.
ALTER TABLE pack
    ADD COLUMN IF NOT EXISTS install_status TEXT NOT NULL DEFAULT 'installed'
        CONSTRAINT valid_pack_install_status
        CHECK (install_status IN ('pending', 'installed', 'install_failed'));


-- =============================================================================
-- 20260821000001_pack_worker_placement.sql
-- =============================================================================

ALTER TABLE pack
    ADD COLUMN worker_selector JSONB NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN worker_tolerations JSONB NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN worker_affinity JSONB NOT NULL DEFAULT '{}'::jsonb;

COMMENT ON COLUMN pack.worker_selector IS 'Mandatory worker labels inherited by every pack action, sensor, and pack test';
COMMENT ON COLUMN pack.worker_tolerations IS 'Mandatory worker tolerations inherited by every pack action, sensor, and pack test';
COMMENT ON COLUMN pack.worker_affinity IS 'Mandatory worker affinity inherited by every pack action, sensor, and pack test';


-- =============================================================================
-- 20260902000003_sensor_workload_assignment.sql
-- =============================================================================

CREATE TABLE sensor_workload (
    id BIGSERIAL PRIMARY KEY,
    sensor BIGINT NOT NULL REFERENCES sensor(id) ON DELETE CASCADE,
    workload_key TEXT NOT NULL,
    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT sensor_workload_key_nonempty CHECK (BTRIM(workload_key) <> ''),
    CONSTRAINT uq_sensor_workload_sensor_key UNIQUE (sensor, workload_key)
);

CREATE INDEX idx_sensor_workload_sensor ON sensor_workload(sensor);

CREATE TRIGGER update_sensor_workload_updated
    BEFORE UPDATE ON sensor_workload
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_column();

CREATE TABLE sensor_workload_assignment (
    workload BIGINT PRIMARY KEY REFERENCES sensor_workload(id) ON DELETE CASCADE,
    worker BIGINT REFERENCES worker(id) ON DELETE RESTRICT,
    worker_instance UUID,
    generation BIGINT NOT NULL DEFAULT 0,
    lease_expires_at TIMESTAMPTZ,
    assigned_at TIMESTAMPTZ,
    renewed_at TIMESTAMPTZ,
    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT sensor_workload_assignment_generation_nonnegative CHECK (generation >= 0),
    CONSTRAINT sensor_workload_assignment_owner_complete CHECK (
        (
            worker IS NULL
            AND worker_instance IS NULL
            AND lease_expires_at IS NULL
            AND assigned_at IS NULL
            AND renewed_at IS NULL
        )
        OR
        (
            worker IS NOT NULL
            AND worker_instance IS NOT NULL
            AND lease_expires_at IS NOT NULL
            AND assigned_at IS NOT NULL
            AND renewed_at IS NOT NULL
        )
    )
);

CREATE INDEX idx_sensor_workload_assignment_worker
    ON sensor_workload_assignment(worker)
    WHERE worker IS NOT NULL;

CREATE INDEX idx_sensor_workload_assignment_lease
    ON sensor_workload_assignment(lease_expires_at)
    WHERE worker IS NOT NULL;

CREATE TRIGGER update_sensor_workload_assignment_updated
    BEFORE UPDATE ON sensor_workload_assignment
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_column();

ALTER TABLE rule
    ADD COLUMN sensor_worker_selector JSONB NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN sensor_worker_tolerations JSONB NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN sensor_worker_affinity JSONB NOT NULL DEFAULT '{}'::jsonb,
    ADD CONSTRAINT rule_sensor_worker_selector_object
        CHECK (jsonb_typeof(sensor_worker_selector) = 'object'),
    ADD CONSTRAINT rule_sensor_worker_tolerations_array
        CHECK (jsonb_typeof(sensor_worker_tolerations) = 'array'),
    ADD CONSTRAINT rule_sensor_worker_affinity_object
        CHECK (jsonb_typeof(sensor_worker_affinity) = 'object');


-- =============================================================================
-- 20260909000001_pack_releases.sql
-- =============================================================================

CREATE TABLE pack_release (
    id BIGSERIAL PRIMARY KEY,
    pack BIGINT NOT NULL REFERENCES pack(id) ON DELETE CASCADE,
    pack_ref TEXT NOT NULL,
    version TEXT NOT NULL,
    digest TEXT NOT NULL,
    archive_path TEXT NOT NULL,
    content_path TEXT NOT NULL,
    archive_size BIGINT NOT NULL CHECK (archive_size >= 0),
    manifest JSONB NOT NULL,
    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),

    CONSTRAINT pack_release_pack_version_unique UNIQUE (pack, version),
    CONSTRAINT pack_release_pack_id_unique UNIQUE (pack, id),
    CONSTRAINT pack_release_digest_sha256 CHECK (digest ~ '^[0-9a-f]{64}$'),
    CONSTRAINT pack_release_manifest_object CHECK (jsonb_typeof(manifest) = 'object')
);

CREATE INDEX idx_pack_release_pack_created ON pack_release(pack, created DESC);
CREATE INDEX idx_pack_release_digest ON pack_release(digest);

ALTER TABLE pack
    ADD COLUMN active_release BIGINT,
    ADD CONSTRAINT pack_active_release_same_pack
        FOREIGN KEY (id, active_release)
        REFERENCES pack_release(pack, id)
        DEFERRABLE INITIALLY DEFERRED;

COMMENT ON TABLE pack_release IS
    'Immutable, digest-verified filesystem releases for packs';
COMMENT ON COLUMN pack_release.manifest IS
    'Executable file metadata for the exact archived release';
COMMENT ON COLUMN pack.active_release IS
    'Release whose metadata is projected into the active component tables';


-- =============================================================================
-- 20260909000002_async_pack_release_pins.sql
--   (execution / enforcement / work_queue_item parts and record_execution_history omitted)
-- =============================================================================

ALTER TABLE sensor_workload
    ADD COLUMN pack_release BIGINT REFERENCES pack_release(id) ON DELETE SET NULL,
    ADD COLUMN pack_release_digest TEXT,
    ADD COLUMN executable_snapshot JSONB,
    ADD CONSTRAINT sensor_workload_release_pin_complete CHECK (
        (pack_release IS NULL AND pack_release_digest IS NULL AND executable_snapshot IS NULL)
        OR (pack_release_digest IS NOT NULL AND executable_snapshot IS NOT NULL)
    ),
    ADD CONSTRAINT sensor_workload_release_digest_sha256 CHECK (
        pack_release_digest IS NULL OR pack_release_digest ~ '^[0-9a-f]{64}$'
    );

COMMENT ON COLUMN sensor_workload.executable_snapshot IS
    'Immutable sensor and runtime metadata selected for the desired managed sensor';


-- =============================================================================
-- 20260909000004_immutable_log_segments.sql  (STUB ONLY)
-- =============================================================================

-- stub: only id plus the artifact_version column that enqueue_deleted_object()
-- reads (plpgsql plans its IF expression, so the relation must exist before a
-- pack_release DELETE can run). The real log_stream also has
-- max_unflushed_bytes, max_unflushed_milliseconds, next_sequence, total_bytes,
-- truncated, sealed, created, sealed_at, backend, and artifact_version is
-- "BIGINT NOT NULL UNIQUE REFERENCES artifact_version(id) ON DELETE CASCADE".
-- That FK is left out because artifact_version is not in this fixture.
CREATE TABLE log_stream (
    id BIGSERIAL PRIMARY KEY,
    artifact_version BIGINT NOT NULL UNIQUE
);


-- =============================================================================
-- 20260909000005_pack_release_object_storage.sql
-- =============================================================================

ALTER TABLE pack_release
    ADD COLUMN object_key TEXT,
    ADD COLUMN provider_version TEXT,
    ALTER COLUMN archive_path DROP NOT NULL;

ALTER TABLE pack_release
    ADD CONSTRAINT pack_release_object_pointer_complete CHECK (
        (object_key IS NULL AND provider_version IS NULL)
        OR (object_key IS NOT NULL AND provider_version IS NOT NULL)
    );

COMMENT ON COLUMN pack_release.object_key IS
    'Content-addressed BlobStore key for the immutable release archive';
COMMENT ON COLUMN pack_release.provider_version IS
    'Opaque exact object version used for every archive read';


-- =============================================================================
-- 20260909000006_storage_migration_maintenance.sql  (artifact_version parts omitted)
-- =============================================================================

ALTER TABLE pack_release
    ADD COLUMN legacy_snapshot_expires_at TIMESTAMPTZ;

COMMENT ON COLUMN pack_release.legacy_snapshot_expires_at IS
    'Earliest time the migrated filesystem archive may be removed';


-- =============================================================================
-- 20260909000007_bounded_object_retention.sql
--   (backfill UPDATE/INSERTs, execution/enforcement/work_queue_item indexes,
--    artifact_version/log_segment triggers and enforce_artifact_retention omitted)
-- =============================================================================

ALTER TABLE pack_release
    ADD COLUMN inactive_since TIMESTAMPTZ;

CREATE INDEX idx_pack_release_inactive_retention
    ON pack_release(pack, inactive_since DESC, id DESC)
    WHERE inactive_since IS NOT NULL;
CREATE INDEX idx_sensor_workload_pack_release_pin
    ON sensor_workload(pack_release) WHERE pack_release IS NOT NULL;

CREATE TABLE object_maintenance_ledger (
    id BIGSERIAL PRIMARY KEY,
    object_key TEXT NOT NULL UNIQUE,
    provider_version TEXT,
    object_kind TEXT NOT NULL CHECK (object_kind IN ('pack', 'artifact', 'log')),
    size_bytes BIGINT CHECK (size_bytes IS NULL OR size_bytes >= 0),
    state TEXT NOT NULL DEFAULT 'uploading'
        CHECK (state IN ('uploading', 'ready', 'deletion_pending', 'deleting')),
    eligible_at TIMESTAMPTZ,
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error TEXT,
    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CHECK ((state = 'uploading' AND provider_version IS NULL)
        OR (state <> 'uploading' AND provider_version IS NOT NULL))
);

CREATE INDEX idx_object_maintenance_collect
    ON object_maintenance_ledger(state, eligible_at, updated, id);

CREATE OR REPLACE FUNCTION enqueue_deleted_object()
RETURNS TRIGGER AS $$
DECLARE
    v_size BIGINT;
BEGIN
    IF TG_TABLE_NAME = 'artifact_version'
       AND EXISTS (SELECT 1 FROM log_stream WHERE artifact_version = OLD.id) THEN
        RETURN OLD;
    END IF;
    IF OLD.object_key IS NOT NULL AND OLD.provider_version IS NOT NULL THEN
        IF TG_TABLE_NAME = 'pack_release' THEN
            v_size := OLD.archive_size;
        ELSE
            v_size := OLD.size_bytes;
        END IF;
        INSERT INTO object_maintenance_ledger
            (object_key, provider_version, object_kind, size_bytes, state, eligible_at, updated)
        VALUES (
            OLD.object_key,
            OLD.provider_version,
            TG_ARGV[0],
            v_size,
            'deletion_pending',
            NOW(),
            NOW()
        )
        ON CONFLICT (object_key) DO UPDATE
        SET state = 'deletion_pending', eligible_at = NOW(), updated = NOW(), last_error = NULL
        WHERE object_maintenance_ledger.provider_version = EXCLUDED.provider_version;
    END IF;
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER trg_pack_release_enqueue_object
    BEFORE DELETE ON pack_release FOR EACH ROW
    EXECUTE FUNCTION enqueue_deleted_object('pack');

COMMENT ON COLUMN pack_release.inactive_since IS
    'Time this release stopped being active; NULL means active or never activated';
COMMENT ON TABLE object_maintenance_ledger IS
    'Durable upload and exact-version object deletion work; collectors never list buckets';


-- =============================================================================
-- 20260916000001_platform_catalog.sql
--   (platform_catalog_state and intrinsic_handler tables omitted; every DO
--    loop is cut down to the component tables in this fixture)
-- =============================================================================

-- Coordinated maintenance migration. Stop old writers and revoke their database
-- credentials before applying this migration. The epoch is not an old-binary fence.
CREATE TYPE management_origin AS ENUM ('platform', 'pack', 'ad_hoc');

-- Ownership is stored, but cannot disagree with the existing owner and ad-hoc
-- fields. Associated pack IDs on ad-hoc components are not lifecycle ownership.
DO $$
DECLARE
    component TEXT;
    owner_column TEXT;
    adhoc_expression TEXT;
BEGIN
    -- fixture: Attune's array is ARRAY['runtime', 'permission_set', 'trigger', 'action', 'sensor', 'rule',
    --          'policy', 'work_queue', 'workflow_definition', 'dashboard', 'cache_namespace']
    FOREACH component IN ARRAY ARRAY[
        'runtime', 'trigger', 'sensor', 'rule'
    ] LOOP
        owner_column := CASE WHEN component = 'cache_namespace' THEN 'managing_pack' ELSE 'pack' END;
        adhoc_expression := CASE WHEN component IN (
            'trigger', 'action', 'sensor', 'rule', 'work_queue', 'dashboard'
        ) THEN 'is_adhoc OR ' ELSE '' END;
        EXECUTE format('ALTER TABLE %I
            ADD COLUMN catalog_revision INTEGER CHECK (catalog_revision > 0),
            ADD COLUMN managed_release BIGINT,
            ADD COLUMN management_origin management_origin GENERATED ALWAYS AS (
                CASE WHEN catalog_revision IS NOT NULL THEN ''platform''::management_origin
                     WHEN %s%I IS NULL THEN ''ad_hoc''::management_origin
                     ELSE ''pack''::management_origin END
            ) STORED,
            ADD CONSTRAINT %I CHECK (catalog_revision IS NULL OR (%I IS NULL AND NOT (%sFALSE)))',
            component, adhoc_expression, owner_column,
            component || '_platform_owner', owner_column, adhoc_expression);
        EXECUTE format('ALTER TABLE %I
            ADD CONSTRAINT %I FOREIGN KEY (%I, managed_release) REFERENCES pack_release(pack, id) DEFERRABLE INITIALLY DEFERRED,
            ADD CONSTRAINT %I CHECK (management_origin = ''pack'' OR managed_release IS NULL)',
            component, component || '_managed_release_owner', owner_column, component || '_managed_release_origin');
        EXECUTE format('UPDATE %I c SET managed_release = p.active_release FROM pack p
            WHERE c.%I = p.id AND c.management_origin = ''pack''', component, owner_column);
    END LOOP;
END $$;

-- Final text from 20260916000002_catalog_bootstrap_and_release_lock.sql
-- (20260916000001 first created it with CREATE FUNCTION and no FOR SHARE).
CREATE OR REPLACE FUNCTION set_component_managed_release() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE owner_id BIGINT;
BEGIN
    owner_id := (to_jsonb(NEW)->>TG_ARGV[0])::BIGINT;
    IF NEW.catalog_revision IS NOT NULL OR owner_id IS NULL OR
       COALESCE((to_jsonb(NEW)->>'is_adhoc')::BOOLEAN, FALSE) THEN
        NEW.managed_release := NULL;
    ELSIF TG_OP = 'INSERT' OR
          (to_jsonb(NEW)->TG_ARGV[0]) IS DISTINCT FROM (to_jsonb(OLD)->TG_ARGV[0]) THEN
        -- FOR KEY SHARE does not conflict with an active_release update.
        -- SHARE waits for activation and reads its committed release, or makes
        -- activation wait until this insertion is visible to its projection sweep.
        SELECT active_release INTO NEW.managed_release FROM pack
            WHERE id = owner_id FOR SHARE;
    END IF;
    RETURN NEW;
END $$;

DO $$
DECLARE component TEXT;
BEGIN
    -- fixture: Attune's array is ARRAY['runtime', 'permission_set', 'trigger', 'action', 'sensor', 'rule',
    --          'policy', 'work_queue', 'workflow_definition', 'dashboard', 'cache_namespace']
    FOREACH component IN ARRAY ARRAY[
        'runtime', 'trigger', 'sensor', 'rule'
    ] LOOP
        EXECUTE format('CREATE TRIGGER set_component_managed_release BEFORE INSERT OR UPDATE ON %I
            FOR EACH ROW EXECUTE FUNCTION set_component_managed_release(%L)',
            component, CASE WHEN component = 'cache_namespace' THEN 'managing_pack' ELSE 'pack' END);
    END LOOP;
END $$;

-- New binaries opt into catalog writes only within the reconciliation transaction.
-- This is an application invariant, not authorization against a SQL credential holder.
CREATE FUNCTION guard_platform_component() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.catalog_revision IS NOT NULL THEN
            RAISE EXCEPTION 'platform-owned % cannot be deleted', TG_TABLE_NAME;
        END IF;
        RETURN OLD;
    END IF;
    IF NEW.catalog_revision IS NOT NULL OR
       (TG_OP = 'UPDATE' AND OLD.catalog_revision IS NOT NULL) THEN
        IF current_setting('attune.catalog_write', true) IS DISTINCT FROM 'on' THEN
            RAISE EXCEPTION 'platform-owned % may only be changed by catalog reconciliation', TG_TABLE_NAME;
        END IF;
        IF TG_OP = 'UPDATE' AND OLD.catalog_revision IS NOT NULL AND
           (NEW.catalog_revision IS NULL OR NEW.catalog_revision < OLD.catalog_revision OR
            (to_jsonb(NEW)->'ref') IS DISTINCT FROM (to_jsonb(OLD)->'ref')) THEN
            RAISE EXCEPTION 'platform ownership and revision cannot be downgraded';
        END IF;
    END IF;
    RETURN NEW;
END $$;

DO $$
DECLARE component TEXT;
BEGIN
    -- fixture: Attune's array is ARRAY['runtime', 'permission_set', 'trigger', 'action', 'sensor', 'rule',
    --          'policy', 'work_queue', 'workflow_definition', 'dashboard', 'cache_namespace',
    --          'intrinsic_handler']
    FOREACH component IN ARRAY ARRAY[
        'runtime', 'trigger', 'sensor', 'rule'
    ] LOOP
        EXECUTE format('CREATE TRIGGER guard_platform_component BEFORE INSERT OR UPDATE OR DELETE ON %I
            FOR EACH ROW EXECUTE FUNCTION guard_platform_component()', component);
    END LOOP;
END $$;

CREATE FUNCTION guard_platform_runtime_version() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE parent_id BIGINT;
BEGIN
    parent_id := CASE WHEN TG_OP = 'DELETE' THEN OLD.runtime ELSE NEW.runtime END;
    IF EXISTS (SELECT 1 FROM runtime WHERE id = parent_id AND catalog_revision IS NOT NULL)
       OR (TG_OP = 'UPDATE' AND EXISTS (
           SELECT 1 FROM runtime WHERE id = OLD.runtime AND catalog_revision IS NOT NULL
       )) THEN
        -- Host verification is operational state, not catalog metadata.
        IF TG_OP = 'UPDATE' AND
           (to_jsonb(NEW) - ARRAY['available', 'verified_at', 'updated']) =
           (to_jsonb(OLD) - ARRAY['available', 'verified_at', 'updated']) THEN
            RETURN NEW;
        END IF;
        IF current_setting('attune.catalog_write', true) IS DISTINCT FROM 'on' THEN
            RAISE EXCEPTION 'platform runtime versions may only be changed by catalog reconciliation';
        END IF;
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER guard_platform_runtime_version BEFORE INSERT OR UPDATE OR DELETE ON runtime_version
    FOR EACH ROW EXECUTE FUNCTION guard_platform_runtime_version();


-- =============================================================================
-- 20260916000002_catalog_bootstrap_and_release_lock.sql
--   platform_catalog_state.bootstrap_definitions omitted (table not here);
--   its set_component_managed_release() text is used above.
-- =============================================================================


-- =============================================================================
-- 20260916000003_component_retirement.sql
-- =============================================================================

-- Pack projection lifecycle. Omitted definitions retain their identity and every
-- external relationship; only new-work resolution excludes retired rows.
DO $$
DECLARE component TEXT;
BEGIN
    -- fixture: Attune's array is ARRAY['runtime', 'permission_set', 'trigger', 'action', 'sensor', 'rule',
    --          'policy', 'work_queue', 'workflow_definition', 'dashboard', 'cache_namespace']
    FOREACH component IN ARRAY ARRAY[
        'runtime', 'trigger', 'sensor', 'rule'
    ] LOOP
        EXECUTE format('ALTER TABLE %I ADD COLUMN retired_at TIMESTAMPTZ', component);
        EXECUTE format('CREATE INDEX %I ON %I (retired_at) WHERE retired_at IS NULL',
            'idx_' || component || '_active', component);
    END LOOP;
END $$;

ALTER TABLE runtime_version ADD COLUMN retired_at TIMESTAMPTZ;
CREATE INDEX idx_runtime_version_active ON runtime_version (runtime, version)
    WHERE retired_at IS NULL;

-- Pack YAML owns `enabled`. Operators own this nullable override. Admission uses
-- COALESCE(enabled_override, enabled), so pack updates never erase an override.
DO $$
DECLARE component TEXT;
BEGIN
    -- fixture: Attune's array is ARRAY['trigger', 'action', 'sensor', 'rule', 'policy', 'work_queue', 'dashboard']
    FOREACH component IN ARRAY ARRAY[
        'trigger', 'sensor', 'rule'
    ] LOOP
        EXECUTE format('ALTER TABLE %I ADD COLUMN enabled_override BOOLEAN, ADD COLUMN effective_enabled BOOLEAN GENERATED ALWAYS AS (COALESCE(enabled_override, enabled)) STORED', component);
    END LOOP;
END $$;

-- A retired child cannot become selectable while its runtime remains retired.
CREATE OR REPLACE FUNCTION guard_runtime_version_lifecycle() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.retired_at IS NULL AND EXISTS (
        SELECT 1 FROM runtime WHERE id = NEW.runtime AND retired_at IS NOT NULL
    ) THEN
        RAISE EXCEPTION 'active runtime version requires an active parent runtime';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER guard_runtime_version_lifecycle
    BEFORE INSERT OR UPDATE OF runtime, retired_at ON runtime_version
    FOR EACH ROW EXECUTE FUNCTION guard_runtime_version_lifecycle();


-- =============================================================================
-- 20260919000002_absent_metadata_policy.sql
--   (absent_metadata_policy enum / pack_install column, pack_release_executable
--    table and all backfill UPDATE/INSERT statements omitted)
-- =============================================================================

ALTER TABLE runtime_version
    ADD COLUMN managed_release BIGINT REFERENCES pack_release(id)
        DEFERRABLE INITIALLY DEFERRED;

CREATE FUNCTION guard_runtime_version_managed_release() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.managed_release IS NOT NULL AND NOT EXISTS (
        SELECT 1
        FROM runtime r
        JOIN pack_release pr ON pr.id = NEW.managed_release AND pr.pack = r.pack
        WHERE r.id = NEW.runtime AND r.management_origin = 'pack'
    ) THEN
        RAISE EXCEPTION 'runtime version managed release must belong to its runtime pack';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER guard_runtime_version_managed_release
    BEFORE INSERT OR UPDATE OF runtime, managed_release ON runtime_version
    FOR EACH ROW EXECUTE FUNCTION guard_runtime_version_managed_release();

-- Omission is an independent admission gate. Pack declarations and operator
-- overrides retain their existing ownership and become effective again when
-- the component reappears.
DO $$
DECLARE component TEXT;
BEGIN
    -- fixture: Attune's array is ARRAY['trigger', 'action', 'sensor', 'rule', 'policy', 'work_queue', 'dashboard']
    FOREACH component IN ARRAY ARRAY[
        'trigger', 'sensor', 'rule'
    ] LOOP
        EXECUTE format('ALTER TABLE %I ADD COLUMN omission_disabled BOOLEAN NOT NULL DEFAULT FALSE', component);
        EXECUTE format('ALTER TABLE %I DROP COLUMN effective_enabled', component);
        EXECUTE format('ALTER TABLE %I ADD COLUMN effective_enabled BOOLEAN GENERATED ALWAYS AS (NOT omission_disabled AND COALESCE(enabled_override, enabled)) STORED', component);
    END LOOP;
END $$;


-- =============================================================================
-- 20261006000001_native_partitions.sql
--   "SET LOCAL TIME ZONE 'UTC';" and "LOCK TABLE ONLY event, ONLY execution_history,
--   ONLY audit_event IN ACCESS EXCLUSIVE MODE;" omitted: both only work inside
--   a transaction block and only make sense during a live migration.
--   runtime_retention_config.native_maintenance and native_maintenance_schedule
--   omitted. The DO loop is cut down to 'event'.
-- =============================================================================

CREATE TYPE native_partition_parent AS ENUM ('event', 'execution_history', 'audit_event');
CREATE TABLE native_partition_registry (
    id BIGSERIAL PRIMARY KEY,
    parent native_partition_parent NOT NULL,
    partition_name TEXT NOT NULL UNIQUE,
    lower_bound TIMESTAMPTZ NOT NULL,
    upper_bound TIMESTAMPTZ NOT NULL,
    created TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (parent, lower_bound),
    CHECK (lower_bound = date_trunc('day', lower_bound, 'UTC')),
    CHECK (upper_bound = lower_bound + interval '24 hours')
);

-- NOTE: this creates event_pYYYYMMDD leaves for "today" (UTC) through today+7
-- when the fixture is loaded, and registers them, exactly as the migration does.
DO $$
DECLARE
    parent_name TEXT; col TEXT; leaf TEXT; day TIMESTAMPTZ;
    today TIMESTAMPTZ := date_trunc('day', now(), 'UTC');
    has_rows BOOLEAN;
BEGIN
    -- fixture: Attune's array is ARRAY['event', 'execution_history', 'audit_event']
    FOREACH parent_name IN ARRAY ARRAY['event'] LOOP
        col := CASE parent_name WHEN 'execution_history' THEN 'time' ELSE 'created' END;
        IF NOT EXISTS (
            SELECT 1 FROM pg_class c
            WHERE c.oid = to_regclass(parent_name) AND c.relkind = 'p'
                AND pg_get_partkeydef(c.oid) = format('RANGE (%I)', col)
        ) OR NOT EXISTS (
            SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = to_regclass(parent_name)
                AND c.oid = to_regclass(parent_name || '_default')
                AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'
        ) THEN
            RAISE EXCEPTION 'Native partition setup requires the canonical RANGE parent and DEFAULT partition: %', parent_name
                USING ERRCODE = '55000';
        END IF;
        -- Earlier history/audit writes outside this window can stay in DEFAULT.
        -- Do not copy them or invent historical leaves during installation.
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM ONLY %I WHERE %I >= $1 AND %I < $2)',
            parent_name || '_default', col, col)
            INTO has_rows USING today, today + interval '8 days';
        IF has_rows THEN
            RAISE EXCEPTION 'Native partition setup requires an empty initial UTC window in DEFAULT: %', parent_name
                USING ERRCODE = '55000';
        END IF;
        FOR day IN SELECT today + n * interval '1 day' FROM generate_series(0, 7) n LOOP
            leaf := parent_name || '_p' || to_char(day AT TIME ZONE 'UTC', 'YYYYMMDD');
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                leaf, parent_name, day, day + interval '1 day');
            INSERT INTO native_partition_registry(parent, partition_name, lower_bound, upper_bound)
            VALUES (parent_name::native_partition_parent, leaf, day, day + interval '1 day');
        END LOOP;
    END LOOP;
END $$;


-- =============================================================================
-- 20261006000002_hourly_summaries.sql
--   Only the objects the event (and worker_history) statement triggers need:
--   native_summary_kind, native_summary_invalidation and native_summary_notify().
--   Left out: native_summary_state, native_summary_hour, the *_hourly_summary
--   tables, the GRANT DO block, and the native_partition_* maintenance functions.
-- =============================================================================

CREATE TYPE native_summary_kind AS ENUM ('execution_status', 'execution_creation', 'event_volume', 'worker_status');

-- No FK to the builder state. Producers must not wait on its FOR UPDATE lock.
CREATE TABLE native_summary_invalidation (
    id BIGSERIAL PRIMARY KEY,
    kind native_summary_kind NOT NULL,
    bucket TIMESTAMPTZ NOT NULL CHECK (bucket = date_trunc('hour', bucket, 'UTC')),
    created TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    -- Full top-level transaction ID. Imported origin values are not ownership
    -- evidence: producers additionally verify the marker's actual system xmin.
    transaction_origin xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX idx_native_summary_invalidation_bucket ON native_summary_invalidation(kind, bucket, id);
CREATE INDEX idx_native_summary_invalidation_created ON native_summary_invalidation(created);
CREATE INDEX idx_native_summary_invalidation_origin ON native_summary_invalidation(kind, bucket, transaction_origin);

CREATE FUNCTION native_summary_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    -- Bind the volatile xid getter once. Cached SPI plans can use this typed
    -- parameter as the third origin-index condition, with xmin a heap check.
    v_origin xid8 := pg_current_xact_id();
    v_xmin xid := v_origin::xid;
    v_status native_summary_kind := CASE TG_TABLE_NAME
        WHEN 'execution_history' THEN 'execution_status'::native_summary_kind
        ELSE 'worker_status'::native_summary_kind END;
    v_creation BOOLEAN := TG_TABLE_NAME = 'execution_history';
    v_group RECORD;
BEGIN
    -- Static transition-table queries retain per-trigger SPI plans. In the
    -- common execution INSERT case, irrelevant status rows produce no group.
    -- Check existing ownership before running any INSERT/default machinery.
    IF TG_TABLE_NAME = 'event' THEN
        IF TG_OP = 'INSERT' THEN
            FOR v_group IN SELECT DISTINCT date_trunc('hour', created, 'UTC') AS bucket FROM native_new LOOP
                IF NOT EXISTS (SELECT 1 FROM native_summary_invalidation i
                    WHERE i.kind='event_volume' AND i.bucket=v_group.bucket AND i.transaction_origin=v_origin AND i.xmin=v_xmin) THEN
                    INSERT INTO native_summary_invalidation(kind,bucket) VALUES ('event_volume',v_group.bucket);
                END IF;
            END LOOP;
        ELSIF TG_OP = 'DELETE' THEN
            FOR v_group IN SELECT DISTINCT date_trunc('hour', created, 'UTC') AS bucket FROM native_old LOOP
                IF NOT EXISTS (SELECT 1 FROM native_summary_invalidation i
                    WHERE i.kind='event_volume' AND i.bucket=v_group.bucket AND i.transaction_origin=v_origin AND i.xmin=v_xmin) THEN
                    INSERT INTO native_summary_invalidation(kind,bucket) VALUES ('event_volume',v_group.bucket);
                END IF;
            END LOOP;
        ELSE
            FOR v_group IN SELECT DISTINCT date_trunc('hour', created, 'UTC') AS bucket
                FROM (SELECT created FROM native_old UNION ALL SELECT created FROM native_new) changed LOOP
                IF NOT EXISTS (SELECT 1 FROM native_summary_invalidation i
                    WHERE i.kind='event_volume' AND i.bucket=v_group.bucket AND i.transaction_origin=v_origin AND i.xmin=v_xmin) THEN
                    INSERT INTO native_summary_invalidation(kind,bucket) VALUES ('event_volume',v_group.bucket);
                END IF;
            END LOOP;
        END IF;
    ELSE
        IF TG_OP = 'INSERT' THEN
            FOR v_group IN
                SELECT kinds.kind,date_trunc('hour',r.time,'UTC') AS bucket FROM native_new r
                CROSS JOIN LATERAL (VALUES
                    (v_status,'status'=ANY(r.changed_fields)),
                    ('execution_creation'::native_summary_kind,v_creation AND r.operation='INSERT')
                ) kinds(kind,relevant) WHERE kinds.relevant GROUP BY kinds.kind,bucket
            LOOP
                IF NOT EXISTS (SELECT 1 FROM native_summary_invalidation i
                    WHERE i.kind=v_group.kind AND i.bucket=v_group.bucket AND i.transaction_origin=v_origin AND i.xmin=v_xmin) THEN
                    INSERT INTO native_summary_invalidation(kind,bucket) VALUES (v_group.kind,v_group.bucket);
                END IF;
            END LOOP;
        ELSIF TG_OP = 'DELETE' THEN
            FOR v_group IN
                SELECT kinds.kind,date_trunc('hour',r.time,'UTC') AS bucket FROM native_old r
                CROSS JOIN LATERAL (VALUES
                    (v_status,'status'=ANY(r.changed_fields)),
                    ('execution_creation'::native_summary_kind,v_creation AND r.operation='INSERT')
                ) kinds(kind,relevant) WHERE kinds.relevant GROUP BY kinds.kind,bucket
            LOOP
                IF NOT EXISTS (SELECT 1 FROM native_summary_invalidation i
                    WHERE i.kind=v_group.kind AND i.bucket=v_group.bucket AND i.transaction_origin=v_origin AND i.xmin=v_xmin) THEN
                    INSERT INTO native_summary_invalidation(kind,bucket) VALUES (v_group.kind,v_group.bucket);
                END IF;
            END LOOP;
        ELSE
            FOR v_group IN
                SELECT kinds.kind,date_trunc('hour',r.time,'UTC') AS bucket
                FROM (SELECT time,operation,changed_fields FROM native_old UNION ALL SELECT time,operation,changed_fields FROM native_new) r
                CROSS JOIN LATERAL (VALUES
                    (v_status,'status'=ANY(r.changed_fields)),
                    ('execution_creation'::native_summary_kind,v_creation AND r.operation='INSERT')
                ) kinds(kind,relevant) WHERE kinds.relevant GROUP BY kinds.kind,bucket
            LOOP
                IF NOT EXISTS (SELECT 1 FROM native_summary_invalidation i
                    WHERE i.kind=v_group.kind AND i.bucket=v_group.bucket AND i.transaction_origin=v_origin AND i.xmin=v_xmin) THEN
                    INSERT INTO native_summary_invalidation(kind,bucket) VALUES (v_group.kind,v_group.bucket);
                END IF;
            END LOOP;
        END IF;
    END IF;
    RETURN NULL;
END $$;

DO $$
DECLARE source TEXT;
BEGIN
    -- fixture: Attune's array is ARRAY['event', 'execution_history', 'worker_history']
    FOREACH source IN ARRAY ARRAY['event', 'worker_history'] LOOP
        EXECUTE format('CREATE TRIGGER native_summary_insert AFTER INSERT ON %I REFERENCING NEW TABLE AS native_new FOR EACH STATEMENT EXECUTE FUNCTION native_summary_notify()', source);
        EXECUTE format('CREATE TRIGGER native_summary_update AFTER UPDATE ON %I REFERENCING OLD TABLE AS native_old NEW TABLE AS native_new FOR EACH STATEMENT EXECUTE FUNCTION native_summary_notify()', source);
        EXECUTE format('CREATE TRIGGER native_summary_delete AFTER DELETE ON %I REFERENCING OLD TABLE AS native_old FOR EACH STATEMENT EXECUTE FUNCTION native_summary_notify()', source);
    END LOOP;
END $$;

-- end of fixture


-- =============================================================================
-- Rows (not from the migrations): what a running Attune holds.
-- =============================================================================
-- The platform catalog owns the core runtimes (catalog_revision set, no
-- pack): Attune's reconciliation writes them with attune.catalog_write on.
-- A pack "acme" with an active release pins its sensor's workload; Attune's
-- sensor service holds that workload's lease. An action worker is cordoned
-- by an operator identity.

INSERT INTO identity (login) VALUES ('ops');

SET attune.catalog_write = 'on';
INSERT INTO runtime (ref, description, name, aliases, distributions, execution_config, catalog_revision, retired_at) VALUES
    ('core.shell', 'Shell (sh/bash)', 'Shell', '{sh,bash}',
     '{"verification": {"check_required": false}}',
     '{"interpreter": {"binary": "/bin/sh"}}', 3, NULL),
    ('core.python', 'Python 3', 'Python', '{python3}',
     '{"verification": {"check_required": true, "commands": [
        {"binary": "python3", "args": ["--version"], "exit_code": 0, "pattern": "Python 3\\.", "priority": 1}]}}',
     '{"interpreter": {"binary": "python3", "args": ["-u"]}}', 3, NULL),
    ('core.python2', 'Python 2 (retired)', 'Python 2', '{python2}',
     '{"verification": {"commands": [{"binary": "python2", "args": ["--version"], "pattern": "Python 2\\."}]}}',
     '{}', 3, now() - interval '100 days'),
    ('core.go', 'Go binaries built by the pack', 'Go', '{}', '{}', '{}', 3, NULL);
RESET attune.catalog_write;

INSERT INTO pack (ref, label, description, version) VALUES ('acme', 'Acme', 'An operator''s pack', '1.2.0');
INSERT INTO pack_release (pack, pack_ref, version, digest, archive_path, content_path, archive_size, manifest)
VALUES (1, 'acme', '1.2.0', 'b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c',
        'releases/acme/1.2.0.tar.gz', '.releases/sha256/b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c/pack',
        2048, '{"ref": "acme", "version": "1.2.0"}');
UPDATE pack SET active_release = 1 WHERE id = 1;

INSERT INTO sensor (ref, pack, pack_ref, label, entrypoint, runtime, runtime_ref, enabled, config) VALUES
    ('acme.watch', 1, 'acme', 'Watch', 'watch.py', 2, 'core.python', TRUE, '{}');
INSERT INTO trigger (ref, pack, pack_ref, label, sensor, sensor_ref, out_schema) VALUES
    ('acme.fired', 1, 'acme', 'Fired', 1, 'acme.watch', '{"type": "object"}');
INSERT INTO rule (ref, pack, pack_ref, label, action_ref, trigger, trigger_ref, enabled, trigger_params) VALUES
    ('acme.on_fired', 1, 'acme', 'On fired', 'acme.notify', 1, 'acme.fired', TRUE, '{"threshold": 3}');

INSERT INTO worker (name, worker_type, worker_role, runtime, host, port, status, capabilities, meta, last_heartbeat,
                    cordoned, cordon_reason, cordoned_by, cordoned_at, created) VALUES
    ('worker-exec-1', 'local', 'action', 2, 'exec-1.internal', 8100, 'active',
     '{"max_concurrent_executions": 8, "runtimes": ["python", "shell"]}', '{"version": "0.8.0"}',
     now() - interval '2 seconds', TRUE, 'kernel upgrade', 1, now() - interval '1 hour', now() - interval '200 days'),
    ('sensor-attune-1', 'local', 'sensor', NULL, 'attune-1', NULL, 'active',
     '{"runtimes": ["python", "shell", "native"], "max_concurrent_sensors": 10, "sensor_version": "0.8.0"}', NULL,
     now() - interval '4 seconds', FALSE, NULL, NULL, NULL, now() - interval '200 days');

-- Attune's sensor service pinned the workload to the active release and
-- holds its lease (generation 1: one process started).
INSERT INTO sensor_workload (sensor, workload_key, pack_release, pack_release_digest, executable_snapshot)
VALUES (1, 'default', 1, 'b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c',
        '{"release": {"id": 1, "digest": "b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c"}}');
INSERT INTO sensor_workload_assignment (workload, worker, worker_instance, generation, lease_expires_at, assigned_at, renewed_at)
VALUES (1, 2, '3f1c2a9e-6b1d-4c1e-9d5a-0e7f4b2c8a11', 1, now() + interval '1 day', now() - interval '1 hour', now());
