-- Step 3: Mobile Device Plans, service requests with approvals, comments and their timeline,
-- notifications (the in-console inbox and the e-mail outbox), named counters.

-- An agency approver designated as the agency's business/financial executive.
ALTER TABLE users ADD COLUMN financial_executive BIGINT NOT NULL DEFAULT 0;

-- Named sequences (request numbers), incremented under the row's write lock.
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('request_number', 0);

CREATE TABLE plans (
    id TEXT PRIMARY KEY,
    agency_code TEXT NOT NULL REFERENCES agencies (code),
    version BIGINT NOT NULL,
    status TEXT NOT NULL,
    content TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    submitted_at BIGINT,
    certified_at BIGINT,
    certified_by TEXT,
    superseded_at BIGINT
);
CREATE UNIQUE INDEX plans_version_key ON plans (agency_code, version);
CREATE INDEX plans_by_status ON plans (status, agency_code);

CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    number BIGINT NOT NULL,
    agency_code TEXT NOT NULL REFERENCES agencies (code),
    request_type TEXT NOT NULL,
    status TEXT NOT NULL,
    requester_id TEXT NOT NULL REFERENCES users (id),
    requester_label TEXT NOT NULL,
    subject_person_id TEXT REFERENCES people (id),
    device_type TEXT,
    data_plan BIGINT NOT NULL,
    funding TEXT,
    details TEXT NOT NULL,
    findings TEXT NOT NULL,
    chain TEXT NOT NULL,
    waiting_stage TEXT,
    summary TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    submitted_at BIGINT,
    decided_at BIGINT,
    fulfilled_at BIGINT
);
CREATE UNIQUE INDEX requests_number_key ON requests (number);
CREATE INDEX requests_by_agency ON requests (agency_code, number);
CREATE INDEX requests_by_status ON requests (status, number);
CREATE INDEX requests_waiting ON requests (waiting_stage, agency_code, number);
CREATE INDEX requests_by_subject ON requests (subject_person_id, status);
CREATE INDEX requests_by_requester ON requests (requester_id, number);

CREATE TABLE request_approvals (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL REFERENCES requests (id),
    stage TEXT NOT NULL,
    decision TEXT NOT NULL,
    reason TEXT,
    override_reason TEXT,
    overridden TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    decided_by_label TEXT NOT NULL,
    decided_at BIGINT NOT NULL
);
CREATE INDEX request_approvals_by_request ON request_approvals (request_id, decided_at);

CREATE TABLE request_comments (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL REFERENCES requests (id),
    author_id TEXT,
    author_label TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX request_comments_by_request ON request_comments (request_id, created_at);

-- Every status change, with when the left status was entered: the service-level figures are
-- the durations (at - entered_at) per request type and left status.
CREATE TABLE request_transitions (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL REFERENCES requests (id),
    request_type TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    event TEXT NOT NULL,
    actor_label TEXT NOT NULL,
    entered_at BIGINT,
    at BIGINT NOT NULL
);
CREATE INDEX request_transitions_by_request ON request_transitions (request_id, at);
CREATE INDEX request_transitions_by_stage ON request_transitions (request_type, from_status);

-- One notification per recipient: shown in the console inbox, and e-mailed by the outbox job
-- when the recipient has an address (email_status pending → sent, or failed after retries).
CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    email TEXT,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    request_id TEXT,
    created_at BIGINT NOT NULL,
    read_at BIGINT,
    email_status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT,
    claimed_until BIGINT,
    last_error TEXT,
    sent_at BIGINT
);
CREATE INDEX notifications_inbox ON notifications (user_id, created_at);
CREATE INDEX notifications_outbox ON notifications (email_status, next_attempt_at);

-- Service levels without reading every transition: per day (UTC, of leaving the status),
-- agency, request type and status left, how many stays fell in each duration bucket (buckets
-- grow by 10%, so a percentile read from them is within 5%). Kept in the transaction that
-- records the transition.
CREATE TABLE request_stage_stats (
    day TEXT NOT NULL,
    agency_code TEXT NOT NULL,
    request_type TEXT NOT NULL,
    stage TEXT NOT NULL,
    bucket BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (day, agency_code, request_type, stage, bucket)
);
