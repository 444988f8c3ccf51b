//! A simulated device on the network: it fetches its enrollment profile, gets its identity
//! through SCEP, checks in (`Authenticate`, `TokenUpdate`, `CheckOut`) and runs command
//! sessions against the `ServerURL`, signing every message with `Mdm-Signature`. What it
//! answers to each command is [`DeviceState`]'s business; this module does the HTTP.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use apple_mdm::plist::{Dictionary, Value};
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509, X509Ref};

use crate::identity::{self, Identity};
use crate::profile::{EnrollmentProfile, ProfileError};
use crate::scep_client::{self, ScepClientError};
use crate::spec::DeviceSpec;
use crate::state::{
    self, AnswerStatus, DeviceState, HandledCommand, InstalledCertificate, InstalledProfile, UnanswerableCommand,
};

/// The media type of check-in requests.
pub const CHECKIN_CONTENT_TYPE: &str = "application/x-apple-aspen-mdm-checkin";
/// The media type of command-connection requests.
pub const CONNECT_CONTENT_TYPE: &str = "application/x-apple-aspen-mdm";
/// The header carrying the message signature.
pub const MDM_SIGNATURE: &str = "Mdm-Signature";
/// The media type of an enrollment profile.
pub const PROFILE_CONTENT_TYPE: &str = "application/x-apple-aspen-config";

/// More commands than this in one session is taken as a server that never stops.
const MAX_COMMANDS_PER_SESSION: usize = 10_000;

/// Why a device could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The request could not be sent or its answer read.
    #[error("HTTP {method} {url} failed")]
    Http {
        /// `GET` or `PUT`.
        method: &'static str,
        /// The URL.
        url: String,
        /// The client's error.
        source: reqwest::Error,
    },
    /// The server answered with a status other than 200.
    #[error("{method} {url} answered {status}: {body}")]
    Status {
        /// `GET` or `PUT`.
        method: &'static str,
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body, as text.
        body: String,
    },
    /// The enrollment profile was refused.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// SCEP enrollment failed.
    #[error(transparent)]
    Scep(#[from] ScepClientError),
    /// The identity certificate the CA issued does not chain to the CA.
    #[error("the issued certificate does not chain to the CA: {0}")]
    UntrustedIdentity(String),
    /// Key generation or signing failed.
    #[error("cryptography: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
    /// The server sent a command without a `CommandUUID` (or no plist at all).
    #[error(transparent)]
    Unanswerable(#[from] UnanswerableCommand),
    /// The server kept sending commands.
    #[error("the server sent more than {MAX_COMMANDS_PER_SESSION} commands in one session")]
    EndlessSession,
    /// The device was erased; it no longer talks to the server.
    #[error("the device was erased")]
    Wiped,
    /// The device checked out; it no longer talks to the server.
    #[error("the device checked out")]
    CheckedOut,
}

/// Where a device talks to the server (from its enrollment profile's MDM payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdmEndpoints {
    /// `ServerURL`: the command connection.
    pub server_url: String,
    /// `CheckInURL`.
    pub check_in_url: String,
    /// `Topic`.
    pub topic: String,
    /// `SignMessage`: send `Mdm-Signature`.
    pub sign_message: bool,
}

/// The check-in messages a device sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckinMessage {
    /// `Authenticate`: the MDM payload is being installed.
    Authenticate,
    /// `TokenUpdate`: the push token, push magic and unlock token.
    TokenUpdate,
    /// `CheckOut`: the MDM profile is removed.
    CheckOut,
}

impl CheckinMessage {
    /// `MessageType`.
    pub fn message_type(self) -> &'static str {
        match self {
            CheckinMessage::Authenticate => "Authenticate",
            CheckinMessage::TokenUpdate => "TokenUpdate",
            CheckinMessage::CheckOut => "CheckOut",
        }
    }
}

/// What the server answered on the command connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An empty body: nothing to do.
    Empty,
    /// A command plist (unread).
    Command(Vec<u8>),
}

