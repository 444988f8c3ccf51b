//! Decoding of a SCEP `PKIOperation` request (RFC 8894, section 3): the outer signed layer
//! first ([`PkiMessage::decode`]: signature, messageType, transactionID, senderNonce, signer
//! certificate), then the inner envelope with the CA key ([`PkiMessage::open`]).
//!
//! The split decides how a failure is answered. A message that fails [`PkiMessage::decode`] is
//! not authenticated and gets no CertRep (answer HTTP 400). Once decoded, every later failure
//! (the envelope, the request, the challenge, policy) is answered with a signed FAILURE CertRep
//! carrying [`ScepError::fail_info`] or the caller's own [`FailInfo`].

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use cms::cert::IssuerAndSerialNumber;
use der::asn1::{Any, Ia5StringRef, OctetString, OctetStringRef, PrintableStringRef, Utf8StringRef};
use der::{Decode, Encode, Sequence, Tag, Tagged};
use openssl::rand::rand_bytes;
use openssl::x509::{X509Name, X509Ref};
use thiserror::Error;
use x509_cert::name::Name;

use crate::ca::{CertificateAuthority, SerialNumber};
use crate::csr::{CertificationRequest, CsrError};
use crate::envelope::{self, ContentEncryption};
use crate::oid;
use crate::response::FailInfo;
use crate::signed::{self, Digest};

/// Why a SCEP message could not be used.
#[derive(Debug, Error)]
pub enum ScepError {
    #[error("not a CMS SignedData message: {0}")]
    NotCms(String),
    #[error("malformed SCEP message: {0}")]
    Malformed(String),
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    #[error("the message's signature does not verify with the included signer certificate")]
    BadSignature,
    #[error("the signed messageDigest or contentType does not match the content")]
    BadMessageDigest,
    #[error("the signer's certificate is not included in the message")]
    SignerCertificateMissing,
    #[error("the SCEP attribute {0} is missing")]
    MissingAttribute(&'static str),
    #[error("unsupported SCEP message type {0}")]
    UnsupportedMessageType(String),
    #[error("the pkcsPKIEnvelope is not encrypted to this CA's certificate")]
    NotEncryptedToThisCa,
    #[error("the pkcsPKIEnvelope cannot be decrypted with the CA key")]
    CannotDecrypt,
    #[error("bad certification request: {0}")]
    BadCsr(#[from] CsrError),
    #[error("the message parameter is not base64")]
    BadBase64,
    #[error("internal error while building a SCEP message: {0}")]
    Internal(String),
}

impl ScepError {
    /// The failInfo a FAILURE CertRep should carry for this error.
    pub fn fail_info(&self) -> FailInfo {
        match self {
            ScepError::UnsupportedAlgorithm(_) | ScepError::BadCsr(CsrError::UnacceptableKey(_)) => FailInfo::BadAlg,
            ScepError::BadSignature
            | ScepError::BadMessageDigest
            | ScepError::NotEncryptedToThisCa
            | ScepError::CannotDecrypt
            | ScepError::BadCsr(CsrError::BadSignature) => FailInfo::BadMessageCheck,
            ScepError::SignerCertificateMissing => FailInfo::BadCertId,
            ScepError::NotCms(_)
            | ScepError::Malformed(_)
            | ScepError::MissingAttribute(_)
            | ScepError::UnsupportedMessageType(_)
            | ScepError::BadCsr(_)
            | ScepError::BadBase64
            | ScepError::Internal(_) => FailInfo::BadRequest,
        }
    }
}

/// SCEP message types (RFC 8894, section 3.2.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// 3: the CA's response.
    CertRep,
    /// 17: renewal of an existing certificate, signed by it.
    RenewalReq,
    /// 19: initial enrollment, usually signed by a self-signed certificate.
    PkcsReq,
    /// 20: CertPoll (GetCertInitial): polling for a PENDING request.
    CertPoll,
    /// 21: fetch a certificate by issuer and serial.
    GetCert,
    /// 22: fetch a CRL.
    GetCrl,
}

impl MessageType {
    /// The number carried (as a PrintableString) in the messageType attribute.
    pub fn code(self) -> u8 {
        match self {
            MessageType::CertRep => 3,
            MessageType::RenewalReq => 17,
            MessageType::PkcsReq => 19,
            MessageType::CertPoll => 20,
            MessageType::GetCert => 21,
            MessageType::GetCrl => 22,
        }
    }

