-- Inventory from the devices: what each enrolled device last reported of itself
-- (DeviceInformation, SecurityInfo), kept on its enrollment; NULL until it answered.
ALTER TABLE mdm_enrollments ADD COLUMN platform TEXT;
-- The OS version as a comparable number: major * 1,000,000 + minor * 1,000 + patch.
ALTER TABLE mdm_enrollments ADD COLUMN os_rank BIGINT;
ALTER TABLE mdm_enrollments ADD COLUMN capacity_mb BIGINT;
ALTER TABLE mdm_enrollments ADD COLUMN available_mb BIGINT;
ALTER TABLE mdm_enrollments ADD COLUMN battery_pct BIGINT;
ALTER TABLE mdm_enrollments ADD COLUMN wifi_mac TEXT;
ALTER TABLE mdm_enrollments ADD COLUMN phone_number TEXT;
ALTER TABLE mdm_enrollments ADD COLUMN iccid TEXT;
ALTER TABLE mdm_enrollments ADD COLUMN activation_lock BIGINT;
ALTER TABLE mdm_enrollments ADD COLUMN passcode_present BIGINT;
ALTER TABLE mdm_enrollments ADD COLUMN passcode_compliant BIGINT;
-- HardwareEncryptionCaps: 1 block-level, 2 file-level, 3 both.
ALTER TABLE mdm_enrollments ADD COLUMN encryption_caps BIGINT;
-- A jailbroken or rooted signal (1) from the platform; NULL when it gives none.
ALTER TABLE mdm_enrollments ADD COLUMN compromised BIGINT;
ALTER TABLE mdm_enrollments ADD COLUMN inventory_at BIGINT;
-- When the next scheduled inventory is due (NULL: not scheduled).
ALTER TABLE mdm_enrollments ADD COLUMN inventory_due_at BIGINT;
CREATE INDEX mdm_enrollments_inventory_due ON mdm_enrollments (inventory_due_at) WHERE status = 'enrolled';

-- Every change of an inventory field, oldest first per enrollment.
CREATE TABLE mdm_inventory_changes (
    id TEXT PRIMARY KEY,
    enrollment_id TEXT NOT NULL,
    field TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT,
    changed_at BIGINT NOT NULL
);
CREATE INDEX mdm_inventory_changes_by_enrollment ON mdm_inventory_changes (enrollment_id, changed_at);

-- What the device last listed (InstalledApplicationList, ProfileList, CertificateList).
CREATE TABLE mdm_installed_apps (
    enrollment_id TEXT NOT NULL,
    identifier TEXT NOT NULL,
    name TEXT,
    version TEXT,
    short_version TEXT,
    bundle_size BIGINT,
    PRIMARY KEY (enrollment_id, identifier)
);
CREATE INDEX mdm_installed_apps_by_identifier ON mdm_installed_apps (identifier);
CREATE TABLE mdm_installed_profiles (
    enrollment_id TEXT NOT NULL,
    identifier TEXT NOT NULL,
    uuid TEXT NOT NULL,
    display_name TEXT,
    organization TEXT,
    managed BIGINT,
    PRIMARY KEY (enrollment_id, identifier)
);
CREATE TABLE mdm_installed_certificates (
    enrollment_id TEXT NOT NULL,
    -- SHA-256 of the DER, hex.
    fingerprint TEXT NOT NULL,
    common_name TEXT NOT NULL,
    is_identity BIGINT NOT NULL,
    not_after BIGINT,
    PRIMARY KEY (enrollment_id, fingerprint)
);

-- Compliance of every device in use: reasons is a space-separated list of reason codes, empty
-- when compliant. A row changes only when its reasons change; `since` is when they did.
CREATE TABLE device_compliance (
    device_id TEXT PRIMARY KEY,
    agency_code TEXT NOT NULL,
    reasons TEXT NOT NULL,
    compliant BIGINT NOT NULL,
    since BIGINT NOT NULL,
    -- Whether the agency was told of this non-compliance.
    notified BIGINT NOT NULL
-- Keyed by the device's id alone: one B-tree, probed once per device by the fleet's evaluation.
) WITHOUT ROWID;
CREATE INDEX device_compliance_by_agency ON device_compliance (agency_code, compliant, device_id);
CREATE INDEX device_compliance_unnotified ON device_compliance (agency_code) WHERE compliant = 0 AND notified = 0;

-- Periodic jobs: a lease so that of several nodes one runs each pass, and when it last finished.
CREATE TABLE job_leases (
    name TEXT PRIMARY KEY,
    holder TEXT,
    leased_until BIGINT NOT NULL,
    last_finished_at BIGINT
);
