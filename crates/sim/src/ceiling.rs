//! The "ceiling" server: the least an MDM endpoint can do. It reads each request body,
//! decodes the plist (a check-in message at `/checkin`, a report anywhere else) and answers 200
//! with an empty body, or, when asked, a `DeviceInformation` command every n-th `Idle`. Run
//! the load benchmark against it to learn what this machine, HTTP stack and simulator allow,
//! and compare Custody's figures with that.
//!
//! It keeps nothing and checks no certificate chain: it is a yardstick, not a server. When
//! asked it verifies each `Mdm-Signature` over the body (the one piece of cryptography a real
//! server cannot skip), answering 403 when it does not verify.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use apple_mdm::checkin::Checkin;
use apple_mdm::command::{Command, CommandUuid};
use apple_mdm::report::{Report, Status};
use apple_mdm::signature::verify_mdm_signature;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use tokio::net::TcpListener;

/// How the ceiling server answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CeilingConfig {
    /// Answer every n-th `Idle` with a `DeviceInformation` command (0: never), to measure the
    /// command round trip too.
    pub command_every: u64,
    /// Verify each message's `Mdm-Signature` (a missing or bad one is answered 403).
    pub verify_signatures: bool,
}

/// What the ceiling server counted.
#[derive(Debug, Default)]
pub struct CeilingCounters {
    /// Check-in messages decoded.
    pub checkins: AtomicU64,
    /// Reports decoded.
    pub reports: AtomicU64,
    /// Commands sent.
    pub commands: AtomicU64,
    /// Bodies that did not decode (answered 400).
    pub malformed: AtomicU64,
    /// Messages whose signature was missing or did not verify (answered 403).
    pub bad_signatures: AtomicU64,
}

struct Shared {
    config: CeilingConfig,
    counters: Arc<CeilingCounters>,
    idle_seen: AtomicU64,
}

/// The ceiling server's routes: `PUT /checkin` and `PUT` on any other path.
pub fn router(config: CeilingConfig, counters: Arc<CeilingCounters>) -> Router {
    let shared = Arc::new(Shared { config, counters, idle_seen: AtomicU64::new(0) });
    Router::new().route("/checkin", put(checkin)).fallback(connect).with_state(shared)
}

/// Serves the ceiling endpoints on `listener` until the task is dropped or aborted.
pub async fn serve(
    listener: TcpListener,
    config: CeilingConfig,
    counters: Arc<CeilingCounters>,
) -> std::io::Result<()> {
    axum::serve(listener, router(config, counters)).await
}

/// The URLs a device uses against a ceiling server listening at `addr`.
pub fn endpoints(addr: std::net::SocketAddr) -> crate::MdmEndpoints {
    crate::MdmEndpoints {
        server_url: format!("http://{addr}/connect"),
        check_in_url: format!("http://{addr}/checkin"),
        topic: "com.apple.mgmt.External.00000000-0000-0000-0000-000000000000".to_owned(),
        sign_message: true,
    }
}

/// Whether the message may be served: always, unless signatures are verified.
fn signature_ok(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> bool {
    if !shared.config.verify_signatures {
        return true;
    }
    let verified = headers
        .get("mdm-signature")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|header| verify_mdm_signature(header, body).is_ok());
    if !verified {
        shared.counters.bad_signatures.fetch_add(1, Ordering::Relaxed);
    }
    verified
}

async fn checkin(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if !signature_ok(&shared, &headers, &body) {
        return StatusCode::FORBIDDEN.into_response();
    }
    match Checkin::parse(&body) {
        Ok(_) => {
            shared.counters.checkins.fetch_add(1, Ordering::Relaxed);
            StatusCode::OK.into_response()
        }
        Err(_) => {
            shared.counters.malformed.fetch_add(1, Ordering::Relaxed);
            StatusCode::BAD_REQUEST.into_response()
        }
    }
}

async fn connect(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if !signature_ok(&shared, &headers, &body) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let report = match Report::parse(&body) {
        Ok(report) => report,
        Err(_) => {
            shared.counters.malformed.fetch_add(1, Ordering::Relaxed);
            return StatusCode::BAD_REQUEST.into_response();
        }
    };
    shared.counters.reports.fetch_add(1, Ordering::Relaxed);
    let every = shared.config.command_every;
    if every > 0
        && report.status == Status::Idle
        && shared.idle_seen.fetch_add(1, Ordering::Relaxed) % every == every - 1
    {
        shared.counters.commands.fetch_add(1, Ordering::Relaxed);
        let command = Command::DeviceInformation {
            queries: ["UDID", "DeviceName", "OSVersion", "SerialNumber", "BatteryLevel"].map(str::to_owned).to_vec(),
        };
        return (StatusCode::OK, [("content-type", "application/xml")], command.to_xml(&CommandUuid::random()))
            .into_response();
    }
    StatusCode::OK.into_response()
}
