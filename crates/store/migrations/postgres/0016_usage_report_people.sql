-- Step 8, the report's two gaps: every device of the agency, and each person's activity.
--
-- A report row is now a device or a line. A device in use with no carrier line (a Wi-Fi tablet)
-- is a row with its device, type and holder and no line: no phone number, no plan, no activity
-- (NULL; its months and figures are 0). The CHECK keeps a row either a line with all three or a
-- device with none.
ALTER TABLE usage_report_rows
    ALTER COLUMN phone_number DROP NOT NULL,
    ALTER COLUMN line_plan DROP NOT NULL,
    ALTER COLUMN activity DROP NOT NULL,
    ADD CONSTRAINT usage_report_rows_line_or_device
        CHECK ((phone_number IS NULL) = (activity IS NULL) AND (line_plan IS NULL) = (activity IS NULL));

-- Each person's activity over the report's window, frozen with the report: the months, over
-- every line, in which they were the line's holder, added up (`months` counts line-months: two
-- lines held all six months are 12), with the lines they held and the level of the sum on the
-- same thresholds as the lines. Their name as at issuance. Keyed by the person within the report,
-- paged by person id.
CREATE TABLE usage_report_people (
    report_id TEXT NOT NULL REFERENCES usage_reports (id),
    person_id TEXT NOT NULL,
    person_name TEXT,
    lines BIGINT NOT NULL,
    months BIGINT NOT NULL,
    voice_minutes BIGINT NOT NULL,
    messages BIGINT NOT NULL,
    data_kb BIGINT NOT NULL,
    international_cents BIGINT NOT NULL,
    activity TEXT NOT NULL,
    PRIMARY KEY (report_id, person_id)
);
