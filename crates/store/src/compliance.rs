//! Device compliance over the whole fleet in SQL: `domain::compliance::evaluate`, written as one
//! statement that writes only the devices whose reasons changed, so the daily pass over a
//! million devices is one scan. A property test holds it to the domain's rule.

use sqlx::{AssertSqlSafe, Row};

use crate::{Conn, SqlError};

/// The states of a device in use (`domain::compliance::IN_SCOPE`), as SQL.
pub const SCOPE: &str = "('enrolled', 'in_transit', 'in_service', 'lost_stolen', 'recovered')";

/// Every other state, as SQL: the devices whose rows a fleet pass removes, found through the
/// devices' index by state rather than by reading every row.
fn out_of_scope() -> String {
    use custody_domain::device::DeviceState;
    let states: Vec<String> = DeviceState::ALL
        .iter()
        .filter(|s| !custody_domain::compliance::IN_SCOPE.contains(s))
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    format!("({})", states.join(", "))
}

/// The settings the statement needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySql {
    /// Seen before this is silent.
    pub silent_before: i64,
    /// Minimum OS rank per platform.
    pub min_os: Vec<(String, i64)>,
}

/// What a pass changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluated {
    /// Rows written (a device new to the list, or whose reasons changed).
    pub changed: u64,
    /// Rows removed (devices no longer in use).
    pub removed: u64,
    /// With `told` on PostgreSQL: the rows this pass wrote non-compliant, counted by agency
    /// (written as told). Empty otherwise: such rows are left to [`unnotified`].
    pub told: Vec<(String, i64)>,
}

