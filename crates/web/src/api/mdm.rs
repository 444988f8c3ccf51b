//! Apple MDM through Custody's API: agencies' enrollment profiles and SCEP challenges, the
//! command queue (`/api/v1/commands`), enrollments, the APNs push certificate, the CA, and
//! revocation of device identity certificates. The devices themselves speak Apple's protocol at
//! `/scep` and `/mdm/*` (see `crate::device`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use custody_app::mdm::{self, CommandQuery, EnrollmentQuery, NewCommands, PushCertificateInfo};
use custody_store::mdm::{CommandRow, EnrollmentRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::problem::{ApiResult, Problem};

const PROFILE_CONTENT_TYPE: &str = "application/x-apple-aspen-config";

/// An agency's enrollment profile as a download (API and console).
pub fn profile_download(code: &str, profile: Vec<u8>) -> Response {
    let disposition = format!("attachment; filename=\"{}-enrollment.mobileconfig\"", code.to_ascii_lowercase());
    ([(header::CONTENT_TYPE, PROFILE_CONTENT_TYPE.to_string()), (header::CONTENT_DISPOSITION, disposition)], profile)
        .into_response()
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProfileQuery {
    /// CMS-sign the profile with Custody's CA (devices then show it as verified).
    pub signed: Option<bool>,
}

/// The agency's enrollment profile (`.mobileconfig`): the SCEP payload with the agency's
/// enrollment challenge, the MDM payload and Custody's CA root. Needs the push certificate.
#[utoipa::path(operation_id = "enrollment_profile", get, path = "/api/v1/agencies/{code}/enrollment-profile",
    tag = "mdm", params(("code" = String, Path), ProfileQuery),
    responses((status = 200, content_type = "application/x-apple-aspen-config", body = Vec<u8>),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn enrollment_profile(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(code): Path<String>,
    ApiQuery(query): ApiQuery<ProfileQuery>,
) -> ApiResult<Response> {
    let profile = mdm::enrollment_profile(&state.app, &actor, &code, query.signed.unwrap_or(false)).await?;
    Ok(profile_download(&code, profile))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeBody {
    /// How long the challenge may be used, in hours (1–720; default 24).
    pub hours: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChallengeDto {
    /// The challenge: shown this once. It enrolls one device.
    pub challenge: String,
    pub hours: i64,
}

/// A one-time SCEP challenge for the agency (for a manual or scripted enrollment).
#[utoipa::path(operation_id = "create_enrollment_challenge", post,
    path = "/api/v1/agencies/{code}/enrollment-challenges", tag = "mdm", params(("code" = String, Path)),
    request_body = ChallengeBody,
    responses((status = 201, body = ChallengeDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_challenge(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(code): Path<String>,
    ApiJson(body): ApiJson<ChallengeBody>,
) -> ApiResult<(StatusCode, Json<ChallengeDto>)> {
    let hours = body.hours.unwrap_or(24);
    let challenge = mdm::one_time_challenge(&state.app, &actor, &code, hours).await?;
    Ok((StatusCode::CREATED, Json(ChallengeDto { challenge, hours })))
}

/// Replaces the agency's standing enrollment challenge: profiles handed out before stop
/// enrolling new devices (enrolled devices are not affected).
#[utoipa::path(operation_id = "rotate_enrollment_challenge", post,
    path = "/api/v1/agencies/{code}/enrollment-challenge/rotate", tag = "mdm", params(("code" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn rotate_challenge(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(code): Path<String>,
) -> ApiResult<StatusCode> {
    mdm::rotate_challenge(&state.app, &actor, &code).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommandDto {
    /// Also the `CommandUUID` the device sees.
    pub id: String,
    pub enrollment_id: String,
    pub agency: String,
    pub batch: String,
    pub request_type: String,
    pub params: serde_json::Value,
    /// `queued`, `sent`, `acknowledged`, `error`, `not_now`, `expired` or `cancelled`.
    pub status: String,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: String,
    pub sent_at: Option<String>,
    /// How often it was handed to the device.
    pub deliveries: i64,
    pub not_now_count: i64,
    /// The device's `Status` (`Acknowledged`, `Error`, `CommandFormatError`).
    pub result_status: Option<String>,
    /// The device's answer as JSON (`<data>` as base64, `<date>` as RFC 3339).
    pub result: Option<serde_json::Value>,
    /// The answer exactly as received (an XML plist).
    pub result_raw: Option<String>,
    pub error_chain: Option<serde_json::Value>,
    pub completed_at: Option<String>,
    pub updated_at: String,
}

impl CommandDto {
    fn from_row(row: CommandRow, with_result: bool) -> Self {
        let (result, result_raw) = match (with_result, row.result) {
            (true, Some(raw)) => (mdm::report_json(&raw), Some(raw)),
            _ => (None, None),
        };
        Self {
            id: row.id,
            enrollment_id: row.enrollment_id,
            agency: row.agency_code,
            batch: row.batch_id,
            request_type: row.request_type,
            params: serde_json::from_str(&row.params).unwrap_or_default(),
            status: row.status,
            created_by: row.created_by,
            created_at: super::timestamp(row.created_at),
            expires_at: super::timestamp(row.expires_at),
            sent_at: row.sent_at.map(super::timestamp),
            deliveries: row.deliveries,
            not_now_count: row.not_now_count,
            result_status: row.result_status,
            result,
            result_raw,
            error_chain: row.error_chain.and_then(|c| serde_json::from_str(&c).ok()),
            completed_at: row.completed_at.map(super::timestamp),
            updated_at: super::timestamp(row.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommandList {
    /// Without results: fetch one command for its answer.
    pub items: Vec<CommandDto>,
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCommandBody {
    /// UDIDs, enrollment ids or inventory device ids.
    pub devices: Vec<String>,
    /// Apple's `RequestType` (`DeviceInformation`, `DeviceLock`, `InstallProfile`, ...).
    pub request_type: String,
    /// The command's keys as Apple names them (`Queries`, `Message`, `Payload` as base64...).
    pub params: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedBatch {
    pub batch: String,
    pub count: usize,
    /// The first 1,000 commands; list `?batch=` for the rest.
    pub items: Vec<CommandDto>,
}

/// Queue a command for devices: one command per device, sharing a batch id, pushed at once.
#[utoipa::path(operation_id = "create_commands", post, path = "/api/v1/commands", tag = "mdm",
    request_body = NewCommandBody,
    responses((status = 201, body = QueuedBatch), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_commands(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<NewCommandBody>,
) -> ApiResult<(StatusCode, Json<QueuedBatch>)> {
    let input = NewCommands {
        devices: body.devices,
        request_type: body.request_type,
        params: body.params.unwrap_or(serde_json::Value::Null),
    };
    let (batch, rows) = mdm::enqueue(&state.app, &actor, input).await?;
    let count = rows.len();
    let items = rows.into_iter().take(1_000).map(|r| CommandDto::from_row(r, false)).collect();
    Ok((StatusCode::CREATED, Json(QueuedBatch { batch, count, items })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CommandListQuery {
    pub status: Option<String>,
    /// A UDID, enrollment id or inventory device id.
    pub device: Option<String>,
    pub request_type: Option<String>,
    pub batch: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// Commands, newest first.
#[utoipa::path(operation_id = "list_commands", get, path = "/api/v1/commands", tag = "mdm",
    params(CommandListQuery),
    responses((status = 200, body = CommandList), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_commands(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<CommandListQuery>,
) -> ApiResult<Json<CommandList>> {
    let query = CommandQuery {
        status: q.status,
        device: q.device,
        request_type: q.request_type,
        batch: q.batch,
        cursor: q.cursor,
        limit: q.limit,
    };
    let page = mdm::commands(&state.app, &actor, query).await?;
    Ok(Json(CommandList {
        items: page.items.into_iter().map(|r| CommandDto::from_row(r, false)).collect(),
        next: page.next,
    }))
}

/// One command, with the device's answer.
#[utoipa::path(operation_id = "get_command", get, path = "/api/v1/commands/{id}", tag = "mdm",
    params(("id" = String, Path)),
    responses((status = 200, body = CommandDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn get_command(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<CommandDto>> {
    Ok(Json(CommandDto::from_row(mdm::command(&state.app, &actor, &id).await?, true)))
}

/// Cancel a command the device has not answered yet.
#[utoipa::path(operation_id = "cancel_command", post, path = "/api/v1/commands/{id}/cancel", tag = "mdm",
    params(("id" = String, Path)),
    responses((status = 200, body = CommandDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn cancel_command(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<CommandDto>> {
    Ok(Json(CommandDto::from_row(mdm::cancel_command(&state.app, &actor, &id).await?, true)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollmentDto {
    pub id: String,
    pub udid: String,
    pub agency: String,
    /// The inventory device, once matched.
    pub device_id: Option<String>,
    /// `authenticated`, `enrolled` or `checked_out`.
    pub status: String,
    /// The identity certificate bound to it.
    pub certificate_serial: String,
    pub serial_number: Option<String>,
    pub imei: Option<String>,
    pub meid: Option<String>,
    pub product_name: Option<String>,
    pub model: Option<String>,
    pub model_name: Option<String>,
    pub device_name: Option<String>,
    pub os_version: Option<String>,
    pub build_version: Option<String>,
    /// Whether APNs can reach it (a token is known and was not refused).
    pub pushable: bool,
    pub token_invalid_at: Option<String>,
    pub authenticated_at: String,
    pub enrolled_at: Option<String>,
    pub last_seen_at: String,
    pub checked_out_at: Option<String>,
}

impl From<EnrollmentRow> for EnrollmentDto {
    fn from(e: EnrollmentRow) -> Self {
        Self {
            pushable: e.push_token.is_some() && e.push_magic.is_some() && e.token_invalid_at.is_none(),
            id: e.id,
            udid: e.udid,
            agency: e.agency_code,
            device_id: e.device_id,
            status: e.status,
            certificate_serial: e.cert_serial,
            serial_number: e.serial_number,
            imei: e.imei,
            meid: e.meid,
            product_name: e.product_name,
            model: e.model,
            model_name: e.model_name,
            device_name: e.device_name,
            os_version: e.os_version,
            build_version: e.build_version,
            token_invalid_at: e.token_invalid_at.map(super::timestamp),
            authenticated_at: super::timestamp(e.authenticated_at),
            enrolled_at: e.enrolled_at.map(super::timestamp),
            last_seen_at: super::timestamp(e.last_seen_at),
            checked_out_at: e.checked_out_at.map(super::timestamp),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollmentList {
    pub items: Vec<EnrollmentDto>,
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentListQuery {
    pub agency: Option<String>,
    pub status: Option<String>,
    /// `true`: only enrollments joined to no inventory device (EUC's unmatched queue).
    pub unmatched: Option<bool>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// Devices enrolled in MDM.
#[utoipa::path(operation_id = "list_enrollments", get, path = "/api/v1/mdm/enrollments", tag = "mdm",
    params(EnrollmentListQuery),
    responses((status = 200, body = EnrollmentList), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_enrollments(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<EnrollmentListQuery>,
) -> ApiResult<Json<EnrollmentList>> {
    let query = EnrollmentQuery {
        agency: q.agency,
        status: q.status,
        unmatched: q.unmatched.unwrap_or(false),
        cursor: q.cursor,
        limit: q.limit,
    };
    let page = mdm::enrollments(&state.app, &actor, query).await?;
    Ok(Json(EnrollmentList { items: page.items.into_iter().map(Into::into).collect(), next: page.next }))
}

/// One enrollment, by its id or the device's UDID.
#[utoipa::path(operation_id = "get_enrollment", get, path = "/api/v1/mdm/enrollments/{id}", tag = "mdm",
    params(("id" = String, Path)),
    responses((status = 200, body = EnrollmentDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn get_enrollment(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<EnrollmentDto>> {
    Ok(Json(mdm::enrollment(&state.app, &actor, &id).await?.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    /// The inventory device (of the enrollment's agency) this enrollment is.
    pub device_id: String,
}

/// Join an enrollment to its inventory device by hand (EUC's unmatched queue). A staged device
/// whose enrollment is complete moves to `enrolled`.
#[utoipa::path(operation_id = "link_enrollment", post, path = "/api/v1/mdm/enrollments/{id}/link", tag = "mdm",
    params(("id" = String, Path)), request_body = LinkBody,
    responses((status = 200, body = EnrollmentDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn link_enrollment(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<LinkBody>,
) -> ApiResult<Json<EnrollmentDto>> {
    Ok(Json(mdm::link_enrollment(&state.app, &actor, &id, &body.device_id).await?.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PushCertificateDto {
    /// The APNs topic (`com.apple.mgmt.External.…`), read from the certificate.
    pub topic: String,
    pub subject: String,
    pub not_after: String,
    pub uploaded_by: String,
    pub uploaded_at: String,
}

impl From<PushCertificateInfo> for PushCertificateDto {
    fn from(p: PushCertificateInfo) -> Self {
        Self {
            topic: p.topic,
            subject: p.subject,
            not_after: super::timestamp(p.not_after),
            uploaded_by: p.uploaded_by,
            uploaded_at: super::timestamp(p.uploaded_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushCertificateBody {
    /// The certificate and its private key, PEM.
    pub pem: Option<String>,
    /// Or a PKCS#12 file, base64, with its password.
    pub pkcs12: Option<String>,
    pub password: Option<String>,
}

/// Upload (or renew) the APNs MDM push certificate.
#[utoipa::path(operation_id = "put_push_certificate", put, path = "/api/v1/mdm/push-certificate", tag = "mdm",
    request_body = PushCertificateBody,
    responses((status = 200, body = PushCertificateDto), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn put_push_certificate(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<PushCertificateBody>,
) -> ApiResult<Json<PushCertificateDto>> {
    let der = match &body.pkcs12 {
        Some(text) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| Problem::validation(custody_domain::FieldErrors::single("pkcs12", "not base64")))?,
        ),
        None => None,
    };
    let pkcs12 = der.as_deref().map(|d| (d, body.password.as_deref().unwrap_or("")));
    let info = mdm::upload_push_certificate(&state.app, &actor, body.pem.as_deref().map(str::as_bytes), pkcs12).await?;
    Ok(Json(info.into()))
}

/// The push certificate in force (never its key).
#[utoipa::path(operation_id = "get_push_certificate", get, path = "/api/v1/mdm/push-certificate", tag = "mdm",
    responses((status = 200, body = PushCertificateDto), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn get_push_certificate(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> ApiResult<Json<PushCertificateDto>> {
    let info = mdm::push_certificate(&state.app, &actor).await?;
    Ok(Json(info.ok_or_else(Problem::not_found)?.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CaDto {
    pub certificate_pem: String,
    pub fingerprint_sha256: String,
}

/// Custody's certificate authority: the root devices' identities chain to.
#[utoipa::path(operation_id = "get_ca", get, path = "/api/v1/mdm/ca", tag = "mdm",
    responses((status = 200, body = CaDto), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn get_ca(State(state): State<AppState>, Auth(actor): Auth) -> ApiResult<Json<CaDto>> {
    let (certificate_pem, fingerprint_sha256) = mdm::ca_certificate(&state.app, &actor).await?;
    Ok(Json(CaDto { certificate_pem, fingerprint_sha256 }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    pub reason: String,
}

/// Revoke a device identity certificate: the device is refused from its next message on.
#[utoipa::path(operation_id = "revoke_certificate", post, path = "/api/v1/mdm/certificates/{serial}/revoke",
    tag = "mdm", params(("serial" = String, Path)), request_body = RevokeBody,
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn revoke_certificate(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(serial): Path<String>,
    ApiJson(body): ApiJson<RevokeBody>,
) -> ApiResult<StatusCode> {
    mdm::revoke_certificate(&state.app, &actor, &serial, &body.reason).await?;
    Ok(StatusCode::NO_CONTENT)
}
