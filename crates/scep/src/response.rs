//! Building a CertRep (RFC 8894, section 3.3.2): SUCCESS carries the issued certificate in a
//! degenerate SignedData, enveloped to the requester's signer certificate; FAILURE carries a
//! failInfo and no envelope. Both are signed by the CA with the SCEP attributes, echoing the
//! request's transactionID and answering its senderNonce with recipientNonce.

use der::asn1::{Any, PrintableStringRef};

use crate::ca::CertificateAuthority;
use crate::message::{MessageType, Nonce, PkiMessage, ScepError};
use crate::{envelope, oid, signed};

/// The media type of a `PKIOperation` response body.
pub const PKI_MESSAGE_CONTENT_TYPE: &str = "application/x-pki-message";

/// pkiStatus values (RFC 8894, section 3.2.1.3). Custody never answers PENDING.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PkiStatus {
    Success,
    Failure,
    Pending,
}

impl PkiStatus {
    pub fn code(self) -> u8 {
        match self {
            PkiStatus::Success => 0,
            PkiStatus::Failure => 2,
            PkiStatus::Pending => 3,
        }
    }
}

/// failInfo values (RFC 8894, section 3.2.1.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailInfo {
    /// 0: unrecognized or unsupported algorithm.
    BadAlg,
    /// 1: integrity check (signature, decryption) failed.
    BadMessageCheck,
    /// 2: transaction not permitted or supported (this is also the answer to a wrong challenge).
    BadRequest,
    /// 3: the message time was not close enough to the CA's time.
    BadTime,
    /// 4: no certificate matches the criteria.
    BadCertId,
}

impl FailInfo {
    pub fn code(self) -> u8 {
        match self {
            FailInfo::BadAlg => 0,
            FailInfo::BadMessageCheck => 1,
            FailInfo::BadRequest => 2,
            FailInfo::BadTime => 3,
            FailInfo::BadCertId => 4,
        }
    }
}

/// A SUCCESS CertRep carrying `certificate_der` (the issued certificate, or the one a GetCert
/// asked for), encrypted to the request's signer certificate with
/// [`PkiMessage::reply_encryption`], signed by the CA with the request's digest.
pub fn success(ca: &CertificateAuthority, request: &PkiMessage, certificate_der: &[u8]) -> Result<Vec<u8>, ScepError> {
    let certificates = signed::certificate_only(certificate_der)?;
    let envelope = envelope::seal(request.signer_certificate(), &certificates, request.reply_encryption())?;
    let attributes = reply_attributes(request, PkiStatus::Success, None)?;
    signed::sign(ca, request.digest(), Some(&envelope), attributes)
}

/// A FAILURE CertRep with `fail_info`, signed by the CA. It has no content.
pub fn failure(ca: &CertificateAuthority, request: &PkiMessage, fail_info: FailInfo) -> Result<Vec<u8>, ScepError> {
    let attributes = reply_attributes(request, PkiStatus::Failure, Some(fail_info))?;
    signed::sign(ca, request.digest(), None, attributes)
}

fn reply_attributes(
    request: &PkiMessage,
    status: PkiStatus,
    fail_info: Option<FailInfo>,
) -> Result<Vec<x509_cert::attr::Attribute>, ScepError> {
    let internal = |e: der::Error| ScepError::Internal(e.to_string());
    let number = |n: u8| -> Result<Any, der::Error> {
        let text = n.to_string();
        Any::encode_from(&PrintableStringRef::new(&text)?)
    };
    let mut attributes = vec![
        signed::attribute(oid::MESSAGE_TYPE, number(MessageType::CertRep.code()).map_err(internal)?),
        signed::attribute(oid::PKI_STATUS, number(status.code()).map_err(internal)?),
        signed::attribute(oid::TRANSACTION_ID, request.transaction_id().to_any().map_err(internal)?),
        signed::attribute(oid::SENDER_NONCE, Nonce::random().to_any().map_err(internal)?),
        signed::attribute(oid::RECIPIENT_NONCE, request.sender_nonce().to_any().map_err(internal)?),
    ];
    if let Some(fail_info) = fail_info {
        attributes.push(signed::attribute(oid::FAIL_INFO, number(fail_info.code()).map_err(internal)?));
    }
    attributes.into_iter().map(|a| a.map_err(internal)).collect()
}
