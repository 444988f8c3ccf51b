//! End to end through the crate's public API: a test device enrolls, renews, and is refused,
//! and reads every answer the way a device does (OpenSSL's PKCS#7 verification and decryption).

mod common;

use common::{ChallengeType, Device, NOW, RequestOptions, TestDigest, chains_to, csr, pki_message, read_cert_rep};
use der::Encode;
use openssl::symm::Cipher;
use openssl::x509::X509;
use scep::{
    CertificateAuthority, ContentEncryption, FailInfo, Issuance, MessageType, PkiMessage, Request, ScepError,
    SerialNumber, Subject, is_issued_by, response,
};

const CHALLENGE: &str = "7Kq-challenge-2026";

fn new_ca(name: &str) -> CertificateAuthority {
    CertificateAuthority::generate(&Subject::new(name).organization("Custody Tests"), 10, NOW - 86_400).unwrap()
}

fn issuance() -> Issuance {
    Issuance { serial: SerialNumber::random(), subject: None, now: NOW, validity_days: 365 }
}

/// What the server does with a PKCSReq in these tests: a plain challenge comparison.
fn serve(ca: &CertificateAuthority, body: &[u8], expected_challenge: &str) -> Vec<u8> {
    let message = PkiMessage::decode(body).expect("the request decodes");
    match message.open(ca) {
        Ok(Request::PkcsReq(request)) if request.challenge_password() == Some(expected_challenge) => {
            let certificate = ca.issue(&request, &issuance()).unwrap();
            response::success(ca, &message, &certificate).unwrap()
        }
        Ok(_) => response::failure(ca, &message, FailInfo::BadRequest).unwrap(),
        Err(error) => response::failure(ca, &message, error.fail_info()).unwrap(),
    }
}

#[test]
fn a_device_enrolls_with_each_supported_cipher_and_digest() {
    let ca = new_ca("Custody Test CA");
    let ca_certificate = X509::from_der(ca.certificate_der()).unwrap();
    let cases = [
        (Cipher::aes_128_cbc(), TestDigest::Sha256, ContentEncryption::Aes128Cbc, "2.16.840.1.101.3.4.2.1"),
        (Cipher::aes_256_cbc(), TestDigest::Sha512, ContentEncryption::Aes256Cbc, "2.16.840.1.101.3.4.2.3"),
        (Cipher::des_ede3_cbc(), TestDigest::Sha1, ContentEncryption::DesEde3Cbc, "1.3.14.3.2.26"),
    ];
    for (cipher, digest, reply_encryption, digest_oid) in cases {
        let device = Device::new("SCEP signer");
        let request = csr(&device.key, "iPhone of Ana Ruiz", Some((CHALLENGE, ChallengeType::Printable)));
        let options = RequestOptions { cipher, digest, ..RequestOptions::default() };
        let body = pki_message(&device, &ca_certificate, &request, &options);

        let message = PkiMessage::decode(&body).unwrap();
        assert_eq!(message.message_type(), MessageType::PkcsReq);
        assert_eq!(message.transaction_id().as_str(), options.transaction_id);
        assert_eq!(message.sender_nonce().as_bytes(), &options.sender_nonce[..]);
        assert_eq!(message.signer_certificate_der(), device.certificate.to_der().unwrap());
        assert!(message.signer_is_self_signed());
        assert!(!is_issued_by(&ca, message.signer_certificate()));
        assert_eq!(message.reply_encryption(), reply_encryption);

        let Request::PkcsReq(csr) = message.open(&ca).unwrap() else { panic!("a PKCSReq") };
        assert_eq!(csr.challenge_password(), Some(CHALLENGE));
        assert_eq!(csr.common_name().as_deref(), Some("iPhone of Ana Ruiz"));
        assert!(csr.public_key().public_eq(&device.key));

        let serial = SerialNumber::random();
        let issued = ca.issue(&csr, &Issuance { serial: serial.clone(), ..issuance() }).unwrap();
        let reply = response::success(&ca, &message, &issued).unwrap();

        let view = read_cert_rep(&reply, &ca_certificate, &device);
        assert_eq!(view.message_type, "3");
        assert_eq!(view.pki_status, "0");
        assert_eq!(view.fail_info, None);
        assert_eq!(view.transaction_id, options.transaction_id);
        assert_eq!(view.recipient_nonce, options.sender_nonce);
        assert_eq!(view.sender_nonce.len(), 16);
        assert_ne!(view.sender_nonce, options.sender_nonce);
        assert_eq!(view.digest_oid.to_string(), digest_oid);
        assert_eq!(view.certificates.len(), 1);
        let certificate = &view.certificates[0];
        assert_eq!(certificate.to_der().unwrap(), issued);
        assert!(chains_to(certificate, &ca_certificate), "the issued certificate chains to the CA");
        assert!(certificate.public_key().unwrap().public_eq(&device.key), "it certifies the CSR's key");
        assert_eq!(SerialNumber::of(certificate).unwrap(), serial);
        let text = String::from_utf8(certificate.to_text().unwrap()).unwrap();
        assert!(text.contains("TLS Web Client Authentication"), "{text}");
        assert!(text.contains("Digital Signature, Key Encipherment"), "{text}");
        assert!(text.contains("CA:FALSE"), "{text}");
        assert!(text.contains("X509v3 Authority Key Identifier"), "{text}");
        assert!(text.contains("CN=iPhone of Ana Ruiz"), "{text}");
    }
}

