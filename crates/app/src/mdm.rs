//! Apple MDM's use cases: Custody's certificate authority and SCEP, enrollment profiles, the
//! check-in and command connections, the command queue, and pushes through APNs.
//!
//! Device messages arrive here with the identity certificate the web layer took from the
//! request (the `Mdm-Signature` it verified over the body, or a trusted proxy's client
//! certificate). Every message's certificate must chain to Custody's CA, be one the CA issued
//! and did not revoke, and be the one bound to the enrollment. The protocol's formats are
//! `apple-mdm`'s and `scep`'s; this module decides and stores.

use std::sync::Arc;

use crate::devices::ActionInput;
use crate::notifications;
use apple_mdm::checkin::{Checkin, CheckinMessage, CheckinReply, UserAuthentication};
use apple_mdm::command::{Command, CommandUuid};
use apple_mdm::report::{Report, Status};
use custody_domain::agency::AgencyCode;
use custody_domain::audit::ActorKind;
use custody_domain::authz::{Action, Scope};
use custody_domain::device::{CommandKind, DeviceState, Event};
use custody_domain::role::Role;
use custody_store::group::{GroupJob, GroupTx, JobFuture};
use custody_store::mdm::{self, CertificateRow, ChallengeRow, CommandFilter, CommandRow, EnrollmentRow};
use custody_store::{Conn, SqlError, agencies, audit, devices, now_ms};
use openssl::x509::X509;
use scep::{CertificateAuthority, Subject};
use sha2::{Digest, Sha256};

use crate::paging::{self, Page};
use crate::{Actor, App, AppError};

/// MDM settings.
#[derive(Debug, Clone)]
pub struct MdmConfig {
    /// Seals the CA key, the push certificate's key and unlock tokens at rest (AES-256-GCM).
    pub secret: [u8; 32],
    /// A command not answered by then is `expired`.
    pub command_ttl_days: i64,
    /// A command answered `NotNow` is offered again (and pushed) after this long.
    pub not_now_retry_seconds: i64,
    /// Finished commands are deleted after this long.
    pub retention_days: i64,
    /// Validity of the identity certificates the CA issues.
    pub certificate_days: u32,
    /// APNs' base URL (a local stand-in in tests).
    pub apns_url: String,
    /// Extra roots (PEM) to trust for APNs' server certificate (the stand-in's).
    pub apns_extra_roots_pem: Option<Vec<u8>>,
    /// What a lost device's screen shows.
    pub lost_mode: LostModeNotice,
    /// Hours between two inventories of a device (jittered by a tenth either way).
    pub inventory_interval_hours: i64,
}

/// The notice on a lost device's lock screen (Lost Mode, or a lock when it is not supervised).
#[derive(Debug, Clone)]
pub struct LostModeNotice {
    pub message: String,
    pub phone_number: Option<String>,
    /// Lost Mode only.
    pub footnote: Option<String>,
}

impl Default for LostModeNotice {
    fn default() -> Self {
        Self {
            message: "This device is government property and has been reported lost. Please call the number \
                      below to return it."
                .into(),
            phone_number: None,
            footnote: None,
        }
    }
}

impl Default for MdmConfig {
    fn default() -> Self {
        Self {
            secret: rand::random(),
            command_ttl_days: 7,
            not_now_retry_seconds: 300,
            retention_days: 30,
            certificate_days: 365,
            apns_url: "https://api.push.apple.com".into(),
            apns_extra_roots_pem: None,
            lost_mode: LostModeNotice::default(),
            inventory_interval_hours: 24,
        }
    }
}

/// What a node keeps in memory for MDM: the CA (loaded once; it never changes), the APNs client
/// for the push certificate in force, the wake-up of the push sender, and the identity
/// certificates already seen to chain to the CA.
#[derive(Default)]
pub struct MdmState {
    ca: tokio::sync::OnceCell<Arc<CertificateAuthority>>,
    /// SHA-256 of a certificate's DER → its serial, once its chain to the CA verified: the
    /// chain is checked once per certificate, not once per message (revocation and validity
    /// are still checked on every message, from the store).
    chained: std::sync::Mutex<std::collections::HashMap<[u8; 32], String>>,
    apns: tokio::sync::Mutex<Option<(i64, apns::Client, String)>>,
    pub push_wake: tokio::sync::Notify,
}

fn unexpected(context: &'static str) -> impl FnOnce(String) -> AppError {
    move |message| AppError::Unexpected(anyhow::anyhow!("{context}: {message}"))
}

fn seal(app: &App, plain: &[u8]) -> Result<String, AppError> {
    let sealed = scep::seal_key(plain, &app.config.mdm.secret).map_err(|e| unexpected("sealing")(e.to_string()))?;
    Ok(base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sealed))
}

fn open(app: &App, sealed: &str) -> Result<Vec<u8>, AppError> {
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, sealed)
        .map_err(|e| unexpected("opening a sealed secret")(e.to_string()))?;
    scep::open_key(&bytes, &app.config.mdm.secret).map_err(|e| {
        AppError::Unexpected(anyhow::anyhow!(
            "opening a sealed secret: {e} (is mdm.secret_key the one this database was created with?)"
        ))
    })
}

/// Refuses a sealing key that does not open the secrets this database already holds (the CA's
/// key, the push certificate's key). A node given another `mdm.secret_key` than the one they
/// were sealed with would otherwise start and then fail every enrollment and push; checked
/// when a server starts.
pub async fn check_secret_key(app: &App) -> Result<(), AppError> {
    let opens = |sealed: &str| {
        open(app, sealed).map(drop).map_err(|_| {
            AppError::Unexpected(anyhow::anyhow!(
                "this database's MDM secrets were sealed with another key than this node's: give it the \
                 mdm.secret_key (CUSTODY_MDM__SECRET_KEY) the database was created with (every node of one \
                 database needs the same one)"
            ))
        })
    };
    let mut conn = app.store.conn().await?;
    if let Some(row) = mdm::ca(&mut conn).await? {
        opens(&row.key_sealed)?;
    }
    if let Some(row) = mdm::push_certificate(&mut conn).await? {
        opens(&row.key_sealed)?;
    }
    Ok(())
}

/// Custody's CA: loaded from the database, or created and stored at first use.
pub async fn ca(app: &App) -> Result<Arc<CertificateAuthority>, AppError> {
    app.mdm
        .ca
        .get_or_try_init(|| async {
            let mut tx = app.store.write().await?;
            if mdm::ca(&mut tx).await?.is_none() {
                let subject = Subject::new("Custody MDM CA").organization("Custody");
                let created = CertificateAuthority::generate(&subject, 10, now_ms() / 1000)
                    .map_err(|e| unexpected("creating the CA")(e.to_string()))?;
                let cert_pem = created.certificate_pem().map_err(|e| unexpected("CA")(e.to_string()))?;
                let key_pem = created.private_key_pkcs8_pem().map_err(|e| unexpected("CA")(e.to_string()))?;
                let row = mdm::CaRow {
                    cert_pem: String::from_utf8_lossy(&cert_pem).into_owned(),
                    key_sealed: seal(app, &key_pem)?,
                    created_at: now_ms(),
                };
                mdm::insert_ca(&mut tx, &row).await?;
                let changes = serde_json::json!({ "subject": "Custody MDM CA" });
                audit::append(
                    &mut tx,
                    Actor::system("custody").event("mdm.ca.create", "mdm_ca", "default", None, changes),
                )
                .await?;
            }
            let row = mdm::ca(&mut tx).await?.ok_or_else(|| unexpected("CA")("vanished".into()))?;
            tx.commit().await?;
            let key_pem = open(app, &row.key_sealed)?;
            let loaded = CertificateAuthority::from_pem(row.cert_pem.as_bytes(), &key_pem)
                .map_err(|e| unexpected("loading the CA")(e.to_string()))?;
            Ok::<_, AppError>(Arc::new(loaded))
        })
        .await
        .cloned()
}

fn digest_of(challenge: &str) -> String {
    hex::encode(Sha256::digest(challenge.as_bytes()))
}

