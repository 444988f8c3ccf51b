//! Biannual usage reports: the frozen report, its rows (lines, and devices with no line), its
//! people's activity and its recommendations with the agency's answers.

use sqlx::{AssertSqlSafe, Row};

use crate::{Conn, SqlError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    pub id: String,
    pub agency_code: String,
    pub first_month: String,
    pub last_month: String,
    pub issued_at: i64,
    pub issued_by: String,
    pub deadline_at: i64,
    pub line_count: i64,
    pub recommendation_count: i64,
}

const REPORT_COLUMNS: &str = "id, agency_code, first_month, last_month, issued_at, issued_by, deadline_at, line_count, \
     recommendation_count";

fn report_row(r: &sqlx::any::AnyRow) -> Result<ReportRow, SqlError> {
    Ok(ReportRow {
        id: r.try_get("id")?,
        agency_code: r.try_get("agency_code")?,
        first_month: r.try_get("first_month")?,
        last_month: r.try_get("last_month")?,
        issued_at: r.try_get("issued_at")?,
        issued_by: r.try_get("issued_by")?,
        deadline_at: r.try_get("deadline_at")?,
        line_count: r.try_get("line_count")?,
        recommendation_count: r.try_get("recommendation_count")?,
    })
}

/// One frozen row: a line with its device, holder, totals and activity level; or a device in
/// use with no carrier line, its holder, and no number, plan or activity (months and figures 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportLine {
    pub row_no: i64,
    /// `None`: a device with no carrier line.
    pub phone_number: Option<String>,
    pub line_plan: Option<String>,
    pub device_id: Option<String>,
    pub serial: Option<String>,
    pub device_type: Option<String>,
    pub holder_id: Option<String>,
    pub holder_name: Option<String>,
    pub months: i64,
    pub voice_minutes: i64,
    pub messages: i64,
    pub data_kb: i64,
    pub international_cents: i64,
    /// `None` exactly when there is no line.
    pub activity: Option<String>,
}

/// One person's frozen activity: the months, over every line, in which they were its holder,
/// added up (`months` counts line-months), and the level of the sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportPerson {
    pub person_id: String,
    /// Their name at issuance; `None` when they were not in the agency's directory.
    pub person_name: Option<String>,
    pub lines: i64,
    pub months: i64,
    pub voice_minutes: i64,
    pub messages: i64,
    pub data_kb: i64,
    pub international_cents: i64,
    pub activity: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecommendationRow {
    pub id: String,
    pub report_id: String,
    pub agency_code: String,
    pub kind: String,
    pub line_id: Option<String>,
    pub phone_number: Option<String>,
    pub device_id: Option<String>,
    pub person_id: Option<String>,
    pub detail: String,
    pub status: String,
    pub explanation: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub deadline_at: i64,
    pub request_id: Option<String>,
}

const RECOMMENDATION_COLUMNS: &str = "id, report_id, agency_code, kind, line_id, phone_number, device_id, person_id, \
     detail, status, explanation, decided_by, decided_at, deadline_at, request_id";

fn recommendation_row(r: &sqlx::any::AnyRow) -> Result<RecommendationRow, SqlError> {
    Ok(RecommendationRow {
        id: r.try_get("id")?,
        report_id: r.try_get("report_id")?,
        agency_code: r.try_get("agency_code")?,
        kind: r.try_get("kind")?,
        line_id: r.try_get("line_id")?,
        phone_number: r.try_get("phone_number")?,
        device_id: r.try_get("device_id")?,
        person_id: r.try_get("person_id")?,
        detail: r.try_get("detail")?,
        status: r.try_get("status")?,
        explanation: r.try_get("explanation")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: r.try_get("decided_at")?,
        deadline_at: r.try_get("deadline_at")?,
        request_id: r.try_get("request_id")?,
    })
}

