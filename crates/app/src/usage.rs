//! Carrier usage imports.
//!
//! The file format (CSV, or the first sheet of an XLSX workbook), one row per line and month,
//! with a header naming the columns in any order:
//!
//! `phone_number,carrier,month,voice_minutes,messages,data_mb,international_charges,line_plan`
//!
//! (`month` is `YYYY-MM`; `data_mb` has up to three decimals; `international_charges` is in
//! dollars and may be empty; `line_plan` is `voice_only`, `voice_data` or `data_only`).
//!
//! An import reads the file once, on a blocking thread, checking every row — its fields, a month
//! within the configured history and not in the future, a number Custody has a line for, no line
//! and month twice (a sorted list of keys, eight bytes a row, checked at the end) — and, while
//! every row so far was good, handing the rows over in batches to the writer, which writes them
//! in one transaction as the parser reads on. Any bad row rejects the whole file: the
//! transaction is rolled back, and every bad row is named with its row number and reason (the
//! file is read a second time only to name duplicate rows and unknown numbers). A crash leaves
//! the months as they were. A month already recorded takes the new figures only when they
//! differ, so the same file again changes nothing, and a corrected file replaces that month's
//! figures for its lines.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::PathBuf;

use custody_domain::authz::{Action, Scope};
use custody_domain::billing::Period;
use custody_domain::usage::{
    COLUMNS, RawUsage, Thresholds, UsageRow, month_index, month_keys, parse_row, phone_digits, usage_key,
};
use custody_store::usage as store;
use custody_store::{audit, now_ms};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Actor, App, AppError};

/// Usage settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UsageConfig {
    /// The `low` activity level's ceilings, per month on average.
    pub thresholds: Thresholds,
    /// How many months back an import may reach (the current month is never accepted).
    pub history_months: u32,
    /// The months the biannual reports are issued in (after a quarter's invoices).
    pub report_months: Vec<u8>,
    /// Calendar days an agency has to answer a report's recommendations.
    pub response_days: u32,
}

impl Default for UsageConfig {
    fn default() -> Self {
        Self { thresholds: Thresholds::default(), history_months: 24, report_months: vec![1, 7], response_days: 30 }
    }
}

impl UsageConfig {
    pub fn check(&self) -> Result<(), String> {
        if self.history_months == 0 || self.history_months > 120 {
            return Err("usage.history_months must be between 1 and 120".into());
        }
        if self.report_months.is_empty() || self.report_months.iter().any(|m| !(1..=12).contains(m)) {
            return Err("usage.report_months must list months between 1 and 12".into());
        }
        if self.response_days == 0 {
            return Err("usage.response_days must be at least 1".into());
        }
        Ok(())
    }
}

/// Where an import's rows come from.
#[derive(Debug, Clone)]
pub enum FileData {
    Path(PathBuf),
    /// Shared, so each pass reads the same bytes without copying them.
    Bytes(std::sync::Arc<[u8]>),
}

/// A carrier file to import.
#[derive(Debug, Clone)]
pub struct UsageFile {
    pub name: String,
    /// The first sheet of an XLSX workbook rather than CSV.
    pub xlsx: bool,
    pub data: FileData,
}

impl UsageFile {
    /// A file on disk; XLSX when its name ends so.
    pub fn path(path: PathBuf) -> Self {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "usage".into());
        let xlsx = name.to_ascii_lowercase().ends_with(".xlsx");
        Self { name, xlsx, data: FileData::Path(path) }
    }
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    /// `None` when the file changed nothing (nothing was recorded).
    pub import_id: Option<String>,
    pub file_name: String,
    pub sha256: String,
    pub rows: i64,
    pub inserted: i64,
    pub replaced: i64,
    pub unchanged: i64,
    pub first_month: String,
    pub last_month: String,
}

/// What an import is doing, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Only checking the rest of the file: a bad row was found, nothing will be kept.
    Checking,
    /// Writing rows as they are checked.
    Writing,
}

/// Rows of a carrier file, read one at a time.
struct Rows {
    source: Source,
    /// The position of each of [`COLUMNS`] in a row.
    columns: [usize; 8],
    /// The file's row number of the last row read (the header is row 1).
    row_no: u64,
    digest: Option<Sha256>,
}

