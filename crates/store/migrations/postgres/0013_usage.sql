-- Step 8: carrier usage. One row per line and month, as the carrier reported it, with the line's
-- device, that device's type and holder, and whether the line was active for only part of the
-- month, all as they were when the month was first imported: the biannual report's rules read
-- each month as it was. A corrected file replaces the usage figures and keeps that snapshot.
-- Rows are written only from a join on `lines` (and lines are never deleted), so the agency and
-- line need no foreign-key checks on the import's hot path.
CREATE TABLE usage_records (
    phone_number TEXT NOT NULL,
    month TEXT NOT NULL,
    agency_code TEXT NOT NULL,
    line_id TEXT NOT NULL,
    carrier TEXT NOT NULL,
    voice_minutes BIGINT NOT NULL,
    messages BIGINT NOT NULL,
    data_kb BIGINT NOT NULL,
    international_cents BIGINT NOT NULL,
    line_plan TEXT NOT NULL,
    device_id TEXT,
    device_type TEXT,
    holder_id TEXT,
    partial BIGINT NOT NULL,
    import_id TEXT NOT NULL,
    PRIMARY KEY (phone_number, month)
);
-- The report reads an agency's months in line order.
CREATE INDEX usage_records_by_agency ON usage_records (agency_code, line_id, month);

-- Every import that changed something: the file, its digest, and what it did.
CREATE TABLE usage_imports (
    id TEXT PRIMARY KEY,
    file_name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    row_count BIGINT NOT NULL,
    inserted BIGINT NOT NULL,
    replaced BIGINT NOT NULL,
    unchanged BIGINT NOT NULL,
    first_month TEXT NOT NULL,
    last_month TEXT NOT NULL,
    imported_by TEXT NOT NULL,
    imported_at BIGINT NOT NULL
);
CREATE INDEX usage_imports_by_time ON usage_imports (imported_at);