/// A raw HTTP answer, for tests that send what a device would not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// The time taken by the requests of one command session, for the load benchmark.
#[derive(Debug, Default, Clone)]
pub(crate) struct SessionTimings {
    /// Microseconds of each `Idle` request (signing, sending, the answer read).
    pub idle: Vec<u32>,
    /// Microseconds of each request carrying a command's result.
    pub results: Vec<u32>,
    /// Nanoseconds spent signing, and how many signatures.
    pub sign_nanos: u64,
    pub signatures: u64,
}

/// A simulated device enrolled with a server.
pub struct SimDevice {
    http: reqwest::Client,
    state: DeviceState,
    identity: Identity,
    ca_certificate: Option<X509>,
    endpoints: MdmEndpoints,
    push_token: Vec<u8>,
    push_magic: String,
    checked_out: bool,
}

impl std::fmt::Debug for SimDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimDevice")
            .field("udid", &self.state.spec.udid)
            .field("serial_number", &self.state.spec.serial_number)
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    openssl::rand::rand_bytes(&mut bytes).expect("the system's random source");
    bytes
}

/// Generates an RSA key off the async threads.
async fn generate_key(bits: u32) -> Result<PKey<Private>, SimError> {
    tokio::task::spawn_blocking(move || identity::rsa_key(bits))
        .await
        .expect("key generation does not panic")
        .map_err(SimError::from)
}

/// `GET {base}/api/v1/agencies/{agency}/enrollment-profile` (`?signed=true` for the CMS-signed
/// form) with the bearer token, read as a device reads it.
pub async fn fetch_profile(
    http: &reqwest::Client,
    base_url: &str,
    token: &str,
    agency: &str,
    signed: bool,
) -> Result<EnrollmentProfile, SimError> {
    let mut url = format!("{}/api/v1/agencies/{agency}/enrollment-profile", base_url.trim_end_matches('/'));
    if signed {
        url.push_str("?signed=true");
    }
    let response = http.get(&url).bearer_auth(token).send().await.map_err(|source| SimError::Http {
        method: "GET",
        url: url.clone(),
        source,
    })?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|source| SimError::Http { method: "GET", url: url.clone(), source })?;
    if status != 200 {
        return Err(SimError::Status { method: "GET", url, status, body: excerpt(&body) });
    }
    Ok(EnrollmentProfile::parse(&body)?)
}

/// An error and its sources, one after the other (`a: b: c`), for one-line reports.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}

fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned()
}

impl SimDevice {
    /// Enrolls a new device the way an iPhone does after the user opens the profile: fetches
    /// the agency's enrollment profile with the bearer token, enrolls through SCEP with a fresh
    /// key, then checks in with `Authenticate` and `TokenUpdate`.
    pub async fn enroll(
        http: &reqwest::Client,
        base_url: &str,
        token: &str,
        agency: &str,
        spec: DeviceSpec,
    ) -> Result<SimDevice, SimError> {
        let profile = fetch_profile(http, base_url, token, agency, false).await?;
        SimDevice::enroll_with_profile(http, &profile, spec).await
    }

    /// Installs an enrollment profile already fetched: SCEP with a fresh key of the profile's
    /// `Keysize`, `Authenticate`, `TokenUpdate`.
    pub async fn enroll_with_profile(
        http: &reqwest::Client,
        profile: &EnrollmentProfile,
        spec: DeviceSpec,
    ) -> Result<SimDevice, SimError> {
        let key = generate_key(profile.scep.key_size).await?;
        SimDevice::enroll_with_key(http, profile, spec, key).await
    }

