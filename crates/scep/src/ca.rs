//! Custody's certificate authority: one self-signed RSA CA that issues device identity
//! certificates, plus sealing of its private key for storage at rest.
//!
//! Time is always passed in (`now`, Unix seconds), so nothing here reads a clock.

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, PKeyRef, Private};
use openssl::rand::rand_bytes;
use openssl::rsa::Rsa;
use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Builder, X509Name, X509NameBuilder, X509NameRef, X509Ref, X509VerifyResult};
use thiserror::Error;

use crate::csr::CertificationRequest;

/// Size of the CA's RSA key. 3072 bits, as NIST SP 800-57 asks for keys used past 2030.
pub const CA_KEY_BITS: u32 = 3072;

/// Issued certificates start this long before `now`, so a device whose clock is a little
/// behind accepts its new certificate at once.
pub const CLOCK_SKEW_SECONDS: i64 = 5 * 60;

const SECONDS_PER_DAY: i64 = 24 * 60 * 60;

/// Why a CA operation failed.
#[derive(Debug, Error)]
pub enum CaError {
    #[error("the CA certificate cannot be read: {0}")]
    InvalidCertificate(String),
    #[error("the CA private key cannot be read: {0}")]
    InvalidKey(String),
    #[error("the CA key must be RSA (SCEP requesters encrypt to it)")]
    NotRsa,
    #[error("the private key does not belong to the CA certificate")]
    KeyMismatch,
    #[error("invalid subject: {0}")]
    InvalidSubject(String),
    #[error("invalid serial number: {0}")]
    InvalidSerial(&'static str),
    #[error("invalid validity: {0}")]
    InvalidValidity(&'static str),
    #[error("OpenSSL failed: {0}")]
    Crypto(#[from] ErrorStack),
}

/// Why a certificate was not accepted as one this CA issued and that is valid now.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("not a DER-encoded X.509 certificate")]
    Malformed,
    #[error("the certificate was not issued by this CA")]
    NotIssuedByThisCa,
    #[error("the certificate is not valid yet")]
    NotYetValid,
    #[error("the certificate has expired")]
    Expired,
}

/// Why a sealed key could not be opened.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SealError {
    #[error("not a sealed key (wrong format or version)")]
    NotSealed,
    #[error("the secret is wrong or the sealed key was altered")]
    WrongSecretOrCorrupted,
    #[error("OpenSSL failed: {0}")]
    Crypto(String),
}

/// A certificate serial number: positive, non-zero, at most 20 octets (RFC 5280, 4.1.2.2).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SerialNumber(Vec<u8>);

impl SerialNumber {
    /// A fresh random serial: 16 octets, 126 of whose bits are random (the top bit is clear so
    /// it is positive, the next is set so it always has 16 octets).
    pub fn random() -> Self {
        let mut bytes = vec![0u8; 16];
        rand_bytes(&mut bytes).expect("the OpenSSL random generator failed");
        bytes[0] = (bytes[0] & 0x7f) | 0x40;
        Self(bytes)
    }

    /// A serial from its big-endian magnitude; leading zero octets are dropped.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CaError> {
        let start = bytes.iter().take_while(|b| **b == 0).count();
        let magnitude = &bytes[start..];
        if magnitude.is_empty() {
            return Err(CaError::InvalidSerial("a serial number must not be zero"));
        }
        if magnitude.len() > 20 || (magnitude.len() == 20 && magnitude[0] & 0x80 != 0) {
            return Err(CaError::InvalidSerial("a serial number must fit in 20 octets"));
        }
        Ok(Self(magnitude.to_vec()))
    }

    /// A serial from a (non-zero) integer.
    pub fn from_u64(value: u64) -> Result<Self, CaError> {
        Self::from_bytes(&value.to_be_bytes())
    }

    /// The big-endian magnitude, without leading zeros.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lower-case hexadecimal, as `openssl x509 -serial` prints it (but lower case).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The serial of an existing certificate.
    pub fn of(cert: &X509Ref) -> Result<Self, CaError> {
        Self::from_bytes(&cert.serial_number().to_bn()?.to_vec())
    }

    fn to_asn1(&self) -> Result<Asn1Integer, ErrorStack> {
        BigNum::from_slice(&self.0)?.to_asn1_integer()
    }
}

impl std::fmt::Debug for SerialNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SerialNumber({})", self.to_hex())
    }
}

/// A certificate subject: a commonName and optional organization and organizational unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    common_name: String,
    organization: Option<String>,
    organizational_unit: Option<String>,
}

impl Subject {
    pub fn new(common_name: impl Into<String>) -> Self {
        Self { common_name: common_name.into(), organization: None, organizational_unit: None }
    }

    pub fn organization(mut self, organization: impl Into<String>) -> Self {
        self.organization = Some(organization.into());
        self
    }

