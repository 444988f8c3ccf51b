//! Notifications: the in-console inbox and the e-mail outbox are the same rows.

use serde::Deserialize;
use sqlx::Row;

use crate::{Conn, SqlError};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NotificationRow {
    pub id: String,
    pub user_id: String,
    pub email: Option<String>,
    pub kind: String,
    pub subject: String,
    pub body: String,
    pub request_id: Option<String>,
    pub created_at: i64,
    pub read_at: Option<i64>,
    /// `pending`, `sent`, `failed`, or `none` (the recipient has no address).
    pub email_status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub sent_at: Option<i64>,
}

const COLUMNS: &str = "id, user_id, email, kind, subject, body, request_id, created_at, read_at, email_status, \
                       attempts, last_error, sent_at";

pub async fn insert(conn: &mut Conn, n: &NotificationRow) -> Result<(), SqlError> {
    sqlx::query(
        "INSERT INTO notifications (id, user_id, email, kind, subject, body, request_id, created_at, email_status, \
         attempts, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $8)",
    )
    .bind(&n.id)
    .bind(&n.user_id)
    .bind(&n.email)
    .bind(&n.kind)
    .bind(&n.subject)
    .bind(&n.body)
    .bind(&n.request_id)
    .bind(n.created_at)
    .bind(&n.email_status)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn decode(page: &str) -> Result<Vec<NotificationRow>, SqlError> {
    serde_json::from_str(page).map_err(|e| SqlError::Decode(e.to_string().into()))
}

/// A user's notifications, newest first, at most `limit`.
pub async fn inbox(
    conn: &mut Conn,
    user_id: &str,
    unread_only: bool,
    limit: i64,
) -> Result<Vec<NotificationRow>, SqlError> {
    let unread = if unread_only { " AND read_at IS NULL" } else { "" };
    let inner = format!(
        "SELECT {COLUMNS} FROM notifications WHERE user_id = $1{unread} ORDER BY created_at DESC, id DESC LIMIT {}",
        limit.max(0)
    );
    let columns: Vec<&str> = COLUMNS.split(", ").collect();
    let sql = crate::page_as_json(conn, &inner, &columns, "created_at DESC, id DESC");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user_id).fetch_one(&mut *conn).await?;
    let rows = decode(&row.try_get::<String, _>("page")?)?;
    Ok(crate::sort_page(conn, rows, |a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id))))
}

pub async fn unread_count(conn: &mut Conn, user_id: &str) -> Result<i64, SqlError> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM notifications WHERE user_id = $1 AND read_at IS NULL")
        .bind(user_id)
        .fetch_one(&mut *conn)
        .await?;
    row.try_get("n")
}

/// Whether notification `id` is the user's.
pub async fn belongs_to(conn: &mut Conn, user_id: &str, id: &str) -> Result<bool, SqlError> {
    let row = sqlx::query("SELECT id FROM notifications WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.is_some())
}

/// Marks the user's notifications read (one, or all when `id` is `None`); returns how many.
pub async fn mark_read(conn: &mut Conn, user_id: &str, id: Option<&str>, at: i64) -> Result<u64, SqlError> {
    let result = sqlx::query(
        "UPDATE notifications SET read_at = $3 WHERE user_id = $1 AND ($2 = '' OR id = $2) AND read_at IS NULL",
    )
    .bind(user_id)
    .bind(id.unwrap_or(""))
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(result.rows_affected())
}

/// Claims up to `limit` e-mails due at `now` for `lease_ms`: a claimed row is not handed to
/// another sender (another node) until the lease runs out.
pub async fn claim_due(conn: &mut Conn, now: i64, lease_ms: i64, limit: i64) -> Result<Vec<NotificationRow>, SqlError> {
    let ids: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM notifications WHERE email_status = 'pending' AND next_attempt_at <= $1 \
         AND (claimed_until IS NULL OR claimed_until < $1) ORDER BY next_attempt_at LIMIT {}",
        limit.max(0)
    )))
    .bind(now)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| row.try_get("id"))
    .collect::<Result<_, _>>()?;
    let mut taken = Vec::new();
    for id in ids {
        let rows = sqlx::query(
            "UPDATE notifications SET claimed_until = $2 WHERE id = $1 AND email_status = 'pending' \
             AND (claimed_until IS NULL OR claimed_until < $3)",
        )
        .bind(&id)
        .bind(now + lease_ms)
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if rows == 1 {
            taken.push(id);
        }
    }
    if taken.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (1..=taken.len()).map(|i| format!("${i}")).collect();
    let inner = format!("SELECT {COLUMNS} FROM notifications WHERE id IN ({})", placeholders.join(", "));
    let columns: Vec<&str> = COLUMNS.split(", ").collect();
    let sql = crate::page_as_json(conn, &inner, &columns, "id");
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in taken {
        query = query.bind(id);
    }
    decode(&query.fetch_one(&mut *conn).await?.try_get::<String, _>("page")?)
}

pub async fn mark_sent(conn: &mut Conn, id: &str, at: i64) -> Result<(), SqlError> {
    sqlx::query(
        "UPDATE notifications SET email_status = 'sent', sent_at = $2, attempts = attempts + 1, claimed_until = NULL, \
         last_error = NULL WHERE id = $1",
    )
    .bind(id)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records a failed attempt: retried at `retry_at`, or given up (`failed`) when `None`.
pub async fn mark_failed(conn: &mut Conn, id: &str, error: &str, retry_at: Option<i64>) -> Result<(), SqlError> {
    sqlx::query(
        "UPDATE notifications SET attempts = attempts + 1, last_error = $2, claimed_until = NULL, \
         email_status = CASE WHEN $3 < 0 THEN 'failed' ELSE 'pending' END, \
         next_attempt_at = CASE WHEN $3 < 0 THEN next_attempt_at ELSE $3 END WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(retry_at.unwrap_or(-1))
    .execute(&mut *conn)
    .await?;
    Ok(())
}
