//! A simulator of iPhones and iPads speaking Apple's MDM protocol to a Custody server over
//! HTTP, for end-to-end tests and load benchmarks.
//!
//! A [`SimDevice`] does what a device does after the user installs the enrollment profile:
//! it reads the profile ([`EnrollmentProfile`]), gets its identity certificate through SCEP
//! ([`scep_client`]), checks in (`Authenticate`, `TokenUpdate`, later `CheckOut`) and runs
//! command sessions on the `ServerURL`, every message signed with `Mdm-Signature`. Its answers
//! to commands come from [`DeviceState`], which keeps what the commands change (profiles, apps,
//! Lost Mode, lock, erase) and can be told to answer `NotNow` or `Error` ([`Behaviour`]).
//!
//! [`load::run_load`] enrolls many devices and measures idle connects and command round trips;
//! [`ceiling`] is a do-nothing server measuring this machine's ceiling for the same loop;
//! [`mixed::run_mixed`] runs device sessions beside API calls and console pages, at a fixed rate.
//!
//! Depends on `apple-mdm` for the wire formats (the one crate that knows plists) and on
//! nothing of the server: it talks to it only over HTTP.

pub mod ceiling;
mod device;
pub mod identity;
pub mod load;
pub mod mixed;
pub mod profile;
pub mod scep_client;
pub mod spec;
pub mod state;

pub use device::{
    CHECKIN_CONTENT_TYPE, CONNECT_CONTENT_TYPE, CheckinMessage, MDM_SIGNATURE, MdmEndpoints, PROFILE_CONTENT_TYPE,
    RawResponse, Reply, SimDevice, SimError, error_chain, fetch_profile, send_raw,
};
pub use identity::Identity;
pub use load::{LoadConfig, LoadReport, LoadTarget, run_load};
pub use profile::EnrollmentProfile;
pub use spec::{Behaviour, DeviceKind, DeviceSpec, NotNow};
pub use state::{AnswerStatus, DeviceState, HandledCommand};
