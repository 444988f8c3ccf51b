//! The APNs client: MDM pushes over HTTP/2 with the push certificate as TLS client identity.
//!
//! One `Client` keeps a few long-lived HTTP/2 connections (one by default, as Apple asks) and
//! multiplexes every push over them as concurrent streams. A push answers a [`PushOutcome`]
//! the caller acts on; retrying with [`backoff`] and marking tokens invalid are the caller's
//! (the job runner's) business. This module knows APNs' HTTP/2 API and nothing of devices,
//! commands or the database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;

use crate::{PushCertificate, Topic};

/// APNs' production endpoint. MDM pushes always go to production, even for development servers.
pub const PRODUCTION_URL: &str = "https://api.push.apple.com";

/// Longest error body read from APNs; its JSON answers are a few dozen bytes.
const MAX_RESPONSE_BODY: usize = 16 * 1024;

/// How a [`Client`] connects and what it puts on every push.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `https://host[:port]`, without a path. [`PRODUCTION_URL`] unless a stand-in is used.
    pub base_url: String,
    /// The TLS client identity; its topic is what pushes must name.
    pub certificate: PushCertificate,
    /// PEM certificates trusted beside the public web roots (the stand-in's CA).
    pub extra_roots_pem: Option<Vec<u8>>,
    /// How many HTTP/2 connections to spread pushes over. Each carries many streams.
    pub connections: usize,
    pub connect_timeout: Duration,
    /// Longest wait for one push's answer; past it the push answers `Retry`.
    pub request_timeout: Duration,
    /// `apns-priority`; `None` leaves the header out (APNs then uses 10).
    pub priority: Option<Priority>,
    /// `apns-expiration`; `None` leaves the header out.
    pub expiration: Option<Expiration>,
}

impl ClientConfig {
    pub fn new(certificate: PushCertificate) -> ClientConfig {
        ClientConfig {
            base_url: PRODUCTION_URL.to_owned(),
            certificate,
            extra_roots_pem: None,
            connections: 1,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            priority: Some(Priority::Immediate),
            expiration: None,
        }
    }
}

/// The `apns-priority` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// 10: deliver at once.
    Immediate,
    /// 5: deliver with the device's power considerations.
    PowerConsiderate,
}

/// The `apns-expiration` header: how long APNs keeps a push for an offline device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiration {
    /// 0: deliver only if the device is reachable now; do not store.
    Immediately,
    /// Keep it this long from the moment of the push.
    After(Duration),
}

/// Building a client failed: a configuration mistake, reported at startup.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the APNs URL {url:?} is not usable: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("the extra trust roots are not usable PEM certificates: {0}")]
    BadRoots(String),
    #[error("TLS configuration failed: {0}")]
    Tls(#[from] rustls::Error),
}

/// One device to wake: its push token (hex, as stored from `TokenUpdate`), its `PushMagic`, and
/// the topic from its enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    pub token_hex: String,
    pub push_magic: String,
    pub topic: String,
}

/// What became of one push; the caller's next step follows from the variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// APNs accepted it (200). `apns_id` identifies the notification in Apple's logs.
    Delivered { apns_id: String },
    /// The token is dead (410 `Unregistered`/`ExpiredToken`, or 400 `BadDeviceToken`/
    /// `DeviceTokenNotForTopic`): mark it invalid and stop pushing until the device sends a new
    /// `TokenUpdate`. `since` is APNs' timestamp of when it stopped being valid, when given.
    TokenInvalid { reason: String, since: Option<SystemTime> },
    /// Try again later (429, 500, 503, a connection failure or a timeout). `after` is the
    /// server's `Retry-After` when it sent one; otherwise use [`backoff`].
    Retry { after: Option<Duration>, reason: String },
    /// APNs refused it for a reason retrying will not fix (another 4xx, such as 403
    /// `BadCertificate` or 400 `BadTopic`): an operator must look.
    Rejected { status: u16, reason: String },
}

/// A push target that cannot be sent at all; nothing went on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("the device token is not an even-length hex string: {0:?}")]
    BadToken(String),
    #[error("the push magic is empty")]
    EmptyPushMagic,
    #[error("the topic cannot be an apns-topic header: {0:?}")]
    BadTopic(String),
}

/// The delay before retry number `attempt` (0 for the first retry): exponential from 1 s,
/// doubling, capped at 10 minutes, with "equal jitter" (between half and all of the step) so
/// that many devices failing together do not retry together.
pub fn backoff(attempt: u32) -> Duration {
    const BASE_MS: u64 = 1_000;
    const CAP_MS: u64 = 10 * 60 * 1_000;
    let step = BASE_MS.saturating_mul(1u64 << attempt.min(20)).min(CAP_MS);
    let half = step / 2;
    Duration::from_millis(half + fastrand::u64(0..=half))
}