enum Source {
    Csv(Box<csv::Reader<Hashing>>, csv::StringRecord),
    Sheet(std::vec::IntoIter<Vec<String>>),
}

/// A reader that digests what passes through it (in the first pass only).
struct Hashing {
    inner: Box<dyn Read + Send>,
    digest: Option<Sha256>,
}

impl Read for Hashing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(d) = self.digest.as_mut() {
            d.update(&buf[..n]);
        }
        Ok(n)
    }
}

fn unreadable(e: impl std::fmt::Display) -> AppError {
    AppError::invalid("file", format!("unreadable: {e}"))
}

impl Rows {
    fn open(file: &UsageFile, digest: bool) -> Result<Self, AppError> {
        let header: Vec<String>;
        let source = if file.xlsx {
            let bytes: std::sync::Arc<[u8]> = match &file.data {
                FileData::Bytes(b) => b.clone(),
                FileData::Path(p) => std::fs::read(p).map_err(unreadable)?.into(),
            };
            let mut rows = crate::xlsx::read_first_sheet(&bytes).map_err(unreadable)?.into_iter();
            header = rows.next().unwrap_or_default();
            let digest = digest.then(|| Sha256::new_with_prefix(&bytes));
            return Self::with_header(Source::Sheet(rows), &header, digest);
        } else {
            let inner: Box<dyn Read + Send> = match &file.data {
                FileData::Bytes(b) => Box::new(std::io::Cursor::new(b.clone())),
                FileData::Path(p) => {
                    Box::new(std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(p).map_err(unreadable)?))
                }
            };
            let hashing = Hashing { inner, digest: digest.then(Sha256::new) };
            let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(hashing);
            header = reader.headers().map_err(unreadable)?.iter().map(str::to_string).collect();
            Source::Csv(Box::new(reader), csv::StringRecord::new())
        };
        Self::with_header(source, &header, None)
    }

    fn with_header(source: Source, header: &[String], digest: Option<Sha256>) -> Result<Self, AppError> {
        let mut columns = [0; 8];
        let mut missing = Vec::new();
        for (i, name) in COLUMNS.iter().enumerate() {
            match header.iter().position(|h| h.trim().eq_ignore_ascii_case(name)) {
                Some(at) => columns[i] = at,
                None => missing.push(*name),
            }
        }
        if !missing.is_empty() {
            return Err(AppError::invalid(
                "file",
                format!("the header lacks {}: it must name {}", missing.join(", "), COLUMNS.join(", ")),
            ));
        }
        Ok(Self { source, columns, row_no: 1, digest })
    }

    /// Hands the next row to `f`; `None` at the end of the file.
    fn next_with<T>(&mut self, f: impl FnOnce(u64, RawUsage<'_>) -> T) -> Result<Option<T>, AppError> {
        let c = self.columns;
        loop {
            self.row_no += 1;
            let row_no = self.row_no;
            match &mut self.source {
                Source::Csv(reader, record) => {
                    if !reader
                        .read_record(record)
                        .map_err(|e| AppError::invalid("file", format!("row {row_no}: {e}")))?
                    {
                        return Ok(None);
                    }
                    if record.iter().all(|v| v.trim().is_empty()) {
                        continue;
                    }
                    let get = |i: usize| record.get(i).map(str::trim).unwrap_or("");
                    return Ok(Some(f(row_no, raw_of(&c, get))));
                }
                Source::Sheet(rows) => {
                    let Some(row) = rows.next() else { return Ok(None) };
                    if row.iter().all(|v| v.trim().is_empty()) {
                        continue;
                    }
                    let get = |i: usize| row.get(i).map(|v| v.trim()).unwrap_or("");
                    return Ok(Some(f(row_no, raw_of(&c, get))));
                }
            }
        }
    }

    fn sha256(self) -> String {
        match (self.source, self.digest) {
            (_, Some(d)) => hex::encode(d.finalize()),
            (Source::Csv(reader, _), None) => {
                reader.into_inner().digest.map(|d| hex::encode(d.finalize())).unwrap_or_default()
            }
            _ => String::new(),
        }
    }
}

