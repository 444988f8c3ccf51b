//! Carrier usage: months of lines as imported, and the record of each import.
//!
//! A month is a row of `usage_months` keyed by one integer (see
//! [`custody_domain::usage::usage_key`]); what the line was that month (agency, device, type,
//! holder) is a shared row of `usage_line_states`. Imports hand their rows over as one JSON array
//! a statement (`jsonb_each` on SQLite, `jsonb_array_elements` on PostgreSQL): one bound
//! parameter however many rows, each element read without parsing it again.

use sqlx::{AssertSqlSafe, Row};

use crate::{Conn, SqlError, is_postgres};

/// Of `numbers` (E.164, as a JSON array), those no line has.
pub async fn unknown_numbers(conn: &mut Conn, numbers_json: &str) -> Result<Vec<String>, SqlError> {
    let sql = if is_postgres(conn) {
        "SELECT j.value AS phone FROM json_array_elements_text($1::json) AS j(value) \
         WHERE NOT EXISTS (SELECT 1 FROM lines l WHERE l.phone_number = j.value)"
    } else {
        "SELECT j.value AS phone FROM json_each($1) AS j \
         WHERE NOT EXISTS (SELECT 1 FROM lines l WHERE l.phone_number = j.value)"
    };
    let rows = sqlx::query(sql).bind(numbers_json).fetch_all(&mut *conn).await?;
    rows.iter().map(|r| r.try_get("phone")).collect()
}

/// The JSON array source and the null-safe equality of this backend.
fn dialect(conn: &Conn) -> (&'static str, &'static str) {
    if is_postgres(conn) {
        ("json_array_elements_text($1::json) AS j(value)", "IS NOT DISTINCT FROM")
    } else {
        ("json_each($1) AS j", "IS")
    }
}

/// A line as an import writes its months.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineState {
    pub phone_number: String,
    /// Its `usage_line_states` row: what the line is now.
    pub state_id: i64,
    /// When the line was created (a month that began before is partial).
    pub created_at: i64,
}

/// The state (line, agency, device, type, holder) each of `numbers` (E.164, a JSON array of
/// lines that exist) has now, written first where no month recorded it yet.
pub async fn line_states(conn: &mut Conn, numbers_json: &str) -> Result<Vec<LineState>, SqlError> {
    let mut found = existing_states(conn, numbers_json).await?;
    let missing: Vec<&str> = found.iter().filter(|s| s.state_id == 0).map(|s| s.phone_number.as_str()).collect();
    if missing.is_empty() {
        return Ok(found);
    }
    let (source, _) = dialect(conn);
    let sql = format!(
        "INSERT INTO usage_line_states (line_id, phone_number, agency_code, device_id, device_type, holder_id) \
         SELECT l.id, l.phone_number, l.agency_code, d.id, d.device_type, d.holder_id \
         FROM {source} JOIN lines l ON l.phone_number = j.value LEFT JOIN devices d ON d.id = l.device_id"
    );
    let json = serde_json::to_string(&missing).expect("strings serialize");
    sqlx::query(AssertSqlSafe(sql)).bind(&json).execute(&mut *conn).await?;
    let added = existing_states(conn, &json).await?;
    found.retain(|s| s.state_id != 0);
    found.extend(added);
    Ok(found)
}

