//! Custody's HTTP edge: the JSON API (`/api/v1`, OpenAPI at `/api/v1/openapi.json`, Swagger UI
//! at `/api/docs`), the console, the operations endpoints, and the device endpoints `/mdm` and `/scep`.
//!
//! The only crate that knows HTTP. Handlers translate requests into use-case calls of
//! `custody-app` and their results into JSON or problem documents; they hold no business rules.

pub mod api;
pub mod charts;
pub mod console;
pub mod device;
pub mod extract;
pub mod limit;
pub mod ops;
pub mod problem;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use custody_app::App;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use utoipa_swagger_ui::SwaggerUi;

use crate::problem::Problem;

/// Settings of the HTTP edge.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// Mark cookies `Secure` (Custody is served over TLS, directly or behind a proxy).
    pub secure_cookies: bool,
    /// The header in which a trusted TLS-terminating proxy passes the device's client
    /// certificate (RFC 9440, e.g. `Client-Cert`); `None` trusts no such header.
    pub client_cert_header: Option<String>,
    /// Send `Strict-Transport-Security` (Custody serves TLS itself).
    pub hsts: bool,
    /// Requests per client address and per credential.
    pub rate_limits: limit::RateLimits,
}

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub config: Arc<WebConfig>,
    pub metrics: PrometheusHandle,
    pub limiter: Arc<limit::Limiter>,
}

/// The whole HTTP application.
pub fn router(app: App, config: WebConfig) -> Router {
    let limiter = Arc::new(limit::Limiter::new(config.rate_limits));
    let state = AppState { app, config: Arc::new(config), metrics: ops::metrics_handle(), limiter };
    let (api, openapi) = api::router().split_for_parts();
    Router::new()
        .merge(api)
        .merge(SwaggerUi::new("/api/docs").url("/api/v1/openapi.json", openapi))
        .merge(console::router())
        .layer(DefaultBodyLimit::max(2 * 1024 * 1024))
        .merge(device::router())
        .fallback(not_found)
        .layer(axum::middleware::from_fn(ops::refuse_nul))
        .layer(axum::middleware::from_fn_with_state(state.clone(), limit::limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), ops::security_headers))
        .layer(axum::middleware::from_fn(ops::observe))
        .with_state(state)
}

/// Unknown paths: a problem document for the API and machines, the 404 page for browsers.
async fn not_found(state: axum::extract::State<AppState>, request: axum::extract::Request) -> axum::response::Response {
    use axum::extract::FromRequestParts;
    use axum::response::IntoResponse;
    let wants_html = request
        .headers()
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if request.uri().path().starts_with("/api/") || !wants_html {
        return Problem::not_found().into_response();
    }
    let (mut parts, _) = request.into_parts();
    match console::Viewer::from_request_parts(&mut parts, &state).await {
        Ok(viewer) => console::not_found(&viewer),
        Err(_) => console::not_found_public(),
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then drains open requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// The OpenAPI document, as served at `/api/v1/openapi.json`.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    api::router().split_for_parts().1
}
