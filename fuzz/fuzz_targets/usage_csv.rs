//! A carrier usage file (CSV) as the usage import reads it (`app::usage`): the same `csv` reader
//! configuration, the header matched to `COLUMNS`, blank records skipped, each record's fields
//! trimmed and parsed with the domain's `parse_row`, then each good row keyed as the import keys
//! it (`phone_digits`, `usage_key`, the billing month it falls in).
//!
//! The reading loop of `app::usage` (`Rows`) is private to that crate and does IO; what it does
//! with the `csv` reader is repeated here, line for line, around the domain's pure functions.
#![no_main]

use custody_domain::billing::{Month, Period};
use custody_domain::usage::{COLUMNS, RawUsage, month_index, parse_row, phone_digits, split_key, usage_key};
use jiff::tz::TimeZone;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The import accepts up to 120 months back from the last ended month (`usage.history_months`).
    let months = (Period::new(2016, 7).unwrap(), Period::new(2026, 6).unwrap());
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(data);
    let Ok(header) = reader.headers() else { return };
    let header: Vec<String> = header.iter().map(str::to_string).collect();
    let mut columns = [0; 8];
    for (i, name) in COLUMNS.iter().enumerate() {
        match header.iter().position(|h| h.trim().eq_ignore_ascii_case(name)) {
            Some(at) => columns[i] = at,
            None => return,
        }
    }
    let mut record = csv::StringRecord::new();
    while let Ok(true) = reader.read_record(&mut record) {
        if record.iter().all(|v| v.trim().is_empty()) {
            continue;
        }
        let get = |i: usize| record.get(columns[i]).map(str::trim).unwrap_or("");
        let raw = RawUsage {
            phone_number: get(0),
            carrier: get(1),
            month: get(2),
            voice_minutes: get(3),
            messages: get(4),
            data_mb: get(5),
            international_charges: get(6),
            line_plan: get(7),
        };
        let row = match parse_row(&raw, months) {
            Ok(row) => row,
            Err(problems) => {
                assert!(!problems.is_empty(), "a refused row names a field");
                continue;
            }
        };
        assert!(months.0 <= row.month && row.month <= months.1);
        assert!(row.voice_minutes >= 0 && row.messages >= 0 && row.data_kb >= 0 && row.international_cents >= 0);
        let digits = phone_digits(&row.phone_number).expect("a parsed phone number is E.164");
        // The import's own key (`app::usage::key`): the digits, then the month in 12 bits.
        let import_key: u64 = row.phone_number[1..].parse().unwrap_or(0);
        assert_eq!(import_key, digits);
        let key = usage_key(digits, row.month);
        if (0..4096).contains(&month_index(row.month)) {
            assert_eq!(split_key(key), (Some(row.month), digits), "a usage key splits back");
        }
        let month = Month::new(row.month, &TimeZone::UTC);
        assert!(month.start() < month.end());
    }
});
