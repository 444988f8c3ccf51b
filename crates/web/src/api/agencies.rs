//! `/api/v1/agencies`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use custody_app::agencies;
use custody_domain::agency::AgencyDetailsInput;
use custody_store::agencies::AgencyRow;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::problem::{ApiResult, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct AgencyDto {
    pub code: String,
    pub name: String,
    pub billing_account: Option<String>,
    pub fund_code: Option<String>,
    pub relationship_manager: Option<String>,
    pub legal_contact: Option<String>,
    pub shipping_address: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<AgencyRow> for AgencyDto {
    fn from(row: AgencyRow) -> Self {
        let d = row.details;
        Self {
            code: row.code,
            name: d.name,
            billing_account: d.billing_account,
            fund_code: d.fund_code,
            relationship_manager: d.relationship_manager,
            legal_contact: d.legal_contact,
            shipping_address: d.shipping_address,
            created_at: super::timestamp(row.created_at),
            updated_at: super::timestamp(row.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgencyList {
    pub items: Vec<AgencyDto>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AgencyQuery {
    /// Case-insensitive part of the code or name.
    pub q: Option<String>,
    /// `code` (default), `-code`, `name` or `-name`.
    pub sort: Option<String>,
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<i64>,
}

/// Agencies the caller may see, ordered by code.
#[utoipa::path(operation_id = "list_agencies", get, path = "/api/v1/agencies", tag = "agencies", params(AgencyQuery),
    responses((status = 200, body = AgencyList), (status = 401, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(query): ApiQuery<AgencyQuery>,
) -> ApiResult<Json<AgencyList>> {
    let page = agencies::list(
        &state.app,
        &actor,
        query.q.as_deref(),
        query.sort.as_deref(),
        query.cursor.as_deref(),
        query.limit,
    )
    .await?;
    Ok(Json(AgencyList { items: page.items.into_iter().map(Into::into).collect(), next: page.next }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgencyBody {
    /// Required on create; ignored on update (a code never changes).
    pub code: Option<String>,
    pub name: Option<String>,
    pub billing_account: Option<String>,
    pub fund_code: Option<String>,
    pub relationship_manager: Option<String>,
    pub legal_contact: Option<String>,
    pub shipping_address: Option<String>,
}

impl AgencyBody {
    fn into_input(self) -> (Option<String>, AgencyDetailsInput) {
        (
            self.code,
            AgencyDetailsInput {
                name: self.name,
                billing_account: self.billing_account,
                fund_code: self.fund_code,
                relationship_manager: self.relationship_manager,
                legal_contact: self.legal_contact,
                shipping_address: self.shipping_address,
            },
        )
    }
}

/// Create an agency (`admin`).
#[utoipa::path(operation_id = "create_agency", post, path = "/api/v1/agencies", tag = "agencies", request_body = AgencyBody,
    responses((status = 201, body = AgencyDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<AgencyBody>,
) -> ApiResult<(StatusCode, Json<AgencyDto>)> {
    let (code, input) = body.into_input();
    let row = agencies::create(&state.app, &actor, code.as_deref(), input).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// One agency.
#[utoipa::path(operation_id = "get_agency", get, path = "/api/v1/agencies/{code}", tag = "agencies", params(("code" = String, Path)),
    responses((status = 200, body = AgencyDto), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(code): Path<String>,
) -> ApiResult<Json<AgencyDto>> {
    Ok(Json(agencies::get(&state.app, &actor, &code).await?.into()))
}

/// Change an agency's details (`admin`); fields not sent keep their value.
#[utoipa::path(operation_id = "update_agency", patch, path = "/api/v1/agencies/{code}", tag = "agencies", params(("code" = String, Path)),
    request_body = AgencyBody,
    responses((status = 200, body = AgencyDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(code): Path<String>,
    ApiJson(body): ApiJson<AgencyBody>,
) -> ApiResult<Json<AgencyDto>> {
    let (_, input) = body.into_input();
    Ok(Json(agencies::update(&state.app, &actor, &code, input).await?.into()))
}
