//! The profile and app library, static device groups, assignments, and each enrollment's
//! managed state of the profiles and apps assigned to it: the SQL of convergence (what is
//! desired and not installed, what is installed and no longer desired, one batch of
//! enrollments at a time) and of the device's answers.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Conn, SqlError};

/// Rows a multi-row statement carries (bind parameters stay well under SQLite's limit).
const CHUNK: usize = 400;

/// A configuration profile of the library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileRow {
    pub id: String,
    pub identifier: String,
    pub name: String,
    pub kind: String,
    /// The typed settings (JSON); `None` for an uploaded profile.
    pub settings: Option<String>,
    /// The profile: the XML plist's text, or base64 of a binary one (CMS-signed or binary plist).
    pub payload: String,
    pub binary: bool,
    pub payload_uuid: String,
    /// Space-separated `PayloadType`s.
    pub payload_types: String,
    pub version: i64,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub archived_at: Option<i64>,
}

const PROFILE_COLUMNS: &str = "id, identifier, name, kind, settings, payload, is_binary, payload_uuid, payload_types, \
                               version, created_by, created_at, updated_at, archived_at";

fn profile_of(r: &AnyRow) -> Result<ProfileRow, SqlError> {
    Ok(ProfileRow {
        id: r.try_get("id")?,
        identifier: r.try_get("identifier")?,
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        settings: r.try_get("settings")?,
        payload: r.try_get("payload")?,
        binary: r.try_get::<i64, _>("is_binary")? != 0,
        payload_uuid: r.try_get("payload_uuid")?,
        payload_types: r.try_get("payload_types")?,
        version: r.try_get("version")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        archived_at: r.try_get("archived_at")?,
    })
}

