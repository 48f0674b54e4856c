-- mailroom tasks on PostgreSQL, schema version 2: count the attempts that ended without an
-- outcome, keep the enqueued arguments when an attempt replaces them, and route tasks to
-- workers. `lease_expiries` counts how many times the rescuer found this task's lease
-- expired (its worker died or hung). The rescuer fails a task once it reaches the limit,
-- and a worker runs a task with expiries only when it runs nothing else (so a task that
-- crashes its worker process takes no other task down with it a second time).
ALTER TABLE {schema}.mailroom_tasks ADD COLUMN lease_expiries INTEGER NOT NULL DEFAULT 0;

-- An attempt may hand the next one new arguments (its progress); the arguments the task
-- was enqueued with stay here (NULL while `args` still holds them), so that enqueuing the
-- same task under its idempotency key again still matches.
ALTER TABLE {schema}.mailroom_tasks ADD COLUMN enqueued_args JSON;

-- A task may name a route (e.g. the transport it needs); a worker that names its routes
-- claims only tasks without one or with one of them, so a task never lands on a worker
-- that cannot run it. NULL: any worker.
ALTER TABLE {schema}.mailroom_tasks ADD COLUMN route TEXT;

-- Rows from version 1 carry their expiries in the errors history.
UPDATE {schema}.mailroom_tasks t SET lease_expiries = (
    SELECT count(*) FROM jsonb_array_elements(t.errors) e WHERE e->>'kind' = 'lease_expired'
) WHERE t.errors <> '[]'::jsonb;
