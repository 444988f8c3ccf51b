-- The enrollment of an inventory device (its MDM section on the device page).
CREATE INDEX mdm_enrollments_by_device ON mdm_enrollments (device_id);

-- Commands are listed by central IT only (agency users hold no MDM role): no agency index to
-- maintain on every queued command.
DROP INDEX mdm_commands_by_agency;

-- Only finished commands are reaped: queued ones stay out of the index.
DROP INDEX mdm_commands_by_completion;
CREATE INDEX mdm_commands_by_completion ON mdm_commands (completed_at) WHERE completed_at IS NOT NULL;
