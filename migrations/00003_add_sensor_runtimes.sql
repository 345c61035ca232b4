-- add_sensor_runtimes: the five sensor runtimes of the seed with their
-- verification metadata (distributions->'verification'). Existing rows with
-- the same ref are kept as they are here; migration 00006 gives those without
-- verification metadata the seed's (the seed did so for core.sensor.builtin),
-- and records which, so that its down step takes back only that. On a unified
-- Attune database (no runtime_type column) the rows are inserted without it.

-- +goose Up
-- +goose StatementBegin
DO $$
DECLARE
    has_type boolean := EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'runtime' AND column_name = 'runtime_type');
    r record;
BEGIN
    FOR r IN
        SELECT * FROM (VALUES
            ('core.sensor.builtin', 'Built-in Sensor', 'Sensors built into the Attune sensor service',
             '{"verification": {"always_available": true}}'::jsonb),
            ('core.sensor.native', 'Native', 'Native compiled sensor binaries',
             '{"verification": {"always_available": true}}'::jsonb),
            ('core.sensor.shell', 'Shell', 'Shell script sensors',
             '{"verification": {"always_available": true}}'::jsonb),
            ('core.sensor.python', 'Python', 'Python 3 sensors',
             '{"verification": {"commands": [
                 {"binary": "python3", "args": ["--version"], "exit_code": 0, "pattern": "Python 3\\.", "priority": 1},
                 {"binary": "python", "args": ["--version"], "exit_code": 0, "pattern": "Python 3\\.", "priority": 2}]}}'::jsonb),
            ('core.sensor.nodejs', 'Node.js', 'Node.js sensors',
             '{"verification": {"commands": [
                 {"binary": "node", "args": ["--version"], "exit_code": 0, "pattern": "v\\d+\\.\\d+\\.\\d+", "priority": 1}]}}'::jsonb)
        ) AS v(ref, name, description, distributions)
    LOOP
        IF has_type THEN
            INSERT INTO runtime (ref, pack_ref, name, description, runtime_type, distributions)
            VALUES (r.ref, 'core', r.name, r.description, 'sensor', r.distributions)
            ON CONFLICT (ref) DO NOTHING;
        ELSE
            INSERT INTO runtime (ref, pack_ref, name, description, distributions)
            VALUES (r.ref, 'core', r.name, r.description, r.distributions)
            ON CONFLICT (ref) DO NOTHING;
        END IF;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- Removes the seeded runtimes whose verification metadata is still the
-- seed's; a row someone has changed since is kept. Workers that point at a
-- removed runtime keep their row with runtime set to NULL, in the same
-- statement: the seed's era of Attune's worker table has a foreign key
-- without ON DELETE SET NULL, checked at the end of the statement.
WITH removed AS (
DELETE FROM runtime
WHERE (ref, distributions->'verification') IN (
    ('core.sensor.builtin', '{"always_available": true}'::jsonb),
    ('core.sensor.native', '{"always_available": true}'::jsonb),
    ('core.sensor.shell', '{"always_available": true}'::jsonb),
    ('core.sensor.python', '{"commands": [
        {"binary": "python3", "args": ["--version"], "exit_code": 0, "pattern": "Python 3\\.", "priority": 1},
        {"binary": "python", "args": ["--version"], "exit_code": 0, "pattern": "Python 3\\.", "priority": 2}]}'::jsonb),
    ('core.sensor.nodejs', '{"commands": [
        {"binary": "node", "args": ["--version"], "exit_code": 0, "pattern": "v\\d+\\.\\d+\\.\\d+", "priority": 1}]}'::jsonb)
)
RETURNING id
)
UPDATE worker SET runtime = NULL WHERE runtime IN (SELECT id FROM removed);
