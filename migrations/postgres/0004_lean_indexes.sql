-- mailroom tasks on PostgreSQL, schema version 4: one listing index that costs claims
-- nothing and that every listing and count can use, and RUNNING tasks counted by queue
-- from the leases index alone, and idempotency keys indexed only where a task has one.
-- `{schema}` is the quoted schema name.
--
-- Schema 3 indexed listings on `(status, queue_name, seq) WHERE status <> 'READY'` plus
-- `(seq) WHERE status = 'READY'`. Two faults: a claimed task entered the status index (as
-- RUNNING) at every claim, one index entry more per task than a worker needs; and the
-- operator's statements compared `status` with a parameter, which no partial index can
-- serve, so a count on 1,000,000 tasks read the whole table (3.1 s, measured).
--
-- Now: queue first, then status, then `seq`, leaving RUNNING tasks out. A claimed task
-- leaves the index and enters it again when it finishes; RUNNING tasks are few (at most
-- what the workers hold) and are listed and counted through `mailroom_tasks_leases`,
-- which holds exactly them. Ready tasks are in it too, so one skip scan over the queue
-- names finds every queue. The claim cannot walk this index: its queue condition is not
-- an index condition (see the claim in sql.rs), and the index's leading column is one the
-- claim does not otherwise name, so the claim-order index `mailroom_tasks_ready`, which
-- yields tasks in claim order and stops after LIMIT, is the only one that fits it.
-- Operator statements name statuses as literals so that the planner can prove the
-- index's condition.
--
-- The leases index carries each RUNNING task's queue, so that counting them per queue
-- reads the index alone once the rows are all-visible (as vacuum leaves them) instead of
-- every running task's row.
DROP INDEX IF EXISTS {schema}.mailroom_tasks_status;
DROP INDEX IF EXISTS {schema}.mailroom_tasks_ready_by_seq;
CREATE INDEX mailroom_tasks_status
    ON {schema}.mailroom_tasks (queue_name, status, seq)
    WHERE status <> 'RUNNING';

DROP INDEX IF EXISTS {schema}.mailroom_tasks_leases;
CREATE INDEX mailroom_tasks_leases
    ON {schema}.mailroom_tasks (lease_expires_at) INCLUDE (queue_name)
    WHERE status = 'RUNNING';

-- The idempotency keys: schema 1's `UNIQUE` constraint indexed every task, keyless ones
-- under NULL, and since no change of status can be a HOT update, each claim and each
-- completion of every task added an entry to it. Only tasks with a key are indexed now
-- (enqueue's `ON CONFLICT` names the same condition).
CREATE UNIQUE INDEX mailroom_tasks_idempotency_key
    ON {schema}.mailroom_tasks (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
ALTER TABLE {schema}.mailroom_tasks DROP CONSTRAINT IF EXISTS mailroom_tasks_idempotency_key_key;
