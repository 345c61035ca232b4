-- sensor_runs: what the supervisor of pkg/supervise records beside Attune's
-- tables and migration 00022's sensor_workload_state.
--
-- event.source_workload and event.source_generation name the fence an event
-- was written under (the assignment's workload and generation), so an
-- operator can tell which start of a sensor emitted what, and prove that no
-- event of an old generation was written after a takeover. They are added
-- only where missing, without a default (a nullable column without a default
-- is a catalog change: no table rewrite), and marked as attunectl's.
--
-- sensor_workload_state.last_stderr keeps the tail of the last run's
-- standard error, shown with a quarantine.

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                   WHERE table_schema = current_schema() AND table_name = 'event' AND column_name = 'source_workload') THEN
        ALTER TABLE event ADD COLUMN source_workload bigint;
        COMMENT ON COLUMN event.source_workload IS 'attunectl: the sensor workload whose fence this event was written under (migration 00030)';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                   WHERE table_schema = current_schema() AND table_name = 'event' AND column_name = 'source_generation') THEN
        ALTER TABLE event ADD COLUMN source_generation bigint;
        COMMENT ON COLUMN event.source_generation IS 'attunectl: the assignment generation this event was written under (migration 00030)';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                   WHERE table_schema = current_schema() AND table_name = 'sensor_workload_state' AND column_name = 'last_stderr') THEN
        ALTER TABLE sensor_workload_state ADD COLUMN last_stderr text;
        COMMENT ON COLUMN sensor_workload_state.last_stderr IS 'attunectl: the tail of the last run''s stderr (migration 00030)';
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT * FROM (VALUES ('event', 'source_generation'), ('event', 'source_workload'),
                                   ('sensor_workload_state', 'last_stderr')) AS v(tbl, col)
    LOOP
        IF coalesce(col_description(format('%I.%I', current_schema(), c.tbl)::regclass,
                    (SELECT attnum FROM pg_attribute
                     WHERE attrelid = format('%I.%I', current_schema(), c.tbl)::regclass AND attname = c.col))
                    LIKE 'attunectl:%', false) THEN
            EXECUTE format('ALTER TABLE %I DROP COLUMN %I', c.tbl, c.col);
        END IF;
    END LOOP;
END
$$;
-- +goose StatementEnd
