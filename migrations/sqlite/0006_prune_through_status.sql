-- mailroom tasks, schema version 6: pruning goes through the status index, and the index of
-- finished tasks is gone.
--
-- Every task that finishes took an entry in two indexes: the status index (for listings
-- and counts) and `mailroom_tasks_finished` (for pruning). The status index now holds each
-- task's `finished_at` as its last column, and the pruner walks it, one `(status, queue)`
-- range of a finished status at a time, reading the finish times from the index alone; so
-- a completion writes one index entry fewer. A claim and a completion each still touch the
-- status index once (a READY entry leaves it, a finished one enters it). The key's first
-- three columns are those of schema 4, so listings and counts read it as before.
DROP INDEX mailroom_tasks_finished;
DROP INDEX mailroom_tasks_status;
CREATE INDEX mailroom_tasks_status
    ON mailroom_tasks (status, queue_name, seq, finished_at)
    WHERE status <> 'RUNNING';
