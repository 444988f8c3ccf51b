-- The enrollment of an inventory device (its MDM section on the device page).
CREATE INDEX mdm_enrollments_by_device ON mdm_enrollments (device_id);
