-- add_worker_heartbeat_grace: each worker's grace as a plain column, so
-- that the staleness test (pkg/workers, staleSQL) compares last_heartbeat
-- with a value read from the row instead of evaluating the grace from the
-- capabilities jsonb of every row (about two thirds of the server time of
-- `worker stale` on 1,000,000 rows before this column).
--
-- attunectl_worker_grace(capabilities) is the one definition of a worker's
-- grace: three heartbeat intervals as capabilities.heartbeat_interval
-- advertises (seconds), or 90 s when it advertises none, or something that
-- is not a positive number. A trigger keeps heartbeat_grace equal to it
-- whenever a statement writes capabilities: registration (insert or
-- takeover), capability updates, and writers other than attunectl. A
-- heartbeat writes last_heartbeat and status only, so it never fires the
-- trigger and stays a HOT update (the column is in no index).
--
-- The column is added NULL, without a default: no table rewrite, and the
-- ACCESS EXCLUSIVE lock ALTER TABLE needs is held for milliseconds. lock_timeout
-- makes the migration fail fast (retry it) rather than queue every
-- heartbeat behind a long transaction on the worker table. Existing rows are
-- filled by migration 00011, in batches; until then the staleness test
-- falls back to attunectl_worker_grace(capabilities) for a NULL column.

-- +goose Up
SET LOCAL lock_timeout = '5s';

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION attunectl_worker_grace(capabilities jsonb) RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT make_interval(secs => 3 * CASE
        WHEN jsonb_typeof(capabilities->'heartbeat_interval') = 'number'
             AND (capabilities->>'heartbeat_interval')::float8 > 0
        THEN (capabilities->>'heartbeat_interval')::float8 ELSE 30 END)
$fn$;
-- +goose StatementEnd
COMMENT ON FUNCTION attunectl_worker_grace(jsonb) IS 'attunectl: created by migration 00010; a worker''s grace from its capabilities';

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION attunectl_worker_set_grace() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    NEW.heartbeat_grace := attunectl_worker_grace(NEW.capabilities);
    RETURN NEW;
END
$fn$;
-- +goose StatementEnd
COMMENT ON FUNCTION attunectl_worker_set_grace() IS 'attunectl: created by migration 00010; keeps worker.heartbeat_grace';

-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'worker' AND column_name = 'heartbeat_grace'
    ) THEN
        ALTER TABLE worker ADD COLUMN heartbeat_grace interval;
        COMMENT ON COLUMN worker.heartbeat_grace IS 'attunectl: created by migration 00010; attunectl_worker_grace(capabilities), kept by trigger attunectl_worker_grace';
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_trigger
        WHERE tgrelid = format('%I.worker', current_schema())::regclass AND tgname = 'attunectl_worker_grace'
    ) THEN
        CREATE TRIGGER attunectl_worker_grace
            BEFORE INSERT OR UPDATE OF capabilities ON worker
            FOR EACH ROW EXECUTE FUNCTION attunectl_worker_set_grace();
        COMMENT ON TRIGGER attunectl_worker_grace ON worker IS 'attunectl: created by migration 00010';
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
SET LOCAL lock_timeout = '5s';
-- +goose StatementBegin
DO $$
DECLARE
    worker regclass := format('%I.worker', current_schema())::regclass;
BEGIN
    IF coalesce((SELECT obj_description(oid, 'pg_trigger') LIKE 'attunectl:%' FROM pg_trigger
                 WHERE tgrelid = worker AND tgname = 'attunectl_worker_grace'), false) THEN
        DROP TRIGGER attunectl_worker_grace ON worker;
    END IF;
    IF coalesce(col_description(worker,
            (SELECT attnum FROM pg_attribute WHERE attrelid = worker AND attname = 'heartbeat_grace' AND NOT attisdropped)
        ) LIKE 'attunectl:%', false) THEN
        ALTER TABLE worker DROP COLUMN heartbeat_grace;
    END IF;
END
$$;
-- +goose StatementEnd
DROP FUNCTION IF EXISTS attunectl_worker_set_grace();
DROP FUNCTION IF EXISTS attunectl_worker_grace(jsonb);
