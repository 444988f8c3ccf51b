//! A local APNs stand-in: an HTTP/2 server on 127.0.0.1 that answers MDM pushes the way APNs
//! does, for tests, benchmarks and the device simulator (the real APNs is out of reach here).
//!
//! It serves TLS with a certificate from a CA it makes at start (trust [`StandIn::ca_pem`]),
//! demands a client certificate and takes the push topic from its UID attribute, checks each
//! push as APNs would (path, headers, body) and records what it accepted: counts always, the
//! last few pushes in full. It checks no certificate chain: any client certificate whose key
//! signs the handshake is accepted, and its topic is then what pushes must name.
//!
//! Only for tests and benchmarks; behind the `standin` feature.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::certificate::CertificateFacts;

/// A self-signed stand-in for Apple's MDM push certificate (certificate and key, PEM): the topic
/// in UID, as Apple's certificates carry it. For tests, benchmarks and demonstrations only: the
/// real APNs accepts only certificates Apple issued.
pub fn fake_push_certificate_pem(topic: &str) -> Result<String, rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 1]), topic);
    params.distinguished_name.push(DnType::CommonName, "APSP:stand-in");
    let cert = params.self_signed(&key)?;
    Ok(format!("{}{}", cert.pem(), key.serialize_pem()))
}

/// APNs' limit on a notification's payload.
const MAX_PAYLOAD: usize = 4096;

/// How the stand-in behaves.
#[derive(Debug, Clone)]
pub struct StandInConfig {
    /// Tokens (hex) answered with 410 `Unregistered`.
    pub unregistered: Vec<String>,
    /// How many accepted pushes are kept in full for [`StandIn::pushes`]; counts are kept always.
    pub keep_last: usize,
    /// SETTINGS_MAX_CONCURRENT_STREAMS announced to clients.
    pub max_concurrent_streams: u32,
}

impl Default for StandInConfig {
    fn default() -> Self {
        StandInConfig { unregistered: Vec::new(), keep_last: 1000, max_concurrent_streams: 1000 }
    }
}

/// A canned answer for one token, replacing the normal checks' success (the checks still run
/// first): for example 503 `ServiceUnavailable` or 429 `TooManyRequests`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub reason: String,
}

/// One push the stand-in accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedPush {
    /// The request path, `/3/device/<token>`.
    pub path: String,
    /// The token from the path, as sent.
    pub token: String,
    pub topic: String,
    pub push_type: String,
    pub push_magic: String,
    pub priority: Option<String>,
    pub expiration: Option<String>,
    /// The `apns-id` answered (the client's, or a new one).
    pub apns_id: String,
    /// Every request header, in order, as text.
    pub headers: Vec<(String, String)>,
    /// The topic from the client certificate of the connection it came on.
    pub client_topic: String,
}

/// A client certificate presented to the stand-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub subject: String,
    pub topic: Option<String>,
    pub not_after: SystemTime,
}

