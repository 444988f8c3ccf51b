-- The pushes of a batch of commands queued at once, scheduled as one row: the push sender turns
-- it into the batch's rows of mdm_push_due a slice at a time (by command id, after
-- `expanded_through`), so queuing one command for 100,000 devices writes one row here instead of
-- 100,000 there. A row leaves when its batch is expanded: the table holds a handful of rows at
-- most, read without an index.
CREATE TABLE mdm_push_batches (
    batch_id TEXT PRIMARY KEY,
    due_at BIGINT NOT NULL,
    -- The last command of the batch (by id) whose push is scheduled; '' before the first slice.
    expanded_through TEXT NOT NULL
);
