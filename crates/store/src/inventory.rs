//! Inventory from the devices: the facts each enrolled device reports of itself (kept on its
//! enrollment, each change of a tracked fact written to `mdm_inventory_changes`), the lists it
//! reports (apps, profiles, certificates), and the schedule of its next inventory.

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::{Conn, SqlError};

/// A fact's value as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    Text(String),
    Int(i64),
}

impl Fact {
    pub fn display(&self) -> String {
        match self {
            Fact::Text(t) => t.clone(),
            Fact::Int(i) => i.to_string(),
        }
    }
}

/// What a device reported; `None` is "not reported" and keeps the stored value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    pub platform: Option<String>,
    pub os_version: Option<String>,
    pub os_rank: Option<i64>,
    pub build_version: Option<String>,
    pub product_name: Option<String>,
    pub model: Option<String>,
    pub model_name: Option<String>,
    pub device_name: Option<String>,
    pub serial_number: Option<String>,
    pub imei: Option<String>,
    pub meid: Option<String>,
    pub capacity_mb: Option<i64>,
    pub available_mb: Option<i64>,
    pub battery_pct: Option<i64>,
    pub wifi_mac: Option<String>,
    pub phone_number: Option<String>,
    pub iccid: Option<String>,
    pub supervised: Option<bool>,
    pub activation_lock: Option<bool>,
    pub passcode_present: Option<bool>,
    pub passcode_compliant: Option<bool>,
    pub encryption_caps: Option<i64>,
    pub compromised: Option<bool>,
}

/// The columns an inventory writes, whether a change of each is kept as history (the battery
/// and free space change all the time and are not), and the reported value.
fn columns(inv: &Inventory) -> Vec<(&'static str, bool, Option<Fact>)> {
    let text = |v: &Option<String>| v.clone().map(Fact::Text);
    let int = |v: &Option<i64>| v.map(Fact::Int);
    let flag = |v: &Option<bool>| v.map(|b| Fact::Int(i64::from(b)));
    vec![
        ("platform", true, text(&inv.platform)),
        ("os_version", true, text(&inv.os_version)),
        ("os_rank", false, int(&inv.os_rank)),
        ("build_version", true, text(&inv.build_version)),
        ("product_name", true, text(&inv.product_name)),
        ("model", true, text(&inv.model)),
        ("model_name", false, text(&inv.model_name)),
        ("device_name", true, text(&inv.device_name)),
        ("serial_number", true, text(&inv.serial_number)),
        ("imei", true, text(&inv.imei)),
        ("meid", true, text(&inv.meid)),
        ("capacity_mb", true, int(&inv.capacity_mb)),
        ("available_mb", false, int(&inv.available_mb)),
        ("battery_pct", false, int(&inv.battery_pct)),
        ("wifi_mac", true, text(&inv.wifi_mac)),
        ("phone_number", true, text(&inv.phone_number)),
        ("iccid", true, text(&inv.iccid)),
        ("supervised", true, flag(&inv.supervised)),
        ("activation_lock", true, flag(&inv.activation_lock)),
        ("passcode_present", true, flag(&inv.passcode_present)),
        ("passcode_compliant", true, flag(&inv.passcode_compliant)),
        ("encryption_caps", true, int(&inv.encryption_caps)),
        ("compromised", true, flag(&inv.compromised)),
    ]
}

const INT_COLUMNS: &[&str] = &[
    "os_rank",
    "capacity_mb",
    "available_mb",
    "battery_pct",
    "supervised",
    "activation_lock",
    "passcode_present",
    "passcode_compliant",
    "encryption_caps",
    "compromised",
];

fn fact_of(row: &AnyRow, column: &str) -> Result<Option<Fact>, SqlError> {
    Ok(if INT_COLUMNS.contains(&column) {
        row.try_get::<Option<i64>, _>(column)?.map(Fact::Int)
    } else {
        row.try_get::<Option<String>, _>(column)?.map(Fact::Text)
    })
}

