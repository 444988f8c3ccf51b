//! Extractors: who is calling (`Auth`), and bodies and queries parsed into typed requests
//! whose errors are problem documents naming the field.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use custody_app::{Actor, AppError, auth};
use custody_domain::authz::Credential;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::problem::{ApiError, Problem};

/// The name of the console session cookie.
pub const SESSION_COOKIE: &str = "custody_session";
/// The header carrying the CSRF token on cookie-authenticated writes.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The request id assigned by the middleware.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Request id and source address of the current request.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: Option<String>,
    pub source_addr: String,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone());
        let source_addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string())
            .unwrap_or_else(|| "unknown".to_string());
        Ok(Self { request_id, source_addr })
    }
}

/// The value of cookie `name` in the request, if any.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    cookie_in(&parts.headers, name)
}

/// The value of cookie `name` in `headers`, if any.
pub fn cookie_in<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then_some(value)
    })
}

/// An authenticated caller. A bearer token wins over a cookie; a cookie-authenticated write
/// must carry the session's CSRF token and, when the browser sends one, a same-origin `Origin`.
#[derive(Debug, Clone)]
pub struct Auth(pub Actor);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let meta = RequestMeta::from_request_parts(parts, state).await?;
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        let principal = if let Some(token) = bearer {
            auth::token_principal(&state.app, token).await?
        } else if let Some(secret) = cookie(parts, SESSION_COOKIE) {
            let principal = auth::session_principal(&state.app, secret).await?;
            if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
                check_csrf(parts, &principal.via)?;
            }
            principal
        } else {
            return Err(AppError::Unauthenticated.into());
        };
        crate::limit::note_accepted(parts);
        Ok(Auth(Actor::principal(principal, meta.request_id, Some(meta.source_addr))))
    }
}

fn check_csrf(parts: &Parts, via: &Credential) -> Result<(), ApiError> {
    let Credential::Session { csrf_token, .. } = via else { return Ok(()) };
    if !same_origin(&parts.headers) {
        return Err(Problem::forbidden("Cross-origin write refused.").into());
    }
    let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    if sent.is_empty() || !constant_time_eq(sent.as_bytes(), csrf_token.as_bytes()) {
        let problem = Problem::new(StatusCode::FORBIDDEN, "csrf", "CSRF token missing or wrong")
            .detail("Writes made with a session cookie must send the session's CSRF token in X-CSRF-Token.");
        return Err(problem.into());
    }
    Ok(())
}

/// False when the browser says the request comes from another origin than the host it is sent
/// to; true when it says nothing (not a browser, or an old one: the CSRF token still guards).
pub fn same_origin(headers: &axum::http::HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    origin_host == host
}

/// Compares secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A JSON body parsed into `T`: malformed JSON is a 400, a missing, unknown or mistyped field a
/// 422 naming the field.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"));
        if !is_json {
            let problem = Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "media-type", "Unsupported media type")
                .detail("Send the body as application/json.");
            return Err(problem.into());
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", "Body too large")
                    .detail("The body is larger than Custody accepts.")
            } else {
                Problem::bad_request("body", format!("The body could not be read: {e}"))
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON document into `T`, naming the field at fault. A string holding a NUL
/// character (`\u0000`) is refused: no field takes one, and PostgreSQL refuses it in text.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if has_nul_escape(bytes) {
        return Err(Problem::bad_request("nul-character", "Text must not contain NUL characters (\\u0000).").into());
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Ok(value) => match deserializer.end() {
            Ok(()) => Ok(value),
            Err(e) => Err(Problem::bad_request("malformed-json", format!("The body is not valid JSON: {e}")).into()),
        },
        Err(error) => {
            let inner = error.inner();
            let message = inner.to_string();
            if inner.is_syntax() || inner.is_eof() {
                return Err(
                    Problem::bad_request("malformed-json", format!("The body is not valid JSON: {message}")).into()
                );
            }
            let path = error.path().to_string();
            let field = match message.strip_prefix("missing field `") {
                Some(rest) => {
                    let name = rest.split('`').next().unwrap_or_default();
                    if path == "." { name.to_string() } else { format!("{path}.{name}") }
                }
                None => path,
            };
            let message = message.split(" at line ").next().unwrap_or(&message).to_string();
            Err(Problem::validation(custody_domain::FieldErrors::single(field, message)).into())
        }
    }
}

/// True when the JSON text holds the escape `\u0000` (a backslash that is not itself escaped,
/// then `u0000`): the only way JSON can carry a NUL character.
fn has_nul_escape(bytes: &[u8]) -> bool {
    bytes.windows(6).enumerate().any(|(at, window)| {
        window == b"\\u0000" && bytes[..at].iter().rev().take_while(|b| **b == b'\\').count() % 2 == 0
    })
}

/// A query string parsed into `T`; a bad parameter is a 422 naming it.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize::<_, T>(deserializer).map(ApiQuery).map_err(|error| {
            let message = error.inner().to_string();
            let field = match message.strip_prefix("unknown field `") {
                Some(rest) => rest.split('`').next().unwrap_or_default().to_string(),
                None => error.path().to_string(),
            };
            Problem::validation(custody_domain::FieldErrors::single(field, message)).into()
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_real_nul_escape_is_found() {
        assert!(super::has_nul_escape(br#"{"q": "a\u0000b"}"#));
        assert!(super::has_nul_escape(br#"{"q": "\\\u0000"}"#));
        assert!(!super::has_nul_escape(br#"{"q": "a\\u0000b"}"#), "an escaped backslash, then text");
        assert!(!super::has_nul_escape(br#"{"q": "u0000"}"#));
    }
}
