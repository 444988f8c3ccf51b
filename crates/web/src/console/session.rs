//! Sign-in and sign-out pages, and the agency a central user looks at.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use custody_app::{AppError, auth};
use serde::Deserialize;

use super::{VIEW_COOKIE, Viewer, form_fields, render, safe_next};
use crate::AppState;
use crate::api::session::session_cookie;
use crate::extract::{RequestMeta, SESSION_COOKIE, cookie_in, same_origin};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    error: Option<String>,
    email: String,
    next: String,
    signed_out: bool,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    signed_out: Option<String>,
}

pub async fn login_page(Query(query): Query<LoginQuery>) -> Response {
    let page = LoginPage {
        error: None,
        email: String::new(),
        next: safe_next(query.next.as_deref()),
        signed_out: query.signed_out.is_some(),
    };
    render(StatusCode::OK, &page)
}

pub async fn login(State(state): State<AppState>, meta: RequestMeta, headers: HeaderMap, body: Bytes) -> Response {
    // No session yet, so no CSRF token: a sign-in posted from another site is refused by origin.
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "Sign in from Custody's own sign-in page.").into_response();
    }
    let form = form_fields(&body);
    let email = form.get("email").cloned().unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    let next = safe_next(form.get("next").map(String::as_str));
    let previous = cookie_in(&headers, SESSION_COOKIE);
    match auth::sign_in(&state.app, &email, &password, previous, &meta.source_addr, meta.request_id).await {
        Ok(session) => {
            let mut response = Redirect::to(&next).into_response();
            response
                .headers_mut()
                .insert(header::SET_COOKIE, session_cookie(&session.secret, state.config.secure_cookies, false));
            response
        }
        Err(error) => {
            let (status, message) = match error {
                AppError::Locked { until_ms } => (
                    StatusCode::LOCKED,
                    format!(
                        "This account is locked after too many failed sign-ins. Try again after {}.",
                        super::when(until_ms)
                    ),
                ),
                AppError::Throttled { .. } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many failed sign-ins from this address. Try again in a few minutes.".to_string(),
                ),
                AppError::Validation(_) | AppError::SignInFailed(_) => {
                    (StatusCode::UNAUTHORIZED, "The e-mail or password is not right.".to_string())
                }
                other => return crate::problem::Problem::from_app(other).into_response(),
            };
            render(status, &LoginPage { error: Some(message), email, next, signed_out: false })
        }
    }
}

pub async fn logout(State(state): State<AppState>, viewer: Viewer, body: Bytes) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return super::csrf_refused();
    }
    if let Err(error) = auth::sign_out(&state.app, &viewer.actor).await {
        return super::error_page(&viewer, error);
    }
    let mut response = Redirect::to("/login?signed_out=1").into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie("", state.config.secure_cookies, true));
    response
}

#[derive(Deserialize)]
pub struct ViewQuery {
    code: Option<String>,
    next: Option<String>,
}

/// Remembers the agency a central user chose to look at (empty: all agencies).
pub async fn view_agency(viewer: Viewer, Query(query): Query<ViewQuery>) -> Response {
    let next = safe_next(query.next.as_deref());
    let code = query.code.unwrap_or_default();
    let mut response = Redirect::to(&next).into_response();
    if !viewer.principal().is_central() {
        return response;
    }
    let cookie = if viewer.layout.agency_choices.contains(&code) {
        format!("{VIEW_COOKIE}={code}; Path=/; HttpOnly; SameSite=Lax")
    } else {
        format!("{VIEW_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
    };
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
