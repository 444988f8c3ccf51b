//! Console sessions, kept in the database so that every node honours them.

use sqlx::Row;

use crate::{Conn, SqlError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: String,
    pub user_id: String,
    pub csrf_token: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

pub async fn insert(
    conn: &mut Conn,
    session: &SessionRow,
    secret_hash: &str,
    source_addr: Option<&str>,
) -> Result<(), SqlError> {
    sqlx::query(
        "INSERT INTO sessions (id, secret_hash, user_id, csrf_token, created_at, last_seen_at, expires_at, source_addr) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&session.id)
    .bind(secret_hash)
    .bind(&session.user_id)
    .bind(&session.csrf_token)
    .bind(session.created_at)
    .bind(session.last_seen_at)
    .bind(session.expires_at)
    .bind(source_addr)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn by_secret_hash(conn: &mut Conn, secret_hash: &str) -> Result<Option<SessionRow>, SqlError> {
    let row = sqlx::query(
        "SELECT id, user_id, csrf_token, created_at, last_seen_at, expires_at FROM sessions WHERE secret_hash = $1",
    )
    .bind(secret_hash)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| {
        Ok(SessionRow {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            csrf_token: row.try_get("csrf_token")?,
            created_at: row.try_get("created_at")?,
            last_seen_at: row.try_get("last_seen_at")?,
            expires_at: row.try_get("expires_at")?,
        })
    })
    .transpose()
}

/// A session and its owner in one query (the hot path of every console request).
pub async fn with_owner_by_secret_hash(
    conn: &mut Conn,
    secret_hash: &str,
) -> Result<Option<(SessionRow, crate::tokens::Owner)>, SqlError> {
    let sql = format!(
        "SELECT s.id, s.user_id, s.csrf_token, s.created_at, s.last_seen_at, s.expires_at, {} \
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.secret_hash = $1",
        crate::tokens::OWNER_COLUMNS
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(secret_hash).fetch_optional(&mut *conn).await?;
    row.map(|row| {
        let session = SessionRow {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            csrf_token: row.try_get("csrf_token")?,
            created_at: row.try_get("created_at")?,
            last_seen_at: row.try_get("last_seen_at")?,
            expires_at: row.try_get("expires_at")?,
        };
        Ok((session, crate::tokens::owner_from_row(&row)?))
    })
    .transpose()
}

/// Slides the session's idle expiry; skipped when it was extended recently.
pub async fn touch(conn: &mut Conn, id: &str, now: i64, expires_at: i64, granularity_ms: i64) -> Result<(), SqlError> {
    sqlx::query("UPDATE sessions SET last_seen_at = $2, expires_at = $3 WHERE id = $1 AND last_seen_at < $4")
        .bind(id)
        .bind(now)
        .bind(expires_at)
        .bind(now - granularity_ms)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn delete(conn: &mut Conn, id: &str) -> Result<(), SqlError> {
    sqlx::query("DELETE FROM sessions WHERE id = $1").bind(id).execute(&mut *conn).await?;
    Ok(())
}

pub async fn delete_for_user(conn: &mut Conn, user_id: &str) -> Result<u64, SqlError> {
    let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(&mut *conn).await?;
    Ok(done.rows_affected())
}

/// Ends every session of `user_id` but `keep` (after a password change).
pub async fn delete_others(conn: &mut Conn, user_id: &str, keep: Option<&str>) -> Result<u64, SqlError> {
    let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
        .bind(user_id)
        .bind(keep.unwrap_or(""))
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

pub async fn delete_expired(conn: &mut Conn, now: i64) -> Result<u64, SqlError> {
    let done = sqlx::query("DELETE FROM sessions WHERE expires_at < $1").bind(now).execute(&mut *conn).await?;
    Ok(done.rows_affected())
}
