-- placement_state: attunectl's own additions for placing sensors, all
-- marked 'attunectl: …'.
--
-- sensor_ownership is the ledger: one row per ownership span of a workload
-- (worker, instance, the generation it ended with, from, to, why it
-- ended). It is written by a trigger on sensor_workload_assignment, so
-- every change of owner is recorded whoever made it — attunectl or an
-- Attune sensor service sharing the database. At most one span per
-- workload is open (a unique partial index): the ledger itself refuses two
-- owners at once. A statement that ends spans for a reason other than the
-- one the trigger infers (drained, rebalanced) says so with the
-- transaction-local setting attunectl.end_reason.
--
-- sensor_workload_state holds backoff and quarantine on the workload, not
-- on the worker, so a crash-looping sensor keeps its backoff when it moves.
--
-- worker_drain records an operator's drain: deadline, handoff budget per
-- interval, progress.

-- +goose Up
CREATE TABLE sensor_ownership (
    id              bigserial PRIMARY KEY,
    workload        bigint NOT NULL REFERENCES sensor_workload (id) ON DELETE CASCADE,
    worker          bigint NOT NULL,
    worker_name     text,
    worker_instance uuid NOT NULL,
    generation      bigint NOT NULL,
    started_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    end_reason      text,
    CONSTRAINT sensor_ownership_end_reason CHECK (
        end_reason IN ('released', 'expired', 'drained', 'rebalanced', 'taken_over')),
    CONSTRAINT sensor_ownership_end_complete CHECK ((ended_at IS NULL) = (end_reason IS NULL))
);
COMMENT ON TABLE sensor_ownership IS 'attunectl: created by migration 00022 (ownership ledger)';
CREATE UNIQUE INDEX idx_sensor_ownership_open ON sensor_ownership (workload) WHERE ended_at IS NULL;
COMMENT ON INDEX idx_sensor_ownership_open IS 'attunectl: created by migration 00022';
CREATE INDEX idx_sensor_ownership_workload ON sensor_ownership (workload, started_at);
COMMENT ON INDEX idx_sensor_ownership_workload IS 'attunectl: created by migration 00022';
CREATE INDEX idx_sensor_ownership_worker ON sensor_ownership (worker, started_at);
COMMENT ON INDEX idx_sensor_ownership_worker IS 'attunectl: created by migration 00022';

CREATE TABLE sensor_workload_state (
    workload             bigint PRIMARY KEY REFERENCES sensor_workload (id) ON DELETE CASCADE,
    state                text NOT NULL DEFAULT 'stopped',
    generation           bigint NOT NULL DEFAULT 0,
    restarts             integer NOT NULL DEFAULT 0,
    consecutive_failures integer NOT NULL DEFAULT 0,
    next_start_at        timestamptz,
    quarantined_at       timestamptz,
    last_started_at      timestamptz,
    last_stopped_at      timestamptz,
    last_exit_code       integer,
    last_signal          text,
    last_reason          text,
    last_event_at        timestamptz,
    updated              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sensor_workload_state_state CHECK (
        state IN ('stopped', 'starting', 'running', 'backoff', 'quarantined'))
);
COMMENT ON TABLE sensor_workload_state IS 'attunectl: created by migration 00022 (backoff and quarantine per workload)';

CREATE TABLE worker_drain (
    worker          bigint PRIMARY KEY REFERENCES worker (id) ON DELETE CASCADE,
    requested_by    text,
    requested_at    timestamptz NOT NULL DEFAULT now(),
    deadline        timestamptz NOT NULL,
    budget          integer NOT NULL DEFAULT 2 CHECK (budget > 0),
    last_handoff_at timestamptz,
    handed_over     integer NOT NULL DEFAULT 0,
    released_at_deadline integer NOT NULL DEFAULT 0,
    finished_at     timestamptz
);
COMMENT ON TABLE worker_drain IS 'attunectl: created by migration 00022 (drain requests)';

-- Claims look for unowned workloads; released ones are found through this
-- index rather than a scan of every assignment.
CREATE INDEX idx_sensor_workload_assignment_unowned
    ON sensor_workload_assignment (workload) WHERE worker IS NULL;
COMMENT ON INDEX idx_sensor_workload_assignment_unowned IS 'attunectl: created by migration 00022';

