//! The endpoints devices speak to, in Apple's protocols rather than Custody's API: SCEP at
//! `/scep` (RFC 8894) and MDM at `/mdm/checkin` and `/mdm/connect` (XML plists over `PUT`).
//!
//! Not part of the OpenAPI document: their shapes are Apple's and the IETF's. A device proves
//! who it is on every MDM message with `Mdm-Signature` (a detached CMS signature over the body
//! by its identity certificate) or, when Custody sits behind a TLS-terminating proxy that is
//! trusted to do so, with the client certificate the proxy passes in a header (RFC 9440).

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use custody_app::AppError;
use custody_app::mdm::{self, DeviceRefusal};

use crate::AppState;
use crate::extract::RequestMeta;
use crate::tls::ClientCertificate;

/// Device reports can be large (an installed-application list of a full device).
const DEVICE_BODY_LIMIT: usize = 8 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/scep", get(scep_get).post(scep_post))
        .route("/mdm/checkin", put(checkin))
        .route("/mdm/connect", put(connect))
        .layer(DefaultBodyLimit::max(DEVICE_BODY_LIMIT))
}

fn plain(status: StatusCode, message: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message.to_string()).into_response()
}

fn failed(error: AppError) -> Response {
    match error {
        AppError::Validation(errors) => {
            let reasons: Vec<String> = errors.0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
            plain(StatusCode::BAD_REQUEST, &reasons.join("; "))
        }
        other => {
            tracing::error!(error = %other, "device endpoint failed");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

async fn scep_get(
    State(state): State<AppState>,
    meta: RequestMeta,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match query.get("operation").map(String::as_str) {
        Some("GetCACaps") => plain(StatusCode::OK, &scep::caps::ca_caps()),
        Some("GetCACert") => match mdm::ca(&state.app).await {
            Ok(ca) => {
                ([(header::CONTENT_TYPE, scep::cacert::CA_CERT_CONTENT_TYPE)], scep::cacert::ca_cert(&ca).to_vec())
                    .into_response()
            }
            Err(error) => failed(error),
        },
        Some("PKIOperation") => {
            let Some(message) = query.get("message") else {
                return plain(StatusCode::BAD_REQUEST, "PKIOperation needs a message parameter");
            };
            match scep::decode_message_parameter(message) {
                Ok(der) => pki_operation(&state, &der, Some(meta.source_addr.clone())).await,
                Err(error) => plain(StatusCode::BAD_REQUEST, &error.to_string()),
            }
        }
        Some(other) => plain(StatusCode::BAD_REQUEST, &format!("unsupported SCEP operation {other}")),
        None => plain(StatusCode::BAD_REQUEST, "the operation parameter is required"),
    }
}

async fn scep_post(
    State(state): State<AppState>,
    meta: RequestMeta,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    match query.get("operation").map(String::as_str) {
        Some("PKIOperation") => pki_operation(&state, &body, Some(meta.source_addr.clone())).await,
        _ => plain(StatusCode::BAD_REQUEST, "POST is for operation=PKIOperation"),
    }
}

async fn pki_operation(state: &AppState, der: &[u8], source: Option<String>) -> Response {
    match mdm::scep_operation(&state.app, der, source).await {
        Ok(reply) => ([(header::CONTENT_TYPE, scep::response::PKI_MESSAGE_CONTENT_TYPE)], reply).into_response(),
        Err(error) => failed(error),
    }
}

/// The device's identity certificate (DER) for a message: from `Mdm-Signature`, verified over
/// the body; else the TLS client certificate when Custody terminates TLS; else from the
/// trusted proxy's header when one is configured.
/// A refusal is answered 401 with its reason.
fn identity(
    state: &AppState,
    headers: &HeaderMap,
    tls: Option<&ClientCertificate>,
    body: &[u8],
) -> Result<Vec<u8>, &'static str> {
    if let Some(signature) = headers.get("mdm-signature").and_then(|v| v.to_str().ok()) {
        return apple_mdm::signature::verify_mdm_signature(signature, body)
            .map(|signer| signer.der().to_vec())
            .map_err(|error| {
                tracing::info!(%error, "Mdm-Signature refused");
                "the message signature does not verify"
            });
    }
    // Custody terminating TLS itself: the certificate the handshake proved.
    if let Some(ClientCertificate(der)) = tls {
        return Ok(der.clone());
    }
    if let Some(name) = &state.config.client_cert_header
        && let Some(value) = headers.get(name.as_str()).and_then(|v| v.to_str().ok())
    {
        // RFC 9440: the DER certificate as a byte sequence, `:base64:`.
        let inner = value.trim().trim_start_matches(':').trim_end_matches(':');
        return base64::Engine::decode(&base64::engine::general_purpose::STANDARD, inner)
            .map_err(|_| "the client certificate header is malformed");
    }
    Err("the message is not signed (Mdm-Signature) and no client certificate came with it")
}

fn refused(refusal: DeviceRefusal) -> Response {
    match refusal {
        DeviceRefusal::Malformed(message) => plain(StatusCode::BAD_REQUEST, &message),
        DeviceRefusal::Identity(reason) => {
            tracing::info!(reason, "device identity refused");
            plain(StatusCode::UNAUTHORIZED, "identity refused")
        }
        DeviceRefusal::App(error) => failed(error),
    }
}

async fn checkin(
    State(state): State<AppState>,
    meta: RequestMeta,
    tls: Option<Extension<ClientCertificate>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let cert = match identity(&state, &headers, tls.as_ref().map(|e| &e.0), &body) {
        Ok(cert) => cert,
        Err(reason) => return plain(StatusCode::UNAUTHORIZED, reason),
    };
    use apple_mdm::checkin::CheckinReply;
    match mdm::checkin(&state.app, &cert, &body, Some(meta.source_addr.clone())).await {
        Ok(CheckinReply::Empty) => StatusCode::OK.into_response(),
        Ok(CheckinReply::Plist(xml)) => ([(header::CONTENT_TYPE, "application/xml")], xml).into_response(),
        Ok(CheckinReply::Json(json)) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        // Apple: a server that does not offer what the device asks answers 410 Gone.
        Ok(CheckinReply::Declined) => StatusCode::GONE.into_response(),
        Err(refusal) => refused(refusal),
    }
}

async fn connect(
    State(state): State<AppState>,
    meta: RequestMeta,
    tls: Option<Extension<ClientCertificate>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let cert = match identity(&state, &headers, tls.as_ref().map(|e| &e.0), &body) {
        Ok(cert) => cert,
        Err(reason) => return plain(StatusCode::UNAUTHORIZED, reason),
    };
    match mdm::connect(&state.app, &cert, &body, Some(meta.source_addr.clone())).await {
        Ok(Some(command)) => ([(header::CONTENT_TYPE, "application/xml")], command).into_response(),
        Ok(None) => StatusCode::OK.into_response(),
        Err(refusal) => refused(refusal),
    }
}
