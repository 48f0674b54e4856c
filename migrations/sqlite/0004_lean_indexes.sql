-- mailroom tasks, schema version 4: two indexes that cost every claim and completion less.
--
-- The status index (for listings and counts) leaves RUNNING tasks out: a task then enters
-- it at enqueue, leaves it at claim and enters it again when it finishes, instead of moving
-- inside it at every change of status. RUNNING tasks are few (at most what the workers have
-- claimed) and are listed and counted through `mailroom_tasks_leases`, which holds exactly
-- them. Statements that use this index carry the term `status <> 'RUNNING'` word for word,
-- since SQLite uses a partial index only for a query whose WHERE clause contains its terms.
--
-- The index of finished tasks (for pruning) is keyed on `finished_at IS NOT NULL` instead
-- of `status IN ('SUCCESSFUL', 'FAILED', 'CANCELLED')`: SQLite evaluates a partial index's
-- condition on every row written, and an IN list of three builds a temporary table each
-- time. A task has a `finished_at` exactly when it has finished, and `finished_at < ?`
-- implies the new condition, so pruning still finds the index.
DROP INDEX mailroom_tasks_status;
CREATE INDEX mailroom_tasks_status
    ON mailroom_tasks (status, queue_name, seq)
    WHERE status <> 'RUNNING';

DROP INDEX mailroom_tasks_finished;
CREATE INDEX mailroom_tasks_finished
    ON mailroom_tasks (finished_at)
    WHERE finished_at IS NOT NULL;
