-- Step 8: the biannual usage report. An issued report is frozen: its rows and recommendations
-- are written once, when it is issued, and later imports never touch them.
CREATE TABLE usage_reports (
    id TEXT PRIMARY KEY,
    agency_code TEXT NOT NULL REFERENCES agencies (code),
    first_month TEXT NOT NULL,
    last_month TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    issued_by TEXT NOT NULL,
    -- The first instant unanswered recommendations are deemed accepted: the start of the day
    -- after the response window's last day, on the billing calendar.
    deadline_at BIGINT NOT NULL,
    line_count BIGINT NOT NULL,
    recommendation_count BIGINT NOT NULL
);
CREATE UNIQUE INDEX usage_reports_key ON usage_reports (agency_code, first_month, last_month);
CREATE INDEX usage_reports_by_time ON usage_reports (issued_at);

-- Every line of the agency with usage in the period, with its device, type and holder in the
-- last month recorded, its totals and activity level.
CREATE TABLE usage_report_rows (
    report_id TEXT NOT NULL REFERENCES usage_reports (id),
    row_no BIGINT NOT NULL,
    phone_number TEXT NOT NULL,
    line_plan TEXT NOT NULL,
    device_id TEXT,
    serial TEXT,
    device_type TEXT,
    holder_id TEXT,
    holder_name TEXT,
    months BIGINT NOT NULL,
    voice_minutes BIGINT NOT NULL,
    messages BIGINT NOT NULL,
    data_kb BIGINT NOT NULL,
    international_cents BIGINT NOT NULL,
    activity TEXT NOT NULL,
    PRIMARY KEY (report_id, row_no)
);

-- A recommendation and the agency's answer: pending, accepted, rejected (with an explanation)
-- or deemed_accepted (by the job, the day after the window closed). An accepted one names the
-- service request that carries it out (`request_id`; the request is found back by it).
CREATE TABLE usage_recommendations (
    id TEXT PRIMARY KEY,
    report_id TEXT NOT NULL REFERENCES usage_reports (id),
    agency_code TEXT NOT NULL,
    kind TEXT NOT NULL,
    line_id TEXT,
    phone_number TEXT,
    device_id TEXT,
    person_id TEXT,
    detail TEXT NOT NULL,
    status TEXT NOT NULL,
    explanation TEXT,
    decided_by TEXT,
    decided_at BIGINT,
    deadline_at BIGINT NOT NULL,
    request_id TEXT
);
CREATE INDEX usage_recommendations_by_report ON usage_recommendations (report_id, kind);
CREATE INDEX usage_recommendations_due ON usage_recommendations (status, deadline_at);
CREATE INDEX usage_recommendations_by_request ON usage_recommendations (request_id);
