-- Step 1: agencies, people, users, sessions, API tokens, sign-in throttling, the audit chain.
-- Times are BIGINT unix milliseconds; booleans are BIGINT 0/1; ids are TEXT.

CREATE TABLE agencies (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    billing_account TEXT,
    fund_code TEXT,
    relationship_manager TEXT,
    legal_contact TEXT,
    shipping_address TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX agencies_name_key ON agencies (name);

CREATE TABLE people (
    id TEXT PRIMARY KEY,
    agency_code TEXT NOT NULL REFERENCES agencies (code),
    given_name TEXT NOT NULL,
    family_name TEXT NOT NULL,
    email TEXT,
    employee_id TEXT,
    unit TEXT,
    title TEXT,
    phone TEXT,
    status TEXT NOT NULL,
    search TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX people_email_key ON people (agency_code, email) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX people_employee_id_key ON people (agency_code, employee_id) WHERE employee_id IS NOT NULL;
CREATE INDEX people_by_name ON people (family_name, given_name, id);
CREATE INDEX people_by_agency_name ON people (agency_code, family_name, given_name, id);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    email TEXT,
    display_name TEXT NOT NULL,
    roles TEXT NOT NULL,
    agency_code TEXT REFERENCES agencies (code),
    password_hash TEXT,
    disabled BIGINT NOT NULL DEFAULT 0,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    last_login_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_email_key ON users (email) WHERE email IS NOT NULL;
CREATE INDEX users_by_agency ON users (agency_code, display_name, id);
CREATE INDEX users_by_name ON users (display_name, id);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users (id),
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    source_addr TEXT
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    roles TEXT NOT NULL,
    agency_code TEXT REFERENCES agencies (code),
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    expires_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id, created_at);

CREATE TABLE login_failures (
    source_addr TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX login_failures_by_addr ON login_failures (source_addr, at);

CREATE TABLE audit_events (
    seq BIGINT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    at BIGINT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT,
    actor_label TEXT NOT NULL,
    action TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id TEXT NOT NULL,
    agency_code TEXT,
    changes TEXT NOT NULL,
    request_id TEXT,
    source_addr TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_by_object ON audit_events (object_type, object_id, seq);
CREATE INDEX audit_by_actor ON audit_events (actor_id, seq);
CREATE INDEX audit_by_agency ON audit_events (agency_code, seq);
CREATE INDEX audit_by_time ON audit_events (at);

-- One row: the chain's head. Every audit append updates it in the same transaction, which
-- serialises appends across processes and lets verification notice a deleted last event.
CREATE TABLE audit_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
