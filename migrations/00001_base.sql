-- Base tables and enums: runtime and worker, as Attune names them.
-- Creates only what is missing in the current schema; marks what it created.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION attunectl_type_missing(name text) RETURNS boolean
LANGUAGE sql STABLE AS $fn$
    SELECT NOT EXISTS (
        SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = current_schema() AND t.typname = name)
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION attunectl_table_missing(name text) RETURNS boolean
LANGUAGE sql STABLE AS $fn$
    SELECT NOT EXISTS (
        SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = name)
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
-- attunectl_owned reports whether an object carries the mark a migration left
-- on it when it created the object (kind: 'table', 'type', 'index').
CREATE OR REPLACE FUNCTION attunectl_owned(kind text, name text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    descr text;
BEGIN
    IF kind = 'type' THEN
        SELECT obj_description(t.oid, 'pg_type') INTO descr
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = current_schema() AND t.typname = name;
    ELSE
        SELECT obj_description(c.oid, 'pg_class') INTO descr
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relname = name;
    END IF;
    RETURN coalesce(descr LIKE 'attunectl:%', false);
END
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
DO $$
BEGIN
    IF attunectl_type_missing('runtime_type_enum') THEN
        CREATE TYPE runtime_type_enum AS ENUM ('action', 'sensor');
        COMMENT ON TYPE runtime_type_enum IS 'attunectl: created by migration 00001';
    END IF;
    IF attunectl_type_missing('worker_type_enum') THEN
        CREATE TYPE worker_type_enum AS ENUM ('local', 'remote', 'container');
        COMMENT ON TYPE worker_type_enum IS 'attunectl: created by migration 00001';
    END IF;
    IF attunectl_type_missing('worker_status_enum') THEN
        CREATE TYPE worker_status_enum AS ENUM ('active', 'inactive', 'busy', 'error');
        COMMENT ON TYPE worker_status_enum IS 'attunectl: created by migration 00001';
    END IF;

    IF attunectl_table_missing('runtime') THEN
        CREATE TABLE runtime (
            id               bigserial PRIMARY KEY,
            ref              text NOT NULL UNIQUE CHECK (ref = lower(ref)),
            pack_ref         text,
            name             text NOT NULL,
            description      text,
            aliases          text[] NOT NULL DEFAULT '{}',
            runtime_type     runtime_type_enum NOT NULL,
            distributions    jsonb NOT NULL DEFAULT '{}',
            installation     jsonb,
            execution_config jsonb NOT NULL DEFAULT '{}',
            created          timestamptz NOT NULL DEFAULT now(),
            updated          timestamptz NOT NULL DEFAULT now()
        );
        COMMENT ON TABLE runtime IS 'attunectl: created by migration 00001';
    END IF;

    IF attunectl_table_missing('worker') THEN
        CREATE TABLE worker (
            id             bigserial PRIMARY KEY,
            name           text NOT NULL UNIQUE,
            worker_type    worker_type_enum NOT NULL,
            runtime        bigint REFERENCES runtime (id) ON DELETE SET NULL,
            host           text,
            port           integer,
            status         worker_status_enum,
            capabilities   jsonb,
            meta           jsonb,
            last_heartbeat timestamptz,
            created        timestamptz NOT NULL DEFAULT now(),
            updated        timestamptz NOT NULL DEFAULT now()
        );
        COMMENT ON TABLE worker IS 'attunectl: created by migration 00001';
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
    IF attunectl_owned('table', 'worker') THEN
        DROP TABLE worker;
    END IF;
    IF attunectl_owned('table', 'runtime') THEN
        DROP TABLE runtime;
    END IF;
    -- A type still used by a table that attunectl did not create stays.
    IF attunectl_owned('type', 'worker_status_enum') AND attunectl_table_missing('worker') THEN
        DROP TYPE worker_status_enum;
    END IF;
    IF attunectl_owned('type', 'worker_type_enum') AND attunectl_table_missing('worker') THEN
        DROP TYPE worker_type_enum;
    END IF;
    IF attunectl_owned('type', 'runtime_type_enum') AND attunectl_table_missing('runtime') THEN
        DROP TYPE runtime_type_enum;
    END IF;
END
$$;
-- +goose StatementEnd
DROP FUNCTION IF EXISTS attunectl_owned(text, text);
DROP FUNCTION IF EXISTS attunectl_table_missing(text);
DROP FUNCTION IF EXISTS attunectl_type_missing(text);
