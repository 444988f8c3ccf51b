//! A PKCS#10 certification request that has been checked: it parses, its self-signature
//! verifies, and its key is one Custody will certify. Holding a [`CertificationRequest`] is the
//! proof of those checks.

use der::asn1::{BmpString, Ia5StringRef, PrintableStringRef, TeletexStringRef, Utf8StringRef};
use der::{Decode, Tag, Tagged};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::x509::{X509NameRef, X509Req, X509ReqRef};
use thiserror::Error;
use x509_cert::request::CertReq;

use crate::{ber, oid};

/// The smallest RSA key Custody certifies.
pub const MIN_RSA_BITS: u32 = 2048;
/// The smallest elliptic-curve key Custody certifies.
pub const MIN_EC_BITS: u32 = 256;

/// Why a certification request was refused.
#[derive(Debug, Error)]
pub enum CsrError {
    #[error("the certification request is not a DER-encoded PKCS#10 request: {0}")]
    Malformed(String),
    #[error("the certification request's self-signature does not verify")]
    BadSignature,
    #[error("the certification request's key is not acceptable: {0}")]
    UnacceptableKey(String),
    #[error("the challengePassword attribute is malformed: {0}")]
    BadChallengePassword(&'static str),
}

/// A verified PKCS#10 request (RFC 2986).
pub struct CertificationRequest {
    der: Vec<u8>,
    request: X509Req,
    public_key: PKey<Public>,
    challenge_password: Option<String>,
}

impl std::fmt::Debug for CertificationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The challenge is a secret: never print it.
        f.debug_struct("CertificationRequest")
            .field("subject", &crate::ca::name_to_string(self.subject()))
            .field("challenge_password", &self.challenge_password.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl CertificationRequest {
    /// Parses a PKCS#10 request (DER, or BER that re-encodes to DER), verifies its self-signature
    /// and checks its key: RSA of at least [`MIN_RSA_BITS`] or EC of at least [`MIN_EC_BITS`].
    pub fn from_der(input: &[u8]) -> Result<Self, CsrError> {
        let der = match CertReq::from_der(input) {
            Ok(_) => input.to_vec(),
            Err(_) => ber::to_der(input).map_err(|e| CsrError::Malformed(e.to_string()))?,
        };
        let parsed = CertReq::from_der(&der).map_err(|e| CsrError::Malformed(e.to_string()))?;
        let challenge_password = challenge_password(&parsed)?;

        let request = X509Req::from_der(&der).map_err(|e| CsrError::Malformed(e.to_string()))?;
        let public_key = request.public_key().map_err(|e| CsrError::UnacceptableKey(e.to_string()))?;
        if !request.verify(&public_key).unwrap_or(false) {
            return Err(CsrError::BadSignature);
        }
        check_key(&public_key)?;
        Ok(Self { der, request, public_key, challenge_password })
    }

    /// The request as DER.
    pub fn to_der(&self) -> &[u8] {
        &self.der
    }

    /// The PKCS#9 challengePassword (1.2.840.113549.1.9.7), if the request carries one.
    pub fn challenge_password(&self) -> Option<&str> {
        self.challenge_password.as_deref()
    }

    /// The subject the device asked for.
    pub fn subject(&self) -> &X509NameRef {
        self.request.subject_name()
    }

    /// The first commonName of the subject, if any.
    pub fn common_name(&self) -> Option<String> {
        let entry = self.subject().entries_by_nid(Nid::COMMONNAME).next()?;
        entry.data().to_string().ok()
    }

    /// The key to certify.
    pub fn public_key(&self) -> &PKey<Public> {
        &self.public_key
    }

    /// The OpenSSL request, for callers that need more than the accessors above.
    pub fn as_x509_req(&self) -> &X509ReqRef {
        &self.request
    }
}

fn check_key(key: &PKey<Public>) -> Result<(), CsrError> {
    match key.id() {
        Id::RSA if key.bits() >= MIN_RSA_BITS => Ok(()),
        Id::RSA => {
            Err(CsrError::UnacceptableKey(format!("RSA key of {} bits, at least {MIN_RSA_BITS} needed", key.bits())))
        }
        Id::EC if key.bits() >= MIN_EC_BITS => Ok(()),
        Id::EC => {
            Err(CsrError::UnacceptableKey(format!("EC key of {} bits, at least {MIN_EC_BITS} needed", key.bits())))
        }
        other => Err(CsrError::UnacceptableKey(format!("key type {other:?} is not RSA or EC"))),
    }
}

/// Reads challengePassword. It is a DirectoryString (PKCS#9): PrintableString and UTF8String are
/// what clients send; TeletexString, IA5String and BMPString are read too.
fn challenge_password(request: &CertReq) -> Result<Option<String>, CsrError> {
    let mut found = request.info.attributes.iter().filter(|a| a.oid == oid::CHALLENGE_PASSWORD);
    let Some(attribute) = found.next() else { return Ok(None) };
    if found.next().is_some() {
        return Err(CsrError::BadChallengePassword("more than one challengePassword attribute"));
    }
    let mut values = attribute.values.iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(CsrError::BadChallengePassword("the attribute must have exactly one value"));
    };
    let bytes = value.value();
    let text = match value.tag() {
        Tag::PrintableString => PrintableStringRef::new(bytes).map(|s| s.as_str().to_owned()),
        Tag::Utf8String => Utf8StringRef::new(bytes).map(|s| s.as_str().to_owned()),
        Tag::Ia5String => Ia5StringRef::new(bytes).map(|s| s.as_str().to_owned()),
        Tag::TeletexString => TeletexStringRef::new(bytes).map(|s| s.as_str().to_owned()),
        Tag::BmpString => BmpString::from_ucs2(bytes.to_vec()).map(|s| s.to_string()),
        _ => return Err(CsrError::BadChallengePassword("not a DirectoryString")),
    }
    .map_err(|_| CsrError::BadChallengePassword("invalid characters for its string type"))?;
    Ok(Some(text))
}
