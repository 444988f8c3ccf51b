//! Devices, their lines, the chain of custody, legal holds and lifecycle commands.

use custody_domain::catalog::DeviceType;
use custody_domain::device::DeviceState;
use serde::Deserialize;
use sqlx::Row;

use crate::{Conn, SqlError};

fn decode_error(message: impl std::fmt::Display) -> SqlError {
    SqlError::Decode(message.to_string().into())
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DeviceRow {
    pub id: String,
    pub agency_code: String,
    #[serde(deserialize_with = "named")]
    pub state: DeviceState,
    #[serde(deserialize_with = "named")]
    pub device_type: DeviceType,
    pub model_id: String,
    pub serial: Option<String>,
    pub imei: Option<String>,
    pub meid: Option<String>,
    /// `standard` or `agency_funded`.
    pub funding: String,
    /// The person the device was ordered for.
    pub ordered_for: Option<String>,
    pub holder_id: Option<String>,
    pub line_id: Option<String>,
    /// The request that ordered it.
    pub request_id: Option<String>,
    /// Where it physically is: vendor, deployment_center, courier, holder, return_shipment...
    pub location: String,
    /// Accessories issued with it, comma-separated.
    pub accessories: String,
    pub enrolled_at: Option<i64>,
    pub billing_stop_at: Option<i64>,
    pub destination: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

fn named<'de, D: serde::Deserializer<'de>, T: std::str::FromStr<Err = String>>(d: D) -> Result<T, D::Error> {
    let raw = String::deserialize(d)?;
    raw.parse().map_err(serde::de::Error::custom)
}

const COLUMNS: &str = "id, agency_code, state, device_type, model_id, serial, imei, meid, funding, ordered_for, \
                       holder_id, line_id, request_id, location, accessories, enrolled_at, billing_stop_at, \
                       destination, created_at, updated_at";

pub async fn insert(conn: &mut Conn, d: &DeviceRow) -> Result<(), SqlError> {
    sqlx::query(
        "INSERT INTO devices (id, agency_code, state, device_type, model_id, serial, imei, meid, funding, ordered_for, \
         holder_id, line_id, request_id, location, accessories, enrolled_at, billing_stop_at, destination, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
    )
    .bind(&d.id)
    .bind(&d.agency_code)
    .bind(d.state.as_str())
    .bind(d.device_type.as_str())
    .bind(&d.model_id)
    .bind(&d.serial)
    .bind(&d.imei)
    .bind(&d.meid)
    .bind(&d.funding)
    .bind(&d.ordered_for)
    .bind(&d.holder_id)
    .bind(&d.line_id)
    .bind(&d.request_id)
    .bind(&d.location)
    .bind(&d.accessories)
    .bind(d.enrolled_at)
    .bind(d.billing_stop_at)
    .bind(&d.destination)
    .bind(d.created_at)
    .bind(d.updated_at)
    .execute(&mut *conn)
    .await?;
    if d.state.in_fleet() {
        crate::counts::add(conn, &d.agency_code, &crate::counts::devices_of(d.device_type), 1).await?;
    }
    Ok(())
}

/// Writes every changeable column of `d`.
pub async fn update(conn: &mut Conn, d: &DeviceRow) -> Result<(), SqlError> {
    sqlx::query(
        "UPDATE devices SET state = $2, model_id = $3, serial = $4, imei = $5, meid = $6, holder_id = $7, line_id = $8, \
         location = $9, accessories = $10, enrolled_at = $11, billing_stop_at = $12, destination = $13, updated_at = $14 \
         WHERE id = $1",
    )
    .bind(&d.id)
    .bind(d.state.as_str())
    .bind(&d.model_id)
    .bind(&d.serial)
    .bind(&d.imei)
    .bind(&d.meid)
    .bind(&d.holder_id)
    .bind(&d.line_id)
    .bind(&d.location)
    .bind(&d.accessories)
    .bind(d.enrolled_at)
    .bind(d.billing_stop_at)
    .bind(&d.destination)
    .bind(d.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Assigns a device to the person it is meant for (a replacement from stock).
pub async fn update_assignment(conn: &mut Conn, id: &str, ordered_for: Option<&str>, at: i64) -> Result<(), SqlError> {
    sqlx::query("UPDATE devices SET ordered_for = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(ordered_for)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn one(conn: &mut Conn, clause: &str, value: &str) -> Result<Option<DeviceRow>, SqlError> {
    let inner = format!("SELECT {COLUMNS} FROM devices WHERE {clause} = $1");
    let columns: Vec<&str> = COLUMNS.split(", ").collect();
    let sql = crate::page_as_json(conn, &inner, &columns, "id");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(value).fetch_one(&mut *conn).await?;
    let page: String = row.try_get("page")?;
    let mut rows: Vec<DeviceRow> = serde_json::from_str(&page).map_err(decode_error)?;
    Ok(rows.pop())
}

pub async fn get(conn: &mut Conn, id: &str) -> Result<Option<DeviceRow>, SqlError> {
    one(conn, "id", id).await
}

pub async fn by_serial(conn: &mut Conn, serial: &str) -> Result<Option<DeviceRow>, SqlError> {
    one(conn, "serial", serial).await
}

pub async fn by_imei(conn: &mut Conn, imei: &str) -> Result<Option<DeviceRow>, SqlError> {
    one(conn, "imei", imei).await
}

/// The device a line is attached to, found by the line's phone number.
pub async fn by_phone(conn: &mut Conn, phone: &str) -> Result<Option<DeviceRow>, SqlError> {
    let row = sqlx::query("SELECT device_id FROM lines WHERE phone_number = $1")
        .bind(phone)
        .fetch_optional(&mut *conn)
        .await?;
    match row.map(|r| r.try_get::<Option<String>, _>("device_id")).transpose()?.flatten() {
        Some(id) => get(conn, &id).await,
        None => Ok(None),
    }
}

/// Which devices a list shows.
#[derive(Debug, Clone, Default)]
pub struct DeviceFilter {
    pub agency: Option<String>,
    pub states: Vec<DeviceState>,
    pub holder_id: Option<String>,
    /// Devices a person holds or was last assigned (ordered for).
    pub person_id: Option<String>,
    pub request_id: Option<String>,
}

/// Devices by id (time-ordered), after `after`, at most `limit`, as one JSON page.
///
/// Several states are read as one ordered range per state (each walks the index on
/// (agency, state, id) or (state, id) in id order) merged by id, so that a rare state never
/// turns into a scan of the agency's devices.
pub async fn list(
    conn: &mut Conn,
    filter: &DeviceFilter,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<DeviceRow>, SqlError> {
    let limit = limit.max(0);
    let states: Vec<Option<DeviceState>> =
        if filter.states.is_empty() { vec![None] } else { filter.states.iter().copied().map(Some).collect() };
    let mut binds: Vec<String> = Vec::new();
    let mut parts = Vec::new();
    for state in &states {
        let mut sql = format!("SELECT {COLUMNS} FROM devices WHERE 1 = 1");
        let mut bind = |sql: &mut String, clause: &str, value: String| {
            binds.push(value);
            sql.push_str(&clause.replace('?', &format!("${}", binds.len())));
        };
        if let Some(agency) = &filter.agency {
            bind(&mut sql, " AND agency_code = ?", agency.clone());
        }
        if let Some(state) = state {
            // States are a closed set of identifiers, written into the SQL.
            sql.push_str(&format!(" AND state = '{}'", state.as_str()));
        }
        if let Some(holder) = &filter.holder_id {
            bind(&mut sql, " AND holder_id = ?", holder.clone());
        }
        if let Some(person) = &filter.person_id {
            bind(&mut sql, " AND (holder_id = ?", person.clone());
            bind(&mut sql, " OR ordered_for = ?)", person.clone());
        }
        if let Some(request) = &filter.request_id {
            bind(&mut sql, " AND request_id = ?", request.clone());
        }
        if let Some(after) = after {
            bind(&mut sql, " AND id > ?", after.to_string());
        }
        sql.push_str(&format!(" ORDER BY id LIMIT {limit}"));
        parts.push(sql);
    }
    let inner = if parts.len() == 1 {
        parts.remove(0)
    } else {
        let union: Vec<String> = parts.iter().map(|p| format!("SELECT * FROM ({p}) AS s")).collect();
        format!("SELECT * FROM ({}) AS merged ORDER BY id LIMIT {limit}", union.join(" UNION ALL "))
    };
    let columns: Vec<&str> = COLUMNS.split(", ").collect();
    let sql = crate::page_as_json(conn, &inner, &columns, "id");
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for value in binds {
        query = query.bind(value);
    }
    let page: String = query.fetch_one(&mut *conn).await?.try_get("page")?;
    let rows: Vec<DeviceRow> = serde_json::from_str(&page).map_err(decode_error)?;
    Ok(crate::sort_page(conn, rows, |a, b| a.id.cmp(&b.id)))
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CustodyEvent {
    pub id: String,
    pub device_id: String,
    pub event: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub from_location: Option<String>,
    pub to_location: String,
    pub holder_before: Option<String>,
    pub holder_after: Option<String>,
    pub received_by: Option<String>,
    pub actor_label: String,
    pub note: Option<String>,
    pub at: i64,
}

const CUSTODY_COLUMNS: &str = "id, device_id, event, from_state, to_state, from_location, to_location, holder_before, \
                               holder_after, received_by, actor_label, note, at";

pub async fn insert_custody_event(conn: &mut Conn, e: &CustodyEvent) -> Result<(), SqlError> {
    sqlx::query(
        "INSERT INTO custody_events (id, device_id, event, from_state, to_state, from_location, to_location, \
         holder_before, holder_after, received_by, actor_label, note, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&e.id)
    .bind(&e.device_id)
    .bind(&e.event)
    .bind(&e.from_state)
    .bind(&e.to_state)
    .bind(&e.from_location)
    .bind(&e.to_location)
    .bind(&e.holder_before)
    .bind(&e.holder_after)
    .bind(&e.received_by)
    .bind(&e.actor_label)
    .bind(&e.note)
    .bind(e.at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The device's whole chain of custody, oldest first.
pub async fn custody_of(conn: &mut Conn, device_id: &str) -> Result<Vec<CustodyEvent>, SqlError> {
    let inner = format!("SELECT {CUSTODY_COLUMNS} FROM custody_events WHERE device_id = $1 ORDER BY at, id");
    let columns: Vec<&str> = CUSTODY_COLUMNS.split(", ").collect();
    let sql = crate::page_as_json(conn, &inner, &columns, "at, id");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(device_id).fetch_one(&mut *conn).await?;
    let page: String = row.try_get("page")?;
    let rows: Vec<CustodyEvent> = serde_json::from_str(&page).map_err(decode_error)?;
    Ok(crate::sort_page(conn, rows, |a, b| (a.at, &a.id).cmp(&(b.at, &b.id))))
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HoldRow {
    pub id: String,
    pub agency_code: String,
    pub matter: String,
    pub person_id: Option<String>,
    pub device_id: Option<String>,
    pub placed_by: String,
    pub placed_at: i64,
    pub released_by: Option<String>,
    pub released_at: Option<i64>,
}

const HOLD_COLUMNS: &str =
    "id, agency_code, matter, person_id, device_id, placed_by, placed_at, released_by, released_at";

pub async fn insert_hold(conn: &mut Conn, h: &HoldRow) -> Result<(), SqlError> {
    sqlx::query(
        "INSERT INTO legal_holds (id, agency_code, matter, person_id, device_id, placed_by, placed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&h.id)
    .bind(&h.agency_code)
    .bind(&h.matter)
    .bind(&h.person_id)
    .bind(&h.device_id)
    .bind(&h.placed_by)
    .bind(h.placed_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn release_hold(conn: &mut Conn, id: &str, by: &str, at: i64) -> Result<(), SqlError> {
    sqlx::query("UPDATE legal_holds SET released_by = $2, released_at = $3 WHERE id = $1 AND released_at IS NULL")
        .bind(id)
        .bind(by)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn holds_where(conn: &mut Conn, clause: &str, binds: &[&str]) -> Result<Vec<HoldRow>, SqlError> {
    let inner = format!("SELECT {HOLD_COLUMNS} FROM legal_holds WHERE {clause} ORDER BY placed_at, id");
    let columns: Vec<&str> = HOLD_COLUMNS.split(", ").collect();
    let sql = crate::page_as_json(conn, &inner, &columns, "placed_at, id");
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for value in binds {
        query = query.bind(value.to_string());
    }
    let page: String = query.fetch_one(&mut *conn).await?.try_get("page")?;
    let rows: Vec<HoldRow> = serde_json::from_str(&page).map_err(decode_error)?;
    Ok(crate::sort_page(conn, rows, |a, b| (a.placed_at, &a.id).cmp(&(b.placed_at, &b.id))))
}

pub async fn get_hold(conn: &mut Conn, id: &str) -> Result<Option<HoldRow>, SqlError> {
    Ok(holds_where(conn, "id = $1", &[id]).await?.pop())
}

/// Holds in force over a device: on the device itself or on the person holding it or it was
/// ordered for.
pub async fn holds_covering(conn: &mut Conn, device: &DeviceRow) -> Result<Vec<HoldRow>, SqlError> {
    let people: Vec<&str> =
        [device.holder_id.as_deref(), device.ordered_for.as_deref()].into_iter().flatten().collect();
    let (a, b) = (people.first().copied().unwrap_or(""), people.get(1).copied().unwrap_or(""));
    holds_where(
        conn,
        "released_at IS NULL AND (device_id = $1 OR (person_id IS NOT NULL AND person_id IN ($2, $3)))",
        &[device.id.as_str(), a, b],
    )
    .await
}

/// Of the devices `ids`, those a legal hold in force covers (on the device, or on the person who
/// holds it or for whom it was ordered): (device id, serial, the hold's matter). 500 ids a
/// statement.
pub async fn held_among(conn: &mut Conn, ids: &[String]) -> Result<Vec<(String, Option<String>, String)>, SqlError> {
    let mut held = Vec::new();
    for chunk in ids.chunks(500) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT d.id, d.serial, h.matter FROM legal_holds h JOIN devices d ON h.device_id = d.id \
             OR (h.person_id IS NOT NULL AND (h.person_id = d.holder_id OR h.person_id = d.ordered_for)) \
             WHERE h.released_at IS NULL AND d.id IN ({}) ORDER BY d.id, h.placed_at",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(id.clone());
        }
        for row in query.fetch_all(&mut *conn).await? {
            held.push((row.try_get("id")?, row.try_get("serial")?, row.try_get("matter")?));
        }
    }
    Ok(held)
}

/// An agency's holds, in force and released, oldest first.
pub async fn holds_of_agency(conn: &mut Conn, agency: &str) -> Result<Vec<HoldRow>, SqlError> {
    holds_where(conn, "agency_code = $1", &[agency]).await
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CommandRow {
    pub id: String,
    pub device_id: String,
    pub kind: String,
    /// `pending` while the device has no MDM enrollment to send it through; `not_needed`;
    /// `queued` once in the MDM queue (the MDM command has the same id), then the device's
    /// answer: `acknowledged` or `error`.
    pub status: String,
    pub requested_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

pub async fn insert_command(conn: &mut Conn, c: &CommandRow) -> Result<(), SqlError> {
    sqlx::query(
        "INSERT INTO device_commands (id, device_id, kind, status, requested_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(&c.id)
    .bind(&c.device_id)
    .bind(&c.kind)
    .bind(&c.status)
    .bind(&c.requested_by)
    .bind(c.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Mirrors the MDM command's outcome on the lifecycle command of the same id (if it is one).
pub async fn command_answered(conn: &mut Conn, id: &str, status: &str, at: i64) -> Result<(), SqlError> {
    sqlx::query("UPDATE device_commands SET status = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(status)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn commands_of(conn: &mut Conn, device_id: &str) -> Result<Vec<CommandRow>, SqlError> {
    let rows = sqlx::query(
        "SELECT id, device_id, kind, status, requested_by, created_at, updated_at FROM device_commands \
         WHERE device_id = $1 ORDER BY created_at, id",
    )
    .bind(device_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(CommandRow {
                id: r.try_get("id")?,
                device_id: r.try_get("device_id")?,
                kind: r.try_get("kind")?,
                status: r.try_get("status")?,
                requested_by: r.try_get("requested_by")?,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LineRow {
    pub id: String,
    pub agency_code: String,
    pub phone_number: String,
    pub carrier: String,
    /// `voice_only`, `voice_data` or `data_only`.
    pub plan_kind: String,
    /// `active`, `suspended` or `terminated`.
    pub status: String,
    pub international_from: Option<String>,
    pub international_until: Option<String>,
    pub device_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub async fn insert_line(conn: &mut Conn, l: &LineRow) -> Result<(), SqlError> {
    sqlx::query(
        "INSERT INTO lines (id, agency_code, phone_number, carrier, plan_kind, status, international_from, \
         international_until, device_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
    )
    .bind(&l.id)
    .bind(&l.agency_code)
    .bind(&l.phone_number)
    .bind(&l.carrier)
    .bind(&l.plan_kind)
    .bind(&l.status)
    .bind(&l.international_from)
    .bind(&l.international_until)
    .bind(&l.device_id)
    .bind(l.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn line_by_phone(conn: &mut Conn, phone: &str) -> Result<Option<LineRow>, SqlError> {
    let inner = "SELECT id, agency_code, phone_number, carrier, plan_kind, status, international_from, \
                 international_until, device_id, created_at, updated_at FROM lines WHERE phone_number = $1";
    let columns = [
        "id",
        "agency_code",
        "phone_number",
        "carrier",
        "plan_kind",
        "status",
        "international_from",
        "international_until",
        "device_id",
        "created_at",
        "updated_at",
    ];
    let sql = crate::page_as_json(conn, inner, &columns, "id");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(phone).fetch_one(&mut *conn).await?;
    let page: String = row.try_get("page")?;
    let mut rows: Vec<LineRow> = serde_json::from_str(&page).map_err(decode_error)?;
    Ok(rows.pop())
}

pub async fn line(conn: &mut Conn, id: &str) -> Result<Option<String>, SqlError> {
    let row = sqlx::query("SELECT phone_number FROM lines WHERE id = $1").bind(id).fetch_optional(&mut *conn).await?;
    row.map(|r| r.try_get("phone_number")).transpose()
}

/// Attaches a line to a device (or detaches it with `None`).
pub async fn attach_line(conn: &mut Conn, line_id: &str, device_id: Option<&str>, at: i64) -> Result<(), SqlError> {
    sqlx::query("UPDATE lines SET device_id = $2, updated_at = $3 WHERE id = $1")
        .bind(line_id)
        .bind(device_id)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Whether an approved (or fulfilled) `transfer_exception` request of the agency names the
/// device's serial number.
pub async fn transfer_approved(conn: &mut Conn, agency: &str, serial: &str) -> Result<bool, SqlError> {
    let needle = format!("%\"device_serial\":\"{}\"%", serial.replace(['%', '_', '"', '\\'], ""));
    let row = sqlx::query(
        "SELECT id FROM requests WHERE agency_code = $1 AND request_type = 'transfer_exception' \
         AND status IN ('approved', 'in_fulfillment', 'fulfilled') AND details LIKE $2 LIMIT 1",
    )
    .bind(agency)
    .bind(needle)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.is_some())
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SanitizationRow {
    pub id: String,
    pub device_id: String,
    pub agency_code: String,
    pub method_type: String,
    /// The certificate's fields (JSON of `custody_domain::sanitization::Record`).
    pub record: String,
    pub performed_by: String,
    pub performed_by_label: String,
    pub performed_at: i64,
    /// The validator's identity (JSON of `custody_domain::sanitization::Validation`).
    pub validation: Option<String>,
    pub validated_by: Option<String>,
    pub validated_by_label: Option<String>,
    pub validated_at: Option<i64>,
    /// A sanitization by remote erase: the erase request whose acknowledged `EraseDevice`
    /// completes it.
    #[serde(default)]
    pub erase_request_id: Option<String>,
}

const SANITIZATION_COLUMNS: &str = "id, device_id, agency_code, method_type, record, performed_by, performed_by_label, \
                                    performed_at, validation, validated_by, validated_by_label, validated_at, \
                                    erase_request_id";

pub async fn insert_sanitization(conn: &mut Conn, s: &SanitizationRow) -> Result<(), SqlError> {
    sqlx::query(
        "INSERT INTO sanitization_records (id, device_id, agency_code, method_type, record, performed_by, \
         performed_by_label, performed_at, erase_request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&s.id)
    .bind(&s.device_id)
    .bind(&s.agency_code)
    .bind(&s.method_type)
    .bind(&s.record)
    .bind(&s.performed_by)
    .bind(&s.performed_by_label)
    .bind(s.performed_at)
    .bind(&s.erase_request_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn validate_sanitization(
    conn: &mut Conn,
    id: &str,
    validation: &str,
    by: &str,
    by_label: &str,
    at: i64,
) -> Result<(), SqlError> {
    sqlx::query(
        "UPDATE sanitization_records SET validation = $2, validated_by = $3, validated_by_label = $4, validated_at = $5 \
         WHERE id = $1 AND validated_at IS NULL",
    )
    .bind(id)
    .bind(validation)
    .bind(by)
    .bind(by_label)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The device's sanitization records, newest first.
pub async fn sanitizations_of(conn: &mut Conn, device_id: &str) -> Result<Vec<SanitizationRow>, SqlError> {
    let inner = format!(
        "SELECT {SANITIZATION_COLUMNS} FROM sanitization_records WHERE device_id = $1 ORDER BY performed_at DESC, id DESC"
    );
    let columns: Vec<&str> = SANITIZATION_COLUMNS.split(", ").collect();
    let sql = crate::page_as_json(conn, &inner, &columns, "performed_at DESC, id DESC");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(device_id).fetch_one(&mut *conn).await?;
    let page: String = row.try_get("page")?;
    let rows: Vec<SanitizationRow> = serde_json::from_str(&page).map_err(decode_error)?;
    Ok(crate::sort_page(conn, rows, |a, b| (b.performed_at, &b.id).cmp(&(a.performed_at, &a.id))))
}

/// Inserts many devices, 400 to a statement (bulk loads: the demo, imports).
pub async fn insert_many(conn: &mut Conn, rows: &[DeviceRow]) -> Result<(), SqlError> {
    let head = format!("devices ({COLUMNS})");
    for chunk in rows.chunks(crate::rows_per_insert(conn, 20)) {
        let sql = crate::insert_values_sql(&head, 20, chunk.len());
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for d in chunk {
            query = query
                .bind(d.id.clone())
                .bind(d.agency_code.clone())
                .bind(d.state.as_str())
                .bind(d.device_type.as_str())
                .bind(d.model_id.clone())
                .bind(d.serial.clone())
                .bind(d.imei.clone())
                .bind(d.meid.clone())
                .bind(d.funding.clone())
                .bind(d.ordered_for.clone())
                .bind(d.holder_id.clone())
                .bind(d.line_id.clone())
                .bind(d.request_id.clone())
                .bind(d.location.clone())
                .bind(d.accessories.clone())
                .bind(d.enrolled_at)
                .bind(d.billing_stop_at)
                .bind(d.destination.clone())
                .bind(d.created_at)
                .bind(d.updated_at);
        }
        query.execute(&mut *conn).await?;
    }
    let mut fleet: std::collections::BTreeMap<(&str, String), i64> = std::collections::BTreeMap::new();
    for d in rows.iter().filter(|d| d.state.in_fleet()) {
        *fleet.entry((d.agency_code.as_str(), crate::counts::devices_of(d.device_type))).or_default() += 1;
    }
    for ((agency, metric), n) in fleet {
        crate::counts::add(conn, agency, &metric, n).await?;
    }
    Ok(())
}

/// Inserts many custody events, 400 to a statement (bulk loads: the demo).
pub async fn insert_custody_events_many(conn: &mut Conn, rows: &[CustodyEvent]) -> Result<(), SqlError> {
    let head = format!("custody_events ({CUSTODY_COLUMNS})");
    for chunk in rows.chunks(crate::rows_per_insert(conn, 13)) {
        let sql = crate::insert_values_sql(&head, 13, chunk.len());
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for e in chunk {
            query = query
                .bind(e.id.clone())
                .bind(e.device_id.clone())
                .bind(e.event.clone())
                .bind(e.from_state.clone())
                .bind(e.to_state.clone())
                .bind(e.from_location.clone())
                .bind(e.to_location.clone())
                .bind(e.holder_before.clone())
                .bind(e.holder_after.clone())
                .bind(e.received_by.clone())
                .bind(e.actor_label.clone())
                .bind(e.note.clone())
                .bind(e.at);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Inserts many lines, 500 to a statement.
pub async fn insert_lines_many(conn: &mut Conn, rows: &[LineRow]) -> Result<(), SqlError> {
    let head = "lines (id, agency_code, phone_number, carrier, plan_kind, status, international_from, \
                international_until, device_id, created_at, updated_at)";
    for chunk in rows.chunks(crate::rows_per_insert(conn, 11)) {
        let sql = crate::insert_values_sql(head, 11, chunk.len());
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for l in chunk {
            query = query
                .bind(l.id.clone())
                .bind(l.agency_code.clone())
                .bind(l.phone_number.clone())
                .bind(l.carrier.clone())
                .bind(l.plan_kind.clone())
                .bind(l.status.clone())
                .bind(l.international_from.clone())
                .bind(l.international_until.clone())
                .bind(l.device_id.clone())
                .bind(l.created_at)
                .bind(l.updated_at);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}
