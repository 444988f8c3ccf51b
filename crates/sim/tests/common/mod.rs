//! A stand-in for Custody's MDM edge, for the simulator's tests (the real server is another
//! crate's): the enrollment-profile download, SCEP through the `scep` crate, and `PUT`
//! check-in and command endpoints that verify `Mdm-Signature`, check the signer chains to the
//! CA and is the certificate bound at `Authenticate`, decode with `apple-mdm`, and hand out
//! queued commands. Minimal on purpose: what the real server does is tested there.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use apple_mdm::checkin::{Checkin, CheckinMessage};
use apple_mdm::command::{Command, CommandUuid};
use apple_mdm::profile::{EnrollmentProfile, Mdm, Scep, sign_profile};
use apple_mdm::push::Topic;
use apple_mdm::report::{Report, Status};
use apple_mdm::signature::{verify_chain, verify_mdm_signature};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use openssl::x509::X509;
use scep::{CertificateAuthority, Issuance, PkiMessage, Request, SerialNumber, Subject, caps, response};

pub const TOKEN: &str = "test-token-4711";
pub const AGENCY: &str = "DMV";
pub const CHALLENGE: &str = "one-time-challenge-0001";
pub const TOPIC: &str = "com.apple.mgmt.External.6f2b6c9e-4a4e-4b8a-9d55-0d6d7e1f2a3b";

/// What the server saw.
#[derive(Default)]
pub struct Seen {
    /// Check-in messages, decoded, in order.
    pub checkins: Vec<Checkin>,
    /// Reports, decoded, in order.
    pub reports: Vec<Report>,
    /// Requests refused, with the reason.
    pub refused: Vec<String>,
    /// SCEP challenges received.
    pub challenges: Vec<Option<String>>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<(CommandUuid, Vec<u8>)>,
    /// Commands answered NotNow, sent again from the next session on.
    deferred: Vec<(CommandUuid, Vec<u8>)>,
    /// The command sent and not yet answered.
    in_flight: Option<(CommandUuid, Vec<u8>)>,
}

pub struct TestServer {
    pub base_url: String,
    pub ca: Arc<CertificateAuthority>,
    pub seen: Arc<Mutex<Seen>>,
    queues: Arc<Mutex<HashMap<String, Queue>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct AppState {
    base_url: String,
    ca: Arc<CertificateAuthority>,
    profile_signer: Arc<(openssl::pkey::PKey<openssl::pkey::Private>, X509)>,
    seen: Arc<Mutex<Seen>>,
    queues: Arc<Mutex<HashMap<String, Queue>>>,
    /// Identity certificate (DER) bound to each UDID at Authenticate.
    bound: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

impl TestServer {
    pub async fn start() -> TestServer {
        let ca =
            CertificateAuthority::generate(&Subject::new("Custody Test CA").organization("Custody"), 5, now() - 60)
                .unwrap();
        let ca = Arc::new(ca);
        let signer = custody_sim::Identity::self_signed("Custody Profile Signing").unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Seen::default()));
        let queues = Arc::new(Mutex::new(HashMap::new()));
        let state = AppState {
            base_url: base_url.clone(),
            ca: ca.clone(),
            profile_signer: Arc::new((signer.key().clone(), signer.certificate().to_owned())),
            seen: seen.clone(),
            queues: queues.clone(),
            bound: Arc::default(),
        };
        let app = Router::new()
            .route("/api/v1/agencies/{code}/enrollment-profile", get(profile))
            .route("/scep", get(scep_get).post(scep_post))
            .route("/mdm/checkin", put(checkin))
            .route("/mdm/connect", put(connect))
            .with_state(state);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        TestServer { base_url, ca, seen, queues, task }
    }

    /// Queues a command for a device; returns its CommandUUID.
    pub fn enqueue(&self, udid: &str, command: &Command) -> String {
        let uuid = CommandUuid::random();
        self.enqueue_raw(udid, uuid.clone(), command.to_xml(&uuid));
        uuid.into_string()
    }

    /// Queues any command body (for request types the protocol crate does not know).
    pub fn enqueue_raw(&self, udid: &str, uuid: CommandUuid, body: Vec<u8>) {
        self.queues.lock().unwrap().entry(udid.to_owned()).or_default().waiting.push_back((uuid, body));
    }

    /// The last report about `command_uuid`.
    pub fn report_for(&self, command_uuid: &str) -> Report {
        let seen = self.seen.lock().unwrap();
        seen.reports
            .iter()
            .rev()
            .find(|r| r.status.command_uuid().map(CommandUuid::as_str) == Some(command_uuid))
            .cloned()
            .unwrap_or_else(|| panic!("no report for {command_uuid}"))
    }

    pub fn ca_certificate(&self) -> X509 {
        X509::from_der(self.ca.certificate_der()).unwrap()
    }

    pub fn http() -> reqwest::Client {
        reqwest::Client::builder().no_proxy().build().unwrap()
    }
}

