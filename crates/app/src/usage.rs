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
//! An import reads the file twice. The first pass checks every row — its fields, a month within
//! the configured history and not in the future, a number Custody has a line for, no line and
//! month twice — and keeps only a sorted list of keys (eight bytes a row). Any bad row rejects
//! the whole file, every bad row named with its row number and reason. The second pass writes
//! in one transaction: a crash leaves the months as they were. A month already recorded takes
//! the new figures only when they differ, so the same file again changes nothing, and a
//! corrected file replaces that month's figures for its lines.

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

/// The two passes, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Checking,
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
            let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).flexible(true).from_reader(hashing);
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
                    if record.iter().all(str::is_empty) {
                        continue;
                    }
                    let get = |i: usize| record.get(i).unwrap_or("");
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

    // First pass: every field of every row, and the keys.
    let mut rows = Rows::open(file, true)?;
    let mut errors = custody_domain::FieldErrors::default();
    let mut bad_rows = 0u64;
    let mut keys: Vec<u64> = Vec::new();
    let (mut first, mut last): (Option<Period>, Option<Period>) = (None, None);
    while let Some(parsed) = rows.next_with(|row_no, raw| (row_no, parse_row(&raw, months)))? {
        match parsed {
            (_, Ok(row)) => {
                keys.push(key(&row));
                first = Some(first.map_or(row.month, |f| f.min(row.month)));
                last = Some(last.map_or(row.month, |l| l.max(row.month)));
            }
            (row_no, Err(problems)) => {
                bad_rows += 1;
                for (field, message) in problems {
                    if errors.0.len() < LISTED_ERRORS {
                        errors.push(format!("row {row_no}: {field}"), message);
                    }
                }
            }
        }
        let seen = keys.len() as u64 + bad_rows;
        if seen.is_multiple_of(100_000) {
            progress(Phase::Checking, seen);
        }
    }
    let total_rows = keys.len() as u64 + bad_rows;
    progress(Phase::Checking, total_rows);
    let sha256 = rows.sha256();
    if total_rows == 0 {
        return Err(AppError::invalid("file", "has no rows"));
    }

    // The keys: a line and month twice, and numbers no line has.
    keys.sort_unstable();
    let duplicates: HashSet<u64> = keys.windows(2).filter(|w| w[0] == w[1]).map(|w| w[0]).collect();
    let mut numbers: Vec<u64> = keys.iter().map(|k| k >> 12).collect();
    numbers.dedup();
    drop(keys);
    let mut unknown: HashSet<u64> = HashSet::new();
    {
        let mut conn = app.store.conn().await?;
        for chunk in numbers.chunks(10_000) {
            let json = serde_json::to_string(&chunk.iter().map(|n| format!("+{n}")).collect::<Vec<_>>())
                .expect("strings serialize");
            for phone in store::unknown_numbers(&mut conn, &json).await? {
                unknown.insert(phone[1..].parse().unwrap_or(0));
            }
        }
    }
    if !duplicates.is_empty() || !unknown.is_empty() {
        // Name the rows: read the file again.
        let mut rows = Rows::open(file, false)?;
        let mut first_seen: HashMap<u64, u64> = HashMap::new();
        let mut listed: Vec<(u64, String, String)> = Vec::new();
        while let Some((row_no, parsed)) = rows.next_with(|row_no, raw| (row_no, parse_row(&raw, months).ok()))? {
            let Some(row) = parsed else { continue };
            let k = key(&row);
            if unknown.contains(&(k >> 12)) {
                bad_rows += 1;
                listed.push((
                    row_no,
                    "phone_number".into(),
                    format!("{} is not a line Custody knows", row.phone_number),
                ));
            } else if duplicates.contains(&k) {
                match first_seen.get(&k) {
                    None => {
                        first_seen.insert(k, row_no);
                    }
                    Some(first) => {
                        bad_rows += 1;
                        listed.push((
                            row_no,
                            "month".into(),
                            format!("{} {} is also on row {first}", row.phone_number, row.month),
                        ));
                    }
                }
            }
        }
        // Rows in file order, field errors first on a row.
        let mut all: Vec<(u64, String, String)> = errors
            .0
            .into_iter()
            .map(|e| {
                let row_no = e.field.trim_start_matches("row ").split(':').next().and_then(|n| n.parse().ok());
                (row_no.unwrap_or(0), e.field, e.message)
            })
            .chain(listed.into_iter().map(|(row, field, message)| (row, format!("row {row}: {field}"), message)))
            .collect();
        all.sort_by_key(|(row, _, _)| *row);
        errors = custody_domain::FieldErrors::default();
        for (_, field, message) in all.into_iter().take(LISTED_ERRORS) {
            errors.push(field, message);
        }
    }
    if !errors.is_empty() {
        if bad_rows as usize > errors.0.len() {
            errors.push("file", format!("{bad_rows} rows are bad in all; the first {LISTED_ERRORS} are listed"));
        }
        return Err(errors.into());
    }
    let (first, last) = (first.expect("rows were read"), last.expect("rows were read"));

    // Second pass: write, in one transaction. The lines' states first, then the months: the
    // file is parsed on a blocking thread while the database writes the batch before.
    let zone = app.config.billing.zone().map_err(|e| AppError::Unexpected(anyhow::anyhow!(e)))?;
    let import_id = custody_store::new_id();
    let mut tx = app.store.write().await?;
    let seq = store::next_import_seq(&mut tx).await?;
    let mut states: Vec<(u64, i64, i64)> = Vec::with_capacity(numbers.len());
    for chunk in numbers.chunks(5_000) {
        let json = serde_json::to_string(&chunk.iter().map(|n| format!("+{n}")).collect::<Vec<_>>())
            .expect("strings serialize");
        for line in store::line_states(&mut tx, &json).await? {
            let digits = phone_digits(&line.phone_number).unwrap_or_default();
            states.push((digits, line.state_id, line.created_at));
        }
    }
    drop(numbers);
    states.sort_unstable();
    let keys = (month_keys(first).0, month_keys(last).1);
    let before = store::count_months(&mut tx, keys.0, keys.1).await?;
    let (sender, mut batches) = tokio::sync::mpsc::channel(4);
    let parser = {
        let file = file.clone();
        tokio::task::spawn_blocking(move || write_batches(&file, months, &states, &zone, &sender))
    };
    let (mut written, mut changed) = (0u64, 0u64);
    while let Some((batch, rows)) = batches.recv().await {
        changed += store::upsert_months(&mut tx, &batch, seq).await?;
        written += rows;
        progress(Phase::Writing, written);
    }
    parser.await.map_err(|e| AppError::Unexpected(anyhow::anyhow!(e)))??;
    let after = store::count_months(&mut tx, keys.0, keys.1).await?;
    let inserted = after - before;
    let summary = ImportSummary {
        import_id: (changed > 0).then(|| import_id.clone()),
        file_name: file.name.clone(),
        sha256,
        rows: total_rows as i64,
        inserted,
        replaced: changed as i64 - inserted,
        unchanged: total_rows as i64 - changed as i64,
        first_month: first.to_string(),
        last_month: last.to_string(),
    };
    if changed == 0 {
        // The same file again: nothing to record.
        return Ok(summary);
    }
    let now = now_ms();
    store::insert_import(
        &mut tx,
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
    audit::append(&mut tx, actor.event("usage.import", "usage_import", &import_id, None, changes)).await?;
    tx.commit().await?;
    Ok(summary)
}

