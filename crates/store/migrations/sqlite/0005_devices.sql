-- Step 4: devices and lines, the chain of custody, legal holds, lifecycle commands.

CREATE TABLE lines (
    id TEXT PRIMARY KEY,
    agency_code TEXT NOT NULL REFERENCES agencies (code),
    phone_number TEXT NOT NULL,
    carrier TEXT NOT NULL,
    plan_kind TEXT NOT NULL,
    status TEXT NOT NULL,
    international_from TEXT,
    international_until TEXT,
    device_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX lines_phone_key ON lines (phone_number);
CREATE INDEX lines_by_agency ON lines (agency_code, phone_number);

CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    agency_code TEXT NOT NULL REFERENCES agencies (code),
    state TEXT NOT NULL,
    device_type TEXT NOT NULL,
    model_id TEXT NOT NULL REFERENCES device_models (id),
    serial TEXT,
    imei TEXT,
    meid TEXT,
    funding TEXT NOT NULL,
    ordered_for TEXT REFERENCES people (id),
    holder_id TEXT REFERENCES people (id),
    line_id TEXT REFERENCES lines (id),
    request_id TEXT REFERENCES requests (id),
    location TEXT NOT NULL,
    accessories TEXT NOT NULL,
    enrolled_at BIGINT,
    billing_stop_at BIGINT,
    destination TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX devices_serial_key ON devices (serial) WHERE serial IS NOT NULL;
CREATE UNIQUE INDEX devices_imei_key ON devices (imei) WHERE imei IS NOT NULL;
CREATE INDEX devices_by_agency_state ON devices (agency_code, state, id);
CREATE INDEX devices_by_state ON devices (state, id);
CREATE INDEX devices_by_agency ON devices (agency_code, id);
CREATE INDEX devices_by_holder ON devices (holder_id);
CREATE INDEX devices_by_request ON devices (request_id);

-- Every physical move: who had it, who has it now, where.
CREATE TABLE custody_events (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices (id),
    event TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    from_location TEXT,
    to_location TEXT NOT NULL,
    holder_before TEXT,
    holder_after TEXT,
    received_by TEXT,
    actor_label TEXT NOT NULL,
    note TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX custody_events_by_device ON custody_events (device_id, at);

CREATE TABLE legal_holds (
    id TEXT PRIMARY KEY,
    agency_code TEXT NOT NULL REFERENCES agencies (code),
    matter TEXT NOT NULL,
    person_id TEXT REFERENCES people (id),
    device_id TEXT REFERENCES devices (id),
    placed_by TEXT NOT NULL,
    placed_at BIGINT NOT NULL,
    released_by TEXT,
    released_at BIGINT
);
CREATE INDEX legal_holds_by_person ON legal_holds (person_id, released_at);
CREATE INDEX legal_holds_by_device ON legal_holds (device_id, released_at);
CREATE INDEX legal_holds_by_agency ON legal_holds (agency_code, released_at);

-- Commands the lifecycle asks for (lost mode, lock, erase); step 6 delivers them over MDM.
CREATE TABLE device_commands (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices (id),
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX device_commands_by_device ON device_commands (device_id, created_at);
CREATE INDEX device_commands_pending ON device_commands (status, created_at);

-- NIST SP 800-88 sanitization (and destruction) records: performed by one person, validated
-- by another. `record` holds the certificate's fields as JSON.
CREATE TABLE sanitization_records (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices (id),
    agency_code TEXT NOT NULL REFERENCES agencies (code),
    method_type TEXT NOT NULL,
    record TEXT NOT NULL,
    performed_by TEXT NOT NULL,
    performed_by_label TEXT NOT NULL,
    performed_at BIGINT NOT NULL,
    validation TEXT,
    validated_by TEXT,
    validated_by_label TEXT,
    validated_at BIGINT
);
CREATE INDEX sanitization_records_by_device ON sanitization_records (device_id, performed_at);
