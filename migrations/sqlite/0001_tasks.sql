-- mailroom tasks, schema version 1.
-- Times are integer microseconds since the Unix epoch (UTC); ids are 16-byte UUID v7 blobs.
CREATE TABLE mailroom_tasks (
    seq               INTEGER PRIMARY KEY,
    id                BLOB    NOT NULL UNIQUE,
    task_name         TEXT    NOT NULL,
    queue_name        TEXT    NOT NULL,
    priority          INTEGER NOT NULL,
    args              TEXT    NOT NULL,
    status            TEXT    NOT NULL CHECK (status IN ('READY', 'RUNNING', 'SUCCESSFUL', 'FAILED')),
    enqueued_at       INTEGER NOT NULL,
    run_after         INTEGER NOT NULL,
    started_at        INTEGER,
    finished_at       INTEGER,
    last_attempted_at INTEGER,
    attempt           INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL,
    worker_id         TEXT,
    lease_expires_at  INTEGER,
    worker_ids        TEXT    NOT NULL DEFAULT '[]',
    errors            TEXT    NOT NULL DEFAULT '[]',
    return_value      TEXT,
    idempotency_key   TEXT    UNIQUE
);

-- The claim query: ready tasks of a queue by priority, then run_after, then enqueue order.
CREATE INDEX mailroom_tasks_ready
    ON mailroom_tasks (queue_name, priority DESC, run_after, seq)
    WHERE status = 'READY';

-- The rescuer: running tasks by lease expiry.
CREATE INDEX mailroom_tasks_leases
    ON mailroom_tasks (lease_expires_at)
    WHERE status = 'RUNNING';

-- The pruner: finished tasks by finish time.
CREATE INDEX mailroom_tasks_finished
    ON mailroom_tasks (finished_at)
    WHERE status IN ('SUCCESSFUL', 'FAILED');
