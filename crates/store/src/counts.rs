//! Per-agency counters, changed in the same transaction as the rows they count.

use sqlx::Row;

use crate::{Conn, SqlError};

/// People of an agency.
pub const PEOPLE: &str = "people";

/// The fleet counter of a device type (`devices.smartphone`...).
pub fn devices_of(device_type: custody_domain::catalog::DeviceType) -> String {
    format!("devices.{}", device_type.as_str())
}

/// Device types in the fleet with their counts, summed over agencies (or of one agency).
pub async fn devices_by_type(conn: &mut Conn, agency: Option<&str>) -> Result<Vec<(String, i64)>, SqlError> {
    let rows = sqlx::query(
        "SELECT metric, CAST(SUM(n) AS BIGINT) AS n FROM agency_counts WHERE metric LIKE 'devices.%' \
         AND ($1 = '' OR agency_code = $1) GROUP BY metric ORDER BY metric",
    )
    .bind(agency.unwrap_or(""))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let metric: String = r.try_get("metric")?;
            Ok((metric.trim_start_matches("devices.").to_string(), r.try_get("n")?))
        })
        .filter(|r: &Result<(String, i64), SqlError>| r.as_ref().map_or(true, |(_, n)| *n > 0))
        .collect()
}

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