/// Evaluates every device in use (or only `device`), writing the rows whose reasons changed;
/// and removes the rows of devices no longer in use.
///
/// With `told`, the caller tells each agency of its devices this pass makes non-compliant, in
/// the same transaction: on PostgreSQL they are written as told and counted in
/// [`Evaluated::told`] (a million-row pass then updates none of them again); on SQLite they are
/// written untold, for [`unnotified`] and [`mark_notified`] as any other.
pub async fn evaluate(
    conn: &mut Conn,
    policy: &PolicySql,
    device: Option<&str>,
    now: i64,
    told: bool,
) -> Result<Evaluated, SqlError> {
    let counted = told && crate::is_postgres(conn);
    // The minimum OS of the device's platform: CASE e.platform WHEN $a THEN $b ... ELSE 0 END.
    let mut min_os = String::from("CASE e.platform");
    for i in 0..policy.min_os.len() {
        min_os.push_str(&format!(" WHEN ${} THEN ${}", 4 + i * 2, 5 + i * 2));
    }
    min_os.push_str(" ELSE 0 END");
    let only = if device.is_some() { " AND d.id = $3" } else { " AND $3 = ''" };
    // Only the devices whose reasons (or agency) changed are written: the others are read and
    // compared, never written. The changed ones are gathered first (joined by hash) and written
    // in device order, so the primary key fills from left to right (a first pass over a million
    // devices writes a fifth faster on PostgreSQL).
    let notified = if counted { 1 } else { 0 };
    let changed = format!(
        "changed AS MATERIALIZED (SELECT x.id, x.agency_code, x.reasons FROM ( \
           SELECT d.id, d.agency_code, \
             CASE WHEN e.id IS NULL THEN 'not_enrolled ' ELSE \
               (CASE WHEN e.last_seen_at < $1 THEN 'no_check_in ' ELSE '' END) || \
               (CASE WHEN e.os_rank < {min_os} THEN 'os_outdated ' ELSE '' END) || \
               (CASE WHEN e.passcode_present = 0 THEN 'no_passcode ' ELSE '' END) || \
               (CASE WHEN e.compromised = 1 THEN 'compromised ' ELSE '' END) \
             END || (CASE WHEN d.state = 'lost_stolen' THEN 'reported_lost ' ELSE '' END) AS reasons \
           FROM devices d LEFT JOIN mdm_enrollments e ON e.device_id = d.id AND e.status = 'enrolled' \
           WHERE d.state IN {SCOPE}{only} \
         ) AS x LEFT JOIN device_compliance old ON old.device_id = x.id \
         WHERE old.device_id IS NULL OR old.reasons <> x.reasons OR old.agency_code <> x.agency_code)"
    );
    let upsert = format!(
        "INSERT INTO device_compliance (device_id, agency_code, reasons, compliant, since, notified) \
         SELECT id, agency_code, reasons, CASE WHEN reasons = '' THEN 1 ELSE 0 END, $2, {notified} FROM changed \
         WHERE true ORDER BY id \
         ON CONFLICT (device_id) DO UPDATE SET reasons = excluded.reasons, compliant = excluded.compliant, \
           since = excluded.since, notified = excluded.notified, agency_code = excluded.agency_code \
         WHERE device_compliance.reasons <> excluded.reasons OR device_compliance.agency_code <> excluded.agency_code"
    );
    let sql = if counted {
        format!(
            "WITH {changed}, w AS ({upsert} RETURNING agency_code, compliant) \
             SELECT agency_code, COUNT(*) AS n, COUNT(*) FILTER (WHERE compliant = 0) AS bad FROM w GROUP BY agency_code"
        )
    } else {
        format!("WITH {changed} {upsert}")
    };
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(policy.silent_before).bind(now).bind(device.unwrap_or(""));
    for (platform, rank) in &policy.min_os {
        query = query.bind(platform.clone()).bind(*rank);
    }
    let (changed, told) = if counted {
        let mut changed = 0;
        let mut told = Vec::new();
        for row in query.fetch_all(&mut *conn).await? {
            let (agency, n, bad): (String, i64, i64) =
                (row.try_get("agency_code")?, row.try_get("n")?, row.try_get("bad")?);
            changed += n as u64;
            if bad > 0 {
                told.push((agency, bad));
            }
        }
        (changed, told)
    } else {
        (query.execute(&mut *conn).await?.rows_affected(), Vec::new())
    };
    let removed = match device {
        Some(device) => sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM device_compliance WHERE device_id = $1 AND NOT EXISTS \
             (SELECT 1 FROM devices d WHERE d.id = $1 AND d.state IN {SCOPE})"
        )))
        .bind(device)
        .execute(&mut *conn)
        .await?
        .rows_affected(),
        // Devices leave the list as they leave use (`devices::move_device`); this catches any
        // other way, visiting only devices out of use.
        None => sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM device_compliance WHERE device_id IN (SELECT id FROM devices WHERE state IN {})",
            out_of_scope()
        )))
        .execute(&mut *conn)
        .await?
        .rows_affected(),
    };
    Ok(Evaluated { changed, removed, told })
}

/// Agencies with devices newly non-compliant that were not told yet, with how many.
pub async fn unnotified(conn: &mut Conn) -> Result<Vec<(String, i64)>, SqlError> {
    let rows = sqlx::query(
        "SELECT agency_code, COUNT(*) AS n FROM device_compliance WHERE compliant = 0 AND notified = 0 \
         GROUP BY agency_code ORDER BY agency_code",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| Ok((r.try_get("agency_code")?, r.try_get("n")?))).collect()
}

