-- Step 8, for speed: usage months keyed by one integer, and the line's snapshot shared.
--
-- `usage_records` kept a line's agency, device, type and holder as text in every month (about
-- 150 bytes a row, three B-trees to write). A month is now one row of `usage_months` keyed by
-- `k = (months since 2000-01) << 50 | the phone number's digits` (an E.164 number has at most
-- 15 digits, under 2^50): the table is its own index, a month's rows sit together, so a carrier's
-- monthly file appends, and a line's months are found by computing their keys. What the line was
-- in a month (agency, device, type, holder) is a row of `usage_line_states`, written once and
-- shared by every month that saw the line so; `import_seq` names the import by its number.
CREATE TABLE usage_line_states (
    id INTEGER PRIMARY KEY,
    line_id TEXT NOT NULL,
    phone_number TEXT NOT NULL,
    agency_code TEXT NOT NULL,
    device_id TEXT,
    device_type TEXT,
    holder_id TEXT
);
CREATE INDEX usage_line_states_by_line ON usage_line_states (line_id, id);
-- The report reads the lines an agency had.
CREATE INDEX usage_line_states_by_agency ON usage_line_states (agency_code, line_id, phone_number);

CREATE TABLE usage_months (
    k INTEGER PRIMARY KEY,
    state_id BIGINT NOT NULL,
    carrier TEXT NOT NULL,
    voice_minutes BIGINT NOT NULL,
    messages BIGINT NOT NULL,
    data_kb BIGINT NOT NULL,
    international_cents BIGINT NOT NULL,
    line_plan TEXT NOT NULL,
    partial BIGINT NOT NULL,
    import_seq BIGINT NOT NULL
);

ALTER TABLE usage_imports ADD COLUMN seq BIGINT;
UPDATE usage_imports SET seq = (SELECT COUNT(*) FROM usage_imports o
    WHERE o.imported_at < usage_imports.imported_at OR (o.imported_at = usage_imports.imported_at AND o.id <= usage_imports.id));
CREATE UNIQUE INDEX usage_imports_seq_key ON usage_imports (seq);

INSERT INTO usage_line_states (line_id, phone_number, agency_code, device_id, device_type, holder_id)
SELECT DISTINCT line_id, phone_number, agency_code, device_id, device_type, holder_id FROM usage_records;

INSERT INTO usage_months (k, state_id, carrier, voice_minutes, messages, data_kb, international_cents, line_plan, partial,
    import_seq)
SELECT (((CAST(substr(r.month, 1, 4) AS INTEGER) - 2000) * 12 + CAST(substr(r.month, 6, 2) AS INTEGER) - 1) << 50)
        | CAST(substr(r.phone_number, 2) AS INTEGER),
    (SELECT s.id FROM usage_line_states s WHERE s.line_id = r.line_id AND s.agency_code = r.agency_code
        AND s.device_id IS r.device_id AND s.device_type IS r.device_type AND s.holder_id IS r.holder_id),
    r.carrier, r.voice_minutes, r.messages, r.data_kb, r.international_cents, r.line_plan, r.partial,
    COALESCE((SELECT i.seq FROM usage_imports i WHERE i.id = r.import_id), 0)
FROM usage_records r;

DROP TABLE usage_records;