/// [`line_states`] as recorded already: a state id of 0 where none matches the line now. One
/// JSON page (rows one by one cost several times more on SQLite).
async fn existing_states(conn: &mut Conn, numbers_json: &str) -> Result<Vec<LineState>, SqlError> {
    let (source, same) = dialect(conn);
    let (open, close) = if is_postgres(conn) {
        ("COALESCE(json_agg(json_build_array(", ")), '[]'::json)::text")
    } else {
        ("json_group_array(json_array(", "))")
    };
    let sql = format!(
        "SELECT {open}l.phone_number, l.created_at, COALESCE((SELECT MAX(s.id) FROM usage_line_states s \
           WHERE s.line_id = l.id AND s.agency_code = l.agency_code AND s.device_id {same} d.id \
           AND s.device_type {same} d.device_type AND s.holder_id {same} d.holder_id), 0){close} AS page \
         FROM {source} JOIN lines l ON l.phone_number = j.value LEFT JOIN devices d ON d.id = l.device_id"
    );
    let page: String =
        sqlx::query(AssertSqlSafe(sql)).bind(numbers_json).fetch_one(&mut *conn).await?.try_get("page")?;
    let rows: Vec<(String, i64, i64)> = serde_json::from_str(&page).map_err(|e| SqlError::Decode(Box::new(e)))?;
    Ok(rows
        .into_iter()
        .map(|(phone_number, created_at, state_id)| LineState { phone_number, state_id, created_at })
        .collect())
}

/// Packs a month's voice minutes and messages (each under 2^24) into one number for
/// [`upsert_months`].
pub fn pack_counts(voice_minutes: i64, messages: i64) -> i64 {
    (voice_minutes << 24) | (messages & 0xFF_FFFF)
}

/// Packs a month's line plan (`voice_only`, `voice_data`, `data_only`: 0, 1, 2) and whether it
/// was partial into one number for [`upsert_months`].
pub fn pack_flags(line_plan: &str, partial: bool) -> i64 {
    let plan = match line_plan {
        "voice_only" => 0,
        "voice_data" => 1,
        _ => 2,
    };
    (plan << 1) | i64::from(partial)
}

/// Writes a batch of months — a JSON array of `[key, state id, carrier, counts, data_kb,
/// international_cents, flags]` (`counts` from [`pack_counts`], `flags` from [`pack_flags`]:
/// seven fields a row, as reading each costs more than unpacking it) — as import `import_seq`:
/// new months are inserted; months already there take the new figures only when they differ
/// (and keep the state they were first recorded with). Returns how many rows were inserted or
/// changed.
pub async fn upsert_months(conn: &mut Conn, rows_json: &str, import_seq: i64) -> Result<u64, SqlError> {
    let (source, int) = if is_postgres(conn) {
        ("jsonb_array_elements($1::jsonb) AS j(value)", "::bigint")
    } else {
        ("jsonb_each($1) AS j", "")
    };
    let f = |i: usize, cast: &str| format!("(j.value ->> {i}){cast}");
    let sql = format!(
        "INSERT INTO usage_months (k, state_id, carrier, voice_minutes, messages, data_kb, international_cents, \
           line_plan, partial, import_seq) \
         SELECT k, state_id, carrier, counts >> 24, counts & 16777215, data_kb, international_cents, \
           CASE flags >> 1 WHEN 0 THEN 'voice_only' WHEN 1 THEN 'voice_data' ELSE 'data_only' END, flags & 1, $2 \
         FROM (SELECT {k} AS k, {state} AS state_id, {carrier} AS carrier, {counts} AS counts, {data} AS data_kb, \
           {intl} AS international_cents, {flags} AS flags FROM {source}) AS r WHERE 1 = 1 \
         ON CONFLICT (k) DO UPDATE SET carrier = excluded.carrier, voice_minutes = excluded.voice_minutes, \
           messages = excluded.messages, data_kb = excluded.data_kb, \
           international_cents = excluded.international_cents, line_plan = excluded.line_plan, \
           import_seq = excluded.import_seq \
         WHERE usage_months.carrier <> excluded.carrier OR usage_months.voice_minutes <> excluded.voice_minutes \
           OR usage_months.messages <> excluded.messages OR usage_months.data_kb <> excluded.data_kb \
           OR usage_months.international_cents <> excluded.international_cents \
           OR usage_months.line_plan <> excluded.line_plan",
        k = f(0, int),
        state = f(1, int),
        carrier = f(2, ""),
        counts = f(3, int),
        data = f(4, int),
        intl = f(5, int),
        flags = f(6, int),
    );
    let done = sqlx::query(AssertSqlSafe(sql)).bind(rows_json).bind(import_seq).execute(&mut *conn).await?;
    Ok(done.rows_affected())
}

