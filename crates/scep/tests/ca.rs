//! The certificate authority on its own: its certificate, export and reload, sealing of its
//! key, what it issues, and what it refuses.

mod common;

use common::{ChallengeType, Device, NOW, chains_to, csr};
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::X509;
use scep::{
    CaError, CertificateAuthority, CertificationRequest, CsrError, Issuance, SealError, SerialNumber, Subject,
    VerifyError, is_issued_by, open_key, seal_key,
};

fn ca() -> CertificateAuthority {
    CertificateAuthority::generate(&Subject::new("Custody Device CA").organization("State IT Office"), 10, NOW).unwrap()
}

#[test]
fn a_generated_ca_is_a_self_signed_ca_certificate() {
    let ca = ca();
    let certificate = X509::from_der(ca.certificate_der()).unwrap();
    let text = String::from_utf8(certificate.to_text().unwrap()).unwrap();
    assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
    assert!(text.contains("X509v3 Basic Constraints: critical"), "{text}");
    assert!(text.contains("X509v3 Key Usage: critical"), "{text}");
    assert!(text.contains("Certificate Sign, CRL Sign"), "{text}");
    assert!(text.contains("X509v3 Subject Key Identifier"), "{text}");
    assert!(text.contains("Public-Key: (3072 bit)"), "{text}");
    assert!(text.contains("O=State IT Office, CN=Custody Device CA"), "{text}");
    assert!(chains_to(&certificate, &certificate));
    assert!(is_issued_by(&ca, &certificate));
    assert_eq!(ca.fingerprint_sha256().unwrap().len(), 32);
    assert_eq!(scep::cacert::ca_cert(&ca), ca.certificate_der());
    assert_eq!(scep::cacert::CA_CERT_CONTENT_TYPE, "application/x-x509-ca-cert");
}

#[test]
fn the_ca_round_trips_through_pem_and_der_and_its_sealed_key() {
    let ca = ca();
    let secret = [42u8; 32];
    let key_pem = ca.private_key_pkcs8_pem().unwrap();
    assert!(key_pem.starts_with(b"-----BEGIN PRIVATE KEY-----"));
    let sealed = seal_key(&key_pem, &secret).unwrap();
    assert!(!sealed.windows(10).any(|w| w == &key_pem[40..50]), "the sealed key does not contain the key");
    assert_ne!(seal_key(&key_pem, &secret).unwrap(), sealed, "a fresh nonce each time");

    let opened = open_key(&sealed, &secret).unwrap();
    assert_eq!(opened, key_pem);
    let reloaded = CertificateAuthority::from_pem(&ca.certificate_pem().unwrap(), &opened).unwrap();
    assert_eq!(reloaded.certificate_der(), ca.certificate_der());
    let reloaded = CertificateAuthority::from_der(ca.certificate_der(), &ca.private_key_pkcs8_der().unwrap()).unwrap();
    assert_eq!(reloaded.private_key_pkcs8_der().unwrap(), ca.private_key_pkcs8_der().unwrap());

    let mut wrong = secret;
    wrong[31] ^= 1;
    assert_eq!(open_key(&sealed, &wrong), Err(SealError::WrongSecretOrCorrupted));
    assert_eq!(SealError::WrongSecretOrCorrupted.to_string(), "the secret is wrong or the sealed key was altered");
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_refused() {
    let ca = ca();
    let other = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let error =
        CertificateAuthority::from_pem(&ca.certificate_pem().unwrap(), &other.private_key_to_pem_pkcs8().unwrap())
            .unwrap_err();
    assert!(matches!(error, CaError::KeyMismatch), "{error:?}");
    assert!(matches!(CertificateAuthority::from_pem(b"junk", b"junk"), Err(CaError::InvalidCertificate(_))));
}

#[test]
fn issued_certificates_are_verified_against_the_ca_and_the_clock() {
    let ca = ca();
    let device = Device::new("d");
    let request = CertificationRequest::from_der(&csr(&device.key, "Laptop 7", None)).unwrap();
    let issuance = Issuance {
        serial: SerialNumber::from_u64(4242).unwrap(),
        subject: Some(Subject::new("device-0042").organization("Agency of Tests").organizational_unit("Devices")),
        now: NOW,
        validity_days: 30,
    };
    let issued = ca.issue(&request, &issuance).unwrap();
    let certificate = ca.verify_issued(&issued, NOW).unwrap();
    let text = String::from_utf8(certificate.to_text().unwrap()).unwrap();
    assert!(text.contains("O=Agency of Tests, OU=Devices, CN=device-0042"), "the subject override: {text}");
    assert_eq!(SerialNumber::of(&certificate).unwrap().to_hex(), "1092");

    assert_eq!(ca.verify_issued(&issued, NOW - 301), Err(VerifyError::NotYetValid), "5 minutes of skew, no more");
    ca.verify_issued(&issued, NOW - 299).unwrap();
    ca.verify_issued(&issued, NOW + 30 * 86_400 - 1).unwrap();
    assert_eq!(ca.verify_issued(&issued, NOW + 30 * 86_400 + 1), Err(VerifyError::Expired));
    assert_eq!(ca.verify_issued(b"junk", NOW), Err(VerifyError::Malformed));

    let other = CertificateAuthority::generate(&Subject::new("Custody Device CA"), 1, NOW).unwrap();
    assert_eq!(other.verify_issued(&issued, NOW), Err(VerifyError::NotIssuedByThisCa));
    assert!(!is_issued_by(&other, &certificate), "same name, different key");

    let mut tampered = issued.clone();
    let position = tampered.windows(9).position(|w| w == b"device-00").unwrap();
    tampered[position] = b'D';
    assert_eq!(ca.verify_issued(&tampered, NOW), Err(VerifyError::NotIssuedByThisCa));
}

#[test]
fn requests_with_weak_keys_or_bad_signatures_are_refused() {
    let weak = PKey::from_rsa(Rsa::generate(1024).unwrap()).unwrap();
    let error = CertificationRequest::from_der(&csr(&weak, "old", None)).unwrap_err();
    assert!(matches!(error, CsrError::UnacceptableKey(_)), "{error:?}");

    let device = Device::new("d");
    let mut request = csr(&device.key, "d", Some(("pw", ChallengeType::Printable)));
    let last = request.len() - 1;
    request[last] ^= 0x80;
    assert!(matches!(CertificationRequest::from_der(&request), Err(CsrError::BadSignature)));
    assert!(matches!(CertificationRequest::from_der(b"\x30\x03\x02\x01\x00"), Err(CsrError::Malformed(_))));

    let ca = ca();
    let request = CertificationRequest::from_der(&csr(&device.key, "d", None)).unwrap();
    for validity_days in [0, 3651] {
        let issuance = Issuance { serial: SerialNumber::random(), subject: None, now: NOW, validity_days };
        assert!(matches!(ca.issue(&request, &issuance), Err(CaError::InvalidValidity(_))));
    }
}

#[test]
fn ca_caps_lists_what_is_supported() {
    assert_eq!(scep::caps::ca_caps(), "AES\nDES3\nPOSTPKIOperation\nRenewal\nSHA-1\nSHA-256\nSHA-512\nSCEPStandard");
    assert_eq!(scep::caps::CA_CAPS_CONTENT_TYPE, "text/plain");
    assert_eq!(scep::response::PKI_MESSAGE_CONTENT_TYPE, "application/x-pki-message");
}