pub async fn insert_profile(conn: &mut Conn, p: &ProfileRow) -> Result<(), SqlError> {
    let sql = format!(
        "INSERT INTO mdm_profiles ({PROFILE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&p.id)
        .bind(&p.identifier)
        .bind(&p.name)
        .bind(&p.kind)
        .bind(&p.settings)
        .bind(&p.payload)
        .bind(i64::from(p.binary))
        .bind(&p.payload_uuid)
        .bind(&p.payload_types)
        .bind(p.version)
        .bind(&p.created_by)
        .bind(p.created_at)
        .bind(p.updated_at)
        .bind(p.archived_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Writes a new version of a profile (name, settings, payload, UUID, version); only while it is
/// not archived. True when written.
pub async fn update_profile(conn: &mut Conn, p: &ProfileRow) -> Result<bool, SqlError> {
    let done = sqlx::query(
        "UPDATE mdm_profiles SET name = $2, settings = $3, payload = $4, is_binary = $5, payload_uuid = $6, \
         payload_types = $7, version = $8, updated_at = $9 WHERE id = $1 AND archived_at IS NULL",
    )
    .bind(&p.id)
    .bind(&p.name)
    .bind(&p.settings)
    .bind(&p.payload)
    .bind(i64::from(p.binary))
    .bind(&p.payload_uuid)
    .bind(&p.payload_types)
    .bind(p.version)
    .bind(p.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Archives a profile: no longer desired anywhere. True when it was active.
pub async fn archive_profile(conn: &mut Conn, id: &str, now: i64) -> Result<bool, SqlError> {
    let done =
        sqlx::query("UPDATE mdm_profiles SET archived_at = $2, updated_at = $2 WHERE id = $1 AND archived_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn profile(conn: &mut Conn, id: &str) -> Result<Option<ProfileRow>, SqlError> {
    let sql = format!("SELECT {PROFILE_COLUMNS} FROM mdm_profiles WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(profile_of).transpose()
}

pub async fn profile_id_by_identifier(conn: &mut Conn, identifier: &str) -> Result<Option<String>, SqlError> {
    let row = sqlx::query("SELECT id FROM mdm_profiles WHERE identifier = $1")
        .bind(identifier)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| r.try_get("id")).transpose()
}

/// The library by name (archived ones too when asked), at most `limit`.
pub async fn list_profiles(conn: &mut Conn, archived: bool, limit: i64) -> Result<Vec<ProfileRow>, SqlError> {
    let filter = if archived { "" } else { "WHERE archived_at IS NULL" };
    let sql = format!("SELECT {PROFILE_COLUMNS} FROM mdm_profiles {filter} ORDER BY name, id LIMIT $1");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(limit).fetch_all(&mut *conn).await?;
    rows.iter().map(profile_of).collect()
}

/// An app of the library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRow {
    pub id: String,
    /// `store` or `enterprise`.
    pub kind: String,
    pub store_id: Option<i64>,
    pub manifest_url: Option<String>,
    pub bundle_id: String,
    pub name: String,
    pub remove_on_unenroll: bool,
    pub created_by: String,
    pub created_at: i64,
    pub archived_at: Option<i64>,
}

const APP_COLUMNS: &str =
    "id, kind, store_id, manifest_url, bundle_id, name, remove_on_unenroll, created_by, created_at, archived_at";

fn app_of(r: &AnyRow) -> Result<AppRow, SqlError> {
    Ok(AppRow {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        store_id: r.try_get("store_id")?,
        manifest_url: r.try_get("manifest_url")?,
        bundle_id: r.try_get("bundle_id")?,
        name: r.try_get("name")?,
        remove_on_unenroll: r.try_get::<i64, _>("remove_on_unenroll")? != 0,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        archived_at: r.try_get("archived_at")?,
    })
}

pub async fn insert_app(conn: &mut Conn, a: &AppRow) -> Result<(), SqlError> {
    let sql = format!("INSERT INTO mdm_apps ({APP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&a.id)
        .bind(&a.kind)
        .bind(a.store_id)
        .bind(&a.manifest_url)
        .bind(&a.bundle_id)
        .bind(&a.name)
        .bind(i64::from(a.remove_on_unenroll))
        .bind(&a.created_by)
        .bind(a.created_at)
        .bind(a.archived_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn app(conn: &mut Conn, id: &str) -> Result<Option<AppRow>, SqlError> {
    let sql = format!("SELECT {APP_COLUMNS} FROM mdm_apps WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(app_of).transpose()
}

pub async fn list_apps(conn: &mut Conn, archived: bool, limit: i64) -> Result<Vec<AppRow>, SqlError> {
    let filter = if archived { "" } else { "WHERE archived_at IS NULL" };
    let sql = format!("SELECT {APP_COLUMNS} FROM mdm_apps {filter} ORDER BY name, id LIMIT $1");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(limit).fetch_all(&mut *conn).await?;
    rows.iter().map(app_of).collect()
}

/// Archives an app: removed from every device that has it from us. True when it was active.
pub async fn archive_app(conn: &mut Conn, id: &str, now: i64) -> Result<bool, SqlError> {
    let done = sqlx::query("UPDATE mdm_apps SET archived_at = $2 WHERE id = $1 AND archived_at IS NULL")
        .bind(id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A static group of inventory devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    pub id: String,
    pub name: String,
    /// The agency its devices belong to; `None` for a central group.
    pub agency_code: Option<String>,
    pub description: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    /// How many devices it holds (filled by reads).
    pub members: i64,
}

const GROUP_SELECT: &str = "SELECT g.id, g.name, g.agency_code, g.description, g.created_by, g.created_at, \
     (SELECT COUNT(*) FROM mdm_group_members m WHERE m.group_id = g.id) AS members FROM mdm_groups g";

fn group_of(r: &AnyRow) -> Result<GroupRow, SqlError> {
    Ok(GroupRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        agency_code: r.try_get("agency_code")?,
        description: r.try_get("description")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        members: r.try_get("members")?,
    })
}

pub async fn insert_group(conn: &mut Conn, g: &GroupRow) -> Result<(), SqlError> {
    sqlx::query(
        "INSERT INTO mdm_groups (id, name, agency_code, description, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&g.id)
    .bind(&g.name)
    .bind(&g.agency_code)
    .bind(&g.description)
    .bind(&g.created_by)
    .bind(g.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn group(conn: &mut Conn, id: &str) -> Result<Option<GroupRow>, SqlError> {
    let sql = format!("{GROUP_SELECT} WHERE g.id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(group_of).transpose()
}

/// Groups by name: those of `agency` only when given.
pub async fn list_groups(conn: &mut Conn, agency: Option<&str>, limit: i64) -> Result<Vec<GroupRow>, SqlError> {
    let rows = match agency {
        Some(agency) => {
            let sql = format!("{GROUP_SELECT} WHERE g.agency_code = $1 ORDER BY g.name, g.id LIMIT $2");
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(agency).bind(limit).fetch_all(&mut *conn).await?
        }
        None => {
            let sql = format!("{GROUP_SELECT} ORDER BY g.name, g.id LIMIT $1");
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(limit).fetch_all(&mut *conn).await?
        }
    };
    rows.iter().map(group_of).collect()
}

/// The agency of each of `ids` that names an inventory device.
pub async fn device_agencies(conn: &mut Conn, ids: &[String]) -> Result<Vec<(String, String)>, SqlError> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!("SELECT id, agency_code FROM devices WHERE id IN ({})", marks.join(", "));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            found.push((row.try_get("id")?, row.try_get("agency_code")?));
        }
    }
    Ok(found)
}

/// Adds devices to a group (those already in it are left). Returns how many were added.
pub async fn add_members(conn: &mut Conn, group_id: &str, device_ids: &[String], now: i64) -> Result<u64, SqlError> {
    let mut added = 0;
    for chunk in device_ids.chunks(CHUNK) {
        let values: Vec<String> = (0..chunk.len()).map(|i| format!("($1, ${}, $2)", i + 3)).collect();
        let sql = format!(
            "INSERT INTO mdm_group_members (group_id, device_id, added_at) VALUES {} \
             ON CONFLICT (group_id, device_id) DO NOTHING",
            values.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(group_id).bind(now);
        for id in chunk {
            query = query.bind(id);
        }
        added += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(added)
}

/// Removes devices from a group. Returns how many were in it.
pub async fn remove_members(conn: &mut Conn, group_id: &str, device_ids: &[String]) -> Result<u64, SqlError> {
    let mut removed = 0;
    for chunk in device_ids.chunks(CHUNK) {
        let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!("DELETE FROM mdm_group_members WHERE group_id = $1 AND device_id IN ({})", marks.join(", "));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(group_id);
        for id in chunk {
            query = query.bind(id);
        }
        removed += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(removed)
}

/// A device of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub device_id: String,
    pub agency_code: String,
    pub serial: Option<String>,
    pub device_type: String,
    pub added_at: i64,
}

pub async fn members(conn: &mut Conn, group_id: &str, limit: i64) -> Result<Vec<MemberRow>, SqlError> {
    let rows = sqlx::query(
        "SELECT m.device_id, d.agency_code, d.serial, d.device_type, m.added_at FROM mdm_group_members m \
         JOIN devices d ON d.id = m.device_id WHERE m.group_id = $1 ORDER BY m.device_id LIMIT $2",
    )
    .bind(group_id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(MemberRow {
                device_id: r.try_get("device_id")?,
                agency_code: r.try_get("agency_code")?,
                serial: r.try_get("serial")?,
                device_type: r.try_get("device_type")?,
                added_at: r.try_get("added_at")?,
            })
        })
        .collect()
}

/// A profile or an app assigned to an agency, a device type or a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentRow {
    pub id: String,
    /// `profile` or `app`.
    pub item_kind: String,
    pub item_id: String,
    /// `agency`, `device_type` or `group`.
    pub target_kind: String,
    pub target: String,
    pub created_by: String,
    pub created_at: i64,
    /// The item's name (filled by reads).
    pub item_name: String,
    /// The group's agency when the target is a group (filled by reads).
    pub group_agency: Option<String>,
}

const ASSIGNMENT_SELECT: &str = "SELECT a.id, a.item_kind, a.item_id, a.target_kind, a.target, a.created_by, \
     a.created_at, COALESCE(p.name, ap.name, '') AS item_name, g.agency_code AS group_agency \
     FROM mdm_assignments a \
     LEFT JOIN mdm_profiles p ON a.item_kind = 'profile' AND p.id = a.item_id \
     LEFT JOIN mdm_apps ap ON a.item_kind = 'app' AND ap.id = a.item_id \
     LEFT JOIN mdm_groups g ON a.target_kind = 'group' AND g.id = a.target";

fn assignment_of(r: &AnyRow) -> Result<AssignmentRow, SqlError> {
    Ok(AssignmentRow {
        id: r.try_get("id")?,
        item_kind: r.try_get("item_kind")?,
        item_id: r.try_get("item_id")?,
        target_kind: r.try_get("target_kind")?,
        target: r.try_get("target")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        item_name: r.try_get("item_name")?,
        group_agency: r.try_get("group_agency")?,
    })
}

pub async fn insert_assignment(conn: &mut Conn, a: &AssignmentRow) -> Result<(), SqlError> {
    sqlx::query(
        "INSERT INTO mdm_assignments (id, item_kind, item_id, target_kind, target, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&a.id)
    .bind(&a.item_kind)
    .bind(&a.item_id)
    .bind(&a.target_kind)
    .bind(&a.target)
    .bind(&a.created_by)
    .bind(a.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn assignment(conn: &mut Conn, id: &str) -> Result<Option<AssignmentRow>, SqlError> {
    let sql = format!("{ASSIGNMENT_SELECT} WHERE a.id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(assignment_of).transpose()
}

/// Deletes every assignment of an item (it was archived). Returns how many.
pub async fn delete_assignments_of(conn: &mut Conn, item: Item, item_id: &str) -> Result<u64, SqlError> {
    let done = sqlx::query("DELETE FROM mdm_assignments WHERE item_kind = $1 AND item_id = $2")
        .bind(item.as_str())
        .bind(item_id)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

pub async fn delete_assignment(conn: &mut Conn, id: &str) -> Result<bool, SqlError> {
    let done = sqlx::query("DELETE FROM mdm_assignments WHERE id = $1").bind(id).execute(&mut *conn).await?;
    Ok(done.rows_affected() == 1)
}

/// Assignments, newest first: of one item, or onto one target, or all.
#[derive(Debug, Clone, Default)]
pub struct AssignmentFilter<'a> {
    pub item: Option<(&'a str, &'a str)>,
    pub target: Option<(&'a str, &'a str)>,
}

pub async fn list_assignments(
    conn: &mut Conn,
    filter: &AssignmentFilter<'_>,
    limit: i64,
) -> Result<Vec<AssignmentRow>, SqlError> {
    let rows = match (filter.item, filter.target) {
        (Some((kind, id)), _) => {
            let sql = format!(
                "{ASSIGNMENT_SELECT} WHERE a.item_kind = $1 AND a.item_id = $2 ORDER BY a.created_at DESC, a.id LIMIT $3"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(kind).bind(id).bind(limit).fetch_all(&mut *conn).await?
        }
        (None, Some((kind, target))) => {
            let sql = format!(
                "{ASSIGNMENT_SELECT} WHERE a.target_kind = $1 AND a.target = $2 ORDER BY a.created_at DESC, a.id LIMIT $3"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(kind).bind(target).bind(limit).fetch_all(&mut *conn).await?
        }
        (None, None) => {
            let sql = format!("{ASSIGNMENT_SELECT} ORDER BY a.created_at DESC, a.id LIMIT $1");
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(limit).fetch_all(&mut *conn).await?
        }
    };
    rows.iter().map(assignment_of).collect()
}

/// Which library an item belongs to: the tables and columns of its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Item {
    Profile,
    App,
}

impl Item {
    pub fn as_str(self) -> &'static str {
        match self {
            Item::Profile => "profile",
            Item::App => "app",
        }
    }

    fn items(self) -> &'static str {
        match self {
            Item::Profile => "mdm_profiles",
            Item::App => "mdm_apps",
        }
    }

    fn states(self) -> &'static str {
        match self {
            Item::Profile => "mdm_profile_states",
            Item::App => "mdm_app_states",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Item::Profile => "profile_id",
            Item::App => "app_id",
        }
    }

    /// The item's current version (apps have one version).
    fn version(self) -> &'static str {
        match self {
            Item::Profile => "i.version",
            Item::App => "CAST(1 AS BIGINT)",
        }
    }

    /// What removes the item from a device: the profile's identifier, the app's bundle id.
    fn handle(self) -> &'static str {
        match self {
            Item::Profile => "i.identifier",
            Item::App => "i.bundle_id",
        }
    }
}

/// The next `limit` enrolled enrollments after `after` (by id): the keys of a convergence batch.
pub async fn enrollment_batch(conn: &mut Conn, after: &str, limit: i64) -> Result<Vec<String>, SqlError> {
    let rows = sqlx::query("SELECT id FROM mdm_enrollments WHERE status = 'enrolled' AND id > $1 ORDER BY id LIMIT $2")
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| r.try_get("id")).collect()
}

/// The enrollments of the batch `(after, last]` that can receive commands, and what each should
/// hold of `item`: assigned to its agency, to its inventory device's type, or to a group holding
/// its device.
fn desired_sql(item: Item) -> String {
    let kind = item.as_str();
    format!(
        "WITH batch AS (SELECT id, udid, agency_code, device_id, authenticated_at FROM mdm_enrollments \
             WHERE status = 'enrolled' AND token_invalid_at IS NULL AND id > $1 AND id <= $2), \
         desired AS ( \
             SELECT b.id AS enrollment_id, a.item_id FROM batch b JOIN mdm_assignments a \
                 ON a.target_kind = 'agency' AND a.target = b.agency_code AND a.item_kind = '{kind}' \
             UNION SELECT b.id, a.item_id FROM batch b JOIN devices d ON d.id = b.device_id JOIN mdm_assignments a \
                 ON a.target_kind = 'device_type' AND a.target = d.device_type AND a.item_kind = '{kind}' \
             UNION SELECT b.id, a.item_id FROM batch b JOIN mdm_group_members m ON m.device_id = b.device_id \
                 JOIN mdm_assignments a ON a.target_kind = 'group' AND a.target = m.group_id AND a.item_kind = '{kind}') "
    )
}

/// A command convergence owes one enrollment for one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owed {
    pub enrollment_id: String,
    pub udid: String,
    pub agency_code: String,
    pub device_id: Option<String>,
    pub item_id: String,
    /// The version to install, or the state's version for a removal.
    pub version: i64,
    /// The profile identifier or the app's bundle id.
    pub handle: String,
    /// For removals: the state's status (`installed`, `installing`, `missing`, `failed`).
    pub status: String,
    /// For removals: whether the state's command is still pending.
    pub outstanding: bool,
}

fn owed_of(r: &AnyRow) -> Result<Owed, SqlError> {
    Ok(Owed {
        enrollment_id: r.try_get("enrollment_id")?,
        udid: r.try_get("udid")?,
        agency_code: r.try_get("agency_code")?,
        device_id: r.try_get("device_id")?,
        item_id: r.try_get("item_id")?,
        version: r.try_get("version")?,
        handle: r.try_get("handle")?,
        status: r.try_get("status")?,
        outstanding: r.try_get::<i64, _>("outstanding")? != 0,
    })
}

/// Pending commands: queued, sent, or deferred by `NotNow`.
const PENDING: &str = "('queued', 'sent', 'not_now')";

/// What the batch `(after, last]` should hold of `item` and does not at the current version,
/// with no command outstanding for it. A state older than the enrollment's last `Authenticate`
/// is stale: the device enrolled again, without what MDM had installed.
pub async fn to_install(conn: &mut Conn, item: Item, after: &str, last: &str) -> Result<Vec<Owed>, SqlError> {
    let (items, states, column, version, handle) =
        (item.items(), item.states(), item.column(), item.version(), item.handle());
    let sql = format!(
        "{desired} SELECT b.id AS enrollment_id, b.udid, b.agency_code, b.device_id, i.id AS item_id, \
             {version} AS version, {handle} AS handle, COALESCE(s.status, '') AS status, CAST(0 AS BIGINT) AS outstanding \
         FROM desired x JOIN batch b ON b.id = x.enrollment_id \
         JOIN {items} i ON i.id = x.item_id AND i.archived_at IS NULL \
         LEFT JOIN {states} s ON s.enrollment_id = x.enrollment_id AND s.{column} = x.item_id \
         LEFT JOIN mdm_commands c ON c.id = s.command_id \
         WHERE s.status IS NULL OR NOT ( \
             (s.status IN ('installing', 'removing') AND COALESCE(c.status, '') IN {PENDING}) \
             OR (s.updated_at >= b.authenticated_at AND s.status = 'installed' AND s.version >= {version}) \
             OR (s.updated_at >= b.authenticated_at AND s.status = 'failed' AND s.last_action = 'install' \
                 AND s.version >= {version})) \
         ORDER BY b.id, i.id",
        desired = desired_sql(item)
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after).bind(last).fetch_all(&mut *conn).await?;
    rows.iter().map(owed_of).collect()
}

/// What the batch `(after, last]` holds of `item` from us (or is getting) and should no longer:
/// unassigned, or archived. A removal that failed is left as it is; a stale state (the device
/// enrolled again since) reads `missing`: nothing to remove.
pub async fn to_remove(conn: &mut Conn, item: Item, after: &str, last: &str) -> Result<Vec<Owed>, SqlError> {
    let (items, states, column, handle) = (item.items(), item.states(), item.column(), item.handle());
    let sql = format!(
        "{desired} SELECT b.id AS enrollment_id, b.udid, b.agency_code, b.device_id, s.{column} AS item_id, \
             s.version AS version, {handle} AS handle, \
             CASE WHEN s.updated_at < b.authenticated_at AND s.status <> 'installing' THEN 'missing' \
                 ELSE s.status END AS status, \
             CASE WHEN COALESCE(c.status, '') IN {PENDING} THEN CAST(1 AS BIGINT) ELSE CAST(0 AS BIGINT) END AS outstanding \
         FROM batch b JOIN {states} s ON s.enrollment_id = b.id \
         JOIN {items} i ON i.id = s.{column} \
         LEFT JOIN mdm_commands c ON c.id = s.command_id \
         WHERE s.status IN ('installing', 'installed', 'missing', 'failed') \
           AND NOT (s.status = 'failed' AND s.last_action = 'remove') \
           AND (i.archived_at IS NOT NULL OR NOT EXISTS ( \
               SELECT 1 FROM desired x WHERE x.enrollment_id = s.enrollment_id AND x.item_id = s.{column})) \
         ORDER BY b.id, s.{column}",
        desired = desired_sql(item)
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after).bind(last).fetch_all(&mut *conn).await?;
    rows.iter().map(owed_of).collect()
}

/// The state of one enrollment's item as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateWrite {
    pub enrollment_id: String,
    pub item_id: String,
    pub status: String,
    /// `install` or `remove`.
    pub last_action: String,
    pub version: i64,
    pub command_id: Option<String>,
}

/// Writes the states (inserted, or replacing the pair's row), clearing their errors.
pub async fn set_states(conn: &mut Conn, item: Item, rows: &[StateWrite], now: i64) -> Result<(), SqlError> {
    let (states, column) = (item.states(), item.column());
    for chunk in rows.chunks(CHUNK) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let p = 1 + 6 * i;
                format!("(${}, ${}, ${}, ${}, ${}, ${}, NULL, ${})", p + 1, p + 2, p + 3, p + 4, p + 5, p + 6, 1)
            })
            .collect();
        let sql = format!(
            "INSERT INTO {states} (enrollment_id, {column}, status, last_action, version, command_id, error, updated_at) \
             VALUES {} ON CONFLICT (enrollment_id, {column}) DO UPDATE SET status = excluded.status, \
             last_action = excluded.last_action, version = excluded.version, command_id = excluded.command_id, \
             error = NULL, updated_at = excluded.updated_at",
            values.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
        for r in chunk {
            query = query
                .bind(&r.enrollment_id)
                .bind(&r.item_id)
                .bind(&r.status)
                .bind(&r.last_action)
                .bind(r.version)
                .bind(&r.command_id);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Records the answer to the command `command_id` on the state waiting for it: `installed` /
/// `removed`, or `failed` with `error`. A repeated answer changes nothing.
pub async fn command_answered(
    conn: &mut Conn,
    item: Item,
    command_id: &str,
    status: &str,
    error: Option<&str>,
    now: i64,
) -> Result<bool, SqlError> {
    let sql = format!(
        "UPDATE {} SET status = $2, error = $3, updated_at = $4 WHERE command_id = $1 \
         AND status IN ('installing', 'removing')",
        item.states()
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(command_id)
        .bind(status)
        .bind(error)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// One enrollment's state of an item, with what the device should report for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldItem {
    pub item_id: String,
    pub status: String,
    pub version: i64,
    /// The profile identifier or app bundle id.
    pub handle: String,
    /// The profile's current PayloadUUID (empty for apps).
    pub uuid: String,
    pub current_version: i64,
}

/// The states of one enrollment for `item`.
pub async fn held(conn: &mut Conn, item: Item, enrollment_id: &str) -> Result<Vec<HeldItem>, SqlError> {
    let uuid = match item {
        Item::Profile => "i.payload_uuid",
        Item::App => "''",
    };
    let sql = format!(
        "SELECT s.{column} AS item_id, s.status, s.version, {handle} AS handle, {uuid} AS uuid, \
             {version} AS current_version FROM {states} s JOIN {items} i ON i.id = s.{column} \
         WHERE s.enrollment_id = $1",
        column = item.column(),
        handle = item.handle(),
        version = item.version(),
        states = item.states(),
        items = item.items(),
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(enrollment_id).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| {
            Ok(HeldItem {
                item_id: r.try_get("item_id")?,
                status: r.try_get("status")?,
                version: r.try_get("version")?,
                handle: r.try_get("handle")?,
                uuid: r.try_get("uuid")?,
                current_version: r.try_get("current_version")?,
            })
        })
        .collect()
}

/// Sets one enrollment's state of an item from what the device listed (no command involved).
pub async fn set_listed(
    conn: &mut Conn,
    item: Item,
    enrollment_id: &str,
    item_id: &str,
    status: &str,
    version: i64,
    now: i64,
) -> Result<(), SqlError> {
    let sql = format!(
        "UPDATE {} SET status = $3, version = $4, updated_at = $5 WHERE enrollment_id = $1 AND {} = $2",
        item.states(),
        item.column()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(enrollment_id)
        .bind(item_id)
        .bind(status)
        .bind(version)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// One device's state of an item, for an item's status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceStateRow {
    pub enrollment_id: String,
    pub udid: String,
    pub agency_code: String,
    pub device_id: Option<String>,
    pub device_name: Option<String>,
    pub serial_number: Option<String>,
    pub status: String,
    pub version: i64,
    pub error: Option<String>,
    pub updated_at: i64,
}

/// The devices' states of one item (of one agency when given), at most `limit`.
pub async fn item_states(
    conn: &mut Conn,
    item: Item,
    item_id: &str,
    agency: Option<&str>,
    limit: i64,
) -> Result<Vec<DeviceStateRow>, SqlError> {
    let sql = format!(
        "SELECT s.enrollment_id, e.udid, e.agency_code, e.device_id, e.device_name, e.serial_number, s.status, \
             s.version, s.error, s.updated_at FROM {states} s JOIN mdm_enrollments e ON e.id = s.enrollment_id \
         WHERE s.{column} = $1 AND ($2 = '' OR e.agency_code = $2) ORDER BY s.enrollment_id LIMIT $3",
        states = item.states(),
        column = item.column()
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(item_id)
        .bind(agency.unwrap_or(""))
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(DeviceStateRow {
                enrollment_id: r.try_get("enrollment_id")?,
                udid: r.try_get("udid")?,
                agency_code: r.try_get("agency_code")?,
                device_id: r.try_get("device_id")?,
                device_name: r.try_get("device_name")?,
                serial_number: r.try_get("serial_number")?,
                status: r.try_get("status")?,
                version: r.try_get("version")?,
                error: r.try_get("error")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect()
}

/// A profile or app held by one device, for the device's page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceItemRow {
    /// `profile` or `app`.
    pub item_kind: String,
    pub item_id: String,
    pub name: String,
    pub status: String,
    pub version: i64,
    pub error: Option<String>,
    pub updated_at: i64,
}

/// The profiles and apps of the enrollment of inventory device `device_id`, by kind and name.
pub async fn device_items(conn: &mut Conn, device_id: &str) -> Result<Vec<DeviceItemRow>, SqlError> {
    let rows = sqlx::query(
        "SELECT 'profile' AS item_kind, p.id AS item_id, p.name, s.status, s.version, s.error, s.updated_at \
         FROM mdm_enrollments e JOIN mdm_profile_states s ON s.enrollment_id = e.id \
         JOIN mdm_profiles p ON p.id = s.profile_id WHERE e.device_id = $1 \
         UNION ALL SELECT 'app' AS item_kind, a.id AS item_id, a.name, s.status, s.version, s.error, s.updated_at \
         FROM mdm_enrollments e JOIN mdm_app_states s ON s.enrollment_id = e.id \
         JOIN mdm_apps a ON a.id = s.app_id WHERE e.device_id = $1",
    )
    .bind(device_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut items = rows
        .iter()
        .map(|r| {
            Ok(DeviceItemRow {
                item_kind: r.try_get("item_kind")?,
                item_id: r.try_get("item_id")?,
                name: r.try_get("name")?,
                status: r.try_get("status")?,
                version: r.try_get("version")?,
                error: r.try_get("error")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect::<Result<Vec<_>, SqlError>>()?;
    items.sort_by(|a, b| b.item_kind.cmp(&a.item_kind).then_with(|| a.name.cmp(&b.name)));
    Ok(items)
}