/// A row's fields, by the columns' positions.
fn raw_of<'a>(c: &[usize; 8], get: impl Fn(usize) -> &'a str) -> RawUsage<'a> {
    RawUsage {
        phone_number: get(c[0]),
        carrier: get(c[1]),
        month: get(c[2]),
        voice_minutes: get(c[3]),
        messages: get(c[4]),
        data_mb: get(c[5]),
        international_charges: get(c[6]),
        line_plan: get(c[7]),
    }
}

/// A line and month as one sortable number: the phone's digits, then the month.
fn key(row: &UsageRow) -> u64 {
    let digits: u64 = row.phone_number[1..].parse().unwrap_or(0);
    let month = (i64::from(row.month.year()) - 2000) * 12 + i64::from(row.month.month()) - 1;
    (digits << 12) | (month.clamp(0, 4095) as u64)
}

/// The months an import accepts: from `history_months` back to the last ended month.
fn bounds(app: &App) -> Result<(Period, Period), AppError> {
    let last = app.config.billing.period_at(now_ms())?.prev();
    let mut first = last;
    for _ in 1..app.config.usage.history_months {
        first = first.prev();
    }
    Ok((first, last))
}

/// At most this many bad rows are listed (all are counted).
const LISTED_ERRORS: usize = 200;
/// Rows written per statement.
const BATCH: usize = 5_000;
/// The page cache of the import's connection on SQLite while it runs, in MiB.
const IMPORT_CACHE_MIB: u32 = 256;

/// What the parser asks of the writer, in file order.
enum Work {
    /// The states of numbers not seen before: the parser waits for the answer.
    Resolve(Vec<u64>, tokio::sync::oneshot::Sender<Result<Vec<store::LineState>, AppError>>),
    /// A month seen for the first time: counted before any of its rows is written.
    Month(Period),
    /// A batch for [`store::upsert_months`], and its row count.
    Rows(String, u64),
    /// Rows checked so far, once nothing is handed over any more.
    Checked(u64),
}

/// What the parser found in the whole file.
struct Parsed {
    total_rows: u64,
    bad_rows: u64,
    /// Field errors, the first [`LISTED_ERRORS`], as (row, field, message).
    errors: Vec<(u64, String, String)>,
    /// Every good row's key (see [`key`]), sorted.
    keys: Vec<u64>,
    /// Numbers no line has (digits).
    unknown: HashSet<u64>,
    months: Option<(Period, Period)>,
    sha256: String,
}

/// Imports a carrier usage file (roles `billing`, `admin`); see the module documentation.
/// `progress` hears each pass's rows as they go.
pub async fn import(
    app: &App,
    actor: &Actor,
    file: &UsageFile,
    progress: &(dyn Fn(Phase, u64) + Send + Sync),
) -> Result<ImportSummary, AppError> {
    actor.authorize(Action::UsageImport, Scope::Global)?;
    let months = bounds(app)?;
    let zone = app.config.billing.zone().map_err(|e| AppError::Unexpected(anyhow::anyhow!(e)))?;
    let import_id = custody_store::new_id();

    // One pass: a blocking thread parses and checks every row while this task writes what it
    // hands over, in one transaction that commits only if the whole file was good.
    let mut tx = app.store.write().await?;
    store::large_cache(&mut tx, Some(IMPORT_CACHE_MIB)).await?;
    let outcome = write_file(actor, file, (months, zone, import_id), &mut tx, progress).await;
    store::large_cache(&mut tx, None).await?;
    let (summary, commit) = outcome?;
    if commit {
        tx.commit().await?;
    }
    Ok(summary)
}

