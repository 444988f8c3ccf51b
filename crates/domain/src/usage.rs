//! Carrier usage and the biannual report's rules: a usage row as carriers send it, parsed; the
//! activity level of a line over a period; and the four recommendations of `DOMAIN.md`.
//!
//! The rules read each line's months as recorded at import: the usage figures and, beside them,
//! the device the line was in, that device's type and its holder in that month. So a line that
//! moved between devices, a device whose type changed and a person who left are all judged
//! month by month, from what was true then.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::billing::Period;
use crate::catalog::DeviceType;

/// A line's plan as carriers report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinePlan {
    VoiceOnly,
    VoiceData,
    DataOnly,
}

impl LinePlan {
    pub const ALL: [LinePlan; 3] = [LinePlan::VoiceOnly, LinePlan::VoiceData, LinePlan::DataOnly];

    pub fn as_str(self) -> &'static str {
        match self {
            LinePlan::VoiceOnly => "voice_only",
            LinePlan::VoiceData => "voice_data",
            LinePlan::DataOnly => "data_only",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        let key = raw.trim().to_ascii_lowercase().replace([' ', '-'], "_");
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == key)
            .ok_or_else(|| format!("{raw:?} is not a line plan: use voice_only, voice_data or data_only"))
    }

    pub fn has_data(self) -> bool {
        !matches!(self, LinePlan::VoiceOnly)
    }
}

/// One carrier row: a line's usage in a month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    pub phone_number: String,
    pub carrier: String,
    pub month: Period,
    pub voice_minutes: i64,
    pub messages: i64,
    /// Data in kilobytes (1 MB = 1,000 KB), from the file's megabytes with up to three decimals.
    pub data_kb: i64,
    pub international_cents: i64,
    pub line_plan: LinePlan,
}

/// Bits of a usage key that hold the phone number's digits (an E.164 number has at most 15).
const PHONE_BITS: u32 = 50;

/// A month as its count of months since January 2000 (the months usage keys can hold).
pub fn month_index(month: Period) -> i64 {
    (i64::from(month.year()) - 2000) * 12 + i64::from(month.month()) - 1
}

/// The month of [`month_index`].
pub fn month_of_index(index: i64) -> Option<Period> {
    let year = i16::try_from(2000 + index.div_euclid(12)).ok()?;
    Period::new(year, (index.rem_euclid(12) + 1) as i8)
}

/// The digits of an E.164 number (`+15185550100` → `15185550100`), if it is one.
pub fn phone_digits(phone: &str) -> Option<u64> {
    let digits = phone.strip_prefix('+')?;
    (!digits.is_empty() && digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// A line's month as one integer: the month in the high bits, the phone number's digits below.
/// A month's keys are contiguous, so a month's file appends to what came before, and a line's
/// months are found by computing their keys.
pub fn usage_key(phone_digits: u64, month: Period) -> i64 {
    (month_index(month).clamp(0, (1 << 12) - 1) << PHONE_BITS) | phone_digits as i64
}

/// The keys of `month`: from the first (inclusive) to the last (exclusive).
pub fn month_keys(month: Period) -> (i64, i64) {
    let first = month_index(month).clamp(0, (1 << 12) - 1) << PHONE_BITS;
    (first, first + (1 << PHONE_BITS))
}

/// The month and phone digits of a [`usage_key`].
pub fn split_key(key: i64) -> (Option<Period>, u64) {
    (month_of_index(key >> PHONE_BITS), (key & ((1 << PHONE_BITS) - 1)) as u64)
}

/// A row's fields as read from the file, before parsing.
#[derive(Debug, Clone, Default)]
pub struct RawUsage<'a> {
    pub phone_number: &'a str,
    pub carrier: &'a str,
    pub month: &'a str,
    pub voice_minutes: &'a str,
    pub messages: &'a str,
    pub data_mb: &'a str,
    pub international_charges: &'a str,
    pub line_plan: &'a str,
}

/// The file columns, in the documented order.
pub const COLUMNS: [&str; 8] =
    ["phone_number", "carrier", "month", "voice_minutes", "messages", "data_mb", "international_charges", "line_plan"];

fn count(raw: &str) -> Result<i64, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("is required".into());
    }
    match raw.parse::<i64>() {
        Ok(n) if n < 0 => Err(format!("{raw} is negative")),
        Ok(n) if n > 10_000_000 => Err(format!("{raw} is beyond any month's use")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{raw:?} is not a whole number")),
    }
}

