-- Per-agency counters kept in the same transaction as the rows they count, so that dashboards
-- read a few rows instead of counting every person (and, later, every device).
CREATE TABLE agency_counts (
    agency_code TEXT NOT NULL REFERENCES agencies (code),
    metric TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (agency_code, metric)
);
INSERT INTO agency_counts (agency_code, metric, n)
    SELECT agency_code, 'people', COUNT(*) FROM people GROUP BY agency_code;