/// The import's one pass in `tx`: the summary, and whether there is anything to commit.
async fn write_file(
    actor: &Actor,
    file: &UsageFile,
    (months, zone, import_id): ((Period, Period), jiff::tz::TimeZone, String),
    tx: &mut custody_store::Tx,
    progress: &(dyn Fn(Phase, u64) + Send + Sync),
) -> Result<(ImportSummary, bool), AppError> {
    let seq = store::next_import_seq(&mut *tx).await?;
    let (sender, mut work) = tokio::sync::mpsc::channel(4);
    let parser = {
        let file = file.clone();
        tokio::task::spawn_blocking(move || parse_and_hand_over(&file, months, &zone, &sender))
    };
    let (mut before, mut seen_months, mut written, mut changed) = (0i64, Vec::new(), 0u64, 0u64);
    let wrote: Result<(), AppError> = async {
        while let Some(item) = work.recv().await {
            match item {
                Work::Resolve(numbers, reply) => {
                    let json = serde_json::to_string(&numbers.iter().map(|n| format!("+{n}")).collect::<Vec<_>>())
                        .expect("strings serialize");
                    let states = store::line_states(&mut *tx, &json).await.map_err(AppError::from);
                    let failed = states.is_err();
                    let _ = reply.send(states);
                    if failed {
                        return Err(AppError::Unexpected(anyhow::anyhow!("reading the lines failed")));
                    }
                }
                Work::Month(month) => {
                    let (first, end) = month_keys(month);
                    before += store::count_months(&mut *tx, first, end).await?;
                    seen_months.push(month);
                }
                Work::Rows(batch, rows) => {
                    changed += store::upsert_months(&mut *tx, &batch, seq).await?;
                    written += rows;
                    progress(Phase::Writing, written);
                }
                Work::Checked(rows) => progress(Phase::Checking, rows),
            }
        }
        Ok(())
    }
    .await;
    drop(work);
    let parsed = parser.await.map_err(|e| AppError::Unexpected(anyhow::anyhow!(e)))?;
    wrote?;
    let mut parsed = parsed?;
    if parsed.total_rows == 0 {
        return Err(AppError::invalid("file", "has no rows"));
    }

    // A line and month twice, numbers no line has, bad fields: nothing is kept.
    let keys = std::mem::take(&mut parsed.keys);
    let duplicates: HashSet<u64> = keys.windows(2).filter(|w| w[0] == w[1]).map(|w| w[0]).collect();
    drop(keys);
    if !duplicates.is_empty() || !parsed.unknown.is_empty() || !parsed.errors.is_empty() {
        return Err(name_bad_rows(file, months, parsed, &duplicates)?.into());
    }
    let (first, last) = parsed.months.expect("rows were read");
    let mut after = 0;
    for month in &seen_months {
        let (first, end) = month_keys(*month);
        after += store::count_months(&mut *tx, first, end).await?;
    }
    let inserted = after - before;
    let summary = ImportSummary {
        import_id: (changed > 0).then(|| import_id.clone()),
        file_name: file.name.clone(),
        sha256: parsed.sha256,
        rows: parsed.total_rows as i64,
        inserted,
        replaced: changed as i64 - inserted,
        unchanged: parsed.total_rows as i64 - changed as i64,
        first_month: first.to_string(),
        last_month: last.to_string(),
    };
    if changed == 0 {
        // The same file again: nothing to record.
        return Ok((summary, false));
    }
    let now = now_ms();
    store::insert_import(
        &mut *tx,
        &store::ImportRow {
            id: import_id.clone(),
            seq,
            file_name: summary.file_name.clone(),
            sha256: summary.sha256.clone(),
            row_count: summary.rows,
            inserted: summary.inserted,
            replaced: summary.replaced,
            unchanged: summary.unchanged,
            first_month: summary.first_month.clone(),
            last_month: summary.last_month.clone(),
            imported_by: actor.label.clone(),
            imported_at: now,
        },
    )
    .await?;
    let changes = serde_json::json!({
        "file_name": summary.file_name, "sha256": summary.sha256, "rows": summary.rows,
        "inserted": summary.inserted, "replaced": summary.replaced, "unchanged": summary.unchanged,
        "first_month": summary.first_month, "last_month": summary.last_month,
    });
    audit::append(&mut *tx, actor.event("usage.import", "usage_import", &import_id, None, changes)).await?;
    Ok((summary, true))
}

