-- ledger_lapses: the ownership ledger (sensor_ownership, migration 00022)
-- also records a lease that lapsed and was claimed again by the same
-- worker instance: the old span ends 'expired' when the lease ran out and a
-- new one starts at the claim. Before, the span ran on as if the lease had
-- never lapsed, although another worker could have claimed the sensor in
-- between. The down step restores the function of migration 00022.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION attunectl_assignment_ledger() RETURNS trigger
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
    -- The same owner claiming again a lease that had lapsed: the lapse is a
    -- span's end like any other (another worker could have claimed it).
    IF NOT owner_changed AND NEW.worker IS NOT NULL
       AND NEW.assigned_at IS DISTINCT FROM OLD.assigned_at
       AND OLD.lease_expires_at <= clock_timestamp() THEN
        UPDATE sensor_ownership
        SET ended_at = least(OLD.lease_expires_at, clock_timestamp()), end_reason = 'expired', generation = OLD.generation
        WHERE workload = OLD.workload AND ended_at IS NULL;
        INSERT INTO sensor_ownership (workload, worker, worker_name, worker_instance, generation, started_at)
        VALUES (NEW.workload, NEW.worker, (SELECT name FROM worker WHERE id = NEW.worker),
                NEW.worker_instance, NEW.generation, coalesce(NEW.assigned_at, clock_timestamp()));
        RETURN NULL;
    END IF;
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

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION attunectl_assignment_ledger() RETURNS trigger
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
