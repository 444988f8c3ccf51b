//! The signed-in user's own account: password and API tokens.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use custody_app::{AppError, tokens, users};

use super::{Layout, Viewer, csrf_refused, error_page, form_fields, render, when};
use crate::AppState;

struct TokenLine {
    id: String,
    name: String,
    prefix: String,
    roles: String,
    created: String,
    last_used: String,
    state: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    layout: &'a Layout,
    roles: String,
    tokens: Vec<TokenLine>,
    message: Option<String>,
    error: Option<String>,
    new_secret: Option<String>,
}

async fn page(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    message: Option<String>,
    error: Option<String>,
    new_secret: Option<String>,
) -> Response {
    let rows = match tokens::list_own(&state.app, &viewer.actor).await {
        Ok(rows) => rows,
        Err(error) => return error_page(viewer, error),
    };
    let now = custody_store::now_ms();
    let tokens = rows
        .into_iter()
        .map(|t| TokenLine {
            state: if t.revoked_at.is_some() {
                "revoked".into()
            } else if t.expires_at.is_some_and(|at| at <= now) {
                "expired".into()
            } else {
                "active".into()
            },
            id: t.id,
            name: t.name,
            prefix: t.prefix,
            roles: t.roles.to_csv(),
            created: when(t.created_at),
            last_used: t.last_used_at.map(when).unwrap_or_else(|| "never".into()),
        })
        .collect();
    let roles = viewer.principal().roles.to_csv();
    render(status, &AccountPage { layout: &viewer.layout, roles, tokens, message, error, new_secret })
}

pub async fn show(State(state): State<AppState>, viewer: Viewer) -> Response {
    page(&state, &viewer, StatusCode::OK, None, None, None).await
}

pub async fn change_password(State(state): State<AppState>, viewer: Viewer, body: Bytes) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    let current = form.get("current_password").cloned().unwrap_or_default();
    let new = form.get("new_password").cloned().unwrap_or_default();
    match users::change_own_password(&state.app, &viewer.actor, &current, &new).await {
        Ok(()) => {
            page(
                &state,
                &viewer,
                StatusCode::OK,
                Some("Your password is changed; your other sessions are ended.".into()),
                None,
                None,
            )
            .await
        }
        Err(AppError::Validation(errors)) => {
            page(
                &state,
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some(errors.to_string().replace('_', " ")),
                None,
            )
            .await
        }
        Err(error) => error_page(&viewer, error),
    }
}

pub async fn create_token(State(state): State<AppState>, viewer: Viewer, body: Bytes) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    let name = form.get("name").cloned().unwrap_or_default();
    let days = match form.get("expires_in_days").map(|d| d.trim()).filter(|d| !d.is_empty()) {
        None => None,
        Some(raw) => match raw.parse::<i64>() {
            Ok(days) => Some(days),
            Err(_) => {
                let error = Some("Expires after: a whole number of days".to_string());
                return page(&state, &viewer, StatusCode::UNPROCESSABLE_ENTITY, None, error, None).await;
            }
        },
    };
    match tokens::create_own(&state.app, &viewer.actor, Some(&name), None, days).await {
        Ok(issued) => page(&state, &viewer, StatusCode::CREATED, None, None, Some(issued.secret)).await,
        Err(AppError::Validation(errors)) => {
            page(&state, &viewer, StatusCode::UNPROCESSABLE_ENTITY, None, Some(errors.to_string()), None).await
        }
        Err(error) => error_page(&viewer, error),
    }
}

pub async fn revoke_token(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    match tokens::revoke(&state.app, &viewer.actor, &id).await {
        Ok(_) | Err(AppError::Conflict { .. }) => Redirect::to("/account").into_response(),
        Err(error) => error_page(&viewer, error),
    }
}
