//! Helpers shared by the integration tests: fake push certificates, a stand-in with a client
//! wired to it, and a raw HTTP/2 request for checks the client would never send.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use apns::standin::{StandIn, StandInConfig};
use apns::{Client, ClientConfig, PushCertificate, PushTarget};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::BasicConstraints;
use openssl::x509::{X509, X509Name, X509NameBuilder};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

pub const TOPIC: &str = "com.apple.mgmt.External.2b5e7c9a-51d4-4c61-8d1e-7f3a0b9c4e21";

pub fn install_ring() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[derive(Clone, Copy)]
pub enum KeyKind {
    Rsa,
    Ec,
}

pub fn key(kind: KeyKind) -> PKey<Private> {
    match kind {
        KeyKind::Rsa => PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap(),
        KeyKind::Ec => {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
            PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
        }
    }
}

/// What goes in a fake certificate.
pub struct Fake<'a> {
    pub topic: Option<&'a str>,
    pub key: KeyKind,
    /// Days from now, negative for the past.
    pub not_before_days: i64,
    pub not_after_days: i64,
}

impl Default for Fake<'_> {
    fn default() -> Self {
        Fake { topic: Some(TOPIC), key: KeyKind::Ec, not_before_days: -1, not_after_days: 365 }
    }
}

/// A self-signed stand-in for Apple's MDM push certificate: UID holds the topic, as Apple's do.
pub fn fake_certificate(fake: &Fake) -> (X509, PKey<Private>) {
    let key = key(fake.key);
    let name = subject(fake.topic);
    (build(&name, &key, &name, &key, fake, false), key)
}

/// A leaf like `fake_certificate`'s, issued by a fake "Apple" CA; answers (ca, leaf, leaf key).
pub fn fake_certificate_with_ca(fake: &Fake) -> (X509, X509, PKey<Private>) {
    let ca_key = key(KeyKind::Ec);
    let mut ca_name = X509NameBuilder::new().unwrap();
    ca_name.append_entry_by_nid(Nid::COMMONNAME, "Fake Apple Application Integration CA").unwrap();
    let ca_name = ca_name.build();
    let ca = build(&ca_name, &ca_key, &ca_name, &ca_key, &Fake::default(), true);
    let key = key(fake.key);
    let leaf = build(&subject(fake.topic), &key, &ca_name, &ca_key, fake, false);
    (ca, leaf, key)
}

fn subject(topic: Option<&str>) -> X509Name {
    let mut name = X509NameBuilder::new().unwrap();
    if let Some(topic) = topic {
        name.append_entry_by_nid(Nid::USERID, topic).unwrap();
    }
    name.append_entry_by_nid(Nid::COMMONNAME, "APSP:2b5e7c9a-51d4-4c61-8d1e-7f3a0b9c4e21").unwrap();
    name.append_entry_by_nid(Nid::COUNTRYNAME, "US").unwrap();
    name.build()
}

fn build(
    subject: &X509Name,
    key: &PKey<Private>,
    issuer: &X509Name,
    issuer_key: &PKey<Private>,
    fake: &Fake,
    ca: bool,
) -> X509 {
    let mut builder = X509::builder().unwrap();
    builder.set_version(2).unwrap();
    builder.set_serial_number(&BigNum::from_u32(fastrand::u32(1..)).unwrap().to_asn1_integer().unwrap()).unwrap();
    builder.set_subject_name(subject).unwrap();
    builder.set_issuer_name(issuer).unwrap();
    builder.set_pubkey(key).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    builder.set_not_before(&Asn1Time::from_unix(now + fake.not_before_days * 86_400).unwrap()).unwrap();
    builder.set_not_after(&Asn1Time::from_unix(now + fake.not_after_days * 86_400).unwrap()).unwrap();
    if ca {
        builder.append_extension(BasicConstraints::new().critical().ca().build().unwrap()).unwrap();
    }
    builder.sign(issuer_key, MessageDigest::sha256()).unwrap();
    builder.build()
}

pub fn pem(cert: &X509) -> String {
    String::from_utf8(cert.to_pem().unwrap()).unwrap()
}

pub fn key_pem(key: &PKey<Private>) -> String {
    String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap()
}

pub fn push_certificate(fake: &Fake) -> PushCertificate {
    let (cert, key) = fake_certificate(fake);
    PushCertificate::from_pem(format!("{}{}", pem(&cert), key_pem(&key)).as_bytes()).unwrap()
}

/// A stand-in, and a client trusting it with the given certificate.
pub async fn standin_and_client(config: StandInConfig, certificate: PushCertificate) -> (StandIn, Client) {
    install_ring();
    let standin = StandIn::start(config).await.unwrap();
    let client = client_for(&standin, certificate, 1);
    (standin, client)
}

pub fn client_for(standin: &StandIn, certificate: PushCertificate, connections: usize) -> Client {
    let mut config = ClientConfig::new(certificate);
    config.base_url = standin.url();
    config.extra_roots_pem = Some(standin.ca_pem().as_bytes().to_vec());
    config.connections = connections;
    config.request_timeout = Duration::from_secs(10);
    Client::new(config).unwrap()
}

/// A 32-byte token in hex, distinct per `n`.
pub fn token(n: u32) -> String {
    format!("{:064x}", 0x5eed_0000_0000u64 + u64::from(n))
}

pub fn target(n: u32) -> PushTarget {
    PushTarget { token_hex: token(n), push_magic: format!("magic-{n}"), topic: TOPIC.to_owned() }
}

/// An answer to a hand-made request: status and the `reason` of its JSON body.
#[derive(Debug, PartialEq, Eq)]
pub struct RawAnswer {
    pub status: u16,
    pub reason: Option<String>,
}

/// Sends one hand-made HTTP/2 request to the stand-in over a fresh TLS connection presenting
/// `cert` and its `key`; for what the client refuses to send.
pub async fn raw(
    standin: &StandIn,
    cert: &X509,
    key: &PKey<Private>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> RawAnswer {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(standin.ca_pem().as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let key_der = rustls::pki_types::PrivateKeyDer::from_pem_slice(key_pem(key).as_bytes()).unwrap();
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![CertificateDer::from(cert.to_der().unwrap())], key_der)
        .unwrap();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(standin.addr()).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await.unwrap();
    tokio::spawn(connection);
    let mut request = http::Request::builder().method(method).uri(format!("{}{}", standin.url(), path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let reason = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("reason").and_then(|r| r.as_str()).map(str::to_owned));
    RawAnswer { status, reason }
}
