-- Step 7: billing from history. Money is integer cents; periods are `YYYY-MM` on the billing
-- calendar's time zone.

-- A device's billable intervals: from the enrollment that started its MDM charge to the
-- decommissioning (write-off, destruction) that stopped it, written with that lifecycle event.
-- An interval is never edited except to stop it. `prev_stopped_at` is when the device's previous
-- interval stopped, so a month or a day is never billed twice to a re-enrolled device.
CREATE TABLE billing_intervals (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices (id),
    agency_code TEXT NOT NULL REFERENCES agencies (code),
    device_type TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    stopped_at BIGINT,
    prev_stopped_at BIGINT
);
CREATE INDEX billing_intervals_by_device ON billing_intervals (device_id, started_at);
CREATE UNIQUE INDEX billing_intervals_open ON billing_intervals (device_id) WHERE stopped_at IS NULL;
-- Closing a month reads only this index, in agency and device type order.
CREATE INDEX billing_intervals_by_agency
    ON billing_intervals (agency_code, device_type, started_at, stopped_at, prev_stopped_at);

-- Devices enrolled before this step: one interval each, from their recorded enrollment.
INSERT INTO billing_intervals (id, device_id, agency_code, device_type, started_at, stopped_at, prev_stopped_at)
    SELECT 'bi-' || id, id, agency_code, device_type, enrolled_at,
           CASE WHEN billing_stop_at IS NOT NULL AND billing_stop_at < enrolled_at THEN enrolled_at
                ELSE billing_stop_at END, NULL
    FROM devices WHERE enrolled_at IS NOT NULL;

-- Per agency and device type, how many devices the agency had as of a date (New York: carrier
-- records as of 2020-03-31). The baseline of a month is the latest one as of its last day.
CREATE TABLE billing_baselines (
    id TEXT PRIMARY KEY,
    agency_code TEXT NOT NULL REFERENCES agencies (code),
    device_type TEXT NOT NULL,
    as_of TEXT NOT NULL,
    device_count BIGINT NOT NULL,
    source TEXT NOT NULL,
    note TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX billing_baselines_key ON billing_baselines (agency_code, device_type, as_of);

-- Pass-through charges (international service, feature charges), direct-billed in their month.
CREATE TABLE billing_charges (
    id TEXT PRIMARY KEY,
    agency_code TEXT NOT NULL REFERENCES agencies (code),
    period TEXT NOT NULL,
    kind TEXT NOT NULL,
    phone_number TEXT,
    description TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX billing_charges_by_period ON billing_charges (period, agency_code);
CREATE INDEX billing_charges_by_agency ON billing_charges (agency_code, period);

-- Corrections of closed periods: a credit (negative) or debit on the agency's next invoice of
-- that kind. `applied_period` is set by the close that carried it.
CREATE TABLE billing_adjustments (
    id TEXT PRIMARY KEY,
    agency_code TEXT NOT NULL REFERENCES agencies (code),
    invoice_kind TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    reason TEXT NOT NULL,
    corrects_period TEXT,
    applied_period TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX billing_adjustments_by_agency ON billing_adjustments (agency_code, created_at);
CREATE INDEX billing_adjustments_pending ON billing_adjustments (applied_period, agency_code);

-- A closed month: it exists only once closed, and never changes after.
CREATE TABLE billing_periods (
    period TEXT PRIMARY KEY,
    time_zone TEXT NOT NULL,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    devices BIGINT NOT NULL,
    chargeback_cents BIGINT NOT NULL,
    direct_bill_cents BIGINT NOT NULL,
    invoices BIGINT NOT NULL,
    closed_by TEXT NOT NULL,
    closed_at BIGINT NOT NULL
);

CREATE TABLE invoices (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL,
    period TEXT NOT NULL REFERENCES billing_periods (period),
    agency_code TEXT NOT NULL REFERENCES agencies (code),
    kind TEXT NOT NULL,
    agency_name TEXT NOT NULL,
    fund_code TEXT,
    billing_account TEXT,
    devices BIGINT NOT NULL,
    total_cents BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX invoices_key ON invoices (period, agency_code, kind);
CREATE UNIQUE INDEX invoices_number_key ON invoices (number);
CREATE INDEX invoices_by_agency ON invoices (agency_code, period);

-- An invoice's lines. Service and excess lines group devices (by device type and billed days);
-- their devices are the intervals behind them, listed from history. `in_service` and `baseline`
-- explain an excess line.
CREATE TABLE invoice_lines (
    invoice_id TEXT NOT NULL REFERENCES invoices (id),
    line_no BIGINT NOT NULL,
    kind TEXT NOT NULL,
    service_code TEXT,
    device_type TEXT,
    description TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    days BIGINT,
    days_in_month BIGINT,
    rate_cents BIGINT,
    amount_cents BIGINT NOT NULL,
    in_service BIGINT,
    baseline BIGINT,
    reference TEXT,
    PRIMARY KEY (invoice_id, line_no)
);

-- The direct-bill rate of a device beyond the baseline, per device type.
INSERT INTO service_codes (code, name, billing_unit, proration, created_at)
    VALUES ('DB-EXCESS', 'Direct bill: device beyond the agency''s baseline', 'device_month', 'full_month', 0);
INSERT INTO rates (id, service_code, device_type, amount_cents, effective_from, created_at) VALUES
    ('00000000-0000-7000-8000-0000db000001', 'DB-EXCESS', NULL, 3500, '2020-01-01', 0),
    ('00000000-0000-7000-8000-0000db000002', 'DB-EXCESS', 'cell_phone', 2000, '2020-01-01', 0),
    ('00000000-0000-7000-8000-0000db000003', 'DB-EXCESS', 'tablet', 3000, '2020-01-01', 0),
    ('00000000-0000-7000-8000-0000db000004', 'DB-EXCESS', 'mifi', 3000, '2020-01-01', 0);