/// The report of `agency` for the months `first` to `last`, if issued.
pub async fn find(conn: &mut Conn, agency: &str, first: &str, last: &str) -> Result<Option<ReportRow>, SqlError> {
    let sql = format!(
        "SELECT {REPORT_COLUMNS} FROM usage_reports WHERE agency_code = $1 AND first_month = $2 AND last_month = $3"
    );
    let row = sqlx::query(AssertSqlSafe(sql)).bind(agency).bind(first).bind(last).fetch_optional(&mut *conn).await?;
    row.as_ref().map(report_row).transpose()
}

pub async fn get(conn: &mut Conn, id: &str) -> Result<Option<ReportRow>, SqlError> {
    let sql = format!("SELECT {REPORT_COLUMNS} FROM usage_reports WHERE id = $1");
    let row = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(report_row).transpose()
}

/// Reports, newest first (of one agency when given).
pub async fn list(conn: &mut Conn, agency: Option<&str>, limit: i64) -> Result<Vec<ReportRow>, SqlError> {
    let sql = format!(
        "SELECT {REPORT_COLUMNS} FROM usage_reports WHERE ($1 = '' OR agency_code = $1) \
         ORDER BY issued_at DESC, agency_code LIMIT $2"
    );
    let rows = sqlx::query(AssertSqlSafe(sql)).bind(agency.unwrap_or("")).bind(limit).fetch_all(&mut *conn).await?;
    rows.iter().map(report_row).collect()
}

/// Writes an issued report with its rows and recommendations.
pub async fn insert(
    conn: &mut Conn,
    report: &ReportRow,
    lines: &[ReportLine],
    recommendations: &[RecommendationRow],
) -> Result<(), SqlError> {
    let sql = format!("INSERT INTO usage_reports ({REPORT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)");
    sqlx::query(AssertSqlSafe(sql))
        .bind(&report.id)
        .bind(&report.agency_code)
        .bind(&report.first_month)
        .bind(&report.last_month)
        .bind(report.issued_at)
        .bind(&report.issued_by)
        .bind(report.deadline_at)
        .bind(report.line_count)
        .bind(report.recommendation_count)
        .execute(&mut *conn)
        .await?;
    let (source, int) = json_rows(conn, 2);
    let sql = format!(
        "INSERT INTO usage_report_rows (report_id, row_no, phone_number, line_plan, device_id, serial, device_type, \
           holder_id, holder_name, months, voice_minutes, messages, data_kb, international_cents, activity) \
         SELECT $1, (j.value ->> 0){int}, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, j.value ->> 5, \
           j.value ->> 6, j.value ->> 7, (j.value ->> 8){int}, (j.value ->> 9){int}, (j.value ->> 10){int}, \
           (j.value ->> 11){int}, (j.value ->> 12){int}, j.value ->> 13 FROM {source}"
    );
    insert_json(conn, &sql, Some(&report.id), lines, |l| {
        serde_json::json!([
            l.row_no,
            l.phone_number,
            l.line_plan,
            l.device_id,
            l.serial,
            l.device_type,
            l.holder_id,
            l.holder_name,
            l.months,
            l.voice_minutes,
            l.messages,
            l.data_kb,
            l.international_cents,
            l.activity
        ])
    })
    .await?;
    let (source, int) = json_rows(conn, 1);
    let sql = format!(
        "INSERT INTO usage_recommendations ({RECOMMENDATION_COLUMNS}) \
         SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, j.value ->> 5, \
           j.value ->> 6, j.value ->> 7, j.value ->> 8, j.value ->> 9, j.value ->> 10, j.value ->> 11, \
           (j.value ->> 12){int}, (j.value ->> 13){int}, j.value ->> 14 FROM {source}"
    );
    insert_json(conn, &sql, None, recommendations, |r| {
        serde_json::json!([
            r.id,
            r.report_id,
            r.agency_code,
            r.kind,
            r.line_id,
            r.phone_number,
            r.device_id,
            r.person_id,
            r.detail,
            r.status,
            r.explanation,
            r.decided_by,
            r.decided_at,
            r.deadline_at,
            r.request_id
        ])
    })
    .await
}