    pub fn organizational_unit(mut self, unit: impl Into<String>) -> Self {
        self.organizational_unit = Some(unit.into());
        self
    }

    fn to_x509_name(&self) -> Result<X509Name, CaError> {
        let mut name = X509NameBuilder::new()?;
        let mut add = |nid: Nid, value: &str| {
            if value.is_empty() || value.len() > 64 {
                return Err(CaError::InvalidSubject(format!("{} must be 1 to 64 characters", nid.short_name()?)));
            }
            name.append_entry_by_nid(nid, value).map_err(CaError::from)
        };
        if let Some(o) = &self.organization {
            add(Nid::ORGANIZATIONNAME, o)?;
        }
        if let Some(ou) = &self.organizational_unit {
            add(Nid::ORGANIZATIONALUNITNAME, ou)?;
        }
        add(Nid::COMMONNAME, &self.common_name)?;
        Ok(name.build())
    }
}

/// What the CA puts into one device certificate besides the request's key.
#[derive(Clone, Debug)]
pub struct Issuance {
    pub serial: SerialNumber,
    /// `None` keeps the subject the device asked for (it must not be empty).
    pub subject: Option<Subject>,
    /// Unix seconds; the certificate is valid from `now - CLOCK_SKEW_SECONDS`.
    pub now: i64,
    /// The certificate is valid until `now + validity_days` days.
    pub validity_days: u32,
}

/// The CA: its certificate and its private key.
pub struct CertificateAuthority {
    certificate: X509,
    certificate_der: Vec<u8>,
    key: PKey<Private>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("subject", &name_to_string(self.certificate.subject_name()))
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Creates a new CA: an RSA key of [`CA_KEY_BITS`] and a self-signed certificate valid from
    /// `now` for `validity_years` years, with basicConstraints CA:TRUE, pathlen 0 (critical),
    /// subjectKeyIdentifier, and keyUsage (critical) keyCertSign, cRLSign, digitalSignature and
    /// keyEncipherment. The last two are there because SCEP uses the CA certificate itself to
    /// sign CertRep messages and as the recipient of requests' envelopes; some clients check
    /// keyUsage before signing or encrypting to it.
    pub fn generate(subject: &Subject, validity_years: u32, now: i64) -> Result<Self, CaError> {
        if validity_years == 0 || validity_years > 30 {
            return Err(CaError::InvalidValidity("a CA is valid for 1 to 30 years"));
        }
        let key = PKey::from_rsa(Rsa::generate(CA_KEY_BITS)?)?;
        let name = subject.to_x509_name()?;

        let mut builder = X509Builder::new()?;
        builder.set_version(2)?;
        let serial = SerialNumber::random().to_asn1()?;
        let not_before = Asn1Time::from_unix(now)?;
        let not_after = Asn1Time::from_unix(now + i64::from(validity_years) * 365 * SECONDS_PER_DAY)?;
        builder.set_serial_number(&serial)?;
        builder.set_subject_name(&name)?;
        builder.set_issuer_name(&name)?;
        builder.set_pubkey(&key)?;
        builder.set_not_before(&not_before)?;
        builder.set_not_after(&not_after)?;
        builder.append_extension(BasicConstraints::new().critical().ca().pathlen(0).build()?)?;
        builder.append_extension(
            KeyUsage::new().critical().key_cert_sign().crl_sign().digital_signature().key_encipherment().build()?,
        )?;
        let ski = SubjectKeyIdentifier::new().build(&builder.x509v3_context(None, None))?;
        builder.append_extension(ski)?;
        builder.sign(&key, MessageDigest::sha256())?;
        let certificate = builder.build();
        Self::new(certificate, key)
    }

    /// Loads a CA from its certificate (PEM) and private key (PKCS#8 or traditional PEM).
    pub fn from_pem(certificate_pem: &[u8], key_pem: &[u8]) -> Result<Self, CaError> {
        let certificate = X509::from_pem(certificate_pem).map_err(|e| CaError::InvalidCertificate(e.to_string()))?;
        let key = PKey::private_key_from_pem(key_pem).map_err(|e| CaError::InvalidKey(e.to_string()))?;
        Self::new(certificate, key)
    }

    /// Loads a CA from its certificate (DER) and private key (PKCS#8 DER).
    pub fn from_der(certificate_der: &[u8], key_pkcs8_der: &[u8]) -> Result<Self, CaError> {
        let certificate = X509::from_der(certificate_der).map_err(|e| CaError::InvalidCertificate(e.to_string()))?;
        let key = PKey::private_key_from_pkcs8(key_pkcs8_der).map_err(|e| CaError::InvalidKey(e.to_string()))?;
        Self::new(certificate, key)
    }

