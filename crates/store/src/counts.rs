//! Per-agency counters, changed in the same transaction as the rows they count.

use sqlx::Row;

use crate::{Conn, SqlError};

/// People of an agency.
pub const PEOPLE: &str = "people";

/// Adds `delta` to the agency's `metric`.
pub async fn add(conn: &mut Conn, agency: &str, metric: &str, delta: i64) -> Result<(), SqlError> {
    sqlx::query(
        "INSERT INTO agency_counts (agency_code, metric, n) VALUES ($1, $2, $3) \
         ON CONFLICT (agency_code, metric) DO UPDATE SET n = agency_counts.n + excluded.n",
    )
    .bind(agency)
    .bind(metric)
    .bind(delta)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The `metric` per agency, in agency order (agencies with none are left out).
pub async fn by_agency(conn: &mut Conn, metric: &str, agency: Option<&str>) -> Result<Vec<(String, i64)>, SqlError> {
    let rows = sqlx::query(
        "SELECT agency_code, n FROM agency_counts WHERE metric = $1 AND n > 0 AND ($2 = '' OR agency_code = $2) \
         ORDER BY agency_code",
    )
    .bind(metric)
    .bind(agency.unwrap_or(""))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| Ok((r.try_get("agency_code")?, r.try_get("n")?))).collect()
}