/// The source of an insert reading its rows from parameter `$n`, a JSON array of arrays, and
/// the cast an integer element needs.
fn json_rows(conn: &Conn, n: u8) -> (String, &'static str) {
    if crate::is_postgres(conn) {
        (format!("json_array_elements(${n}::json) AS j(value)"), "::bigint")
    } else {
        // Each element read without parsing it again.
        (format!("jsonb_each(${n}) AS j"), "")
    }
}

/// Runs `sql` once for every 5,000 of `items`, binding `lead` (when given) and then the chunk
/// as one JSON array of `row`'s arrays: one parameter however many rows.
async fn insert_json<T>(
    conn: &mut Conn,
    sql: &str,
    lead: Option<&str>,
    items: &[T],
    row: impl Fn(&T) -> serde_json::Value,
) -> Result<(), SqlError> {
    for chunk in items.chunks(5_000) {
        let json: Vec<serde_json::Value> = chunk.iter().map(&row).collect();
        let json = serde_json::to_string(&json).map_err(|e| SqlError::Encode(Box::new(e)))?;
        let mut query = sqlx::query(AssertSqlSafe(sql.to_string()));
        if let Some(lead) = lead {
            query = query.bind(lead.to_string());
        }
        query.bind(json).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Writes an issued report's people, in the transaction that wrote the report.
pub async fn insert_people(conn: &mut Conn, report_id: &str, people: &[ReportPerson]) -> Result<(), SqlError> {
    let (source, int) = json_rows(conn, 2);
    let sql = format!(
        "INSERT INTO usage_report_people (report_id, person_id, person_name, lines, months, voice_minutes, messages, \
           data_kb, international_cents, activity) \
         SELECT $1, j.value ->> 0, j.value ->> 1, (j.value ->> 2){int}, (j.value ->> 3){int}, (j.value ->> 4){int}, \
           (j.value ->> 5){int}, (j.value ->> 6){int}, (j.value ->> 7){int}, j.value ->> 8 FROM {source}"
    );
    insert_json(conn, &sql, Some(report_id), people, |p| {
        serde_json::json!([
            p.person_id,
            p.person_name,
            p.lines,
            p.months,
            p.voice_minutes,
            p.messages,
            p.data_kb,
            p.international_cents,
            p.activity
        ])
    })
    .await
}

/// A report's people by person id, a page after `after_person` (`""`: from the first).
pub async fn people(
    conn: &mut Conn,
    report: &str,
    after_person: &str,
    limit: i64,
) -> Result<Vec<ReportPerson>, SqlError> {
    let rows = sqlx::query(
        "SELECT person_id, person_name, lines, months, voice_minutes, messages, data_kb, international_cents, \
         activity FROM usage_report_people WHERE report_id = $1 AND person_id > $2 ORDER BY person_id LIMIT $3",
    )
    .bind(report)
    .bind(after_person)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ReportPerson {
                person_id: r.try_get("person_id")?,
                person_name: r.try_get("person_name")?,
                lines: r.try_get("lines")?,
                months: r.try_get("months")?,
                voice_minutes: r.try_get("voice_minutes")?,
                messages: r.try_get("messages")?,
                data_kb: r.try_get("data_kb")?,
                international_cents: r.try_get("international_cents")?,
                activity: r.try_get("activity")?,
            })
        })
        .collect()
}

/// A report's people counted by activity level, in SQL: `(activity, people)`.
pub async fn people_counts(conn: &mut Conn, report: &str) -> Result<Vec<(String, i64)>, SqlError> {
    let rows = sqlx::query(
        "SELECT activity, COUNT(*) AS people FROM usage_report_people WHERE report_id = $1 \
         GROUP BY activity ORDER BY activity",
    )
    .bind(report)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| Ok((r.try_get("activity")?, r.try_get("people")?))).collect()
}