/// On SQLite, a larger page cache for this connection while an import runs (the lines and
/// states it looks up stay in memory instead of being read again from the file), or back to the
/// default: `None`.
pub async fn large_cache(conn: &mut Conn, mebibytes: Option<u32>) -> Result<(), SqlError> {
    if is_postgres(conn) {
        return Ok(());
    }
    let kib = mebibytes.map_or(2_000, |m| i64::from(m) * 1_024);
    sqlx::query(AssertSqlSafe(format!("PRAGMA cache_size = -{kib}"))).execute(&mut *conn).await?;
    Ok(())
}

/// How many months are recorded with keys from `first` (inclusive) to `end` (exclusive).
pub async fn count_months(conn: &mut Conn, first: i64, end: i64) -> Result<i64, SqlError> {
    sqlx::query("SELECT COUNT(*) AS n FROM usage_months WHERE k >= $1 AND k < $2")
        .bind(first)
        .bind(end)
        .fetch_one(&mut *conn)
        .await?
        .try_get("n")
}

/// The number the next import takes.
pub async fn next_import_seq(conn: &mut Conn) -> Result<i64, SqlError> {
    sqlx::query("SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM usage_imports").fetch_one(&mut *conn).await?.try_get("n")
}

/// One month of a line as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthRow {
    pub phone_number: String,
    /// Months since January 2000 ([`custody_domain::usage::month_index`]).
    pub month_index: i64,
    pub agency_code: String,
    pub line_id: String,
    pub carrier: String,
    pub voice_minutes: i64,
    pub messages: i64,
    pub data_kb: i64,
    pub international_cents: i64,
    pub line_plan: String,
    pub device_id: Option<String>,
    pub device_type: Option<String>,
    pub holder_id: Option<String>,
    pub partial: bool,
    pub import_seq: i64,
}

/// A month as [`months_of`] reads it: the phone's place in the list asked, the month, the state,
/// then the figures.
type MonthJson = (usize, i64, i64, String, i64, i64, i64, i64, String, i64, i64);
/// A state as [`months_of`] reads it: id, line, agency, device, type, holder.
type StateJson = (i64, String, String, Option<String>, Option<String>, Option<String>);