-- +goose StatementBegin
CREATE FUNCTION attunectl_assignment_ledger() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    reason text;
    owner_changed boolean;
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.worker IS NOT NULL THEN
            INSERT INTO sensor_ownership (workload, worker, worker_name, worker_instance, generation, started_at)
            VALUES (NEW.workload, NEW.worker, (SELECT name FROM worker WHERE id = NEW.worker),
                    NEW.worker_instance, NEW.generation, coalesce(NEW.assigned_at, clock_timestamp()));
        END IF;
        RETURN NULL;
    END IF;

    owner_changed := NEW.worker IS DISTINCT FROM OLD.worker
        OR NEW.worker_instance IS DISTINCT FROM OLD.worker_instance;
    IF OLD.worker IS NOT NULL AND owner_changed THEN
        reason := nullif(current_setting('attunectl.end_reason', true), '');
        IF reason IS NULL OR NEW.worker IS NOT NULL THEN
            IF NEW.worker IS NULL THEN
                reason := 'released';
            ELSIF OLD.lease_expires_at <= clock_timestamp() THEN
                reason := 'expired';
            ELSE
                reason := 'taken_over';
            END IF;
        END IF;
        UPDATE sensor_ownership
        SET ended_at = CASE WHEN reason = 'expired' THEN least(OLD.lease_expires_at, clock_timestamp())
                            ELSE clock_timestamp() END,
            end_reason = reason,
            generation = OLD.generation
        WHERE workload = OLD.workload AND ended_at IS NULL;
    END IF;
    IF NEW.worker IS NOT NULL AND (OLD.worker IS NULL OR owner_changed) THEN
        INSERT INTO sensor_ownership (workload, worker, worker_name, worker_instance, generation, started_at)
        VALUES (NEW.workload, NEW.worker, (SELECT name FROM worker WHERE id = NEW.worker),
                NEW.worker_instance, NEW.generation, coalesce(NEW.assigned_at, clock_timestamp()));
    ELSIF NEW.worker IS NOT NULL AND NEW.generation <> OLD.generation THEN
        UPDATE sensor_ownership SET generation = NEW.generation
        WHERE workload = NEW.workload AND ended_at IS NULL;
    END IF;
    IF NEW.worker IS NULL AND OLD.worker IS NOT NULL THEN
        -- Whoever waits for work claims it at once (LISTEN attunectl_placement).
        PERFORM pg_notify('attunectl_placement', 'released');
    END IF;
    RETURN NULL;
END
$fn$;
-- +goose StatementEnd
COMMENT ON FUNCTION attunectl_assignment_ledger() IS 'attunectl: created by migration 00022';

-- Fires only when the owner or the generation changes: a lease renewal
-- (lease_expires_at, renewed_at) costs nothing extra.
CREATE TRIGGER attunectl_assignment_ledger
    AFTER INSERT OR UPDATE OF worker, worker_instance, generation ON sensor_workload_assignment
    FOR EACH ROW EXECUTE FUNCTION attunectl_assignment_ledger();
COMMENT ON TRIGGER attunectl_assignment_ledger ON sensor_workload_assignment IS 'attunectl: created by migration 00022';

-- Spans open before this migration (an adopted Attune database with owners).
INSERT INTO sensor_ownership (workload, worker, worker_name, worker_instance, generation, started_at)
SELECT a.workload, a.worker, w.name, a.worker_instance, a.generation, a.assigned_at
FROM sensor_workload_assignment a LEFT JOIN worker w ON w.id = a.worker
WHERE a.worker IS NOT NULL;

-- +goose Down
DROP TRIGGER IF EXISTS attunectl_assignment_ledger ON sensor_workload_assignment;
DROP FUNCTION IF EXISTS attunectl_assignment_ledger();
-- +goose StatementBegin
DO $$
BEGIN
    IF attunectl_owned('index', 'idx_sensor_workload_assignment_unowned') THEN
        DROP INDEX idx_sensor_workload_assignment_unowned;
    END IF;
END
$$;
-- +goose StatementEnd
DROP TABLE IF EXISTS worker_drain;
DROP TABLE IF EXISTS sensor_workload_state;
DROP TABLE IF EXISTS sensor_ownership;
