//! A device's identity: its private key and the certificate for it (issued by the server's CA
//! through SCEP, or self-signed for runs without a server), and the `Mdm-Signature` it puts on
//! every message.
//!
//! Pure: no IO.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::{X509, X509Builder, X509Name, X509NameBuilder, X509Ref};

/// A private key and its certificate.
#[derive(Clone)]
pub struct Identity {
    key: PKey<Private>,
    certificate: X509,
    certificate_der: Vec<u8>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("subject", &self.certificate.subject_name()).finish_non_exhaustive()
    }
}

/// A fresh RSA key of `bits` bits.
pub fn rsa_key(bits: u32) -> Result<PKey<Private>, ErrorStack> {
    PKey::from_rsa(Rsa::generate(bits)?)
}

/// A name with one entry per `(short name, value)` pair, e.g. `[("O", "Custody"), ("CN", "x")]`.
pub fn x509_name(entries: &[(String, String)]) -> Result<X509Name, ErrorStack> {
    let mut name = X509NameBuilder::new()?;
    for (field, value) in entries {
        name.append_entry_by_text(field, value)?;
    }
    Ok(name.build())
}

/// A self-signed certificate for `key`, valid from an hour ago for `days` days.
pub fn self_signed_certificate(key: &PKey<Private>, subject: &X509Name, days: u32) -> Result<X509, ErrorStack> {
    let mut builder = X509Builder::new()?;
    builder.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(subject)?;
    builder.set_issuer_name(subject)?;
    builder.set_pubkey(key)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let (not_before, not_after) = (Asn1Time::from_unix(now - 3600)?, Asn1Time::days_from_now(days)?);
    builder.set_not_before(&not_before)?;
    builder.set_not_after(&not_after)?;
    builder.sign(key, MessageDigest::sha256())?;
    Ok(builder.build())
}

impl Identity {
    /// An identity from a key and the certificate issued for it.
    pub fn new(key: PKey<Private>, certificate: X509) -> Result<Identity, ErrorStack> {
        let certificate_der = certificate.to_der()?;
        Ok(Identity { key, certificate, certificate_der })
    }

    /// A fresh RSA-2048 key with a self-signed certificate named `common_name`: the identity of
    /// a device that skipped SCEP (ceiling runs), or a stranger's certificate (security tests).
    pub fn self_signed(common_name: &str) -> Result<Identity, ErrorStack> {
        Identity::self_signed_with_key(rsa_key(2048)?, common_name)
    }

    /// A self-signed certificate named `common_name` for an existing key.
    pub fn self_signed_with_key(key: PKey<Private>, common_name: &str) -> Result<Identity, ErrorStack> {
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
        let certificate = self_signed_certificate(&key, &name.build(), 365)?;
        Identity::new(key, certificate)
    }

    /// The private key.
    pub fn key(&self) -> &PKey<Private> {
        &self.key
    }

    /// The certificate.
    pub fn certificate(&self) -> &X509Ref {
        &self.certificate
    }

    /// The certificate, DER-encoded.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The `Mdm-Signature` header for `body`: the base64 of a detached CMS `SignedData` over
    /// the exact bytes, signed with SHA-256 by this identity, carrying its certificate.
    pub fn sign(&self, body: &[u8]) -> Result<String, ErrorStack> {
        let no_chain = Stack::new()?;
        let flags = Pkcs7Flags::DETACHED | Pkcs7Flags::BINARY | Pkcs7Flags::NOSMIMECAP;
        let signed = Pkcs7::sign(&self.certificate, &self.key, &no_chain, body, flags)?;
        Ok(STANDARD.encode(signed.to_der()?))
    }
}