    /// The request types a CA accepts; `CertRep` and unknown numbers are `None`.
    fn request_from_code(code: &str) -> Option<Self> {
        Some(match code {
            "17" => MessageType::RenewalReq,
            "19" => MessageType::PkcsReq,
            "20" => MessageType::CertPoll,
            "21" => MessageType::GetCert,
            "22" => MessageType::GetCrl,
            _ => return None,
        })
    }
}

/// The requester's transaction identifier, echoed in the reply with its original string type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionId {
    text: String,
    tag: Tag,
}

impl TransactionId {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn from_any(value: &Any) -> Result<Self, ScepError> {
        let bad = || ScepError::Malformed("transactionID is not a printable string".into());
        let bytes = value.value();
        let text = match value.tag() {
            Tag::PrintableString => PrintableStringRef::new(bytes).map_err(|_| bad())?.as_str().to_owned(),
            Tag::Utf8String => Utf8StringRef::new(bytes).map_err(|_| bad())?.as_str().to_owned(),
            Tag::Ia5String => Ia5StringRef::new(bytes).map_err(|_| bad())?.as_str().to_owned(),
            _ => return Err(bad()),
        };
        if text.is_empty() || text.len() > 256 {
            return Err(ScepError::Malformed("transactionID must be 1 to 256 characters".into()));
        }
        Ok(Self { text, tag: value.tag() })
    }

    pub(crate) fn to_any(&self) -> Result<Any, der::Error> {
        Any::new(self.tag, self.text.as_bytes())
    }
}

/// A senderNonce or recipientNonce: random octets (16 of them when Custody makes one).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Nonce(Vec<u8>);