/// One change of a tracked fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub field: &'static str,
    pub old: Option<Fact>,
    pub new: Fact,
}

/// What [`record`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// The tracked facts whose known value changed.
    pub changes: Vec<Change>,
    /// The inventory device the enrollment is joined to, if any (read by the update itself).
    pub device_id: Option<String>,
}

/// The facts an enrollment holds, as a JSON object keyed by column, read by another statement
/// on the way (see [`facts_json`]): what [`record`] compares a report with instead of reading.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KnownFacts(serde_json::Map<String, serde_json::Value>);

impl KnownFacts {
    /// Parses what [`facts_json`] gave.
    pub fn parse(json: &str) -> Result<KnownFacts, SqlError> {
        serde_json::from_str(json).map(KnownFacts).map_err(|e| SqlError::Decode(Box::new(e)))
    }

    fn fact(&self, column: &str) -> Result<Option<Fact>, SqlError> {
        let wrong = || SqlError::Decode(format!("inventory fact {column} of an unexpected type").into());
        match self.0.get(column) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Number(n)) if INT_COLUMNS.contains(&column) => {
                n.as_i64().map(|i| Some(Fact::Int(i))).ok_or_else(wrong)
            }
            Some(serde_json::Value::String(t)) if !INT_COLUMNS.contains(&column) => Ok(Some(Fact::Text(t.clone()))),
            Some(_) => Err(wrong()),
        }
    }

    /// A value the object holds besides the facts (the caller chose what to add).
    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.0.get(key)
    }
}

/// Where [`record`] finds an enrollment's stored facts: read by itself, or given.
enum Stored<'a> {
    Row(AnyRow),
    Known(&'a KnownFacts),
}

/// An expression for the facts of the enrollment `id_expr` (and `extra` columns of it, by name)
/// as one JSON object, text on both databases: a statement that already finds the enrollment
/// returns it, and [`record`] then needs no read of its own.
pub fn facts_json(conn: &Conn, id_expr: &str, extra: &[&str]) -> String {
    let (object, cast) = if crate::is_postgres(conn) { ("json_build_object", "::text") } else { ("json_object", "") };
    let pairs: Vec<String> = extra
        .iter()
        .copied()
        .chain(columns(&Inventory::default()).into_iter().map(|(c, _, _)| c))
        .map(|c| format!("'{c}', {c}"))
        .collect();
    format!("(SELECT {object}({}){cast} FROM mdm_enrollments WHERE id = {id_expr})", pairs.join(", "))
}