/// An APNs client. Cheap to clone; clones share the connections.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    tls: TlsConnector,
    server_name: ServerName<'static>,
    host: String,
    port: u16,
    /// `scheme://authority`, to which `/3/device/<token>` is appended.
    origin: String,
    connect_timeout: Duration,
    request_timeout: Duration,
    priority: Option<HeaderValue>,
    expiration: Option<Expiration>,
    slots: Vec<Slot>,
    next_slot: AtomicUsize,
}

/// One connection: the live sender, and a lock held while (re)connecting so that concurrent
/// pushes wait for one handshake instead of starting their own.
#[derive(Default)]
struct Slot {
    live: Mutex<Option<SendRequest<Full<Bytes>>>>,
    connecting: tokio::sync::Mutex<()>,
}

impl Client {
    /// Prepares the client; connections open on the first push.
    pub fn new(config: ClientConfig) -> Result<Client, ClientError> {
        let bad_url = |reason: &str| ClientError::BadUrl { url: config.base_url.clone(), reason: reason.to_owned() };
        let uri: Uri = config.base_url.parse().map_err(|_| bad_url("not a URL"))?;
        if uri.scheme_str() != Some("https") {
            return Err(bad_url("APNs is only reached over https"));
        }
        if uri.path_and_query().is_some_and(|p| p.as_str() != "/" && !p.as_str().is_empty()) {
            return Err(bad_url("give only scheme, host and port"));
        }
        let host = uri.host().ok_or_else(|| bad_url("no host"))?.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(443);
        let server_name = ServerName::try_from(host.to_owned()).map_err(|_| bad_url("not a valid host name"))?;
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or(host);

        let mut roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(pem) = &config.extra_roots_pem {
            let mut added = 0;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| ClientError::BadRoots(e.to_string()))?;
                roots.add(cert).map_err(|e| ClientError::BadRoots(e.to_string()))?;
                added += 1;
            }
            if added == 0 {
                return Err(ClientError::BadRoots("no certificate found".to_owned()));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(config.certificate.chain().to_vec(), config.certificate.private_key())?;
        tls.alpn_protocols = vec![b"h2".to_vec()];

        let priority = config.priority.map(|p| {
            HeaderValue::from_static(match p {
                Priority::Immediate => "10",
                Priority::PowerConsiderate => "5",
            })
        });
        Ok(Client {
            inner: Arc::new(Inner {
                tls: TlsConnector::from(Arc::new(tls)),
                server_name,
                host: host.to_owned(),
                port,
                origin: format!("https://{authority}"),
                connect_timeout: config.connect_timeout,
                request_timeout: config.request_timeout,
                priority,
                expiration: config.expiration,
                slots: (0..config.connections.max(1)).map(|_| Slot::default()).collect(),
                next_slot: AtomicUsize::new(0),
            }),
        })
    }

    /// Sends one MDM push: `POST /3/device/<token>` with `{"mdm": PushMagic}`.
    pub async fn push(&self, target: &PushTarget) -> Result<PushOutcome, PushError> {
        let request = self.inner.request(target)?;
        Ok(self.inner.send(request).await)
    }

    /// Sends many pushes, at most `concurrency` in flight, multiplexed over the client's
    /// connections. Targets with the same token and topic are coalesced: one push goes out (with
    /// the push magic of the last of them) and every one of them gets its outcome. The answer has
    /// one entry per target, in target order, each with the target's index.
    pub async fn push_many(
        &self,
        targets: &[PushTarget],
        concurrency: usize,
    ) -> Vec<(usize, Result<PushOutcome, PushError>)> {
        let mut unique: Vec<usize> = Vec::new(); // index of the target pushed for each unique key
        let mut unique_of: Vec<usize> = Vec::with_capacity(targets.len()); // target -> unique slot
        let mut seen: HashMap<(String, &str), usize> = HashMap::with_capacity(targets.len());
        for (index, target) in targets.iter().enumerate() {
            let key = (target.token_hex.to_ascii_lowercase(), target.topic.as_str());
            let slot = *seen.entry(key).or_insert_with(|| {
                unique.push(index);
                unique.len() - 1
            });
            unique[slot] = index; // the last one wins: its push magic is the freshest
            unique_of.push(slot);
        }

        let mut results: Vec<Option<Result<PushOutcome, PushError>>> = vec![None; unique.len()];
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        let mut running = JoinSet::new();
        for (slot, &index) in unique.iter().enumerate() {
            let request = match self.inner.request(&targets[index]) {
                Ok(request) => request,
                Err(error) => {
                    results[slot] = Some(Err(error));
                    continue;
                }
            };
            let permit = Arc::clone(&permits).acquire_owned().await.expect("the semaphore is never closed");
            let inner = Arc::clone(&self.inner);
            running.spawn(async move {
                let outcome = inner.send(request).await;
                drop(permit);
                (slot, outcome)
            });
            while let Some(done) = running.try_join_next() {
                let (slot, outcome) = joined(done);
                results[slot] = Some(Ok(outcome));
            }
        }
        while let Some(done) = running.join_next().await {
            let (slot, outcome) = joined(done);
            results[slot] = Some(Ok(outcome));
        }

        unique_of
            .into_iter()
            .enumerate()
            .map(|(index, slot)| (index, results[slot].clone().expect("every unique push has an outcome")))
            .collect()
    }
}