/// The months of the lines `phones` (E.164 numbers) in the months `month_indexes` (a JSON array
/// of [`custody_domain::usage::month_index`]), with what each line was then; only those recorded
/// for `agency` when given. Two JSON pages (the months as arrays, then the states they name), in
/// no particular order.
async fn months_of(
    conn: &mut Conn,
    phones: &[&str],
    month_indexes_json: &str,
    agency: Option<&str>,
) -> Result<Vec<MonthRow>, SqlError> {
    let postgres = is_postgres(conn);
    let (phones_source, position, months_source, int, (open, close)) = if postgres {
        (
            "json_array_elements_text($1::json) WITH ORDINALITY AS p(value, n)",
            "p.n - 1",
            "json_array_elements_text($2::json) AS m(value)",
            "BIGINT",
            ("COALESCE(json_agg(json_build_array(", ")), '[]'::json)::text"),
        )
    } else {
        ("json_each($1) AS p", "p.key", "json_each($2) AS m", "INTEGER", ("json_group_array(json_array(", "))"))
    };
    let sql = format!(
        "SELECT {open}{position}, CAST(m.value AS {int}), u.state_id, u.carrier, u.voice_minutes, u.messages, \
           u.data_kb, u.international_cents, u.line_plan, u.partial, u.import_seq{close} AS page \
         FROM {phones_source} CROSS JOIN {months_source} \
         JOIN usage_months u ON u.k = ((CAST(m.value AS {int}) << 50) | CAST(substr(p.value, 2) AS {int}))"
    );
    let phones_json = serde_json::to_string(phones).expect("strings serialize");
    let query = sqlx::query(AssertSqlSafe(sql)).bind(phones_json).bind(month_indexes_json);
    let page: String = query.fetch_one(&mut *conn).await?.try_get("page")?;
    let months: Vec<MonthJson> = serde_json::from_str(&page).map_err(|e| SqlError::Decode(Box::new(e)))?;
    let mut ids: Vec<i64> = months.iter().map(|m| m.2).collect();
    ids.sort_unstable();
    ids.dedup();
    let sql = if postgres {
        "SELECT COALESCE(json_agg(json_build_array(id, line_id, agency_code, device_id, device_type, holder_id)), \
           '[]'::json)::text AS page FROM usage_line_states WHERE id IN \
           (SELECT value::bigint FROM json_array_elements_text($1::json) AS j(value))"
    } else {
        "SELECT json_group_array(json_array(id, line_id, agency_code, device_id, device_type, holder_id)) AS page \
         FROM usage_line_states WHERE id IN (SELECT value FROM json_each($1))"
    };
    let ids = serde_json::to_string(&ids).expect("numbers serialize");
    let page: String = sqlx::query(sql).bind(ids).fetch_one(&mut *conn).await?.try_get("page")?;
    let states: Vec<StateJson> = serde_json::from_str(&page).map_err(|e| SqlError::Decode(Box::new(e)))?;
    let states: std::collections::HashMap<i64, StateJson> = states.into_iter().map(|s| (s.0, s)).collect();
    // Months recorded for another agency (a line moved) are not this agency's.
    let theirs = |state_id: &i64| agency.is_none_or(|a| states.get(state_id).is_none_or(|s| s.2 == a));
    months
        .into_iter()
        .filter(|m| theirs(&m.2))
        .map(|(at, month_index, state_id, carrier, voice_minutes, messages, data_kb, intl, line_plan, partial, seq)| {
            let state = states.get(&state_id).ok_or_else(|| {
                SqlError::Decode(format!("usage month of {} names a missing state {state_id}", phones[at]).into())
            })?;
            Ok(MonthRow {
                phone_number: phones.get(at).map(|p| p.to_string()).unwrap_or_default(),
                month_index,
                agency_code: state.2.clone(),
                line_id: state.1.clone(),
                carrier,
                voice_minutes,
                messages,
                data_kb,
                international_cents: intl,
                line_plan,
                device_id: state.3.clone(),
                device_type: state.4.clone(),
                holder_id: state.5.clone(),
                partial: partial != 0,
                import_seq: seq,
            })
        })
        .collect()
}

/// An agency's months in `month_indexes` (a JSON array), by line then month: a page of the
/// lines (at most `limit`) recorded for the agency after the line `after_line` (empty: from the
/// start), with the last line of the page — `None` when no line is left.
pub async fn agency_months(
    conn: &mut Conn,
    agency: &str,
    month_indexes_json: &str,
    after_line: &str,
    limit: i64,
) -> Result<(Vec<MonthRow>, Option<String>), SqlError> {
    let inner = "SELECT DISTINCT line_id, phone_number FROM usage_line_states \
                 WHERE agency_code = $1 AND line_id > $2 ORDER BY line_id LIMIT $3";
    let sql = crate::page_as_json(conn, inner, &["line_id", "phone_number"], "line_id");
    let page: String = sqlx::query(AssertSqlSafe(sql))
        .bind(agency)
        .bind(after_line)
        .bind(limit)
        .fetch_one(&mut *conn)
        .await?
        .try_get("page")?;
    #[derive(serde::Deserialize)]
    struct LineJson {
        line_id: String,
        phone_number: String,
    }
    let lines: Vec<LineJson> = serde_json::from_str(&page).map_err(|e| SqlError::Decode(Box::new(e)))?;
    let Some(last) = lines.iter().map(|l| &l.line_id).max().cloned() else { return Ok((Vec::new(), None)) };
    let phones: Vec<&str> = lines.iter().map(|l| l.phone_number.as_str()).collect();
    let mut rows = months_of(conn, &phones, month_indexes_json, Some(agency)).await?;
    rows.sort_by(|a, b| (a.line_id.as_bytes(), a.month_index).cmp(&(b.line_id.as_bytes(), b.month_index)));
    Ok((rows, Some(last)))
}