/// A non-negative decimal with at most `places` decimals, scaled to an integer (`12.5`, 3 →
/// `12500`).
fn decimal(raw: &str, places: u32) -> Result<i64, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("is required".into());
    }
    if raw.starts_with('-') {
        return Err(format!("{raw} is negative"));
    }
    let (whole, fraction) = raw.split_once('.').unwrap_or((raw, ""));
    let digits = |s: &str| !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (!fraction.is_empty() && !digits(fraction)) {
        return Err(format!("{raw:?} is not a number"));
    }
    if fraction.len() > places as usize {
        return Err(format!("{raw} has more than {places} decimals"));
    }
    let scale = 10i64.pow(places);
    let fraction_value = if fraction.is_empty() {
        0
    } else {
        fraction.parse::<i64>().map_err(|_| format!("{raw:?} is not a number"))?
            * 10i64.pow(places - fraction.len() as u32)
    };
    Ok(whole.parse::<i64>().map_err(|_| format!("{raw:?} is not a number"))? * scale + fraction_value)
}

/// Parses a row, or lists every bad field with its reason. `months` bounds the months a file may
/// carry (inclusive).
pub fn parse_row(raw: &RawUsage<'_>, months: (Period, Period)) -> Result<UsageRow, Vec<(&'static str, String)>> {
    let mut errors = Vec::new();
    let mut check = |field: &'static str, result: Result<i64, String>| match result {
        Ok(v) => v,
        Err(m) => {
            errors.push((field, m));
            0
        }
    };
    let voice_minutes = check("voice_minutes", count(raw.voice_minutes));
    let messages = check("messages", count(raw.messages));
    let data_kb = check("data_mb", decimal(raw.data_mb, 3));
    let international_cents = check(
        "international_charges",
        if raw.international_charges.trim().is_empty() { Ok(0) } else { decimal(raw.international_charges, 2) },
    );
    let phone_number = crate::request::phone_number(raw.phone_number).map_err(|m| errors.push(("phone_number", m)));
    let carrier = raw.carrier.trim();
    if carrier.is_empty() || carrier.len() > 60 {
        errors.push(("carrier", "is required (at most 60 characters)".into()));
    }
    let month = match Period::parse(raw.month) {
        Ok(m) if m < months.0 || m > months.1 => {
            errors.push(("month", format!("{m} is outside {} to {}", months.0, months.1)));
            None
        }
        Ok(m) => Some(m),
        Err(m) => {
            errors.push(("month", m));
            None
        }
    };
    let line_plan = LinePlan::parse(raw.line_plan).map_err(|m| errors.push(("line_plan", m)));
    match (phone_number, month, line_plan) {
        (Ok(phone_number), Some(month), Ok(line_plan)) if errors.is_empty() => Ok(UsageRow {
            phone_number,
            carrier: carrier.to_string(),
            month,
            voice_minutes,
            messages,
            data_kb,
            international_cents,
            line_plan,
        }),
        _ => Err(errors),
    }
}

/// How much a line was used over a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    /// No voice, messages or data.
    Inactive,
    /// Voice or messages, no data.
    VoiceOnly,
    /// Under the thresholds on average per month.
    Low,
    Active,
}

impl Activity {
    pub const ALL: [Activity; 4] = [Activity::Inactive, Activity::VoiceOnly, Activity::Low, Activity::Active];

    pub fn as_str(self) -> &'static str {
        match self {
            Activity::Inactive => "inactive",
            Activity::VoiceOnly => "voice_only",
            Activity::Low => "low",
            Activity::Active => "active",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|a| a.as_str() == raw).ok_or_else(|| format!("{raw:?} is not an activity level"))
    }

    pub fn label(self) -> &'static str {
        match self {
            Activity::Inactive => "Inactive",
            Activity::VoiceOnly => "Voice only",
            Activity::Low => "Low",
            Activity::Active => "Active",
        }
    }
}

/// The `low` level's ceilings, per month on average (configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Thresholds {
    pub low_voice_minutes: i64,
    pub low_messages: i64,
    pub low_data_mb: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self { low_voice_minutes: 30, low_messages: 20, low_data_mb: 200 }
    }
}

