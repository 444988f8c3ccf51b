-- EUC's queue: enrollments joined to no inventory device.
CREATE INDEX mdm_enrollments_unmatched ON mdm_enrollments (id) WHERE device_id IS NULL;

-- `IsSupervised` as the device last reported it (1/0; unknown until it answers DeviceInformation):
-- Lost Mode needs a supervised device, others are locked instead.
ALTER TABLE mdm_enrollments ADD COLUMN supervised BIGINT;

-- Remote erases: the two-person rule. An erase of more than one device, or asked by someone
-- without the infosec role, waits for a second person's approval; its commands then share the
-- request's id as their batch.
CREATE TABLE mdm_erase_requests (
    id TEXT PRIMARY KEY,
    -- The enrollments to erase, as a JSON array of ids.
    enrollment_ids TEXT NOT NULL,
    device_count BIGINT NOT NULL,
    -- The agency when every device is of one (for agency filters), else NULL.
    agency_code TEXT,
    reason TEXT NOT NULL,
    -- pending, approved (commands queued), rejected.
    status TEXT NOT NULL,
    -- The lifecycle command (a write-off) or the sanitization record it serves, if any.
    device_command_id TEXT,
    sanitization_id TEXT,
    requested_by TEXT NOT NULL,
    requested_by_label TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    decided_by TEXT,
    decided_by_label TEXT,
    decided_at BIGINT,
    decision_note TEXT
);
CREATE INDEX mdm_erase_requests_by_status ON mdm_erase_requests (status, requested_at);

-- A sanitization by remote erase completes when the device acknowledged the erase.
ALTER TABLE sanitization_records ADD COLUMN erase_request_id TEXT;
