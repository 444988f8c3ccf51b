//! SCEP `PKIOperation` as `app::mdm::scep_operation` runs it, without the database: decode the
//! message (`PkiMessage::decode`, or `decode_base64` for a GET), open its envelope with the CA
//! (`PkiMessage::open`), read the request, issue or refuse. The CA is a fixed one
//! (`fixtures/scep_ca.pem`).
//!
//! Input: a mode byte (`custody_fuzz::ScepMode`), then
//! - `Body`: a POST body, as received;
//! - `GetParameter`: a GET `message` parameter, as received;
//! - `Csr`: a PKCS#10 request (what an opened PKCSReq or RenewalReq holds);
//! - `Envelope`: a messageType byte and a pkcsPKIEnvelope, which the target signs correctly so
//!   that the server goes on to parse and open it;
//! - `Content`: a messageType byte and the envelope's content, which the target seals to the CA
//!   and signs, so that the server decrypts it and parses what it holds.
#![no_main]

use custody_fuzz::{ScepMode, fuzz_requester, pki_message, scep_ca, scep_message_type, seal_to_ca};
use libfuzzer_sys::fuzz_target;
use scep::openssl::symm::Cipher;
use scep::{CertificationRequest, FailInfo, Issuance, PkiMessage, Request, SerialNumber, response};

/// 2026-09-21, as the scep crate's tests.
const NOW: i64 = 1_790_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else { return };
    match ScepMode::of(mode) {
        ScepMode::Body => serve(PkiMessage::decode(data), true),
        ScepMode::GetParameter => serve(PkiMessage::decode_base64(&String::from_utf8_lossy(data)), true),
        ScepMode::Csr => {
            if let Ok(csr) = CertificationRequest::from_der(data) {
                certify(&csr);
            }
        }
        ScepMode::Envelope => {
            let Some((&kind, envelope)) = data.split_first() else { return };
            let message = pki_message(fuzz_requester(), scep_message_type(kind), envelope);
            let decoded = PkiMessage::decode(&message);
            let decodes = !envelope.is_empty() && scep_message_type(kind) != "3";
            assert_eq!(decoded.is_ok(), decodes, "a well-formed message decodes: {decoded:?}");
            serve(decoded, false);
        }
        ScepMode::Content => {
            let Some((&kind, content)) = data.split_first() else { return };
            let envelope = seal_to_ca(content, Cipher::aes_128_cbc());
            let message = pki_message(fuzz_requester(), scep_message_type(kind), &envelope);
            let decoded = PkiMessage::decode(&message);
            assert_eq!(decoded.is_ok(), scep_message_type(kind) != "3", "a well-formed message decodes: {decoded:?}");
            serve(decoded, false);
        }
    }
});

/// What the server does with a decoded message. `reply`: also sign the failure reply (skipped
/// where the target built the message itself, to keep those modes fast: that path is the same).
fn serve(decoded: Result<PkiMessage, scep::ScepError>, reply: bool) {
    let Ok(message) = decoded else { return };
    let ca = scep_ca();
    let _ = (message.message_type(), message.transaction_id().as_str(), message.sender_nonce(), message.digest());
    let _ = (message.signer_certificate_der(), message.signer_is_self_signed(), format!("{message:?}"));
    let _ = (message.content_encryption(), message.reply_encryption());
    let fail_info = match message.open(ca) {
        Ok(Request::PkcsReq(csr)) => {
            let _ = csr.challenge_password();
            certify(&csr);
            FailInfo::BadRequest
        }
        Ok(Request::RenewalReq(csr)) => {
            let _ = ca.verify_issued(&message.signer_certificate_der(), NOW);
            let _ = scep::is_issued_by(ca, message.signer_certificate());
            certify(&csr);
            FailInfo::BadCertId
        }
        Ok(other) => {
            let _ = format!("{other:?}");
            FailInfo::BadRequest
        }
        Err(e) => e.fail_info(),
    };
    if reply {
        response::failure(ca, &message, fail_info).expect("a failure reply to a decoded message");
    }
}

/// Reads a request as the server does, and issues its certificate.
fn certify(csr: &CertificationRequest) {
    let _ = (csr.to_der(), csr.challenge_password(), csr.common_name(), format!("{csr:?}"));
    let issuance = Issuance { serial: SerialNumber::random(), subject: None, now: NOW, validity_days: 365 };
    let _ = scep_ca().issue(csr, &issuance);
}