/// Records what enrollment `id` reported at `now` (also a sign of life): one read (none when the
/// caller knows the enrollment's facts), one update, and the history of every tracked fact whose
/// known value changed (a fact learnt for the first time is not a change).
pub async fn record(
    conn: &mut Conn,
    id: &str,
    inv: &Inventory,
    known: Option<&KnownFacts>,
    now: i64,
) -> Result<Recorded, SqlError> {
    let reported: Vec<(&'static str, bool, Fact)> =
        columns(inv).into_iter().filter_map(|(c, tracked, v)| v.map(|v| (c, tracked, v))).collect();
    let mut changes = Vec::new();
    let mut sets: Vec<(&'static str, Fact)> = Vec::new();
    if !reported.is_empty() {
        let stored = match known {
            Some(known) => Stored::Known(known),
            None => {
                let names: Vec<&str> = reported.iter().map(|(c, _, _)| *c).collect();
                let sql = format!("SELECT {} FROM mdm_enrollments WHERE id = $1", names.join(", "));
                let Some(row) = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await? else {
                    return Ok(Recorded::default());
                };
                Stored::Row(row)
            }
        };
        for (column, tracked, value) in reported {
            let old = match &stored {
                Stored::Row(row) => fact_of(row, column)?,
                Stored::Known(known) => known.fact(column)?,
            };
            if old.as_ref() == Some(&value) {
                continue;
            }
            if tracked && old.is_some() {
                changes.push(Change { field: column, old, new: value.clone() });
            }
            sets.push((column, value));
        }
    }
    let mut sql = String::from("UPDATE mdm_enrollments SET inventory_at = $2, last_seen_at = $2, updated_at = $2");
    for (i, (column, _)) in sets.iter().enumerate() {
        sql.push_str(&format!(", {column} = ${}", i + 3));
    }
    sql.push_str(" WHERE id = $1 RETURNING device_id");
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(id).bind(now);
    for (_, value) in &sets {
        query = match value {
            Fact::Text(t) => query.bind(t.clone()),
            Fact::Int(i) => query.bind(*i),
        };
    }
    let Some(updated) = query.fetch_optional(&mut *conn).await? else { return Ok(Recorded::default()) };
    let device_id: Option<String> = updated.try_get("device_id")?;
    if !changes.is_empty() {
        let mut sql = String::from(
            "INSERT INTO mdm_inventory_changes (id, enrollment_id, field, old_value, new_value, changed_at) VALUES ",
        );
        let rows: Vec<String> = (0..changes.len())
            .map(|i| {
                let b = i * 4 + 3;
                format!("(${b}, $1, ${}, ${}, ${}, $2)", b + 1, b + 2, b + 3)
            })
            .collect();
        sql.push_str(&rows.join(", "));
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(id).bind(now);
        for change in &changes {
            query = query
                .bind(crate::new_id())
                .bind(change.field)
                .bind(change.old.as_ref().map(Fact::display))
                .bind(change.new.display());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(Recorded { changes, device_id })
}

/// An inventory change as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRow {
    pub field: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub changed_at: i64,
}

/// The latest `limit` changes of an enrollment's facts, newest first.
pub async fn changes(conn: &mut Conn, enrollment_id: &str, limit: i64) -> Result<Vec<ChangeRow>, SqlError> {
    let rows = sqlx::query(
        "SELECT field, old_value, new_value, changed_at FROM mdm_inventory_changes WHERE enrollment_id = $1 \
         ORDER BY changed_at DESC, id DESC LIMIT $2",
    )
    .bind(enrollment_id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ChangeRow {
                field: r.try_get("field")?,
                old_value: r.try_get("old_value")?,
                new_value: r.try_get("new_value")?,
                changed_at: r.try_get("changed_at")?,
            })
        })
        .collect()
}

/// The facts stored for an enrollment, by column (only those known).
pub async fn facts(conn: &mut Conn, enrollment_id: &str) -> Result<Vec<(&'static str, Fact)>, SqlError> {
    let names: Vec<&'static str> = columns(&Inventory::default()).into_iter().map(|(c, _, _)| c).collect();
    let sql = format!("SELECT {} FROM mdm_enrollments WHERE id = $1", names.join(", "));
    let Some(row) = sqlx::query(AssertSqlSafe(sql)).bind(enrollment_id).fetch_optional(&mut *conn).await? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for name in names {
        if let Some(value) = fact_of(&row, name)? {
            out.push((name, value));
        }
    }
    Ok(out)
}

/// An app a device listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledApp {
    pub identifier: String,
    pub name: Option<String>,
    pub version: Option<String>,
    pub short_version: Option<String>,
    pub bundle_size: Option<i64>,
}

/// A profile a device listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledProfile {
    pub identifier: String,
    pub uuid: String,
    pub display_name: Option<String>,
    pub organization: Option<String>,
    pub managed: Option<bool>,
}

/// A certificate a device listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledCertificate {
    pub fingerprint: String,
    pub common_name: String,
    pub is_identity: bool,
    pub not_after: Option<i64>,
}

/// Rows a statement, well under SQLite's parameter limit.
const LIST_CHUNK: usize = 200;