    fn new(certificate: X509, key: PKey<Private>) -> Result<Self, CaError> {
        if key.id() != Id::RSA {
            return Err(CaError::NotRsa);
        }
        let public = certificate.public_key().map_err(|e| CaError::InvalidCertificate(e.to_string()))?;
        if !public.public_eq(&key) {
            return Err(CaError::KeyMismatch);
        }
        let certificate_der = certificate.to_der()?;
        Ok(Self { certificate, certificate_der, key })
    }

    /// The CA certificate.
    pub fn certificate(&self) -> &X509Ref {
        &self.certificate
    }

    /// The CA certificate as DER (the GetCACert body).
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The CA certificate as PEM.
    pub fn certificate_pem(&self) -> Result<Vec<u8>, CaError> {
        Ok(self.certificate.to_pem()?)
    }

    /// SHA-256 of the CA certificate's DER (what `scepclient -ca-fingerprint` and profiles pin).
    pub fn fingerprint_sha256(&self) -> Result<Vec<u8>, CaError> {
        Ok(self.certificate.digest(MessageDigest::sha256())?.to_vec())
    }

    /// The private key as unencrypted PKCS#8 DER. Seal it ([`seal_key`]) before storing it.
    pub fn private_key_pkcs8_der(&self) -> Result<Vec<u8>, CaError> {
        Ok(self.key.private_key_to_pkcs8()?)
    }

    /// The private key as unencrypted PKCS#8 PEM. Seal it ([`seal_key`]) before storing it.
    pub fn private_key_pkcs8_pem(&self) -> Result<Vec<u8>, CaError> {
        Ok(self.key.private_key_to_pem_pkcs8()?)
    }

    pub(crate) fn private_key(&self) -> &PKeyRef<Private> {
        &self.key
    }

    /// Issues a device identity certificate for a verified request: the request's key, its
    /// subject (or `issuance.subject`), basicConstraints CA:FALSE (critical), keyUsage
    /// digitalSignature and keyEncipherment (critical), extendedKeyUsage clientAuth,
    /// subjectKeyIdentifier and authorityKeyIdentifier; signed with SHA-256. Returns DER.
    ///
    /// Extensions the request asks for (such as subjectAltName) are not copied.
    pub fn issue(&self, request: &CertificationRequest, issuance: &Issuance) -> Result<Vec<u8>, CaError> {
        if issuance.validity_days == 0 || issuance.validity_days > 3650 {
            return Err(CaError::InvalidValidity("a device certificate is valid for 1 to 3650 days"));
        }
        let subject = match &issuance.subject {
            Some(subject) => subject.to_x509_name()?,
            None => copy_name(request.subject())?,
        };
        if subject.entries().next().is_none() {
            return Err(CaError::InvalidSubject("the request has an empty subject and none was given".into()));
        }

        let mut builder = X509Builder::new()?;
        builder.set_version(2)?;
        let serial = issuance.serial.to_asn1()?;
        let not_before = Asn1Time::from_unix(issuance.now - CLOCK_SKEW_SECONDS)?;
        let not_after = Asn1Time::from_unix(issuance.now + i64::from(issuance.validity_days) * SECONDS_PER_DAY)?;
        builder.set_serial_number(&serial)?;
        builder.set_subject_name(&subject)?;
        builder.set_issuer_name(self.certificate.subject_name())?;
        builder.set_pubkey(request.public_key())?;
        builder.set_not_before(&not_before)?;
        builder.set_not_after(&not_after)?;
        builder.append_extension(BasicConstraints::new().critical().build()?)?;
        builder.append_extension(KeyUsage::new().critical().digital_signature().key_encipherment().build()?)?;
        builder.append_extension(ExtendedKeyUsage::new().client_auth().build()?)?;
        let ski = SubjectKeyIdentifier::new().build(&builder.x509v3_context(Some(&self.certificate), None))?;
        builder.append_extension(ski)?;
        let aki =
            AuthorityKeyIdentifier::new().keyid(true).build(&builder.x509v3_context(Some(&self.certificate), None))?;
        builder.append_extension(aki)?;
        builder.sign(&self.key, MessageDigest::sha256())?;
        Ok(builder.build().to_der()?)
    }

    /// Checks that `certificate_der` was issued (signed) by this CA and is valid at `now`.
    /// Revocation is the caller's to check. Returns the parsed certificate.
    pub fn verify_issued(&self, certificate_der: &[u8], now: i64) -> Result<X509, VerifyError> {
        let certificate = X509::from_der(certificate_der).map_err(|_| VerifyError::Malformed)?;
        if !is_issued_by(self, &certificate) {
            return Err(VerifyError::NotIssuedByThisCa);
        }
        let now = Asn1Time::from_unix(now).map_err(|_| VerifyError::Malformed)?;
        if certificate.not_before() > now {
            return Err(VerifyError::NotYetValid);
        }
        if certificate.not_after() < now {
            return Err(VerifyError::Expired);
        }
        Ok(certificate)
    }
}

