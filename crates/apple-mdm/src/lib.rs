//! Apple's MDM wire formats for Custody: check-in messages, command reports, commands,
//! configuration and enrollment profiles, the `Mdm-Signature` header and the APNs push body.
//!
//! Pure: no IO, no database, no HTTP, nothing async. Callers hand in request bodies and header
//! values and get typed values back; they build bodies to send from typed values. This is the
//! only crate that knows plists.
//!
//! - [`checkin`]: `PUT /checkin` bodies ([`checkin::Checkin::parse`]) and their replies.
//! - [`report`]: `PUT /connect` bodies ([`report::Report::parse`]) and typed command results.
//! - [`command`]: [`command::Command`], its XML plist, and parsing from API parameters.
//! - [`signature`]: [`signature::verify_mdm_signature`] and [`signature::verify_chain`].
//! - [`profile`]: `.mobileconfig` building ([`profile::EnrollmentProfile`]) and signing.
//! - [`payloads`]: typed configuration profiles (passcode, Wi-Fi, VPN, restrictions, Exchange) and
//!   the inspection of uploaded ones ([`payloads::inspect_mobileconfig`]).
//! - [`push`]: push token and magic, and the push body.
//! - [`enrollment`]: who a message is from ([`enrollment::Enrollment`]).

pub mod checkin;
pub mod command;
mod dict;
pub mod enrollment;
pub mod payloads;
pub mod profile;
pub mod push;
pub mod report;
pub mod signature;

pub use dict::KeyError;
/// The plist crate this one speaks, for the `Dictionary` and `Value` types in its API (kept
/// unknown keys, command results, command parameters).
pub use plist;
