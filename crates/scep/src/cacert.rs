//! GetCACert (RFC 8894, section 4.2.1): with one CA and no RA, the body is the CA
//! certificate itself, DER-encoded.

use crate::ca::CertificateAuthority;

/// The media type of a GetCACert body holding a single CA certificate.
pub const CA_CERT_CONTENT_TYPE: &str = "application/x-x509-ca-cert";

/// The GetCACert body: the CA certificate as DER.
pub fn ca_cert(ca: &CertificateAuthority) -> &[u8] {
    ca.certificate_der()
}
