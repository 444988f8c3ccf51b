//! `/api/v1/tokens`: the caller's own API tokens.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use custody_app::tokens;
use custody_store::tokens::TokenRow;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::extract::{ApiJson, Auth};
use crate::problem::{ApiResult, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenDto {
    pub id: String,
    pub name: String,
    /// The token's first characters, to recognise it.
    pub prefix: String,
    pub roles: Vec<String>,
    pub agency: Option<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl From<TokenRow> for TokenDto {
    fn from(row: TokenRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            prefix: row.prefix,
            roles: row.roles.names(),
            agency: row.agency_code,
            created_at: super::timestamp(row.created_at),
            last_used_at: row.last_used_at.map(super::timestamp),
            expires_at: row.expires_at.map(super::timestamp),
            revoked_at: row.revoked_at.map(super::timestamp),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    pub items: Vec<TokenDto>,
    pub next: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedTokenDto {
    pub token: TokenDto,
    /// The secret: shown this once, stored only as a hash.
    pub secret: String,
}

/// The caller's tokens, newest first.
#[utoipa::path(operation_id = "list_tokens", get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = TokenList), (status = 401, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list(State(state): State<AppState>, Auth(actor): Auth) -> ApiResult<Json<TokenList>> {
    let rows = tokens::list_own(&state.app, &actor).await?;
    Ok(Json(TokenList { items: rows.into_iter().map(Into::into).collect(), next: None }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenBody {
    pub name: Option<String>,
    /// A subset of the caller's roles; all of them when absent.
    pub roles: Option<Vec<String>>,
    pub expires_in_days: Option<i64>,
}

/// Create a token for the caller.
#[utoipa::path(operation_id = "create_token", post, path = "/api/v1/tokens", tag = "tokens", request_body = NewTokenBody,
    responses((status = 201, body = IssuedTokenDto), (status = 401, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<NewTokenBody>,
) -> ApiResult<(StatusCode, Json<IssuedTokenDto>)> {
    let issued =
        tokens::create_own(&state.app, &actor, body.name.as_deref(), body.roles.as_deref(), body.expires_in_days)
            .await?;
    Ok((StatusCode::CREATED, Json(IssuedTokenDto { token: issued.row.into(), secret: issued.secret })))
}

/// Revoke one of the caller's tokens (an `admin` may revoke any).
#[utoipa::path(operation_id = "revoke_token", delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = String, Path)),
    responses((status = 200, body = TokenDto), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<TokenDto>> {
    Ok(Json(tokens::revoke(&state.app, &actor, &id).await?.into()))
}
