//! The MDM push certificate: the TLS client identity Custody presents to APNs.
//!
//! Apple issues it (through the Apple Push Certificates Portal) for a signed CSR; its subject
//! carries the push topic, `com.apple.mgmt.External.<uuid>`, in the UID attribute
//! (0.9.2342.19200300.100.1.1). Administrators bring it as PEM (certificate and private key in
//! one file, in either order) or as the PKCS#12 file Keychain Access exports.
//!
//! OpenSSL parses the X.509 and PKCS#12 structures; the result is handed to rustls as DER.
//! Nothing here does network IO.

use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509, X509NameRef};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Why a push certificate could not be loaded. Each message is meant for the administrator who
/// uploaded the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("the file holds no certificate")]
    NoCertificate,
    #[error("the file holds no private key")]
    NoPrivateKey,
    #[error("the private key is encrypted; give an unencrypted PEM key, or a PKCS#12 file with its password")]
    EncryptedPemKey,
    #[error("the private key does not belong to any certificate in the file")]
    KeyMismatch,
    #[error(
        "the certificate has no push topic: its subject ({subject}) has no UID attribute; \
         is this the MDM push certificate from Apple?"
    )]
    NoTopic { subject: String },
    #[error("the push topic in the certificate is not usable as an apns-topic header: {topic:?}")]
    BadTopic { topic: String },
    #[error("the PKCS#12 file could not be opened: wrong password")]
    WrongPassword,
    #[error(
        "the PKCS#12 file uses an encryption this OpenSSL cannot read ({detail}); \
         the legacy provider (RC2/3DES, as older Keychain exports use) could not help: {legacy}"
    )]
    UnsupportedPkcs12 { detail: String, legacy: String },
    #[error("the file could not be read: {detail}")]
    Malformed { detail: String },
}

impl CertificateError {
    fn malformed(what: &str, error: impl fmt::Display) -> Self {
        CertificateError::Malformed { detail: format!("{what}: {error}") }
    }
}

/// An APNs topic, as read from the push certificate (`com.apple.mgmt.External.<uuid>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Topic(String);

