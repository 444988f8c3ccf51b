//! What the fuzz targets share: the SCEP side of a device, to wrap fuzz input in a message the
//! server can verify and open (a fixed CA, a requester key, the envelope and the SignedData), and
//! the input framings. The same helpers make the seed corpus (`examples/make_seeds.rs`).
//!
//! Test code: it unwraps freely, and it never runs in the server.

use std::sync::OnceLock;

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{Any, ObjectIdentifier, OctetString, PrintableStringRef, SetOfVec};
use der::{Decode, Encode};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::{MessageDigest, hash};
use openssl::nid::Nid;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::{X509, X509Builder, X509NameBuilder};
use scep::CertificateAuthority;
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;

/// The SCEP CA every run uses: fixed, so that seeds sealed to it open in every run
/// (`fixtures/scep_ca.pem`, made by `examples/make_seeds.rs`; a test key, worth nothing).
pub fn scep_ca() -> &'static CertificateAuthority {
    static CA: OnceLock<CertificateAuthority> = OnceLock::new();
    CA.get_or_init(|| {
        let pem = include_bytes!("../fixtures/scep_ca.pem");
        CertificateAuthority::from_pem(pem, pem).expect("fixtures/scep_ca.pem holds the CA certificate and key")
    })
}

/// A requester: a key and the self-signed certificate it signs its messages with.
pub struct Requester {
    pub key: PKey<Private>,
    pub certificate: X509,
}

impl Requester {
    /// A fresh key of `bits` and a self-signed certificate, as a device makes before enrolling.
    pub fn new(bits: u32, common_name: &str) -> Self {
        let key = PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_nid(Nid::COMMONNAME, common_name).unwrap();
        let name = name.build();
        let mut builder = X509Builder::new().unwrap();
        builder.set_version(2).unwrap();
        builder.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap()).unwrap();
        builder.set_subject_name(&name).unwrap();
        builder.set_issuer_name(&name).unwrap();
        builder.set_pubkey(&key).unwrap();
        builder.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
        builder.set_not_after(&Asn1Time::days_from_now(1).unwrap()).unwrap();
        builder.sign(&key, MessageDigest::sha256()).unwrap();
        Self { key, certificate: builder.build() }
    }
}

/// The requester the SCEP target signs with, made once per process. RSA 1024: the server reads
/// any RSA signer, and a small key keeps the target fast.
pub fn fuzz_requester() -> &'static Requester {
    static REQUESTER: OnceLock<Requester> = OnceLock::new();
    REQUESTER.get_or_init(|| Requester::new(1024, "fuzz requester"))
}

fn oid(text: &str) -> ObjectIdentifier {
    ObjectIdentifier::new_unwrap(text)
}

fn attribute(oid_text: &str, value: Any) -> Attribute {
    let mut values = SetOfVec::new();
    values.insert(value).unwrap();
    Attribute { oid: oid(oid_text), values }
}

/// `content` sealed to the fuzz CA as a PKCS#7 EnvelopedData (what a device puts in a
/// pkcsPKIEnvelope).
pub fn seal_to_ca(content: &[u8], cipher: Cipher) -> Vec<u8> {
    let mut recipients = Stack::new().unwrap();
    recipients.push(scep_ca().certificate().to_owned()).unwrap();
    Pkcs7::encrypt(&recipients, content, cipher, Pkcs7Flags::BINARY).unwrap().to_der().unwrap()
}