/// Usage added up over some months.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub voice_minutes: i64,
    pub messages: i64,
    pub data_kb: i64,
    pub international_cents: i64,
    /// How many months the figures cover.
    pub months: i64,
}

impl Totals {
    pub fn add(&mut self, voice_minutes: i64, messages: i64, data_kb: i64, international_cents: i64) {
        self.voice_minutes += voice_minutes;
        self.messages += messages;
        self.data_kb += data_kb;
        self.international_cents += international_cents;
        self.months += 1;
    }

    /// Adds `other`'s figures and months to these.
    pub fn merge(&mut self, other: &Totals) {
        self.voice_minutes += other.voice_minutes;
        self.messages += other.messages;
        self.data_kb += other.data_kb;
        self.international_cents += other.international_cents;
        self.months += other.months;
    }
}

/// The activity level of usage `totals`.
pub fn activity(totals: &Totals, thresholds: &Thresholds) -> Activity {
    if totals.voice_minutes == 0 && totals.messages == 0 && totals.data_kb == 0 {
        return Activity::Inactive;
    }
    if totals.data_kb == 0 {
        return Activity::VoiceOnly;
    }
    let months = totals.months.max(1);
    let low = totals.voice_minutes <= thresholds.low_voice_minutes * months
        && totals.messages <= thresholds.low_messages * months
        && totals.data_kb <= thresholds.low_data_mb * 1_000 * months;
    if low { Activity::Low } else { Activity::Active }
}

/// One month of a line, as recorded at import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineMonth {
    pub month: Period,
    pub voice_minutes: i64,
    pub messages: i64,
    pub data_kb: i64,
    pub international_cents: i64,
    pub line_plan: LinePlan,
    /// The device the line was in, its type and holder, that month.
    pub device_id: Option<String>,
    pub device_type: Option<DeviceType>,
    pub holder_id: Option<String>,
    /// The line was active for only part of the month (activated or ended in it).
    pub partial: bool,
}

/// A line's months in the report period, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineHistory {
    pub line_id: String,
    pub phone_number: String,
    pub months: Vec<LineMonth>,
}

impl LineHistory {
    /// The last recorded month: where the line is now, as far as the report knows.
    pub fn last(&self) -> Option<&LineMonth> {
        self.months.last()
    }

    /// Usage over the months `keep` selects.
    pub fn totals(&self, keep: impl Fn(&LineMonth) -> bool) -> Totals {
        let mut totals = Totals::default();
        for m in self.months.iter().filter(|m| keep(m)) {
            totals.add(m.voice_minutes, m.messages, m.data_kb, m.international_cents);
        }
        totals
    }
}

/// A person's use of the lines they held over a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonUsage {
    pub person_id: String,
    /// The lines they held in at least one month.
    pub lines: i64,
    /// The months they held each line, added up over the lines (`months` counts each line's
    /// months: two lines held all six months are 12).
    pub totals: Totals,
    /// The level of `totals`, on the lines' thresholds.
    pub activity: Activity,
}

/// Each holder's usage over the period's line histories, by person id: for every line, the
/// months in which they were its holder, added up over the lines, and the activity level of the
/// sum. A line that changed hands counts for each holder only the months they held it; months
/// with no holder count for nobody.
pub fn people_usage(lines: &[LineHistory], thresholds: &Thresholds) -> Vec<PersonUsage> {
    let mut people: BTreeMap<&str, (i64, Totals)> = BTreeMap::new();
    let mut holders: Vec<&str> = Vec::new();
    for line in lines {
        holders.clear();
        holders.extend(line.months.iter().filter_map(|m| m.holder_id.as_deref()));
        holders.sort_unstable();
        holders.dedup();
        for holder in &holders {
            let held = line.totals(|m| m.holder_id.as_deref() == Some(*holder));
            let (count, totals) = people.entry(holder).or_default();
            *count += 1;
            totals.merge(&held);
        }
    }
    people
        .into_iter()
        .map(|(person_id, (lines, totals))| PersonUsage {
            person_id: person_id.to_string(),
            lines,
            activity: activity(&totals, thresholds),
            totals,
        })
        .collect()
}

/// A person as the rules need them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonFacts {
    /// Separated or transferred by the period's end: their devices go back through offboarding.
    pub gone: bool,
    /// The agency's plan names them in a data-plan exception.
    pub data_plan_exception: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecommendationKind {
    ConvertToVoiceOnly,
    EliminateLine,
    TetherInstead,
    ReviewMultipleDataPlans,
}

