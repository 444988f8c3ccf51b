//! Leases for periodic jobs: of several nodes on one database, the one that takes a job's lease
//! runs the pass; the others skip it until the lease ends or the pass finishes.

use sqlx::Row;

use crate::{Conn, SqlError};

/// Takes the lease of job `name` for `holder` until `now + lease_ms`, when the job is not leased
/// by another holder and its last pass finished at least `every_ms` ago. True when taken.
pub async fn claim(
    conn: &mut Conn,
    name: &str,
    holder: &str,
    now: i64,
    lease_ms: i64,
    every_ms: i64,
) -> Result<bool, SqlError> {
    sqlx::query("INSERT INTO job_leases (name, holder, leased_until, last_finished_at) VALUES ($1, NULL, 0, NULL) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    let taken = sqlx::query(
        "UPDATE job_leases SET holder = $2, leased_until = $3 WHERE name = $1 \
         AND (leased_until <= $4 OR holder = $2) AND COALESCE(last_finished_at, 0) <= $5",
    )
    .bind(name)
    .bind(holder)
    .bind(now + lease_ms)
    .bind(now)
    .bind(now - every_ms)
    .execute(&mut *conn)
    .await?;
    Ok(taken.rows_affected() == 1)
}

/// Ends `holder`'s lease of job `name`, recording the pass as finished at `now`.
pub async fn finish(conn: &mut Conn, name: &str, holder: &str, now: i64) -> Result<(), SqlError> {
    sqlx::query(
        "UPDATE job_leases SET holder = NULL, leased_until = 0, last_finished_at = $3 WHERE name = $1 AND holder = $2",
    )
    .bind(name)
    .bind(holder)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// When job `name` last finished a pass.
pub async fn last_finished(conn: &mut Conn, name: &str) -> Result<Option<i64>, SqlError> {
    let row = sqlx::query("SELECT last_finished_at FROM job_leases WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(row) => row.try_get("last_finished_at")?,
        None => None,
    })
}

/// A job's lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    /// The pass holding the lease, while one runs.
    pub holder: Option<String>,
    pub leased_until: i64,
    pub last_finished_at: Option<i64>,
}

/// Every job that has taken its lease at least once, by name.
pub async fn leases(conn: &mut Conn) -> Result<Vec<Lease>, SqlError> {
    let rows = sqlx::query("SELECT name, holder, leased_until, last_finished_at FROM job_leases ORDER BY name")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Lease {
                name: row.try_get("name")?,
                holder: row.try_get("holder")?,
                leased_until: row.try_get("leased_until")?,
                last_finished_at: row.try_get("last_finished_at")?,
            })
        })
        .collect()
}
