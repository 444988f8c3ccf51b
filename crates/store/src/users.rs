//! Users (people who sign in, and service accounts that hold tokens) and sign-in throttling.

use custody_domain::role::RoleSet;
use custody_domain::user::UserKind;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Conn, SqlError, now_ms};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: String,
    pub kind: UserKind,
    pub email: Option<String>,
    pub display_name: String,
    pub roles: RoleSet,
    pub agency_code: Option<String>,
    pub password_hash: Option<String>,
    pub disabled: bool,
    /// An agency approver designated as the agency's business/financial executive.
    pub financial_executive: bool,
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
    pub last_login_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a new user is made of.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub id: &'a str,
    pub kind: UserKind,
    pub email: Option<&'a str>,
    pub display_name: &'a str,
    pub roles: &'a RoleSet,
    pub agency_code: Option<&'a str>,
    pub password_hash: Option<&'a str>,
}

const COLUMNS: &str = "id, kind, email, display_name, roles, agency_code, password_hash, disabled, \
                       financial_executive, failed_logins, locked_until, last_login_at, created_at, updated_at";

fn from_row(row: &AnyRow) -> Result<UserRow, SqlError> {
    let kind: String = row.try_get("kind")?;
    let roles: String = row.try_get("roles")?;
    let disabled: i64 = row.try_get("disabled")?;
    Ok(UserRow {
        id: row.try_get("id")?,
        kind: UserKind::parse(&kind),
        email: row.try_get("email")?,
        display_name: row.try_get("display_name")?,
        roles: RoleSet::parse_csv(&roles).map_err(|e| SqlError::Decode(Box::new(e)))?,
        agency_code: row.try_get("agency_code")?,
        password_hash: row.try_get("password_hash")?,
        disabled: disabled != 0,
        financial_executive: row.try_get::<i64, _>("financial_executive")? != 0,
        failed_logins: row.try_get("failed_logins")?,
        locked_until: row.try_get("locked_until")?,
        last_login_at: row.try_get("last_login_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub async fn insert(conn: &mut Conn, user: &NewUser<'_>) -> Result<(), SqlError> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO users (id, kind, email, display_name, roles, agency_code, password_hash, disabled, \
         failed_logins, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, $8, $8)",
    )
    .bind(user.id)
    .bind(user.kind.as_str())
    .bind(user.email)
    .bind(user.display_name)
    .bind(user.roles.to_csv())
    .bind(user.agency_code)
    .bind(user.password_hash)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get(conn: &mut Conn, id: &str) -> Result<Option<UserRow>, SqlError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn by_email(conn: &mut Conn, email: &str) -> Result<Option<UserRow>, SqlError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE email = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(email).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

/// Users ordered by (display name, id) after `after`; `agency` narrows to one agency.
pub async fn list(
    conn: &mut Conn,
    agency: Option<&str>,
    q: Option<&str>,
    after: Option<(&str, &str)>,
    descending: bool,
    limit: i64,
) -> Result<Vec<UserRow>, SqlError> {
    let mut sql = format!("SELECT {COLUMNS} FROM users WHERE 1 = 1");
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    if agency.is_some() {
        sql.push_str(&format!(" AND agency_code = ${}", next()));
    }
    if q.is_some() {
        let p = next();
        sql.push_str(&format!(
            " AND (LOWER(display_name) LIKE ${p} ESCAPE '\\' OR LOWER(COALESCE(email, '')) LIKE ${p} ESCAPE '\\')"
        ));
    }
    if after.is_some() {
        let (a, b) = (next(), next());
        let op = if descending { "<" } else { ">" };
        sql.push_str(&format!(" AND (display_name, id) {op} (${a}, ${b})"));
    }
    let dir = if descending { " DESC" } else { "" };
    sql.push_str(&format!(" ORDER BY display_name{dir}, id{dir} LIMIT {}", limit.max(0)));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    if let Some(agency) = agency {
        query = query.bind(agency);
    }
    if let Some(q) = q {
        query = query.bind(crate::like_pattern(&q.to_lowercase()));
    }
    if let Some((name, id)) = after {
        query = query.bind(name).bind(id);
    }
    let rows = query.fetch_all(&mut *conn).await?;
    rows.iter().map(from_row).collect()
}

pub async fn update_access(
    conn: &mut Conn,
    id: &str,
    display_name: &str,
    roles: &RoleSet,
    agency_code: Option<&str>,
    disabled: bool,
    financial_executive: bool,
) -> Result<(), SqlError> {
    sqlx::query(
        "UPDATE users SET display_name = $2, roles = $3, agency_code = $4, disabled = $5, updated_at = $6, \
         financial_executive = $7 WHERE id = $1",
    )
    .bind(id)
    .bind(display_name)
    .bind(roles.to_csv())
    .bind(agency_code)
    .bind(i64::from(disabled))
    .bind(now_ms())
    .bind(i64::from(financial_executive))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn set_password(conn: &mut Conn, id: &str, password_hash: &str) -> Result<(), SqlError> {
    sqlx::query(
        "UPDATE users SET password_hash = $2, failed_logins = 0, locked_until = NULL, updated_at = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(password_hash)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records a failed sign-in; locks the account until `lock_until` once `max_failures` is reached.
/// Returns the failure count after this one.
pub async fn record_failure(conn: &mut Conn, id: &str, max_failures: i64, lock_until: i64) -> Result<i64, SqlError> {
    let row = sqlx::query(
        "UPDATE users SET failed_logins = failed_logins + 1, \
         locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until END \
         WHERE id = $1 RETURNING failed_logins",
    )
    .bind(id)
    .bind(max_failures)
    .bind(lock_until)
    .fetch_one(&mut *conn)
    .await?;
    row.try_get("failed_logins")
}

/// Clears the failure count after a lock ran out or a sign-in succeeded.
pub async fn record_success(conn: &mut Conn, id: &str) -> Result<(), SqlError> {
    sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Resets an expired lock so that counting starts again.
pub async fn clear_expired_lock(conn: &mut Conn, id: &str, now: i64) -> Result<(), SqlError> {
    sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1 AND locked_until <= $2")
        .bind(id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records a failed sign-in from `addr`.
pub async fn record_address_failure(conn: &mut Conn, addr: &str, at: i64) -> Result<(), SqlError> {
    sqlx::query("INSERT INTO login_failures (source_addr, at) VALUES ($1, $2)")
        .bind(addr)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Failed sign-ins from `addr` since `since`.
pub async fn address_failures_since(conn: &mut Conn, addr: &str, since: i64) -> Result<i64, SqlError> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM login_failures WHERE source_addr = $1 AND at >= $2")
        .bind(addr)
        .bind(since)
        .fetch_one(&mut *conn)
        .await?;
    row.try_get("n")
}

/// Forgets address failures older than `before`.
pub async fn prune_address_failures(conn: &mut Conn, before: i64) -> Result<u64, SqlError> {
    let done = sqlx::query("DELETE FROM login_failures WHERE at < $1").bind(before).execute(&mut *conn).await?;
    Ok(done.rows_affected())
}

pub async fn count(conn: &mut Conn) -> Result<i64, SqlError> {
    sqlx::query("SELECT COUNT(*) AS n FROM users").fetch_one(&mut *conn).await?.try_get("n")
}