/// The second pass's parser: the file's rows as JSON batches of [`BATCH`] for
/// [`store::upsert_months`], each row keyed and given its line's state from `states` (sorted by
/// phone digits). Stops early when the writer has stopped listening.
fn write_batches(
    file: &UsageFile,
    months: (Period, Period),
    states: &[(u64, i64, i64)],
    zone: &jiff::tz::TimeZone,
    sender: &tokio::sync::mpsc::Sender<(String, u64)>,
) -> Result<(), AppError> {
    use std::fmt::Write;
    let mut starts: HashMap<Period, i64> = HashMap::new();
    let mut carriers: HashMap<String, String> = HashMap::new();
    let mut rows = Rows::open(file, false)?;
    let (mut batch, mut in_batch) = (String::with_capacity(BATCH * 64), 0u64);
    loop {
        let row = rows.next_with(|_, raw| parse_row(&raw, months).ok())?;
        let done = row.is_none();
        if let Some(Some(row)) = row {
            let digits = phone_digits(&row.phone_number).unwrap_or_default();
            let Ok(at) = states.binary_search_by_key(&digits, |s| s.0) else {
                return Err(AppError::Unexpected(anyhow::anyhow!("{} lost its line mid-import", row.phone_number)));
            };
            let (_, state_id, created_at) = states[at];
            let start = *starts
                .entry(row.month)
                .or_insert_with(|| custody_domain::billing::Month::new(row.month, zone).start());
            let carrier = carriers
                .entry(row.carrier)
                .or_insert_with_key(|c| serde_json::to_string(c).expect("a string serializes"));
            batch.push(if in_batch == 0 { '[' } else { ',' });
            write!(
                batch,
                "[{},{state_id},{carrier},{},{},{},{},\"{}\",{}]",
                usage_key(digits, row.month),
                row.voice_minutes,
                row.messages,
                row.data_kb,
                row.international_cents,
                row.line_plan.as_str(),
                u8::from(created_at > start)
            )
            .expect("writing to a string");
            in_batch += 1;
        }
        if in_batch as usize == BATCH || (done && in_batch > 0) {
            batch.push(']');
            let full = std::mem::replace(&mut batch, String::with_capacity(BATCH * 64));
            if sender.blocking_send((full, in_batch)).is_err() {
                return Ok(());
            }
            in_batch = 0;
        }
        if done {
            return Ok(());
        }
    }
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
