//! A SCEP client written for the tests: it builds requests the way a device does (key, CSR
//! with a challengePassword, self-signed signer certificate, envelope to the CA, SignedData
//! with the SCEP attributes) and reads CertReps the way a device does. Envelopes and the checks
//! of the CA's replies use OpenSSL's own PKCS#7 code, not the crate's.
#![allow(dead_code)]

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{
    Any, BitString, ObjectIdentifier, OctetString, OctetStringRef, PrintableStringRef, SetOfVec, Utf8StringRef,
};
use der::{Decode, Encode, Tag, Tagged};
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
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509Builder, X509NameBuilder, X509Req, X509StoreContext};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::Attribute;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo};

pub const NOW: i64 = 1_790_000_000; // 2026-09-21

pub fn oid(text: &str) -> ObjectIdentifier {
    ObjectIdentifier::new_unwrap(text)
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A requester: a key and the certificate it signs its messages with.
pub struct Device {
    pub key: PKey<Private>,
    pub certificate: X509,
}

impl Device {
    /// A fresh RSA-2048 key and a self-signed certificate for it, as a device makes before its
    /// first enrollment.
    pub fn new(common_name: &str) -> Self {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
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

    /// The same key, signing with a certificate the CA issued (for renewal).
    pub fn with_certificate(&self, certificate: X509) -> Self {
        Self { key: self.key.clone(), certificate }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum ChallengeType {
    Printable,
    Utf8,
}

/// A PKCS#10 request for `key`, with a challengePassword attribute when `challenge` is given.
pub fn csr(key: &PKey<Private>, common_name: &str, challenge: Option<(&str, ChallengeType)>) -> Vec<u8> {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "Test Agency").unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, common_name).unwrap();
    let subject = Name::from_der(&name.build().to_der().unwrap()).unwrap();
    let public_key = SubjectPublicKeyInfoOwned::from_der(&key.public_key_to_der().unwrap()).unwrap();
    let mut attributes = SetOfVec::new();
    if let Some((password, kind)) = challenge {
        let value = match kind {
            ChallengeType::Printable => Any::encode_from(&PrintableStringRef::new(password).unwrap()).unwrap(),
            ChallengeType::Utf8 => Any::encode_from(&Utf8StringRef::new(password).unwrap()).unwrap(),
        };
        attributes.insert(attribute("1.2.840.113549.1.9.7", value)).unwrap();
    }
    let info = CertReqInfo { version: x509_cert::request::Version::V1, subject, public_key, attributes };
    let mut signer = Signer::new(MessageDigest::sha256(), key).unwrap();
    let signature = signer.sign_oneshot_to_vec(&info.to_der().unwrap()).unwrap();
    let request = CertReq {
        info,
        algorithm: AlgorithmIdentifierOwned { oid: oid("1.2.840.113549.1.1.11"), parameters: Some(Any::null()) },
        signature: BitString::from_bytes(&signature).unwrap(),
    };
    let der = request.to_der().unwrap();
    // The request must be one OpenSSL itself accepts.
    let parsed = X509Req::from_der(&der).unwrap();
    assert!(parsed.verify(&parsed.public_key().unwrap()).unwrap());
    der
}

pub fn attribute(oid_text: &str, value: Any) -> Attribute {
    let mut values = SetOfVec::new();
    values.insert(value).unwrap();
    Attribute { oid: oid(oid_text), values }
}

#[derive(Clone, Copy, Debug)]
pub enum TestDigest {
    Sha1,
    Sha256,
    Sha512,
}

impl TestDigest {
    fn md(self) -> MessageDigest {
        match self {
            TestDigest::Sha1 => MessageDigest::sha1(),
            TestDigest::Sha256 => MessageDigest::sha256(),
            TestDigest::Sha512 => MessageDigest::sha512(),
        }
    }

    fn oid(self) -> ObjectIdentifier {
        match self {
            TestDigest::Sha1 => oid("1.3.14.3.2.26"),
            TestDigest::Sha256 => oid("2.16.840.1.101.3.4.2.1"),
            TestDigest::Sha512 => oid("2.16.840.1.101.3.4.2.3"),
        }
    }
}

/// How the test client builds a PKIOperation.
#[derive(Clone)]
pub struct RequestOptions {
    pub message_type: &'static str,
    pub cipher: Cipher,
    pub digest: TestDigest,
    pub transaction_id: String,
    pub sender_nonce: Vec<u8>,
    /// Encode the envelope and the message as BER, as some CMS encoders do: indefinite lengths
    /// everywhere and long OCTET STRINGs split into segments.
    pub ber: bool,
}

impl Default for RequestOptions {
    fn default() -> Self {
        Self {
            message_type: "19",
            cipher: Cipher::aes_128_cbc(),
            digest: TestDigest::Sha256,
            transaction_id: "6B0D7D4B3E7F4A2C9D1E0F1A2B3C4D5E".into(),
            sender_nonce: (1..=16).collect(),
            ber: false,
        }
    }
}

/// A PKIOperation message: `content` enveloped to `recipient`, signed by `device`.
pub fn pki_message(device: &Device, recipient: &X509, content: &[u8], options: &RequestOptions) -> Vec<u8> {
    let mut recipients = Stack::new().unwrap();
    recipients.push(recipient.clone()).unwrap();
    let mut envelope =
        Pkcs7::encrypt(&recipients, content, options.cipher, Pkcs7Flags::BINARY).unwrap().to_der().unwrap();
    if options.ber {
        envelope = to_ber(&envelope);
    }

    let attributes = SetOfVec::try_from(vec![
        attribute("1.2.840.113549.1.9.3", Any::encode_from(&oid("1.2.840.113549.1.7.1")).unwrap()),
        attribute(
            "1.2.840.113549.1.9.4",
            Any::encode_from(&OctetString::new(hash(options.digest.md(), &envelope).unwrap().to_vec()).unwrap())
                .unwrap(),
        ),
        attribute(
            "2.16.840.1.113733.1.9.2",
            Any::encode_from(&PrintableStringRef::new(options.message_type).unwrap()).unwrap(),
        ),
        attribute(
            "2.16.840.1.113733.1.9.7",
            Any::encode_from(&PrintableStringRef::new(&options.transaction_id).unwrap()).unwrap(),
        ),
        attribute(
            "2.16.840.1.113733.1.9.5",
            Any::encode_from(&OctetString::new(options.sender_nonce.clone()).unwrap()).unwrap(),
        ),
    ])
    .unwrap();
    let mut signer = Signer::new(options.digest.md(), &device.key).unwrap();
    let signature = signer.sign_oneshot_to_vec(&attributes.to_der().unwrap()).unwrap();

    let certificate = x509_cert::Certificate::from_der(&device.certificate.to_der().unwrap()).unwrap();
    let sid = IssuerAndSerialNumber {
        issuer: certificate.tbs_certificate.issuer.clone(),
        serial_number: certificate.tbs_certificate.serial_number.clone(),
    };
    let digest_algorithm = AlgorithmIdentifierOwned { oid: options.digest.oid(), parameters: None };
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
    let mut message =
        ContentInfo { content_type: oid("1.2.840.113549.1.7.2"), content: Any::encode_from(&signed).unwrap() }
            .to_der()
            .unwrap();

    if options.ber {
        message = to_ber(&message);
        assert_eq!(message[..2], [0x30, 0x80], "indefinite length");
    }

    // OpenSSL must accept what this test client built as a valid signed PKCS#7 message.
    let parsed = Pkcs7::from_der(&message).unwrap();
    let store = X509StoreBuilder::new().unwrap().build();
    parsed.verify(&Stack::new().unwrap(), &store, None, None, Pkcs7Flags::NOVERIFY).unwrap();
    message
}

/// What a device reads out of a CertRep.
#[derive(Debug)]
pub struct CertRepView {
    pub message_type: String,
    pub pki_status: String,
    pub fail_info: Option<String>,
    pub transaction_id: String,
    pub sender_nonce: Vec<u8>,
    pub recipient_nonce: Vec<u8>,
    pub certificates: Vec<X509>,
    pub digest_oid: ObjectIdentifier,
}

/// Reads a CertRep as a device: OpenSSL verifies its signature and that the signer chains to
/// `ca_certificate`; the envelope (if any) is decrypted by OpenSSL with the device's key.
pub fn read_cert_rep(reply: &[u8], ca_certificate: &X509, device: &Device) -> CertRepView {
    let p7 = Pkcs7::from_der(reply).expect("a CertRep is PKCS#7");
    let mut store = X509StoreBuilder::new().unwrap();
    store.add_cert(ca_certificate.clone()).unwrap();
    let store = store.build();
    let mut content = Vec::new();
    let detached = p7.signed().is_some() && signed_content(reply).is_none();
    let indata: Option<&[u8]> = if detached { Some(&[]) } else { None };
    p7.verify(&Stack::new().unwrap(), &store, indata, Some(&mut content), Pkcs7Flags::empty())
        .expect("the CertRep's signature verifies and its signer chains to the CA");
    let signers = p7.signers(&Stack::new().unwrap(), Pkcs7Flags::empty()).unwrap();
    assert_eq!(signers.len(), 1);
    assert_eq!(signers.get(0).unwrap().to_der().unwrap(), ca_certificate.to_der().unwrap(), "signed by the CA");

    let info = ContentInfo::from_der(reply).unwrap();
    let signed: SignedData = info.content.decode_as().unwrap();
    let signer = signed.signer_infos.0.get(0).unwrap();
    let attributes = signer.signed_attrs.as_ref().unwrap();
    let value = |oid_text: &str| -> Option<Any> {
        attributes.iter().find(|a| a.oid == oid(oid_text)).map(|a| a.values.get(0).unwrap().clone())
    };
    let text = |oid_text: &str| -> Option<String> {
        value(oid_text).map(|any| {
            assert_eq!(any.tag(), Tag::PrintableString, "{oid_text} is a PrintableString");
            String::from_utf8(any.value().to_vec()).unwrap()
        })
    };
    let octets = |oid_text: &str| -> Vec<u8> {
        value(oid_text).map(|any| any.decode_as::<OctetStringRef>().unwrap().as_bytes().to_vec()).unwrap_or_default()
    };

    let certificates = if content.is_empty() {
        Vec::new()
    } else {
        let envelope = Pkcs7::from_der(&content).expect("the CertRep content is an envelope");
        let degenerate = envelope
            .decrypt(&device.key, &device.certificate, Pkcs7Flags::empty())
            .expect("the device decrypts the envelope with its key");
        let degenerate = Pkcs7::from_der(&degenerate).expect("the envelope holds PKCS#7");
        let certificates = degenerate.signed().and_then(|s| s.certificates()).expect("certificates-only SignedData");
        certificates.iter().map(|c| c.to_owned()).collect()
    };

    CertRepView {
        message_type: text("2.16.840.1.113733.1.9.2").expect("messageType"),
        pki_status: text("2.16.840.1.113733.1.9.3").expect("pkiStatus"),
        fail_info: text("2.16.840.1.113733.1.9.4"),
        transaction_id: text("2.16.840.1.113733.1.9.7").expect("transactionID"),
        sender_nonce: octets("2.16.840.1.113733.1.9.5"),
        recipient_nonce: octets("2.16.840.1.113733.1.9.6"),
        certificates,
        digest_oid: signer.digest_alg.oid,
    }
}

/// The encapsulated content of a SignedData, if present.
fn signed_content(message: &[u8]) -> Option<Vec<u8>> {
    let info = ContentInfo::from_der(message).ok()?;
    let signed: SignedData = info.content.decode_as().ok()?;
    signed.encap_content_info.econtent.map(|any| any.value().to_vec())
}

/// Whether `certificate` chains to `ca_certificate` by OpenSSL's own path validation.
pub fn chains_to(certificate: &X509, ca_certificate: &X509) -> bool {
    let mut store = X509StoreBuilder::new().unwrap();
    store.add_cert(ca_certificate.clone()).unwrap();
    let store = store.build();
    let mut context = X509StoreContext::new().unwrap();
    context.init(&store, certificate, &Stack::new().unwrap(), |c| c.verify_cert()).unwrap()
}

/// Re-encodes DER as BER: every constructed element with an indefinite length, and every
/// OCTET STRING (or `[0] IMPLICIT OCTET STRING`) longer than 64 octets as constructed segments.
pub fn to_ber(der: &[u8]) -> Vec<u8> {
    fn length(len: usize) -> Vec<u8> {
        if len < 0x80 {
            vec![len as u8]
        } else if len < 0x100 {
            vec![0x81, len as u8]
        } else {
            vec![0x82, (len >> 8) as u8, len as u8]
        }
    }
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < der.len() {
        let tag = der[pos];
        let (len, header) = match der[pos + 1] {
            n if n < 0x80 => (usize::from(n), 2),
            0x81 => (usize::from(der[pos + 2]), 3),
            0x82 => ((usize::from(der[pos + 2]) << 8) | usize::from(der[pos + 3]), 4),
            other => panic!("unexpected length form {other:#x}"),
        };
        let content = &der[pos + header..pos + header + len];
        pos += header + len;
        if tag & 0x20 != 0 {
            out.extend([tag, 0x80]);
            out.extend(to_ber(content));
            out.extend([0, 0]);
        } else if (tag == 0x04 || tag == 0x80) && content.len() > 64 {
            out.extend([tag | 0x20, 0x80]);
            for segment in content.chunks(64) {
                out.push(0x04);
                out.extend(length(segment.len()));
                out.extend(segment);
            }
            out.extend([0, 0]);
        } else {
            out.push(tag);
            out.extend(length(len));
            out.extend(content);
        }
    }
    out
}