#[test]
fn the_challenge_is_read_as_printable_or_utf8_string_and_may_be_absent() {
    let ca = new_ca("Custody Test CA");
    let ca_certificate = X509::from_der(ca.certificate_der()).unwrap();
    let device = Device::new("SCEP signer");
    for (challenge, expected) in [
        (Some(("plain Printable 123", ChallengeType::Printable)), Some("plain Printable 123")),
        (Some(("clé-ünïcode-✓", ChallengeType::Utf8)), Some("clé-ünïcode-✓")),
        (None, None),
    ] {
        let body = pki_message(&device, &ca_certificate, &csr(&device.key, "d", challenge), &RequestOptions::default());
        let Request::PkcsReq(csr) = PkiMessage::decode(&body).unwrap().open(&ca).unwrap() else { panic!() };
        assert_eq!(csr.challenge_password(), expected);
        assert!(!format!("{csr:?}").contains("plain Printable"), "Debug never shows the challenge");
    }
}

#[test]
fn a_ber_encoded_request_with_indefinite_lengths_is_accepted() {
    let ca = new_ca("Custody Test CA");
    let ca_certificate = X509::from_der(ca.certificate_der()).unwrap();
    let device = Device::new("SCEP signer");
    let request = csr(&device.key, "BER device", Some((CHALLENGE, ChallengeType::Printable)));
    let options = RequestOptions { ber: true, ..RequestOptions::default() };
    let body = pki_message(&device, &ca_certificate, &request, &options);
    assert!(body.windows(2).filter(|w| *w == [0x24, 0x80]).count() >= 2, "segmented OCTET STRINGs");

    let message = PkiMessage::decode(&body).unwrap();
    assert_eq!(message.signer_certificate_der(), device.certificate.to_der().unwrap());
    assert_eq!(message.content_encryption().unwrap(), ContentEncryption::Aes128Cbc);
    let Request::PkcsReq(csr) = message.open(&ca).unwrap() else { panic!("a PKCSReq") };
    assert_eq!(csr.challenge_password(), Some(CHALLENGE));
    assert_eq!(csr.common_name().as_deref(), Some("BER device"));
    let certificate = ca.issue(&csr, &issuance()).unwrap();
    let view = read_cert_rep(&response::success(&ca, &message, &certificate).unwrap(), &ca_certificate, &device);
    assert_eq!(view.pki_status, "0");

    // Tampering is still caught after re-encoding.
    let mut tampered = body.clone();
    // The signature's last octet, before six end-of-contents markers (signature, SignerInfo,
    // signerInfos, SignedData, [0], ContentInfo).
    let last_signature_byte = tampered.len() - 13;
    assert_eq!(tampered[last_signature_byte + 1..], [0u8; 12]);
    tampered[last_signature_byte] ^= 0x01;
    let error = PkiMessage::decode(&tampered).unwrap_err();
    assert!(matches!(error, ScepError::BadSignature), "{error:?}");
}

#[test]
fn a_get_request_decodes_from_its_base64_parameter() {
    let ca = new_ca("Custody Test CA");
    let ca_certificate = X509::from_der(ca.certificate_der()).unwrap();
    let device = Device::new("SCEP signer");
    let body = pki_message(&device, &ca_certificate, &csr(&device.key, "d", None), &RequestOptions::default());
    use base64::Engine;
    let standard = base64::engine::general_purpose::STANDARD.encode(&body);
    let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&body);
    let form_decoded = standard.replace('+', " ");
    let percent_encoded = standard.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    for parameter in [standard.as_str(), &url_safe, &form_decoded, &percent_encoded] {
        let message = PkiMessage::decode_base64(parameter).unwrap();
        assert_eq!(message.transaction_id().as_str(), RequestOptions::default().transaction_id);
    }
    assert!(matches!(PkiMessage::decode_base64("not base64 at all!"), Err(ScepError::BadBase64)));
}

