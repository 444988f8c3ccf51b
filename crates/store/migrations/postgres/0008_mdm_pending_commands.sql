-- A command's queue and expiry only ever look at pending commands: index those alone, so that a
-- command leaves both indexes when it is answered instead of moving inside them, and the
-- indexes stay the size of the queue rather than of the history.
DROP INDEX mdm_commands_queue;
-- A device's commands, newest first (its page), and the foreign key's lookups: columns that
-- never change, so answering a command does not touch it.
CREATE INDEX mdm_commands_by_enrollment ON mdm_commands (enrollment_id, id);
CREATE INDEX mdm_commands_pending ON mdm_commands (enrollment_id, due_at, created_at)
    WHERE status IN ('queued', 'sent', 'not_now');
DROP INDEX mdm_commands_by_status;
CREATE INDEX mdm_commands_expiring ON mdm_commands (expires_at) WHERE status IN ('queued', 'sent', 'not_now');
-- The failures central IT looks for among the history (a list filtered by status, newest first).
CREATE INDEX mdm_commands_errors ON mdm_commands (id) WHERE status = 'error';
CREATE INDEX mdm_commands_expired ON mdm_commands (id) WHERE status = 'expired';
