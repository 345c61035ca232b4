-- adopt_runtime_aliases: the aliases column that `runtime add` writes and
-- `runtime list` reads. Attune's runtime tables before the unified runtimes
-- with aliases (the seed's era, and 2025) have none.
--
-- ADD COLUMN with a constant default rewrites nothing (PostgreSQL 11 and
-- later store the default in the catalog) and holds its ACCESS EXCLUSIVE lock
-- only for the catalog change; lock_timeout makes it give up rather than
-- queue behind a long transaction and stall every reader behind itself.

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'runtime' AND column_name = 'aliases'
    ) THEN
        SET LOCAL lock_timeout = '10s';
        ALTER TABLE runtime ADD COLUMN aliases text[] NOT NULL DEFAULT '{}';
        COMMENT ON COLUMN runtime.aliases IS 'attunectl: created by migration 00005';
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
    IF coalesce(col_description(format('%I.runtime', current_schema())::regclass,
            (SELECT attnum FROM pg_attribute
             WHERE attrelid = format('%I.runtime', current_schema())::regclass AND attname = 'aliases' AND NOT attisdropped)
        ) LIKE 'attunectl:%', false) THEN
        ALTER TABLE runtime DROP COLUMN aliases;
    END IF;
END
$$;
-- +goose StatementEnd
