//! Operations endpoints and middleware: `/healthz`, `/readyz`, `/metrics`, request ids,
//! request metrics and logs, and the security headers of every response.

use std::sync::OnceLock;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::AppState;
use crate::extract::RequestId;

/// The process's metrics recorder (installed once, shared by every router in the process).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full("custody_http_request_duration_seconds".into()), &buckets)
                .expect("valid buckets")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests embed several servers): keep ours readable.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Alive: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready: the database answers and carries every migration this binary knows.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready", body = String), (status = 503, description = "Not ready", body = String)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    if !state.app.store.ping().await {
        return (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response();
    }
    if !custody_store::migrate::is_current(&state.app.store).await {
        return (StatusCode::SERVICE_UNAVAILABLE, "database not migrated: run `custody migrate`").into_response();
    }
    "ready".into_response()
}

/// Prometheus text exposition: requests by route and status, latency histogram, database pool.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let pool = state.app.store.pool();
    metrics::gauge!("custody_db_pool_connections").set(f64::from(pool.size()));
    metrics::gauge!("custody_db_pool_idle_connections").set(pool.num_idle() as f64);
    let body = state.metrics.render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// Gives every request an id (the caller's `X-Request-Id` when sane), echoes it on the response
/// and inside problem documents, counts and times the request by route, and logs it.
pub async fn observe(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().clone();
    request.extensions_mut().insert(RequestId(request_id.clone()));
    let span = tracing::info_span!("request", id = %request_id, %method, route = %route);
    let mut response = next.run(request).await;
    let status = response.status();
    if is_problem(&response) {
        response = add_request_id(response, &request_id).await;
    }
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("x-request-id", value);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let labels = [("method", method.to_string()), ("route", route.clone()), ("status", status.as_u16().to_string())];
    metrics::counter!("custody_http_requests_total", &labels).increment(1);
    metrics::histogram!("custody_http_request_duration_seconds", &labels[..2]).record(elapsed);
    tracing::info!(parent: &span, status = status.as_u16(), ms = elapsed * 1000.0, "request");
    response
}

/// The Content-Security-Policy of every response: scripts, styles and images from Custody
/// itself (images also as `data:` URLs, which Swagger UI's stylesheet uses), no plugins, no
/// `<base>`, no framing, and forms that post only to Custody. No inline script or style runs, so
/// text that slipped through escaping could not execute.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The policy of Swagger UI (`/api/docs`): the same, and the one `<style>` element its logo
/// carries, allowed by its hash (Swagger UI's version pins it; another version's logo would only
/// lose its colours).
pub const API_DOCS_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; img-src 'self' data:; object-src 'none'; \
     base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// HSTS, sent only when Custody serves TLS itself: behind a proxy, the proxy decides.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// Adds the security headers to every response: CSP, `nosniff`, no framing, same-origin
/// referrers, HSTS under TLS, and `Cache-Control: no-store` unless the handler chose otherwise
/// (answers carry personal data; the stylesheet says it may be cached).
pub async fn security_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let policy = if request.uri().path().starts_with("/api/docs") {
        API_DOCS_CONTENT_SECURITY_POLICY
    } else {
        CONTENT_SECURITY_POLICY
    };
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if state.config.hsts {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(STRICT_TRANSPORT_SECURITY));
    }
    response
}

/// Refuses a URL whose path or query carries a NUL character (`%00`): no identifier or search
/// holds one, and PostgreSQL refuses it in text (so it would surface as a 500).
pub async fn refuse_nul(request: Request, next: Next) -> Response {
    let uri = request.uri();
    if uri.path().contains("%00") || uri.query().is_some_and(|q| q.contains("%00")) {
        return crate::problem::Problem::bad_request("nul-character", "The URL must not contain NUL characters (%00).")
            .into_response();
    }
    next.run(request).await
}

fn is_problem(response: &Response) -> bool {
    response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"))
}

async fn add_request_id(response: Response, request_id: &str) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.insert("request_id".into(), request_id.into());
            serde_json::to_vec(&map).unwrap_or_else(|_| bytes.to_vec())
        }
        _ => bytes.to_vec(),
    };
    let mut response = Response::from_parts(parts, Body::from(body));
    response.headers_mut().remove(header::CONTENT_LENGTH);
    response
}