async fn profile(
    State(state): State<AppState>,
    Path(code): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let authorized = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"));
    if !authorized {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if code != AGENCY {
        return StatusCode::NOT_FOUND.into_response();
    }
    let profile = EnrollmentProfile {
        identifier: "gov.example.custody.enrollment".into(),
        display_name: "Custody enrollment".into(),
        organization: "Custody".into(),
        description: None,
        scep: Scep::new(
            format!("{}/scep", state.base_url),
            Some(CHALLENGE.into()),
            vec![("O".into(), "Custody".into()), ("CN".into(), "Custody device".into())],
        ),
        mdm: Mdm::new(
            format!("{}/mdm/connect", state.base_url),
            Some(format!("{}/mdm/checkin", state.base_url)),
            Topic::new(TOPIC).unwrap(),
        ),
        ca_certificate_der: state.ca.certificate_der().to_vec(),
    };
    let mut body = profile.build().to_xml();
    if query.get("signed").map(String::as_str) == Some("true") {
        let (key, cert) = &*state.profile_signer;
        body = sign_profile(&body, cert, key, &[]).unwrap();
    }
    ([("content-type", "application/x-apple-aspen-config")], body).into_response()
}

async fn scep_get(State(state): State<AppState>, Query(query): Query<HashMap<String, String>>) -> Response {
    match query.get("operation").map(String::as_str) {
        Some("GetCACaps") => ([("content-type", caps::CA_CAPS_CONTENT_TYPE)], caps::ca_caps()).into_response(),
        Some("GetCACert") => {
            ([("content-type", scep::cacert::CA_CERT_CONTENT_TYPE)], state.ca.certificate_der().to_vec())
                .into_response()
        }
        _ => StatusCode::BAD_REQUEST.into_response(),
    }
}

async fn scep_post(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if query.get("operation").map(String::as_str) != Some("PKIOperation") {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let Ok(message) = PkiMessage::decode(&body) else { return StatusCode::BAD_REQUEST.into_response() };
    let reply = match message.open(&state.ca) {
        Ok(Request::PkcsReq(csr)) => {
            let challenge = csr.challenge_password().map(str::to_owned);
            state.seen.lock().unwrap().challenges.push(challenge.clone());
            if challenge.as_deref() == Some(CHALLENGE) {
                let issuance =
                    Issuance { serial: SerialNumber::random(), subject: None, now: now(), validity_days: 30 };
                let certificate = state.ca.issue(&csr, &issuance).unwrap();
                response::success(&state.ca, &message, &certificate).unwrap()
            } else {
                response::failure(&state.ca, &message, scep::FailInfo::BadRequest).unwrap()
            }
        }
        Ok(_) => response::failure(&state.ca, &message, scep::FailInfo::BadRequest).unwrap(),
        Err(e) => response::failure(&state.ca, &message, e.fail_info()).unwrap(),
    };
    ([("content-type", response::PKI_MESSAGE_CONTENT_TYPE)], reply).into_response()
}

/// Verifies the signature and the chain; returns the signer's DER.
fn authenticate(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, String> {
    let header = headers.get("mdm-signature").and_then(|v| v.to_str().ok()).ok_or("no Mdm-Signature")?;
    let signer = verify_mdm_signature(header, body).map_err(|e| e.to_string())?;
    verify_chain(signer.x509(), &X509::from_der(state.ca.certificate_der()).unwrap()).map_err(|e| e.to_string())?;
    Ok(signer.der().to_vec())
}

fn refuse(state: &AppState, status: StatusCode, reason: String) -> Response {
    state.seen.lock().unwrap().refused.push(reason);
    status.into_response()
}

fn bound_matches(state: &AppState, udid: &str, signer: &[u8]) -> bool {
    state.bound.lock().unwrap().get(udid).is_some_and(|der| der == signer)
}

async fn checkin(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/x-apple-aspen-mdm-checkin") {
        return refuse(&state, StatusCode::UNSUPPORTED_MEDIA_TYPE, "check-in content type".into());
    }
    let signer = match authenticate(&state, &headers, &body) {
        Ok(signer) => signer,
        Err(reason) => return refuse(&state, StatusCode::FORBIDDEN, reason),
    };
    let checkin = match Checkin::parse(&body) {
        Ok(c) => c,
        Err(e) => return refuse(&state, StatusCode::BAD_REQUEST, e.to_string()),
    };
    let udid = checkin.enrollment.device_key().to_owned();
    if let CheckinMessage::Authenticate(_) = checkin.message {
        state.bound.lock().unwrap().insert(udid, signer);
    } else if !bound_matches(&state, &udid, &signer) {
        return refuse(&state, StatusCode::FORBIDDEN, format!("{udid}: not the bound certificate"));
    }
    state.seen.lock().unwrap().checkins.push(checkin);
    StatusCode::OK.into_response()
}

async fn connect(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/x-apple-aspen-mdm") {
        return refuse(&state, StatusCode::UNSUPPORTED_MEDIA_TYPE, "connect content type".into());
    }
    let signer = match authenticate(&state, &headers, &body) {
        Ok(signer) => signer,
        Err(reason) => return refuse(&state, StatusCode::FORBIDDEN, reason),
    };
    let report = match Report::parse(&body) {
        Ok(r) => r,
        Err(e) => return refuse(&state, StatusCode::BAD_REQUEST, e.to_string()),
    };
    let udid = report.enrollment.device_key().to_owned();
    if !bound_matches(&state, &udid, &signer) {
        return refuse(&state, StatusCode::FORBIDDEN, format!("{udid}: not the bound certificate"));
    }
    let status = report.status.clone();
    state.seen.lock().unwrap().reports.push(report);

    let mut queues = state.queues.lock().unwrap();
    let queue = queues.entry(udid).or_default();
    match &status {
        Status::Idle => {
            // A new session: commands deferred with NotNow are due again.
            let deferred: Vec<_> = queue.deferred.drain(..).collect();
            for item in deferred.into_iter().rev() {
                queue.waiting.push_front(item);
            }
        }
        Status::NotNow { command_uuid } => {
            if let Some(item) = queue.in_flight.take().filter(|(uuid, _)| uuid == command_uuid) {
                queue.deferred.push(item);
            }
        }
        _ => {
            queue.in_flight.take();
        }
    }
    match queue.waiting.pop_front() {
        Some((uuid, body)) => {
            queue.in_flight = Some((uuid, body.clone()));
            ([("content-type", "application/xml")], body).into_response()
        }
        None => StatusCode::OK.into_response(),
    }
}
