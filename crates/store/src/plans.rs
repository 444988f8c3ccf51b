//! Mobile Device Plan versions, one row per version and agency.

use custody_domain::plan::{PlanContent, PlanStatus};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Conn, SqlError, now_ms};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRow {
    pub id: String,
    pub agency_code: String,
    pub version: i64,
    pub status: PlanStatus,
    pub content: PlanContent,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub submitted_at: Option<i64>,
    pub certified_at: Option<i64>,
    pub certified_by: Option<String>,
    pub superseded_at: Option<i64>,
}

const COLUMNS: &str = "id, agency_code, version, status, content, created_by, created_at, updated_at, submitted_at, \
                       certified_at, certified_by, superseded_at";

fn decode_error(message: String) -> SqlError {
    SqlError::Decode(message.into())
}

fn from_row(row: &AnyRow) -> Result<PlanRow, SqlError> {
    let status: String = row.try_get("status")?;
    let content: String = row.try_get("content")?;
    Ok(PlanRow {
        id: row.try_get("id")?,
        agency_code: row.try_get("agency_code")?,
        version: row.try_get("version")?,
        status: PlanStatus::parse(&status).ok_or_else(|| decode_error(format!("plan status {status}")))?,
        content: serde_json::from_str(&content).map_err(|e| decode_error(e.to_string()))?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        submitted_at: row.try_get("submitted_at")?,
        certified_at: row.try_get("certified_at")?,
        certified_by: row.try_get("certified_by")?,
        superseded_at: row.try_get("superseded_at")?,
    })
}

fn content_json(content: &PlanContent) -> String {
    serde_json::to_string(content).expect("plan content serializes")
}

/// Every version of the agency's plan, newest first.
pub async fn versions(conn: &mut Conn, agency: &str) -> Result<Vec<PlanRow>, SqlError> {
    let sql = format!("SELECT {COLUMNS} FROM plans WHERE agency_code = $1 ORDER BY version DESC");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(agency).fetch_all(&mut *conn).await?;
    rows.iter().map(from_row).collect()
}

pub async fn get_version(conn: &mut Conn, agency: &str, version: i64) -> Result<Option<PlanRow>, SqlError> {
    let sql = format!("SELECT {COLUMNS} FROM plans WHERE agency_code = $1 AND version = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(agency).bind(version).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

/// The certified version in force, if any.
pub async fn certified(conn: &mut Conn, agency: &str) -> Result<Option<PlanRow>, SqlError> {
    let sql = format!("SELECT {COLUMNS} FROM plans WHERE agency_code = $1 AND status = 'certified'");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(agency).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

/// The open version (draft or submitted), if any: there is at most one.
pub async fn open_version(conn: &mut Conn, agency: &str) -> Result<Option<PlanRow>, SqlError> {
    let sql =
        format!("SELECT {COLUMNS} FROM plans WHERE agency_code = $1 AND status IN ('draft', 'submitted') LIMIT 1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(agency).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn insert(conn: &mut Conn, row: &PlanRow) -> Result<(), SqlError> {
    sqlx::query(
        "INSERT INTO plans (id, agency_code, version, status, content, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(&row.id)
    .bind(&row.agency_code)
    .bind(row.version)
    .bind(row.status.as_str())
    .bind(content_json(&row.content))
    .bind(&row.created_by)
    .bind(row.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn set_content(conn: &mut Conn, id: &str, content: &PlanContent) -> Result<(), SqlError> {
    sqlx::query("UPDATE plans SET content = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(content_json(content))
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Moves a version to `status`, stamping the matching time (and the certifier).
pub async fn set_status(
    conn: &mut Conn,
    id: &str,
    status: PlanStatus,
    certified_by: Option<&str>,
) -> Result<(), SqlError> {
    let now = now_ms();
    let stamp = match status {
        PlanStatus::Draft => "submitted_at = NULL",
        PlanStatus::Submitted => "submitted_at = $2",
        PlanStatus::Certified => "certified_at = $2",
        PlanStatus::Superseded => "superseded_at = $2",
    };
    let sql = format!(
        "UPDATE plans SET status = $4, updated_at = $2, certified_by = COALESCE($3, certified_by), {stamp} WHERE id = $1"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(now)
        .bind(certified_by)
        .bind(status.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The next version number of the agency's plan.
pub async fn next_version(conn: &mut Conn, agency: &str) -> Result<i64, SqlError> {
    let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM plans WHERE agency_code = $1")
        .bind(agency)
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get::<i64, _>("v")? + 1)
}

/// Per agency: the certified version (and when), and the open version's status, for the
/// compliance list. Agencies without any plan appear with `None`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanStanding {
    pub agency_code: String,
    pub agency_name: String,
    pub certified_version: Option<i64>,
    pub certified_at: Option<i64>,
    pub open_version: Option<i64>,
    pub open_status: Option<PlanStatus>,
}

pub async fn standings(conn: &mut Conn, agency: Option<&str>) -> Result<Vec<PlanStanding>, SqlError> {
    let rows = sqlx::query(
        "SELECT a.code, a.name, c.version AS certified_version, c.certified_at, o.version AS open_version, \
         o.status AS open_status FROM agencies a \
         LEFT JOIN plans c ON c.agency_code = a.code AND c.status = 'certified' \
         LEFT JOIN plans o ON o.agency_code = a.code AND o.status IN ('draft', 'submitted') \
         WHERE ($1 = '' OR a.code = $1) ORDER BY a.code",
    )
    .bind(agency.unwrap_or(""))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let open_status: Option<String> = row.try_get("open_status")?;
            Ok(PlanStanding {
                agency_code: row.try_get("code")?,
                agency_name: row.try_get("name")?,
                certified_version: row.try_get("certified_version")?,
                certified_at: row.try_get("certified_at")?,
                open_version: row.try_get("open_version")?,
                open_status: open_status.as_deref().and_then(PlanStatus::parse),
            })
        })
        .collect()
}
