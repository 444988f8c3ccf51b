//! The SCEP protocol (RFC 8894), server side, and Custody's certificate authority.
//!
//! Pure: no network IO, no database, no clock (time is passed in), no HTTP. The web crate maps
//! `GET /scep?operation=...` and `POST /scep?operation=PKIOperation` onto these functions:
//!
//! | operation | call | response media type |
//! |---|---|---|
//! | `GetCACaps` | [`caps::ca_caps`] | [`caps::CA_CAPS_CONTENT_TYPE`] |
//! | `GetCACert` | [`cacert::ca_cert`] | [`cacert::CA_CERT_CONTENT_TYPE`] |
//! | `PKIOperation` | [`PkiMessage::decode`] / [`PkiMessage::decode_base64`], [`PkiMessage::open`], then [`response::success`] or [`response::failure`] | [`response::PKI_MESSAGE_CONTENT_TYPE`] |
//!
//! The store decides what this crate cannot: whether a challenge password is valid and unused,
//! whether a renewal's signer certificate is revoked, which serial numbers were issued.
//!
//! # How PKCS#7 is done
//!
//! SCEP needs CMS signed attributes (messageType, pkiStatus, failInfo, senderNonce,
//! recipientNonce, transactionID), which the `openssl` crate does not expose. Rather than
//! `unsafe` FFI to `PKCS7_add_signed_attribute` and friends, the CMS structures are parsed and
//! encoded with the RustCrypto `der`, `cms` and `x509-cert` crates, used for their types only,
//! and every cryptographic operation is OpenSSL's: digests, the RSA signature over the DER of
//! the signed attributes and its verification, RSA key unwrapping, symmetric decryption, and
//! `PKCS7_encrypt` for the reply's envelope. The crate has no `unsafe` code. Keeping the parser
//! in safe Rust also keeps the raw bytes in reach: a signer certificate reaches OpenSSL exactly
//! as sent, and a BER-encoded message (indefinite lengths, as some CMS encoders write) is
//! re-encoded as DER first (`ber`). See `envelope` for why the envelope is opened here instead
//! of by `PKCS7_decrypt` (Bleichenbacher countermeasure; single DES from old clients).
//!
//! # Interoperability
//!
//! Tested against micromdm's `scepclient` 2.1.0 (Debian package `scep`), which signs with
//! SHA-1 and encrypts its request with single DES-CBC whatever GetCACaps says.
#![forbid(unsafe_code)]

mod ber;
pub mod ca;
pub mod cacert;
pub mod caps;
pub mod csr;
mod envelope;
pub mod message;
mod oid;
pub mod response;
mod signed;

pub use ca::{
    CaError, CertificateAuthority, Issuance, SealError, SerialNumber, Subject, VerifyError, is_issued_by, open_key,
    seal_key,
};
pub use csr::{CertificationRequest, CsrError};
pub use envelope::ContentEncryption;
pub use message::{MessageType, Nonce, PkiMessage, Request, ScepError, TransactionId, decode_message_parameter};
pub use response::{FailInfo, PkiStatus};
pub use signed::Digest;

/// The OpenSSL crate, re-exported so callers name the same `X509` and `X509Name` types.
pub use openssl;