fn random_challenge() -> String {
    let bytes: [u8; 18] = rand::random();
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

/// The agency's standing SCEP challenge (the one its enrollment profile carries), created on
/// first use.
async fn standing_challenge(app: &App, tx: &mut Conn, actor: &Actor, agency: &str) -> Result<String, AppError> {
    if let Some(row) = mdm::standing_challenge(tx, agency).await? {
        return String::from_utf8(open(app, &row.value_sealed)?).map_err(|e| unexpected("challenge")(e.to_string()));
    }
    let (id, value) = new_standing_challenge(app, tx, actor, agency).await?;
    let changes = serde_json::json!({ "kind": "standing" });
    audit::append(tx, actor.event("mdm.challenge.create", "scep_challenge", &id, Some(agency), changes)).await?;
    Ok(value)
}

/// Stores a new standing challenge (the caller audits); returns its id and value.
async fn new_standing_challenge(
    app: &App,
    tx: &mut Conn,
    actor: &Actor,
    agency: &str,
) -> Result<(String, String), AppError> {
    let (row, value) = new_challenge(app, actor, agency, "standing", None)?;
    mdm::insert_challenge(tx, &row).await?;
    Ok((row.id, value))
}

/// A fresh challenge (its value, and the row that keeps it sealed with its digest).
fn new_challenge(
    app: &App,
    actor: &Actor,
    agency: &str,
    kind: &str,
    expires_at: Option<i64>,
) -> Result<(ChallengeRow, String), AppError> {
    let value = random_challenge();
    let row = ChallengeRow {
        id: custody_store::new_id(),
        agency_code: agency.to_string(),
        kind: kind.into(),
        digest: digest_of(&value),
        value_sealed: seal(app, value.as_bytes())?,
        created_by: actor.label.clone(),
        created_at: now_ms(),
        expires_at,
        used_at: None,
        revoked_at: None,
    };
    Ok((row, value))
}

/// A one-time SCEP challenge for the agency, valid for `hours`.
pub async fn one_time_challenge(app: &App, actor: &Actor, agency: &str, hours: i64) -> Result<String, AppError> {
    let code = AgencyCode::parse(agency).map_err(|_| AppError::NotFound)?;
    actor.authorize(Action::MdmEnroll, Scope::Agency(&code))?;
    if !(1..=24 * 30).contains(&hours) {
        return Err(AppError::invalid("hours", "must be between 1 and 720"));
    }
    let mut tx = app.store.write().await?;
    agencies::get(&mut tx, code.as_str()).await?.ok_or(AppError::NotFound)?;
    let expires_at = now_ms() + hours * 3_600_000;
    let (row, value) = new_challenge(app, actor, code.as_str(), "one_time", Some(expires_at))?;
    mdm::insert_challenge(&mut tx, &row).await?;
    let changes = serde_json::json!({ "kind": "one_time", "expires_at": row.expires_at });
    audit::append(
        &mut tx,
        actor.event("mdm.challenge.create", "scep_challenge", &row.id, Some(code.as_str()), changes),
    )
    .await?;
    tx.commit().await?;
    Ok(value)
}

/// Replaces the agency's standing challenge (profiles handed out before stop enrolling).
pub async fn rotate_challenge(app: &App, actor: &Actor, agency: &str) -> Result<(), AppError> {
    let code = AgencyCode::parse(agency).map_err(|_| AppError::NotFound)?;
    actor.authorize(Action::MdmEnroll, Scope::Agency(&code))?;
    let mut tx = app.store.write().await?;
    agencies::get(&mut tx, code.as_str()).await?.ok_or(AppError::NotFound)?;
    let revoked = mdm::revoke_standing_challenges(&mut tx, code.as_str(), now_ms()).await?;
    let (id, _) = new_standing_challenge(app, &mut tx, actor, code.as_str()).await?;
    let changes = serde_json::json!({ "revoked": revoked, "challenge": id });
    audit::append(&mut tx, actor.event("mdm.challenge.rotate", "agency", code.as_str(), Some(code.as_str()), changes))
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The enrollment profile of an agency (`.mobileconfig`), CMS-signed by the CA when `signed`.
pub async fn enrollment_profile(app: &App, actor: &Actor, agency: &str, signed: bool) -> Result<Vec<u8>, AppError> {
    use apple_mdm::profile::{EnrollmentProfile, Mdm, Scep};
    let code = AgencyCode::parse(agency).map_err(|_| AppError::NotFound)?;
    actor.authorize(Action::MdmEnroll, Scope::Agency(&code))?;
    let ca = ca(app).await?;
    let mut tx = app.store.write().await?;
    let found = agencies::get(&mut tx, code.as_str()).await?.ok_or(AppError::NotFound)?;
    let push = mdm::push_certificate(&mut tx).await?.ok_or_else(|| {
        AppError::conflict(
            "push_certificate",
            "upload the APNs MDM push certificate first: its topic goes in the profile",
        )
    })?;
    let challenge = standing_challenge(app, &mut tx, actor, code.as_str()).await?;
    let changes = serde_json::json!({ "signed": signed });
    audit::append(&mut tx, actor.event("mdm.profile.issue", "agency", code.as_str(), Some(code.as_str()), changes))
        .await?;
    tx.commit().await?;
    let base = app.config.public_url.trim_end_matches('/');
    let topic = apple_mdm::push::Topic::new(push.topic.clone()).ok_or_else(|| unexpected("topic")("empty".into()))?;
    let subject =
        vec![("O".to_string(), found.details.name.clone()), ("CN".to_string(), "Custody MDM identity".into())];
    let profile = EnrollmentProfile {
        identifier: format!("gov.custody.enroll.{}", code.as_str().to_ascii_lowercase()),
        display_name: format!("{} device management", found.details.name),
        organization: found.details.name.clone(),
        description: Some("Enrolls this device in the agency's mobile device management.".into()),
        scep: Scep::new(format!("{base}/scep"), Some(challenge), subject),
        mdm: Mdm::new(format!("{base}/mdm/connect"), Some(format!("{base}/mdm/checkin")), topic),
        ca_certificate_der: ca.certificate_der().to_vec(),
    };
    let xml = profile.build().to_xml();
    if !signed {
        return Ok(xml);
    }
    let key = openssl::pkey::PKey::private_key_from_pem(
        &ca.private_key_pkcs8_pem().map_err(|e| unexpected("CA key")(e.to_string()))?,
    )
    .map_err(|e| unexpected("CA key")(e.to_string()))?;
    apple_mdm::profile::sign_profile(&xml, ca.certificate(), &key, &[])
        .map_err(|e| unexpected("signing")(e.to_string()))
}

/// A SCEP `PKIOperation`: decodes the request, checks its challenge (or, for a renewal, the
/// certificate it is signed with), issues the certificate and records it. Answers the CertRep;
/// a request that cannot be authenticated at all is a validation error (HTTP 400).
pub async fn scep_operation(app: &App, message: &[u8], source: Option<String>) -> Result<Vec<u8>, AppError> {
    let ca = ca(app).await?;
    let request = scep::PkiMessage::decode(message).map_err(|e| AppError::invalid("message", e.to_string()))?;
    let fail = |reason: String, info: scep::FailInfo| {
        tracing::info!(reason, "SCEP request refused");
        scep::response::failure(&ca, &request, info).map_err(|e| unexpected("SCEP reply")(e.to_string()))
    };
    let opened = match request.open(&ca) {
        Ok(opened) => opened,
        Err(e) => return fail(e.to_string(), e.fail_info()),
    };
    let now = now_ms();
    let (csr, agency, challenge_id, renewed_from) = match opened {
        scep::Request::PkcsReq(csr) => {
            let Some(challenge) = csr.challenge_password() else {
                return fail("no challenge password".into(), scep::FailInfo::BadRequest);
            };
            let mut conn = app.store.conn().await?;
            let found = mdm::challenge_by_digest(&mut conn, &digest_of(challenge)).await?;
            let usable = found
                .filter(|c| c.revoked_at.is_none() && c.used_at.is_none() && c.expires_at.is_none_or(|at| at > now));
            let Some(challenge) = usable else {
                return fail("wrong, revoked, used or expired challenge".into(), scep::FailInfo::BadRequest);
            };
            (csr, challenge.agency_code.clone(), Some(challenge), None)
        }
        scep::Request::RenewalReq(csr) => {
            let signer = request.signer_certificate_der();
            if ca.verify_issued(&signer, now / 1000).is_err() {
                return fail("renewal not signed by a valid certificate of this CA".into(), scep::FailInfo::BadCertId);
            }
            let serial = scep::SerialNumber::of(request.signer_certificate())
                .map_err(|e| unexpected("serial")(e.to_string()))?
                .to_hex();
            let mut conn = app.store.conn().await?;
            match mdm::certificate(&mut conn, &serial).await? {
                Some(old) if old.revoked_at.is_none() => (csr, old.agency_code.clone(), None, Some(serial)),
                _ => return fail(format!("certificate {serial} is revoked or unknown"), scep::FailInfo::BadCertId),
            }
        }
        other => return fail(format!("unsupported SCEP request {other:?}"), scep::FailInfo::BadRequest),
    };
    let serial = scep::SerialNumber::random();
    let issuance = scep::Issuance {
        serial: serial.clone(),
        subject: None,
        now: now / 1000,
        validity_days: app.config.mdm.certificate_days,
    };
    let der = match ca.issue(&csr, &issuance) {
        Ok(der) => der,
        Err(e) => return fail(e.to_string(), scep::FailInfo::BadRequest),
    };
    let cert = X509::from_der(&der).map_err(|e| unexpected("issued certificate")(e.to_string()))?;
    let pem = String::from_utf8_lossy(&cert.to_pem().map_err(|e| unexpected("PEM")(e.to_string()))?).into_owned();
    let row = CertificateRow {
        serial: serial.to_hex(),
        agency_code: agency.clone(),
        subject: scep::ca::name_to_string(cert.subject_name()),
        challenge_id: challenge_id.as_ref().map(|c| c.id.clone()),
        renewed_from: renewed_from.clone(),
        cert_pem: pem,
        not_before: now - 5 * 60_000,
        not_after: now + i64::from(app.config.mdm.certificate_days) * 86_400_000,
        issued_at: now,
        udid: None,
        revoked_at: None,
        revocation_reason: None,
    };
    let mut tx = app.store.write().await?;
    if let Some(challenge) = challenge_id.as_ref().filter(|c| c.kind == "one_time")
        && !mdm::use_challenge(&mut tx, &challenge.id, now).await?
    {
        drop(tx);
        return fail("one-time challenge already used".into(), scep::FailInfo::BadRequest);
    }
    mdm::insert_certificate(&mut tx, &row).await?;
    let actor = Actor { source_addr: source, ..Actor::system("scep") };
    let changes =
        serde_json::json!({ "subject": row.subject, "not_after": row.not_after, "renewed_from": renewed_from });
    audit::append(
        &mut tx,
        actor.event("mdm.certificate.issue", "mdm_certificate", &row.serial, Some(&agency), changes),
    )
    .await?;
    tx.commit().await?;
    scep::response::success(&ca, &request, &der).map_err(|e| unexpected("SCEP reply")(e.to_string()))
}

/// Revokes an identity certificate: the device it identifies is refused from then on.
pub async fn revoke_certificate(app: &App, actor: &Actor, serial: &str, reason: &str) -> Result<(), AppError> {
    let mut tx = app.store.write().await?;
    let cert = mdm::certificate(&mut tx, &serial.to_ascii_lowercase()).await?.ok_or(AppError::NotFound)?;
    let code = AgencyCode::parse(&cert.agency_code).map_err(|_| AppError::NotFound)?;
    actor.authorize(Action::MdmSettings, Scope::Agency(&code))?;
    let reason = custody_domain::validate::text(reason, 2, 300).map_err(|m| AppError::invalid("reason", m))?;
    if !mdm::revoke_certificate(&mut tx, &cert.serial, now_ms(), &reason).await? {
        return Err(AppError::conflict("serial", "the certificate is revoked already"));
    }
    let changes = serde_json::json!({ "reason": reason });
    audit::append(
        &mut tx,
        actor.event("mdm.certificate.revoke", "mdm_certificate", &cert.serial, Some(code.as_str()), changes),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Why a device message was refused (answered 401 or 400, never with details a forger could use).
#[derive(Debug, thiserror::Error)]
pub enum DeviceRefusal {
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("identity refused: {0}")]
    Identity(String),
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<sqlx::Error> for DeviceRefusal {
    fn from(e: sqlx::Error) -> Self {
        DeviceRefusal::App(e.into())
    }
}

/// The identity certificate (DER) of the device that sent a message, checked against the CA and
/// the store: issued by Custody's CA, in its validity, not revoked.
async fn verified_certificate(
    app: &App,
    ca: &CertificateAuthority,
    conn: &mut Conn,
    cert_der: &[u8],
) -> Result<CertificateRow, DeviceRefusal> {
    let serial = chained_serial(app, ca, cert_der)?;
    let row = mdm::certificate(conn, &serial)
        .await?
        .ok_or_else(|| DeviceRefusal::Identity(format!("certificate {serial} was not issued by this service")))?;
    certificate_usable(&serial, row.revoked_at.is_some(), row.not_before, row.not_after)?;
    Ok(row)
}

/// The serial of a certificate that chains to the CA (checked once per certificate).
fn chained_serial(app: &App, ca: &CertificateAuthority, cert_der: &[u8]) -> Result<String, DeviceRefusal> {
    /// Past this many remembered certificates the memory starts afresh.
    const REMEMBERED: usize = 200_000;
    let digest: [u8; 32] = Sha256::digest(cert_der).into();
    if let Some(serial) = app.mdm.chained.lock().expect("not poisoned").get(&digest) {
        return Ok(serial.clone());
    }
    let cert = X509::from_der(cert_der).map_err(|e| DeviceRefusal::Identity(format!("not a certificate: {e}")))?;
    apple_mdm::signature::verify_chain(&cert, ca.certificate())
        .map_err(|e| DeviceRefusal::Identity(format!("certificate does not chain to Custody's CA: {e}")))?;
    let serial = scep::SerialNumber::of(&cert).map_err(|e| DeviceRefusal::Identity(e.to_string()))?.to_hex();
    let mut chained = app.mdm.chained.lock().expect("not poisoned");
    if chained.len() >= REMEMBERED {
        chained.clear();
    }
    chained.insert(digest, serial.clone());
    Ok(serial)
}

/// Refuses a revoked certificate, or one outside its validity.
fn certificate_usable(serial: &str, revoked: bool, not_before: i64, not_after: i64) -> Result<(), DeviceRefusal> {
    if revoked {
        return Err(DeviceRefusal::Identity(format!("certificate {serial} is revoked")));
    }
    let now = now_ms();
    if now < not_before || now >= not_after {
        return Err(DeviceRefusal::Identity(format!("certificate {serial} is not valid now")));
    }
    Ok(())
}

/// The device behind a report, checked from one read: the certificate is Custody's, usable, and
/// bound to the UDID's active enrollment.
#[derive(Debug, Clone)]
struct Reporter {
    enrollment_id: String,
    agency_code: String,
    /// The command due next for it, if any.
    next_command: Option<mdm::NextCommand>,
    /// It was seen within the minute: its `last_seen_at` needs no update.
    fresh: bool,
}

impl Reporter {
    /// Nothing is due for it and it was seen within the minute: an Idle needs no write.
    fn quiet(&self) -> bool {
        self.next_command.is_none() && self.fresh
    }
}

/// The device with the certificate `serial` (chained to the CA) reporting as `udid`, read
/// through `conn`.
async fn reporter(conn: &mut Conn, serial: &str, udid: &str, now: i64) -> Result<Reporter, DeviceRefusal> {
    let Some(poll) = mdm::idle_poll(conn, serial, udid, now).await? else {
        return Err(DeviceRefusal::Identity(format!("certificate {serial} was not issued by this service")));
    };
    certificate_usable(serial, poll.cert_revoked, poll.cert_not_before, poll.cert_not_after)?;
    check_binding(poll.bound_serial.as_deref().zip(poll.status.as_deref()), serial)?;
    let fresh = poll.last_seen_at.is_some_and(|seen| now - seen < LAST_SEEN_RESOLUTION_MS);
    match (poll.enrollment_id, poll.agency_code) {
        (Some(enrollment_id), Some(agency_code)) => {
            Ok(Reporter { enrollment_id, agency_code, next_command: poll.next_command, fresh })
        }
        _ => Err(DeviceRefusal::Identity("no enrollment for this device".into())),
    }
}

fn device_actor(udid: &str, source: Option<String>) -> Actor {
    Actor {
        principal: None,
        kind: ActorKind::Device,
        label: format!("device {udid}"),
        request_id: None,
        source_addr: source,
    }
}

/// A check-in message (`PUT /mdm/checkin`).
pub async fn checkin(
    app: &App,
    cert_der: &[u8],
    body: &[u8],
    source: Option<String>,
) -> Result<CheckinReply, DeviceRefusal> {
    let message = Checkin::parse(body).map_err(|e| DeviceRefusal::Malformed(e.to_string()))?;
    if message.enrollment.is_user_channel() || message.enrollment.is_user_enrollment() {
        // User channels and user enrollments are not offered: decline them as Apple documents.
        return Ok(CheckinReply::Declined);
    }
    let udid = message.enrollment.device_key().to_string();
    let actor = device_actor(&udid, source);
    let now = now_ms();
    let ca = ca(app).await?;
    let mut tx = app.store.write().await?;
    let cert = verified_certificate(app, &ca, &mut tx, cert_der).await?;
    let existing = mdm::enrollment_by_udid(&mut tx, &udid).await?;
    if let CheckinMessage::Authenticate(auth) = &message.message {
        // A certificate serves one device: the one it first authenticated.
        if cert.udid.as_deref().is_some_and(|bound| bound != udid) {
            return Err(DeviceRefusal::Identity("the certificate belongs to another device".into()));
        }
        let mut row = existing.clone().unwrap_or_else(|| EnrollmentRow {
            id: custody_store::new_id(),
            udid: udid.clone(),
            agency_code: cert.agency_code.clone(),
            device_id: None,
            status: "authenticated".into(),
            cert_serial: cert.serial.clone(),
            topic: None,
            serial_number: None,
            imei: None,
            meid: None,
            product_name: None,
            model: None,
            model_name: None,
            device_name: None,
            os_version: None,
            build_version: None,
            push_token: None,
            push_magic: None,
            unlock_token_sealed: None,
            token_invalid_at: None,
            authenticated_at: now,
            enrolled_at: None,
            last_seen_at: now,
            checked_out_at: None,
            created_at: now,
            updated_at: now,
        });
        row.agency_code = cert.agency_code.clone();
        row.cert_serial = cert.serial.clone();
        row.status = "authenticated".into();
        row.topic = Some(auth.topic.as_str().to_string());
        row.serial_number = auth.serial_number.clone();
        row.imei = auth.imei.clone();
        row.meid = auth.meid.clone();
        row.product_name = auth.product_name.clone();
        row.model = auth.model.clone().or(row.model);
        row.model_name = auth.model_name.clone().or(row.model_name);
        row.device_name = auth.device_name.clone().or(row.device_name);
        row.os_version = auth.os_version.clone();
        row.build_version = auth.build_version.clone();
        row.authenticated_at = now;
        row.checked_out_at = None;
        row.last_seen_at = now;
        row.updated_at = now;
        if existing.is_some() {
            mdm::update_enrollment(&mut tx, &row).await?;
        } else {
            mdm::insert_enrollment(&mut tx, &row).await?;
        }
        mdm::bind_certificate(&mut tx, &cert.serial, &udid).await?;
        let changes = serde_json::json!({
            "certificate": cert.serial, "serial_number": row.serial_number, "product_name": row.product_name,
            "os_version": row.os_version, "re_enrollment": existing.is_some(),
        });
        audit::append(
            &mut tx,
            actor.event("mdm.authenticate", "mdm_enrollment", &row.id, Some(&row.agency_code), changes),
        )
        .await?;
        tx.commit().await?;
        return Ok(CheckinReply::Empty);
    }
    // Every other message comes from an enrollment that authenticated with this certificate.
    let Some(mut row) = existing else {
        return Err(DeviceRefusal::Identity("no enrollment for this device: Authenticate first".into()));
    };
    if row.cert_serial != cert.serial {
        return Err(DeviceRefusal::Identity("the certificate is not the one this enrollment is bound to".into()));
    }
    let reply = match &message.message {
        CheckinMessage::TokenUpdate(update) => {
            let first = row.enrolled_at.is_none() || row.status != "enrolled";
            row.status = "enrolled".into();
            row.topic = Some(update.topic.as_str().to_string());
            row.push_token = Some(update.token.to_hex());
            row.push_magic = Some(update.push_magic.as_str().to_string());
            if let Some(unlock) = &update.unlock_token {
                row.unlock_token_sealed = Some(seal(app, unlock)?);
            }
            row.token_invalid_at = None;
            row.enrolled_at = row.enrolled_at.or(Some(now));
            row.last_seen_at = now;
            row.updated_at = now;
            mdm::update_enrollment(&mut tx, &row).await?;
            let changes = serde_json::json!({ "first": first, "unlock_token": update.unlock_token.is_some() });
            audit::append(
                &mut tx,
                actor.event("mdm.token_update", "mdm_enrollment", &row.id, Some(&row.agency_code), changes),
            )
            .await?;
            join_inventory(app, &mut tx, &actor, &mut row).await?;
            if first {
                // A new enrollment fills its device's inventory at once.
                crate::inventory::queue(app, &mut tx, &actor, std::slice::from_ref(&row.target()), now).await?;
                app.mdm.push_wake.notify_one();
            }
            crate::compliance::refresh_enrollment(&app.config.compliance, &mut tx, &row.id, now).await?;
            CheckinReply::Empty
        }
        CheckinMessage::CheckOut { .. } => {
            row.status = "checked_out".into();
            row.checked_out_at = Some(now);
            row.push_token = None;
            row.push_magic = None;
            row.last_seen_at = now;
            row.updated_at = now;
            mdm::update_enrollment(&mut tx, &row).await?;
            audit::append(
                &mut tx,
                actor.event("mdm.check_out", "mdm_enrollment", &row.id, Some(&row.agency_code), serde_json::json!({})),
            )
            .await?;
            alert_unexpected_check_out(app, &mut tx, &actor, &row).await?;
            CheckinReply::Empty
        }
        CheckinMessage::UserAuthenticate { .. } => {
            apple_mdm::checkin::user_authenticate_reply(UserAuthentication::NotRequired)
        }
        // Custody does not escrow bootstrap tokens yet: it has none to give, and keeps none.
        CheckinMessage::GetBootstrapToken { .. } => apple_mdm::checkin::bootstrap_token_reply(None),
        CheckinMessage::SetBootstrapToken { .. }
        | CheckinMessage::DeclarativeManagement { .. }
        | CheckinMessage::GetToken { .. } => CheckinReply::Declined,
        CheckinMessage::Authenticate(_) => CheckinReply::Empty,
    };
    tx.commit().await?;
    Ok(reply)
}

/// Joins an enrollment to its inventory device when it has none: the device of the enrollment's
/// agency with the serial number the device reported. A staged device then moves to `enrolled`
/// (the MDM signal, which starts its billing). An enrollment no device matches waits in EUC's
/// unmatched queue.
async fn join_inventory(app: &App, tx: &mut Conn, actor: &Actor, row: &mut EnrollmentRow) -> Result<(), AppError> {
    if row.device_id.is_none() {
        let Some(serial) = row.serial_number.as_deref().map(|s| s.trim().to_ascii_uppercase()) else {
            return Ok(());
        };
        let Some(device) = devices::by_serial(tx, &serial).await?.filter(|d| d.agency_code == row.agency_code) else {
            return Ok(());
        };
        link(tx, actor, row, &device.id, "serial_number").await?;
    }
    enroll_staged(app, tx, actor, row).await?;
    send_pending(app, tx, actor, row).await
}

/// Lifecycle commands that waited for the device to have an enrollment (reported lost before it
/// enrolled, say) go out once it has one.
async fn send_pending(app: &App, tx: &mut Conn, actor: &Actor, row: &EnrollmentRow) -> Result<(), AppError> {
    let Some(device_id) = row.device_id.as_deref().filter(|_| row.status == "enrolled") else { return Ok(()) };
    for command in devices::commands_of(tx, device_id).await?.into_iter().filter(|c| c.status == "pending") {
        let Ok(kind) = command.kind.parse::<CommandKind>() else { continue };
        let status = lifecycle_command(app, tx, actor, device_id, &command.id, kind).await?;
        devices::command_answered(tx, &command.id, status, now_ms()).await?;
    }
    Ok(())
}

/// Records the link of `row` to inventory device `device_id`, found by `how`.
async fn link(
    tx: &mut Conn,
    actor: &Actor,
    row: &mut EnrollmentRow,
    device_id: &str,
    how: &str,
) -> Result<(), AppError> {
    let now = now_ms();
    mdm::link_enrollment(tx, &row.id, device_id, now).await?;
    row.device_id = Some(device_id.to_string());
    let changes = serde_json::json!({ "device_id": device_id, "matched_by": how, "udid": row.udid });
    audit::append(tx, actor.event("mdm.enrollment.link", "mdm_enrollment", &row.id, Some(&row.agency_code), changes))
        .await?;
    Ok(())
}

/// A staged device whose enrollment completed (it sent its push token) is enrolled.
async fn enroll_staged(app: &App, tx: &mut Conn, actor: &Actor, row: &EnrollmentRow) -> Result<(), AppError> {
    if row.status != "enrolled" {
        return Ok(());
    }
    let Some(device_id) = row.device_id.as_deref() else { return Ok(()) };
    match devices::get(tx, device_id).await? {
        Some(mut device) if device.state == DeviceState::Staged => {
            crate::devices::move_device(app, tx, actor, &mut device, Event::RecordEnrollment, ActionInput::default())
                .await
        }
        _ => Ok(()),
    }
}

/// States in which a device is expected to leave MDM: it is being retired.
fn leaving_mdm(state: DeviceState) -> bool {
    use DeviceState::*;
    matches!(state, WrittenOff | Sanitizing | Sanitized | Destroyed | Decommissioned | Surplus | Transferred | Recycled)
}

/// A device that removed its MDM profile outside decommissioning is out of management: central
/// IT security and EUC are told, and the event is audited as an alert.
async fn alert_unexpected_check_out(
    app: &App,
    tx: &mut Conn,
    actor: &Actor,
    row: &EnrollmentRow,
) -> Result<(), AppError> {
    let device = match row.device_id.as_deref() {
        Some(id) => devices::get(tx, id).await?,
        None => None,
    };
    if device.as_ref().is_some_and(|d| leaving_mdm(d.state)) {
        return Ok(());
    }
    let name = row.device_name.as_deref().or(row.serial_number.as_deref()).unwrap_or(&row.udid);
    let state = device.as_ref().map_or("not in inventory".to_string(), |d| d.state.label().to_lowercase());
    let subject = format!("MDM removed from {name} ({})", row.agency_code);
    let body = format!(
        "The device {name} (serial {}, UDID {}) of {} removed its MDM enrollment while {state}. It is no longer \
         managed: it cannot be locked or erased remotely until it enrolls again.",
        row.serial_number.as_deref().unwrap_or("unknown"),
        row.udid,
        row.agency_code,
    );
    let mut recipients = notifications::holders_of(tx, Role::Infosec, None, false).await?;
    recipients.extend(notifications::holders_of(tx, Role::Euc, None, false).await?);
    recipients.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    recipients.dedup_by(|a, b| a.user_id == b.user_id);
    notifications::notify(app, tx, &recipients, "mdm_unexpected_check_out", &subject, &body, None).await?;
    let changes = serde_json::json!({ "device_id": row.device_id, "device_state": state });
    audit::append(
        tx,
        actor.event("mdm.alert.unexpected_check_out", "mdm_enrollment", &row.id, Some(&row.agency_code), changes),
    )
    .await?;
    Ok(())
}

/// EUC joins an unmatched enrollment to an inventory device of the same agency by hand.
pub async fn link_enrollment(app: &App, actor: &Actor, id: &str, device_id: &str) -> Result<EnrollmentRow, AppError> {
    let mut tx = app.store.write().await?;
    let mut row = match mdm::enrollment(&mut tx, id).await? {
        Some(row) => row,
        None => mdm::enrollment_by_udid(&mut tx, id).await?.ok_or(AppError::NotFound)?,
    };
    let code = AgencyCode::parse(&row.agency_code).map_err(|_| AppError::NotFound)?;
    actor.authorize(Action::MdmEnroll, Scope::Agency(&code))?;
    let device_id = device_id.trim();
    if device_id.is_empty() {
        return Err(AppError::invalid("device_id", "is required"));
    }
    let device = devices::get(&mut tx, device_id)
        .await?
        .filter(|d| d.agency_code == row.agency_code)
        .ok_or_else(|| AppError::invalid("device_id", "no device of this enrollment's agency has this id"))?;
    if row.device_id.as_deref() == Some(device.id.as_str()) {
        return Ok(row);
    }
    if let (Some(reported), Some(recorded)) = (row.serial_number.as_deref(), device.serial.as_deref())
        && !reported.trim().eq_ignore_ascii_case(recorded)
    {
        return Err(AppError::invalid(
            "device_id",
            format!("the device reported serial {reported}; the inventory device has {recorded}"),
        ));
    }
    link(&mut tx, actor, &mut row, &device.id, "euc").await?;
    enroll_staged(app, &mut tx, actor, &row).await?;
    send_pending(app, &mut tx, actor, &row).await?;
    tx.commit().await?;
    Ok(row)
}

/// How fresh an enrollment's `last_seen_at` is kept: an idle poll within this long of the last
/// recorded one writes nothing.
const LAST_SEEN_RESOLUTION_MS: i64 = 60_000;

/// Refuses a device without an enrollment, one whose enrollment is bound to another certificate
/// than `serial`, or one that checked out. `enrollment`: its bound serial and status.
fn check_binding(enrollment: Option<(&str, &str)>, serial: &str) -> Result<(), DeviceRefusal> {
    match enrollment {
        None => Err(DeviceRefusal::Identity("no enrollment for this device".into())),
        Some((bound, _)) if bound != serial => {
            Err(DeviceRefusal::Identity("the certificate is not the one this enrollment is bound to".into()))
        }
        Some((_, "checked_out")) => Err(DeviceRefusal::Identity("this enrollment has checked out".into())),
        Some(_) => Ok(()),
    }
}

/// A report on the command connection (`PUT /mdm/connect`): records the answer to the command it
/// names, and hands out the next command (its plist), or `None` when the queue is empty.
pub async fn connect(
    app: &App,
    cert_der: &[u8],
    body: &[u8],
    source: Option<String>,
) -> Result<Option<Vec<u8>>, DeviceRefusal> {
    let report = Report::parse(body).map_err(|e| DeviceRefusal::Malformed(e.to_string()))?;
    if report.enrollment.is_user_channel() || report.enrollment.is_user_enrollment() {
        return Err(DeviceRefusal::Identity("user channels are not enrolled here".into()));
    }
    let udid = report.enrollment.device_key().to_string();
    let now = now_ms();
    let ca = ca(app).await?;
    let serial = chained_serial(app, &ca, cert_der)?;
    if report.status == Status::Idle {
        return idle(app, &serial, udid, now).await;
    }
    // The write shares a transaction with other devices' reports (group commit).
    let job = ReportJob {
        report,
        actor: device_actor(&udid, source),
        serial,
        udid,
        now,
        not_now_retry_ms: app.config.mdm.not_now_retry_seconds * 1000,
        config: app.config.clone(),
    };
    app.store.grouped(job).await?
}

/// An Idle: the device and its next command are settled by reads. With nothing due, from a
/// device seen within the minute, it writes nothing (the common case of a fleet polling). Else
/// the command's delivery and the device's contact are written after the answer, in the
/// device's next batch, which commits before any later report of the device (the batcher keeps
/// a device's jobs in order). A crash before that commit loses nothing the device relies on: the
/// command is still pending, and goes out again at the next poll.
async fn idle(app: &App, serial: &str, udid: String, now: i64) -> Result<Option<Vec<u8>>, DeviceRefusal> {
    // A kept connection (no round trips of the pool's around the read), kept again unless the
    // read failed (or this request was cancelled during it).
    let mut conn = app.store.lean().await?;
    let read = reporter(&mut conn, serial, &udid, now).await;
    if !matches!(read, Err(DeviceRefusal::App(_))) {
        conn.release();
    }
    let device = read?;
    if device.quiet() {
        return Ok(None);
    }
    let command = device.next_command;
    let plist = command.as_ref().map(|c| command_plist(&c.id, &c.request_type, &c.params)).transpose()?;
    let job = Delivered {
        udid,
        enrollment_id: device.enrollment_id,
        command_id: command.map(|c| c.id),
        touch: !device.fresh,
        now,
    };
    let submitted = app.store.submit(job).await?;
    tokio::spawn(async move {
        if let Err(e) = submitted.outcome().await {
            tracing::warn!(error = %e, "recording a command's delivery failed; it stays pending");
        }
    });
    Ok(plist)
}

/// A stored command (its id, request type and parameters) as the plist a device runs.
fn command_plist(id: &str, request_type: &str, params: &str) -> Result<Vec<u8>, AppError> {
    let params: serde_json::Value =
        serde_json::from_str(params).map_err(|e| unexpected("command params")(e.to_string()))?;
    let typed = Command::from_params(request_type, &params).map_err(|e| unexpected("stored command")(e.to_string()))?;
    let uuid = CommandUuid::new(id.to_string()).ok_or_else(|| unexpected("command id")("empty".into()))?;
    Ok(typed.to_xml(&uuid))
}

/// What an Idle hands out, written after it answered: the command's delivery, and the device's
/// contact when the last one is older than a minute.
struct Delivered {
    udid: String,
    enrollment_id: String,
    command_id: Option<String>,
    touch: bool,
    now: i64,
}

impl GroupJob for Delivered {
    type Output = ();
    type Error = SqlError;

    fn run<'a>(&'a self, tx: &'a mut GroupTx) -> JobFuture<'a, (), SqlError> {
        Box::pin(async move {
            if self.touch {
                mdm::touch_enrollment(tx.conn(), &self.enrollment_id, self.now).await?;
            }
            if let Some(id) = &self.command_id {
                mdm::mark_sent(tx.conn(), id, self.now).await?;
            }
            Ok(())
        })
    }

    fn key(&self) -> Option<&str> {
        Some(&self.udid)
    }

    fn unhurried(&self) -> bool {
        true
    }
}

/// The writes of one report, run by the store's batcher in a transaction shared with others.
struct ReportJob {
    report: Report,
    actor: Actor,
    /// The serial of the certificate that signed the report (it chains to the CA), and the
    /// device it reports as.
    serial: String,
    udid: String,
    now: i64,
    not_now_retry_ms: i64,
    config: Arc<crate::AppConfig>,
}

impl GroupJob for ReportJob {
    /// A refused device is an answer, not a failure: the job wrote nothing, and the reports
    /// sharing its transaction go on.
    type Output = Result<Option<Vec<u8>>, DeviceRefusal>;
    type Error = DeviceRefusal;

    fn key(&self) -> Option<&str> {
        Some(&self.udid)
    }

    fn run<'a>(&'a self, tx: &'a mut GroupTx) -> JobFuture<'a, Self::Output, DeviceRefusal> {
        Box::pin(async move {
            // The usual final answer from a device in good standing is recorded by the statement
            // that checks the device; only when it records nothing is the device read, to tell a
            // refusal from a repeated report.
            if let Some((command_uuid, status)) = self.final_answer() {
                let raw = String::from_utf8_lossy(self.report.raw());
                let chain = error_chain_json(&self.report.status);
                let result = mdm::CommandResult {
                    status,
                    result_status: self.report.status.as_str(),
                    result: &raw,
                    error_chain: chain.as_deref(),
                };
                if let Some(found) =
                    mdm::record_reported_result(tx.conn(), command_uuid, &self.serial, &self.udid, result, self.now)
                        .await?
                {
                    let fresh = found.last_seen_at.is_some_and(|seen| self.now - seen < LAST_SEEN_RESOLUTION_MS);
                    let device = Reporter {
                        enrollment_id: found.enrollment_id.clone(),
                        agency_code: found.agency_code.clone(),
                        next_command: None,
                        fresh,
                    };
                    return self.record(tx, &device, Some(found)).await.map(Ok);
                }
            }
            match reporter(tx.conn(), &self.serial, &self.udid, self.now).await {
                Ok(device) => self.record(tx, &device, None).await.map(Ok),
                Err(DeviceRefusal::App(e)) => Err(DeviceRefusal::App(e)),
                Err(refused) => Ok(Err(refused)),
            }
        })
    }
}

impl ReportJob {
    /// The command a final answer names, and the command's status it sets (`acknowledged`,
    /// `error`); `None` for Idle and NotNow.
    fn final_answer(&self) -> Option<(&str, &'static str)> {
        match &self.report.status {
            Status::Acknowledged { command_uuid } => Some((command_uuid.as_str(), "acknowledged")),
            Status::Error { command_uuid, .. } | Status::CommandFormatError { command_uuid, .. } => {
                Some((command_uuid.as_str(), "error"))
            }
            Status::Idle | Status::NotNow { .. } => None,
        }
    }

    /// Records the report of `device`, and hands out the next command (its plist), or `None` when
    /// the queue is empty. A final answer was written by the caller: `recorded` is what that wrote
    /// and read, or `None` when it was answered before (a repeated report changes nothing).
    async fn record(
        &self,
        tx: &mut GroupTx,
        device: &Reporter,
        recorded: Option<mdm::ReportedResult>,
    ) -> Result<Option<Vec<u8>>, DeviceRefusal> {
        let (report, now) = (&self.report, self.now);
        // Whether this message already recorded the device as seen.
        let mut seen = device.fresh;
        if let Status::NotNow { command_uuid } = &report.status {
            let due = now + self.not_now_retry_ms;
            if mdm::defer(tx.conn(), command_uuid.as_str(), &device.enrollment_id, due, now).await? {
                mdm::schedule_pushes(tx.conn(), std::slice::from_ref(&device.enrollment_id), due).await?;
            }
        }
        // The command due next, as the recording statement read it: handed out below unless
        // the answer was to a lifecycle command (its follow-up may change the queue).
        let mut next = None;
        // A repeated report (nothing recorded) changes nothing more.
        if let Some((command_uuid, status)) = self.final_answer()
            && let Some(recorded) = recorded
        {
            let request_type = recorded.request_type;
            if !LIFECYCLE_REQUESTS.contains(&request_type.as_str()) {
                next = recorded.next_command;
            }
            crate::profiles::observe(
                tx.conn(),
                &device.enrollment_id,
                &request_type,
                command_uuid,
                status == "acknowledged",
                report,
                now,
            )
            .await?;
            if status == "acknowledged"
                && let Some(joined) = crate::inventory::observe(
                    tx.conn(),
                    &device.enrollment_id,
                    &request_type,
                    report,
                    Some(&recorded.facts),
                    now,
                )
                .await?
            {
                // The inventory update also wrote `last_seen_at`, and read the device to
                // re-evaluate.
                seen = true;
                if let Some(device_id) = joined {
                    crate::compliance::refresh_device(&self.config.compliance, tx.conn(), &device_id, now).await?;
                }
            }
            if LIFECYCLE_REQUESTS.contains(&request_type.as_str()) {
                devices::command_answered(tx.conn(), command_uuid, status, now).await?;
            }
            let changes = serde_json::json!({ "status": report.status.as_str() });
            tx.audit(self.actor.event(
                "mdm.command.result",
                "mdm_command",
                command_uuid,
                Some(&device.agency_code),
                changes,
            ));
        }
        if !seen {
            mdm::touch_enrollment(tx.conn(), &device.enrollment_id, now).await?;
        }
        // The device sees this command only once the batch committed, so it cannot answer it
        // within the batch: its delivery is marked at the commit, with the batch's others.
        if let Some(command) = next {
            let plist = command_plist(&command.id, &command.request_type, &command.params)?;
            tx.hand_out(command.id, now);
            return Ok(Some(plist));
        }
        let Some(command) = mdm::take_next_command(tx.conn(), &device.enrollment_id, now).await? else {
            return Ok(None);
        };
        Ok(Some(command_plist(&command.id, &command.request_type, &command.params)?))
    }
}

/// A report's `ErrorChain` as stored: a JSON array, or `None` when it has none.
fn error_chain_json(status: &Status) -> Option<String> {
    let chain = status.error_chain();
    (!chain.is_empty()).then(|| {
        serde_json::Value::Array(
            chain
                .iter()
                .map(|e| {
                    serde_json::json!({
                        "code": e.code, "domain": e.domain,
                        "description": e.us_english_description.clone().or(e.localized_description.clone()),
                    })
                })
                .collect(),
        )
        .to_string()
    })
}

/// A command to queue for devices, as the API takes it.
#[derive(Debug, Clone, Default)]
pub struct NewCommands {
    /// UDIDs, enrollment ids or inventory device ids.
    pub devices: Vec<String>,
    pub request_type: String,
    pub params: serde_json::Value,
}

/// Queues one command per device (sharing a batch id) and pushes them. Returns the batch id and
/// the commands.
pub async fn enqueue(app: &App, actor: &Actor, input: NewCommands) -> Result<(String, Vec<CommandRow>), AppError> {
    actor.authorize(Action::MdmCommand, Scope::Global)?;
    let params = if input.params.is_null() { serde_json::json!({}) } else { input.params.clone() };
    Command::from_params(&input.request_type, &params).map_err(|e| match e.param() {
        Some(param) => AppError::invalid(&format!("params.{param}"), e.to_string()),
        None if matches!(e, apple_mdm::command::CommandError::UnknownRequestType { .. }) => {
            AppError::invalid("request_type", e.to_string())
        }
        None => AppError::invalid("params", e.to_string()),
    })?;
    if input.request_type == "EraseDevice" {
        return Err(AppError::invalid(
            "request_type",
            "erases go through POST /api/v1/erase-requests, where the two-person rule applies",
        ));
    }
    let now = now_ms();
    let mut tx = app.store.write().await?;
    let targets = targets_of(&mut tx, actor, &input.devices, 200_000).await?;
    let batch = custody_store::new_id();
    let params_text = params.to_string();
    let rows: Vec<CommandRow> =
        targets.iter().map(|e| new_command(app, actor, &batch, e, &input.request_type, &params_text, now)).collect();
    // The batch's pushes are scheduled as one row, which the push sender expands.
    mdm::insert_commands(&mut tx, &rows).await?;
    mdm::schedule_batch_pushes(&mut tx, &batch, now).await?;
    let changes = serde_json::json!({ "request_type": input.request_type, "devices": rows.len(), "params": params });
    audit::append(&mut tx, actor.event("mdm.command.enqueue", "mdm_command_batch", &batch, None, changes)).await?;
    tx.commit().await?;
    app.mdm.push_wake.notify_one();
    Ok((batch, rows))
}

/// The enrollments `devices` name (UDIDs, enrollment ids or inventory device ids), each once,
/// by id; every key that names none, names one the actor may not command, or names a device that
/// checked out is refused by its index (the first 20).
pub(crate) async fn targets_of(
    tx: &mut Conn,
    actor: &Actor,
    devices: &[String],
    most: usize,
) -> Result<Vec<mdm::EnrollmentTarget>, AppError> {
    if devices.is_empty() {
        return Err(AppError::invalid("devices", "name at least one device"));
    }
    if devices.len() > most {
        return Err(AppError::invalid("devices", format!("at most {most} devices at once")));
    }
    // Each key once: `targets_by_keys` sorts and dedups them.
    let keys: Vec<String> = devices.iter().map(|d| d.trim().to_string()).collect();
    let found = mdm::targets_by_keys(tx, &keys).await?;
    let mut by_key: std::collections::HashMap<&str, &mdm::EnrollmentTarget> =
        std::collections::HashMap::with_capacity(found.len() * 2);
    for e in &found {
        by_key.insert(&e.udid, e);
        by_key.insert(&e.id, e);
        if let Some(device) = &e.device_id {
            by_key.insert(device, e);
        }
    }
    // Whether the actor may command devices of an agency, decided once per agency.
    let mut allowed: std::collections::HashMap<&str, bool> = std::collections::HashMap::new();
    let mut errors = custody_domain::FieldErrors::new();
    let mut targets: Vec<mdm::EnrollmentTarget> = Vec::with_capacity(found.len());
    for (i, key) in devices.iter().enumerate() {
        let target = by_key.get(key.trim()).filter(|e| {
            *allowed.entry(e.agency_code.as_str()).or_insert_with(|| {
                AgencyCode::parse(&e.agency_code)
                    .is_ok_and(|code| actor.authorize(Action::MdmCommand, Scope::Agency(&code)).is_ok())
            })
        });
        match target {
            Some(e) if e.status == "checked_out" => {
                errors.push(format!("devices[{i}]"), "this device checked out of MDM")
            }
            Some(e) => targets.push((*e).clone()),
            None => errors.push(format!("devices[{i}]"), "no enrolled device has this UDID or id"),
        }
        if errors.0.len() >= 20 {
            break;
        }
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    targets.sort_by(|a, b| a.id.cmp(&b.id));
    targets.dedup_by(|a, b| a.id == b.id);
    Ok(targets)
}

/// A command queued now for enrollment `target`, in `batch` (its id a fresh CommandUUID).
pub(crate) fn new_command(
    app: &App,
    actor: &Actor,
    batch: &str,
    target: &mdm::EnrollmentTarget,
    request_type: &str,
    params: &str,
    now: i64,
) -> CommandRow {
    CommandRow {
        id: custody_store::new_id().to_uppercase(),
        enrollment_id: target.id.clone(),
        agency_code: target.agency_code.clone(),
        batch_id: batch.to_string(),
        request_type: request_type.to_string(),
        params: params.to_string(),
        status: "queued".into(),
        created_by: actor.label.clone(),
        created_at: now,
        due_at: now,
        expires_at: now + app.config.mdm.command_ttl_days * 86_400_000,
        sent_at: None,
        deliveries: 0,
        not_now_count: 0,
        result_status: None,
        result: None,
        error_chain: None,
        completed_at: None,
        updated_at: now,
    }
}

/// Writes the commands and schedules a push to each of their devices.
pub(crate) async fn queue_rows(tx: &mut Conn, rows: &[CommandRow], now: i64) -> Result<(), SqlError> {
    mdm::insert_commands(tx, rows).await?;
    let mut enrollments: Vec<String> = rows.iter().map(|c| c.enrollment_id.clone()).collect();
    enrollments.dedup();
    mdm::schedule_pushes(tx, &enrollments, now).await
}

/// The MDM commands the device lifecycle sends (their answers are mirrored on the device's
/// lifecycle command of the same id).
const LIFECYCLE_REQUESTS: &[&str] = &["EnableLostMode", "DisableLostMode", "DeviceLock", "EraseDevice"];

/// The lock-screen command for a lifecycle command: Lost Mode (with the notice) on a supervised
/// device, else a lock with the same notice; leaving Lost Mode on a supervised device. `None`:
/// nothing to send (a plain lock is undone with the passcode; an erase is not a lock command).
fn lock_command(
    lost: &LostModeNotice,
    kind: CommandKind,
    supervised: bool,
) -> Option<(&'static str, serde_json::Value)> {
    let mut notice = serde_json::Map::new();
    notice.insert("Message".into(), lost.message.clone().into());
    if let Some(phone) = &lost.phone_number {
        notice.insert("PhoneNumber".into(), phone.clone().into());
    }
    match kind {
        CommandKind::EnableLostMode if supervised => {
            if let Some(footnote) = &lost.footnote {
                notice.insert("Footnote".into(), footnote.clone().into());
            }
            Some(("EnableLostMode", serde_json::Value::Object(notice)))
        }
        CommandKind::EnableLostMode | CommandKind::DeviceLock => {
            Some(("DeviceLock", serde_json::Value::Object(notice)))
        }
        CommandKind::DisableLostMode if supervised => Some(("DisableLostMode", serde_json::json!({}))),
        CommandKind::DisableLostMode | CommandKind::EraseDevice => None,
    }
}

/// Sends what the lifecycle asked of a device (lost mode, lock, erase) through its MDM
/// enrollment, inside the caller's transaction, with `id` as the command's UUID. Returns the
/// lifecycle command's status: `queued` (sent), `awaiting_approval` (an erase waiting for its
/// second person), `pending` (the device has no active enrollment: it waits for one), or
/// `not_needed` (a device locked without Lost Mode is unlocked with its passcode, not by command).
pub(crate) async fn lifecycle_command(
    app: &App,
    tx: &mut Conn,
    actor: &Actor,
    device_id: &str,
    id: &str,
    kind: CommandKind,
) -> Result<&'static str, AppError> {
    let Some(enrollment) = mdm::enrollment_by_device(tx, device_id).await?.filter(|e| e.status == "enrolled") else {
        return Ok("pending");
    };
    let target = enrollment.target();
    if kind == CommandKind::EraseDevice {
        // Erases follow the two-person rule like any other.
        let links = crate::erase::Links { device_command_id: Some(id), sanitization_id: None };
        let targets = std::slice::from_ref(&target);
        let request = crate::erase::create(app, tx, actor, targets, "the device was written off", links).await?;
        return Ok(if request.status == "approved" { "queued" } else { "awaiting_approval" });
    }
    let supervised = mdm::supervised(tx, &enrollment.id).await?.unwrap_or(false);
    let Some((request_type, params)) = lock_command(&app.config.mdm.lost_mode, kind, supervised) else {
        return Ok("not_needed");
    };
    Command::from_params(request_type, &params).map_err(|e| unexpected("lifecycle command")(e.to_string()))?;
    let now = now_ms();
    let batch = custody_store::new_id();
    let mut row = new_command(app, actor, &batch, &target, request_type, &params.to_string(), now);
    row.id = id.to_string();
    queue_rows(tx, std::slice::from_ref(&row), now).await?;
    let changes = serde_json::json!({ "request_type": request_type, "devices": 1, "params": params,
                                      "device_id": device_id, "lifecycle": kind.as_str() });
    audit::append(
        tx,
        actor.event("mdm.command.enqueue", "mdm_command_batch", &batch, Some(&target.agency_code), changes),
    )
    .await?;
    app.mdm.push_wake.notify_one();
    Ok("queued")
}

/// What a command list shows.
#[derive(Debug, Clone, Default)]
pub struct CommandQuery {
    pub status: Option<String>,
    /// A UDID, enrollment id or device id.
    pub device: Option<String>,
    pub request_type: Option<String>,
    pub batch: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

const COMMAND_STATUSES: &[&str] = &["queued", "sent", "acknowledged", "error", "not_now", "expired", "cancelled"];

pub async fn commands(app: &App, actor: &Actor, query: CommandQuery) -> Result<Page<CommandRow>, AppError> {
    actor.authorize(Action::MdmRead, Scope::Global)?;
    if let Some(status) = query.status.as_deref().filter(|s| !s.is_empty())
        && !COMMAND_STATUSES.contains(&status)
    {
        return Err(AppError::invalid("status", format!("must be one of {}", COMMAND_STATUSES.join(", "))));
    }
    let limit = paging::limit(query.limit)?;
    let before = match &query.cursor {
        Some(cursor) => Some(paging::decode(cursor, 1)?.remove(0)),
        None => None,
    };
    let mut conn = app.store.conn().await?;
    let enrollment_id = match query.device.as_deref().filter(|d| !d.is_empty()) {
        Some(key) => match mdm::targets_by_keys(&mut conn, &[key.to_string()]).await?.into_iter().next() {
            Some(e) => Some(e.id),
            None => return Ok(Page { items: Vec::new(), next: None }),
        },
        None => None,
    };
    let filter = CommandFilter {
        agency: actor.agency_filter(),
        enrollment_id,
        status: query.status.filter(|s| !s.is_empty()),
        request_type: query.request_type.filter(|s| !s.is_empty()),
        batch_id: query.batch.filter(|s| !s.is_empty()),
    };
    let rows = mdm::list_commands(&mut conn, &filter, before.as_deref(), limit + 1).await?;
    Ok(paging::page(rows, limit, |c| paging::encode(&[&c.id]), |c| c))
}

pub async fn command(app: &App, actor: &Actor, id: &str) -> Result<CommandRow, AppError> {
    let mut conn = app.store.conn().await?;
    let row = mdm::command(&mut conn, id).await?.ok_or(AppError::NotFound)?;
    let code = AgencyCode::parse(&row.agency_code).map_err(|_| AppError::NotFound)?;
    actor.authorize(Action::MdmRead, Scope::Agency(&code))?;
    Ok(row)
}

pub async fn cancel_command(app: &App, actor: &Actor, id: &str) -> Result<CommandRow, AppError> {
    let mut tx = app.store.write().await?;
    let row = mdm::command(&mut tx, id).await?.ok_or(AppError::NotFound)?;
    let code = AgencyCode::parse(&row.agency_code).map_err(|_| AppError::NotFound)?;
    actor.authorize(Action::MdmRead, Scope::Agency(&code))?;
    actor.authorize(Action::MdmCommand, Scope::Agency(&code))?;
    if !mdm::cancel_command(&mut tx, id, now_ms()).await? {
        return Err(AppError::conflict("status", format!("a {} command cannot be cancelled", row.status)));
    }
    let changes = serde_json::json!({ "status": { "from": row.status, "to": "cancelled" } });
    audit::append(&mut tx, actor.event("mdm.command.cancel", "mdm_command", id, Some(code.as_str()), changes)).await?;
    let row = mdm::command(&mut tx, id).await?.ok_or(AppError::NotFound)?;
    tx.commit().await?;
    Ok(row)
}

/// What an enrollment list shows.
#[derive(Debug, Clone, Default)]
pub struct EnrollmentQuery {
    pub agency: Option<String>,
    pub status: Option<String>,
    /// Only those joined to no inventory device.
    pub unmatched: bool,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

pub async fn enrollments(app: &App, actor: &Actor, query: EnrollmentQuery) -> Result<Page<EnrollmentRow>, AppError> {
    let agency = actor.list_scope(Action::MdmRead, query.agency.as_deref())?;
    let limit = paging::limit(query.limit)?;
    let after = match &query.cursor {
        Some(cursor) => Some(paging::decode(cursor, 1)?.remove(0)),
        None => None,
    };
    let mut conn = app.store.conn().await?;
    let filter =
        mdm::EnrollmentFilter { agency, status: query.status.filter(|s| !s.is_empty()), unmatched: query.unmatched };
    let rows = mdm::list_enrollments(&mut conn, &filter, after.as_deref(), limit + 1).await?;
    Ok(paging::page(rows, limit, |e| paging::encode(&[&e.id]), |e| e))
}

pub async fn enrollment(app: &App, actor: &Actor, id: &str) -> Result<EnrollmentRow, AppError> {
    let mut conn = app.store.conn().await?;
    let row = match mdm::enrollment(&mut conn, id).await? {
        Some(row) => row,
        None => mdm::enrollment_by_udid(&mut conn, id).await?.ok_or(AppError::NotFound)?,
    };
    let code = AgencyCode::parse(&row.agency_code).map_err(|_| AppError::NotFound)?;
    actor.authorize(Action::MdmRead, Scope::Agency(&code))?;
    Ok(row)
}

/// The push certificate as shown to administrators (never its key).
#[derive(Debug, Clone)]
pub struct PushCertificateInfo {
    pub topic: String,
    pub subject: String,
    pub not_after: i64,
    pub uploaded_by: String,
    pub uploaded_at: i64,
}

/// Stores the APNs MDM push certificate, from PEM (certificate and key) or PKCS#12 with its
/// password; its topic is read from the certificate.
pub async fn upload_push_certificate(
    app: &App,
    actor: &Actor,
    pem: Option<&[u8]>,
    pkcs12: Option<(&[u8], &str)>,
) -> Result<PushCertificateInfo, AppError> {
    actor.authorize(Action::MdmSettings, Scope::Global)?;
    let loaded = match (pem, pkcs12) {
        (Some(pem), None) => {
            apns::PushCertificate::from_pem(pem).map_err(|e| AppError::invalid("pem", e.to_string()))?
        }
        (None, Some((der, password))) => {
            apns::PushCertificate::from_pkcs12(der, password).map_err(|e| AppError::invalid("pkcs12", e.to_string()))?
        }
        _ => return Err(AppError::invalid("pem", "give either pem, or pkcs12 with its password")),
    };
    let not_after =
        loaded.not_after().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default();
    if not_after <= now_ms() {
        return Err(AppError::invalid(if pem.is_some() { "pem" } else { "pkcs12" }, "the certificate has expired"));
    }
    let (cert_pem, key_pem) = loaded.to_pem_parts().map_err(|e| unexpected("push certificate")(e.to_string()))?;
    let row = mdm::PushCertificateRow {
        topic: loaded.topic().as_str().to_string(),
        subject: loaded.subject().to_string(),
        cert_pem: String::from_utf8_lossy(&cert_pem).into_owned(),
        key_sealed: seal(app, &key_pem)?,
        not_after,
        uploaded_by: actor.label.clone(),
        uploaded_at: now_ms(),
    };
    let mut tx = app.store.write().await?;
    mdm::put_push_certificate(&mut tx, &row).await?;
    let changes = serde_json::json!({ "topic": row.topic, "subject": row.subject, "not_after": row.not_after });
    audit::append(&mut tx, actor.event("mdm.push_certificate.upload", "push_certificate", "default", None, changes))
        .await?;
    tx.commit().await?;
    Ok(PushCertificateInfo {
        topic: row.topic,
        subject: row.subject,
        not_after: row.not_after,
        uploaded_by: row.uploaded_by,
        uploaded_at: row.uploaded_at,
    })
}

pub async fn push_certificate(app: &App, actor: &Actor) -> Result<Option<PushCertificateInfo>, AppError> {
    actor.authorize(Action::MdmRead, Scope::Global)?;
    let mut conn = app.store.conn().await?;
    Ok(mdm::push_certificate(&mut conn).await?.map(|row| PushCertificateInfo {
        topic: row.topic,
        subject: row.subject,
        not_after: row.not_after,
        uploaded_by: row.uploaded_by,
        uploaded_at: row.uploaded_at,
    }))
}

/// The APNs client for the push certificate in force (rebuilt when a new one is uploaded).
async fn apns_client(app: &App, conn: &mut Conn) -> Result<Option<(apns::Client, String)>, AppError> {
    let Some(row) = mdm::push_certificate(conn).await? else { return Ok(None) };
    let mut cached = app.mdm.apns.lock().await;
    if let Some((at, client, topic)) = cached.as_ref()
        && *at == row.uploaded_at
    {
        return Ok(Some((client.clone(), topic.clone())));
    }
    let key = open(app, &row.key_sealed)?;
    let pem = [row.cert_pem.as_bytes(), b"\n", &key].concat();
    let cert = apns::PushCertificate::from_pem(&pem).map_err(|e| unexpected("push certificate")(e.to_string()))?;
    let mut config = apns::ClientConfig::new(cert);
    config.base_url = app.config.mdm.apns_url.clone();
    config.extra_roots_pem = app.config.mdm.apns_extra_roots_pem.clone();
    let client = apns::Client::new(config).map_err(|e| unexpected("APNs client")(e.to_string()))?;
    *cached = Some((row.uploaded_at, client.clone(), row.topic.clone()));
    Ok(Some((client, row.topic)))
}

/// The most pushes one pass of [`push_due`] claims.
const PUSH_PASS: i64 = 20_000;

/// Sends the due pushes (one pass); returns how many were delivered. Pushes to a device
/// coalesce (one row per enrollment); a rejected token is marked invalid; failures retry with
/// a growing delay. Without a push certificate, pushes wait.
pub async fn push_due(app: &App) -> Result<usize, AppError> {
    let now = now_ms();
    let mut conn = app.store.conn().await?;
    let Some((client, topic)) = apns_client(app, &mut conn).await? else { return Ok(0) };
    drop(conn);
    let claimed = {
        let mut tx = app.store.write().await?;
        // A batch's pushes become the devices' as they are sent: a slice a pass.
        mdm::expand_push_batches(&mut tx, now, PUSH_PASS).await?;
        let claimed = mdm::claim_pushes(&mut tx, now, 60_000, PUSH_PASS).await?;
        tx.commit().await?;
        claimed
    };
    if claimed.is_empty() {
        return Ok(0);
    }
    let mut finished = Vec::new();
    let mut targets = Vec::new();
    let mut owners = Vec::new();
    for due in &claimed {
        match (&due.push_token, &due.push_magic) {
            (Some(token), Some(magic)) if !due.token_invalid => {
                targets.push(apns::PushTarget {
                    token_hex: token.clone(),
                    push_magic: magic.clone(),
                    topic: topic.clone(),
                });
                owners.push(due);
            }
            // Nothing to push to: the device will get its commands when it next connects.
            _ => finished.push(due.enrollment_id.clone()),
        }
    }
    let outcomes = client.push_many(&targets, 500).await;
    let mut invalid = Vec::new();
    let mut retries = Vec::new();
    let mut delivered = 0;
    for (index, outcome) in outcomes {
        let due = owners[index];
        match outcome {
            Ok(apns::PushOutcome::Delivered { .. }) => {
                delivered += 1;
                finished.push(due.enrollment_id.clone());
            }
            Ok(apns::PushOutcome::TokenInvalid { .. }) => {
                invalid.push(due.enrollment_id.clone());
                finished.push(due.enrollment_id.clone());
            }
            Ok(apns::PushOutcome::Retry { after, .. }) => {
                let wait = after.unwrap_or_else(|| apns::backoff(due.attempts as u32));
                retries.push((due.enrollment_id.clone(), now + wait.as_millis() as i64));
            }
            Ok(apns::PushOutcome::Rejected { status, reason }) => {
                tracing::warn!(status, reason, enrollment = due.enrollment_id, "APNs rejected a push");
                retries
                    .push((due.enrollment_id.clone(), now + apns::backoff(due.attempts as u32 + 3).as_millis() as i64));
            }
            Err(error) => {
                tracing::warn!(%error, enrollment = due.enrollment_id, "push not sent");
                finished.push(due.enrollment_id.clone());
            }
        }
    }
    let mut tx = app.store.write().await?;
    mdm::finish_pushes(&mut tx, &finished).await?;
    for (id, at) in &retries {
        mdm::retry_push(&mut tx, id, *at).await?;
    }
    let job = Actor { kind: ActorKind::Job, ..Actor::system("push") };
    for id in &invalid {
        mdm::invalidate_token(&mut tx, id, now).await?;
        audit::append(&mut tx, job.event("mdm.push_token.invalid", "mdm_enrollment", id, None, serde_json::json!({})))
            .await?;
    }
    tx.commit().await?;
    Ok(delivered)
}

/// Marks expired commands and deletes finished ones past the retention; returns both counts.
pub async fn expire_and_reap(app: &App) -> Result<(u64, u64), AppError> {
    let now = now_ms();
    let mut tx = app.store.write().await?;
    let expired = mdm::expire_commands(&mut tx, now).await?;
    let reaped = mdm::reap_commands(&mut tx, now - app.config.mdm.retention_days * 86_400_000).await?;
    if expired + reaped > 0 {
        let job = Actor { kind: ActorKind::Job, ..Actor::system("command-expiry") };
        let changes = serde_json::json!({ "expired": expired, "deleted": reaped });
        audit::append(&mut tx, job.event("mdm.command.expire", "mdm_command", "*", None, changes)).await?;
    }
    tx.commit().await?;
    Ok((expired, reaped))
}

/// The CA certificate (PEM) and its SHA-256 fingerprint, for administrators and device setup.
pub async fn ca_certificate(app: &App, actor: &Actor) -> Result<(String, String), AppError> {
    actor.authorize(Action::MdmRead, Scope::Global)?;
    let ca = ca(app).await?;
    let pem = ca.certificate_pem().map_err(|e| unexpected("CA")(e.to_string()))?;
    let fingerprint = ca.fingerprint_sha256().map_err(|e| unexpected("CA")(e.to_string()))?;
    Ok((String::from_utf8_lossy(&pem).into_owned(), hex::encode(fingerprint)))
}

/// A stored device report (an XML plist) as JSON, for the API: `<data>` becomes base64 text,
/// `<date>` RFC 3339 text. `None` when the text is not a plist.
pub fn report_json(raw: &str) -> Option<serde_json::Value> {
    fn convert(value: &apple_mdm::plist::Value) -> serde_json::Value {
        use apple_mdm::plist::Value;
        use base64::Engine;
        match value {
            Value::Dictionary(dict) => {
                serde_json::Value::Object(dict.iter().map(|(k, v)| (k.clone(), convert(v))).collect())
            }
            Value::Array(items) => serde_json::Value::Array(items.iter().map(convert).collect()),
            Value::Boolean(b) => serde_json::Value::Bool(*b),
            Value::Data(bytes) => base64::engine::general_purpose::STANDARD.encode(bytes).into(),
            Value::Date(date) => date.to_xml_format().into(),
            Value::Real(r) => {
                serde_json::Number::from_f64(*r).map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
            Value::Integer(i) => match (i.as_signed(), i.as_unsigned()) {
                (Some(n), _) => n.into(),
                (None, Some(n)) => n.into(),
                _ => serde_json::Value::Null,
            },
            Value::String(s) => s.clone().into(),
            Value::Uid(uid) => uid.get().into(),
            _ => serde_json::Value::Null,
        }
    }
    apple_mdm::plist::Value::from_reader_xml(raw.as_bytes()).ok().map(|v| convert(&v))
}
