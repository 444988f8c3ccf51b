//! `/api/v1/requests`: service requests, their approvals, comments and timeline;
//! `/api/v1/request-types`: the service catalog; `/api/v1/service-levels`: time per stage.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use custody_app::requests::{self, Decision, NewRequest, RequestQuery, RequestView, ServiceLevel};
use custody_domain::plan::Finding;
use custody_domain::request::{RequestType, chain};
use custody_store::requests::{ApprovalRow, CommentRow, RequestRow, TransitionRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::problem::{ApiResult, Problem};

/// A failed plan check.
#[derive(Debug, Serialize, ToSchema)]
pub struct FindingDto {
    /// `no_certified_plan`, `not_eligible`, `second_data_plan`, `tablet_with_smartphone` or
    /// `non_standard_unauthorized`.
    pub kind: String,
    pub message: String,
    /// Whether an approver may override it with a reason.
    pub overridable: bool,
}

impl From<&Finding> for FindingDto {
    fn from(f: &Finding) -> Self {
        let kind =
            serde_json::to_value(f).ok().and_then(|v| v["kind"].as_str().map(str::to_string)).unwrap_or_default();
        Self { kind, message: f.describe(), overridable: f.overridable() }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RequestDto {
    pub id: String,
    /// The request's number, shown to people (`#1234`).
    pub number: i64,
    pub agency: String,
    #[serde(rename = "type")]
    pub request_type: String,
    pub status: String,
    pub requester_id: String,
    pub requester: String,
    pub subject_person_id: Option<String>,
    pub device_type: Option<String>,
    /// `standard` or `agency_funded` (non-standard devices).
    pub funding: Option<String>,
    /// The type's own fields.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub findings: Vec<FindingDto>,
    /// The approvals the request needs, in order.
    pub approval_chain: Vec<String>,
    /// The stage whose decision is awaited.
    pub waiting_for: Option<String>,
    pub summary: String,
    pub created_at: String,
    pub updated_at: String,
    pub submitted_at: Option<String>,
    pub decided_at: Option<String>,
    pub fulfilled_at: Option<String>,
}

impl From<RequestRow> for RequestDto {
    fn from(r: RequestRow) -> Self {
        let mut details = serde_json::to_value(&r.details).unwrap_or_default();
        if let Some(object) = details.as_object_mut() {
            object.remove("type");
        }
        Self {
            id: r.id,
            number: r.number,
            agency: r.agency_code,
            request_type: r.request_type.as_str().into(),
            status: r.status.as_str().into(),
            requester_id: r.requester_id,
            requester: r.requester_label,
            subject_person_id: r.subject_person_id,
            device_type: r.device_type.map(|t| t.as_str().into()),
            funding: r.funding,
            details,
            findings: r.findings.iter().map(Into::into).collect(),
            approval_chain: r.chain.iter().map(|s| s.as_str().into()).collect(),
            waiting_for: r.waiting_stage.map(|s| s.as_str().into()),
            summary: r.summary,
            created_at: super::timestamp(r.created_at),
            updated_at: super::timestamp(r.updated_at),
            submitted_at: r.submitted_at.map(super::timestamp),
            decided_at: r.decided_at.map(super::timestamp),
            fulfilled_at: r.fulfilled_at.map(super::timestamp),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalDto {
    pub stage: String,
    /// `approved` or `rejected`.
    pub decision: String,
    pub reason: Option<String>,
    pub override_reason: Option<String>,
    pub overridden: Vec<FindingDto>,
    pub decided_by: String,
    pub decided_at: String,
}

impl From<ApprovalRow> for ApprovalDto {
    fn from(a: ApprovalRow) -> Self {
        Self {
            stage: a.stage.as_str().into(),
            decision: a.decision,
            reason: a.reason,
            override_reason: a.override_reason,
            overridden: a.overridden.iter().map(Into::into).collect(),
            decided_by: a.decided_by_label,
            decided_at: super::timestamp(a.decided_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommentDto {
    pub id: String,
    pub author: String,
    pub body: String,
    pub created_at: String,
}

impl From<CommentRow> for CommentDto {
    fn from(c: CommentRow) -> Self {
        Self { id: c.id, author: c.author_label, body: c.body, created_at: super::timestamp(c.created_at) }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineEntryDto {
    pub event: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub by: String,
    pub at: String,
}

impl From<TransitionRow> for TimelineEntryDto {
    fn from(t: TransitionRow) -> Self {
        Self {
            event: t.event,
            from_status: t.from_status.map(|s| s.as_str().into()),
            to_status: t.to_status.as_str().into(),
            by: t.actor_label,
            at: super::timestamp(t.at),
        }
    }
}

/// A request with its approvals, comments and timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestDetailDto {
    #[serde(flatten)]
    pub request: RequestDto,
    pub subject_name: Option<String>,
    /// Findings no earlier approval overrode: approving needs an override reason for these
    /// (or is refused when one is not overridable).
    pub open_findings: Vec<FindingDto>,
    pub approvals: Vec<ApprovalDto>,
    pub comments: Vec<CommentDto>,
    pub timeline: Vec<TimelineEntryDto>,
}

impl From<RequestView> for RequestDetailDto {
    fn from(v: RequestView) -> Self {
        Self {
            open_findings: v.open_findings.iter().map(Into::into).collect(),
            request: v.request.into(),
            subject_name: v.subject_name,
            approvals: v.approvals.into_iter().map(Into::into).collect(),
            comments: v.comments.into_iter().map(Into::into).collect(),
            timeline: v.timeline.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RequestList {
    pub items: Vec<RequestDto>,
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this agency's requests (central IT).
    pub agency: Option<String>,
    pub status: Option<String>,
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub request_type: Option<String>,
    pub subject_person_id: Option<String>,
    /// Only the requests I filed.
    pub mine: Option<bool>,
    /// Only the requests waiting for my decision.
    pub waiting_for_me: Option<bool>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// Requests, newest first.
#[utoipa::path(operation_id = "list_requests", get, path = "/api/v1/requests", tag = "requests", params(ListQuery),
    responses((status = 200, body = RequestList), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<RequestList>> {
    let query = RequestQuery {
        agency: q.agency,
        status: q.status,
        request_type: q.request_type,
        subject_person_id: q.subject_person_id,
        mine: q.mine.unwrap_or(false),
        waiting_for_me: q.waiting_for_me.unwrap_or(false),
        cursor: q.cursor,
        limit: q.limit,
    };
    let page = requests::list(&state.app, &actor, query).await?;
    Ok(Json(RequestList { items: page.items.into_iter().map(Into::into).collect(), next: page.next }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequestBody {
    /// The request type (see `/api/v1/request-types`).
    #[serde(rename = "type")]
    pub request_type: Option<String>,
    /// Required for central IT; agency users file in their own agency.
    pub agency: Option<String>,
    pub subject_person_id: Option<String>,
    /// The type's own fields.
    #[schema(value_type = Object)]
    #[serde(default)]
    pub details: serde_json::Value,
    /// Submit at once (default) or keep a draft.
    pub submit: Option<bool>,
}

/// File a request: checked against the type's fields and, for devices, the agency's certified plan.
#[utoipa::path(operation_id = "create_request", post, path = "/api/v1/requests", tag = "requests",
    request_body = NewRequestBody,
    responses((status = 201, body = RequestDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<NewRequestBody>,
) -> ApiResult<(StatusCode, Json<RequestDto>)> {
    let input = NewRequest {
        request_type: body.request_type,
        agency: body.agency,
        subject_person_id: body.subject_person_id,
        details: body.details,
        submit: body.submit.unwrap_or(true),
    };
    let row = requests::create(&state.app, &actor, input).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// A request with its checks, approvals, comments and timeline.
#[utoipa::path(operation_id = "get_request", get, path = "/api/v1/requests/{id}", tag = "requests",
    params(("id" = String, Path)),
    responses((status = 200, body = RequestDetailDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<RequestDetailDto>> {
    Ok(Json(requests::get(&state.app, &actor, &id).await?.into()))
}

/// Submit a draft: it is checked against the plan and routed to its first approval.
#[utoipa::path(operation_id = "submit_request", post, path = "/api/v1/requests/{id}/submit", tag = "requests",
    params(("id" = String, Path)),
    responses((status = 200, body = RequestDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn submit(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<RequestDto>> {
    Ok(Json(requests::submit(&state.app, &actor, &id).await?.into()))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// Why (required to reject).
    pub reason: Option<String>,
    /// Required to approve despite plan-check findings that may be overridden.
    pub override_reason: Option<String>,
}

/// Approve the stage the request waits for (never one's own request).
#[utoipa::path(operation_id = "approve_request", post, path = "/api/v1/requests/{id}/approve", tag = "requests",
    params(("id" = String, Path)), request_body = DecisionBody,
    responses((status = 200, body = RequestDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DecisionBody>,
) -> ApiResult<Json<RequestDto>> {
    let decision = Decision { approve: true, reason: body.reason, override_reason: body.override_reason };
    Ok(Json(requests::decide(&state.app, &actor, &id, decision).await?.into()))
}

/// Reject the request at the stage it waits for, with a reason.
#[utoipa::path(operation_id = "reject_request", post, path = "/api/v1/requests/{id}/reject", tag = "requests",
    params(("id" = String, Path)), request_body = DecisionBody,
    responses((status = 200, body = RequestDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn reject(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DecisionBody>,
) -> ApiResult<Json<RequestDto>> {
    let decision = Decision { approve: false, reason: body.reason, override_reason: None };
    Ok(Json(requests::decide(&state.app, &actor, &id, decision).await?.into()))
}

/// Cancel a request before its fulfillment starts (the requester or central IT).
#[utoipa::path(operation_id = "cancel_request", post, path = "/api/v1/requests/{id}/cancel", tag = "requests",
    params(("id" = String, Path)),
    responses((status = 200, body = RequestDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<RequestDto>> {
    Ok(Json(requests::cancel(&state.app, &actor, &id).await?.into()))
}

/// Start fulfilling an approved request (central IT).
#[utoipa::path(operation_id = "start_request_fulfillment", post, path = "/api/v1/requests/{id}/start-fulfillment",
    tag = "requests", params(("id" = String, Path)),
    responses((status = 200, body = RequestDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn start_fulfillment(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<RequestDto>> {
    Ok(Json(requests::start_fulfillment(&state.app, &actor, &id).await?.into()))
}

/// Mark a request in fulfillment as fulfilled (central IT).
#[utoipa::path(operation_id = "fulfill_request", post, path = "/api/v1/requests/{id}/fulfill", tag = "requests",
    params(("id" = String, Path)),
    responses((status = 200, body = RequestDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn fulfill(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<RequestDto>> {
    Ok(Json(requests::fulfill(&state.app, &actor, &id).await?.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    pub body: String,
}

/// Add a comment to a request.
#[utoipa::path(operation_id = "comment_request", post, path = "/api/v1/requests/{id}/comments", tag = "requests",
    params(("id" = String, Path)), request_body = CommentBody,
    responses((status = 201, body = CommentDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn comment(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CommentBody>,
) -> ApiResult<(StatusCode, Json<CommentDto>)> {
    let row = requests::comment(&state.app, &actor, &id, &body.body).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// A request type of the service catalog.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestTypeDto {
    pub name: String,
    pub label: String,
    /// The approvals a request of this type needs (international service or a non-standard
    /// device puts the financial executive in the agency approver's place).
    pub approval_chain: Vec<String>,
    /// Fields of `details`; a trailing `?` marks an optional one.
    pub fields: Vec<String>,
    pub needs_subject_person: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RequestTypeList {
    pub items: Vec<RequestTypeDto>,
    pub next: Option<String>,
}

/// The fields of each request type, as `details` takes them.
pub fn fields_of(kind: RequestType) -> &'static [&'static str] {
    match kind {
        RequestType::NewDevice => &[
            "device_model_id",
            "line_plan",
            "international?",
            "justification?",
            "financial_authorization?",
            "ship_to?",
        ],
        RequestType::Onboarding => &[
            "device_model_id",
            "line_plan",
            "start_date",
            "international?",
            "justification?",
            "financial_authorization?",
            "ship_to?",
        ],
        RequestType::Offboarding => &["reason", "last_day", "device_serial?", "notes?"],
        RequestType::ReturnDevice => &["device_serial", "ship_to", "reason?"],
        RequestType::FeatureChange => &["phone_number", "feature", "start_date", "end_date?"],
        RequestType::RepairReplace => &["device_serial", "problem", "preference?"],
        RequestType::LostStolen => {
            &["device_serial", "loss", "occurred_on", "circumstances", "police_report?", "comptroller_report?"]
        }
        RequestType::Decommission => &["device_serial", "method", "reason"],
        RequestType::SuspendService => &["phone_number", "from", "until?", "reason"],
        RequestType::TransferException => {
            &["device_serial?", "phone_number?", "destination", "to_agency?", "justification"]
        }
    }
}

/// The service catalog: every request type with its fields and approval chain.
#[utoipa::path(operation_id = "list_request_types", get, path = "/api/v1/request-types", tag = "requests",
    responses((status = 200, body = RequestTypeList), (status = 401, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn types(Auth(_actor): Auth) -> Json<RequestTypeList> {
    let items = RequestType::ALL
        .iter()
        .map(|k| RequestTypeDto {
            name: k.as_str().into(),
            label: k.label().into(),
            approval_chain: chain(*k, false).stages().iter().map(|s| s.as_str().into()).collect(),
            fields: fields_of(*k).iter().map(|f| f.to_string()).collect(),
            needs_subject_person: custody_domain::request::needs_subject_person(*k),
        })
        .collect();
    Json(RequestTypeList { items, next: None })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceLevelDto {
    #[serde(rename = "type")]
    pub request_type: String,
    /// The status waited in: `awaiting_agency`, `awaiting_central`, `approved`, `in_fulfillment`.
    pub stage: String,
    pub count: usize,
    pub median_seconds: f64,
    pub p90_seconds: f64,
}

impl From<ServiceLevel> for ServiceLevelDto {
    fn from(l: ServiceLevel) -> Self {
        Self {
            request_type: l.request_type,
            stage: l.stage,
            count: l.count,
            median_seconds: l.median_ms as f64 / 1000.0,
            p90_seconds: l.p90_ms as f64 / 1000.0,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceLevelList {
    pub items: Vec<ServiceLevelDto>,
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LevelQuery {
    /// The window in days (default 90).
    pub days: Option<i64>,
    /// One agency only (agency users always see their own).
    pub agency: Option<String>,
}

/// Median and 90th percentile time per stage and request type.
#[utoipa::path(operation_id = "service_levels", get, path = "/api/v1/service-levels", tag = "requests",
    params(LevelQuery),
    responses((status = 200, body = ServiceLevelList), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn service_levels(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<LevelQuery>,
) -> ApiResult<Json<ServiceLevelList>> {
    let levels = requests::service_levels(&state.app, &actor, q.agency.as_deref(), q.days.unwrap_or(90)).await?;
    Ok(Json(ServiceLevelList { items: levels.into_iter().map(Into::into).collect(), next: None }))
}