/// Whether `certificate` names this CA as its issuer and carries a valid signature by the CA's
/// key. Says nothing about validity dates or revocation (see
/// [`CertificateAuthority::verify_issued`]).
pub fn is_issued_by(ca: &CertificateAuthority, certificate: &X509Ref) -> bool {
    if ca.certificate.issued(certificate) != X509VerifyResult::OK {
        return false;
    }
    match ca.certificate.public_key() {
        Ok(key) => certificate.verify(&key).unwrap_or(false),
        Err(_) => false,
    }
}

const SEAL_MAGIC: &[u8; 4] = b"CSK1";
const SEAL_NONCE_LEN: usize = 12;
const SEAL_TAG_LEN: usize = 16;

/// Encrypts a private key (any bytes, typically PKCS#8 PEM) for storage with AES-256-GCM under
/// `secret`, with a fresh random nonce. Layout: `"CSK1" || nonce(12) || ciphertext || tag(16)`;
/// the magic is authenticated too.
pub fn seal_key(key_pem: &[u8], secret: &[u8; 32]) -> Result<Vec<u8>, SealError> {
    let crypto = |e: ErrorStack| SealError::Crypto(e.to_string());
    let mut nonce = [0u8; SEAL_NONCE_LEN];
    rand_bytes(&mut nonce).map_err(crypto)?;
    let mut tag = [0u8; SEAL_TAG_LEN];
    let ciphertext =
        encrypt_aead(Cipher::aes_256_gcm(), secret, Some(&nonce), SEAL_MAGIC, key_pem, &mut tag).map_err(crypto)?;
    let mut sealed = Vec::with_capacity(SEAL_MAGIC.len() + SEAL_NONCE_LEN + ciphertext.len() + SEAL_TAG_LEN);
    sealed.extend_from_slice(SEAL_MAGIC);
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&ciphertext);
    sealed.extend_from_slice(&tag);
    Ok(sealed)
}

/// Reverses [`seal_key`]. A wrong secret or an altered byte is [`SealError::WrongSecretOrCorrupted`].
pub fn open_key(sealed: &[u8], secret: &[u8; 32]) -> Result<Vec<u8>, SealError> {
    let Some(rest) = sealed.strip_prefix(SEAL_MAGIC) else { return Err(SealError::NotSealed) };
    if rest.len() < SEAL_NONCE_LEN + SEAL_TAG_LEN {
        return Err(SealError::NotSealed);
    }
    let (nonce, rest) = rest.split_at(SEAL_NONCE_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - SEAL_TAG_LEN);
    decrypt_aead(Cipher::aes_256_gcm(), secret, Some(nonce), SEAL_MAGIC, ciphertext, tag)
        .map_err(|_| SealError::WrongSecretOrCorrupted)
}

/// A one-line rendering of a name ("O=..., CN=...") for logs and debugging.
pub fn name_to_string(name: &X509NameRef) -> String {
    name.entries()
        .map(|entry| {
            let key = entry.object().nid().short_name().unwrap_or("?");
            let value = entry.data().to_string().unwrap_or_else(|_| "?".into());
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn copy_name(name: &X509NameRef) -> Result<X509Name, CaError> {
    Ok(X509Name::from_der(&name.to_der()?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_numbers_are_positive_and_bounded() {
        let random = SerialNumber::random();
        assert_eq!(random.as_bytes().len(), 16);
        assert_eq!(random.as_bytes()[0] & 0xc0, 0x40);
        assert_ne!(SerialNumber::random(), random);
        assert_eq!(SerialNumber::from_u64(0x0102).unwrap().as_bytes(), &[1, 2]);
        assert_eq!(SerialNumber::from_bytes(&[0, 0, 7]).unwrap().to_hex(), "07");
        assert!(SerialNumber::from_u64(0).is_err());
        assert!(SerialNumber::from_bytes(&[0x80; 20]).is_err());
        assert!(SerialNumber::from_bytes(&[0x7f; 20]).is_ok());
        assert!(SerialNumber::from_bytes(&[1; 21]).is_err());
    }

    #[test]
    fn sealed_input_that_is_not_sealed_is_refused() {
        let secret = [7u8; 32];
        assert_eq!(open_key(b"-----BEGIN PRIVATE KEY-----", &secret), Err(SealError::NotSealed));
        assert_eq!(open_key(b"CSK1short", &secret), Err(SealError::NotSealed));
        let mut sealed = seal_key(b"key", &secret).unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(open_key(&sealed, &secret), Err(SealError::WrongSecretOrCorrupted));
    }
}