/// The parser: checks every row of `file`, and while the file is good so far hands the writer
/// the months, the numbers to resolve and the rows as JSON batches of [`BATCH`], each row keyed
/// and given its line's state. Stops handing over at the first bad row (nothing will be kept)
/// but reads on to name every bad row; stops early when the writer has stopped listening.
fn parse_and_hand_over(
    file: &UsageFile,
    months: (Period, Period),
    zone: &jiff::tz::TimeZone,
    sender: &tokio::sync::mpsc::Sender<Work>,
) -> Result<Parsed, AppError> {
    use std::fmt::Write;
    let mut parsed = Parsed {
        total_rows: 0,
        bad_rows: 0,
        errors: Vec::new(),
        keys: Vec::new(),
        unknown: HashSet::new(),
        months: None,
        sha256: String::new(),
    };
    // Each number's state id and line creation, once resolved; `None`: no line has it.
    let mut lines: HashMap<u64, Option<(i64, i64)>> = HashMap::new();
    let mut starts: HashMap<Period, i64> = HashMap::new();
    let mut carriers: HashMap<String, String> = HashMap::new();
    // Rows waiting for their numbers to be resolved, then for their batch.
    let mut waiting: Vec<UsageRow> = Vec::with_capacity(BATCH);
    let mut new_numbers: Vec<u64> = Vec::new();
    let mut batch = String::with_capacity(BATCH * 64);
    let mut handing_over = true;
    let mut rows = Rows::open(file, true)?;
    loop {
        let row = rows.next_with(|row_no, raw| (row_no, parse_row(&raw, months)))?;
        let done = row.is_none();
        match row {
            None => {}
            Some((_, Ok(row))) => {
                parsed.total_rows += 1;
                parsed.keys.push(key(&row));
                parsed.months = Some(match parsed.months {
                    None => (row.month, row.month),
                    Some((f, l)) => (f.min(row.month), l.max(row.month)),
                });
                let digits = phone_digits(&row.phone_number).unwrap_or_default();
                if let std::collections::hash_map::Entry::Vacant(e) = lines.entry(digits) {
                    e.insert(None);
                    new_numbers.push(digits);
                }
                if handing_over {
                    waiting.push(row);
                }
            }
            Some((row_no, Err(problems))) => {
                parsed.total_rows += 1;
                parsed.bad_rows += 1;
                handing_over = false;
                for (field, message) in problems {
                    if parsed.errors.len() < LISTED_ERRORS {
                        parsed.errors.push((row_no, field.to_string(), message));
                    }
                }
            }
        }
        if !handing_over && parsed.total_rows.is_multiple_of(100_000) {
            let _ = sender.try_send(Work::Checked(parsed.total_rows));
        }
        if handing_over && (waiting.len() == BATCH || (done && !waiting.is_empty())) {
            if !new_numbers.is_empty() {
                let (reply, answer) = tokio::sync::oneshot::channel();
                if sender.blocking_send(Work::Resolve(std::mem::take(&mut new_numbers), reply)).is_err() {
                    return Ok(parsed);
                }
                let Ok(states) = answer.blocking_recv() else { return Ok(parsed) };
                for state in states? {
                    let digits = phone_digits(&state.phone_number).unwrap_or_default();
                    lines.insert(digits, Some((state.state_id, state.created_at)));
                }
            }
            batch.clear();
            let mut in_batch = 0u64;
            for row in waiting.drain(..) {
                let digits = phone_digits(&row.phone_number).unwrap_or_default();
                let Some(Some((state_id, created_at))) = lines.get(&digits).copied() else {
                    parsed.unknown.insert(digits);
                    handing_over = false;
                    continue;
                };
                let start = match starts.get(&row.month) {
                    Some(start) => *start,
                    None => {
                        if sender.blocking_send(Work::Month(row.month)).is_err() {
                            return Ok(parsed);
                        }
                        let start = custody_domain::billing::Month::new(row.month, zone).start();
                        starts.insert(row.month, start);
                        start
                    }
                };
                let carrier = carriers
                    .entry(row.carrier)
                    .or_insert_with_key(|c| serde_json::to_string(c).expect("a string serializes"));
                batch.push(if in_batch == 0 { '[' } else { ',' });
                write!(
                    batch,
                    "[{},{state_id},{carrier},{},{},{},{}]",
                    usage_key(digits, row.month),
                    store::pack_counts(row.voice_minutes, row.messages),
                    row.data_kb,
                    row.international_cents,
                    store::pack_flags(row.line_plan.as_str(), created_at > start),
                )
                .expect("writing to a string");
                in_batch += 1;
            }
            if handing_over && in_batch > 0 {
                batch.push(']');
                let full = std::mem::replace(&mut batch, String::with_capacity(BATCH * 64));
                if sender.blocking_send(Work::Rows(full, in_batch)).is_err() {
                    return Ok(parsed);
                }
            }
        }
        if !handing_over {
            waiting.clear();
        }
        if done {
            break;
        }
    }
    // Numbers never resolved because handing over stopped: resolve them now, for the listing.
    let pending: Vec<u64> = lines.iter().filter(|(_, s)| s.is_none()).map(|(d, _)| *d).collect();
    for chunk in pending.chunks(5_000) {
        let (reply, answer) = tokio::sync::oneshot::channel();
        if sender.blocking_send(Work::Resolve(chunk.to_vec(), reply)).is_err() {
            break;
        }
        let Ok(states) = answer.blocking_recv() else { break };
        let known: HashSet<u64> = states?.iter().map(|s| phone_digits(&s.phone_number).unwrap_or_default()).collect();
        parsed.unknown.extend(chunk.iter().filter(|d| !known.contains(d)));
    }
    parsed.keys.sort_unstable();
    parsed.sha256 = rows.sha256();
    Ok(parsed)
}