impl RecommendationKind {
    pub const ALL: [RecommendationKind; 4] = [
        RecommendationKind::ConvertToVoiceOnly,
        RecommendationKind::EliminateLine,
        RecommendationKind::TetherInstead,
        RecommendationKind::ReviewMultipleDataPlans,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecommendationKind::ConvertToVoiceOnly => "convert_to_voice_only",
            RecommendationKind::EliminateLine => "eliminate_line",
            RecommendationKind::TetherInstead => "tether_instead",
            RecommendationKind::ReviewMultipleDataPlans => "review_multiple_data_plans",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw).ok_or_else(|| format!("{raw:?} is not a recommendation"))
    }

    pub fn label(self) -> &'static str {
        match self {
            RecommendationKind::ConvertToVoiceOnly => "Convert to voice only",
            RecommendationKind::EliminateLine => "Eliminate the line",
            RecommendationKind::TetherInstead => "Tether instead of a second data plan",
            RecommendationKind::ReviewMultipleDataPlans => "Review multiple data plans",
        }
    }
}

impl fmt::Display for RecommendationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A recommendation the rules make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recommendation {
    pub kind: RecommendationKind,
    pub line_id: Option<String>,
    pub phone_number: Option<String>,
    pub device_id: Option<String>,
    pub person_id: Option<String>,
    /// Why, in a sentence for the agency.
    pub detail: String,
}

fn mb(kb: i64) -> String {
    format!("{}.{:03} MB", kb / 1_000, kb % 1_000)
}

