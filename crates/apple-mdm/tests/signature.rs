//! `Mdm-Signature`: a detached CMS signature made with OpenSSL verifies over the body and not
//! over an altered one; the signer's certificate must chain to the given CA.

mod common;

use std::time::{Duration, SystemTime};

use apple_mdm::signature::{ChainError, SignatureError, verify_chain, verify_chain_at, verify_mdm_signature};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Identity, fixture, pki};
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::stack::Stack;
use openssl::symm::Cipher;

/// What a device puts in `Mdm-Signature`: base64 of a detached CMS SignedData over `body`.
fn mdm_signature(identity: &Identity, body: &[u8]) -> String {
    let signed = Pkcs7::sign(
        &identity.cert,
        &identity.key,
        &Stack::new().unwrap(),
        body,
        Pkcs7Flags::DETACHED | Pkcs7Flags::BINARY,
    )
    .unwrap();
    STANDARD.encode(signed.to_der().unwrap())
}

#[test]
fn a_device_signature_verifies_and_names_its_certificate() {
    let pki = pki();
    let body = fixture("checkin_token_update.plist");
    let signer = verify_mdm_signature(&mdm_signature(&pki.device, &body), &body).unwrap();
    assert_eq!(signer.der(), pki.device.cert.to_der().unwrap().as_slice());
    assert_eq!(signer.common_name().as_deref(), Some("00008110-000A1B2C3D4E5F60"));
    assert_eq!(signer.sha256_hex().len(), 64);
    verify_chain(signer.x509(), &pki.ca.cert).unwrap();
}

#[test]
fn a_header_with_line_breaks_still_verifies() {
    let pki = pki();
    let body = fixture("report_idle.plist");
    let header = mdm_signature(&pki.device, &body);
    let wrapped: String =
        header.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join("\n");
    assert!(verify_mdm_signature(&wrapped, &body).is_ok());
}

#[test]
fn one_altered_byte_breaks_the_signature() {
    let pki = pki();
    let body = fixture("report_device_information.plist");
    let header = mdm_signature(&pki.device, &body);
    for index in [0, body.len() / 2, body.len() - 1] {
        let mut altered = body.clone();
        altered[index] ^= 0x01;
        let error = verify_mdm_signature(&header, &altered).unwrap_err();
        assert!(matches!(error, SignatureError::BadSignature(_)), "byte {index}: {error:?}");
    }
    let mut longer = body.clone();
    longer.push(b'\n');
    assert!(matches!(verify_mdm_signature(&header, &longer), Err(SignatureError::BadSignature(_))));
}

#[test]
fn malformed_headers_are_refused_with_the_reason() {
    let pki = pki();
    let body = b"body";
    assert_eq!(verify_mdm_signature("not base64!", body).unwrap_err(), SignatureError::MalformedBase64);
    assert_eq!(verify_mdm_signature(&STANDARD.encode(b"hello"), body).unwrap_err(), SignatureError::NotCms);
    // A CMS structure that is not SignedData: EnvelopedData.
    let mut recipients = Stack::new().unwrap();
    recipients.push(pki.device.cert.clone()).unwrap();
    let enveloped = Pkcs7::encrypt(&recipients, body, Cipher::aes_128_cbc(), Pkcs7Flags::BINARY).unwrap();
    assert_eq!(
        verify_mdm_signature(&STANDARD.encode(enveloped.to_der().unwrap()), body).unwrap_err(),
        SignatureError::NotSignedData
    );
    // SignedData whose signer's certificate is not included.
    let no_certs = Pkcs7::sign(
        &pki.device.cert,
        &pki.device.key,
        &Stack::new().unwrap(),
        body,
        Pkcs7Flags::DETACHED | Pkcs7Flags::NOCERTS,
    )
    .unwrap();
    assert_eq!(
        verify_mdm_signature(&STANDARD.encode(no_certs.to_der().unwrap()), body).unwrap_err(),
        SignatureError::NoSigner
    );
}

#[test]
fn a_certificate_from_another_ca_does_not_chain() {
    let pki = pki();
    let body = fixture("checkin_authenticate.plist");
    // The stranger's signature is cryptographically fine ...
    let signer = verify_mdm_signature(&mdm_signature(&pki.stranger, &body), &body).unwrap();
    // ... but its certificate was issued by another CA.
    assert!(matches!(verify_chain(signer.x509(), &pki.ca.cert), Err(ChainError::NotIssuedByCa(_))));
    verify_chain(signer.x509(), &pki.other_ca.cert).unwrap();
    // A self-signed certificate does not chain either.
    assert!(matches!(verify_chain(&pki.other_ca.cert, &pki.ca.cert), Err(ChainError::NotIssuedByCa(_))));
}

#[test]
fn validity_is_checked_at_the_given_time() {
    let pki = pki();
    let device = &pki.device.cert;
    let day = Duration::from_secs(86_400);
    verify_chain_at(device, &pki.ca.cert, SystemTime::now() + 300 * day).unwrap();
    assert_eq!(verify_chain_at(device, &pki.ca.cert, SystemTime::now() + 400 * day), Err(ChainError::Expired));
    assert_eq!(verify_chain_at(device, &pki.ca.cert, SystemTime::now() - 2 * day), Err(ChainError::NotYetValid));
}

/// Found by fuzzing (`fuzz/`, target `mdm_signature`): a SignedData whose `digestAlgorithms` names
/// a digest OpenSSL does not know, over a body its signature does not match, reached OpenSSL's
/// `PKCS7_verify`, which (in OpenSSL 3.0) leaked its copy of the body on every such message. It is
/// refused, naming the digest, before OpenSSL is asked.
#[test]
fn a_signature_listing_an_unknown_digest_is_refused_before_openssl_verifies_it() {
    let der = fixture("signature_unknown_digest.p7s");
    let body = fixture("signature_unknown_digest_body");
    let refused = verify_mdm_signature(&STANDARD.encode(&der), &body).unwrap_err();
    assert_eq!(refused, SignatureError::BadSignature("unsupported digest algorithm 2.16.840.1.101.3.4.98.1".into()));

    // The same with a fresh signature: SHA-256 in `digestAlgorithms` (the first place its OID
    // appears) becomes the unassigned 2.16.840.1.101.3.4.2.98.
    let pki = pki();
    let body = fixture("checkin_authenticate.plist");
    let mut der = STANDARD.decode(mdm_signature(&pki.device, &body)).unwrap();
    let sha256 = [0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    let at = der.windows(sha256.len()).position(|w| w == sha256).unwrap();
    der[at + sha256.len() - 1] = 98;
    let refused = verify_mdm_signature(&STANDARD.encode(&der), b"another body").unwrap_err();
    assert_eq!(refused, SignatureError::BadSignature("unsupported digest algorithm 2.16.840.1.101.3.4.2.98".into()));
}