/// The error listing of a bad file: field errors as found, and the rows with numbers no line has
/// or a line and month already on an earlier row (read again from the file to name them), in
/// file order, the first [`LISTED_ERRORS`].
fn name_bad_rows(
    file: &UsageFile,
    months: (Period, Period),
    parsed: Parsed,
    duplicates: &HashSet<u64>,
) -> Result<custody_domain::FieldErrors, AppError> {
    let mut bad_rows = parsed.bad_rows;
    let mut all: Vec<(u64, String, String)> = parsed.errors;
    if !duplicates.is_empty() || !parsed.unknown.is_empty() {
        let mut rows = Rows::open(file, false)?;
        let mut first_seen: HashMap<u64, u64> = HashMap::new();
        while let Some((row_no, row)) = rows.next_with(|row_no, raw| (row_no, parse_row(&raw, months).ok()))? {
            let Some(row) = row else { continue };
            let k = key(&row);
            if parsed.unknown.contains(&(k >> 12)) {
                bad_rows += 1;
                all.push((row_no, "phone_number".into(), format!("{} is not a line Custody knows", row.phone_number)));
            } else if duplicates.contains(&k) {
                match first_seen.get(&k) {
                    None => {
                        first_seen.insert(k, row_no);
                    }
                    Some(first) => {
                        bad_rows += 1;
                        all.push((
                            row_no,
                            "month".into(),
                            format!("{} {} is also on row {first}", row.phone_number, row.month),
                        ));
                    }
                }
            }
        }
    }
    all.sort_by_key(|(row, _, _)| *row);
    let mut errors = custody_domain::FieldErrors::default();
    let listed = all.len().min(LISTED_ERRORS);
    for (row, field, message) in all.into_iter().take(LISTED_ERRORS) {
        errors.push(format!("row {row}: {field}"), message);
    }
    if bad_rows as usize > listed {
        errors.push("file", format!("{bad_rows} rows are bad in all; the first {LISTED_ERRORS} are listed"));
    }
    Ok(errors)
}

/// The latest imports (central usage readers).
pub async fn imports(app: &App, actor: &Actor) -> Result<Vec<store::ImportRow>, AppError> {
    actor.authorize(Action::UsageRead, Scope::Global)?;
    if actor.agency_filter().is_some() {
        return Err(AppError::Forbidden);
    }
    let mut conn = app.store.conn().await?;
    Ok(store::imports(&mut conn, 100).await?)
}

/// A line's recorded months (agency users: their own lines; another agency's answers not
/// found), oldest first.
pub async fn line_months(app: &App, actor: &Actor, phone: &str) -> Result<Vec<store::MonthRow>, AppError> {
    let phone = custody_domain::request::phone_number(phone).map_err(|m| AppError::invalid("phone_number", m))?;
    let mut conn = app.store.conn().await?;
    let agency = store::line_agency(&mut conn, &phone).await?.ok_or(AppError::NotFound)?;
    let code =
        custody_domain::agency::AgencyCode::parse(&agency).map_err(|m| AppError::Unexpected(anyhow::anyhow!(m)))?;
    actor.authorize(Action::UsageRead, Scope::Agency(&code))?;
    // Every month since 2000 up to the last ended one: a key each, looked up directly.
    let (_, last) = bounds(app)?;
    let indexes: Vec<i64> = (0..=month_index(last)).collect();
    let json = serde_json::to_string(&indexes).expect("numbers serialize");
    Ok(store::line_months(&mut conn, &phone, &json).await?)
}
