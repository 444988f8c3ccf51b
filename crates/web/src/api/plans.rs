//! `/api/v1/agencies/{code}/plan`: the agency's Mobile Device Plan, its versions and
//! certification; `/api/v1/plan-compliance`: which agencies have a certified plan.

use axum::Json;
use axum::extract::{Path, State};
use custody_app::plans::{self, Compliance, PlanOverview};
use custody_domain::catalog::DeviceType;
use custody_domain::plan::{DataPlanException, Justification, NamedEntry, PlanContent, PlanEvent, UnitEntry};
use custody_store::plans::PlanRow;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::extract::{ApiJson, Auth};
use crate::problem::{ApiResult, Problem};

/// A role or unit approved for a device type.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitEntryDto {
    /// The unit or working title, matched case-insensitively against the person's unit and title.
    pub unit: String,
    /// `cell_phone`, `smartphone`, `tablet`, `mifi` or `aircard`.
    #[schema(value_type = String)]
    pub device_type: DeviceType,
    /// `mobile_user`, `on_call_user`, `emergency_equipment` or `other`.
    #[schema(value_type = String)]
    pub justification: Justification,
    pub note: Option<String>,
}

/// A named person approved for a device type.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NamedEntryDto {
    pub person_id: String,
    #[schema(value_type = String)]
    pub device_type: DeviceType,
    /// The justification of need.
    pub justification: String,
}

/// A person allowed more than one data plan.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExceptionDto {
    pub person_id: String,
    pub justification: String,
}

/// The content of a plan version.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanContentDto {
    #[serde(default)]
    pub units: Vec<UnitEntryDto>,
    #[serde(default)]
    pub named: Vec<NamedEntryDto>,
    #[serde(default)]
    pub data_plan_exceptions: Vec<ExceptionDto>,
}

impl From<PlanContent> for PlanContentDto {
    fn from(c: PlanContent) -> Self {
        Self {
            units: c
                .units
                .into_iter()
                .map(|u| UnitEntryDto {
                    unit: u.unit,
                    device_type: u.device_type,
                    justification: u.justification,
                    note: u.note,
                })
                .collect(),
            named: c
                .named
                .into_iter()
                .map(|n| NamedEntryDto {
                    person_id: n.person_id,
                    device_type: n.device_type,
                    justification: n.justification,
                })
                .collect(),
            data_plan_exceptions: c
                .data_plan_exceptions
                .into_iter()
                .map(|e| ExceptionDto { person_id: e.person_id, justification: e.justification })
                .collect(),
        }
    }
}

impl From<PlanContentDto> for PlanContent {
    fn from(c: PlanContentDto) -> Self {
        Self {
            units: c
                .units
                .into_iter()
                .map(|u| UnitEntry {
                    unit: u.unit,
                    device_type: u.device_type,
                    justification: u.justification,
                    note: u.note,
                })
                .collect(),
            named: c
                .named
                .into_iter()
                .map(|n| NamedEntry {
                    person_id: n.person_id,
                    device_type: n.device_type,
                    justification: n.justification,
                })
                .collect(),
            data_plan_exceptions: c
                .data_plan_exceptions
                .into_iter()
                .map(|e| DataPlanException { person_id: e.person_id, justification: e.justification })
                .collect(),
        }
    }
}

/// One version of an agency's plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanVersionDto {
    pub agency: String,
    pub version: i64,
    /// `draft`, `submitted`, `certified` or `superseded`.
    pub status: String,
    pub content: PlanContentDto,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    pub submitted_at: Option<String>,
    pub certified_at: Option<String>,
    pub certified_by: Option<String>,
    pub superseded_at: Option<String>,
}

impl From<PlanRow> for PlanVersionDto {
    fn from(row: PlanRow) -> Self {
        Self {
            agency: row.agency_code,
            version: row.version,
            status: row.status.as_str().into(),
            content: row.content.into(),
            created_by: row.created_by,
            created_at: super::timestamp(row.created_at),
            updated_at: super::timestamp(row.updated_at),
            submitted_at: row.submitted_at.map(super::timestamp),
            certified_at: row.certified_at.map(super::timestamp),
            certified_by: row.certified_by,
            superseded_at: row.superseded_at.map(super::timestamp),
        }
    }
}

/// The agency's plan: the certified version in force, the open draft or submitted version, and
/// the history.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanOverviewDto {
    pub agency: String,
    /// The first plan's due date: the policy's issuance date plus the configured days.
    pub due_on: String,
    /// No certified plan and the due date has passed.
    pub overdue: bool,
    pub certified: Option<PlanVersionDto>,
    pub open: Option<PlanVersionDto>,
    pub versions: Vec<PlanVersionDto>,
}

impl From<PlanOverview> for PlanOverviewDto {
    fn from(o: PlanOverview) -> Self {
        Self {
            agency: o.agency_code,
            due_on: o.due_on,
            overdue: o.overdue,
            certified: o.certified.map(Into::into),
            open: o.open.map(Into::into),
            versions: o.versions.into_iter().map(Into::into).collect(),
        }
    }
}