/// The agency of the line with `phone_number`, if there is one.
pub async fn line_agency(conn: &mut Conn, phone_number: &str) -> Result<Option<String>, SqlError> {
    let row = sqlx::query("SELECT agency_code FROM lines WHERE phone_number = $1")
        .bind(phone_number)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| r.try_get("agency_code")).transpose()
}

/// The months recorded for `phone_number` among `month_indexes` (a JSON array), oldest first.
pub async fn line_months(
    conn: &mut Conn,
    phone_number: &str,
    month_indexes_json: &str,
) -> Result<Vec<MonthRow>, SqlError> {
    let mut rows = months_of(conn, &[phone_number], month_indexes_json, None).await?;
    rows.sort_by_key(|m| m.month_index);
    Ok(rows)
}

/// An import that changed something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    pub id: String,
    /// The import's number, which its months carry.
    pub seq: i64,
    pub file_name: String,
    pub sha256: String,
    pub row_count: i64,
    pub inserted: i64,
    pub replaced: i64,
    pub unchanged: i64,
    pub first_month: String,
    pub last_month: String,
    pub imported_by: String,
    pub imported_at: i64,
}

pub async fn insert_import(conn: &mut Conn, i: &ImportRow) -> Result<(), SqlError> {
    sqlx::query(
        "INSERT INTO usage_imports (id, file_name, sha256, row_count, inserted, replaced, unchanged, first_month, \
         last_month, imported_by, imported_at, seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&i.id)
    .bind(&i.file_name)
    .bind(&i.sha256)
    .bind(i.row_count)
    .bind(i.inserted)
    .bind(i.replaced)
    .bind(i.unchanged)
    .bind(&i.first_month)
    .bind(&i.last_month)
    .bind(&i.imported_by)
    .bind(i.imported_at)
    .bind(i.seq)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The latest imports, newest first.
pub async fn imports(conn: &mut Conn, limit: i64) -> Result<Vec<ImportRow>, SqlError> {
    let rows = sqlx::query(
        "SELECT id, seq, file_name, sha256, row_count, inserted, replaced, unchanged, first_month, last_month, \
         imported_by, imported_at FROM usage_imports ORDER BY imported_at DESC, id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ImportRow {
                id: r.try_get("id")?,
                seq: r.try_get("seq")?,
                file_name: r.try_get("file_name")?,
                sha256: r.try_get("sha256")?,
                row_count: r.try_get("row_count")?,
                inserted: r.try_get("inserted")?,
                replaced: r.try_get("replaced")?,
                unchanged: r.try_get("unchanged")?,
                first_month: r.try_get("first_month")?,
                last_month: r.try_get("last_month")?,
                imported_by: r.try_get("imported_by")?,
                imported_at: r.try_get("imported_at")?,
            })
        })
        .collect()
}

/// A line as the demo's carrier files describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierLine {
    pub phone_number: String,
    pub carrier: String,
    pub plan_kind: String,
    pub device_type: Option<String>,
}

/// Active lines after `after_phone` (empty: from the first), by number: a page of `limit`.
pub async fn active_lines(conn: &mut Conn, after_phone: &str, limit: i64) -> Result<Vec<CarrierLine>, SqlError> {
    let rows = sqlx::query(
        "SELECT l.phone_number, l.carrier, l.plan_kind, d.device_type FROM lines l \
         LEFT JOIN devices d ON d.id = l.device_id \
         WHERE l.phone_number > $1 AND l.status = 'active' ORDER BY l.phone_number LIMIT $2",
    )
    .bind(after_phone)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(CarrierLine {
                phone_number: r.try_get("phone_number")?,
                carrier: r.try_get("carrier")?,
                plan_kind: r.try_get("plan_kind")?,
                device_type: r.try_get("device_type")?,
            })
        })
        .collect()
}