/// The recommendations over the period's line histories:
///
/// - `eliminate_line`: a line with no voice, messages or data in any month it was recorded,
///   with at least one full month among them;
/// - `convert_to_voice_only`: a line now in a smartphone, on a data plan, that used no data in
///   the months it was in a smartphone (at least one full month) but had voice or messages;
/// - `tether_instead`: a line with data now in a tablet whose holder also holds a smartphone on a
///   data plan now;
/// - `review_multiple_data_plans`: a person now holding more than one line with a data plan,
///   without a data-plan exception.
///
/// Partial months count as evidence of use but never alone as evidence of no use. People gone by
/// the period's end get no tether or review recommendation: offboarding returns their devices.
pub fn recommend(lines: &[LineHistory], people: &BTreeMap<String, PersonFacts>) -> Vec<Recommendation> {
    let mut out = Vec::new();
    // Holder → (line index, device type now) of lines with a data plan now.
    let mut data_lines: BTreeMap<&str, Vec<(usize, DeviceType)>> = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(now) = line.last() else { continue };
        let full_months = line.months.iter().filter(|m| !m.partial).count();
        let all = line.totals(|_| true);
        let base = |kind, detail: String| Recommendation {
            kind,
            line_id: Some(line.line_id.clone()),
            phone_number: Some(line.phone_number.clone()),
            device_id: now.device_id.clone(),
            person_id: now.holder_id.clone(),
            detail,
        };
        if all.voice_minutes == 0 && all.messages == 0 && all.data_kb == 0 {
            if full_months > 0 {
                let detail = format!("No voice, messages or data on {} in {} months", line.phone_number, all.months);
                out.push(base(RecommendationKind::EliminateLine, detail));
            }
            continue;
        }
        if now.device_type == Some(DeviceType::Smartphone) && now.line_plan.has_data() {
            let in_smartphone = |m: &LineMonth| m.device_type == Some(DeviceType::Smartphone);
            let smartphone = line.totals(in_smartphone);
            let full = line.months.iter().filter(|m| in_smartphone(m) && !m.partial).count();
            if smartphone.data_kb == 0 && full > 0 {
                let detail = format!(
                    "No data used on {} in {} months as a smartphone ({} voice minutes, {} messages)",
                    line.phone_number, smartphone.months, smartphone.voice_minutes, smartphone.messages
                );
                out.push(base(RecommendationKind::ConvertToVoiceOnly, detail));
            }
        }
        if let (Some(holder), Some(device_type)) = (now.holder_id.as_deref(), now.device_type)
            && now.line_plan.has_data()
        {
            data_lines.entry(holder).or_default().push((i, device_type));
        }
    }
    for (holder, held) in &data_lines {
        let facts = people.get(*holder);
        if facts.is_some_and(|p| p.gone) {
            continue;
        }
        let smartphone = held.iter().find(|(_, t)| *t == DeviceType::Smartphone);
        if let Some((phone_line, _)) = smartphone {
            for (i, _) in held.iter().filter(|(_, t)| *t == DeviceType::Tablet) {
                let tablet = &lines[*i];
                let now = tablet.last().expect("a line with a month");
                out.push(Recommendation {
                    kind: RecommendationKind::TetherInstead,
                    line_id: Some(tablet.line_id.clone()),
                    phone_number: Some(tablet.phone_number.clone()),
                    device_id: now.device_id.clone(),
                    person_id: Some(holder.to_string()),
                    detail: format!(
                        "The tablet's line {} has its own data plan ({} used); its holder's smartphone {} can tether it",
                        tablet.phone_number,
                        mb(tablet.totals(|_| true).data_kb),
                        lines[*phone_line].phone_number
                    ),
                });
            }
        }
        if held.len() > 1 && !facts.is_some_and(|p| p.data_plan_exception) {
            let numbers: BTreeSet<&str> = held.iter().map(|(i, _)| lines[*i].phone_number.as_str()).collect();
            out.push(Recommendation {
                kind: RecommendationKind::ReviewMultipleDataPlans,
                line_id: None,
                phone_number: None,
                device_id: None,
                person_id: Some(holder.to_string()),
                detail: format!(
                    "{} data plans ({}) and no data-plan exception in the agency's plan",
                    held.len(),
                    numbers.into_iter().collect::<Vec<_>>().join(", ")
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(raw: &str) -> Period {
        Period::parse(raw).unwrap()
    }

    fn month(m: &str, device: &str, t: DeviceType, holder: &str, usage: (i64, i64, i64)) -> LineMonth {
        LineMonth {
            month: p(m),
            voice_minutes: usage.0,
            messages: usage.1,
            data_kb: usage.2,
            international_cents: 0,
            line_plan: if t == DeviceType::CellPhone { LinePlan::VoiceOnly } else { LinePlan::VoiceData },
            device_id: Some(device.into()),
            device_type: Some(t),
            holder_id: Some(holder.into()),
            partial: false,
        }
    }

    fn line(id: &str, months: Vec<LineMonth>) -> LineHistory {
        LineHistory { line_id: id.into(), phone_number: format!("+1518555{id:0>4}"), months }
    }

    fn kinds(recs: &[Recommendation]) -> Vec<(RecommendationKind, Option<String>, Option<String>)> {
        recs.iter().map(|r| (r.kind, r.line_id.clone(), r.person_id.clone())).collect()
    }

    fn nobody() -> BTreeMap<String, PersonFacts> {
        BTreeMap::new()
    }

    const S: DeviceType = DeviceType::Smartphone;
    const T: DeviceType = DeviceType::Tablet;

    #[test]
    fn rows_parse_with_every_bad_field_named() {
        let bounds = (p("2026-01"), p("2026-06"));
        let good = RawUsage {
            phone_number: "(518) 555-0101",
            carrier: "Verizon",
            month: "2026-03",
            voice_minutes: "120",
            messages: "8",
            data_mb: "153.27",
            international_charges: "12.5",
            line_plan: "voice_data",
        };
        let row = parse_row(&good, bounds).unwrap();
        assert_eq!(row.phone_number, "+15185550101");
        assert_eq!((row.data_kb, row.international_cents), (153_270, 1_250));
        let bad = RawUsage {
            phone_number: "555",
            carrier: "",
            month: "2026-07",
            voice_minutes: "-1",
            messages: "many",
            data_mb: "1.2345",
            international_charges: "-3",
            line_plan: "unlimited",
        };
        let fields: Vec<&str> = parse_row(&bad, bounds).unwrap_err().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                "voice_minutes",
                "messages",
                "data_mb",
                "international_charges",
                "phone_number",
                "carrier",
                "month",
                "line_plan"
            ]
        );
        let no_month = RawUsage { month: "March", ..good.clone() };
        assert_eq!(parse_row(&no_month, bounds).unwrap_err()[0].0, "month");
    }

    #[test]
    fn activity_levels_follow_the_thresholds_per_month() {
        let t = Thresholds::default();
        let totals = |voice, messages, data_kb, months| Totals {
            voice_minutes: voice,
            messages,
            data_kb,
            months,
            ..Totals::default()
        };
        assert_eq!(activity(&totals(0, 0, 0, 6), &t), Activity::Inactive);
        assert_eq!(activity(&totals(400, 0, 0, 6), &t), Activity::VoiceOnly);
        assert_eq!(activity(&totals(0, 3, 0, 6), &t), Activity::VoiceOnly);
        // 6 months × 30 minutes and 200 MB is the edge of low.
        assert_eq!(activity(&totals(180, 120, 1_200_000, 6), &t), Activity::Low);
        assert_eq!(activity(&totals(181, 0, 1_000, 6), &t), Activity::Active);
        assert_eq!(activity(&totals(10, 0, 1_200_001, 6), &t), Activity::Active);
        assert_eq!(activity(&totals(10, 0, 1_000, 1), &t), Activity::Low);
    }

    #[test]
    fn a_silent_line_is_eliminated_but_not_on_partial_months_alone() {
        let silent = line("1", (1..=6).map(|m| month(&format!("2026-0{m}"), "d1", S, "p1", (0, 0, 0))).collect());
        assert_eq!(
            kinds(&recommend(std::slice::from_ref(&silent), &nobody())),
            [(RecommendationKind::EliminateLine, Some("1".into()), Some("p1".into()))]
        );
        // Activated at the end of the period: one partial, silent month says nothing.
        let mut new = line("2", vec![month("2026-06", "d2", S, "p2", (0, 0, 0))]);
        new.months[0].partial = true;
        assert!(recommend(&[new], &nobody()).is_empty());
        // A partial month with use is use.
        let mut used = silent.clone();
        used.months[5].partial = true;
        used.months[5].voice_minutes = 3;
        assert_eq!(kinds(&recommend(&[used], &nobody()))[0].0, RecommendationKind::ConvertToVoiceOnly);
    }

    #[test]
    fn a_smartphone_without_data_converts_to_voice_only() {
        let voice = line("3", (1..=6).map(|m| month(&format!("2026-0{m}"), "d3", S, "p3", (50, 4, 0))).collect());
        let recs = recommend(std::slice::from_ref(&voice), &nobody());
        assert_eq!(kinds(&recs), [(RecommendationKind::ConvertToVoiceOnly, Some("3".into()), Some("p3".into()))]);
        assert!(recs[0].detail.contains("6 months"));
        // Any data at all: no recommendation.
        let mut some_data = voice.clone();
        some_data.months[2].data_kb = 1;
        assert!(recommend(&[some_data], &nobody()).is_empty());
        // Already voice only: nothing to convert.
        let mut voice_plan = voice;
        for m in &mut voice_plan.months {
            m.line_plan = LinePlan::VoiceOnly;
        }
        assert!(recommend(&[voice_plan], &nobody()).is_empty());
    }

    #[test]
    fn a_line_that_moved_devices_is_judged_by_the_months_in_a_smartphone() {
        // Data used in a tablet in the first months, then moved into a smartphone where it used
        // none for three full months.
        let mut months: Vec<LineMonth> =
            (1..=3).map(|m| month(&format!("2026-0{m}"), "tab", T, "p4", (0, 0, 90_000))).collect();
        months.extend((4..=6).map(|m| month(&format!("2026-0{m}"), "phone", S, "p4", (40, 0, 0))));
        let moved = line("4", months);
        let recs = recommend(std::slice::from_ref(&moved), &nobody());
        assert_eq!(recs.len(), 1);
        assert_eq!(
            (recs[0].kind, recs[0].device_id.as_deref()),
            (RecommendationKind::ConvertToVoiceOnly, Some("phone"))
        );
        assert!(recs[0].detail.contains("3 months"), "{}", recs[0].detail);
        // Moved into the smartphone in the last month only, mid-month: not enough to judge.
        let mut late = moved;
        late.months.truncate(4);
        late.months[3].partial = true;
        assert!(recommend(&[late], &nobody()).is_empty());
    }

    #[test]
    fn a_device_type_change_counts_from_the_change() {
        // The device was recorded as a cell phone (voice plan) until May, then as a smartphone
        // on a data plan: only June counts, and June had data.
        let mut months: Vec<LineMonth> =
            (1..=5).map(|m| month(&format!("2026-0{m}"), "d5", DeviceType::CellPhone, "p5", (60, 0, 0))).collect();
        months.push(month("2026-06", "d5", S, "p5", (60, 0, 5_000)));
        assert!(recommend(&[line("5", months.clone())], &nobody()).is_empty());
        months[5].data_kb = 0;
        assert_eq!(kinds(&recommend(&[line("5", months)], &nobody()))[0].0, RecommendationKind::ConvertToVoiceOnly);
    }

    #[test]
    fn a_tablet_with_data_beside_a_smartphone_tethers_and_two_plans_are_reviewed() {
        let phone = line("6", (1..=6).map(|m| month(&format!("2026-0{m}"), "ph", S, "p6", (90, 9, 900_000))).collect());
        let tablet = line("7", (1..=6).map(|m| month(&format!("2026-0{m}"), "tb", T, "p6", (0, 0, 400_000))).collect());
        let recs = recommend(&[phone.clone(), tablet.clone()], &nobody());
        assert_eq!(
            kinds(&recs),
            [
                (RecommendationKind::TetherInstead, Some("7".into()), Some("p6".into())),
                (RecommendationKind::ReviewMultipleDataPlans, None, Some("p6".into())),
            ]
        );
        // A plan exception covers the review, not the tether.
        let excepted = BTreeMap::from([("p6".to_string(), PersonFacts { gone: false, data_plan_exception: true })]);
        assert_eq!(kinds(&recommend(&[phone.clone(), tablet.clone()], &excepted)).len(), 1);
        // A person who left mid-period: offboarding takes their devices back, no recommendation.
        let gone = BTreeMap::from([("p6".to_string(), PersonFacts { gone: true, data_plan_exception: false })]);
        assert!(recommend(&[phone.clone(), tablet.clone()], &gone).is_empty());
        // The tablet changed hands mid-period: judged by who holds it in the last month.
        let mut handed = tablet;
        handed.months[5].holder_id = Some("p7".into());
        assert!(recommend(&[phone, handed], &nobody()).is_empty());
    }
    #[test]
    fn a_person_is_judged_on_the_months_they_held_each_line() {
        let t = Thresholds::default();
        // p8 holds two lines all six months, each low on its own (20 minutes, 150 MB a month);
        // summed they are still low on average per line-month.
        let a = line("8", (1..=6).map(|m| month(&format!("2026-0{m}"), "a", S, "p8", (20, 0, 150_000))).collect());
        let b = line("9", (1..=6).map(|m| month(&format!("2026-0{m}"), "b", T, "p8", (20, 0, 150_000))).collect());
        // A third line busy in its first four months under p9, silent in its last two under p8.
        let mut c: Vec<LineMonth> =
            (1..=4).map(|m| month(&format!("2026-0{m}"), "c", S, "p9", (900, 90, 3_000_000))).collect();
        c.extend((5..=6).map(|m| month(&format!("2026-0{m}"), "c", S, "p8", (0, 0, 0))));
        // Months without a holder count for nobody.
        let mut d = line("11", vec![month("2026-01", "d", S, "p9", (5, 0, 0))]);
        d.months[0].holder_id = None;
        let people = people_usage(&[a, b, line("10", c), d], &t);
        let summary: Vec<(&str, i64, i64, i64, Activity)> = people
            .iter()
            .map(|p| (p.person_id.as_str(), p.lines, p.totals.months, p.totals.data_kb, p.activity))
            .collect();
        assert_eq!(summary, [("p8", 3, 14, 1_800_000, Activity::Low), ("p9", 1, 4, 12_000_000, Activity::Active)]);
        assert_eq!(people[0].totals.voice_minutes, 240);
    }

    #[test]
    fn usage_keys_put_a_month_together_and_split_back() {
        let june = Period::new(2026, 6).unwrap();
        let july = june.next();
        let key = usage_key(phone_digits("+15185550100").unwrap(), june);
        assert_eq!(split_key(key), (Some(june), 15_185_550_100));
        assert_eq!(month_of_index(month_index(june)), Some(june));
        let (first, end) = month_keys(june);
        assert!(first <= key && key < end);
        // The largest E.164 number of June still sorts before the smallest of July.
        assert!(usage_key(999_999_999_999_999, june) < usage_key(1, july));
        assert_eq!(end, month_keys(july).0);
        assert_eq!(phone_digits("15185550100"), None);
        assert_eq!(phone_digits("+1234567890123456"), None, "sixteen digits are not E.164");
    }
}
