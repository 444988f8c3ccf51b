//! A device's inventory as the device reported it, inventories on demand, compliance with its
//! reasons, and the network-access feed for network access control systems (JSON or CSV).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use custody_app::compliance::{self, ComplianceQuery};
use custody_app::inventory;
use custody_domain::compliance::parse_reasons;
use custody_store::compliance::{AccessRow, ComplianceRow};
use custody_store::inventory::Fact;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::problem::{ApiResult, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct InstalledAppDto {
    pub identifier: String,
    pub name: Option<String>,
    pub version: Option<String>,
    pub short_version: Option<String>,
    pub bundle_size: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstalledProfileDto {
    pub identifier: String,
    pub uuid: String,
    pub display_name: Option<String>,
    pub organization: Option<String>,
    /// Installed by MDM.
    pub managed: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstalledCertificateDto {
    /// SHA-256 of the certificate, hex.
    pub fingerprint: String,
    pub common_name: String,
    pub is_identity: bool,
    pub not_after: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InventoryChangeDto {
    pub field: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub changed_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceInventoryDto {
    /// The enrollment reporting it; `null` when the device never enrolled.
    pub enrollment_id: Option<String>,
    /// When the device last answered an inventory command.
    pub inventory_at: Option<String>,
    /// When its next scheduled inventory is due.
    pub next_inventory_at: Option<String>,
    /// What the device reported: `os_version`, `build_version`, `model`, `product_name`,
    /// `capacity_mb`, `battery_pct`, `wifi_mac`, `phone_number`, `iccid`, `supervised`,
    /// `activation_lock`, `passcode_present`, `passcode_compliant`, `encryption_caps` ... (only
    /// those known; booleans as true/false).
    #[schema(value_type = Object)]
    pub facts: serde_json::Map<String, serde_json::Value>,
    pub apps: Vec<InstalledAppDto>,
    pub profiles: Vec<InstalledProfileDto>,
    pub certificates: Vec<InstalledCertificateDto>,
    /// Changes of the tracked facts, newest first (the latest 100).
    pub changes: Vec<InventoryChangeDto>,
}

/// Facts stored as 0/1 that are booleans.
const FLAGS: &[&str] = &["supervised", "activation_lock", "passcode_present", "passcode_compliant", "compromised"];

fn fact_json(name: &str, fact: Fact) -> serde_json::Value {
    match fact {
        Fact::Int(i) if FLAGS.contains(&name) => serde_json::Value::Bool(i != 0),
        Fact::Int(i) => i.into(),
        Fact::Text(t) => t.into(),
    }
}

/// A device's inventory: what it reported of itself, its apps, profiles and certificates, and
/// the history of its facts.
#[utoipa::path(operation_id = "get_device_inventory", get, path = "/api/v1/devices/{id}/inventory", tag = "mdm",
    params(("id" = String, Path)),
    responses((status = 200, body = DeviceInventoryDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn device_inventory(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<DeviceInventoryDto>> {
    let inv = inventory::of_device(&state.app, &actor, &id).await?;
    Ok(Json(DeviceInventoryDto {
        enrollment_id: inv.enrollment_id,
        inventory_at: inv.inventory_at.map(super::timestamp),
        next_inventory_at: inv.inventory_due_at.map(super::timestamp),
        facts: inv.facts.into_iter().map(|(name, fact)| (name.to_string(), fact_json(name, fact))).collect(),
        apps: inv
            .apps
            .into_iter()
            .map(|a| InstalledAppDto {
                identifier: a.identifier,
                name: a.name,
                version: a.version,
                short_version: a.short_version,
                bundle_size: a.bundle_size,
            })
            .collect(),
        profiles: inv
            .profiles
            .into_iter()
            .map(|p| InstalledProfileDto {
                identifier: p.identifier,
                uuid: p.uuid,
                display_name: p.display_name,
                organization: p.organization,
                managed: p.managed,
            })
            .collect(),
        certificates: inv
            .certificates
            .into_iter()
            .map(|c| InstalledCertificateDto {
                fingerprint: c.fingerprint,
                common_name: c.common_name,
                is_identity: c.is_identity,
                not_after: c.not_after.map(super::timestamp),
            })
            .collect(),
        changes: inv
            .changes
            .into_iter()
            .map(|c| InventoryChangeDto {
                field: c.field,
                old_value: c.old_value,
                new_value: c.new_value,
                changed_at: super::timestamp(c.changed_at),
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    /// UDIDs, enrollment ids or inventory device ids (at most 10,000).
    pub devices: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefreshDto {
    pub id: String,
    /// Devices whose inventory was queued (five commands each).
    pub devices: usize,
}

/// Queue a fresh inventory of devices now (`DeviceInformation`, `SecurityInfo`,
/// `InstalledApplicationList`, `ProfileList`, `CertificateList`); the scheduled ones continue.
#[utoipa::path(operation_id = "refresh_inventory", post, path = "/api/v1/mdm/inventory", tag = "mdm",
    request_body = RefreshBody,
    responses((status = 202, body = RefreshDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn refresh(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<(StatusCode, Json<RefreshDto>)> {
    let (id, devices) = inventory::refresh(&state.app, &actor, &body.devices).await?;
    Ok((StatusCode::ACCEPTED, Json(RefreshDto { id, devices })))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ComplianceDto {
    pub device_id: String,
    pub agency: String,
    pub compliant: bool,
    /// `not_enrolled`, `no_check_in`, `os_outdated`, `no_passcode`, `compromised`,
    /// `reported_lost`; empty when compliant.
    pub reasons: Vec<String>,
    /// When the device's compliance last changed.
    pub since: String,
    pub serial: Option<String>,
    pub state: String,
    pub device_type: String,
    pub holder: Option<String>,
    pub wifi_mac: Option<String>,
    pub last_check_in: Option<String>,
    pub os_version: Option<String>,
}

impl From<ComplianceRow> for ComplianceDto {
    fn from(r: ComplianceRow) -> Self {
        Self {
            device_id: r.device_id,
            agency: r.agency_code,
            compliant: r.compliant,
            reasons: parse_reasons(&r.reasons).into_iter().map(|r| r.as_str().to_string()).collect(),
            since: super::timestamp(r.since),
            serial: r.serial,
            state: r.state,
            device_type: r.device_type,
            holder: r.holder_name,
            wifi_mac: r.wifi_mac,
            last_check_in: r.last_seen_at.map(super::timestamp),
            os_version: r.os_version,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ComplianceListQuery {
    /// An agency code (agency users see only their own).
    pub agency: Option<String>,
    /// `false`: only the non-compliant devices.
    pub compliant: Option<bool>,
    /// Only devices non-compliant for this reason.
    pub reason: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ComplianceList {
    pub items: Vec<ComplianceDto>,
    pub next: Option<String>,
}

/// The compliance of the devices in use, with the reasons of each non-compliant one.
#[utoipa::path(operation_id = "list_compliance", get, path = "/api/v1/compliance", tag = "compliance",
    params(ComplianceListQuery),
    responses((status = 200, body = ComplianceList), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<ComplianceListQuery>,
) -> ApiResult<Json<ComplianceList>> {
    let query = ComplianceQuery {
        agency: q.agency,
        compliant: q.compliant,
        reason: q.reason,
        cursor: q.cursor,
        limit: q.limit,
    };
    let page = compliance::list(&state.app, &actor, query).await?;
    Ok(Json(ComplianceList { items: page.items.into_iter().map(Into::into).collect(), next: page.next }))
}

/// One device's compliance (404 when the device is not in use).
#[utoipa::path(operation_id = "get_device_compliance", get, path = "/api/v1/devices/{id}/compliance",
    tag = "compliance", params(("id" = String, Path)),
    responses((status = 200, body = ComplianceDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn device(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ComplianceDto>> {
    let row = compliance::of_device(&state.app, &actor, &id).await?.ok_or(custody_app::AppError::NotFound)?;
    Ok(Json(row.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EvaluationDto {
    /// Devices whose compliance changed.
    pub changed: u64,
    /// Devices no longer in use, taken off the list.
    pub removed: u64,
    /// Agencies told of newly non-compliant devices.
    pub notified_agencies: usize,
}

/// Evaluate the whole fleet now (it also runs daily, and for a device whenever its inventory or
/// state changes).
#[utoipa::path(operation_id = "evaluate_compliance", post, path = "/api/v1/compliance/evaluate", tag = "compliance",
    responses((status = 200, body = EvaluationDto), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn evaluate(State(state): State<AppState>, Auth(actor): Auth) -> ApiResult<Json<EvaluationDto>> {
    let done = compliance::evaluate_now(&state.app, &actor).await?;
    Ok(Json(EvaluationDto { changed: done.changed, removed: done.removed, notified_agencies: done.notified_agencies }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessDto {
    pub device_id: String,
    pub agency: String,
    pub serial: Option<String>,
    /// Lower case, colon-separated, as the device reports it; `null` until it reported one.
    pub wifi_mac: Option<String>,
    /// Whether the device may connect: it is compliant.
    pub allowed: bool,
    pub reasons: Vec<String>,
}

impl From<AccessRow> for AccessDto {
    fn from(r: AccessRow) -> Self {
        Self {
            device_id: r.device_id,
            agency: r.agency_code,
            serial: r.serial,
            wifi_mac: r.wifi_mac,
            allowed: r.compliant,
            reasons: parse_reasons(&r.reasons).into_iter().map(|r| r.as_str().to_string()).collect(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AccessQuery {
    pub agency: Option<String>,
    /// `json` (default, paged) or `csv` (every device in one download); `Accept: text/csv` also
    /// asks for CSV.
    pub format: Option<String>,
    pub cursor: Option<String>,
    /// JSON page size, at most 10,000 (default 1,000).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessList {
    pub items: Vec<AccessDto>,
    pub next: Option<String>,
}

/// The network-access feed: every managed device in use with its Wi-Fi MAC, serial, agency and
/// whether it may connect. For network access control systems (a central IT token).
#[utoipa::path(operation_id = "network_access", get, path = "/api/v1/compliance/network-access", tag = "compliance",
    params(AccessQuery),
    responses((status = 200, body = AccessList, content_type = "application/json"),
        (status = 200, description = "CSV: device_id, agency, serial, wifi_mac, allowed, reasons", content_type = "text/csv"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn network_access(
    State(state): State<AppState>,
    Auth(actor): Auth,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<AccessQuery>,
) -> ApiResult<Response> {
    let wants_csv = match q.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        Some(_) => return Err(custody_app::AppError::invalid("format", "json or csv").into()),
        None => headers
            .get(header::ACCEPT)
            .and_then(|a| a.to_str().ok())
            .is_some_and(|a| a.contains("text/csv") && !a.contains("application/json")),
    };
    if !wants_csv {
        let limit = q.limit.unwrap_or(1_000);
        if !(1..=10_000).contains(&limit) {
            return Err(custody_app::AppError::invalid("limit", "1 to 10000").into());
        }
        let page =
            compliance::network_access(&state.app, &actor, q.agency.as_deref(), q.cursor.as_deref(), limit).await?;
        let list = AccessList { items: page.items.into_iter().map(Into::into).collect(), next: page.next };
        return Ok(Json(list).into_response());
    }
    let app = state.app.clone();
    let agency = q.agency.clone();
    let fetch = move |cursor: Option<String>| {
        let (app, actor, agency) = (app.clone(), actor.clone(), agency.clone());
        async move {
            let page = compliance::network_access(&app, &actor, agency.as_deref(), cursor.as_deref(), 5_000).await?;
            let rows = page
                .items
                .into_iter()
                .map(|r| {
                    let dto = AccessDto::from(r);
                    vec![
                        dto.device_id,
                        dto.agency,
                        dto.serial.unwrap_or_default(),
                        dto.wifi_mac.unwrap_or_default(),
                        dto.allowed.to_string(),
                        dto.reasons.join(" "),
                    ]
                })
                .collect();
            Ok((rows, page.next))
        }
    };
    let first = fetch(None).await?;
    let header = ["device_id", "agency", "serial", "wifi_mac", "allowed", "reasons"];
    Ok(crate::console::people::csv_stream("network-access.csv", &header, first, fetch))
}
