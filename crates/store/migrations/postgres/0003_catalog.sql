-- The service catalog: device models, service codes and their effective-dated rates.

CREATE TABLE device_models (
    id TEXT PRIMARY KEY,
    device_type TEXT NOT NULL,
    platform TEXT NOT NULL,
    maker TEXT NOT NULL,
    model TEXT NOT NULL,
    standard BIGINT NOT NULL,
    quote_price_cents BIGINT,
    active BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX device_models_name_key ON device_models (maker, model);
CREATE INDEX device_models_by_type ON device_models (device_type, maker, model);

CREATE TABLE service_codes (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    billing_unit TEXT NOT NULL,
    proration TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- A rate is never edited: a change is a new row from a later date. A rate runs until the next
-- row of the same code and device type starts.
CREATE TABLE rates (
    id TEXT PRIMARY KEY,
    service_code TEXT NOT NULL REFERENCES service_codes (code),
    device_type TEXT,
    amount_cents BIGINT NOT NULL,
    effective_from TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX rates_start_key ON rates (service_code, COALESCE(device_type, ''), effective_from);

INSERT INTO service_codes (code, name, billing_unit, proration, created_at)
    VALUES ('A8154121', 'Mobile device management service', 'device_month', 'full_month', 0);
INSERT INTO rates (id, service_code, device_type, amount_cents, effective_from, created_at)
    VALUES ('00000000-0000-7000-8000-00000a815412', 'A8154121', NULL, 1500, '2023-01-01', 0);