#[test]
fn a_tampered_message_fails_verification() {
    let ca = new_ca("Custody Test CA");
    let ca_certificate = X509::from_der(ca.certificate_der()).unwrap();
    let device = Device::new("SCEP signer");
    let options = RequestOptions::default();
    let body =
        pki_message(&device, &ca_certificate, &csr(&device.key, "d", Some(("x", ChallengeType::Printable))), &options);

    // A byte of the signature (the last element of the message).
    let mut signature = body.clone();
    *signature.last_mut().unwrap() ^= 0x01;
    let error = PkiMessage::decode(&signature).unwrap_err();
    assert!(matches!(error, ScepError::BadSignature), "{error:?}");
    assert_eq!(error.fail_info(), FailInfo::BadMessageCheck);

    // A signed attribute: the transaction ID.
    let position = body.windows(options.transaction_id.len()).position(|w| w == options.transaction_id.as_bytes());
    let mut attribute = body.clone();
    attribute[position.unwrap()] ^= 0x01;
    assert!(matches!(PkiMessage::decode(&attribute), Err(ScepError::BadSignature)));

    // The enveloped content, covered by messageDigest.
    let mut content = body.clone();
    content[300] ^= 0x01;
    let error = PkiMessage::decode(&content).unwrap_err();
    assert!(matches!(error, ScepError::BadMessageDigest), "{error:?}");
    assert_eq!(error.fail_info(), FailInfo::BadMessageCheck);

    // Not CMS at all, and truncated.
    assert!(matches!(PkiMessage::decode(b"hello"), Err(ScepError::NotCms(_))));
    assert!(matches!(PkiMessage::decode(&body[..body.len() / 2]), Err(ScepError::NotCms(_))));
}

#[test]
fn a_message_for_another_ca_is_refused_with_a_failure_cert_rep() {
    let ca = new_ca("Custody Test CA");
    let other = new_ca("Some Other CA");
    let ca_certificate = X509::from_der(ca.certificate_der()).unwrap();
    let other_certificate = X509::from_der(other.certificate_der()).unwrap();
    let device = Device::new("SCEP signer");
    let body = pki_message(&device, &other_certificate, &csr(&device.key, "d", None), &RequestOptions::default());

    let message = PkiMessage::decode(&body).expect("the signature is still good");
    let error = message.open(&ca).unwrap_err();
    assert!(matches!(error, ScepError::NotEncryptedToThisCa), "{error:?}");
    assert_eq!(error.to_string(), "the pkcsPKIEnvelope is not encrypted to this CA's certificate");

    let reply = response::failure(&ca, &message, error.fail_info()).unwrap();
    let view = read_cert_rep(&reply, &ca_certificate, &device);
    assert_eq!((view.message_type.as_str(), view.pki_status.as_str()), ("3", "2"));
    assert_eq!(view.fail_info.as_deref(), Some("1"));
    assert_eq!(view.recipient_nonce, RequestOptions::default().sender_nonce);
    assert!(view.certificates.is_empty());
}

#[test]
fn a_wrong_challenge_is_answered_with_failure_bad_request() {
    let ca = new_ca("Custody Test CA");
    let ca_certificate = X509::from_der(ca.certificate_der()).unwrap();
    let device = Device::new("SCEP signer");
    let request = csr(&device.key, "d", Some(("guessed", ChallengeType::Printable)));
    let body = pki_message(&device, &ca_certificate, &request, &RequestOptions::default());
    let view = read_cert_rep(&serve(&ca, &body, CHALLENGE), &ca_certificate, &device);
    assert_eq!(view.pki_status, "2");
    assert_eq!(view.fail_info.as_deref(), Some("2"));
    assert!(view.certificates.is_empty());

    let right = csr(&device.key, "d", Some((CHALLENGE, ChallengeType::Printable)));
    let body = pki_message(&device, &ca_certificate, &right, &RequestOptions::default());
    let view = read_cert_rep(&serve(&ca, &body, CHALLENGE), &ca_certificate, &device);
    assert_eq!(view.pki_status, "0");
}

