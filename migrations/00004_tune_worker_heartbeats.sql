-- tune_worker_heartbeats: leave free space in every page of the worker
-- table, so that a heartbeat is a HOT update.
--
-- A heartbeat (pkg/workers, heartbeatSQL) updates last_heartbeat, which no
-- index covers, and sets status to the value it already has. PostgreSQL can
-- then write the new row version on the same page without touching any
-- index (a HOT update), and prunes the old version on the page without
-- VACUUM — but only when the page has room for the new version. At the
-- default fillfactor of 100 the pages are full after registration: the
-- first heartbeat of most rows moves the row to another page and adds an
-- entry to every index, and the table and its indexes grow. With fillfactor
-- 70, inserts leave 30% of each page free, enough for the next versions of
-- the rows on it (the README's Scale section has the measurements).
--
-- Do not add an index on last_heartbeat: every heartbeat would then change
-- an indexed column and none could be HOT.
--
-- The fillfactor is set only when the table has none of its own (an
-- operator's choice on an existing Attune database is kept). ALTER TABLE …
-- SET (fillfactor) takes a SHARE UPDATE EXCLUSIVE lock — reads and writes
-- go on — and rewrites nothing: pages written from now on honour it, and an
-- existing table converges as its rows move (VACUUM FULL or pg_repack apply
-- it at once). The down step resets it only when it is still the value set
-- here.

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_class c, pg_options_to_table(c.reloptions) o
        WHERE c.oid = format('%I.worker', current_schema())::regclass AND o.option_name = 'fillfactor'
    ) THEN
        ALTER TABLE worker SET (fillfactor = 70);
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM pg_class c, pg_options_to_table(c.reloptions) o
        WHERE c.oid = format('%I.worker', current_schema())::regclass
          AND o.option_name = 'fillfactor' AND o.option_value = '70'
    ) THEN
        ALTER TABLE worker RESET (fillfactor);
    END IF;
END
$$;
-- +goose StatementEnd
