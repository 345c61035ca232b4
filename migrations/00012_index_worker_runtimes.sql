-- index_worker_runtimes: a GIN index on the runtimes each worker advertises,
-- serving `worker list --runtime R` (the seed's capabilities->'runtimes' ?
-- 'python') and the placement queries that match sensors to workers by
-- runtime (?, ?|, ?& and @> on capabilities->'runtimes').
--
-- A heartbeat never writes capabilities, so the index never stops a
-- heartbeat from being a HOT update (the README's Scale section measures
-- it). It is built CONCURRENTLY (goose NO TRANSACTION): reads, heartbeats
-- and registrations go on while it builds. A build that failed half way
-- leaves an invalid index behind; the first statement drops it, so that
-- running the migration again builds it anew.

-- +goose NO TRANSACTION
-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relname = 'idx_worker_capabilities_runtimes' AND NOT i.indisvalid
    ) THEN
        DROP INDEX idx_worker_capabilities_runtimes;
    END IF;
END
$$;
-- +goose StatementEnd
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_worker_capabilities_runtimes ON worker USING gin ((capabilities->'runtimes'));
-- +goose StatementBegin
DO $$
BEGIN
    IF obj_description(format('%I.idx_worker_capabilities_runtimes', current_schema())::regclass, 'pg_class') IS NULL THEN
        COMMENT ON INDEX idx_worker_capabilities_runtimes IS 'attunectl: created by migration 00012';
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
    IF attunectl_owned('index', 'idx_worker_capabilities_runtimes') THEN
        DROP INDEX idx_worker_capabilities_runtimes;
    END IF;
END
$$;
-- +goose StatementEnd
