//! Remote erases through the API: every `EraseDevice` is an erase request, approved by a second
//! person unless it is a single device asked by central IT security (the two-person rule).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use custody_app::erase::{self, NewErase};
use custody_store::mdm::EraseRequestRow;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::problem::{ApiResult, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct EraseRequestDto {
    pub id: String,
    /// The enrollments to erase.
    pub enrollment_ids: Vec<String>,
    /// The agency when every device is of one.
    pub agency: Option<String>,
    pub reason: String,
    /// `pending` (waiting for a second person), `approved` (the `EraseDevice` commands are
    /// queued in a batch of this id), `rejected`.
    pub status: String,
    /// The device's lifecycle command it carries out (a write-off).
    pub device_command_id: Option<String>,
    /// The sanitization record by remote erase it serves.
    pub sanitization_id: Option<String>,
    pub requested_by: String,
    pub requested_at: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub decision_note: Option<String>,
}

impl From<EraseRequestRow> for EraseRequestDto {
    fn from(e: EraseRequestRow) -> Self {
        Self {
            id: e.id,
            enrollment_ids: e.enrollment_ids,
            agency: e.agency_code,
            reason: e.reason,
            status: e.status,
            device_command_id: e.device_command_id,
            sanitization_id: e.sanitization_id,
            requested_by: e.requested_by_label,
            requested_at: super::timestamp(e.requested_at),
            decided_by: e.decided_by_label,
            decided_at: e.decided_at.map(super::timestamp),
            decision_note: e.decision_note,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEraseBody {
    /// UDIDs, enrollment ids or inventory device ids (at most 10,000).
    pub devices: Vec<String>,
    /// Why (kept with the request and in the audit log).
    pub reason: String,
}

/// Ask for a remote erase. A single device asked by `infosec` is erased at once; anything else
/// waits for a second person (`infosec` or `admin`) to approve it. A device under legal hold is
/// refused.
#[utoipa::path(operation_id = "create_erase_request", post, path = "/api/v1/erase-requests", tag = "mdm",
    request_body = NewEraseBody,
    responses((status = 201, body = EraseRequestDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<NewEraseBody>,
) -> ApiResult<(StatusCode, Json<EraseRequestDto>)> {
    let input = NewErase { devices: body.devices, reason: body.reason };
    let row = erase::request(&state.app, &actor, input).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EraseListQuery {
    /// `pending`, `approved` or `rejected`.
    pub status: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EraseRequestList {
    /// The newest 200.
    pub items: Vec<EraseRequestDto>,
}

/// Erase requests, newest first.
#[utoipa::path(operation_id = "list_erase_requests", get, path = "/api/v1/erase-requests", tag = "mdm",
    params(EraseListQuery),
    responses((status = 200, body = EraseRequestList), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<EraseListQuery>,
) -> ApiResult<Json<EraseRequestList>> {
    let rows = erase::list(&state.app, &actor, q.status.as_deref()).await?;
    Ok(Json(EraseRequestList { items: rows.into_iter().map(Into::into).collect() }))
}

/// One erase request.
#[utoipa::path(operation_id = "get_erase_request", get, path = "/api/v1/erase-requests/{id}", tag = "mdm",
    params(("id" = String, Path)),
    responses((status = 200, body = EraseRequestDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<EraseRequestDto>> {
    Ok(Json(erase::get(&state.app, &actor, &id).await?.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// Optional when approving, required when rejecting.
    pub note: Option<String>,
}

/// Approve another person's erase request (`infosec` or `admin`, not the requester): the legal
/// holds are checked again and the erase goes out.
#[utoipa::path(operation_id = "approve_erase_request", post, path = "/api/v1/erase-requests/{id}/approve",
    tag = "mdm", params(("id" = String, Path)), request_body = DecisionBody,
    responses((status = 200, body = EraseRequestDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DecisionBody>,
) -> ApiResult<Json<EraseRequestDto>> {
    Ok(Json(erase::approve(&state.app, &actor, &id, body.note.as_deref()).await?.into()))
}

/// Reject an erase request, with a note: nothing is erased.
#[utoipa::path(operation_id = "reject_erase_request", post, path = "/api/v1/erase-requests/{id}/reject",
    tag = "mdm", params(("id" = String, Path)), request_body = DecisionBody,
    responses((status = 200, body = EraseRequestDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn reject(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DecisionBody>,
) -> ApiResult<Json<EraseRequestDto>> {
    Ok(Json(erase::reject(&state.app, &actor, &id, body.note.as_deref().unwrap_or("")).await?.into()))
}
