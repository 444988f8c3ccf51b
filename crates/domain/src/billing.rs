//! Billing from history: a device is charged for each month it was enrolled in, counted from its
//! recorded billing intervals (enrollment to decommissioning), on the local calendar of a time
//! zone. The store computes the same counts in SQL over a million intervals; property tests hold
//! it to these functions.
//!
//! Money is integer cents; a line's amount is computed exactly (as a fraction of integers) and
//! rounded once, half away from zero.

use std::fmt;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::catalog::{Cents, Proration};

/// A billing month, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "String")]
pub struct Period {
    year: i16,
    month: i8,
}

/// The last year of a month or quarter: the first day after its last month is then still a
/// date (jiff's dates end with 9999).
const LAST_YEAR: i16 = 9998;

impl Period {
    /// A month of 1900 to 9998: the month after any of them (a month's end) is still a date.
    pub fn new(year: i16, month: i8) -> Option<Self> {
        ((1..=12).contains(&month) && (1900..=LAST_YEAR).contains(&year)).then_some(Self { year, month })
    }

    /// Parses `2026-07`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let invalid = || "must be a month such as 2026-07".to_string();
        let (year, month) = raw.trim().split_once('-').ok_or_else(invalid)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(invalid());
        }
        let year: i16 = year.parse().map_err(|_| invalid())?;
        let month: i8 = month.parse().map_err(|_| invalid())?;
        Self::new(year, month).ok_or_else(invalid)
    }

    pub fn year(self) -> i16 {
        self.year
    }

    pub fn month(self) -> i8 {
        self.month
    }

    pub fn first_day(self) -> Date {
        Date::new(self.year, self.month, 1).expect("a valid month")
    }

    pub fn next(self) -> Self {
        if self.month == 12 { Self { year: self.year + 1, month: 1 } } else { Self { month: self.month + 1, ..self } }
    }

    pub fn prev(self) -> Self {
        if self.month == 1 { Self { year: self.year - 1, month: 12 } } else { Self { month: self.month - 1, ..self } }
    }

    /// The quarter the month falls in.
    pub fn quarter(self) -> Quarter {
        Quarter { year: self.year, quarter: (self.month - 1) / 3 + 1 }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl From<Period> for String {
    fn from(p: Period) -> String {
        p.to_string()
    }
}

/// A calendar quarter, `2026-Q3`: the three monthly invoices a statement rolls up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub struct Quarter {
    year: i16,
    quarter: i8,
}

impl Quarter {
    /// Parses `2026-Q3`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let invalid = || "must be a quarter such as 2026-Q3".to_string();
        let (year, quarter) = raw.trim().split_once("-Q").ok_or_else(invalid)?;
        let year: i16 = year.parse().map_err(|_| invalid())?;
        let quarter: i8 = quarter.parse().map_err(|_| invalid())?;
        if !(1..=4).contains(&quarter) || !(1900..=LAST_YEAR).contains(&year) {
            return Err(invalid());
        }
        Ok(Self { year, quarter })
    }

    pub fn months(self) -> [Period; 3] {
        let first = Period { year: self.year, month: (self.quarter - 1) * 3 + 1 };
        [first, first.next(), first.next().next()]
    }
}

impl fmt::Display for Quarter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-Q{}", self.year, self.quarter)
    }
}

impl From<Quarter> for String {
    fn from(q: Quarter) -> String {
        q.to_string()
    }
}

/// A month on the billing calendar: the instants (unix ms) each local day starts at, and the
/// start of the next month. A day is 23 or 25 hours long in the daylight-saving months.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Month {
    pub period: Period,
    /// `days + 1` instants: the start of each day, then the start of the next month.
    pub day_starts: Vec<i64>,
}

impl Month {
    /// The month `period` in `zone`.
    pub fn new(period: Period, zone: &TimeZone) -> Month {
        let first = period.first_day();
        let days = i64::from(first.days_in_month());
        let day_starts = (0..=days)
            .map(|d| {
                let date = first.checked_add(jiff::Span::new().days(d)).expect("a date in range");
                date.to_zoned(zone.clone()).expect("a local midnight").timestamp().as_millisecond()
            })
            .collect();
        Month { period, day_starts }
    }

