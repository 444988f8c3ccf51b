//! GetCACaps (RFC 8894, section 3.5.2): what this CA supports, one keyword a line.
//!
//! Only what works is listed: AES (requests in AES-128/192/256-CBC, replies in the same AES),
//! DES3 (requests and replies in DES-EDE3-CBC), POST for PKIOperation, RenewalReq, SHA-1,
//! SHA-256 and SHA-512 signatures (replies use the request's digest), and SCEPStandard (which
//! means AES, POSTPKIOperation and SHA-256). Not listed: GetNextCACert (no CA rollover) and
//! Update (no certificate update by the CA). Single DES requests are read for old clients but
//! not advertised.

/// The capability keywords, in the order they are sent.
pub const CAPABILITIES: &[&str] =
    &["AES", "DES3", "POSTPKIOperation", "Renewal", "SHA-1", "SHA-256", "SHA-512", "SCEPStandard"];

/// The media type of the GetCACaps body.
pub const CA_CAPS_CONTENT_TYPE: &str = "text/plain";

/// The GetCACaps body: the keywords separated by line feeds.
pub fn ca_caps() -> String {
    CAPABILITIES.join("\n")
}
