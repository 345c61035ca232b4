-- worker_cordon: Attune's cordon columns on worker (cordoned, cordon_reason,
-- cordoned_by, cordoned_at), each added only where missing, plus
-- attunectl's cordoned_by_name: Attune's cordoned_by is the id of an
-- Attune identity, which an operator at a shell does not have, so
-- attunectl leaves it NULL and records who cordoned in cordoned_by_name.
-- A cordoned worker keeps heartbeating and keeps what it holds; it takes
-- nothing new. Added columns carry the 'attunectl:' mark; down drops only
-- those.

-- +goose Up
-- +goose StatementBegin
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT * FROM (VALUES
        ('cordoned', 'boolean NOT NULL DEFAULT false'),
        ('cordon_reason', 'text'),
        ('cordoned_by', 'bigint'),
        ('cordoned_at', 'timestamptz'),
        ('cordoned_by_name', 'text')) AS v(name, def)
    LOOP
        IF NOT EXISTS (
            SELECT 1 FROM information_schema.columns
            WHERE table_schema = current_schema() AND table_name = 'worker' AND column_name = c.name
        ) THEN
            EXECUTE format('ALTER TABLE worker ADD COLUMN %I %s', c.name, c.def);
            EXECUTE format('COMMENT ON COLUMN worker.%I IS %L', c.name, 'attunectl: created by migration 00021');
        END IF;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
DECLARE
    c text;
BEGIN
    FOREACH c IN ARRAY ARRAY['cordoned_by_name', 'cordoned_at', 'cordoned_by', 'cordon_reason', 'cordoned'] LOOP
        IF coalesce(col_description(format('%I.worker', current_schema())::regclass,
                (SELECT attnum FROM pg_attribute
                 WHERE attrelid = format('%I.worker', current_schema())::regclass AND attname = c AND NOT attisdropped)
            ) LIKE 'attunectl:%', false) THEN
            EXECUTE format('ALTER TABLE worker DROP COLUMN %I', c);
        END IF;
    END LOOP;
END
$$;
-- +goose StatementEnd
