-- mailroom tasks on PostgreSQL, schema version 1. `{schema}` is replaced by the quoted
-- schema name the backend was opened with.
CREATE TABLE {schema}.mailroom_tasks (
    seq               BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                UUID        NOT NULL UNIQUE,
    task_name         TEXT        NOT NULL,
    queue_name        TEXT        NOT NULL,
    priority          INTEGER     NOT NULL,
    args              JSON        NOT NULL,
    status            TEXT        NOT NULL CHECK (status IN ('READY', 'RUNNING', 'SUCCESSFUL', 'FAILED')),
    enqueued_at       TIMESTAMPTZ NOT NULL,
    run_after         TIMESTAMPTZ NOT NULL,
    started_at        TIMESTAMPTZ,
    finished_at       TIMESTAMPTZ,
    last_attempted_at TIMESTAMPTZ,
    attempt           INTEGER     NOT NULL DEFAULT 0,
    max_attempts      INTEGER     NOT NULL,
    worker_id         TEXT,
    lease_expires_at  TIMESTAMPTZ,
    worker_ids        TEXT[]      NOT NULL DEFAULT '{}',
    errors            JSONB       NOT NULL DEFAULT '[]',
    return_value      JSON,
    -- Idempotent enqueue: the unique index decides, not a read-then-write.
    idempotency_key   TEXT        UNIQUE
);

-- The claim query, in its order, over ready rows only.
CREATE INDEX mailroom_tasks_ready
    ON {schema}.mailroom_tasks (priority DESC, run_after, seq)
    WHERE status = 'READY';

-- The rescuer: running tasks by lease expiry.
CREATE INDEX mailroom_tasks_leases
    ON {schema}.mailroom_tasks (lease_expires_at)
    WHERE status = 'RUNNING';

-- The pruner: finished tasks by finish time.
CREATE INDEX mailroom_tasks_finished
    ON {schema}.mailroom_tasks (finished_at)
    WHERE status IN ('SUCCESSFUL', 'FAILED');
