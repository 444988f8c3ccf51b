//! Makes the seeds that must be built with keys: real `Mdm-Signature`s, SCEP requests sealed to
//! the fuzz CA (`fixtures/scep_ca.pem`), and a signed profile. The plain seeds (plists, CSV) are
//! files in `corpus/` copied from the tests.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example make_seeds` (from the repository root).

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use custody_fuzz::{Requester, ScepMode, framed, pki_message, scep_ca, seal_to_ca};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::{X509, X509Builder, X509NameBuilder, X509Req, X509ReqBuilder};

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn testdata(name: &str) -> Vec<u8> {
    std::fs::read(fuzz_dir().join("../crates/apple-mdm/tests/testdata").join(name)).unwrap()
}

/// A certificate for `key`, self-signed.
fn self_signed(key: &PKey<Private>, common_name: &str) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", common_name).unwrap();
    let name = name.build();
    let mut builder = X509Builder::new().unwrap();
    builder.set_version(2).unwrap();
    builder.set_subject_name(&name).unwrap();
    builder.set_issuer_name(&name).unwrap();
    builder.set_pubkey(key).unwrap();
    builder.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap()).unwrap();
    builder.set_not_after(&openssl::asn1::Asn1Time::days_from_now(3650).unwrap()).unwrap();
    builder.sign(key, MessageDigest::sha256()).unwrap();
    builder.build()
}

fn detached(cert: &X509, key: &PKey<Private>, body: &[u8], flags: Pkcs7Flags) -> Vec<u8> {
    let flags = flags | Pkcs7Flags::DETACHED | Pkcs7Flags::BINARY;
    Pkcs7::sign(cert, key, &Stack::new().unwrap(), body, flags).unwrap().to_der().unwrap()
}

/// A PKCS#10 request with a challengePassword, as a device sends in its PKCSReq.
fn csr(key: &PKey<Private>, challenge: &str) -> Vec<u8> {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("O", "Custody Fuzz").unwrap();
    name.append_entry_by_text("CN", "iPhone of Ana Ruiz").unwrap();
    let mut builder = X509ReqBuilder::new().unwrap();
    builder.set_subject_name(&name.build()).unwrap();
    builder.set_pubkey(key).unwrap();
    builder.sign(key, MessageDigest::sha256()).unwrap();
    let der = builder.build().to_der().unwrap();
    with_challenge(&der, key, challenge)
}

/// Adds a challengePassword attribute to a request and signs it again (the `openssl` crate has no
/// call for request attributes).
fn with_challenge(der: &[u8], key: &PKey<Private>, challenge: &str) -> Vec<u8> {
    use der::asn1::{Any, BitString, ObjectIdentifier, PrintableStringRef, SetOfVec};
    use der::{Decode, Encode};
    let mut request = x509_cert::request::CertReq::from_der(der).unwrap();
    let mut values = SetOfVec::new();
    values.insert(Any::encode_from(&PrintableStringRef::new(challenge).unwrap()).unwrap()).unwrap();
    let attribute = x509_cert::attr::Attribute { oid: ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.7"), values };
    request.info.attributes.insert(attribute).unwrap();
    let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), key).unwrap();
    request.signature =
        BitString::from_bytes(&signer.sign_oneshot_to_vec(&request.info.to_der().unwrap()).unwrap()).unwrap();
    let der = request.to_der().unwrap();
    let parsed = X509Req::from_der(&der).unwrap();
    assert!(parsed.verify(&parsed.public_key().unwrap()).unwrap());
    der
}