/// Replaces the apps enrollment `id` listed (an identifier listed twice counts once).
pub async fn replace_apps(conn: &mut Conn, id: &str, apps: &[InstalledApp]) -> Result<(), SqlError> {
    sqlx::query("DELETE FROM mdm_installed_apps WHERE enrollment_id = $1").bind(id).execute(&mut *conn).await?;
    let apps = unique_by(apps, |a| a.identifier.as_str());
    for chunk in apps.chunks(LIST_CHUNK) {
        let mut sql = String::from(
            "INSERT INTO mdm_installed_apps (enrollment_id, identifier, name, version, short_version, bundle_size) VALUES ",
        );
        sql.push_str(&values(chunk.len(), 5));
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(id);
        for a in chunk {
            query = query
                .bind(a.identifier.clone())
                .bind(a.name.clone())
                .bind(a.version.clone())
                .bind(a.short_version.clone())
                .bind(a.bundle_size);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Replaces the profiles enrollment `id` listed.
pub async fn replace_profiles(conn: &mut Conn, id: &str, profiles: &[InstalledProfile]) -> Result<(), SqlError> {
    sqlx::query("DELETE FROM mdm_installed_profiles WHERE enrollment_id = $1").bind(id).execute(&mut *conn).await?;
    let profiles = unique_by(profiles, |p| p.identifier.as_str());
    for chunk in profiles.chunks(LIST_CHUNK) {
        let mut sql = String::from(
            "INSERT INTO mdm_installed_profiles (enrollment_id, identifier, uuid, display_name, organization, managed) \
             VALUES ",
        );
        sql.push_str(&values(chunk.len(), 5));
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(id);
        for p in chunk {
            query = query
                .bind(p.identifier.clone())
                .bind(p.uuid.clone())
                .bind(p.display_name.clone())
                .bind(p.organization.clone())
                .bind(p.managed.map(i64::from));
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Replaces the certificates enrollment `id` listed.
pub async fn replace_certificates(conn: &mut Conn, id: &str, certs: &[InstalledCertificate]) -> Result<(), SqlError> {
    sqlx::query("DELETE FROM mdm_installed_certificates WHERE enrollment_id = $1").bind(id).execute(&mut *conn).await?;
    let certs = unique_by(certs, |c| c.fingerprint.as_str());
    for chunk in certs.chunks(LIST_CHUNK) {
        let mut sql = String::from(
            "INSERT INTO mdm_installed_certificates (enrollment_id, fingerprint, common_name, is_identity, not_after) \
             VALUES ",
        );
        sql.push_str(&values(chunk.len(), 4));
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(id);
        for c in chunk {
            query = query
                .bind(c.fingerprint.clone())
                .bind(c.common_name.clone())
                .bind(i64::from(c.is_identity))
                .bind(c.not_after);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

fn unique_by<T>(items: &[T], key: impl Fn(&T) -> &str) -> Vec<&T> {
    let mut seen = std::collections::HashSet::new();
    items.iter().filter(|item| seen.insert(key(item).to_string())).collect()
}

/// `($1, $2, ..), ($1, ..)`: `rows` rows of the enrollment id (`$1`) and `per_row` values.
fn values(rows: usize, per_row: usize) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (0..per_row).map(|c| format!("${}", 2 + r * per_row + c)).collect();
            format!("($1, {})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn apps(conn: &mut Conn, id: &str) -> Result<Vec<InstalledApp>, SqlError> {
    let rows = sqlx::query(
        "SELECT identifier, name, version, short_version, bundle_size FROM mdm_installed_apps \
         WHERE enrollment_id = $1 ORDER BY identifier",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(InstalledApp {
                identifier: r.try_get("identifier")?,
                name: r.try_get("name")?,
                version: r.try_get("version")?,
                short_version: r.try_get("short_version")?,
                bundle_size: r.try_get("bundle_size")?,
            })
        })
        .collect()
}

pub async fn profiles(conn: &mut Conn, id: &str) -> Result<Vec<InstalledProfile>, SqlError> {
    let rows = sqlx::query(
        "SELECT identifier, uuid, display_name, organization, managed FROM mdm_installed_profiles \
         WHERE enrollment_id = $1 ORDER BY identifier",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(InstalledProfile {
                identifier: r.try_get("identifier")?,
                uuid: r.try_get("uuid")?,
                display_name: r.try_get("display_name")?,
                organization: r.try_get("organization")?,
                managed: r.try_get::<Option<i64>, _>("managed")?.map(|m| m != 0),
            })
        })
        .collect()
}

pub async fn certificates(conn: &mut Conn, id: &str) -> Result<Vec<InstalledCertificate>, SqlError> {
    let rows = sqlx::query(
        "SELECT fingerprint, common_name, is_identity, not_after FROM mdm_installed_certificates \
         WHERE enrollment_id = $1 ORDER BY common_name, fingerprint",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(InstalledCertificate {
                fingerprint: r.try_get("fingerprint")?,
                common_name: r.try_get("common_name")?,
                is_identity: r.try_get::<i64, _>("is_identity")? != 0,
                not_after: r.try_get("not_after")?,
            })
        })
        .collect()
}

/// Up to `limit` enrolled devices whose inventory is due at `now`, most overdue first; a device
/// still holding an unanswered `DeviceInformation` (offline, say) is left for later.
pub async fn due(conn: &mut Conn, now: i64, limit: i64) -> Result<Vec<crate::mdm::EnrollmentTarget>, SqlError> {
    let rows = sqlx::query(
        "SELECT e.id, e.udid, e.device_id, e.agency_code, e.status FROM mdm_enrollments e \
         WHERE e.status = 'enrolled' AND e.inventory_due_at <= $1 AND e.token_invalid_at IS NULL \
         AND NOT EXISTS (SELECT 1 FROM mdm_commands c WHERE c.enrollment_id = e.id \
             AND c.status IN ('queued', 'sent', 'not_now') AND c.request_type = 'DeviceInformation') \
         ORDER BY e.inventory_due_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(crate::mdm::target_from).collect()
}

/// Sets when each enrollment's next inventory is due.
pub async fn schedule(conn: &mut Conn, due: &[(String, i64)]) -> Result<(), SqlError> {
    for chunk in due.chunks(LIST_CHUNK) {
        // One statement a chunk: UPDATE .. SET inventory_due_at = CASE id WHEN .. END WHERE id IN (..).
        let mut cases = String::new();
        let mut ids = Vec::with_capacity(chunk.len());
        for i in 0..chunk.len() {
            cases.push_str(&format!(" WHEN ${} THEN ${}", i * 2 + 1, i * 2 + 2));
            ids.push(format!("${}", i * 2 + 1));
        }
        let sql = format!(
            "UPDATE mdm_enrollments SET inventory_due_at = CASE id{cases} END WHERE id IN ({})",
            ids.join(", ")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (id, at) in chunk {
            query = query.bind(id.clone()).bind(*at);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Enrollments whose inventory is overdue (for the operations page).
pub async fn overdue_count(conn: &mut Conn, now: i64) -> Result<i64, SqlError> {
    sqlx::query("SELECT COUNT(*) AS n FROM mdm_enrollments WHERE status = 'enrolled' AND inventory_due_at <= $1")
        .bind(now)
        .fetch_one(&mut *conn)
        .await?
        .try_get("n")
}

/// When enrollment `id` last answered an inventory, and when its next is due.
pub async fn schedule_of(conn: &mut Conn, id: &str) -> Result<(Option<i64>, Option<i64>), SqlError> {
    let row = sqlx::query("SELECT inventory_at, inventory_due_at FROM mdm_enrollments WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(r) => (r.try_get("inventory_at")?, r.try_get("inventory_due_at")?),
        None => (None, None),
    })
}