    /// Like [`SimDevice::enroll_with_profile`] with a given key (the load benchmark may share
    /// one key between devices to spare key generation; each still gets its own certificate).
    pub async fn enroll_with_key(
        http: &reqwest::Client,
        profile: &EnrollmentProfile,
        spec: DeviceSpec,
        key: PKey<Private>,
    ) -> Result<SimDevice, SimError> {
        let subject = if profile.scep.subject.is_empty() {
            vec![("CN".to_owned(), spec.udid.clone())]
        } else {
            profile.scep.subject.clone()
        };
        let (identity, ca) = scep_client::enroll(http, &profile.scep, key, &subject).await?;
        apple_mdm::signature::verify_chain(identity.certificate(), &ca)
            .map_err(|e| SimError::UntrustedIdentity(e.to_string()))?;
        let endpoints = MdmEndpoints {
            server_url: profile.mdm.server_url.clone(),
            check_in_url: profile.mdm.check_in_url.clone(),
            topic: profile.mdm.topic.clone(),
            sign_message: profile.mdm.sign_message,
        };
        let mut device = SimDevice::offline(http, spec, endpoints, identity);
        let root = profile.root_certificate_der.clone().map(Ok).unwrap_or_else(|| ca.to_der())?;
        let root_certificate = X509::from_der(&root)?;
        device.state.certificates.push(InstalledCertificate {
            common_name: common_name(&root_certificate),
            is_identity: false,
            der: root,
        });
        if let Ok(installed) = InstalledProfile::read(&profile.xml, false) {
            device.state.profiles.insert(0, installed);
        }
        device.ca_certificate = Some(ca);
        device.checkin(CheckinMessage::Authenticate).await?;
        device.checkin(CheckinMessage::TokenUpdate).await?;
        Ok(device)
    }

    /// Enrolls without a profile or SCEP: `identity` (e.g. [`Identity::self_signed`]) is taken
    /// as the device's, then `Authenticate` and `TokenUpdate` are sent to `endpoints`. For runs
    /// against the ceiling server, or a server that trusts the certificate another way.
    pub async fn enroll_without_scep(
        http: &reqwest::Client,
        spec: DeviceSpec,
        endpoints: MdmEndpoints,
        identity: Identity,
    ) -> Result<SimDevice, SimError> {
        let mut device = SimDevice::offline(http, spec, endpoints, identity);
        device.checkin(CheckinMessage::Authenticate).await?;
        device.checkin(CheckinMessage::TokenUpdate).await?;
        Ok(device)
    }

    /// A device that has its identity and endpoints but has sent nothing yet: fresh push token
    /// (32 random bytes), push magic (a UUID) and unlock token.
    pub fn offline(http: &reqwest::Client, spec: DeviceSpec, endpoints: MdmEndpoints, identity: Identity) -> SimDevice {
        let mut state = DeviceState::new(spec, random_bytes(256));
        state.certificates.push(InstalledCertificate {
            common_name: common_name(identity.certificate()),
            is_identity: true,
            der: identity.certificate_der().to_vec(),
        });
        SimDevice {
            http: http.clone(),
            state,
            identity,
            ca_certificate: None,
            endpoints,
            push_token: random_bytes(32),
            push_magic: uuid::Uuid::new_v4().hyphenated().to_string().to_uppercase(),
            checked_out: false,
        }
    }

    /// `UDID`.
    pub fn udid(&self) -> &str {
        &self.state.spec.udid
    }

    /// `SerialNumber`.
    pub fn serial_number(&self) -> &str {
        &self.state.spec.serial_number
    }

    /// The push token sent in `TokenUpdate`.
    pub fn push_token(&self) -> &[u8] {
        &self.push_token
    }