/// Marks agency `agency`'s non-compliant devices as told.
pub async fn mark_notified(conn: &mut Conn, agency: &str) -> Result<u64, SqlError> {
    Ok(sqlx::query(
        "UPDATE device_compliance SET notified = 1 WHERE agency_code = $1 AND compliant = 0 AND notified = 0",
    )
    .bind(agency)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// A device's compliance as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplianceRow {
    pub device_id: String,
    pub agency_code: String,
    pub reasons: String,
    pub compliant: bool,
    pub since: i64,
    pub serial: Option<String>,
    pub state: String,
    pub device_type: String,
    pub holder_name: Option<String>,
    pub wifi_mac: Option<String>,
    pub last_seen_at: Option<i64>,
    pub os_version: Option<String>,
}

/// What a compliance list shows.
#[derive(Debug, Clone, Default)]
pub struct ComplianceFilter {
    pub agency: Option<String>,
    /// `Some(false)`: non-compliant only.
    pub compliant: Option<bool>,
    /// Only devices with this reason.
    pub reason: Option<String>,
}

const LIST_COLUMNS: &str = "c.device_id, c.agency_code, c.reasons, c.compliant, c.since, d.serial, d.state, \
     d.device_type, (p.given_name || ' ' || p.family_name) AS holder_name, e.wifi_mac, e.last_seen_at, e.os_version";
const LIST_FROM: &str = "FROM device_compliance c JOIN devices d ON d.id = c.device_id \
     LEFT JOIN people p ON p.id = d.holder_id \
     LEFT JOIN mdm_enrollments e ON e.device_id = c.device_id AND e.status = 'enrolled'";

fn list_row(r: &sqlx::any::AnyRow) -> Result<ComplianceRow, SqlError> {
    Ok(ComplianceRow {
        device_id: r.try_get("device_id")?,
        agency_code: r.try_get("agency_code")?,
        reasons: r.try_get("reasons")?,
        compliant: r.try_get::<i64, _>("compliant")? != 0,
        since: r.try_get("since")?,
        serial: r.try_get("serial")?,
        state: r.try_get("state")?,
        device_type: r.try_get("device_type")?,
        holder_name: r.try_get("holder_name")?,
        wifi_mac: r.try_get("wifi_mac")?,
        last_seen_at: r.try_get("last_seen_at")?,
        os_version: r.try_get("os_version")?,
    })
}

/// A page of the compliance list, ordered by device id, after `after`. The conditions are
/// written out for the filters given, so that an agency's non-compliant devices come from their
/// partial index.
pub async fn list(
    conn: &mut Conn,
    filter: &ComplianceFilter,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<ComplianceRow>, SqlError> {
    let mut sql = format!("SELECT {LIST_COLUMNS} {LIST_FROM} WHERE c.device_id > $1");
    let mut n = 1;
    if filter.agency.is_some() {
        n += 1;
        // Of all an agency's devices, those of its devices (the agency's index of devices).
        let devices =
            if filter.compliant == Some(false) { String::new() } else { format!(" AND d.agency_code = ${n}") };
        sql.push_str(&format!(" AND c.agency_code = ${n}{devices}"));
    }
    match filter.compliant {
        Some(true) => sql.push_str(" AND c.compliant = 1"),
        Some(false) => sql.push_str(" AND c.compliant = 0"),
        None => {}
    }
    let reason = filter.reason.as_ref().map(|r| format!("% {r} %"));
    if reason.is_some() {
        n += 1;
        sql.push_str(&format!(" AND (' ' || c.reasons) LIKE ${n}"));
    }
    sql.push_str(&format!(" ORDER BY c.device_id LIMIT ${}", n + 1));
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(after.unwrap_or("").to_string());
    if let Some(agency) = &filter.agency {
        query = query.bind(agency.clone());
    }
    if let Some(reason) = reason {
        query = query.bind(reason);
    }
    let rows = query.bind(limit).fetch_all(&mut *conn).await?;
    rows.iter().map(list_row).collect()
}

/// One device's compliance row.
pub async fn of_device(conn: &mut Conn, device_id: &str) -> Result<Option<ComplianceRow>, SqlError> {
    let sql = format!("SELECT {LIST_COLUMNS} {LIST_FROM} WHERE c.device_id = $1");
    let row = sqlx::query(AssertSqlSafe(sql)).bind(device_id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(list_row).transpose()
}

/// Counts per agency: devices evaluated and non-compliant, and per reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgencySummary {
    pub agency_code: String,
    pub devices: i64,
    pub non_compliant: i64,
}

pub async fn summary(conn: &mut Conn, agency: Option<&str>) -> Result<Vec<AgencySummary>, SqlError> {
    // The devices in use (each evaluated whenever it moves), and the non-compliant among them
    // from their partial index.
    let only = if agency.is_some() { " AND d.agency_code = $1" } else { "" };
    let sql = format!(
        "SELECT d.agency_code, COUNT(*) AS devices, (SELECT COUNT(*) FROM device_compliance c \
           WHERE c.agency_code = d.agency_code AND c.compliant = 0) AS non_compliant \
         FROM devices d WHERE d.state IN {SCOPE}{only} GROUP BY d.agency_code ORDER BY d.agency_code"
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    if let Some(agency) = agency {
        query = query.bind(agency.to_string());
    }
    let rows = query.fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| {
            Ok(AgencySummary {
                agency_code: r.try_get("agency_code")?,
                devices: r.try_get("devices")?,
                non_compliant: r.try_get("non_compliant")?,
            })
        })
        .collect()
}

/// Non-compliant devices per reason (of an agency or all), in one pass over the non-compliant.
pub async fn reason_counts(conn: &mut Conn, agency: Option<&str>) -> Result<Vec<(String, i64)>, SqlError> {
    let reasons = custody_domain::compliance::Reason::ALL.map(|r| r.as_str());
    let sums: Vec<String> = reasons
        .iter()
        .map(|r| {
            format!(
                "CAST(COALESCE(SUM(CASE WHEN (' ' || reasons) LIKE '% {r} %' THEN 1 ELSE 0 END), 0) AS BIGINT) AS {r}"
            )
        })
        .collect();
    let only = if agency.is_some() { " AND agency_code = $1" } else { "" };
    let sql = format!("SELECT {} FROM device_compliance WHERE compliant = 0{only}", sums.join(", "));
    let mut query = sqlx::query(AssertSqlSafe(sql));
    if let Some(agency) = agency {
        query = query.bind(agency.to_string());
    }
    let row = query.fetch_one(&mut *conn).await?;
    reasons.iter().map(|r| Ok((r.to_string(), row.try_get::<i64, _>(*r)?))).collect()
}

/// One row of the network-access feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRow {
    pub device_id: String,
    pub agency_code: String,
    pub serial: Option<String>,
    pub wifi_mac: Option<String>,
    pub compliant: bool,
    pub reasons: String,
}

/// A page of the network-access feed: every device in use, ordered by device id after `after`.
pub async fn network_access(
    conn: &mut Conn,
    agency: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<AccessRow>, SqlError> {
    // One agency's: its devices in order (the agency's index of devices), each with its row.
    let only = if agency.is_some() { "d.agency_code = $3 AND c.agency_code = $3 AND " } else { "" };
    let sql = format!(
        "SELECT c.device_id, c.agency_code, d.serial, e.wifi_mac, c.compliant, c.reasons \
         FROM device_compliance c JOIN devices d ON d.id = c.device_id \
         LEFT JOIN mdm_enrollments e ON e.device_id = c.device_id AND e.status = 'enrolled' \
         WHERE {only}d.id > $1 ORDER BY d.id LIMIT $2"
    );
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(after.unwrap_or("").to_string()).bind(limit);
    if let Some(agency) = agency {
        query = query.bind(agency.to_string());
    }
    let rows = query.fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| {
            Ok(AccessRow {
                device_id: r.try_get("device_id")?,
                agency_code: r.try_get("agency_code")?,
                serial: r.try_get("serial")?,
                wifi_mac: r.try_get("wifi_mac")?,
                compliant: r.try_get::<i64, _>("compliant")? != 0,
                reasons: r.try_get("reasons")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_and_its_complement_split_every_state() {
        use custody_domain::device::DeviceState;
        let listed = |sql: &str| -> Vec<String> {
            sql.trim_matches(|c| c == '(' || c == ')').split(", ").map(|s| s.trim_matches('\'').to_string()).collect()
        };
        let scope = listed(SCOPE);
        let expected: Vec<String> =
            custody_domain::compliance::IN_SCOPE.iter().map(|s| s.as_str().to_string()).collect();
        assert_eq!(scope, expected, "SCOPE is the domain's IN_SCOPE");
        let out = listed(&out_of_scope());
        assert_eq!(scope.len() + out.len(), DeviceState::ALL.len());
        assert!(out.iter().all(|s| !scope.contains(s)) && out.contains(&"decommissioned".to_string()));
    }
}
