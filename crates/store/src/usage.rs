//! Carrier usage: months of lines as imported, and the record of each import.
//!
//! Imports write in batches handed over as one JSON array each (`json_each` on SQLite,
//! `json_array_elements` on PostgreSQL): one bound parameter per batch however many rows, and the
//! line, its device and holder joined in the same statement.

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

/// Writes a batch of months — a JSON array of `[phone, month, carrier, voice_minutes, messages,
/// data_kb, international_cents, line_plan, month_start_ms]` — for lines that exist: new months
/// are inserted with the line's device, type and holder now; months already there take the new
/// figures only when they differ. Returns how many rows were inserted or changed.
pub async fn upsert_months(conn: &mut Conn, rows_json: &str, import_id: &str) -> Result<u64, SqlError> {
    let (source, text, int) = if is_postgres(conn) {
        ("json_array_elements($1::json) AS j(value)", "", "::bigint")
    } else {
        ("json_each($1) AS j", "", "")
    };
    let f = |i: usize, cast: &str| format!("(j.value ->> {i}){cast}");
    let sql = format!(
        "INSERT INTO usage_records (phone_number, month, agency_code, line_id, carrier, voice_minutes, messages, \
           data_kb, international_cents, line_plan, device_id, device_type, holder_id, partial, import_id) \
         SELECT {phone}, {month}, l.agency_code, l.id, {carrier}, {voice}, {messages}, {data}, {intl}, {plan}, \
           d.id, d.device_type, d.holder_id, CASE WHEN l.created_at > {start} THEN 1 ELSE 0 END, $2 \
         FROM {source} JOIN lines l ON l.phone_number = {phone} LEFT JOIN devices d ON d.id = l.device_id \
         WHERE 1 = 1 \
         ON CONFLICT (phone_number, month) DO UPDATE SET carrier = excluded.carrier, \
           voice_minutes = excluded.voice_minutes, messages = excluded.messages, data_kb = excluded.data_kb, \
           international_cents = excluded.international_cents, line_plan = excluded.line_plan, \
           import_id = excluded.import_id \
         WHERE usage_records.carrier <> excluded.carrier OR usage_records.voice_minutes <> excluded.voice_minutes \
           OR usage_records.messages <> excluded.messages OR usage_records.data_kb <> excluded.data_kb \
           OR usage_records.international_cents <> excluded.international_cents \
           OR usage_records.line_plan <> excluded.line_plan",
        phone = f(0, text),
        month = f(1, text),
        carrier = f(2, text),
        voice = f(3, int),
        messages = f(4, int),
        data = f(5, int),
        intl = f(6, int),
        plan = f(7, text),
        start = f(8, int),
    );
    let done = sqlx::query(AssertSqlSafe(sql)).bind(rows_json).bind(import_id).execute(&mut *conn).await?;
    Ok(done.rows_affected())
}

/// How many months are recorded from `first` to `last` (inclusive).
pub async fn count_months(conn: &mut Conn, first: &str, last: &str) -> Result<i64, SqlError> {
    sqlx::query("SELECT COUNT(*) AS n FROM usage_records WHERE month >= $1 AND month <= $2")
        .bind(first)
        .bind(last)
        .fetch_one(&mut *conn)
        .await?
        .try_get("n")
}

/// One month of a line as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthRow {
    pub phone_number: String,
    pub month: String,
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
    pub import_id: String,
}

const MONTH_COLUMNS: &str = "phone_number, month, agency_code, line_id, carrier, voice_minutes, messages, data_kb, \
     international_cents, line_plan, device_id, device_type, holder_id, partial, import_id";

fn month_row(r: &sqlx::any::AnyRow) -> Result<MonthRow, SqlError> {
    Ok(MonthRow {
        phone_number: r.try_get("phone_number")?,
        month: r.try_get("month")?,
        agency_code: r.try_get("agency_code")?,
        line_id: r.try_get("line_id")?,
        carrier: r.try_get("carrier")?,
        voice_minutes: r.try_get("voice_minutes")?,
        messages: r.try_get("messages")?,
        data_kb: r.try_get("data_kb")?,
        international_cents: r.try_get("international_cents")?,
        line_plan: r.try_get("line_plan")?,
        device_id: r.try_get("device_id")?,
        device_type: r.try_get("device_type")?,
        holder_id: r.try_get("holder_id")?,
        partial: r.try_get::<i64, _>("partial")? != 0,
        import_id: r.try_get("import_id")?,
    })
}