#[derive(Debug, thiserror::Error)]
pub enum StandInError {
    #[error("the stand-in could not listen: {0}")]
    Io(#[from] std::io::Error),
    #[error("the stand-in's certificate could not be made: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("the stand-in's TLS configuration failed: {0}")]
    Tls(#[from] rustls::Error),
}

/// A running stand-in. Dropping it stops the server and closes its connections.
pub struct StandIn {
    addr: SocketAddr,
    ca_pem: String,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
}

struct State {
    keep_last: usize,
    delivered: AtomicU64,
    rejected: AtomicU64,
    arrived: Notify,
    record: Mutex<Record>,
    rules: Mutex<Rules>,
}

#[derive(Default)]
struct Record {
    last: VecDeque<ReceivedPush>,
    per_token: HashMap<String, u64>,
    clients: Vec<ClientIdentity>,
}

struct Rules {
    unregistered: HashSet<String>,
    answers: HashMap<String, Answer>,
}

impl StandIn {
    /// Starts listening on 127.0.0.1 on a free port.
    pub async fn start(config: StandInConfig) -> Result<StandIn, StandInError> {
        let (ca_pem, chain, key) = server_identity()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(AnyClientCertificate { algorithms: provider.signature_verification_algorithms });
        let mut tls = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)?;
        tls.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(tls));

        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            keep_last: config.keep_last,
            delivered: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            arrived: Notify::new(),
            record: Mutex::new(Record::default()),
            rules: Mutex::new(Rules {
                unregistered: config.unregistered.iter().map(|t| t.to_ascii_lowercase()).collect(),
                answers: HashMap::new(),
            }),
        });
        let server = tokio::spawn(serve(listener, acceptor, Arc::clone(&state), config.max_concurrent_streams));
        Ok(StandIn { addr, ca_pem, state, server })
    }

    /// `https://127.0.0.1:<port>`, the client's base URL.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The PEM of the CA that issued the server certificate, for the client's extra roots.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The last accepted pushes (up to `keep_last`), oldest first.
    pub async fn pushes(&self) -> Vec<ReceivedPush> {
        self.state.record.lock().expect("record lock").last.iter().cloned().collect()
    }

    /// How many pushes were accepted (answered 200) since start.
    pub async fn count(&self) -> u64 {
        self.state.delivered.load(Ordering::Acquire)
    }

    /// How many pushes were answered with an error since start.
    pub async fn rejected(&self) -> u64 {
        self.state.rejected.load(Ordering::Acquire)
    }

    /// How many pushes to this token (hex, any case) were accepted.
    pub async fn count_for(&self, token_hex: &str) -> u64 {
        let record = self.state.record.lock().expect("record lock");
        record.per_token.get(&token_hex.to_ascii_lowercase()).copied().unwrap_or(0)
    }

    /// The client certificates of every connection so far.
    pub async fn clients(&self) -> Vec<ClientIdentity> {
        self.state.record.lock().expect("record lock").clients.clone()
    }

    /// Waits until at least `n` pushes were accepted; false if `timeout` passes first.
    pub async fn wait_for(&self, n: u64, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.state.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if self.state.delivered.load(Ordering::Acquire) >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.state.delivered.load(Ordering::Acquire) >= n;
            }
        }
    }

    /// From now on, answer this token with 410 `Unregistered`.
    pub async fn set_unregistered(&self, token_hex: &str) {
        self.state.rules.lock().expect("rules lock").unregistered.insert(token_hex.to_ascii_lowercase());
    }

    /// From now on, answer this token with `answer` (or normally again, with `None`).
    pub async fn set_answer(&self, token_hex: &str, answer: Option<Answer>) {
        let mut rules = self.state.rules.lock().expect("rules lock");
        match answer {
            Some(answer) => rules.answers.insert(token_hex.to_ascii_lowercase(), answer),
            None => rules.answers.remove(&token_hex.to_ascii_lowercase()),
        };
    }

    /// Stops the server and closes every connection.
    pub async fn shutdown(self) {
        self.server.abort();
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A CA made for this run, and a server certificate from it for 127.0.0.1 and localhost.
fn server_identity() -> Result<(String, Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), StandInError> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_params.distinguished_name.push(DnType::CommonName, "Custody APNs stand-in CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate()?;
    let mut server_params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    server_params.distinguished_name = rcgen::DistinguishedName::new();
    server_params.distinguished_name.push(DnType::CommonName, "api.push.apple.com (stand-in)");
    let server_cert = server_params.signed_by(&server_key, &issuer)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    Ok((ca_cert.pem(), vec![server_cert.der().clone()], key))
}

/// Demands a client certificate and checks that its key signed the handshake; trusts any issuer.
#[derive(Debug)]
struct AnyClientCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCertificate {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

async fn serve(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<State>, max_streams: u32) {
    // Connections live in this set, so aborting the server task closes them too.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else {
                    // Out of file descriptors, most likely: let connections finish first.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                connections.spawn(connection(tcp, acceptor.clone(), Arc::clone(&state), max_streams));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// What a connection's client certificate allows.
struct Peer {
    topic: Option<String>,
    expired: bool,
}

async fn connection(tcp: tokio::net::TcpStream, acceptor: TlsAcceptor, state: Arc<State>, max_streams: u32) {
    let Ok(tls) = acceptor.accept(tcp).await else { return };
    let facts =
        tls.get_ref().1.peer_certificates().and_then(|certs| certs.first()).map(|c| CertificateFacts::from_der(c));
    let peer = match facts {
        Some(Ok(facts)) => {
            let peer = Peer { topic: facts.topic.clone(), expired: facts.not_after < SystemTime::now() };
            state.record.lock().expect("record lock").clients.push(ClientIdentity {
                subject: facts.subject,
                topic: facts.topic,
                not_after: facts.not_after,
            });
            peer
        }
        _ => Peer { topic: None, expired: false },
    };
    let peer = Arc::new(peer);
    let service = service_fn(move |request| {
        let state = Arc::clone(&state);
        let peer = Arc::clone(&peer);
        async move { Ok::<_, std::convert::Infallible>(answer(&state, &peer, request).await) }
    });
    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .max_concurrent_streams(max_streams)
        .serve_connection(TokioIo::new(tls), service)
        .await;
}

/// Checks one push as APNs does and answers it.
async fn answer(state: &State, peer: &Peer, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let apns_id = match request.headers().get("apns-id").map(|v| v.to_str().map(str::to_owned)) {
        None => uuid::Uuid::new_v4().to_string(),
        Some(Ok(id)) if uuid::Uuid::try_parse(&id).is_ok() => id,
        Some(_) => return state.refuse(400, "BadMessageId", uuid::Uuid::new_v4().to_string(), None),
    };
    match check(state, peer, request).await {
        Ok(push) => {
            let push = ReceivedPush { apns_id: apns_id.clone(), ..push };
            state.accept(push);
            let mut response = Response::new(Full::new(Bytes::new()));
            response.headers_mut().insert("apns-id", HeaderValue::from_str(&apns_id).expect("a UUID is a header"));
            response
        }
        Err((status, reason, timestamp)) => state.refuse(status, &reason, apns_id, timestamp),
    }
}

/// Status, reason and (for `Unregistered`) the timestamp of an error answer.
type Refusal = (u16, Cow<'static, str>, Option<u64>);

async fn check(state: &State, peer: &Peer, request: Request<Incoming>) -> Result<ReceivedPush, Refusal> {
    let refuse = |status, reason: &'static str| Err((status, Cow::Borrowed(reason), None));
    if request.method() != Method::POST {
        return refuse(405, "MethodNotAllowed");
    }
    let path = request.uri().path().to_owned();
    let Some(token) = path.strip_prefix("/3/device/") else {
        return refuse(404, "BadPath");
    };
    if token.is_empty() {
        return refuse(400, "MissingDeviceToken");
    }
    if !token.len().is_multiple_of(2) || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return refuse(400, "BadDeviceToken");
    }
    let Some(client_topic) = peer.topic.clone().filter(|_| !peer.expired) else {
        return refuse(403, "BadCertificate");
    };
    let headers = request.headers();
    if ["apns-topic", "apns-push-type", "apns-priority", "apns-expiration", "apns-id", "apns-collapse-id"]
        .iter()
        .any(|name| headers.get_all(*name).iter().count() > 1)
    {
        return refuse(400, "DuplicateHeaders");
    }
    let topic = match text(headers, "apns-topic") {
        None => return refuse(400, "MissingTopic"),
        Some(topic) if topic != client_topic => return refuse(400, "BadTopic"),
        Some(topic) => topic,
    };
    let push_type = match text(headers, "apns-push-type") {
        Some(kind) if kind == "mdm" => kind,
        _ => return refuse(400, "InvalidPushType"),
    };
    let priority = text(headers, "apns-priority");
    if priority.as_deref().is_some_and(|p| !matches!(p, "1" | "5" | "10")) {
        return refuse(400, "BadPriority");
    }
    let expiration = text(headers, "apns-expiration");
    if expiration.as_deref().is_some_and(|e| e.parse::<u64>().is_err()) {
        return refuse(400, "BadExpirationDate");
    }
    let header_list = headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect();
    let token = token.to_owned();

    let body = match Limited::new(request.into_body(), MAX_PAYLOAD).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return refuse(413, "PayloadTooLarge"),
    };
    if body.is_empty() {
        return refuse(400, "PayloadEmpty");
    }
    // APNs documents no reason for a payload that is not an MDM payload; `BadPayload` is ours.
    let Some(push_magic) = mdm_payload(&body) else {
        return refuse(400, "BadPayload");
    };

    {
        let rules = state.rules.lock().expect("rules lock");
        let key = token.to_ascii_lowercase();
        if rules.unregistered.contains(&key) {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
            return Err((410, Cow::Borrowed("Unregistered"), Some(now)));
        }
        if let Some(answer) = rules.answers.get(&key) {
            return Err((answer.status, Cow::Owned(answer.reason.clone()), None));
        }
    }

    Ok(ReceivedPush {
        path,
        token,
        topic,
        push_type,
        push_magic,
        priority,
        expiration,
        apns_id: String::new(),
        headers: header_list,
        client_topic,
    })
}

/// The push magic of a body that is exactly `{"mdm": "<string>"}`.
fn mdm_payload(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
    if object.len() != 1 {
        return None;
    }
    object.get("mdm")?.as_str().map(str::to_owned)
}

fn text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

impl State {
    fn accept(&self, push: ReceivedPush) {
        {
            let mut record = self.record.lock().expect("record lock");
            *record.per_token.entry(push.token.to_ascii_lowercase()).or_insert(0) += 1;
            if self.keep_last > 0 {
                if record.last.len() == self.keep_last {
                    record.last.pop_front();
                }
                record.last.push_back(push);
            }
        }
        self.delivered.fetch_add(1, Ordering::Release);
        self.arrived.notify_waiters();
    }

    fn refuse(&self, status: u16, reason: &str, apns_id: String, timestamp: Option<u64>) -> Response<Full<Bytes>> {
        self.rejected.fetch_add(1, Ordering::Release);
        let body = match timestamp {
            Some(ms) => serde_json::json!({ "reason": reason, "timestamp": ms }),
            None => serde_json::json!({ "reason": reason }),
        };
        let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
        *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Ok(id) = HeaderValue::from_str(&apns_id) {
            response.headers_mut().insert("apns-id", id);
        }
        response
    }
}

impl std::fmt::Debug for StandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandIn").field("addr", &self.addr).finish_non_exhaustive()
    }
}
