-- EUC's queue: enrollments joined to no inventory device.
CREATE INDEX mdm_enrollments_unmatched ON mdm_enrollments (id) WHERE device_id IS NULL;

-- `IsSupervised` as the device last reported it (1/0; unknown until it answers DeviceInformation):
-- Lost Mode needs a supervised device, others are locked instead.
ALTER TABLE mdm_enrollments ADD COLUMN supervised BIGINT;
