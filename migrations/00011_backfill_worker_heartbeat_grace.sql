-- backfill_worker_heartbeat_grace: fill worker.heartbeat_grace (migration
-- 00010) on the rows that existed before it, in batches of 10,000 ids, each
-- committed on its own, so that no batch holds the row locks of more than
-- 10,000 workers or for longer than a few tens of milliseconds: a heartbeat
-- that needs one of those rows waits at most that long. Rows written since
-- 00010 already have it (its trigger). The updates change no indexed
-- column, so they are HOT where the page has room.
--
-- Outside a transaction (goose NO TRANSACTION), so that the DO block may
-- COMMIT between batches. Interrupted, it leaves some rows NULL (the
-- staleness test falls back to the capabilities for them), and running it
-- again finishes the job. The down step has nothing to undo: 00010's drops
-- the column.

-- +goose NO TRANSACTION
-- +goose Up
-- +goose StatementBegin
DO $$
DECLARE
    worker regclass := format('%I.worker', current_schema())::regclass;
    lo bigint;
    hi bigint;
BEGIN
    SELECT min(id), max(id) INTO lo, hi FROM worker;
    WHILE lo <= hi LOOP
        UPDATE worker SET heartbeat_grace = attunectl_worker_grace(capabilities)
        WHERE id >= lo AND id < lo + 10000 AND heartbeat_grace IS NULL;
        COMMIT;
        lo := lo + 10000;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
SELECT 1;
