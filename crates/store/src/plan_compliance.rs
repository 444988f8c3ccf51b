//! The facts the plan compliance report holds against an agency's Mobile Device Plan: the
//! people holding more than one data plan, and every device in use with its holder. Only the
//! facts: whether the plan covers them is the domain's rule (`domain::plan`), applied by the
//! caller.
//!
//! A device is in use in the states of `domain::plan::IN_USE` with a holder; a line is a data
//! plan when its kind carries data (`domain::usage::LinePlan::has_data`) and it is active or
//! suspended. Lines are found through the device (`devices.line_id`, the primary key of `lines`);
//! devices through `devices_by_agency_state (agency_code, state, id)`: no other index is needed.

use custody_domain::catalog::DeviceType;
use custody_domain::plan::IN_USE;
use custody_domain::usage::LinePlan;
use serde::Deserialize;
use sqlx::{AssertSqlSafe, Row};

use crate::{Conn, SqlError};

fn decode_error(message: impl std::fmt::Display) -> SqlError {
    SqlError::Decode(message.to_string().into())
}

fn device_type(raw: &str) -> Result<DeviceType, SqlError> {
    raw.parse().map_err(decode_error)
}

/// A list of closed identifiers (states, line kinds) as SQL: `'a', 'b'`.
fn sql_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names.into_iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
}

fn in_use_states() -> String {
    sql_list(IN_USE.iter().map(|s| s.as_str()))
}

/// One data plan of a person who holds more than one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPlanRow {
    pub person_id: String,
    pub given_name: String,
    pub family_name: String,
    pub device_id: String,
    pub serial: Option<String>,
    pub device_type: DeviceType,
    pub phone_number: String,
    /// `voice_data` or `data_only`.
    pub plan_kind: String,
}

#[derive(Deserialize)]
struct RawDataPlan {
    person_id: String,
    given_name: String,
    family_name: String,
    device_id: String,
    serial: Option<String>,
    device_type: String,
    phone_number: String,
    plan_kind: String,
}

/// Every data plan of each person of `agency` who holds more than one, in SQL (`GROUP BY ...
/// HAVING`) however many the devices; ordered by family name, given name, person id, then
/// phone number.
pub async fn multiple_data_plans(conn: &mut Conn, agency: &str) -> Result<Vec<DataPlanRow>, SqlError> {
    let kinds = sql_list(LinePlan::ALL.into_iter().filter(|k| k.has_data()).map(LinePlan::as_str));
    let inner = format!(
        "WITH data_plans AS ( \
           SELECT d.holder_id, d.id AS device_id, d.serial, d.device_type, l.phone_number, l.plan_kind \
           FROM devices d JOIN lines l ON l.id = d.line_id \
           WHERE d.agency_code = $1 AND d.state IN ({states}) AND d.holder_id IS NOT NULL \
             AND l.plan_kind IN ({kinds}) AND l.status IN ('active', 'suspended')), \
         several AS (SELECT holder_id FROM data_plans GROUP BY holder_id HAVING COUNT(*) > 1) \
         SELECT p.id AS person_id, p.given_name, p.family_name, dp.device_id, dp.serial, dp.device_type, \
           dp.phone_number, dp.plan_kind \
         FROM several JOIN data_plans dp ON dp.holder_id = several.holder_id JOIN people p ON p.id = several.holder_id",
        states = in_use_states(),
    );
    let columns =
        ["person_id", "given_name", "family_name", "device_id", "serial", "device_type", "phone_number", "plan_kind"];
    let sql = crate::page_as_json(conn, &inner, &columns, "family_name, given_name, person_id, phone_number");
    let page: String = sqlx::query(AssertSqlSafe(sql)).bind(agency).fetch_one(&mut *conn).await?.try_get("page")?;
    let raw: Vec<RawDataPlan> = serde_json::from_str(&page).map_err(decode_error)?;
    let raw = crate::sort_page(conn, raw, |a, b| {
        (&a.family_name, &a.given_name, &a.person_id, &a.phone_number).cmp(&(
            &b.family_name,
            &b.given_name,
            &b.person_id,
            &b.phone_number,
        ))
    });
    raw.into_iter()
        .map(|r| {
            Ok(DataPlanRow {
                device_type: device_type(&r.device_type)?,
                person_id: r.person_id,
                given_name: r.given_name,
                family_name: r.family_name,
                device_id: r.device_id,
                serial: r.serial,
                phone_number: r.phone_number,
                plan_kind: r.plan_kind,
            })
        })
        .collect()
}

/// A device in use with its holder, as the plan's coverage rule needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldDeviceRow {
    pub device_id: String,
    pub serial: Option<String>,
    pub device_type: DeviceType,
    pub holder_id: String,
    pub given_name: String,
    pub family_name: String,
    pub unit: Option<String>,
    pub title: Option<String>,
}

#[derive(Deserialize)]
struct RawHeld {
    device_id: String,
    serial: Option<String>,
    device_type: String,
    holder_id: String,
    given_name: String,
    family_name: String,
    unit: Option<String>,
    title: Option<String>,
}

/// The devices of `agency` in use with a holder, by device id after `after`, at most `limit`,
/// with the holder's name, unit and title. Each state is read as one ordered range of
/// `(agency_code, state, id)`, the ranges merged by id, so a page costs its own rows.
pub async fn held_devices(
    conn: &mut Conn,
    agency: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<HeldDeviceRow>, SqlError> {
    let limit = limit.max(0);
    let ranges: Vec<String> = IN_USE
        .iter()
        .map(|state| {
            // States are a closed set of identifiers, written into the SQL.
            format!(
                "SELECT * FROM (SELECT id, serial, device_type, holder_id FROM devices \
                 WHERE agency_code = $1 AND state = '{}' AND id > $2 AND holder_id IS NOT NULL \
                 ORDER BY id LIMIT {limit}) AS s",
                state.as_str()
            )
        })
        .collect();
    let inner = format!(
        "SELECT m.id AS device_id, m.serial, m.device_type, p.id AS holder_id, p.given_name, p.family_name, p.unit, \
           p.title \
         FROM ({} ORDER BY id LIMIT {limit}) AS m JOIN people p ON p.id = m.holder_id",
        ranges.join(" UNION ALL ")
    );
    let columns = ["device_id", "serial", "device_type", "holder_id", "given_name", "family_name", "unit", "title"];
    let sql = crate::page_as_json(conn, &inner, &columns, "device_id");
    let page: String = sqlx::query(AssertSqlSafe(sql))
        .bind(agency)
        .bind(after.unwrap_or(""))
        .fetch_one(&mut *conn)
        .await?
        .try_get("page")?;
    let raw: Vec<RawHeld> = serde_json::from_str(&page).map_err(decode_error)?;
    let raw = crate::sort_page(conn, raw, |a, b| a.device_id.cmp(&b.device_id));
    raw.into_iter()
        .map(|r| {
            Ok(HeldDeviceRow {
                device_type: device_type(&r.device_type)?,
                device_id: r.device_id,
                serial: r.serial,
                holder_id: r.holder_id,
                given_name: r.given_name,
                family_name: r.family_name,
                unit: r.unit,
                title: r.title,
            })
        })
        .collect()
}
