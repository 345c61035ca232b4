-- fill_sensor_verification: the seed's verification metadata for the seed's
-- core.sensor.* runtimes that an adopted table already held without any
-- (distributions without a 'verification' key, e.g. '{}'). Migration 00003
-- inserted only the refs that were missing, and completed core.sensor.builtin;
-- here the other four get the same treatment. Every other key of
-- distributions (Attune's own data) is kept.
--
-- The refs filled in are recorded in attunectl_filled_verification (dropped
-- at once when there are none), so that the down step removes exactly the
-- metadata this step added (when nobody has changed it since) and nothing
-- else. Rows are few: the update is one short
-- statement.

-- +goose Up
CREATE TABLE attunectl_filled_verification (
    ref          text PRIMARY KEY,
    verification jsonb NOT NULL
);
COMMENT ON TABLE attunectl_filled_verification IS 'attunectl: created by migration 00006';

-- +goose StatementBegin
WITH seed (ref, verification) AS (VALUES
    ('core.sensor.builtin', '{"always_available": true}'::jsonb),
    ('core.sensor.native', '{"always_available": true}'::jsonb),
    ('core.sensor.shell', '{"always_available": true}'::jsonb),
    ('core.sensor.python', '{"commands": [
        {"binary": "python3", "args": ["--version"], "exit_code": 0, "pattern": "Python 3\\.", "priority": 1},
        {"binary": "python", "args": ["--version"], "exit_code": 0, "pattern": "Python 3\\.", "priority": 2}]}'::jsonb),
    ('core.sensor.nodejs', '{"commands": [
        {"binary": "node", "args": ["--version"], "exit_code": 0, "pattern": "v\\d+\\.\\d+\\.\\d+", "priority": 1}]}'::jsonb)
), filled AS (
    UPDATE runtime r
    SET distributions = CASE WHEN jsonb_typeof(r.distributions) = 'object' THEN r.distributions ELSE '{}'::jsonb END
                        || jsonb_build_object('verification', s.verification),
        updated = now()
    FROM seed s
    WHERE r.ref = s.ref
      AND (r.distributions IS NULL OR jsonb_typeof(r.distributions) <> 'object' OR NOT (r.distributions ? 'verification'))
    RETURNING r.ref, s.verification
)
INSERT INTO attunectl_filled_verification (ref, verification)
SELECT ref, verification FROM filled;
-- +goose StatementEnd

-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM attunectl_filled_verification) THEN
        DROP TABLE attunectl_filled_verification; -- nothing to remember
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
    IF to_regclass(format('%I.attunectl_filled_verification', current_schema())) IS NOT NULL THEN
        UPDATE runtime r
        SET distributions = r.distributions - 'verification', updated = now()
        FROM attunectl_filled_verification f
        WHERE r.ref = f.ref AND r.distributions->'verification' = f.verification;
        DROP TABLE attunectl_filled_verification;
    END IF;
END
$$;
-- +goose StatementEnd
