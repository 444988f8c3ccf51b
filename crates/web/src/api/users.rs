//! `/api/v1/users`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use custody_app::users::{self, NewUserInput, UserUpdate};
use custody_store::users::UserRow;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::problem::{ApiResult, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct UserDto {
    pub id: String,
    /// `person` (signs in) or `service` (holds API tokens only).
    pub kind: String,
    pub email: Option<String>,
    pub display_name: String,
    pub roles: Vec<String>,
    /// `null` for central IT.
    pub agency: Option<String>,
    pub disabled: bool,
    /// An agency approver designated as the agency's business/financial executive: approves
    /// international service and non-standard devices.
    pub financial_executive: bool,
    pub locked_until: Option<String>,
    pub last_login_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<UserRow> for UserDto {
    fn from(row: UserRow) -> Self {
        Self {
            id: row.id,
            kind: row.kind.as_str().to_string(),
            email: row.email,
            display_name: row.display_name,
            roles: row.roles.names(),
            agency: row.agency_code,
            disabled: row.disabled,
            financial_executive: row.financial_executive,
            locked_until: row.locked_until.filter(|t| *t > custody_store::now_ms()).map(super::timestamp),
            last_login_at: row.last_login_at.map(super::timestamp),
            created_at: super::timestamp(row.created_at),
            updated_at: super::timestamp(row.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub items: Vec<UserDto>,
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    pub agency: Option<String>,
    /// Case-insensitive part of the name or e-mail.
    pub q: Option<String>,
    /// `name` (default) or `-name`.
    pub sort: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// Users, ordered by display name (`admin`, `auditor`).
#[utoipa::path(operation_id = "list_users", get, path = "/api/v1/users", tag = "users", params(UserQuery),
    responses((status = 200, body = UserList), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(query): ApiQuery<UserQuery>,
) -> ApiResult<Json<UserList>> {
    let page = users::list(
        &state.app,
        &actor,
        query.agency.as_deref(),
        query.q.as_deref(),
        query.sort.as_deref(),
        query.cursor.as_deref(),
        query.limit,
    )
    .await?;
    Ok(Json(UserList { items: page.items.into_iter().map(Into::into).collect(), next: page.next }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    pub email: Option<String>,
    pub display_name: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Required for agency roles, absent for central roles.
    pub agency: Option<String>,
    /// An initial password (at least 12 characters); without one the user cannot sign in yet.
    pub password: Option<String>,
}

/// Create a user (`admin`).
#[utoipa::path(operation_id = "create_user", post, path = "/api/v1/users", tag = "users", request_body = NewUserBody,
    responses((status = 201, body = UserDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<NewUserBody>,
) -> ApiResult<(StatusCode, Json<UserDto>)> {
    let input = NewUserInput {
        email: body.email,
        display_name: body.display_name,
        roles: body.roles,
        agency: body.agency,
        password: body.password,
    };
    Ok((StatusCode::CREATED, Json(users::create(&state.app, &actor, input).await?.into())))
}

/// One user (`admin`, `auditor`).
#[utoipa::path(operation_id = "get_user", get, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn get(State(state): State<AppState>, Auth(actor): Auth, Path(id): Path<String>) -> ApiResult<Json<UserDto>> {
    Ok(Json(users::get(&state.app, &actor, &id).await?.into()))
}

/// Distinguishes an absent field from an explicit `null`.
fn double_option<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdateBody {
    pub display_name: Option<String>,
    pub roles: Option<Vec<String>>,
    /// An agency code, or `null` for central IT; absent keeps the current agency.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub agency: Option<Option<String>>,
    pub disabled: Option<bool>,
    /// Designate (or stop designating) an agency approver as the financial executive.
    pub financial_executive: Option<bool>,
}

/// Change a user's name, roles, agency, disabled flag or financial-executive designation (`admin`).
#[utoipa::path(operation_id = "update_user", patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    request_body = UserUpdateBody,
    responses((status = 200, body = UserDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UserUpdateBody>,
) -> ApiResult<Json<UserDto>> {
    let update = UserUpdate {
        display_name: body.display_name,
        roles: body.roles,
        agency: body.agency,
        disabled: body.disabled,
        financial_executive: body.financial_executive,
    };
    Ok(Json(users::update(&state.app, &actor, &id, update).await?.into()))
}
