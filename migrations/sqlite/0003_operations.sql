-- mailroom tasks, schema version 3: operating the queue (list, cancel, retry, pause, rate
-- limits, timeouts, unique windows).
--
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt to admit the
-- new `CANCELLED` status (the documented "make other kinds of table schema changes"
-- procedure: create, copy, drop, rename, re-index); `seq` values are kept.
CREATE TABLE mailroom_tasks_v3 (
    seq                 INTEGER PRIMARY KEY,
    id                  BLOB    NOT NULL UNIQUE,
    task_name           TEXT    NOT NULL,
    queue_name          TEXT    NOT NULL,
    priority            INTEGER NOT NULL,
    args                TEXT    NOT NULL,
    status              TEXT    NOT NULL CHECK (status IN ('READY', 'RUNNING', 'SUCCESSFUL', 'FAILED', 'CANCELLED')),
    enqueued_at         INTEGER NOT NULL,
    run_after           INTEGER NOT NULL,
    started_at          INTEGER,
    finished_at         INTEGER,
    last_attempted_at   INTEGER,
    attempt             INTEGER NOT NULL DEFAULT 0,
    max_attempts        INTEGER NOT NULL,
    worker_id           TEXT,
    lease_expires_at    INTEGER,
    worker_ids          TEXT    NOT NULL DEFAULT '[]',
    errors              TEXT    NOT NULL DEFAULT '[]',
    return_value        TEXT,
    idempotency_key     TEXT    UNIQUE,
    lease_expiries      INTEGER NOT NULL DEFAULT 0,
    enqueued_args       TEXT,
    route               TEXT,
    -- A cancel request for a RUNNING task: its worker stops the attempt and records
    -- CANCELLED (fenced like every completion).
    cancel_requested_at INTEGER,
    -- The longest one attempt may run, in milliseconds (NULL: no limit).
    timeout_ms          INTEGER,
    -- Labels (a JSON object of strings) that rate limits key by, e.g. transport and domain.
    labels              TEXT,
    -- How long the idempotency key stays taken: NULL or 'forever' (until pruned),
    -- 'unfinished' (while the task has not finished), 'until' (until `unique_until`).
    unique_scope        TEXT CHECK (unique_scope IN ('forever', 'unfinished', 'until')),
    unique_until        INTEGER
);

INSERT INTO mailroom_tasks_v3 (seq, id, task_name, queue_name, priority, args, status,
    enqueued_at, run_after, started_at, finished_at, last_attempted_at, attempt, max_attempts,
    worker_id, lease_expires_at, worker_ids, errors, return_value, idempotency_key,
    lease_expiries, enqueued_args, route)
SELECT seq, id, task_name, queue_name, priority, args, status,
    enqueued_at, run_after, started_at, finished_at, last_attempted_at, attempt, max_attempts,
    worker_id, lease_expires_at, worker_ids, errors, return_value, idempotency_key,
    lease_expiries, enqueued_args, route
FROM mailroom_tasks;

DROP TABLE mailroom_tasks;
ALTER TABLE mailroom_tasks_v3 RENAME TO mailroom_tasks;

-- The claim query: ready tasks of a queue by priority, then run_after, then enqueue order.
CREATE INDEX mailroom_tasks_ready
    ON mailroom_tasks (queue_name, priority DESC, run_after, seq, lease_expiries)
    WHERE status = 'READY';

-- The rescuer: running tasks by lease expiry.
CREATE INDEX mailroom_tasks_leases
    ON mailroom_tasks (lease_expires_at)
    WHERE status = 'RUNNING';

-- The pruner: finished tasks by finish time.
CREATE INDEX mailroom_tasks_finished
    ON mailroom_tasks (finished_at)
    WHERE status IN ('SUCCESSFUL', 'FAILED', 'CANCELLED');

-- Listing and counting: by status (and queue), newest (highest seq) first.
CREATE INDEX mailroom_tasks_status
    ON mailroom_tasks (status, queue_name, seq);

-- A worker looks for cancel requests on the tasks it runs.
CREATE INDEX mailroom_tasks_cancel_requests
    ON mailroom_tasks (worker_id)
    WHERE status = 'RUNNING' AND cancel_requested_at IS NOT NULL;

-- Per-queue settings shared by every worker on every machine: paused (`paused_at` set) and
-- a rate limit of `rate_limit` tasks per `rate_interval_ms`, per distinct value of the
-- labels named in `rate_key_by` (a JSON array of label names; '[]': one limit for the queue).
CREATE TABLE mailroom_queues (
    queue_name       TEXT    PRIMARY KEY,
    paused_at        INTEGER,
    rate_limit       INTEGER CHECK (rate_limit IS NULL OR rate_limit > 0),
    rate_interval_ms INTEGER CHECK (rate_interval_ms IS NULL OR rate_interval_ms > 0),
    rate_key_by      TEXT    NOT NULL DEFAULT '[]',
    updated_at       INTEGER NOT NULL
);

-- The token buckets of rate-limited queues, one per queue and key, taken from in the same
-- transaction that claims the tasks.
CREATE TABLE mailroom_rate_buckets (
    queue_name  TEXT    NOT NULL,
    rate_key    TEXT    NOT NULL,
    tokens      REAL    NOT NULL,
    refilled_at INTEGER NOT NULL,
    PRIMARY KEY (queue_name, rate_key)
);
