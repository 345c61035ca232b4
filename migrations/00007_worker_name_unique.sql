-- worker_name_unique: the unique constraint on worker.name that registration
-- relies on (INSERT … ON CONFLICT (name)). Attune's worker table of the seed's
-- era has none; later eras have worker_name_key, and then this step does
-- nothing.
--
-- `attunectl migrate up` checks first (pkg/database, preflight.go) that no two
-- rows share a name — it refuses, naming them, before anything changes — and
-- builds the index with CREATE UNIQUE INDEX CONCURRENTLY outside any
-- transaction, so that writers are never blocked while it is built. This step
-- then only attaches that index as the constraint (ADD CONSTRAINT … USING
-- INDEX: a catalog change, no scan), under a lock_timeout so that it gives up
-- rather than queue behind a long transaction. When the index is not there
-- (goose run by other means), it is built here, in the transaction: that
-- blocks writes to worker for as long as the build takes.

-- +goose Up
-- +goose StatementBegin
DO $$
DECLARE
    worker_oid oid := to_regclass(format('%I.worker', current_schema()));
    valid      boolean;
BEGIN
    IF EXISTS (
        SELECT 1 FROM pg_index i
        WHERE i.indrelid = worker_oid AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
          AND i.indnatts = 1 AND i.indexprs IS NULL
          AND i.indkey[0] = (SELECT attnum FROM pg_attribute WHERE attrelid = worker_oid AND attname = 'name')
          AND i.indexrelid <> coalesce(to_regclass(format('%I.worker_name_key', current_schema())), 0)
    ) THEN
        RETURN; -- Attune's own unique constraint or index is there
    END IF;
    IF EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = worker_oid AND conname = 'worker_name_key') THEN
        RETURN; -- already attached
    END IF;

    SET LOCAL lock_timeout = '10s';
    SELECT i.indisvalid INTO valid FROM pg_index i
    WHERE i.indexrelid = to_regclass(format('%I.worker_name_key', current_schema()));
    IF valid IS NOT NULL AND NOT valid THEN
        DROP INDEX worker_name_key; -- left by an interrupted concurrent build
        valid := NULL;
    END IF;
    IF valid IS NULL THEN
        CREATE UNIQUE INDEX worker_name_key ON worker (name);
    END IF;
    ALTER TABLE worker ADD CONSTRAINT worker_name_key UNIQUE USING INDEX worker_name_key;
    COMMENT ON CONSTRAINT worker_name_key ON worker IS 'attunectl: created by migration 00007';
    COMMENT ON INDEX worker_name_key IS 'attunectl: created by migration 00007';
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM pg_constraint
        WHERE conrelid = to_regclass(format('%I.worker', current_schema())) AND conname = 'worker_name_key'
          AND obj_description(oid, 'pg_constraint') LIKE 'attunectl:%'
    ) THEN
        ALTER TABLE worker DROP CONSTRAINT worker_name_key;
    END IF;
END
$$;
-- +goose StatementEnd