/// A month as [`crate::page_as_json`] hands it over.
#[derive(serde::Deserialize)]
struct MonthJson {
    phone_number: String,
    month: String,
    agency_code: String,
    line_id: String,
    carrier: String,
    voice_minutes: i64,
    messages: i64,
    data_kb: i64,
    international_cents: i64,
    line_plan: String,
    device_id: Option<String>,
    device_type: Option<String>,
    holder_id: Option<String>,
    partial: i64,
    import_id: String,
}

/// An agency's months from `first` to `last`, by line then month: a page of at most `limit`
/// after the line and month `after` (empty strings: from the start). The page comes back as one
/// JSON value (rows one by one cost several times more on SQLite).
pub async fn agency_months(
    conn: &mut Conn,
    agency: &str,
    (first, last): (&str, &str),
    (after_line, after_month): (&str, &str),
    limit: i64,
) -> Result<Vec<MonthRow>, SqlError> {
    let inner = format!(
        "SELECT {MONTH_COLUMNS} FROM usage_records WHERE agency_code = $1 AND month >= $2 AND month <= $3 \
         AND (line_id > $4 OR (line_id = $4 AND month > $5)) ORDER BY line_id, month LIMIT $6"
    );
    let columns: Vec<&str> = MONTH_COLUMNS.split(',').map(str::trim).collect();
    let sql = crate::page_as_json(conn, &inner, &columns, "line_id, month");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(agency)
        .bind(first)
        .bind(last)
        .bind(after_line)
        .bind(after_month)
        .bind(limit)
        .fetch_one(&mut *conn)
        .await?;
    let page: String = row.try_get("page")?;
    let rows: Vec<MonthJson> = serde_json::from_str(&page).map_err(|e| SqlError::Decode(Box::new(e)))?;
    let rows = crate::sort_page(conn, rows, |a, b| (&a.line_id, &a.month).cmp(&(&b.line_id, &b.month)));
    Ok(rows
        .into_iter()
        .map(|m| MonthRow {
            phone_number: m.phone_number,
            month: m.month,
            agency_code: m.agency_code,
            line_id: m.line_id,
            carrier: m.carrier,
            voice_minutes: m.voice_minutes,
            messages: m.messages,
            data_kb: m.data_kb,
            international_cents: m.international_cents,
            line_plan: m.line_plan,
            device_id: m.device_id,
            device_type: m.device_type,
            holder_id: m.holder_id,
            partial: m.partial != 0,
            import_id: m.import_id,
        })
        .collect())
}

/// The agency of the line with `phone_number`, if there is one.
pub async fn line_agency(conn: &mut Conn, phone_number: &str) -> Result<Option<String>, SqlError> {
    let row = sqlx::query("SELECT agency_code FROM lines WHERE phone_number = $1")
        .bind(phone_number)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| r.try_get("agency_code")).transpose()
}

/// The months recorded for `phone_number`, oldest first.
pub async fn line_months(conn: &mut Conn, phone_number: &str) -> Result<Vec<MonthRow>, SqlError> {
    let sql = format!("SELECT {MONTH_COLUMNS} FROM usage_records WHERE phone_number = $1 ORDER BY month");
    let rows = sqlx::query(AssertSqlSafe(sql)).bind(phone_number).fetch_all(&mut *conn).await?;
    rows.iter().map(month_row).collect()
}

/// An import that changed something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    pub id: String,
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
         last_month, imported_by, imported_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The latest imports, newest first.
pub async fn imports(conn: &mut Conn, limit: i64) -> Result<Vec<ImportRow>, SqlError> {
    let rows = sqlx::query(
        "SELECT id, file_name, sha256, row_count, inserted, replaced, unchanged, first_month, last_month, \
         imported_by, imported_at FROM usage_imports ORDER BY imported_at DESC, id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ImportRow {
                id: r.try_get("id")?,
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
