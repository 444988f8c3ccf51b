//! `/api/v1/devices`: the inventory and each device's life; `/api/v1/legal-holds`: holds placed
//! by agency legal.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use custody_app::devices::{self, ActionInput, DeviceQuery, DeviceView};
use custody_store::devices::{CommandRow, CustodyEvent, DeviceRow, HoldRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::problem::{ApiResult, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceDto {
    pub id: String,
    pub agency: String,
    /// The lifecycle state (`ordered`, `received`, `staged`, `enrolled`, `in_transit`, `in_service`, ...).
    pub state: String,
    pub device_type: String,
    pub model_id: String,
    pub serial: Option<String>,
    pub imei: Option<String>,
    pub meid: Option<String>,
    /// `standard` or `agency_funded`.
    pub funding: String,
    pub ordered_for: Option<String>,
    pub holder_id: Option<String>,
    pub line_id: Option<String>,
    pub request_id: Option<String>,
    /// Where it physically is.
    pub location: String,
    pub accessories: String,
    /// When it enrolled (the MDM charge starts).
    pub enrolled_at: Option<String>,
    /// When the MDM charge stopped (decommissioning, write-off, destruction).
    pub billing_stop_at: Option<String>,
    pub destination: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<DeviceRow> for DeviceDto {
    fn from(d: DeviceRow) -> Self {
        Self {
            id: d.id,
            agency: d.agency_code,
            state: d.state.as_str().into(),
            device_type: d.device_type.as_str().into(),
            model_id: d.model_id,
            serial: d.serial,
            imei: d.imei,
            meid: d.meid,
            funding: d.funding,
            ordered_for: d.ordered_for,
            holder_id: d.holder_id,
            line_id: d.line_id,
            request_id: d.request_id,
            location: d.location,
            accessories: d.accessories,
            enrolled_at: d.enrolled_at.map(super::timestamp),
            billing_stop_at: d.billing_stop_at.map(super::timestamp),
            destination: d.destination,
            created_at: super::timestamp(d.created_at),
            updated_at: super::timestamp(d.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustodyEventDto {
    pub event: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub from_location: Option<String>,
    pub to_location: String,
    pub holder_before: Option<String>,
    pub holder_after: Option<String>,
    pub received_by: Option<String>,
    pub by: String,
    pub note: Option<String>,
    pub at: String,
}

impl From<CustodyEvent> for CustodyEventDto {
    fn from(e: CustodyEvent) -> Self {
        Self {
            event: e.event,
            from_state: e.from_state,
            to_state: e.to_state,
            from_location: e.from_location,
            to_location: e.to_location,
            holder_before: e.holder_before,
            holder_after: e.holder_after,
            received_by: e.received_by,
            by: e.actor_label,
            note: e.note,
            at: super::timestamp(e.at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommandDto {
    pub id: String,
    pub kind: String,
    /// `pending` until MDM delivers it.
    pub status: String,
    pub requested_by: String,
    pub created_at: String,
}

impl From<CommandRow> for CommandDto {
    fn from(c: CommandRow) -> Self {
        Self {
            id: c.id,
            kind: c.kind,
            status: c.status,
            requested_by: c.requested_by,
            created_at: super::timestamp(c.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HoldDto {
    pub id: String,
    pub agency: String,
    pub matter: String,
    pub person_id: Option<String>,
    pub device_id: Option<String>,
    pub placed_by: String,
    pub placed_at: String,
    pub released_by: Option<String>,
    pub released_at: Option<String>,
}

impl From<HoldRow> for HoldDto {
    fn from(h: HoldRow) -> Self {
        Self {
            id: h.id,
            agency: h.agency_code,
            matter: h.matter,
            person_id: h.person_id,
            device_id: h.device_id,
            placed_by: h.placed_by,
            placed_at: super::timestamp(h.placed_at),
            released_by: h.released_by,
            released_at: h.released_at.map(super::timestamp),
        }
    }
}

/// A device with its line, chain of custody, commands and the holds in force over it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceDetailDto {
    #[serde(flatten)]
    pub device: DeviceDto,
    pub phone_number: Option<String>,
    pub custody: Vec<CustodyEventDto>,
    pub commands: Vec<CommandDto>,
    pub holds: Vec<HoldDto>,
}

impl From<DeviceView> for DeviceDetailDto {
    fn from(v: DeviceView) -> Self {
        Self {
            device: v.device.into(),
            phone_number: v.phone_number,
            custody: v.custody.into_iter().map(Into::into).collect(),
            commands: v.commands.into_iter().map(Into::into).collect(),
            holds: v.holds.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceList {
    pub items: Vec<DeviceDto>,
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub agency: Option<String>,
    /// One state or several, comma-separated.
    pub state: Option<String>,
    /// A serial number, IMEI or phone number (exact).
    pub q: Option<String>,
    pub holder_id: Option<String>,
    pub request_id: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// Devices, or the one a serial number, IMEI or phone number names.
#[utoipa::path(operation_id = "list_devices", get, path = "/api/v1/devices", tag = "devices", params(ListQuery),
    responses((status = 200, body = DeviceList), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<DeviceList>> {
    let query = DeviceQuery {
        agency: q.agency,
        state: q.state,
        q: q.q,
        holder_id: q.holder_id,
        request_id: q.request_id,
        cursor: q.cursor,
        limit: q.limit,
    };
    let page = devices::list(&state.app, &actor, query).await?;
    Ok(Json(DeviceList { items: page.items.into_iter().map(Into::into).collect(), next: page.next }))
}

/// A device with its chain of custody, commands and holds.
#[utoipa::path(operation_id = "get_device", get, path = "/api/v1/devices/{id}", tag = "devices",
    params(("id" = String, Path)),
    responses((status = 200, body = DeviceDetailDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<DeviceDetailDto>> {
    Ok(Json(devices::get(&state.app, &actor, &id).await?.into()))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// `receive`: the serial number read off the device.
    pub serial: Option<String>,
    /// `receive`: the IMEI (15 digits, check digit verified).
    pub imei: Option<String>,
    /// `receive`: the MEID (14 hexadecimal characters).
    pub meid: Option<String>,
    /// `receive`: the model received, checked against the order.
    pub model_id: Option<String>,
    /// `deliver`: who took the device.
    pub received_by: Option<String>,
    /// `deliver`: the line to attach (E.164).
    pub phone_number: Option<String>,
    pub carrier: Option<String>,
    /// `dispose`: `surplus`, `transferred` or `recycled`.
    pub destination: Option<String>,
    pub note: Option<String>,
    /// `deliver`: the accessories issued (comma-separated).
    pub accessories: Option<String>,
    /// `replace`: a repurposed like device (staged or sanitized); without one a new like device is ordered.
    pub replacement_device_id: Option<String>,
}

/// Move a device through its life (central IT): `receive`, `stage`, `record-enrollment`, `ship`,
/// `deliver`, `send-to-repair`, `return-from-repair`, `replace`, `report-lost`, `recover`,
/// `return-to-service`, `write-off`, `return`, `request-clearance`, `destroy`, `decommission`,
/// `dispose`. A refused move answers 409 with the reason (a legal hold is named).
#[utoipa::path(operation_id = "device_action", post, path = "/api/v1/devices/{id}/actions/{action}", tag = "devices",
    params(("id" = String, Path), ("action" = String, Path)), request_body = ActionBody,
    responses((status = 200, body = DeviceDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn act(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path((id, action)): Path<(String, String)>,
    ApiJson(body): ApiJson<ActionBody>,
) -> ApiResult<Json<DeviceDto>> {
    let input = ActionInput {
        serial: body.serial,
        imei: body.imei,
        meid: body.meid,
        model_id: body.model_id,
        received_by: body.received_by,
        phone_number: body.phone_number,
        carrier: body.carrier,
        destination: body.destination,
        note: body.note,
        accessories: body.accessories,
        replacement_device_id: body.replacement_device_id,
    };
    Ok(Json(devices::act(&state.app, &actor, &id, &action, input).await?.into()))
}

/// Agency legal clears a returned device for sanitization (refused while a hold covers it).
#[utoipa::path(operation_id = "clear_device", post, path = "/api/v1/devices/{id}/clearance", tag = "devices",
    params(("id" = String, Path)),
    responses((status = 200, body = DeviceDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn clear(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<DeviceDto>> {
    Ok(Json(devices::clear(&state.app, &actor, &id).await?.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HoldList {
    pub items: Vec<HoldDto>,
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HoldQuery {
    /// The agency (required for central IT).
    pub agency: Option<String>,
}

/// An agency's legal holds, in force and released.
#[utoipa::path(operation_id = "list_legal_holds", get, path = "/api/v1/legal-holds", tag = "devices", params(HoldQuery),
    responses((status = 200, body = HoldList), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn holds(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<HoldQuery>,
) -> ApiResult<Json<HoldList>> {
    let rows = devices::holds(&state.app, &actor, q.agency.as_deref()).await?;
    Ok(Json(HoldList { items: rows.into_iter().map(Into::into).collect(), next: None }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldBody {
    /// The legal matter, e.g. `Smith v. State, index 2026-0042`.
    pub matter: String,
    /// A person: the hold covers every device they hold.
    pub person_id: Option<String>,
    /// Or one device.
    pub device_id: Option<String>,
}

/// Place a legal hold (the agency's `agency_legal`): nothing may wipe, sanitize, destroy,
/// reassign or decommission what it covers.
#[utoipa::path(operation_id = "place_legal_hold", post, path = "/api/v1/legal-holds", tag = "devices",
    request_body = HoldBody,
    responses((status = 201, body = HoldDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn place(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<HoldBody>,
) -> ApiResult<(StatusCode, Json<HoldDto>)> {
    let hold =
        devices::place_hold(&state.app, &actor, &body.matter, body.person_id.as_deref(), body.device_id.as_deref())
            .await?;
    Ok((StatusCode::CREATED, Json(hold.into())))
}

/// Release a legal hold (the agency's `agency_legal`).
#[utoipa::path(operation_id = "release_legal_hold", post, path = "/api/v1/legal-holds/{id}/release", tag = "devices",
    params(("id" = String, Path)),
    responses((status = 200, body = HoldDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn release(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<HoldDto>> {
    Ok(Json(devices::release_hold(&state.app, &actor, &id).await?.into()))
}

/// The fields of a Certificate of Sanitization (NIST SP 800-88 Rev. 1, Appendix G). Missing or
/// bad fields are all named in one answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SanitizationRecordBody {
    pub performer_name: Option<String>,
    pub performer_title: Option<String>,
    pub performer_organization: Option<String>,
    pub performer_location: Option<String>,
    pub performer_phone: Option<String>,
    pub media_make: Option<String>,
    pub media_model: Option<String>,
    /// Must match the device's serial number.
    pub media_serial: Option<String>,
    pub media_property_number: Option<String>,
    /// E.g. `flash memory`.
    pub media_type: Option<String>,
    /// The source (user) of the media.
    pub media_source: Option<String>,
    pub classification: Option<String>,
    /// `yes`, `no` or `unknown`.
    pub data_backed_up: Option<String>,
    pub backup_location: Option<String>,
    /// `clear`, `purge` or `destroy` (physical destruction of a device that cannot be accessed).
    pub method_type: Option<String>,
    /// E.g. `crypto erase by factory reset`.
    pub method_used: Option<String>,
    pub tool: Option<String>,
    pub tool_version: Option<String>,
    pub verification_method: Option<String>,
    pub post_classification: Option<String>,
    /// `internal_reuse`, `external_reuse`, `recycling`, `manufacturer` or `other`.
    pub destination: Option<String>,
    pub destination_detail: Option<String>,
    pub notes: Option<String>,
    /// `true`: the clearing is an MDM remote erase (`EraseDevice`), complete once the device
    /// acknowledged it.
    pub remote_erase: Option<bool>,
}

/// The validator's identity.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidationBody {
    pub name: Option<String>,
    pub title: Option<String>,
    pub organization: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SanitizationDto {
    pub id: String,
    pub device_id: String,
    pub method_type: String,
    /// The certificate's fields.
    #[schema(value_type = Object)]
    pub record: serde_json::Value,
    pub performed_by: String,
    pub performed_at: String,
    #[schema(value_type = Object)]
    pub validation: Option<serde_json::Value>,
    pub validated_by: Option<String>,
    pub validated_at: Option<String>,
    /// A sanitization by remote erase: its erase request (`/api/v1/erase-requests/{id}`). It can
    /// be validated once the device acknowledged the erase.
    pub erase_request_id: Option<String>,
}

impl From<custody_store::devices::SanitizationRow> for SanitizationDto {
    fn from(s: custody_store::devices::SanitizationRow) -> Self {
        Self {
            id: s.id,
            device_id: s.device_id,
            method_type: s.method_type,
            record: serde_json::from_str(&s.record).unwrap_or_default(),
            performed_by: s.performed_by_label,
            performed_at: super::timestamp(s.performed_at),
            validation: s.validation.as_deref().and_then(|v| serde_json::from_str(v).ok()),
            validated_by: s.validated_by_label,
            validated_at: s.validated_at.map(super::timestamp),
            erase_request_id: s.erase_request_id,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SanitizationList {
    pub items: Vec<SanitizationDto>,
    pub next: Option<String>,
}

/// Record a sanitization performed (clear or purge of a cleared device), or the physical
/// destruction of a device that cannot be accessed. Refused while a legal hold covers it. With
/// `"remote_erase": true` the clearing is an MDM remote erase: it is sent (after a second
/// person's approval unless `infosec` asks) and the record can be validated once the device
/// acknowledged it.
#[utoipa::path(operation_id = "record_sanitization", post, path = "/api/v1/devices/{id}/sanitization", tag = "devices",
    params(("id" = String, Path)), request_body = SanitizationRecordBody,
    responses((status = 201, body = SanitizationDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn sanitize(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SanitizationRecordBody>,
) -> ApiResult<(StatusCode, Json<SanitizationDto>)> {
    let record = serde_json::to_value(&body).unwrap_or_default();
    let row = custody_app::sanitization::perform(&state.app, &actor, &id, &record).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// The device's sanitization and destruction records, newest first.
#[utoipa::path(operation_id = "list_sanitizations", get, path = "/api/v1/devices/{id}/sanitization", tag = "devices",
    params(("id" = String, Path)),
    responses((status = 200, body = SanitizationList), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn sanitizations(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<SanitizationList>> {
    let rows = custody_app::sanitization::records(&state.app, &actor, &id).await?;
    Ok(Json(SanitizationList { items: rows.into_iter().map(Into::into).collect(), next: None }))
}

/// Validate the latest record (a different person from the one who performed it); a cleared or
/// purged device becomes sanitized.
#[utoipa::path(operation_id = "validate_sanitization", post, path = "/api/v1/devices/{id}/sanitization/validation",
    tag = "devices", params(("id" = String, Path)), request_body = ValidationBody,
    responses((status = 200, body = SanitizationDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn validate(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ValidationBody>,
) -> ApiResult<Json<SanitizationDto>> {
    let validation = serde_json::to_value(&body).unwrap_or_default();
    Ok(Json(custody_app::sanitization::validate(&state.app, &actor, &id, &validation).await?.into()))
}

/// The Certificate of Sanitization of the latest validated record (PDF).
#[utoipa::path(operation_id = "sanitization_certificate", get, path = "/api/v1/devices/{id}/sanitization/certificate",
    tag = "devices", params(("id" = String, Path)),
    responses((status = 200, content_type = "application/pdf", body = Vec<u8>), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn certificate(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let pdf = custody_app::sanitization::certificate(&state.app, &actor, &id).await?;
    let disposition = format!("attachment; filename=\"sanitization-certificate-{id}.pdf\"");
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "application/pdf".to_string()),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        pdf,
    )
        .into_response())
}

/// The preservation export for legal: a ZIP of the device's records, chain of custody,
/// commands, holds, sanitization records, ordering request and audit events as JSON (central IT
/// and the agency's legal officer; the export is audited).
#[utoipa::path(operation_id = "device_preservation_export", get, path = "/api/v1/devices/{id}/preservation-export",
    tag = "devices", params(("id" = String, Path)),
    responses((status = 200, content_type = "application/zip", body = Vec<u8>), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn preservation_export(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let zip = devices::preservation_export(&state.app, &actor, &id).await?;
    let disposition = format!("attachment; filename=\"preservation-{id}.zip\"");
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "application/zip".to_string()),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        zip,
    )
        .into_response())
}
