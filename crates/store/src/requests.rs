//! Service requests, their approvals, comments and status timeline.

use custody_domain::catalog::DeviceType;
use custody_domain::plan::Finding;
use custody_domain::request::{Details, RequestType, Stage, Status};
use serde::Deserialize;
use sqlx::Row;

use crate::{Conn, SqlError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRow {
    pub id: String,
    pub number: i64,
    pub agency_code: String,
    pub request_type: RequestType,
    pub status: Status,
    pub requester_id: String,
    pub requester_label: String,
    pub subject_person_id: Option<String>,
    /// For device orders: the ordered model's type and whether its line carries data.
    pub device_type: Option<DeviceType>,
    pub data_plan: bool,
    /// `standard` or `agency_funded` for device orders.
    pub funding: Option<String>,
    pub details: Details,
    /// The plan check's findings as of the last submission or decision.
    pub findings: Vec<Finding>,
    pub chain: Vec<Stage>,
    /// The stage whose decision is awaited, while the request waits for one.
    pub waiting_stage: Option<Stage>,
    /// One line for lists and e-mails.
    pub summary: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub submitted_at: Option<i64>,
    pub decided_at: Option<i64>,
    pub fulfilled_at: Option<i64>,
}

const COLUMNS: &str = "id, number, agency_code, request_type, status, requester_id, requester_label, \
                       subject_person_id, device_type, data_plan, funding, details, findings, chain, waiting_stage, \
                       summary, created_at, updated_at, submitted_at, decided_at, fulfilled_at";

fn decode_error(message: impl std::fmt::Display) -> SqlError {
    SqlError::Decode(message.to_string().into())
}

fn parse<T: std::str::FromStr<Err = String>>(raw: &str) -> Result<T, SqlError> {
    raw.parse().map_err(decode_error)
}

/// A request as a page query's JSON (or a single row) carries it.
#[derive(Deserialize)]
struct Raw {
    id: String,
    number: i64,
    agency_code: String,
    request_type: String,
    status: String,
    requester_id: String,
    requester_label: String,
    subject_person_id: Option<String>,
    device_type: Option<String>,
    data_plan: i64,
    funding: Option<String>,
    details: String,
    findings: String,
    chain: String,
    waiting_stage: Option<String>,
    summary: String,
    created_at: i64,
    updated_at: i64,
    submitted_at: Option<i64>,
    decided_at: Option<i64>,
    fulfilled_at: Option<i64>,
}

impl Raw {
    fn from_row(row: &sqlx::any::AnyRow) -> Result<Raw, SqlError> {
        Ok(Raw {
            id: row.try_get("id")?,
            number: row.try_get("number")?,
            agency_code: row.try_get("agency_code")?,
            request_type: row.try_get("request_type")?,
            status: row.try_get("status")?,
            requester_id: row.try_get("requester_id")?,
            requester_label: row.try_get("requester_label")?,
            subject_person_id: row.try_get("subject_person_id")?,
            device_type: row.try_get("device_type")?,
            data_plan: row.try_get("data_plan")?,
            funding: row.try_get("funding")?,
            details: row.try_get("details")?,
            findings: row.try_get("findings")?,
            chain: row.try_get("chain")?,
            waiting_stage: row.try_get("waiting_stage")?,
            summary: row.try_get("summary")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            submitted_at: row.try_get("submitted_at")?,
            decided_at: row.try_get("decided_at")?,
            fulfilled_at: row.try_get("fulfilled_at")?,
        })
    }

    fn decode(self) -> Result<RequestRow, SqlError> {
        Ok(RequestRow {
            id: self.id,
            number: self.number,
            agency_code: self.agency_code,
            request_type: parse(&self.request_type)?,
            status: parse(&self.status)?,
            requester_id: self.requester_id,
            requester_label: self.requester_label,
            subject_person_id: self.subject_person_id,
            device_type: self.device_type.as_deref().map(parse).transpose()?,
            data_plan: self.data_plan != 0,
            funding: self.funding,
            details: serde_json::from_str(&self.details).map_err(decode_error)?,
            findings: serde_json::from_str(&self.findings).map_err(decode_error)?,
            chain: self.chain.split(',').filter(|s| !s.is_empty()).map(parse).collect::<Result<_, _>>()?,
            waiting_stage: self.waiting_stage.as_deref().map(parse).transpose()?,
            summary: self.summary,
            created_at: self.created_at,
            updated_at: self.updated_at,
            submitted_at: self.submitted_at,
            decided_at: self.decided_at,
            fulfilled_at: self.fulfilled_at,
        })
    }
}

fn chain_csv(chain: &[Stage]) -> String {
    chain.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
}

/// The next request number (a counter row incremented under its write lock).
pub async fn next_number(conn: &mut Conn) -> Result<i64, SqlError> {
    let row = sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'request_number' RETURNING value")
        .fetch_one(&mut *conn)
        .await?;
    row.try_get("value")
}

pub async fn insert(conn: &mut Conn, r: &RequestRow) -> Result<(), SqlError> {
    sqlx::query(
        "INSERT INTO requests (id, number, agency_code, request_type, status, requester_id, requester_label, \
         subject_person_id, device_type, data_plan, funding, details, findings, chain, waiting_stage, summary, \
         created_at, updated_at, submitted_at, decided_at, fulfilled_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
    )
    .bind(&r.id)
    .bind(r.number)
    .bind(&r.agency_code)
    .bind(r.request_type.as_str())
    .bind(r.status.as_str())
    .bind(&r.requester_id)
    .bind(&r.requester_label)
    .bind(&r.subject_person_id)
    .bind(r.device_type.map(|t| t.as_str()))
    .bind(i64::from(r.data_plan))
    .bind(&r.funding)
    .bind(serde_json::to_string(&r.details).expect("details serialize"))
    .bind(serde_json::to_string(&r.findings).expect("findings serialize"))
    .bind(chain_csv(&r.chain))
    .bind(r.waiting_stage.map(|s| s.as_str()))
    .bind(&r.summary)
    .bind(r.created_at)
    .bind(r.updated_at)
    .bind(r.submitted_at)
    .bind(r.decided_at)
    .bind(r.fulfilled_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes every changeable column of `r` (status, stage, findings, fields of a draft, times).
pub async fn update(conn: &mut Conn, r: &RequestRow) -> Result<(), SqlError> {
    sqlx::query(
        "UPDATE requests SET status = $2, subject_person_id = $3, device_type = $4, data_plan = $5, funding = $6, \
         details = $7, findings = $8, chain = $9, waiting_stage = $10, summary = $11, updated_at = $12, \
         submitted_at = $13, decided_at = $14, fulfilled_at = $15 WHERE id = $1",
    )
    .bind(&r.id)
    .bind(r.status.as_str())
    .bind(&r.subject_person_id)
    .bind(r.device_type.map(|t| t.as_str()))
    .bind(i64::from(r.data_plan))
    .bind(&r.funding)
    .bind(serde_json::to_string(&r.details).expect("details serialize"))
    .bind(serde_json::to_string(&r.findings).expect("findings serialize"))
    .bind(chain_csv(&r.chain))
    .bind(r.waiting_stage.map(|s| s.as_str()))
    .bind(&r.summary)
    .bind(r.updated_at)
    .bind(r.submitted_at)
    .bind(r.decided_at)
    .bind(r.fulfilled_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get(conn: &mut Conn, id: &str) -> Result<Option<RequestRow>, SqlError> {
    let sql = format!("SELECT {COLUMNS} FROM requests WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(Raw::from_row).transpose()?.map(Raw::decode).transpose()
}

/// Which requests a list shows.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub agency: Option<String>,
    pub status: Option<Status>,
    pub request_type: Option<RequestType>,
    pub requester_id: Option<String>,
    pub subject_person_id: Option<String>,
    /// Only requests awaiting one of these stages (agency stages only inside `agency`), not
    /// requested by `exclude_requester`: "waiting for my approval".
    pub waiting_for: Option<Vec<Stage>>,
    pub exclude_requester: Option<String>,
}

/// Requests newest first (by number), before `before`, at most `limit`, as one JSON page.
pub async fn list(
    conn: &mut Conn,
    filter: &RequestFilter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<RequestRow>, SqlError> {
    let mut sql = format!("SELECT {COLUMNS} FROM requests WHERE 1 = 1");
    let mut binds: Vec<String> = Vec::new();
    let mut bind = |sql: &mut String, clause: &str, value: String| {
        binds.push(value);
        sql.push_str(&clause.replace('?', &format!("${}", binds.len())));
    };
    if let Some(agency) = &filter.agency {
        bind(&mut sql, " AND agency_code = ?", agency.clone());
    }
    if let Some(status) = filter.status {
        bind(&mut sql, " AND status = ?", status.as_str().into());
    }
    if let Some(kind) = filter.request_type {
        bind(&mut sql, " AND request_type = ?", kind.as_str().into());
    }
    if let Some(requester) = &filter.requester_id {
        bind(&mut sql, " AND requester_id = ?", requester.clone());
    }
    if let Some(person) = &filter.subject_person_id {
        bind(&mut sql, " AND subject_person_id = ?", person.clone());
    }
    if let Some(stages) = &filter.waiting_for {
        // Stage names are a closed set of identifiers, written into the SQL.
        let names: Vec<String> = stages.iter().map(|s| format!("'{}'", s.as_str())).collect();
        let names = if names.is_empty() { "''".to_string() } else { names.join(", ") };
        sql.push_str(&format!(" AND waiting_stage IN ({names})"));
    }
    if let Some(me) = &filter.exclude_requester {
        bind(&mut sql, " AND requester_id <> ?", me.clone());
    }
    if let Some(before) = before {
        sql.push_str(&format!(" AND number < {before}"));
    }
    sql.push_str(&format!(" ORDER BY number DESC LIMIT {}", limit.max(0)));
    let columns: Vec<&str> = COLUMNS.split(", ").collect();
    let sql = crate::page_as_json(conn, &sql, &columns, "number DESC");
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for value in binds {
        query = query.bind(value);
    }
    let page: String = query.fetch_one(&mut *conn).await?.try_get("page")?;
    let rows: Vec<Raw> = serde_json::from_str(&page).map_err(decode_error)?;
    let rows = crate::sort_page(conn, rows, |a, b| b.number.cmp(&a.number));
    rows.into_iter().map(Raw::decode).collect()
}

/// Requests awaiting one of `stages` (inside `agency` when given), not requested by `me`.
pub async fn count_waiting(conn: &mut Conn, stages: &[Stage], agency: Option<&str>, me: &str) -> Result<i64, SqlError> {
    if stages.is_empty() {
        return Ok(0);
    }
    let names: Vec<String> = stages.iter().map(|s| format!("'{}'", s.as_str())).collect();
    let sql = format!(
        "SELECT COUNT(*) AS n FROM requests WHERE waiting_stage IN ({}) AND ($1 = '' OR agency_code = $1) \
         AND requester_id <> $2",
        names.join(", ")
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(agency.unwrap_or("")).bind(me).fetch_one(&mut *conn).await?;
    row.try_get("n")
}

/// What a person holds or is about to hold by device orders that were approved (until the
/// device inventory of step 4 takes over): device type and whether it carries data.
pub async fn holdings(conn: &mut Conn, person_id: &str, except: &str) -> Result<Vec<(DeviceType, bool)>, SqlError> {
    let rows = sqlx::query(
        "SELECT device_type, data_plan FROM requests WHERE subject_person_id = $1 AND id <> $2 \
         AND status IN ('approved', 'in_fulfillment', 'fulfilled') AND device_type IS NOT NULL",
    )
    .bind(person_id)
    .bind(except)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let device_type: String = row.try_get("device_type")?;
            Ok((parse(&device_type)?, row.try_get::<i64, _>("data_plan")? != 0))
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRow {
    pub id: String,
    pub request_id: String,
    pub stage: Stage,
    /// `approved` or `rejected`.
    pub decision: String,
    pub reason: Option<String>,
    pub override_reason: Option<String>,
    /// The findings the approver overrode.
    pub overridden: Vec<Finding>,
    pub decided_by: String,
    pub decided_by_label: String,
    pub decided_at: i64,
}

pub async fn insert_approval(conn: &mut Conn, a: &ApprovalRow) -> Result<(), SqlError> {
    sqlx::query(
        "INSERT INTO request_approvals (id, request_id, stage, decision, reason, override_reason, overridden, \
         decided_by, decided_by_label, decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&a.id)
    .bind(&a.request_id)
    .bind(a.stage.as_str())
    .bind(&a.decision)
    .bind(&a.reason)
    .bind(&a.override_reason)
    .bind(serde_json::to_string(&a.overridden).expect("findings serialize"))
    .bind(&a.decided_by)
    .bind(&a.decided_by_label)
    .bind(a.decided_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn approvals(conn: &mut Conn, request_id: &str) -> Result<Vec<ApprovalRow>, SqlError> {
    let rows = sqlx::query(
        "SELECT id, request_id, stage, decision, reason, override_reason, overridden, decided_by, decided_by_label, \
         decided_at FROM request_approvals WHERE request_id = $1 ORDER BY decided_at, id",
    )
    .bind(request_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let stage: String = row.try_get("stage")?;
            let overridden: String = row.try_get("overridden")?;
            Ok(ApprovalRow {
                id: row.try_get("id")?,
                request_id: row.try_get("request_id")?,
                stage: parse(&stage)?,
                decision: row.try_get("decision")?,
                reason: row.try_get("reason")?,
                override_reason: row.try_get("override_reason")?,
                overridden: serde_json::from_str(&overridden).map_err(decode_error)?,
                decided_by: row.try_get("decided_by")?,
                decided_by_label: row.try_get("decided_by_label")?,
                decided_at: row.try_get("decided_at")?,
            })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentRow {
    pub id: String,
    pub request_id: String,
    pub author_id: Option<String>,
    pub author_label: String,
    pub body: String,
    pub created_at: i64,
}

pub async fn insert_comment(conn: &mut Conn, c: &CommentRow) -> Result<(), SqlError> {
    sqlx::query(
        "INSERT INTO request_comments (id, request_id, author_id, author_label, body, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&c.id)
    .bind(&c.request_id)
    .bind(&c.author_id)
    .bind(&c.author_label)
    .bind(&c.body)
    .bind(c.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn comments(conn: &mut Conn, request_id: &str) -> Result<Vec<CommentRow>, SqlError> {
    let rows = sqlx::query(
        "SELECT id, request_id, author_id, author_label, body, created_at FROM request_comments \
         WHERE request_id = $1 ORDER BY created_at, id",
    )
    .bind(request_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(CommentRow {
                id: row.try_get("id")?,
                request_id: row.try_get("request_id")?,
                author_id: row.try_get("author_id")?,
                author_label: row.try_get("author_label")?,
                body: row.try_get("body")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionRow {
    pub id: String,
    pub request_id: String,
    pub request_type: RequestType,
    pub from_status: Option<Status>,
    pub to_status: Status,
    pub event: String,
    pub actor_label: String,
    /// When `from_status` was entered.
    pub entered_at: Option<i64>,
    pub at: i64,
}

pub async fn insert_transition(conn: &mut Conn, t: &TransitionRow) -> Result<(), SqlError> {
    sqlx::query(
        "INSERT INTO request_transitions (id, request_id, request_type, from_status, to_status, event, actor_label, \
         entered_at, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&t.id)
    .bind(&t.request_id)
    .bind(t.request_type.as_str())
    .bind(t.from_status.map(|s| s.as_str()))
    .bind(t.to_status.as_str())
    .bind(&t.event)
    .bind(&t.actor_label)
    .bind(t.entered_at)
    .bind(t.at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn transitions(conn: &mut Conn, request_id: &str) -> Result<Vec<TransitionRow>, SqlError> {
    let rows = sqlx::query(
        "SELECT id, request_id, request_type, from_status, to_status, event, actor_label, entered_at, at \
         FROM request_transitions WHERE request_id = $1 ORDER BY at, id",
    )
    .bind(request_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get("request_type")?;
            let from: Option<String> = row.try_get("from_status")?;
            let to: String = row.try_get("to_status")?;
            Ok(TransitionRow {
                id: row.try_get("id")?,
                request_id: row.try_get("request_id")?,
                request_type: parse(&kind)?,
                from_status: from.as_deref().map(parse).transpose()?,
                to_status: parse(&to)?,
                event: row.try_get("event")?,
                actor_label: row.try_get("actor_label")?,
                entered_at: row.try_get("entered_at")?,
                at: row.try_get("at")?,
            })
        })
        .collect()
}

/// One time spent in a status: the request type, the status left, and how long (ms).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StageDuration {
    pub request_type: String,
    pub from_status: String,
    pub ms: i64,
}

/// Counts one stay of `ms` in `stage` into the day's histogram (`bucket` from the caller).
pub async fn count_stay(
    conn: &mut Conn,
    day: &str,
    agency: &str,
    request_type: &str,
    stage: &str,
    bucket: i64,
) -> Result<(), SqlError> {
    sqlx::query(
        "INSERT INTO request_stage_stats (day, agency_code, request_type, stage, bucket, n) \
         VALUES ($1, $2, $3, $4, $5, 1) ON CONFLICT (day, agency_code, request_type, stage, bucket) \
         DO UPDATE SET n = request_stage_stats.n + 1",
    )
    .bind(day)
    .bind(agency)
    .bind(request_type)
    .bind(stage)
    .bind(bucket)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One bar of a stage histogram.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StageCount {
    pub request_type: String,
    pub stage: String,
    pub bucket: i64,
    pub n: i64,
}

/// The stays that ended on or after `since_day`, summed over days (and agencies unless one is
/// given), per request type, stage and bucket.
pub async fn stage_histogram(
    conn: &mut Conn,
    since_day: &str,
    agency: Option<&str>,
) -> Result<Vec<StageCount>, SqlError> {
    let inner = "SELECT request_type, stage, bucket, SUM(n) AS n FROM request_stage_stats \
                 WHERE day >= $1 AND ($2 = '' OR agency_code = $2) GROUP BY request_type, stage, bucket";
    let sql = crate::page_as_json(conn, inner, &["request_type", "stage", "bucket", "n"], "request_type");
    let row =
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(since_day).bind(agency.unwrap_or("")).fetch_one(&mut *conn).await?;
    let page: String = row.try_get("page")?;
    serde_json::from_str(&page).map_err(decode_error)
}

/// Every completed stay with its agency and the time it ended, for rebuilding the histogram
/// after transitions were written directly (the demo's backdating).
pub async fn all_stays(conn: &mut Conn) -> Result<Vec<(String, StageDuration, i64)>, SqlError> {
    #[derive(Deserialize)]
    struct Stay {
        agency_code: String,
        request_type: String,
        from_status: String,
        ms: i64,
        at: i64,
    }
    let inner = "SELECT r.agency_code, t.request_type, t.from_status, t.at - t.entered_at AS ms, t.at \
                 FROM request_transitions t JOIN requests r ON r.id = t.request_id \
                 WHERE t.entered_at IS NOT NULL AND t.from_status IS NOT NULL";
    let sql = crate::page_as_json(conn, inner, &["agency_code", "request_type", "from_status", "ms", "at"], "at");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(&mut *conn).await?;
    let page: String = row.try_get("page")?;
    let stays: Vec<Stay> = serde_json::from_str(&page).map_err(decode_error)?;
    Ok(stays
        .into_iter()
        .map(|s| {
            (s.agency_code, StageDuration { request_type: s.request_type, from_status: s.from_status, ms: s.ms }, s.at)
        })
        .collect())
}

/// Empties the stage histogram (before a rebuild).
pub async fn clear_stage_stats(conn: &mut Conn) -> Result<(), SqlError> {
    sqlx::query("DELETE FROM request_stage_stats").execute(&mut *conn).await?;
    Ok(())
}
