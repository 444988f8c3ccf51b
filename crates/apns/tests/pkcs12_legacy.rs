//! A PKCS#12 file encrypted the old way (RC2-40 for the certificates, 3DES for the key), as
//! older Keychain Access exports are. OpenSSL 3 reads it only with its legacy provider, which the
//! loader must load by itself: this test runs in its own process, where nothing loaded it before.
//!
//! The fixture was made with `openssl req -x509 -newkey rsa:2048 -days 36500 -subj
//! "/UID=com.apple.mgmt.External.6f1c8d52-3b1e-4c1a-9a57-2f0e6d1f7a10/CN=APSP:.../C=US"` and
//! `openssl pkcs12 -export -legacy -passout pass:keychain`.

use apns::{CertificateError, PushCertificate};

const LEGACY: &[u8] = include_bytes!("data/legacy-rc2-3des.p12");

#[test]
fn a_legacy_encrypted_pkcs12_loads_with_the_legacy_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let loaded = PushCertificate::from_pkcs12(LEGACY, "keychain").unwrap();
    assert_eq!(loaded.topic().as_str(), "com.apple.mgmt.External.6f1c8d52-3b1e-4c1a-9a57-2f0e6d1f7a10");
    assert!(loaded.subject().starts_with("UID=com.apple.mgmt.External.6f1c8d52"), "{}", loaded.subject());

    assert_eq!(PushCertificate::from_pkcs12(LEGACY, "not it").unwrap_err(), CertificateError::WrongPassword);
}
