-- mailroom tasks on PostgreSQL, schema version 3: operating the queue (list, cancel, retry,
-- pause, rate limits, timeouts, unique windows). `{schema}` is the quoted schema name.
ALTER TABLE {schema}.mailroom_tasks DROP CONSTRAINT IF EXISTS mailroom_tasks_status_check;
ALTER TABLE {schema}.mailroom_tasks ADD CONSTRAINT mailroom_tasks_status_check
    CHECK (status IN ('READY', 'RUNNING', 'SUCCESSFUL', 'FAILED', 'CANCELLED'));

-- A cancel request for a RUNNING task: its worker stops the attempt and records CANCELLED
-- (fenced like every completion).
ALTER TABLE {schema}.mailroom_tasks ADD COLUMN cancel_requested_at TIMESTAMPTZ;
-- The longest one attempt may run, in milliseconds (NULL: no limit).
ALTER TABLE {schema}.mailroom_tasks ADD COLUMN timeout_ms BIGINT;
-- Labels (a JSON object of strings) that rate limits key by, e.g. transport and domain.
ALTER TABLE {schema}.mailroom_tasks ADD COLUMN labels JSONB;
-- How long the idempotency key stays taken: NULL or 'forever' (until pruned), 'unfinished'
-- (while the task has not finished), 'until' (until `unique_until`).
ALTER TABLE {schema}.mailroom_tasks ADD COLUMN unique_scope TEXT
    CHECK (unique_scope IN ('forever', 'unfinished', 'until'));
ALTER TABLE {schema}.mailroom_tasks ADD COLUMN unique_until TIMESTAMPTZ;

-- The pruner: finished tasks by finish time, cancelled ones included.
DROP INDEX IF EXISTS {schema}.mailroom_tasks_finished;
CREATE INDEX mailroom_tasks_finished
    ON {schema}.mailroom_tasks (finished_at)
    WHERE status IN ('SUCCESSFUL', 'FAILED', 'CANCELLED');

-- Listing and counting: by status (and queue), newest (highest seq) first. Ready tasks
-- have their own index in `seq` order: an index on (status, queue_name, …) that covered
-- them would match the claim's `status = 'READY' AND queue_name = ANY(…)` better than the
-- claim-order index does, and on stale statistics the planner would claim through it and
-- sort every ready task (the plan test in sql.rs catches that).
CREATE INDEX mailroom_tasks_status
    ON {schema}.mailroom_tasks (status, queue_name, seq)
    WHERE status <> 'READY';
CREATE INDEX mailroom_tasks_ready_by_seq
    ON {schema}.mailroom_tasks (seq)
    WHERE status = 'READY';

-- A worker looks for cancel requests on the tasks it runs.
CREATE INDEX mailroom_tasks_cancel_requests
    ON {schema}.mailroom_tasks (worker_id)
    WHERE status = 'RUNNING' AND cancel_requested_at IS NOT NULL;

-- Per-queue settings shared by every worker on every machine: paused (`paused_at` set) and
-- a rate limit of `rate_limit` tasks per `rate_interval_ms`, per distinct value of the
-- labels named in `rate_key_by` (empty: one limit for the queue).
CREATE TABLE {schema}.mailroom_queues (
    queue_name       TEXT        PRIMARY KEY,
    paused_at        TIMESTAMPTZ,
    rate_limit       INTEGER     CHECK (rate_limit IS NULL OR rate_limit > 0),
    rate_interval_ms BIGINT      CHECK (rate_interval_ms IS NULL OR rate_interval_ms > 0),
    rate_key_by      TEXT[]      NOT NULL DEFAULT '{}',
    updated_at       TIMESTAMPTZ NOT NULL
);

-- The token buckets of rate-limited queues, one per queue and key, taken from in the same
-- transaction that claims the tasks.
CREATE TABLE {schema}.mailroom_rate_buckets (
    queue_name  TEXT             NOT NULL,
    rate_key    TEXT             NOT NULL,
    tokens      DOUBLE PRECISION NOT NULL,
    refilled_at TIMESTAMPTZ      NOT NULL,
    PRIMARY KEY (queue_name, rate_key)
);