impl Nonce {
    /// 16 fresh random octets.
    pub fn random() -> Self {
        let mut bytes = vec![0u8; 16];
        rand_bytes(&mut bytes).expect("the OpenSSL random generator failed");
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn from_any(value: &Any, name: &'static str) -> Result<Self, ScepError> {
        let octets = value
            .decode_as::<OctetStringRef>()
            .map_err(|_| ScepError::Malformed(format!("{name} is not an OCTET STRING")))?;
        let bytes = octets.as_bytes();
        if !(8..=64).contains(&bytes.len()) {
            return Err(ScepError::Malformed(format!("{name} must be 8 to 64 octets")));
        }
        Ok(Self(bytes.to_vec()))
    }

    pub(crate) fn to_any(&self) -> Result<Any, der::Error> {
        Any::encode_from(&OctetString::new(self.0.clone())?)
    }
}

impl std::fmt::Debug for Nonce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Nonce(")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// A SCEP request whose outer signature has been verified. Its envelope is still sealed.
pub struct PkiMessage {
    message_type: MessageType,
    transaction_id: TransactionId,
    sender_nonce: Nonce,
    signer: openssl::x509::X509,
    digest: Digest,
    envelope: Vec<u8>,
}

impl std::fmt::Debug for PkiMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PkiMessage")
            .field("message_type", &self.message_type)
            .field("transaction_id", &self.transaction_id.text)
            .field("sender_nonce", &self.sender_nonce)
            .field("signer", &crate::ca::name_to_string(self.signer.subject_name()))
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

impl PkiMessage {
    /// Decodes a `PKIOperation` body (DER, or BER that re-encodes to DER): verifies the
    /// SignedData's signature with the signer certificate the message includes (which is not
    /// trusted by that: renewals must be checked with [`crate::is_issued_by`]), and reads
    /// messageType, transactionID and senderNonce.
    pub fn decode(input: &[u8]) -> Result<Self, ScepError> {
        let verified = signed::verify(input)?;
        let attributes = &verified.attributes;

        let message_type =
            signed::single_value(attributes, oid::MESSAGE_TYPE)?.ok_or(ScepError::MissingAttribute("messageType"))?;
        let code = message_type
            .decode_as::<PrintableStringRef>()
            .map_err(|_| ScepError::Malformed("messageType is not a PrintableString".into()))?;
        let message_type = MessageType::request_from_code(code.as_str())
            .ok_or_else(|| ScepError::UnsupportedMessageType(code.as_str().to_owned()))?;

        let transaction_id = signed::single_value(attributes, oid::TRANSACTION_ID)?
            .ok_or(ScepError::MissingAttribute("transactionID"))?;
        let transaction_id = TransactionId::from_any(transaction_id)?;
        let sender_nonce =
            signed::single_value(attributes, oid::SENDER_NONCE)?.ok_or(ScepError::MissingAttribute("senderNonce"))?;
        let sender_nonce = Nonce::from_any(sender_nonce, "senderNonce")?;

        if verified.content.is_empty() {
            return Err(ScepError::Malformed("the message has no pkcsPKIEnvelope".into()));
        }
        Ok(Self {
            message_type,
            transaction_id,
            sender_nonce,
            signer: verified.signer,
            digest: verified.digest,
            envelope: verified.content,
        })
    }

    /// Decodes the `message` parameter of `GET ...?operation=PKIOperation&message=...`, as
    /// sent or as already percent-decoded (see [`decode_message_parameter`]).
    pub fn decode_base64(parameter: &str) -> Result<Self, ScepError> {
        Self::decode(&decode_message_parameter(parameter)?)
    }

    pub fn message_type(&self) -> MessageType {
        self.message_type
    }

    pub fn transaction_id(&self) -> &TransactionId {
        &self.transaction_id
    }

    pub fn sender_nonce(&self) -> &Nonce {
        &self.sender_nonce
    }

    /// The digest the requester signed with; the reply uses the same.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The certificate whose key signed the message: self-signed for a first enrollment, an
    /// issued certificate for a renewal. Its key is the one the reply is encrypted to.
    pub fn signer_certificate(&self) -> &X509Ref {
        &self.signer
    }

    /// [`Self::signer_certificate`] as DER.
    pub fn signer_certificate_der(&self) -> Vec<u8> {
        self.signer.to_der().unwrap_or_default()
    }

    /// Whether the signer certificate is self-issued and self-signed.
    pub fn signer_is_self_signed(&self) -> bool {
        self.signer.issued(&self.signer) == openssl::x509::X509VerifyResult::OK
            && self.signer.public_key().and_then(|key| self.signer.verify(&key)).unwrap_or(false)
    }

    /// The cipher the requester encrypted its envelope with, read without decrypting. A caller
    /// may refuse [`ContentEncryption::is_weak`] ciphers by policy.
    pub fn content_encryption(&self) -> Result<ContentEncryption, ScepError> {
        envelope::content_encryption(&self.envelope)
    }

    /// The cipher the reply's envelope will use: the request's AES, otherwise DES-EDE3-CBC.
    pub fn reply_encryption(&self) -> ContentEncryption {
        self.content_encryption().map_or(ContentEncryption::DesEde3Cbc, ContentEncryption::for_reply)
    }

    /// Decrypts the pkcsPKIEnvelope with the CA key and parses what it holds.
    pub fn open(&self, ca: &CertificateAuthority) -> Result<Request, ScepError> {
        let (content, _) = envelope::open(&self.envelope, ca)?;
        Ok(match self.message_type {
            MessageType::PkcsReq => Request::PkcsReq(CertificationRequest::from_der(&content)?),
            MessageType::RenewalReq => Request::RenewalReq(CertificationRequest::from_der(&content)?),
            MessageType::CertPoll => {
                let body = IssuerAndSubject::from_der(&content)
                    .map_err(|e| ScepError::Malformed(format!("CertPoll content: {e}")))?;
                Request::CertPoll { issuer: to_x509_name(&body.issuer)?, subject: to_x509_name(&body.subject)? }
            }
            MessageType::GetCert | MessageType::GetCrl => {
                let body = IssuerAndSerialNumber::from_der(&content)
                    .map_err(|e| ScepError::Malformed(format!("GetCert/GetCRL content: {e}")))?;
                let issuer = to_x509_name(&body.issuer)?;
                let serial = SerialNumber::from_bytes(body.serial_number.as_bytes())
                    .map_err(|e| ScepError::Malformed(e.to_string()))?;
                if self.message_type == MessageType::GetCert {
                    Request::GetCert { issuer, serial }
                } else {
                    Request::GetCrl { issuer, serial }
                }
            }
            MessageType::CertRep => return Err(ScepError::UnsupportedMessageType("3".into())),
        })
    }
}

/// What an opened request asks for.
pub enum Request {
    /// PKCSReq (19): a first enrollment. Check the challenge password before issuing.
    PkcsReq(CertificationRequest),
    /// RenewalReq (17): signed by an existing certificate ([`PkiMessage::signer_certificate`]),
    /// which must be one this CA issued, still valid, and not revoked.
    RenewalReq(CertificationRequest),
    /// CertPoll / GetCertInitial (20): polling for a pending request.
    CertPoll { issuer: X509Name, subject: X509Name },
    /// GetCert (21).
    GetCert { issuer: X509Name, serial: SerialNumber },
    /// GetCRL (22).
    GetCrl { issuer: X509Name, serial: SerialNumber },
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = crate::ca::name_to_string;
        match self {
            Request::PkcsReq(csr) => f.debug_tuple("PkcsReq").field(csr).finish(),
            Request::RenewalReq(csr) => f.debug_tuple("RenewalReq").field(csr).finish(),
            Request::CertPoll { issuer, subject } => {
                f.debug_struct("CertPoll").field("issuer", &name(issuer)).field("subject", &name(subject)).finish()
            }
            Request::GetCert { issuer, serial } => {
                f.debug_struct("GetCert").field("issuer", &name(issuer)).field("serial", serial).finish()
            }
            Request::GetCrl { issuer, serial } => {
                f.debug_struct("GetCrl").field("issuer", &name(issuer)).field("serial", serial).finish()
            }
        }
    }
}

/// `IssuerAndSubject ::= SEQUENCE { issuer Name, subject Name }` (RFC 8894, 3.3.3).
#[derive(Clone, Debug, Sequence)]
struct IssuerAndSubject {
    issuer: Name,
    subject: Name,
}

fn to_x509_name(name: &Name) -> Result<X509Name, ScepError> {
    let der = name.to_der().map_err(|e| ScepError::Malformed(e.to_string()))?;
    X509Name::from_der(&der).map_err(|e| ScepError::Malformed(e.to_string()))
}

/// Turns the `message` query parameter of a GET PKIOperation into DER. Accepts the value as
/// sent (percent-encoded) or already decoded; the standard or URL-safe base64 alphabet; with
/// or without padding; line breaks; and spaces where a form decoder turned `+` into a space.
pub fn decode_message_parameter(parameter: &str) -> Result<Vec<u8>, ScepError> {
    let unescaped = if parameter.contains('%') { percent_decode(parameter)? } else { parameter.to_owned() };
    let normalized: String = unescaped
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n' | '\t'))
        .map(|c| match c {
            ' ' | '-' => '+',
            '_' => '/',
            other => other,
        })
        .collect();
    let engine = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    engine.decode(normalized.trim_end_matches('=')).map_err(|_| ScepError::BadBase64)
}

fn percent_decode(input: &str) -> Result<String, ScepError> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(ScepError::BadBase64)?;
            let hex = std::str::from_utf8(hex).map_err(|_| ScepError::BadBase64)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ScepError::BadBase64)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ScepError::BadBase64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_parameter_tolerates_the_ways_clients_and_frameworks_mangle_it() {
        let der = vec![0xfb, 0xff, 0xbf, 0x30, 0x82, 0x01];
        let standard = base64::engine::general_purpose::STANDARD.encode(&der);
        assert_eq!(standard, "+/+/MIIB");
        for sent in ["+/+/MIIB", "-_-_MIIB", " / /MIIB", "%2B%2F%2B%2FMIIB", "+/+/\r\nMIIB", "+/+/MIIB=="] {
            assert_eq!(decode_message_parameter(sent).unwrap(), der, "{sent}");
        }
        assert_eq!(decode_message_parameter("MA").unwrap(), vec![0x30]);
        assert_eq!(decode_message_parameter("MA==").unwrap(), vec![0x30]);
        assert!(matches!(decode_message_parameter("!!!"), Err(ScepError::BadBase64)));
        assert!(matches!(decode_message_parameter("%zz"), Err(ScepError::BadBase64)));
    }

    #[test]
    fn only_request_message_types_are_accepted() {
        for code in [MessageType::RenewalReq, MessageType::PkcsReq, MessageType::CertPoll, MessageType::GetCert] {
            assert_eq!(MessageType::request_from_code(&code.code().to_string()), Some(code));
        }
        assert_eq!(MessageType::request_from_code("3"), None);
        assert_eq!(MessageType::request_from_code("18"), None);
    }
}
