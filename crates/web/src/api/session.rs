//! Sign-in and sign-out, the current user, one's own password, and the role list.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use custody_app::{auth, users as app_users};
use custody_domain::authz::Credential;
use custody_domain::role::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::users::UserDto;
use crate::AppState;
use crate::extract::{ApiJson, Auth, RequestMeta, SESSION_COOKIE, cookie_in};
use crate::problem::{ApiResult, Problem};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionDto {
    pub user: UserDto,
    /// Send this in `X-CSRF-Token` with every write made with the session cookie.
    pub csrf_token: String,
    pub expires_at: String,
}

/// The cookie that carries a session: HttpOnly, SameSite=Lax, Secure when served over TLS.
pub fn session_cookie(value: &str, secure: bool, clear: bool) -> HeaderValue {
    let mut cookie = format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax");
    if secure {
        cookie.push_str("; Secure");
    }
    if clear {
        cookie.push_str("; Max-Age=0");
    }
    HeaderValue::from_str(&cookie).expect("cookie is ASCII")
}

/// Sign in with e-mail and password; sets the session cookie.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = SignIn,
    responses(
        (status = 201, description = "Signed in", body = SessionDto),
        (status = 401, description = "Wrong e-mail or password", body = Problem),
        (status = 423, description = "Account locked after repeated failures", body = Problem),
        (status = 429, description = "Too many failures from this address", body = Problem)))]
pub async fn sign_in(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<SignIn>,
) -> ApiResult<Response> {
    let previous = cookie_in(&headers, SESSION_COOKIE);
    let session =
        auth::sign_in(&state.app, &body.email, &body.password, previous, &meta.source_addr, meta.request_id).await?;
    let dto = SessionDto {
        user: UserDto::from(session.user),
        csrf_token: session.csrf_token,
        expires_at: super::timestamp(session.expires_at),
    };
    let mut response = (StatusCode::CREATED, Json(dto)).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&session.secret, state.config.secure_cookies, false));
    Ok(response)
}

/// Sign out: ends the session and clears its cookie.
#[utoipa::path(delete, path = "/api/v1/session", tag = "session",
    responses((status = 204, description = "Signed out"), (status = 401, body = Problem)),
    security(("session" = [])))]
pub async fn sign_out(State(state): State<AppState>, Auth(actor): Auth) -> ApiResult<Response> {
    custody_app::auth::sign_out(&state.app, &actor).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie("", state.config.secure_cookies, true));
    Ok(response)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeDto {
    pub user_id: String,
    pub label: String,
    /// The roles in force for this request (a token's may be fewer than its user's).
    pub roles: Vec<String>,
    pub agency: Option<String>,
    /// `session` or `token`.
    pub authenticated_by: String,
}

/// Who the caller is.
#[utoipa::path(get, path = "/api/v1/me", tag = "session",
    responses((status = 200, body = MeDto), (status = 401, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn me(Auth(actor): Auth) -> ApiResult<Json<MeDto>> {
    let principal = actor.principal.expect("authenticated actors have a principal");
    Ok(Json(MeDto {
        user_id: principal.user_id,
        label: principal.label,
        roles: principal.roles.names(),
        agency: principal.agency.map(|a| a.to_string()),
        authenticated_by: match principal.via {
            Credential::Session { .. } => "session".into(),
            Credential::Token { .. } => "token".into(),
        },
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// Change one's own password.
#[utoipa::path(put, path = "/api/v1/me/password", tag = "session", request_body = PasswordChange,
    responses((status = 204, description = "Changed"), (status = 401, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn change_password(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<PasswordChange>,
) -> ApiResult<StatusCode> {
    app_users::change_own_password(&state.app, &actor, &body.current_password, &body.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleDto {
    pub name: String,
    /// `central` roles act on every agency; `agency` roles on their own.
    pub scope: String,
    pub description: String,
}

/// The roles an account can hold.
#[utoipa::path(operation_id = "list_roles", get, path = "/api/v1/roles", tag = "users",
    responses((status = 200, body = [RoleDto]), (status = 401, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn roles(Auth(_actor): Auth) -> Json<Vec<RoleDto>> {
    Json(
        Role::ALL
            .into_iter()
            .map(|role| RoleDto {
                name: role.as_str().to_string(),
                scope: if role.is_central() { "central" } else { "agency" }.to_string(),
                description: role.describe().to_string(),
            })
            .collect(),
    )
}