/// A report's rows in order, a page after `after_row`.
pub async fn rows(conn: &mut Conn, report: &str, after_row: i64, limit: i64) -> Result<Vec<ReportLine>, SqlError> {
    let rows = sqlx::query(
        "SELECT row_no, phone_number, line_plan, device_id, serial, device_type, holder_id, holder_name, months, \
         voice_minutes, messages, data_kb, international_cents, activity FROM usage_report_rows \
         WHERE report_id = $1 AND row_no > $2 ORDER BY row_no LIMIT $3",
    )
    .bind(report)
    .bind(after_row)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ReportLine {
                row_no: r.try_get("row_no")?,
                phone_number: r.try_get("phone_number")?,
                line_plan: r.try_get("line_plan")?,
                device_id: r.try_get("device_id")?,
                serial: r.try_get("serial")?,
                device_type: r.try_get("device_type")?,
                holder_id: r.try_get("holder_id")?,
                holder_name: r.try_get("holder_name")?,
                months: r.try_get("months")?,
                voice_minutes: r.try_get("voice_minutes")?,
                messages: r.try_get("messages")?,
                data_kb: r.try_get("data_kb")?,
                international_cents: r.try_get("international_cents")?,
                activity: r.try_get("activity")?,
            })
        })
        .collect()
}

/// A report's recommendations, by kind.
pub async fn recommendations(conn: &mut Conn, report: &str) -> Result<Vec<RecommendationRow>, SqlError> {
    let sql =
        format!("SELECT {RECOMMENDATION_COLUMNS} FROM usage_recommendations WHERE report_id = $1 ORDER BY kind, id");
    let rows = sqlx::query(AssertSqlSafe(sql)).bind(report).fetch_all(&mut *conn).await?;
    rows.iter().map(recommendation_row).collect()
}

pub async fn recommendation(conn: &mut Conn, id: &str) -> Result<Option<RecommendationRow>, SqlError> {
    let sql = format!("SELECT {RECOMMENDATION_COLUMNS} FROM usage_recommendations WHERE id = $1");
    let row = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(recommendation_row).transpose()
}

/// Pending recommendations whose window closed at or before `now`: a batch of at most `limit`.
pub async fn due(conn: &mut Conn, now: i64, limit: i64) -> Result<Vec<RecommendationRow>, SqlError> {
    let sql = format!(
        "SELECT {RECOMMENDATION_COLUMNS} FROM usage_recommendations WHERE status = 'pending' AND deadline_at <= $1 \
         ORDER BY deadline_at, id LIMIT $2"
    );
    let rows = sqlx::query(AssertSqlSafe(sql)).bind(now).bind(limit).fetch_all(&mut *conn).await?;
    rows.iter().map(recommendation_row).collect()
}

