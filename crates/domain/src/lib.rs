//! Custody's domain model: the objects of `DOMAIN.md`, parsed at the edge into
//! types that cannot hold invalid values, the one authorization rule, and the
//! audit chain's canonical hashing.
//!
//! This crate does no IO and knows nothing of SQL, HTTP or JSON wire formats
//! (serde derives here describe domain values, not API documents).

pub mod agency;
pub mod audit;
pub mod authz;
pub mod billing;
pub mod catalog;
pub mod compliance;
pub mod device;
pub mod email;
pub mod names;
pub mod person;
pub mod plan;
pub mod request;
pub mod role;
pub mod sanitization;
pub mod usage;
pub mod user;
pub mod validate;

pub use validate::{FieldError, FieldErrors};