    pub fn start(&self) -> i64 {
        self.day_starts[0]
    }

    pub fn end(&self) -> i64 {
        *self.day_starts.last().expect("a month has days")
    }

    pub fn days(&self) -> i64 {
        self.day_starts.len() as i64 - 1
    }

    /// Which day of the month holds the instant `at`: 1..=days, 0 before the month, days + 1 after.
    pub fn day_of(&self, at: i64) -> i64 {
        self.day_starts.iter().take_while(|start| **start <= at).count() as i64
    }
}

/// One billable interval of a device: from its enrollment to its decommissioning (or still open),
/// and when the device's previous interval stopped, so no day or month is billed twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub started_at: i64,
    pub stopped_at: Option<i64>,
    pub prev_stopped_at: Option<i64>,
}

impl Interval {
    fn overlaps(&self, month: &Month) -> bool {
        self.started_at < month.end() && self.stopped_at.is_none_or(|stop| stop > month.start())
    }
}

/// Whether the interval bills `month` under `full_month`: it overlaps the month, and the device's
/// previous interval did not (that one already billed it).
pub fn bills_full_month(month: &Month, interval: &Interval) -> bool {
    interval.overlaps(month) && interval.prev_stopped_at.is_none_or(|prev| prev <= month.start())
}

/// The days of `month` the interval bills under `daily`: every local day the device was enrolled
/// at any moment of, except a day its previous interval already billed.
pub fn billed_days(month: &Month, interval: &Interval) -> i64 {
    if !interval.overlaps(month) {
        return 0;
    }
    let mut first = month.day_of(interval.started_at).max(1);
    if let Some(prev) = interval.prev_stopped_at {
        first = first.max(month.day_of(prev - 1) + 1);
    }
    let last = interval.stopped_at.map_or(month.days(), |stop| month.day_of(stop - 1).min(month.days()));
    (last - first + 1).max(0)
}

/// What one interval contributes to a month: `Some(None)` a full month, `Some(Some(d))` d days,
/// `None` nothing.
pub fn charge_of(proration: Proration, month: &Month, interval: &Interval) -> Option<Option<i64>> {
    match proration {
        Proration::FullMonth => bills_full_month(month, interval).then_some(None),
        Proration::Daily => match billed_days(month, interval) {
            0 => None,
            days => Some(Some(days)),
        },
    }
}

/// `numerator / denominator` rounded half away from zero.
pub fn round_div(numerator: i128, denominator: i128) -> i64 {
    assert!(denominator > 0, "a positive denominator");
    let half = denominator / 2;
    let rounded = if numerator >= 0 { (numerator + half) / denominator } else { -((-numerator + half) / denominator) };
    i64::try_from(rounded).expect("an amount within range")
}

/// The amount of a line: `quantity` devices at `rate` for a full month, or for `days` of a month
/// of `days_in_month` days each; exact, then rounded once.
pub fn line_amount(rate: Cents, quantity: i64, days: Option<i64>, days_in_month: i64) -> Cents {
    let gross = i128::from(rate.0) * i128::from(quantity);
    match days {
        None => Cents(i64::try_from(gross).expect("an amount within range")),
        Some(days) => Cents(round_div(gross * i128::from(days), i128::from(days_in_month))),
    }
}

/// Devices beyond the baseline: billed directly.
pub fn excess(in_service: i64, baseline: i64) -> i64 {
    (in_service - baseline).max(0)
}

/// The kind of an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceKind {
    /// The MDM service charge, charged back to the agency's fund.
    Chargeback,
    /// Devices beyond the baseline, pass-through charges: billed to the agency directly.
    DirectBill,
}

