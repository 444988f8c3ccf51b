//! Billing: devices' billable intervals, baselines, pass-through charges, adjustments, closed
//! periods and their invoices. The month's device counts are one grouped scan of an index over
//! the intervals (`domain::billing`'s rule in SQL; a property test holds the two together).

use custody_domain::billing::Month;
use sqlx::{AssertSqlSafe, Row};

use crate::{Conn, SqlError};

/// One billable interval (see `domain::billing::Interval`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntervalRow {
    pub id: String,
    pub device_id: String,
    pub agency_code: String,
    pub device_type: String,
    pub started_at: i64,
    pub stopped_at: Option<i64>,
    pub prev_stopped_at: Option<i64>,
}

/// Starts billing `device` at `at`, unless an interval is already open; returns whether it did.
pub async fn start_interval(
    conn: &mut Conn,
    device_id: &str,
    agency: &str,
    device_type: &str,
    at: i64,
) -> Result<bool, SqlError> {
    let inserted = sqlx::query(
        "INSERT INTO billing_intervals (id, device_id, agency_code, device_type, started_at, stopped_at, \
         prev_stopped_at) SELECT $1, $2, $3, $4, $5, NULL, (SELECT MAX(stopped_at) FROM billing_intervals WHERE \
         device_id = $2) WHERE NOT EXISTS (SELECT 1 FROM billing_intervals WHERE device_id = $2 AND stopped_at IS NULL)",
    )
    .bind(crate::new_id())
    .bind(device_id)
    .bind(agency)
    .bind(device_type)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Stops `device`'s open interval at `at`; returns whether one was open.
pub async fn stop_interval(conn: &mut Conn, device_id: &str, at: i64) -> Result<bool, SqlError> {
    let updated =
        sqlx::query("UPDATE billing_intervals SET stopped_at = $2 WHERE device_id = $1 AND stopped_at IS NULL")
            .bind(device_id)
            .bind(at)
            .execute(&mut *conn)
            .await?;
    Ok(updated.rows_affected() == 1)
}

/// Inserts many intervals, 400 to a statement (bulk loads: the demo).
pub async fn insert_intervals_many(conn: &mut Conn, rows: &[IntervalRow]) -> Result<(), SqlError> {
    let head = "billing_intervals (id, device_id, agency_code, device_type, started_at, stopped_at, prev_stopped_at)";
    for chunk in rows.chunks(crate::rows_per_insert(conn, 7)) {
        let sql = crate::insert_values_sql(head, 7, chunk.len());
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for r in chunk {
            query = query
                .bind(r.id.clone())
                .bind(r.device_id.clone())
                .bind(r.agency_code.clone())
                .bind(r.device_type.clone())
                .bind(r.started_at)
                .bind(r.stopped_at)
                .bind(r.prev_stopped_at);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A device's intervals, oldest first.
pub async fn intervals_of(conn: &mut Conn, device_id: &str) -> Result<Vec<IntervalRow>, SqlError> {
    let rows = sqlx::query(
        "SELECT id, device_id, agency_code, device_type, started_at, stopped_at, prev_stopped_at \
         FROM billing_intervals WHERE device_id = $1 ORDER BY started_at",
    )
    .bind(device_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(interval_row).collect()
}

fn interval_row(r: &sqlx::any::AnyRow) -> Result<IntervalRow, SqlError> {
    Ok(IntervalRow {
        id: r.try_get("id")?,
        device_id: r.try_get("device_id")?,
        agency_code: r.try_get("agency_code")?,
        device_type: r.try_get("device_type")?,
        started_at: r.try_get("started_at")?,
        stopped_at: r.try_get("stopped_at")?,
        prev_stopped_at: r.try_get("prev_stopped_at")?,
    })
}

/// `CASE` giving the day of `month` holding the instant `expr`: 0 before, `days + 1` after.
fn day_of(month: &Month, expr: &str) -> String {
    let mut sql = format!("CASE WHEN {expr} < {} THEN 0", month.day_starts[0]);
    for (day, start) in month.day_starts.iter().enumerate().skip(1) {
        sql.push_str(&format!(" WHEN {expr} < {start} THEN {day}"));
    }
    sql.push_str(&format!(" ELSE {} END", month.days() + 1));
    sql
}

/// The condition of an interval overlapping the month (`$1` its start, `$2` its end).
const OVERLAPS: &str = "started_at < $2 AND (stopped_at IS NULL OR stopped_at > $1)";
/// ...and billing it under `full_month` (the previous interval did not).
const FIRST_IN_MONTH: &str = "(prev_stopped_at IS NULL OR prev_stopped_at <= $1)";

/// One group of billed intervals: an agency's devices of a type, for a full month (`days` None)
/// or for `days` days.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServiceCount {
    pub agency_code: String,
    pub device_type: String,
    pub days: Option<i64>,
    pub quantity: i64,
}

/// The devices billed in `month`, grouped by agency, device type and (`daily`) billed days.
pub async fn service_counts(conn: &mut Conn, month: &Month, daily: bool) -> Result<Vec<ServiceCount>, SqlError> {
    let rows = if daily {
        let started = day_of(month, "started_at");
        let prev = day_of(month, "(prev_stopped_at - 1)");
        let stopped = day_of(month, "(stopped_at - 1)");
        let days = month.days();
        let sql = format!(
            "SELECT agency_code, device_type, last_day - first_day + 1 AS days, COUNT(*) AS n FROM ( \
               SELECT agency_code, device_type, \
                 CASE WHEN prev_day > start_day THEN prev_day ELSE start_day END AS first_day, last_day FROM ( \
                   SELECT agency_code, device_type, \
                     CASE WHEN started_at < $1 THEN 1 ELSE {started} END AS start_day, \
                     CASE WHEN prev_stopped_at IS NULL THEN 0 ELSE ({prev}) + 1 END AS prev_day, \
                     CASE WHEN stopped_at IS NULL OR stopped_at > $2 THEN {days} ELSE {stopped} END AS last_day \
                   FROM billing_intervals WHERE {OVERLAPS}) AS d) AS f \
             WHERE last_day >= first_day GROUP BY agency_code, device_type, last_day - first_day + 1 \
             ORDER BY agency_code, device_type, days"
        );
        sqlx::query(AssertSqlSafe(sql)).bind(month.start()).bind(month.end()).fetch_all(&mut *conn).await?
    } else {
        let sql = format!(
            "SELECT agency_code, device_type, COUNT(*) AS n FROM billing_intervals \
             WHERE {OVERLAPS} AND {FIRST_IN_MONTH} GROUP BY agency_code, device_type ORDER BY agency_code, device_type"
        );
        sqlx::query(AssertSqlSafe(sql)).bind(month.start()).bind(month.end()).fetch_all(&mut *conn).await?
    };
    rows.iter()
        .map(|r| {
            Ok(ServiceCount {
                agency_code: r.try_get("agency_code")?,
                device_type: r.try_get("device_type")?,
                days: if daily { Some(r.try_get("days")?) } else { None },
                quantity: r.try_get("n")?,
            })
        })
        .collect()
}

/// The plain count the close is measured against: billable device-months of `month`.
pub async fn count_device_months(conn: &mut Conn, month: &Month) -> Result<i64, SqlError> {
    let sql = format!("SELECT COUNT(*) AS n FROM billing_intervals WHERE {OVERLAPS} AND {FIRST_IN_MONTH}");
    sqlx::query(AssertSqlSafe(sql)).bind(month.start()).bind(month.end()).fetch_one(&mut *conn).await?.try_get("n")
}

/// One device behind a service or excess line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineDevice {
    pub device_id: String,
    pub serial: Option<String>,
    pub device_type: String,
    pub started_at: i64,
    pub stopped_at: Option<i64>,
    pub prev_stopped_at: Option<i64>,
    pub holder_name: Option<String>,
}

/// The intervals of `agency`'s devices of `device_type` that overlap `month` (a page after the
/// device id `after`), with the holder the chain of custody records at the month's end (the
/// device's current holder when its chain does not reach back that far).
pub async fn month_devices(
    conn: &mut Conn,
    month: &Month,
    agency: &str,
    device_type: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<LineDevice>, SqlError> {
    let sql = format!(
        "SELECT i.device_id, d.serial, i.device_type, i.started_at, i.stopped_at, i.prev_stopped_at, \
           (p.given_name || ' ' || p.family_name) AS holder_name FROM ( \
             SELECT device_id, device_type, started_at, stopped_at, prev_stopped_at FROM billing_intervals \
             WHERE agency_code = $3 AND device_type = $4 AND {OVERLAPS} AND device_id > $5 \
             ORDER BY device_id, started_at LIMIT $6) AS i \
         JOIN devices d ON d.id = i.device_id \
         LEFT JOIN people p ON p.id = CASE \
           WHEN EXISTS (SELECT 1 FROM custody_events c WHERE c.device_id = i.device_id AND c.at < $2) THEN \
             (SELECT c.holder_after FROM custody_events c WHERE c.device_id = i.device_id AND c.at < $2 \
              ORDER BY c.at DESC LIMIT 1) \
           ELSE d.holder_id END \
         ORDER BY i.device_id, i.started_at"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(month.start())
        .bind(month.end())
        .bind(agency)
        .bind(device_type)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(LineDevice {
                device_id: r.try_get("device_id")?,
                serial: r.try_get("serial")?,
                device_type: r.try_get("device_type")?,
                started_at: r.try_get("started_at")?,
                stopped_at: r.try_get("stopped_at")?,
                prev_stopped_at: r.try_get("prev_stopped_at")?,
                holder_name: r.try_get("holder_name")?,
            })
        })
        .collect()
}

/// A baseline: how many devices of a type an agency had as of a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineRow {
    pub id: String,
    pub agency_code: String,
    pub device_type: String,
    pub as_of: String,
    pub device_count: i64,
    /// `entered` or `carrier_records`.
    pub source: String,
    pub note: Option<String>,
    pub created_by: String,
    pub created_at: i64,
}

const BASELINE_COLUMNS: &str =
    "id, agency_code, device_type, as_of, device_count, source, note, created_by, created_at";

fn baseline_row(r: &sqlx::any::AnyRow) -> Result<BaselineRow, SqlError> {
    Ok(BaselineRow {
        id: r.try_get("id")?,
        agency_code: r.try_get("agency_code")?,
        device_type: r.try_get("device_type")?,
        as_of: r.try_get("as_of")?,
        device_count: r.try_get("device_count")?,
        source: r.try_get("source")?,
        note: r.try_get("note")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
    })
}

/// Inserts a baseline, or replaces the count of the same agency, type and date; returns the
/// count it replaced.
pub async fn upsert_baseline(conn: &mut Conn, b: &BaselineRow) -> Result<Option<i64>, SqlError> {
    let before: Option<i64> = sqlx::query(
        "SELECT device_count FROM billing_baselines WHERE agency_code = $1 AND device_type = $2 AND as_of = $3",
    )
    .bind(&b.agency_code)
    .bind(&b.device_type)
    .bind(&b.as_of)
    .fetch_optional(&mut *conn)
    .await?
    .map(|r| r.try_get("device_count"))
    .transpose()?;
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO billing_baselines ({BASELINE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (agency_code, device_type, as_of) DO UPDATE SET device_count = excluded.device_count, \
         source = excluded.source, note = excluded.note, created_by = excluded.created_by, \
         created_at = excluded.created_at"
    )))
    .bind(&b.id)
    .bind(&b.agency_code)
    .bind(&b.device_type)
    .bind(&b.as_of)
    .bind(b.device_count)
    .bind(&b.source)
    .bind(&b.note)
    .bind(&b.created_by)
    .bind(b.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(before)
}

/// Every baseline (of `agency`), by agency, type and date.
pub async fn baselines(conn: &mut Conn, agency: Option<&str>) -> Result<Vec<BaselineRow>, SqlError> {
    let sql = format!(
        "SELECT {BASELINE_COLUMNS} FROM billing_baselines WHERE ($1 = '' OR agency_code = $1) \
         ORDER BY agency_code, device_type, as_of"
    );
    let rows = sqlx::query(AssertSqlSafe(sql)).bind(agency.unwrap_or("")).fetch_all(&mut *conn).await?;
    rows.iter().map(baseline_row).collect()
}

/// The baselines in force on `date`: per agency and type, the latest as of that date or before.
pub async fn baselines_in_force(conn: &mut Conn, date: &str) -> Result<Vec<BaselineRow>, SqlError> {
    let sql = format!(
        "SELECT {BASELINE_COLUMNS} FROM billing_baselines b WHERE as_of = (SELECT MAX(as_of) FROM billing_baselines x \
         WHERE x.agency_code = b.agency_code AND x.device_type = b.device_type AND x.as_of <= $1) \
         ORDER BY agency_code, device_type"
    );
    let rows = sqlx::query(AssertSqlSafe(sql)).bind(date).fetch_all(&mut *conn).await?;
    rows.iter().map(baseline_row).collect()
}

/// A pass-through charge, direct-billed in its month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRow {
    pub id: String,
    pub agency_code: String,
    pub period: String,
    /// `international`, `feature` or `other`.
    pub kind: String,
    pub phone_number: Option<String>,
    pub description: String,
    pub amount_cents: i64,
    pub created_by: String,
    pub created_at: i64,
}

const CHARGE_COLUMNS: &str =
    "id, agency_code, period, kind, phone_number, description, amount_cents, created_by, created_at";

pub async fn insert_charges(conn: &mut Conn, rows: &[ChargeRow]) -> Result<(), SqlError> {
    for chunk in rows.chunks(crate::rows_per_insert(conn, 9)) {
        let sql = crate::insert_values_sql(&format!("billing_charges ({CHARGE_COLUMNS})"), 9, chunk.len());
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for c in chunk {
            query = query
                .bind(c.id.clone())
                .bind(c.agency_code.clone())
                .bind(c.period.clone())
                .bind(c.kind.clone())
                .bind(c.phone_number.clone())
                .bind(c.description.clone())
                .bind(c.amount_cents)
                .bind(c.created_by.clone())
                .bind(c.created_at);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The pass-through charges of a month (of `agency`), oldest first.
pub async fn charges(conn: &mut Conn, period: Option<&str>, agency: Option<&str>) -> Result<Vec<ChargeRow>, SqlError> {
    let sql = format!(
        "SELECT {CHARGE_COLUMNS} FROM billing_charges WHERE ($1 = '' OR period = $1) AND ($2 = '' OR agency_code = $2) \
         ORDER BY period DESC, agency_code, created_at, id LIMIT 5000"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(period.unwrap_or(""))
        .bind(agency.unwrap_or(""))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ChargeRow {
                id: r.try_get("id")?,
                agency_code: r.try_get("agency_code")?,
                period: r.try_get("period")?,
                kind: r.try_get("kind")?,
                phone_number: r.try_get("phone_number")?,
                description: r.try_get("description")?,
                amount_cents: r.try_get("amount_cents")?,
                created_by: r.try_get("created_by")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

/// A correction of a closed period, carried by the agency's next invoice of its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdjustmentRow {
    pub id: String,
    pub agency_code: String,
    pub invoice_kind: String,
    /// Negative: a credit.
    pub amount_cents: i64,
    pub reason: String,
    pub corrects_period: Option<String>,
    pub applied_period: Option<String>,
    pub created_by: String,
    pub created_at: i64,
}

const ADJUSTMENT_COLUMNS: &str =
    "id, agency_code, invoice_kind, amount_cents, reason, corrects_period, applied_period, created_by, created_at";

pub async fn insert_adjustment(conn: &mut Conn, a: &AdjustmentRow) -> Result<(), SqlError> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO billing_adjustments ({ADJUSTMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    )))
    .bind(&a.id)
    .bind(&a.agency_code)
    .bind(&a.invoice_kind)
    .bind(a.amount_cents)
    .bind(&a.reason)
    .bind(&a.corrects_period)
    .bind(&a.applied_period)
    .bind(&a.created_by)
    .bind(a.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn adjustment_row(r: &sqlx::any::AnyRow) -> Result<AdjustmentRow, SqlError> {
    Ok(AdjustmentRow {
        id: r.try_get("id")?,
        agency_code: r.try_get("agency_code")?,
        invoice_kind: r.try_get("invoice_kind")?,
        amount_cents: r.try_get("amount_cents")?,
        reason: r.try_get("reason")?,
        corrects_period: r.try_get("corrects_period")?,
        applied_period: r.try_get("applied_period")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
    })
}

/// Adjustments (of `agency`), newest first.
pub async fn adjustments(conn: &mut Conn, agency: Option<&str>) -> Result<Vec<AdjustmentRow>, SqlError> {
    let sql = format!(
        "SELECT {ADJUSTMENT_COLUMNS} FROM billing_adjustments WHERE ($1 = '' OR agency_code = $1) \
         ORDER BY created_at DESC, id LIMIT 2000"
    );
    let rows = sqlx::query(AssertSqlSafe(sql)).bind(agency.unwrap_or("")).fetch_all(&mut *conn).await?;
    rows.iter().map(adjustment_row).collect()
}

/// Adjustments no close has carried yet.
pub async fn pending_adjustments(conn: &mut Conn) -> Result<Vec<AdjustmentRow>, SqlError> {
    let sql = format!(
        "SELECT {ADJUSTMENT_COLUMNS} FROM billing_adjustments WHERE applied_period IS NULL \
         ORDER BY agency_code, created_at, id"
    );
    let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(&mut *conn).await?;
    rows.iter().map(adjustment_row).collect()
}

/// Marks the pending adjustments as carried by `period`'s invoices.
pub async fn apply_adjustments(conn: &mut Conn, ids: &[String], period: &str) -> Result<(), SqlError> {
    for id in ids {
        sqlx::query("UPDATE billing_adjustments SET applied_period = $2 WHERE id = $1 AND applied_period IS NULL")
            .bind(id)
            .bind(period)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// A closed month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodRow {
    pub period: String,
    pub time_zone: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub devices: i64,
    pub chargeback_cents: i64,
    pub direct_bill_cents: i64,
    pub invoices: i64,
    pub closed_by: String,
    pub closed_at: i64,
}

const PERIOD_COLUMNS: &str = "period, time_zone, starts_at, ends_at, devices, chargeback_cents, direct_bill_cents, \
     invoices, closed_by, closed_at";

fn period_row(r: &sqlx::any::AnyRow) -> Result<PeriodRow, SqlError> {
    Ok(PeriodRow {
        period: r.try_get("period")?,
        time_zone: r.try_get("time_zone")?,
        starts_at: r.try_get("starts_at")?,
        ends_at: r.try_get("ends_at")?,
        devices: r.try_get("devices")?,
        chargeback_cents: r.try_get("chargeback_cents")?,
        direct_bill_cents: r.try_get("direct_bill_cents")?,
        invoices: r.try_get("invoices")?,
        closed_by: r.try_get("closed_by")?,
        closed_at: r.try_get("closed_at")?,
    })
}

pub async fn insert_period(conn: &mut Conn, p: &PeriodRow) -> Result<(), SqlError> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO billing_periods ({PERIOD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    )))
    .bind(&p.period)
    .bind(&p.time_zone)
    .bind(p.starts_at)
    .bind(p.ends_at)
    .bind(p.devices)
    .bind(p.chargeback_cents)
    .bind(p.direct_bill_cents)
    .bind(p.invoices)
    .bind(&p.closed_by)
    .bind(p.closed_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get_period(conn: &mut Conn, period: &str) -> Result<Option<PeriodRow>, SqlError> {
    let sql = format!("SELECT {PERIOD_COLUMNS} FROM billing_periods WHERE period = $1");
    sqlx::query(AssertSqlSafe(sql)).bind(period).fetch_optional(&mut *conn).await?.as_ref().map(period_row).transpose()
}

/// Closed periods, newest first.
pub async fn periods(conn: &mut Conn, limit: i64) -> Result<Vec<PeriodRow>, SqlError> {
    let sql = format!("SELECT {PERIOD_COLUMNS} FROM billing_periods ORDER BY period DESC LIMIT $1");
    let rows = sqlx::query(AssertSqlSafe(sql)).bind(limit).fetch_all(&mut *conn).await?;
    rows.iter().map(period_row).collect()
}

/// An invoice (without its lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceRow {
    pub id: String,
    pub number: String,
    pub period: String,
    pub agency_code: String,
    pub kind: String,
    pub agency_name: String,
    pub fund_code: Option<String>,
    pub billing_account: Option<String>,
    pub devices: i64,
    pub total_cents: i64,
    pub created_at: i64,
}

/// A line of an invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceLineRow {
    pub line_no: i64,
    /// `service`, `excess`, `pass_through` or `adjustment`.
    pub kind: String,
    pub service_code: Option<String>,
    pub device_type: Option<String>,
    pub description: String,
    pub quantity: i64,
    pub days: Option<i64>,
    pub days_in_month: Option<i64>,
    pub rate_cents: Option<i64>,
    pub amount_cents: i64,
    pub in_service: Option<i64>,
    pub baseline: Option<i64>,
    /// The charge or adjustment behind the line.
    pub reference: Option<String>,
}

const INVOICE_COLUMNS: &str = "id, number, period, agency_code, kind, agency_name, fund_code, billing_account, devices, \
     total_cents, created_at";
const LINE_COLUMNS: &str = "line_no, kind, service_code, device_type, description, quantity, days, days_in_month, \
     rate_cents, amount_cents, in_service, baseline, reference";

fn invoice_row(r: &sqlx::any::AnyRow) -> Result<InvoiceRow, SqlError> {
    Ok(InvoiceRow {
        id: r.try_get("id")?,
        number: r.try_get("number")?,
        period: r.try_get("period")?,
        agency_code: r.try_get("agency_code")?,
        kind: r.try_get("kind")?,
        agency_name: r.try_get("agency_name")?,
        fund_code: r.try_get("fund_code")?,
        billing_account: r.try_get("billing_account")?,
        devices: r.try_get("devices")?,
        total_cents: r.try_get("total_cents")?,
        created_at: r.try_get("created_at")?,
    })
}

/// Writes invoices and their lines, several to a statement.
pub async fn insert_invoices(conn: &mut Conn, invoices: &[(InvoiceRow, Vec<InvoiceLineRow>)]) -> Result<(), SqlError> {
    for chunk in invoices.chunks(crate::rows_per_insert(conn, 11)) {
        let sql = crate::insert_values_sql(&format!("invoices ({INVOICE_COLUMNS})"), 11, chunk.len());
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (i, _) in chunk {
            query = query
                .bind(i.id.clone())
                .bind(i.number.clone())
                .bind(i.period.clone())
                .bind(i.agency_code.clone())
                .bind(i.kind.clone())
                .bind(i.agency_name.clone())
                .bind(i.fund_code.clone())
                .bind(i.billing_account.clone())
                .bind(i.devices)
                .bind(i.total_cents)
                .bind(i.created_at);
        }
        query.execute(&mut *conn).await?;
    }
    let lines: Vec<(&str, &InvoiceLineRow)> =
        invoices.iter().flat_map(|(i, lines)| lines.iter().map(move |l| (i.id.as_str(), l))).collect();
    for chunk in lines.chunks(crate::rows_per_insert(conn, 14)) {
        let sql = crate::insert_values_sql(&format!("invoice_lines (invoice_id, {LINE_COLUMNS})"), 14, chunk.len());
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (invoice, l) in chunk {
            query = query
                .bind(invoice.to_string())
                .bind(l.line_no)
                .bind(l.kind.clone())
                .bind(l.service_code.clone())
                .bind(l.device_type.clone())
                .bind(l.description.clone())
                .bind(l.quantity)
                .bind(l.days)
                .bind(l.days_in_month)
                .bind(l.rate_cents)
                .bind(l.amount_cents)
                .bind(l.in_service)
                .bind(l.baseline)
                .bind(l.reference.clone());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// What an invoice list shows.
#[derive(Debug, Clone, Default)]
pub struct InvoiceFilter {
    pub period: Option<String>,
    pub agency: Option<String>,
    pub kind: Option<String>,
    /// From this period on (inclusive).
    pub from: Option<String>,
    /// Up to this period (inclusive).
    pub to: Option<String>,
}

/// Invoices, newest period first, by agency and kind; a page after `after` (`period|number`).
pub async fn invoices(
    conn: &mut Conn,
    filter: &InvoiceFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<InvoiceRow>, SqlError> {
    let sql = format!(
        "SELECT {INVOICE_COLUMNS} FROM invoices WHERE ($1 = '' OR period = $1) AND ($2 = '' OR agency_code = $2) \
         AND ($3 = '' OR kind = $3) AND ($4 = '' OR period >= $4) AND ($5 = '' OR period <= $5) \
         ORDER BY period DESC, agency_code, kind LIMIT $6 OFFSET $7"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(filter.period.clone().unwrap_or_default())
        .bind(filter.agency.clone().unwrap_or_default())
        .bind(filter.kind.clone().unwrap_or_default())
        .bind(filter.from.clone().unwrap_or_default())
        .bind(filter.to.clone().unwrap_or_default())
        .bind(limit)
        .bind(offset)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(invoice_row).collect()
}

pub async fn get_invoice(conn: &mut Conn, id: &str) -> Result<Option<InvoiceRow>, SqlError> {
    let sql = format!("SELECT {INVOICE_COLUMNS} FROM invoices WHERE id = $1 OR number = $1");
    sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?.as_ref().map(invoice_row).transpose()
}

pub async fn invoice_lines(conn: &mut Conn, invoice_id: &str) -> Result<Vec<InvoiceLineRow>, SqlError> {
    let sql = format!("SELECT {LINE_COLUMNS} FROM invoice_lines WHERE invoice_id = $1 ORDER BY line_no");
    let rows = sqlx::query(AssertSqlSafe(sql)).bind(invoice_id).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| {
            Ok(InvoiceLineRow {
                line_no: r.try_get("line_no")?,
                kind: r.try_get("kind")?,
                service_code: r.try_get("service_code")?,
                device_type: r.try_get("device_type")?,
                description: r.try_get("description")?,
                quantity: r.try_get("quantity")?,
                days: r.try_get("days")?,
                days_in_month: r.try_get("days_in_month")?,
                rate_cents: r.try_get("rate_cents")?,
                amount_cents: r.try_get("amount_cents")?,
                in_service: r.try_get("in_service")?,
                baseline: r.try_get("baseline")?,
                reference: r.try_get("reference")?,
            })
        })
        .collect()
}

/// Per period (from `from` on) and agency, the invoiced totals by kind and the devices
/// charged back: the billing dashboard's series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodAgencyTotal {
    pub period: String,
    pub agency_code: String,
    pub chargeback_cents: i64,
    pub direct_bill_cents: i64,
    pub devices: i64,
}

pub async fn totals_by_agency(
    conn: &mut Conn,
    from: &str,
    agency: Option<&str>,
) -> Result<Vec<PeriodAgencyTotal>, SqlError> {
    let rows = sqlx::query(
        "SELECT period, agency_code, \
           CAST(SUM(CASE WHEN kind = 'chargeback' THEN total_cents ELSE 0 END) AS BIGINT) AS chargeback, \
           CAST(SUM(CASE WHEN kind = 'direct_bill' THEN total_cents ELSE 0 END) AS BIGINT) AS direct, \
           CAST(SUM(CASE WHEN kind = 'chargeback' THEN devices ELSE 0 END) AS BIGINT) AS devices \
         FROM invoices WHERE period >= $1 AND ($2 = '' OR agency_code = $2) \
         GROUP BY period, agency_code ORDER BY period, agency_code",
    )
    .bind(from)
    .bind(agency.unwrap_or(""))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(PeriodAgencyTotal {
                period: r.try_get("period")?,
                agency_code: r.try_get("agency_code")?,
                chargeback_cents: r.try_get("chargeback")?,
                direct_bill_cents: r.try_get("direct")?,
                devices: r.try_get("devices")?,
            })
        })
        .collect()
}

/// An agency as its invoices name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgencyAccount {
    pub code: String,
    pub name: String,
    pub fund_code: Option<String>,
    pub billing_account: Option<String>,
}

pub async fn agency_accounts(conn: &mut Conn) -> Result<Vec<AgencyAccount>, SqlError> {
    let rows = sqlx::query("SELECT code, name, fund_code, billing_account FROM agencies ORDER BY code")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(AgencyAccount {
                code: r.try_get("code")?,
                name: r.try_get("name")?,
                fund_code: r.try_get("fund_code")?,
                billing_account: r.try_get("billing_account")?,
            })
        })
        .collect()
}