/// A PKIOperation message: `envelope` as the pkcsPKIEnvelope, signed by `requester` with SHA-256
/// and the SCEP attributes (`message_type` is the messageType code, e.g. `19` for PKCSReq).
pub fn pki_message(requester: &Requester, message_type: &str, envelope: &[u8]) -> Vec<u8> {
    let attributes = SetOfVec::try_from(vec![
        attribute("1.2.840.113549.1.9.3", Any::encode_from(&oid("1.2.840.113549.1.7.1")).unwrap()),
        attribute(
            "1.2.840.113549.1.9.4",
            Any::encode_from(&OctetString::new(hash(MessageDigest::sha256(), envelope).unwrap().to_vec()).unwrap())
                .unwrap(),
        ),
        attribute(
            "2.16.840.1.113733.1.9.2",
            Any::encode_from(&PrintableStringRef::new(message_type).unwrap()).unwrap(),
        ),
        attribute(
            "2.16.840.1.113733.1.9.7",
            Any::encode_from(&PrintableStringRef::new("6B0D7D4B3E7F4A2C9D1E0F1A2B3C4D5E").unwrap()).unwrap(),
        ),
        attribute(
            "2.16.840.1.113733.1.9.5",
            Any::encode_from(&OctetString::new((1..=16).collect::<Vec<u8>>()).unwrap()).unwrap(),
        ),
    ])
    .unwrap();
    let mut signer = Signer::new(MessageDigest::sha256(), &requester.key).unwrap();
    let signature = signer.sign_oneshot_to_vec(&attributes.to_der().unwrap()).unwrap();

    let certificate = x509_cert::Certificate::from_der(&requester.certificate.to_der().unwrap()).unwrap();
    let sid = IssuerAndSerialNumber {
        issuer: certificate.tbs_certificate.issuer.clone(),
        serial_number: certificate.tbs_certificate.serial_number.clone(),
    };
    let digest_algorithm = AlgorithmIdentifierOwned { oid: oid("2.16.840.1.101.3.4.2.1"), parameters: None };
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![digest_algorithm.clone()]).unwrap(),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: oid("1.2.840.113549.1.7.1"),
            econtent: Some(Any::encode_from(&OctetString::new(envelope).unwrap()).unwrap()),
        },
        certificates: Some(CertificateSet::try_from(vec![CertificateChoices::Certificate(certificate)]).unwrap()),
        crls: None,
        signer_infos: SignerInfos::try_from(vec![SignerInfo {
            version: CmsVersion::V1,
            sid: SignerIdentifier::IssuerAndSerialNumber(sid),
            digest_alg: digest_algorithm,
            signed_attrs: Some(attributes),
            signature_algorithm: AlgorithmIdentifierOwned {
                oid: oid("1.2.840.113549.1.1.1"),
                parameters: Some(Any::null()),
            },
            signature: OctetString::new(signature).unwrap(),
            unsigned_attrs: None,
        }])
        .unwrap(),
    };
    ContentInfo { content_type: oid("1.2.840.113549.1.7.2"), content: Any::encode_from(&signed).unwrap() }
        .to_der()
        .unwrap()
}

/// The SCEP target's input: a mode byte, then the mode's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScepMode {
    /// A `POST` PKIOperation body, as received.
    Body,
    /// The `message` parameter of a `GET` PKIOperation, as received.
    GetParameter,
    /// A PKCS#10 request on its own.
    Csr,
    /// The pkcsPKIEnvelope of a correctly signed message (the next byte picks the messageType).
    Envelope,
    /// The content of an envelope correctly sealed to the CA, in a correctly signed message (the
    /// next byte picks the messageType).
    Content,
}

impl ScepMode {
    pub const ALL: [ScepMode; 5] =
        [ScepMode::Body, ScepMode::GetParameter, ScepMode::Csr, ScepMode::Envelope, ScepMode::Content];

    pub fn of(byte: u8) -> ScepMode {
        Self::ALL[usize::from(byte) % Self::ALL.len()]
    }

    pub fn byte(self) -> u8 {
        Self::ALL.iter().position(|m| *m == self).unwrap() as u8
    }
}

/// The messageType codes a server accepts, picked by a byte.
pub fn scep_message_type(byte: u8) -> &'static str {
    const CODES: [&str; 6] = ["19", "17", "20", "21", "22", "3"];
    CODES[usize::from(byte) % CODES.len()]
}

/// Splits `data` into `(mode, first, rest)`: a mode byte, a big-endian `u16` length, that many
/// bytes, and the rest. `None` when too short.
pub fn split_framed(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&mode, data) = data.split_first()?;
    let (length, data) = data.split_first_chunk::<2>()?;
    let length = usize::from(u16::from_be_bytes(*length)).min(data.len());
    let (first, rest) = data.split_at(length);
    Some((mode, first, rest))
}

/// The inverse of [`split_framed`].
pub fn framed(mode: u8, first: &[u8], rest: &[u8]) -> Vec<u8> {
    let length = u16::try_from(first.len()).expect("the first part fits a u16");
    let mut out = vec![mode];
    out.extend(length.to_be_bytes());
    out.extend(first);
    out.extend(rest);
    out
}