impl Topic {
    /// A topic as given (for example from an enrollment record). It must be a visible-ASCII
    /// string, as it travels in the `apns-topic` header.
    pub fn parse(topic: &str) -> Option<Topic> {
        let valid = !topic.is_empty() && topic.bytes().all(|b| b.is_ascii_graphic());
        valid.then(|| Topic(topic.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an X.509 certificate says about itself, for display and for the topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertificateFacts {
    pub subject: String,
    pub topic: Option<String>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl CertificateFacts {
    #[cfg(feature = "standin")]
    pub(crate) fn from_der(der: &[u8]) -> Result<Self, CertificateError> {
        let cert = X509::from_der(der).map_err(|e| CertificateError::malformed("certificate", e))?;
        Self::of(&cert)
    }

    fn of(cert: &X509) -> Result<Self, CertificateError> {
        Ok(CertificateFacts {
            subject: display_name(cert.subject_name()),
            topic: uid(cert.subject_name()),
            not_before: system_time(cert.not_before())?,
            not_after: system_time(cert.not_after())?,
        })
    }
}

/// The MDM push certificate with its private key, ready to be the TLS client identity.
pub struct PushCertificate {
    topic: Topic,
    facts: CertificateFacts,
    fingerprint: String,
    /// The leaf first, then any intermediates found beside it.
    chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl PushCertificate {
    /// Loads a certificate and its private key from PEM: blocks in any order, an RSA or EC key
    /// in PKCS#8, PKCS#1 or SEC1 form. Extra certificates (an intermediate) are sent along; the
    /// leaf is the one the key belongs to.
    pub fn from_pem(pem: &[u8]) -> Result<PushCertificate, CertificateError> {
        let mut certs = Vec::new();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| CertificateError::malformed("PEM certificate", e))?;
            certs.push(X509::from_der(&cert).map_err(|e| CertificateError::malformed("certificate", e))?);
        }
        if certs.is_empty() {
            return Err(CertificateError::NoCertificate);
        }
        let key = match PrivateKeyDer::from_pem_slice(pem) {
            Ok(key) => key,
            Err(_) if contains(pem, b"ENCRYPTED PRIVATE KEY") || contains(pem, b"Proc-Type: 4,ENCRYPTED") => {
                return Err(CertificateError::EncryptedPemKey);
            }
            Err(rustls::pki_types::pem::Error::NoItemsFound) => return Err(CertificateError::NoPrivateKey),
            Err(e) => return Err(CertificateError::malformed("PEM private key", e)),
        };
        let key =
            PKey::private_key_from_der(key.secret_der()).map_err(|e| CertificateError::malformed("private key", e))?;
        Self::assemble(certs, key)
    }

    /// Loads a PKCS#12 (`.p12`) file as Keychain Access exports it. Files encrypted with the
    /// old RC2/3DES algorithms need OpenSSL's legacy provider, which is loaded when needed.
    pub fn from_pkcs12(der: &[u8], password: &str) -> Result<PushCertificate, CertificateError> {
        let pkcs12 = Pkcs12::from_der(der).map_err(|e| CertificateError::malformed("PKCS#12", e))?;
        let parsed = match pkcs12.parse2(password) {
            Ok(parsed) => parsed,
            Err(first) => {
                let detail = first.to_string();
                if detail.contains("mac verify failure") {
                    return Err(CertificateError::WrongPassword);
                }
                if let Err(legacy) = load_legacy_provider() {
                    return Err(CertificateError::UnsupportedPkcs12 { detail, legacy });
                }
                pkcs12.parse2(password).map_err(|second| CertificateError::UnsupportedPkcs12 {
                    detail: second.to_string(),
                    legacy: "loaded, and still unreadable".to_owned(),
                })?
            }
        };
        let key = parsed.pkey.ok_or(CertificateError::NoPrivateKey)?;
        let mut certs: Vec<X509> = parsed.cert.into_iter().collect();
        if let Some(ca) = parsed.ca {
            certs.extend(ca);
        }
        if certs.is_empty() {
            return Err(CertificateError::NoCertificate);
        }
        Self::assemble(certs, key)
    }

    fn assemble(mut certs: Vec<X509>, key: PKey<Private>) -> Result<PushCertificate, CertificateError> {
        let leaf_at = certs
            .iter()
            .position(|cert| cert.public_key().is_ok_and(|public| public.public_eq(&key)))
            .ok_or(CertificateError::KeyMismatch)?;
        let leaf = certs.remove(leaf_at);
        let facts = CertificateFacts::of(&leaf)?;
        let topic = match &facts.topic {
            None => return Err(CertificateError::NoTopic { subject: facts.subject }),
            Some(topic) => Topic::parse(topic).ok_or_else(|| CertificateError::BadTopic { topic: topic.clone() })?,
        };
        let fingerprint = leaf
            .digest(MessageDigest::sha256())
            .map_err(|e| CertificateError::malformed("certificate digest", e))?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut chain = Vec::with_capacity(certs.len() + 1);
        for cert in std::iter::once(&leaf).chain(certs.iter()) {
            chain.push(CertificateDer::from(cert.to_der().map_err(|e| CertificateError::malformed("certificate", e))?));
        }
        let key = PrivatePkcs8KeyDer::from(
            key.private_key_to_pkcs8().map_err(|e| CertificateError::malformed("private key", e))?,
        );
        // Refuse here, not at the first push, a key that ring cannot sign with.
        rustls::crypto::ring::default_provider()
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(key.clone_key()))
            .map_err(|e| CertificateError::malformed("private key", e))?;
        Ok(PushCertificate { topic, facts, fingerprint, chain, key })
    }

    /// The APNs topic this certificate may push to.
    pub fn topic(&self) -> &Topic {
        &self.topic
    }

    /// The subject, one-line, e.g. `UID=com.apple.mgmt.External.…, CN=APSP:…, C=US`.
    pub fn subject(&self) -> &str {
        &self.facts.subject
    }

    pub fn not_before(&self) -> SystemTime {
        self.facts.not_before
    }

    /// When the certificate expires; Apple's push certificates last a year and must be renewed
    /// (with the same Apple ID, so the topic stays the same) before then.
    pub fn not_after(&self) -> SystemTime {
        self.facts.not_after
    }

    /// The SHA-256 fingerprint of the leaf certificate, lower-case hex.
    pub fn fingerprint_sha256(&self) -> &str {
        &self.fingerprint
    }

    /// The leaf and any intermediates, DER, as sent in the TLS handshake.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The chain (leaf first) and the private key as PEM, to store (the key sealed) and load
    /// again with [`PushCertificate::from_pem`].
    pub fn to_pem_parts(&self) -> Result<(Vec<u8>, Vec<u8>), CertificateError> {
        let mut chain = Vec::new();
        for der in &self.chain {
            let cert = openssl::x509::X509::from_der(der).map_err(|e| CertificateError::malformed("certificate", e))?;
            chain.extend(cert.to_pem().map_err(|e| CertificateError::malformed("certificate", e))?);
        }
        let key = PKey::private_key_from_der(self.key.secret_pkcs8_der())
            .map_err(|e| CertificateError::malformed("private key", e))?;
        let key = key.private_key_to_pem_pkcs8().map_err(|e| CertificateError::malformed("private key", e))?;
        Ok((chain, key))
    }

    pub(crate) fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

impl Clone for PushCertificate {
    fn clone(&self) -> Self {
        PushCertificate {
            topic: self.topic.clone(),
            facts: self.facts.clone(),
            fingerprint: self.fingerprint.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl fmt::Debug for PushCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushCertificate")
            .field("topic", &self.topic)
            .field("subject", &self.facts.subject)
            .field("not_after", &self.facts.not_after)
            .field("fingerprint_sha256", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// Loads OpenSSL's legacy provider once per process (keeping the default one), for PKCS#12
/// files encrypted with RC2 or 3DES.
fn load_legacy_provider() -> Result<(), String> {
    static LEGACY: OnceLock<Result<(), String>> = OnceLock::new();
    LEGACY
        .get_or_init(|| {
            let provider = openssl::provider::Provider::try_load(None, "legacy", true).map_err(|e| e.to_string())?;
            // Unloading it would break later reads; it lives as long as the process.
            std::mem::forget(provider);
            Ok(())
        })
        .clone()
}

fn uid(name: &X509NameRef) -> Option<String> {
    let entry = name.entries_by_nid(Nid::USERID).next()?;
    entry.data().to_string().ok()
}

fn display_name(name: &X509NameRef) -> String {
    name.entries()
        .map(|entry| {
            let key =
                entry.object().nid().short_name().map(str::to_owned).unwrap_or_else(|_| entry.object().to_string());
            let value = entry.data().to_string().unwrap_or_else(|_| "?".to_owned());
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn system_time(time: &Asn1TimeRef) -> Result<SystemTime, CertificateError> {
    let epoch = Asn1Time::from_unix(0).map_err(|e| CertificateError::malformed("time", e))?;
    let diff = epoch.diff(time).map_err(|e| CertificateError::malformed("certificate validity", e))?;
    let seconds = i64::from(diff.days) * 86_400 + i64::from(diff.secs);
    Ok(if seconds >= 0 {
        UNIX_EPOCH + Duration::from_secs(seconds.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs())
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}