/// The agency's Mobile Device Plan with its versions.
#[utoipa::path(operation_id = "get_plan", get, path = "/api/v1/agencies/{code}/plan", tag = "plans",
    params(("code" = String, Path)),
    responses((status = 200, body = PlanOverviewDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(code): Path<String>,
) -> ApiResult<Json<PlanOverviewDto>> {
    Ok(Json(plans::overview(&state.app, &actor, &code).await?.into()))
}

/// Write the draft version (starting a new version when the plan has none open; the certified
/// version stays in force until the new one is certified).
#[utoipa::path(operation_id = "save_plan_draft", put, path = "/api/v1/agencies/{code}/plan/draft", tag = "plans",
    params(("code" = String, Path)), request_body = PlanContentDto,
    responses((status = 200, body = PlanVersionDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn save_draft(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(code): Path<String>,
    ApiJson(body): ApiJson<PlanContentDto>,
) -> ApiResult<Json<PlanVersionDto>> {
    Ok(Json(plans::save_draft(&state.app, &actor, &code, body.into()).await?.into()))
}

/// One version of the agency's plan.
#[utoipa::path(operation_id = "get_plan_version", get, path = "/api/v1/agencies/{code}/plan/versions/{version}",
    tag = "plans", params(("code" = String, Path), ("version" = i64, Path)),
    responses((status = 200, body = PlanVersionDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn get_version(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path((code, version)): Path<(String, i64)>,
) -> ApiResult<Json<PlanVersionDto>> {
    Ok(Json(plans::version(&state.app, &actor, &code, version).await?.into()))
}

async fn act(
    state: AppState,
    actor: custody_app::Actor,
    code: String,
    version: i64,
    event: PlanEvent,
) -> ApiResult<Json<PlanVersionDto>> {
    Ok(Json(plans::act(&state.app, &actor, &code, version, event).await?.into()))
}

/// Submit the draft for certification.
#[utoipa::path(operation_id = "submit_plan", post, path = "/api/v1/agencies/{code}/plan/versions/{version}/submit",
    tag = "plans", params(("code" = String, Path), ("version" = i64, Path)),
    responses((status = 200, body = PlanVersionDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn submit(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path((code, version)): Path<(String, i64)>,
) -> ApiResult<Json<PlanVersionDto>> {
    act(state, actor, code, version, PlanEvent::Submit).await
}

/// Return a submitted version to draft for changes.
#[utoipa::path(operation_id = "return_plan", post, path = "/api/v1/agencies/{code}/plan/versions/{version}/return",
    tag = "plans", params(("code" = String, Path), ("version" = i64, Path)),
    responses((status = 200, body = PlanVersionDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn return_to_draft(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path((code, version)): Path<(String, i64)>,
) -> ApiResult<Json<PlanVersionDto>> {
    act(state, actor, code, version, PlanEvent::Return).await
}

/// Certify a submitted version (`agency_certifier` only); the previous certified version is superseded.
#[utoipa::path(operation_id = "certify_plan", post, path = "/api/v1/agencies/{code}/plan/versions/{version}/certify",
    tag = "plans", params(("code" = String, Path), ("version" = i64, Path)),
    responses((status = 200, body = PlanVersionDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn certify(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path((code, version)): Path<(String, i64)>,
) -> ApiResult<Json<PlanVersionDto>> {
    act(state, actor, code, version, PlanEvent::Certify).await
}

/// One agency's standing against the plan requirement.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComplianceDto {
    pub agency: String,
    pub agency_name: String,
    pub certified_version: Option<i64>,
    pub certified_at: Option<String>,
    pub open_version: Option<i64>,
    pub open_status: Option<String>,
    pub due_on: String,
    pub overdue: bool,
}

impl From<Compliance> for ComplianceDto {
    fn from(c: Compliance) -> Self {
        let s = c.standing;
        Self {
            agency: s.agency_code,
            agency_name: s.agency_name,
            certified_version: s.certified_version,
            certified_at: s.certified_at.map(super::timestamp),
            open_version: s.open_version,
            open_status: s.open_status.map(|st| st.as_str().to_string()),
            due_on: c.due_on,
            overdue: c.overdue,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ComplianceList {
    pub items: Vec<ComplianceDto>,
    pub next: Option<String>,
}

/// Every agency with its plan standing: certified or not, open version, overdue.
#[utoipa::path(operation_id = "plan_compliance", get, path = "/api/v1/plan-compliance", tag = "plans",
    responses((status = 200, body = ComplianceList), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn compliance(State(state): State<AppState>, Auth(actor): Auth) -> ApiResult<Json<ComplianceList>> {
    let items = plans::compliance(&state.app, &actor).await?.into_iter().map(Into::into).collect();
    Ok(Json(ComplianceList { items, next: None }))
}