/// A DER SEQUENCE of already encoded elements.
fn sequence(elements: &[&[u8]]) -> Vec<u8> {
    let content = elements.concat();
    let length = content.len();
    let mut out = vec![0x30];
    if length < 0x80 {
        out.push(length as u8);
    } else {
        let bytes: Vec<u8> = length.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend(content);
    out
}

fn main() {
    // Mdm-Signature: a device identity (RSA, and an EC one) signing a check-in body.
    let body = testdata("checkin_authenticate.plist");
    let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    let rsa_cert = self_signed(&rsa, "00008110-000A1B2C3D4E5F60");
    let der = detached(&rsa_cert, &rsa, &body, Pkcs7Flags::NOSMIMECAP);
    write("mdm_signature", "rsa_der", &framed(1, &der, &body));
    let header = STANDARD.encode(&der);
    let wrapped: Vec<u8> = header.as_bytes().chunks(64).flat_map(|line| [line, b"\r\n"].concat()).collect();
    write("mdm_signature", "rsa_header_wrapped", &framed(0, &wrapped, &body));
    write("mdm_signature", "rsa_other_body", &framed(1, &der, b"<plist>other</plist>"));
    let no_attributes = detached(&rsa_cert, &rsa, &body, Pkcs7Flags::NOATTR);
    write("mdm_signature", "rsa_no_attributes", &framed(1, &no_attributes, &body));
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let ec = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let ec_cert = self_signed(&ec, "00008110-000A1B2C3D4E5F61");
    let report = testdata("report_idle.plist");
    write("mdm_signature", "ec_der", &framed(1, &detached(&ec_cert, &ec, &report, Pkcs7Flags::empty()), &report));

    // SCEP: a device's PKCSReq as it sends it, and the parts the other modes take.
    let scep = "scep_pki_operation";
    let device = Requester::new(2048, "SCEP signer");
    let request = csr(&device.key, "7Kq-challenge-2026");
    let envelope = seal_to_ca(&request, Cipher::aes_128_cbc());
    let message = pki_message(&device, "19", &envelope);
    write(scep, "body_pkcsreq", &[&[ScepMode::Body.byte()], &message[..]].concat());
    let des3 = pki_message(&device, "19", &seal_to_ca(&request, Cipher::des_ede3_cbc()));
    write(scep, "body_pkcsreq_des3", &[&[ScepMode::Body.byte()], &des3[..]].concat());
    let percent = STANDARD.encode(&message).replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    write(scep, "get_pkcsreq", &[&[ScepMode::GetParameter.byte()], percent.as_bytes()].concat());
    write(scep, "csr", &[&[ScepMode::Csr.byte()], &request[..]].concat());
    write(scep, "envelope_pkcsreq", &[&[ScepMode::Envelope.byte(), 0], &envelope[..]].concat());
    write(scep, "content_pkcsreq", &[&[ScepMode::Content.byte(), 0], &request[..]].concat());
    // GetCert's IssuerAndSerialNumber and CertPoll's IssuerAndSubject, naming the CA.
    let issuer = scep_ca().certificate().subject_name().to_der().unwrap();
    let serial = [0x02, 0x01, 0x2a];
    let get_cert = sequence(&[&issuer, &serial]);
    write(scep, "content_getcert", &[&[ScepMode::Content.byte(), 3], &get_cert[..]].concat());
    let cert_poll = sequence(&[&issuer, &issuer]);
    write(scep, "content_certpoll", &[&[ScepMode::Content.byte(), 2], &cert_poll[..]].concat());

    // A signed profile, as Apple Configurator or another MDM exports it.
    let profile = std::fs::read(fuzz_dir().join("corpus/profile_upload/wifi.mobileconfig")).unwrap();
    let signed = apple_mdm::profile::sign_profile(&profile, &rsa_cert, &rsa, &[]).unwrap();
    write("profile_upload", "wifi_signed.mobileconfig", &signed);

    // The seeds reach the deep paths: a signature that verifies, a request the CA opens, a
    // signed profile that reads.
    assert!(apple_mdm::signature::verify_mdm_signature(&String::from_utf8_lossy(&wrapped), &body).is_ok());
    assert!(apple_mdm::signature::verify_mdm_signature(&STANDARD.encode(&no_attributes), &body).is_ok());
    let opened = scep::PkiMessage::decode(&des3).unwrap().open(scep_ca()).unwrap();
    assert!(matches!(opened, scep::Request::PkcsReq(csr) if csr.challenge_password() == Some("7Kq-challenge-2026")));
    assert!(scep::PkiMessage::decode_base64(&percent).is_ok());
    for (message_type, content) in [("21", &get_cert), ("20", &cert_poll)] {
        let message = pki_message(&device, message_type, &seal_to_ca(content, Cipher::aes_256_cbc()));
        let opened = scep::PkiMessage::decode(&message).unwrap().open(scep_ca()).unwrap();
        assert!(matches!(opened, scep::Request::GetCert { .. } | scep::Request::CertPoll { .. }), "{opened:?}");
    }
    assert!(apple_mdm::payloads::inspect_mobileconfig(&signed).unwrap().signed);
    println!("seeds written");
}
