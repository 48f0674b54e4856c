-- mailroom tasks, schema version 5: the leases index holds each RUNNING task's queue too.
--
-- Since schema 4 RUNNING tasks are listed and counted through `mailroom_tasks_leases`
-- (the status index leaves them out). Keyed on the lease expiry alone, counting them per
-- queue looked up every running task's row: 125 ms for `count_tasks` on 1,000,000 tasks
-- of which 10,000 were running. With the queue name in the index those statements read
-- the index alone. The rescuer's `lease_expires_at < ?` still seeks on its first column,
-- and a claim or completion writes one entry here as before.
DROP INDEX mailroom_tasks_leases;
CREATE INDEX mailroom_tasks_leases
    ON mailroom_tasks (lease_expires_at, queue_name)
    WHERE status = 'RUNNING';