impl InvoiceKind {
    pub const ALL: [InvoiceKind; 2] = [InvoiceKind::Chargeback, InvoiceKind::DirectBill];

    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceKind::Chargeback => "chargeback",
            InvoiceKind::DirectBill => "direct_bill",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == raw.trim())
            .ok_or_else(|| "must be chargeback or direct_bill".into())
    }

    pub fn label(self) -> &'static str {
        match self {
            InvoiceKind::Chargeback => "Chargeback",
            InvoiceKind::DirectBill => "Direct bill",
        }
    }
}

/// An invoice line: what it is and its amount. A total is always the sum of its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub device_type: Option<String>,
    pub quantity: i64,
    pub days: Option<i64>,
    pub rate: Cents,
    pub amount: Cents,
}

/// The service lines of one agency's month from its intervals (device type, interval): devices
/// grouped by device type and billed days, each group one line at `rate_of(device type)`.
pub fn service_lines(
    proration: Proration,
    month: &Month,
    intervals: &[(String, Interval)],
    rate_of: impl Fn(&str) -> Cents,
) -> Vec<Line> {
    let mut groups: std::collections::BTreeMap<(String, Option<i64>), i64> = Default::default();
    for (device_type, interval) in intervals {
        if let Some(days) = charge_of(proration, month, interval) {
            *groups.entry((device_type.clone(), days)).or_default() += 1;
        }
    }
    groups
        .into_iter()
        .map(|((device_type, days), quantity)| {
            let rate = rate_of(&device_type);
            Line {
                amount: line_amount(rate, quantity, days, month.days()),
                device_type: Some(device_type),
                quantity,
                days,
                rate,
            }
        })
        .collect()
}