fn joined<T>(done: Result<T, tokio::task::JoinError>) -> T {
    match done {
        Ok(value) => value,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

/// `{"mdm": "<PushMagic>"}`, the whole body of an MDM push.
#[derive(serde::Serialize)]
struct MdmPayload<'a> {
    mdm: &'a str,
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    reason: Option<String>,
    /// Milliseconds since the epoch, with `Unregistered`.
    timestamp: Option<u64>,
}

impl Inner {
    fn request(&self, target: &PushTarget) -> Result<Request<Full<Bytes>>, PushError> {
        let token = &target.token_hex;
        if token.is_empty() || !token.len().is_multiple_of(2) || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(PushError::BadToken(token.clone()));
        }
        if target.push_magic.is_empty() {
            return Err(PushError::EmptyPushMagic);
        }
        let topic = Topic::parse(&target.topic)
            .and_then(|topic| HeaderValue::from_str(topic.as_str()).ok())
            .ok_or_else(|| PushError::BadTopic(target.topic.clone()))?;
        let body = serde_json::to_vec(&MdmPayload { mdm: &target.push_magic }).expect("a string serializes");

        let mut request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}/3/device/{}", self.origin, token.to_ascii_lowercase()))
            .header("apns-topic", topic)
            .header("apns-push-type", HeaderValue::from_static("mdm"))
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(CONTENT_LENGTH, body.len());
        if let Some(priority) = &self.priority {
            request = request.header("apns-priority", priority.clone());
        }
        match self.expiration {
            None => {}
            Some(Expiration::Immediately) => request = request.header("apns-expiration", HeaderValue::from_static("0")),
            Some(Expiration::After(keep)) => {
                let until = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + keep;
                request = request.header("apns-expiration", until.as_secs());
            }
        }
        Ok(request.body(Full::new(Bytes::from(body))).expect("the request is well formed"))
    }

    async fn send(&self, request: Request<Full<Bytes>>) -> PushOutcome {
        let slot = &self.slots[self.next_slot.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        let mut sender = match self.sender(slot).await {
            Ok(sender) => sender,
            Err(reason) => return PushOutcome::Retry { after: None, reason },
        };
        let exchange = async {
            sender.ready().await.map_err(|e| format!("connection: {e}"))?;
            let response = sender.send_request(request).await.map_err(|e| format!("request: {e}"))?;
            let (parts, body) = response.into_parts();
            let body =
                Limited::new(body, MAX_RESPONSE_BODY).collect().await.map_err(|e| format!("response: {e}"))?.to_bytes();
            Ok::<_, String>(interpret(parts.status, &parts.headers, &body))
        };
        match tokio::time::timeout(self.request_timeout, exchange).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(reason)) => PushOutcome::Retry { after: None, reason },
            Err(_) => PushOutcome::Retry { after: None, reason: "timed out waiting for APNs".to_owned() },
        }
    }

    /// The slot's live connection, or a new one.
    async fn sender(&self, slot: &Slot) -> Result<SendRequest<Full<Bytes>>, String> {
        if let Some(sender) = live(slot) {
            return Ok(sender);
        }
        let _connecting = slot.connecting.lock().await;
        if let Some(sender) = live(slot) {
            return Ok(sender);
        }
        let sender = tokio::time::timeout(self.connect_timeout, self.connect())
            .await
            .unwrap_or_else(|_| Err("timed out connecting to APNs".to_owned()))?;
        *slot.live.lock().expect("slot lock") = Some(sender.clone());
        Ok(sender)
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("connecting to {}:{}: {e}", self.host, self.port))?;
        tcp.set_nodelay(true).map_err(|e| format!("socket: {e}"))?;
        let tls = self.tls.connect(self.server_name.clone(), tcp).await.map_err(|e| format!("TLS handshake: {e}"))?;
        if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
            return Err("the server did not agree to HTTP/2".to_owned());
        }
        let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(Duration::from_secs(60))
            .keep_alive_timeout(Duration::from_secs(20))
            .keep_alive_while_idle(true)
            .initial_max_send_streams(1000)
            .handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
        let host = self.host.clone();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(apns.host = %host, error = %error, "APNs connection ended");
            }
        });
        tracing::debug!(apns.host = %self.host, apns.port = self.port, "APNs connection open");
        Ok(sender)
    }
}

