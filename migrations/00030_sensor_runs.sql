-- sensor_runs: what the supervisor of pkg/supervise records beside Attune's
-- tables.
--
-- event.source_workload and event.source_generation name the fence an event
-- was written under (the assignment's workload and generation), so an
-- operator can tell which start of a sensor emitted what and prove that no
-- event of an old generation was written after a takeover. They are added
-- only where missing, without a default (no table rewrite: a nullable column
-- without a default is a catalog change), and marked as attunectl's.
--
-- sensor_workload_run is the restart record of a workload: run state,
-- restarts, consecutive failures, the earliest next start, quarantine and
-- the last exit with the tail of its stderr. It lives on the workload, not
-- on the worker, so a crash-looping sensor keeps its backoff when it moves.

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                   WHERE table_schema = current_schema() AND table_name = 'event' AND column_name = 'source_workload') THEN
        ALTER TABLE event ADD COLUMN source_workload bigint;
        COMMENT ON COLUMN event.source_workload IS 'attunectl: the sensor workload whose fence this event was written under';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                   WHERE table_schema = current_schema() AND table_name = 'event' AND column_name = 'source_generation') THEN
        ALTER TABLE event ADD COLUMN source_generation bigint;
        COMMENT ON COLUMN event.source_generation IS 'attunectl: the assignment generation this event was written under';
    END IF;

    IF attunectl_table_missing('sensor_workload_run') THEN
        CREATE TABLE sensor_workload_run (
            workload             bigint PRIMARY KEY REFERENCES sensor_workload (id) ON DELETE CASCADE,
            state                text NOT NULL DEFAULT 'starting',
            restarts             integer NOT NULL DEFAULT 0,
            consecutive_failures integer NOT NULL DEFAULT 0,
            next_start_at        timestamptz,
            quarantined_at       timestamptz,
            reason               text,
            last_exit            text,
            stderr_tail          text,
            generation           bigint NOT NULL DEFAULT 0,
            updated              timestamptz NOT NULL DEFAULT now()
        );
        COMMENT ON TABLE sensor_workload_run IS 'attunectl: restart and quarantine record of a sensor workload (migration 00030)';
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
    IF attunectl_owned('table', 'sensor_workload_run') THEN
        DROP TABLE sensor_workload_run;
    END IF;
    IF coalesce(col_description(format('%I.event', current_schema())::regclass,
                (SELECT attnum FROM pg_attribute WHERE attrelid = format('%I.event', current_schema())::regclass
                 AND attname = 'source_generation')) LIKE 'attunectl:%', false) THEN
        ALTER TABLE event DROP COLUMN source_generation;
    END IF;
    IF coalesce(col_description(format('%I.event', current_schema())::regclass,
                (SELECT attnum FROM pg_attribute WHERE attrelid = format('%I.event', current_schema())::regclass
                 AND attname = 'source_workload')) LIKE 'attunectl:%', false) THEN
        ALTER TABLE event DROP COLUMN source_workload;
    END IF;
END
$$;
-- +goose StatementEnd