#[test]
fn a_renewal_exposes_the_issued_certificate_that_signed_it() {
    let ca = new_ca("Custody Test CA");
    let ca_certificate = X509::from_der(ca.certificate_der()).unwrap();
    let device = Device::new("SCEP signer");
    let first = csr(&device.key, "Device 1", Some((CHALLENGE, ChallengeType::Printable)));
    let body = pki_message(&device, &ca_certificate, &first, &RequestOptions::default());
    let issued = read_cert_rep(&serve(&ca, &body, CHALLENGE), &ca_certificate, &device).certificates.remove(0);

    // The device renews: a new key in the CSR, the message signed with the issued certificate.
    let enrolled = device.with_certificate(issued.clone());
    let next = Device::new("unused");
    let options =
        RequestOptions { message_type: "17", transaction_id: "renewal-1".into(), ..RequestOptions::default() };
    let body = pki_message(&enrolled, &ca_certificate, &csr(&next.key, "Device 1", None), &options);

    let message = PkiMessage::decode(&body).unwrap();
    assert_eq!(message.message_type(), MessageType::RenewalReq);
    assert_eq!(message.signer_certificate_der(), issued.to_der().unwrap());
    assert!(!message.signer_is_self_signed());
    assert!(is_issued_by(&ca, message.signer_certificate()));
    ca.verify_issued(&message.signer_certificate_der(), NOW + 60).expect("unexpired");
    assert_eq!(
        SerialNumber::of(message.signer_certificate()).unwrap(),
        SerialNumber::of(&issued).unwrap(),
        "the caller looks the signer up by serial to check it is not revoked"
    );

    let Request::RenewalReq(renewal) = message.open(&ca).unwrap() else { panic!("a RenewalReq") };
    assert!(renewal.public_key().public_eq(&next.key));
    let renewed = ca.issue(&renewal, &issuance()).unwrap();
    let view = read_cert_rep(&response::success(&ca, &message, &renewed).unwrap(), &ca_certificate, &enrolled);
    assert_eq!(view.pki_status, "0");
    assert!(view.certificates[0].public_key().unwrap().public_eq(&next.key));
    assert!(chains_to(&view.certificates[0], &ca_certificate));

    // A renewal signed by a certificate from another CA is visible as such.
    let other = new_ca("Some Other CA");
    let foreign = X509::from_der(&other.issue(&renewal, &issuance()).unwrap()).unwrap();
    let impostor = next.with_certificate(foreign);
    let body = pki_message(&impostor, &ca_certificate, &csr(&next.key, "Device 1", None), &options);
    let message = PkiMessage::decode(&body).unwrap();
    assert!(!is_issued_by(&ca, message.signer_certificate()));
    assert!(ca.verify_issued(&message.signer_certificate_der(), NOW).is_err());
}

#[test]
fn message_types_the_ca_does_not_take_are_refused() {
    let ca = new_ca("Custody Test CA");
    let ca_certificate = X509::from_der(ca.certificate_der()).unwrap();
    let device = Device::new("SCEP signer");
    for code in ["3", "18", "99", "x"] {
        let options = RequestOptions { message_type: code, ..RequestOptions::default() };
        let body = pki_message(&device, &ca_certificate, b"anything", &options);
        let error = PkiMessage::decode(&body).unwrap_err();
        assert!(matches!(error, ScepError::UnsupportedMessageType(ref c) if c == code), "{error:?}");
        assert_eq!(error.fail_info(), FailInfo::BadRequest);
    }
}

#[test]
fn get_cert_and_a_bad_csr_are_opened_into_their_own_answers() {
    let ca = new_ca("Custody Test CA");
    let ca_certificate = X509::from_der(ca.certificate_der()).unwrap();
    let device = Device::new("SCEP signer");

    let issuer_and_serial = cms::cert::IssuerAndSerialNumber {
        issuer: der::Decode::from_der(&ca_certificate.subject_name().to_der().unwrap()).unwrap(),
        serial_number: x509_cert::serial_number::SerialNumber::new(&[0x01, 0x02, 0x03]).unwrap(),
    };
    let options = RequestOptions { message_type: "21", ..RequestOptions::default() };
    let body = pki_message(&device, &ca_certificate, &issuer_and_serial.to_der().unwrap(), &options);
    let message = PkiMessage::decode(&body).unwrap();
    let Request::GetCert { issuer, serial } = message.open(&ca).unwrap() else { panic!("a GetCert") };
    assert_eq!(serial.as_bytes(), &[1, 2, 3]);
    assert_eq!(issuer.to_der().unwrap(), ca_certificate.subject_name().to_der().unwrap());

    // A PKCSReq whose envelope holds something that is not a CSR.
    let body = pki_message(&device, &ca_certificate, b"not a certification request", &RequestOptions::default());
    let error = PkiMessage::decode(&body).unwrap().open(&ca).unwrap_err();
    assert!(matches!(error, ScepError::BadCsr(_)), "{error:?}");
    assert_eq!(error.fail_info(), FailInfo::BadRequest);

    // A CSR whose self-signature does not verify.
    let mut request = csr(&device.key, "d", None);
    let last = request.len() - 1;
    request[last] ^= 0x01;
    let body = pki_message(&device, &ca_certificate, &request, &RequestOptions::default());
    let error = PkiMessage::decode(&body).unwrap().open(&ca).unwrap_err();
    assert!(matches!(error, ScepError::BadCsr(scep::CsrError::BadSignature)), "{error:?}");
    assert_eq!(error.fail_info(), FailInfo::BadMessageCheck);
}
