-- add_worker_role: the role discriminator of the seed. Sensor workers share
-- the worker table with action workers; existing rows become 'action'.

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    IF attunectl_type_missing('worker_role_enum') THEN
        CREATE TYPE worker_role_enum AS ENUM ('action', 'sensor', 'hybrid');
        COMMENT ON TYPE worker_role_enum IS 'attunectl: created by migration 00002';
    END IF;

    IF NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'worker' AND column_name = 'worker_role'
    ) THEN
        -- A NOT NULL column with a constant default gives every existing row
        -- 'action' without rewriting the table.
        ALTER TABLE worker ADD COLUMN worker_role worker_role_enum NOT NULL DEFAULT 'action';
        COMMENT ON COLUMN worker.worker_role IS 'attunectl: created by migration 00002';
    END IF;

    IF NOT EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND indexname = 'idx_worker_role') THEN
        CREATE INDEX idx_worker_role ON worker (worker_role);
        COMMENT ON INDEX idx_worker_role IS 'attunectl: created by migration 00002';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND indexname = 'idx_worker_role_status') THEN
        CREATE INDEX idx_worker_role_status ON worker (worker_role, status);
        COMMENT ON INDEX idx_worker_role_status IS 'attunectl: created by migration 00002';
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
    IF attunectl_owned('index', 'idx_worker_role_status') THEN
        DROP INDEX idx_worker_role_status;
    END IF;
    IF attunectl_owned('index', 'idx_worker_role') THEN
        DROP INDEX idx_worker_role;
    END IF;
    IF coalesce(col_description(format('%I.worker', current_schema())::regclass,
            (SELECT attnum FROM pg_attribute
             WHERE attrelid = format('%I.worker', current_schema())::regclass AND attname = 'worker_role')
        ) LIKE 'attunectl:%', false) THEN
        ALTER TABLE worker DROP COLUMN worker_role;
    END IF;
    IF attunectl_owned('type', 'worker_role_enum') AND NOT EXISTS (
        SELECT 1 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = current_schema() AND t.typname = 'worker_role_enum' AND NOT a.attisdropped
    ) THEN
        DROP TYPE worker_role_enum;
    END IF;
END
$$;
-- +goose StatementEnd