/// The sum of the lines.
pub fn total(lines: &[Line]) -> Cents {
    Cents(lines.iter().map(|l| l.amount.0).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> TimeZone {
        TimeZone::get("America/New_York").expect("the tz database")
    }

    fn at(date: &str, time: &str) -> i64 {
        format!("{date}T{time}[America/New_York]")
            .parse::<jiff::Zoned>()
            .expect("a local time")
            .timestamp()
            .as_millisecond()
    }

    fn month(raw: &str) -> Month {
        Month::new(Period::parse(raw).unwrap(), &zone())
    }

    fn interval(start: i64, stop: Option<i64>) -> Interval {
        Interval { started_at: start, stopped_at: stop, prev_stopped_at: None }
    }

    #[test]
    fn periods_parse_and_step() {
        let p = Period::parse("2026-12").unwrap();
        assert_eq!(p.next().to_string(), "2027-01");
        assert_eq!(p.prev().to_string(), "2026-11");
        assert_eq!(Period::parse("2026-01").unwrap().prev().to_string(), "2025-12");
        assert_eq!(p.quarter().to_string(), "2026-Q4");
        assert_eq!(
            Quarter::parse("2026-Q1").unwrap().months().map(|m| m.to_string()),
            ["2026-01", "2026-02", "2026-03"]
        );
        // The last month still has an end: the first day of the month after it.
        assert_eq!(Period::parse("9998-12").unwrap().next().first_day().to_string(), "9999-01-01");
        assert!(Quarter::parse("9999-Q1").is_err());
        for bad in ["2026-13", "2026-00", "26-01", "2026/01", "", "2026-1", "9999-12", "1899-12"] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
        assert!(Quarter::parse("2026-Q5").is_err());
    }

    #[test]
    fn months_have_their_lengths_and_daylight_saving_days() {
        assert_eq!(month("2026-02").days(), 28);
        assert_eq!(month("2024-02").days(), 29);
        assert_eq!(month("2026-04").days(), 30);
        assert_eq!(month("2026-07").days(), 31);
        // 2026-03-08 is 23 hours long in New York, 2026-11-01 is 25.
        let march = month("2026-03");
        assert_eq!(march.day_starts[8] - march.day_starts[7], 23 * 3_600_000);
        let november = month("2026-11");
        assert_eq!(november.day_starts[1] - november.day_starts[0], 25 * 3_600_000);
        assert_eq!(march.start(), at("2026-03-01", "00:00"));
        assert_eq!(march.end(), at("2026-04-01", "00:00"));
        assert_eq!(march.day_of(at("2026-03-08", "23:30")), 8);
        assert_eq!(march.day_of(at("2026-03-09", "00:00")), 9);
        assert_eq!(march.day_of(at("2026-02-28", "23:59")), 0);
        assert_eq!(march.day_of(at("2026-04-01", "00:00")), 32);
    }

    #[test]
    fn full_month_bills_any_day_of_the_month() {
        let july = month("2026-07");
        assert!(bills_full_month(&july, &interval(at("2026-07-31", "23:00"), None)));
        assert!(bills_full_month(&july, &interval(at("2026-01-01", "09:00"), Some(at("2026-07-01", "08:00")))));
        assert!(!bills_full_month(&july, &interval(at("2026-01-01", "09:00"), Some(at("2026-07-01", "00:00")))));
        assert!(!bills_full_month(&july, &interval(at("2026-08-01", "00:00"), None)));
    }

    #[test]
    fn daily_bills_each_day_touched_once() {
        let july = month("2026-07");
        // Enrolled on the 10th, still enrolled: the 10th to the 31st.
        assert_eq!(billed_days(&july, &interval(at("2026-07-10", "15:00"), None)), 22);
        // Enrolled and decommissioned within the month: both days count.
        assert_eq!(billed_days(&july, &interval(at("2026-07-10", "15:00"), Some(at("2026-07-12", "09:00")))), 3);
        // The same day: one day.
        assert_eq!(billed_days(&july, &interval(at("2026-07-10", "09:00"), Some(at("2026-07-10", "10:00")))), 1);
        // Stopped at midnight: that day is not touched.
        assert_eq!(billed_days(&july, &interval(at("2026-06-01", "09:00"), Some(at("2026-07-03", "00:00")))), 2);
        // The whole month.
        assert_eq!(billed_days(&july, &interval(at("2026-06-01", "09:00"), None)), 31);
        assert_eq!(billed_days(&july, &interval(at("2026-08-01", "00:00"), None)), 0);
    }

    #[test]
    fn re_enrollment_is_a_second_interval_that_bills_nothing_twice() {
        let july = month("2026-07");
        let first = interval(at("2026-07-01", "09:00"), Some(at("2026-07-10", "12:00")));
        let second =
            Interval { started_at: at("2026-07-10", "16:00"), stopped_at: None, prev_stopped_at: first.stopped_at };
        // Daily: the 1st to the 10th, then the 11th to the 31st: 31 days, not 32.
        assert_eq!(billed_days(&july, &first) + billed_days(&july, &second), 31);
        // Full month: billed once.
        assert!(bills_full_month(&july, &first));
        assert!(!bills_full_month(&july, &second));
        // In August the second interval bills.
        let august = month("2026-08");
        assert!(bills_full_month(&august, &second) && !bills_full_month(&august, &first));
        // Decommissioned in June, enrolled again in July: July is billed by the second interval.
        let again = Interval {
            started_at: at("2026-07-20", "09:00"),
            stopped_at: None,
            prev_stopped_at: Some(at("2026-06-15", "09:00")),
        };
        assert!(bills_full_month(&july, &again));
        assert_eq!(billed_days(&july, &again), 12);
    }

    #[test]
    fn daylight_saving_months_count_local_days() {
        // Enrolled at 23:30 on the night the clocks change: still that local day.
        let march = month("2026-03");
        assert_eq!(billed_days(&march, &interval(at("2026-03-08", "23:30"), None)), 24);
        let november = month("2026-11");
        assert_eq!(billed_days(&november, &interval(at("2026-11-01", "00:30"), Some(at("2026-11-01", "23:59")))), 1);
        assert_eq!(billed_days(&november, &interval(at("2026-10-31", "23:00"), None)), 30);
    }

    #[test]
    fn amounts_are_exact_and_rounded_once_per_line() {
        // $15 for 10 of 31 days, 3 devices: 3 * 1500 * 10 / 31 = 1451.61... -> 1452, not 3 * 484.
        assert_eq!(line_amount(Cents(1500), 3, Some(10), 31), Cents(1452));
        assert_eq!(line_amount(Cents(1500), 7, None, 31), Cents(10500));
        assert_eq!(round_div(-5, 2), -3);
        assert_eq!(round_div(5, 2), 3);
        assert_eq!(round_div(4, 3), 1);
        assert_eq!(excess(13, 10), 3);
        assert_eq!(excess(9, 10), 0);
    }

    #[test]
    fn a_rate_change_mid_year_applies_from_its_month() {
        use crate::catalog::{Rate, rate_in_force};
        let rates = [
            Rate { id: "a".into(), device_type: None, amount: Cents(1500), effective_from: "2023-01-01".into() },
            Rate { id: "b".into(), device_type: None, amount: Cents(1650), effective_from: "2026-07-01".into() },
        ];
        let june = Period::parse("2026-06").unwrap().first_day().to_string();
        let july = Period::parse("2026-07").unwrap().first_day().to_string();
        assert_eq!(rate_in_force(&rates, &june, None).unwrap().amount, Cents(1500));
        assert_eq!(rate_in_force(&rates, &july, None).unwrap().amount, Cents(1650));
    }

    /// A small deterministic generator (no dependency): xorshift.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self, below: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % below
        }
    }

    /// A device's history: alternating enrollments and decommissionings around `month`.
    fn history(rng: &mut Rng, month: &Month) -> Vec<Interval> {
        let span = month.end() - month.start();
        let mut t = month.start() - span + rng.next(span as u64) as i64;
        let mut prev = None;
        let mut out = Vec::new();
        for _ in 0..1 + rng.next(3) {
            let length = 1 + rng.next(span as u64 / 2) as i64;
            let stop = if rng.next(3) == 0 { None } else { Some(t + length) };
            out.push(Interval { started_at: t, stopped_at: stop, prev_stopped_at: prev });
            let Some(stop) = stop else { break };
            prev = Some(stop);
            t = stop + rng.next(span as u64 / 3) as i64;
        }
        out
    }

    #[test]
    fn for_any_history_lines_sum_to_the_total_and_no_day_is_billed_twice() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for period in ["2026-02", "2026-03", "2026-07", "2026-11", "2024-02"] {
            let month = month(period);
            for round in 0..200 {
                let types = ["smartphone", "tablet", "cell_phone"];
                let mut intervals = Vec::new();
                let mut days_by_device = Vec::new();
                for _ in 0..1 + rng.next(40) {
                    let device_type = types[rng.next(3) as usize].to_string();
                    let history = history(&mut rng, &month);
                    // The union of the days its intervals touched, counted directly.
                    let m = &month;
                    let touched: std::collections::BTreeSet<i64> = history
                        .iter()
                        .flat_map(|i| {
                            let stop = i.stopped_at.unwrap_or(m.end());
                            let start = i.started_at;
                            (1..=m.days()).filter(move |d| {
                                let (from, to) = (m.day_starts[*d as usize - 1], m.day_starts[*d as usize]);
                                start < to && stop > from
                            })
                        })
                        .collect();
                    let billed: i64 = history.iter().map(|i| billed_days(&month, i)).sum();
                    assert_eq!(billed, touched.len() as i64, "{period} round {round}: {history:?}");
                    let full = history.iter().filter(|i| bills_full_month(&month, i)).count();
                    assert_eq!(full, usize::from(!touched.is_empty()), "{period} round {round}: {history:?}");
                    days_by_device.push(billed);
                    intervals.extend(history.into_iter().map(|i| (device_type.clone(), i)));
                }
                for proration in [Proration::FullMonth, Proration::Daily] {
                    let lines = service_lines(proration, &month, &intervals, |t| {
                        Cents(if t == "tablet" { 1733 } else { 1500 })
                    });
                    let sum: i64 = lines.iter().map(|l| l.amount.0).sum();
                    assert_eq!(total(&lines).0, sum);
                    if proration == Proration::Daily {
                        let device_days: i64 = lines.iter().map(|l| l.quantity * l.days.unwrap()).sum();
                        assert_eq!(device_days, days_by_device.iter().sum::<i64>());
                    }
                }
            }
        }
    }
}