fn live(slot: &Slot) -> Option<SendRequest<Full<Bytes>>> {
    let mut live = slot.live.lock().expect("slot lock");
    match live.as_ref() {
        Some(sender) if !sender.is_closed() => Some(sender.clone()),
        Some(_) => {
            *live = None;
            None
        }
        None => None,
    }
}

/// Turns APNs' answer into what the caller does next.
fn interpret(status: StatusCode, headers: &http::HeaderMap, body: &[u8]) -> PushOutcome {
    if status == StatusCode::OK {
        let apns_id = headers.get("apns-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        return PushOutcome::Delivered { apns_id };
    }
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let reason = parsed
        .as_ref()
        .and_then(|b| b.reason.clone())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("no reason given").to_owned());
    let since = parsed.and_then(|b| b.timestamp).map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
    match status.as_u16() {
        410 => PushOutcome::TokenInvalid { reason, since },
        400 if reason == "BadDeviceToken" || reason == "DeviceTokenNotForTopic" => {
            PushOutcome::TokenInvalid { reason, since }
        }
        429 | 500..=599 => {
            let after = headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            PushOutcome::Retry { after, reason }
        }
        code => PushOutcome::Rejected { status: code, reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: u16, body: &str) -> PushOutcome {
        let mut headers = http::HeaderMap::new();
        headers.insert("apns-id", HeaderValue::from_static("1b3f6c4e-0000-4000-8000-000000000000"));
        interpret(StatusCode::from_u16(status).unwrap(), &headers, body.as_bytes())
    }

    #[test]
    fn answers_map_to_outcomes() {
        assert_eq!(check(200, ""), PushOutcome::Delivered { apns_id: "1b3f6c4e-0000-4000-8000-000000000000".into() });
        assert_eq!(
            check(410, r#"{"reason":"Unregistered","timestamp":1700000000000}"#),
            PushOutcome::TokenInvalid {
                reason: "Unregistered".into(),
                since: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
            }
        );
        assert_eq!(
            check(400, r#"{"reason":"BadDeviceToken"}"#),
            PushOutcome::TokenInvalid { reason: "BadDeviceToken".into(), since: None }
        );
        assert_eq!(
            check(400, r#"{"reason":"DeviceTokenNotForTopic"}"#),
            PushOutcome::TokenInvalid { reason: "DeviceTokenNotForTopic".into(), since: None }
        );
        assert_eq!(
            check(400, r#"{"reason":"BadTopic"}"#),
            PushOutcome::Rejected { status: 400, reason: "BadTopic".into() }
        );
        assert_eq!(
            check(403, r#"{"reason":"BadCertificate"}"#),
            PushOutcome::Rejected { status: 403, reason: "BadCertificate".into() }
        );
        assert_eq!(
            check(429, r#"{"reason":"TooManyRequests"}"#),
            PushOutcome::Retry { after: None, reason: "TooManyRequests".into() }
        );
        assert_eq!(check(503, "not json"), PushOutcome::Retry { after: None, reason: "Service Unavailable".into() });
        assert_eq!(
            check(500, r#"{"reason":"InternalServerError"}"#),
            PushOutcome::Retry { after: None, reason: "InternalServerError".into() }
        );
    }

    #[test]
    fn backoff_grows_with_jitter_and_stops_growing() {
        for attempt in 0..40 {
            let step = (1_000u64 << attempt.min(20)).min(600_000);
            let delay = backoff(attempt).as_millis() as u64;
            assert!(delay >= step / 2 && delay <= step, "attempt {attempt}: {delay} ms outside {}..={step}", step / 2);
        }
        let samples: std::collections::HashSet<_> = (0..20).map(|_| backoff(3)).collect();
        assert!(samples.len() > 1, "backoff has no jitter");
    }
}
