//! `/api/v1/people`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use custody_app::people::{self, PeopleQuery};
use custody_domain::person::PersonInput;
use custody_store::people::PersonRow;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::problem::{ApiResult, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct PersonDto {
    pub id: String,
    pub agency: String,
    pub given_name: String,
    pub family_name: String,
    pub email: Option<String>,
    pub employee_id: Option<String>,
    pub unit: Option<String>,
    pub title: Option<String>,
    pub phone: Option<String>,
    /// `active`, `on_leave`, `transferred` or `separated`.
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<PersonRow> for PersonDto {
    fn from(row: PersonRow) -> Self {
        let d = row.details;
        Self {
            id: row.id,
            agency: row.agency_code,
            given_name: d.given_name,
            family_name: d.family_name,
            email: d.email.map(|e| e.to_string()),
            employee_id: d.employee_id,
            unit: d.unit,
            title: d.title,
            phone: d.phone,
            status: d.status.as_str().to_string(),
            created_at: super::timestamp(row.created_at),
            updated_at: super::timestamp(row.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PersonList {
    pub items: Vec<PersonDto>,
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PersonQuery {
    /// Agency code (agency users always see only their own agency).
    pub agency: Option<String>,
    /// `active`, `on_leave`, `transferred` or `separated`.
    pub status: Option<String>,
    /// Case-insensitive part of the name, e-mail, employee id, unit or title.
    pub q: Option<String>,
    /// `name` (A to Z, default) or `-name` (Z to A).
    pub sort: Option<String>,
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<i64>,
}

/// People, ordered by family name, given name and id.
#[utoipa::path(operation_id = "list_people", get, path = "/api/v1/people", tag = "people", params(PersonQuery),
    responses((status = 200, body = PersonList), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(query): ApiQuery<PersonQuery>,
) -> ApiResult<Json<PersonList>> {
    let query = PeopleQuery {
        agency: query.agency,
        status: query.status,
        q: query.q,
        sort: query.sort,
        cursor: query.cursor,
        limit: query.limit,
    };
    let page = people::list(&state.app, &actor, query).await?;
    Ok(Json(PersonList { items: page.items.into_iter().map(Into::into).collect(), next: page.next }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonBody {
    /// The person's agency: required on create for central users; ignored on update.
    pub agency: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// An empty string clears an optional field.
    pub email: Option<String>,
    pub employee_id: Option<String>,
    pub unit: Option<String>,
    pub title: Option<String>,
    pub phone: Option<String>,
    pub status: Option<String>,
}

impl PersonBody {
    fn into_input(self) -> (Option<String>, PersonInput) {
        (
            self.agency,
            PersonInput {
                given_name: self.given_name,
                family_name: self.family_name,
                email: self.email,
                employee_id: self.employee_id,
                unit: self.unit,
                title: self.title,
                phone: self.phone,
                status: self.status,
            },
        )
    }
}

/// Add a person (`admin`, `service_desk`, `agency_requester`).
#[utoipa::path(operation_id = "create_person", post, path = "/api/v1/people", tag = "people", request_body = PersonBody,
    responses((status = 201, body = PersonDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<PersonBody>,
) -> ApiResult<(StatusCode, Json<PersonDto>)> {
    let (agency, input) = body.into_input();
    let row = people::create(&state.app, &actor, agency.as_deref(), input).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// One person.
#[utoipa::path(operation_id = "get_person", get, path = "/api/v1/people/{id}", tag = "people", params(("id" = String, Path)),
    responses((status = 200, body = PersonDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<PersonDto>> {
    Ok(Json(people::get(&state.app, &actor, &id).await?.into()))
}

/// Change a person; fields not sent keep their value.
#[utoipa::path(operation_id = "update_person", patch, path = "/api/v1/people/{id}", tag = "people", params(("id" = String, Path)),
    request_body = PersonBody,
    responses((status = 200, body = PersonDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PersonBody>,
) -> ApiResult<Json<PersonDto>> {
    let (_, input) = body.into_input();
    Ok(Json(people::update(&state.app, &actor, &id, input).await?.into()))
}