    /// The push token as lowercase hex (as APNs paths and stores show it).
    pub fn push_token_hex(&self) -> String {
        self.push_token.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// `PushMagic`.
    pub fn push_magic(&self) -> &str {
        &self.push_magic
    }

    /// The `UnlockToken` sent in `TokenUpdate`.
    pub fn unlock_token(&self) -> &[u8] {
        &self.state.unlock_token
    }

    /// The identity (key and certificate) messages are signed with.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The CA certificate from `GetCACert` (none for a device enrolled without SCEP).
    pub fn ca_certificate(&self) -> Option<&X509Ref> {
        self.ca_certificate.as_deref()
    }

    /// The endpoints and topic.
    pub fn endpoints(&self) -> &MdmEndpoints {
        &self.endpoints
    }

    /// The device's state: profiles, apps, Lost Mode, lock, erase ...
    pub fn state(&self) -> &DeviceState {
        &self.state
    }

    /// The device's state, to change it between sessions (unlock, change the behaviour ...).
    pub fn state_mut(&mut self) -> &mut DeviceState {
        &mut self.state
    }

    /// Whether the device was erased.
    pub fn is_wiped(&self) -> bool {
        self.state.wiped
    }

    /// Whether the device checked out.
    pub fn is_checked_out(&self) -> bool {
        self.checked_out
    }

    /// The `Mdm-Signature` of `body` by this device's identity.
    pub fn sign(&self, body: &[u8]) -> Result<String, SimError> {
        Ok(self.identity.sign(body)?)
    }

    /// The body of a check-in message, as this device writes it.
    pub fn checkin_body(&self, message: CheckinMessage) -> Vec<u8> {
        let spec = &self.state.spec;
        let mut d = Dictionary::new();
        d.insert("MessageType".into(), message.message_type().into());
        d.insert("UDID".into(), spec.udid.clone().into());
        d.insert("Topic".into(), self.endpoints.topic.clone().into());
        match message {
            CheckinMessage::Authenticate => {
                d.insert("SerialNumber".into(), spec.serial_number.clone().into());
                if let Some(imei) = &spec.imei {
                    d.insert("IMEI".into(), imei.clone().into());
                }
                if let Some(meid) = &spec.meid {
                    d.insert("MEID".into(), meid.clone().into());
                }
                d.insert("ProductName".into(), spec.kind.product_name().into());
                d.insert("Model".into(), spec.kind.model().into());
                d.insert("ModelName".into(), spec.kind.model_name().into());
                d.insert("DeviceName".into(), spec.device_name.clone().into());
                d.insert("OSVersion".into(), spec.os_version.clone().into());
                d.insert("BuildVersion".into(), spec.build_version.clone().into());
            }
            CheckinMessage::TokenUpdate => {
                d.insert("Token".into(), Value::Data(self.push_token.clone()));
                d.insert("PushMagic".into(), self.push_magic.clone().into());
                d.insert("UnlockToken".into(), Value::Data(self.state.unlock_token.clone()));
                d.insert("AwaitingConfiguration".into(), false.into());
            }
            CheckinMessage::CheckOut => {}
        }
        state::to_xml(d)
    }

    /// The body of an `Idle` report.
    pub fn idle_body(&self) -> Vec<u8> {
        let mut d = Dictionary::new();
        d.insert("UDID".into(), self.state.spec.udid.clone().into());
        d.insert("Status".into(), "Idle".into());
        state::to_xml(d)
    }

    fn usable(&self) -> Result<(), SimError> {
        if self.state.wiped {
            return Err(SimError::Wiped);
        }
        if self.checked_out {
            return Err(SimError::CheckedOut);
        }
        Ok(())
    }

    /// Sends a check-in message; the server must answer 200.
    pub async fn checkin(&mut self, message: CheckinMessage) -> Result<(), SimError> {
        self.usable()?;
        let body = self.checkin_body(message);
        let url = self.endpoints.check_in_url.clone();
        self.put(&url, CHECKIN_CONTENT_TYPE, body, &mut SessionTimings::default()).await?;
        Ok(())
    }

    /// Sends `CheckOut` (the user removed the MDM profile); the device then stops talking to
    /// the server.
    pub async fn check_out(&mut self) -> Result<(), SimError> {
        self.checkin(CheckinMessage::CheckOut).await?;
        self.checked_out = true;
        Ok(())
    }

    /// Sends `Idle` on the command connection and returns what the server answered, without
    /// answering a command (see [`SimDevice::answer`]).
    pub async fn poll(&mut self) -> Result<Reply, SimError> {
        self.usable()?;
        let body = self.idle_body();
        let url = self.endpoints.server_url.clone();
        self.put(&url, CONNECT_CONTENT_TYPE, body, &mut SessionTimings::default()).await
    }

    /// Answers a command the server sent and returns the command handled and the server's
    /// next reply. An erased device sends its acknowledgement and reads nothing more.
    pub async fn answer(&mut self, command: &[u8]) -> Result<(HandledCommand, Reply), SimError> {
        self.usable()?;
        let answer = self.state.answer(command)?;
        let url = self.endpoints.server_url.clone();
        let reply = self.put(&url, CONNECT_CONTENT_TYPE, answer.to_xml(), &mut SessionTimings::default()).await?;
        let reply = if self.state.wiped { Reply::Empty } else { reply };
        Ok((answer.handled, reply))
    }

    /// A command session: `Idle`, then every command the server sends is answered, until the
    /// server answers with an empty body. Returns the commands handled, in order.
    ///
    /// The session also ends after `EraseDevice` (the device is wiped) and when the server
    /// sends again, in the same session, a command the device just answered `NotNow`.
    pub async fn run_until_idle(&mut self) -> Result<Vec<HandledCommand>, SimError> {
        self.session(&mut SessionTimings::default()).await
    }

    pub(crate) async fn session(&mut self, timings: &mut SessionTimings) -> Result<Vec<HandledCommand>, SimError> {
        self.usable()?;
        let url = self.endpoints.server_url.clone();
        let mut handled = Vec::new();
        let mut deferred = HashSet::new();
        let started = Instant::now();
        let mut reply = self.put(&url, CONNECT_CONTENT_TYPE, self.idle_body(), timings).await?;
        timings.idle.push(micros(started.elapsed()));
        while let Reply::Command(command) = reply {
            if handled.len() >= MAX_COMMANDS_PER_SESSION {
                return Err(SimError::EndlessSession);
            }
            let answer = self.state.answer(&command)?;
            if deferred.contains(&answer.handled.command_uuid) {
                break;
            }
            let started = Instant::now();
            reply = self.put(&url, CONNECT_CONTENT_TYPE, answer.to_xml(), timings).await?;
            timings.results.push(micros(started.elapsed()));
            if answer.handled.status == AnswerStatus::NotNow {
                deferred.insert(answer.handled.command_uuid.clone());
            }
            handled.push(answer.handled);
            if self.state.wiped {
                break;
            }
        }
        Ok(handled)
    }

    /// `PUT`s a signed body (when the profile says so) and reads a 200 answer.
    async fn put(
        &self,
        url: &str,
        content_type: &str,
        body: Vec<u8>,
        timings: &mut SessionTimings,
    ) -> Result<Reply, SimError> {
        let signature = if self.endpoints.sign_message {
            let started = Instant::now();
            let signature = self.identity.sign(&body)?;
            timings.sign_nanos += u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            timings.signatures += 1;
            Some(signature)
        } else {
            None
        };
        let response = self.send_raw(url, content_type, body, signature.as_deref()).await?;
        if response.status != 200 {
            return Err(SimError::Status {
                method: "PUT",
                url: url.to_owned(),
                status: response.status,
                body: excerpt(&response.body),
            });
        }
        Ok(if response.body.is_empty() { Reply::Empty } else { Reply::Command(response.body) })
    }

    /// `PUT`s any body with any `Mdm-Signature` (or none) with this device's HTTP client, and
    /// returns the answer whatever its status: for tests of what the server refuses.
    pub async fn send_raw(
        &self,
        url: &str,
        content_type: &str,
        body: Vec<u8>,
        signature: Option<&str>,
    ) -> Result<RawResponse, SimError> {
        send_raw(&self.http, url, content_type, body, signature).await
    }
}

/// `PUT`s `body` to `url` as a device does (`User-Agent: MDM/1.0`), with `signature` as
/// `Mdm-Signature` when given, and returns the answer whatever its status.
pub async fn send_raw(
    http: &reqwest::Client,
    url: &str,
    content_type: &str,
    body: Vec<u8>,
    signature: Option<&str>,
) -> Result<RawResponse, SimError> {
    let http_error = |source| SimError::Http { method: "PUT", url: url.to_owned(), source };
    let mut request = http
        .put(url)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .header(reqwest::header::USER_AGENT, "MDM/1.0")
        .body(body);
    if let Some(signature) = signature {
        request = request.header(MDM_SIGNATURE, signature);
    }
    let response = request.send().await.map_err(http_error)?;
    let status = response.status().as_u16();
    let content_type =
        response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = response.bytes().await.map_err(http_error)?.to_vec();
    Ok(RawResponse { status, content_type, body })
}

fn common_name(certificate: &X509Ref) -> String {
    certificate
        .subject_name()
        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok())
        .unwrap_or_default()
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}
