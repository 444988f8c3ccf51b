-- Apple MDM: Custody's certificate authority, SCEP challenges, issued identity certificates,
-- the APNs push certificate, enrollments and their command queues.

-- One row: the CA created at first start. The private key is sealed (AES-256-GCM) with the
-- key from configuration; the certificate is public.
CREATE TABLE mdm_ca (
    id TEXT PRIMARY KEY,
    cert_pem TEXT NOT NULL,
    key_sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- SCEP challenges: each agency's standing challenge (in its enrollment profile) and one-time
-- challenges. The value is sealed so the profile can carry it; lookups go by its SHA-256.
CREATE TABLE scep_challenges (
    id TEXT PRIMARY KEY,
    agency_code TEXT NOT NULL REFERENCES agencies (code),
    kind TEXT NOT NULL,
    digest TEXT NOT NULL,
    value_sealed TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    used_at BIGINT,
    revoked_at BIGINT
);
CREATE UNIQUE INDEX scep_challenges_digest_key ON scep_challenges (digest);
CREATE INDEX scep_challenges_by_agency ON scep_challenges (agency_code, kind, created_at);

-- Identity certificates the CA issued, by serial (hex).
CREATE TABLE mdm_certificates (
    serial TEXT PRIMARY KEY,
    agency_code TEXT NOT NULL REFERENCES agencies (code),
    subject TEXT NOT NULL,
    challenge_id TEXT,
    renewed_from TEXT,
    cert_pem TEXT NOT NULL,
    not_before BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    udid TEXT,
    revoked_at BIGINT,
    revocation_reason TEXT
);
CREATE INDEX mdm_certificates_by_agency ON mdm_certificates (agency_code, issued_at);
CREATE INDEX mdm_certificates_by_udid ON mdm_certificates (udid);

-- One row: the APNs MDM push certificate (its key sealed like the CA's) and its topic.
CREATE TABLE push_certificates (
    id TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    subject TEXT NOT NULL,
    cert_pem TEXT NOT NULL,
    key_sealed TEXT NOT NULL,
    not_after BIGINT NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_at BIGINT NOT NULL
);

-- A device's enrollment in MDM, by UDID (the device channel).
CREATE TABLE mdm_enrollments (
    id TEXT PRIMARY KEY,
    udid TEXT NOT NULL,
    agency_code TEXT NOT NULL REFERENCES agencies (code),
    device_id TEXT,
    status TEXT NOT NULL,
    cert_serial TEXT NOT NULL,
    topic TEXT,
    serial_number TEXT,
    imei TEXT,
    meid TEXT,
    product_name TEXT,
    model TEXT,
    model_name TEXT,
    device_name TEXT,
    os_version TEXT,
    build_version TEXT,
    push_token TEXT,
    push_magic TEXT,
    unlock_token_sealed TEXT,
    token_invalid_at BIGINT,
    authenticated_at BIGINT NOT NULL,
    enrolled_at BIGINT,
    last_seen_at BIGINT NOT NULL,
    checked_out_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX mdm_enrollments_udid_key ON mdm_enrollments (udid);
CREATE INDEX mdm_enrollments_by_agency ON mdm_enrollments (agency_code, id);
CREATE INDEX mdm_enrollments_by_status ON mdm_enrollments (status, id);
CREATE INDEX mdm_enrollments_by_serial ON mdm_enrollments (serial_number);

-- The command queue: one row per command per enrollment; its id is the CommandUUID.
CREATE TABLE mdm_commands (
    id TEXT PRIMARY KEY,
    enrollment_id TEXT NOT NULL REFERENCES mdm_enrollments (id),
    agency_code TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    request_type TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- The earliest time the command may be handed out (a NotNow pushes it back).
    due_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    sent_at BIGINT,
    deliveries BIGINT NOT NULL,
    not_now_count BIGINT NOT NULL,
    result_status TEXT,
    result TEXT,
    error_chain TEXT,
    completed_at BIGINT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX mdm_commands_queue ON mdm_commands (enrollment_id, status, due_at, created_at);
CREATE INDEX mdm_commands_by_status ON mdm_commands (status, expires_at);
CREATE INDEX mdm_commands_by_batch ON mdm_commands (batch_id, id);
CREATE INDEX mdm_commands_by_agency ON mdm_commands (agency_code, created_at);
CREATE INDEX mdm_commands_by_type ON mdm_commands (request_type, created_at);
CREATE INDEX mdm_commands_by_completion ON mdm_commands (completed_at);

-- Pushes waiting to go to APNs: one row per enrollment, so pushes coalesce; a node claims
-- due rows with a lease.
CREATE TABLE mdm_push_due (
    enrollment_id TEXT PRIMARY KEY,
    due_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    claimed_until BIGINT NOT NULL
);
CREATE INDEX mdm_push_due_by_time ON mdm_push_due (due_at);
