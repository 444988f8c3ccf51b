//! API tokens, stored as SHA-256 hashes of their secret.

use custody_domain::role::RoleSet;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Conn, SqlError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub prefix: String,
    pub roles: RoleSet,
    pub agency_code: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub name: &'a str,
    pub secret_hash: &'a str,
    pub prefix: &'a str,
    pub roles: &'a RoleSet,
    pub agency_code: Option<&'a str>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

const COLUMNS: &str = "id, user_id, name, prefix, roles, agency_code, created_at, last_used_at, expires_at, revoked_at";

fn from_row(row: &AnyRow) -> Result<TokenRow, SqlError> {
    let roles: String = row.try_get("roles")?;
    Ok(TokenRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        roles: RoleSet::parse_csv(&roles).map_err(|e| SqlError::Decode(Box::new(e)))?,
        agency_code: row.try_get("agency_code")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

pub async fn insert(conn: &mut Conn, token: &NewToken<'_>) -> Result<(), SqlError> {
    sqlx::query(
        "INSERT INTO api_tokens (id, user_id, name, secret_hash, prefix, roles, agency_code, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(token.id)
    .bind(token.user_id)
    .bind(token.name)
    .bind(token.secret_hash)
    .bind(token.prefix)
    .bind(token.roles.to_csv())
    .bind(token.agency_code)
    .bind(token.created_at)
    .bind(token.expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn by_secret_hash(conn: &mut Conn, secret_hash: &str) -> Result<Option<TokenRow>, SqlError> {
    let sql = format!("SELECT {COLUMNS} FROM api_tokens WHERE secret_hash = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(secret_hash).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

/// The account a token or session belongs to, as authentication needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub user_id: String,
    pub email: Option<String>,
    pub display_name: String,
    pub roles: RoleSet,
    pub agency_code: Option<String>,
    pub disabled: bool,
}

/// Reads an [`Owner`] from the `owner_*` columns of a joined row.
pub(crate) fn owner_from_row(row: &AnyRow) -> Result<Owner, SqlError> {
    let roles: String = row.try_get("owner_roles")?;
    let disabled: i64 = row.try_get("owner_disabled")?;
    Ok(Owner {
        user_id: row.try_get("owner_id")?,
        email: row.try_get("owner_email")?,
        display_name: row.try_get("owner_name")?,
        roles: RoleSet::parse_csv(&roles).map_err(|e| SqlError::Decode(Box::new(e)))?,
        agency_code: row.try_get("owner_agency")?,
        disabled: disabled != 0,
    })
}

/// The `owner_*` columns of the `users` row aliased `u`.
pub(crate) const OWNER_COLUMNS: &str = "u.id AS owner_id, u.email AS owner_email, u.display_name AS owner_name, \
     u.roles AS owner_roles, u.agency_code AS owner_agency, u.disabled AS owner_disabled";

/// A token and its owner in one query (the hot path of every API request).
pub async fn with_owner_by_secret_hash(
    conn: &mut Conn,
    secret_hash: &str,
) -> Result<Option<(TokenRow, Owner)>, SqlError> {
    let sql = format!(
        "SELECT t.id, t.user_id, t.name, t.prefix, t.roles, t.agency_code, t.created_at, t.last_used_at, \
         t.expires_at, t.revoked_at, {OWNER_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id \
         WHERE t.secret_hash = $1"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(secret_hash).fetch_optional(&mut *conn).await?;
    row.map(|row| Ok((from_row(&row)?, owner_from_row(&row)?))).transpose()
}

pub async fn get(conn: &mut Conn, id: &str) -> Result<Option<TokenRow>, SqlError> {
    let sql = format!("SELECT {COLUMNS} FROM api_tokens WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

/// A user's tokens, newest first.
pub async fn for_user(conn: &mut Conn, user_id: &str) -> Result<Vec<TokenRow>, SqlError> {
    let sql = format!("SELECT {COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY created_at DESC, id DESC");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user_id).fetch_all(&mut *conn).await?;
    rows.iter().map(from_row).collect()
}

pub async fn revoke(conn: &mut Conn, id: &str, at: i64) -> Result<bool, SqlError> {
    let done = sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
        .bind(id)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Notes a use; skipped when the last noted use is recent, so reads do not turn into writes.
pub async fn touch(conn: &mut Conn, id: &str, now: i64, granularity_ms: i64) -> Result<(), SqlError> {
    sqlx::query(
        "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
    )
    .bind(id)
    .bind(now)
    .bind(now - granularity_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
