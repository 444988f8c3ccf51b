//! Loading the MDM push certificate: PEM in any order, PKCS#12 (modern and legacy), and the
//! errors an administrator sees for the wrong file.

mod common;

use std::time::{Duration, SystemTime};

use apns::{CertificateError, PushCertificate};
use common::*;
use openssl::pkcs12::Pkcs12;

fn load_pem(parts: &[&str]) -> Result<PushCertificate, CertificateError> {
    PushCertificate::from_pem(parts.concat().as_bytes())
}

#[test]
fn pem_yields_the_topic_whatever_the_order_and_key_form() {
    install_ring();
    for kind in [KeyKind::Ec, KeyKind::Rsa] {
        let (cert, key) = fake_certificate(&Fake { key: kind, ..Fake::default() });
        let cert_pem = pem(&cert);
        let pkcs8 = key_pem(&key);
        let traditional = String::from_utf8(match kind {
            KeyKind::Rsa => key.rsa().unwrap().private_key_to_pem().unwrap(), // BEGIN RSA PRIVATE KEY
            KeyKind::Ec => key.ec_key().unwrap().private_key_to_pem().unwrap(), // BEGIN EC PRIVATE KEY
        })
        .unwrap();
        for parts in [[&cert_pem, &pkcs8], [&pkcs8, &cert_pem], [&cert_pem, &traditional], [&traditional, &cert_pem]] {
            let loaded = load_pem(&[parts[0], parts[1]]).unwrap();
            assert_eq!(loaded.topic().as_str(), TOPIC);
            assert_eq!(loaded.chain().len(), 1);
        }
    }
}

#[test]
fn the_certificate_tells_its_subject_expiry_and_fingerprint() {
    install_ring();
    let (cert, key) = fake_certificate(&Fake { not_after_days: 365, ..Fake::default() });
    let loaded = load_pem(&[&pem(&cert), &key_pem(&key)]).unwrap();

    assert_eq!(loaded.subject(), format!("UID={TOPIC}, CN=APSP:2b5e7c9a-51d4-4c61-8d1e-7f3a0b9c4e21, C=US"));
    let in_a_year = SystemTime::now() + Duration::from_secs(365 * 86_400);
    let off = in_a_year.duration_since(loaded.not_after()).unwrap_or_else(|e| e.duration());
    assert!(off < Duration::from_secs(120), "not_after is {:?}", loaded.not_after());
    assert!(loaded.not_before() < SystemTime::now());
    let expected: String =
        cert.digest(openssl::hash::MessageDigest::sha256()).unwrap().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(loaded.fingerprint_sha256(), expected);
    assert!(format!("{loaded:?}").contains(TOPIC));
    assert!(!format!("{loaded:?}").contains("PRIVATE"));
}

#[test]
fn a_pem_with_the_issuer_too_picks_the_leaf_the_key_belongs_to() {
    install_ring();
    let (ca, leaf, key) = fake_certificate_with_ca(&Fake::default());
    let loaded = load_pem(&[&pem(&ca), &key_pem(&key), &pem(&leaf)]).unwrap();
    assert_eq!(loaded.topic().as_str(), TOPIC);
    assert_eq!(loaded.chain().len(), 2);
    assert_eq!(loaded.chain()[0].as_ref(), leaf.to_der().unwrap().as_slice(), "the leaf goes first");
}

#[test]
fn pkcs12_yields_the_topic() {
    install_ring();
    for kind in [KeyKind::Rsa, KeyKind::Ec] {
        let (ca, leaf, key) = fake_certificate_with_ca(&Fake { key: kind, ..Fake::default() });
        let mut cas = openssl::stack::Stack::new().unwrap();
        cas.push(ca).unwrap();
        let der =
            Pkcs12::builder().name("push").pkey(&key).cert(&leaf).ca(cas).build2("s3cret").unwrap().to_der().unwrap();

        let loaded = PushCertificate::from_pkcs12(&der, "s3cret").unwrap();
        assert_eq!(loaded.topic().as_str(), TOPIC);
        assert_eq!(loaded.chain().len(), 2);

        assert_eq!(PushCertificate::from_pkcs12(&der, "wrong").unwrap_err(), CertificateError::WrongPassword);
    }
}

#[test]
fn a_certificate_without_uid_is_a_clear_error() {
    install_ring();
    let (cert, key) = fake_certificate(&Fake { topic: None, ..Fake::default() });
    let error = load_pem(&[&pem(&cert), &key_pem(&key)]).unwrap_err();
    assert_eq!(
        error,
        CertificateError::NoTopic { subject: "CN=APSP:2b5e7c9a-51d4-4c61-8d1e-7f3a0b9c4e21, C=US".into() }
    );
    assert!(error.to_string().contains("no UID attribute"), "{error}");

    let der = Pkcs12::builder().pkey(&key).cert(&cert).build2("pw").unwrap().to_der().unwrap();
    assert!(matches!(PushCertificate::from_pkcs12(&der, "pw"), Err(CertificateError::NoTopic { .. })));
}

#[test]
fn a_key_of_another_certificate_is_a_clear_error() {
    install_ring();
    let (cert, _) = fake_certificate(&Fake::default());
    let (_, other_key) = fake_certificate(&Fake::default());
    assert_eq!(load_pem(&[&pem(&cert), &key_pem(&other_key)]).unwrap_err(), CertificateError::KeyMismatch);
}

#[test]
fn missing_or_unusable_parts_are_clear_errors() {
    install_ring();
    let (cert, key) = fake_certificate(&Fake::default());
    assert_eq!(load_pem(&[&pem(&cert)]).unwrap_err(), CertificateError::NoPrivateKey);
    assert_eq!(load_pem(&[&key_pem(&key)]).unwrap_err(), CertificateError::NoCertificate);
    assert_eq!(load_pem(&["hello"]).unwrap_err(), CertificateError::NoCertificate);

    let encrypted = key
        .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_256_cbc(), b"pw")
        .map(|pem| String::from_utf8(pem).unwrap())
        .unwrap();
    assert_eq!(load_pem(&[&pem(&cert), &encrypted]).unwrap_err(), CertificateError::EncryptedPemKey);

    assert!(matches!(PushCertificate::from_pkcs12(b"not a p12", "pw"), Err(CertificateError::Malformed { .. })));
}
