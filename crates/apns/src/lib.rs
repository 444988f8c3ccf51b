//! APNs for MDM: wake enrolled devices so they connect to Custody for their commands.
//!
//! An MDM push is `POST /3/device/<hex token>` over HTTP/2 to APNs, authenticated by the MDM
//! push certificate Apple issued (TLS client certificate), with `apns-topic` set to the topic in
//! that certificate, `apns-push-type: mdm`, and the body `{"mdm": "<PushMagic>"}`. See Apple's
//! "Sending notification requests to APNs" and "Handling error responses from APNs".
//!
//! - [`PushCertificate`] loads the push certificate (PEM or PKCS#12) and reads its topic.
//! - [`Client`] sends pushes and answers a [`PushOutcome`] per push; [`backoff`] spaces retries.
//! - `standin` (feature `standin`) is a local APNs for tests and benchmarks.
//!
//! This crate knows APNs' wire protocol and TLS, and nothing of devices, commands, jobs or the
//! database: the job runner decides what to push, when to retry, and what a dead token means.
//! It uses rustls with the ring provider, passed explicitly, whatever provider is installed.

mod certificate;
mod client;
#[cfg(feature = "standin")]
pub mod standin;

pub use certificate::{CertificateError, PushCertificate, Topic};
pub use client::{
    Client, ClientConfig, ClientError, Expiration, PRODUCTION_URL, Priority, PushError, PushOutcome, PushTarget,
    backoff,
};