/// Records the answer to a pending recommendation; false when it was answered already.
pub async fn decide(conn: &mut Conn, r: &RecommendationRow) -> Result<bool, SqlError> {
    let done = sqlx::query(
        "UPDATE usage_recommendations SET status = $2, explanation = $3, decided_by = $4, decided_at = $5 \
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(&r.id)
    .bind(&r.status)
    .bind(r.explanation.clone())
    .bind(r.decided_by.clone())
    .bind(r.decided_at)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Links an answered recommendation to the request that carries it out.
pub async fn set_request(conn: &mut Conn, id: &str, request_id: Option<&str>) -> Result<(), SqlError> {
    sqlx::query("UPDATE usage_recommendations SET request_id = $2 WHERE id = $1")
        .bind(id)
        .bind(request_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The recommendation a service request carries out, if any.
pub async fn by_request(conn: &mut Conn, request_id: &str) -> Result<Option<RecommendationRow>, SqlError> {
    let sql = format!("SELECT {RECOMMENDATION_COLUMNS} FROM usage_recommendations WHERE request_id = $1");
    let row = sqlx::query(AssertSqlSafe(sql)).bind(request_id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(recommendation_row).transpose()
}

/// A device in use with no carrier line, as a report lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinelessDevice {
    pub device_id: String,
    pub serial: Option<String>,
    pub device_type: String,
    pub holder_id: Option<String>,
}

/// What a report needs of an agency's directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgencyDirectory {
    /// Every device's id and serial.
    pub serials: Vec<(String, Option<String>)>,
    /// The devices in use (the states of `domain::plan::IN_USE`, with or without a holder) with
    /// no carrier line (`devices.line_id`, as plan compliance finds a device's line), by id.
    pub lineless: Vec<LinelessDevice>,
    /// Every person: id, name, employment status.
    pub people: Vec<(String, String, String)>,
}

/// `agency`'s devices (serials, and the devices in use with no line) and people (names and
/// employment status), for a report: each as one JSON page, one pass over the agency's devices.
pub async fn agency_directory(conn: &mut Conn, agency: &str) -> Result<AgencyDirectory, SqlError> {
    // Each as one JSON page: rows one by one cost several times more on SQLite.
    let (open, close) = if crate::is_postgres(conn) {
        ("COALESCE(json_agg(json_build_array(", ")), '[]'::json)::text")
    } else {
        ("json_group_array(json_array(", "))")
    };
    // States are a closed set of identifiers, written into the SQL.
    let states: Vec<String> = custody_domain::plan::IN_USE.iter().map(|s| format!("'{}'", s.as_str())).collect();
    let lineless = format!("state IN ({}) AND line_id IS NULL", states.join(", "));
    let sql = format!(
        "SELECT {open}id, serial, CASE WHEN {lineless} THEN device_type END, CASE WHEN {lineless} THEN holder_id END\
         {close} AS page FROM devices WHERE agency_code = $1"
    );
    let page: String = sqlx::query(AssertSqlSafe(sql)).bind(agency).fetch_one(&mut *conn).await?.try_get("page")?;
    type Device = (String, Option<String>, Option<String>, Option<String>);
    let devices: Vec<Device> = serde_json::from_str(&page).map_err(|e| SqlError::Decode(Box::new(e)))?;
    let mut directory = AgencyDirectory::default();
    for (id, serial, lineless_type, holder_id) in devices {
        if let Some(device_type) = lineless_type {
            directory.lineless.push(LinelessDevice {
                device_id: id.clone(),
                serial: serial.clone(),
                device_type,
                holder_id,
            });
        }
        directory.serials.push((id, serial));
    }
    directory.lineless.sort_by(|a, b| a.device_id.cmp(&b.device_id));
    let sql = format!(
        "SELECT {open}id, given_name || ' ' || family_name, status{close} AS page FROM people WHERE agency_code = $1"
    );
    let page: String = sqlx::query(AssertSqlSafe(sql)).bind(agency).fetch_one(&mut *conn).await?.try_get("page")?;
    directory.people = serde_json::from_str(&page).map_err(|e| SqlError::Decode(Box::new(e)))?;
    Ok(directory)
}

/// How many of a report's rows have each device type and activity level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityCount {
    /// `None`: the line was in no known device.
    pub device_type: Option<String>,
    /// `None`: devices with no carrier line.
    pub activity: Option<String>,
    pub lines: i64,
}

/// A report's rows counted by device type and activity level, in SQL (however many the rows).
pub async fn activity_counts(conn: &mut Conn, report: &str) -> Result<Vec<ActivityCount>, SqlError> {
    let rows = sqlx::query(
        "SELECT device_type, activity, COUNT(*) AS lines FROM usage_report_rows WHERE report_id = $1 \
         GROUP BY device_type, activity ORDER BY device_type, activity",
    )
    .bind(report)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ActivityCount {
                device_type: r.try_get("device_type")?,
                activity: r.try_get("activity")?,
                lines: r.try_get("lines")?,
            })
        })
        .collect()
}
