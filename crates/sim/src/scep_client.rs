//! The device side of SCEP (RFC 8894): `GetCACaps`, `GetCACert`, then a `PKCSReq` (a CSR with
//! the profile's challenge, enveloped to the CA and signed by a self-signed certificate for the
//! new key, with the SCEP signed attributes) and the `CertRep` read back (signed by the CA,
//! the issued certificate enveloped to the device).
//!
//! [`PkcsReq::build`] and [`PkcsReq::read_cert_rep`] are pure; [`enroll`] does the HTTP.
//! OpenSSL does the cryptography; the RustCrypto `cms`, `der` and `x509-cert` crates are used
//! for their types only, to write the signed attributes and the challengePassword that the
//! `openssl` crate does not expose.

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{
    Any, BitString, ObjectIdentifier, OctetString, OctetStringRef, PrintableStringRef, SetOfVec, Utf8StringRef,
};
use der::{Decode, Encode};
use openssl::error::ErrorStack;
use openssl::hash::{MessageDigest, hash};
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509Ref};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::Attribute;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo};

use crate::device::error_chain;
use crate::identity::{self, Identity};
use crate::profile::ScepSettings;

const DATA: &str = "1.2.840.113549.1.7.1";
const SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
const CHALLENGE_PASSWORD: &str = "1.2.840.113549.1.9.7";
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";
const SHA1: &str = "1.3.14.3.2.26";
const SHA256: &str = "2.16.840.1.101.3.4.2.1";
const MESSAGE_TYPE: &str = "2.16.840.1.113733.1.9.2";
const PKI_STATUS: &str = "2.16.840.1.113733.1.9.3";
const FAIL_INFO: &str = "2.16.840.1.113733.1.9.4";
const SENDER_NONCE: &str = "2.16.840.1.113733.1.9.5";
const RECIPIENT_NONCE: &str = "2.16.840.1.113733.1.9.6";
const TRANSACTION_ID: &str = "2.16.840.1.113733.1.9.7";

/// The media type of a PKIOperation request and reply.
pub const PKI_MESSAGE_CONTENT_TYPE: &str = "application/x-pki-message";

fn oid(text: &str) -> ObjectIdentifier {
    ObjectIdentifier::new_unwrap(text)
}

/// Why SCEP enrollment failed.
#[derive(Debug, thiserror::Error)]
pub enum ScepClientError {
    /// An HTTP exchange failed or answered an error status.
    #[error("SCEP {operation}: {detail}")]
    Http {
        /// `GetCACaps`, `GetCACert` or `PKIOperation`.
        operation: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// The CA answered FAILURE.
    #[error("the CA refused the request: failInfo {fail_info:?}")]
    Refused {
        /// `failInfo` (`0` badAlg, `1` badMessageCheck, `2` badRequest, `3` badTime, `4` badCertId).
        fail_info: Option<String>,
    },
    /// The CA answered PENDING (manual approval), which a device cannot wait for here.
    #[error("the CA answered PENDING")]
    Pending,
    /// The reply is not a CertRep this request can accept.
    #[error("bad CertRep: {0}")]
    BadReply(String),
    /// Building the request failed.
    #[error("building the PKCSReq: {0}")]
    Build(String),
}

impl From<ErrorStack> for ScepClientError {
    fn from(e: ErrorStack) -> Self {
        ScepClientError::Build(e.to_string())
    }
}

impl From<der::Error> for ScepClientError {
    fn from(e: der::Error) -> Self {
        ScepClientError::Build(e.to_string())
    }
}

/// What `GetCACaps` said, as far as a device cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// `POSTPKIOperation`: PKIOperation by POST (else GET with a base64 `message`).
    pub post: bool,
    /// `AES`: envelope with AES-128-CBC (else DES-EDE3-CBC).
    pub aes: bool,
    /// `SHA-256`: sign with SHA-256 (else SHA-1).
    pub sha256: bool,
}

impl Capabilities {
    /// Reads a `GetCACaps` body: one keyword a line, case-insensitive. `SCEPStandard` implies
    /// AES, POST and SHA-256.
    pub fn parse(body: &str) -> Capabilities {
        let mut caps = Capabilities::default();
        for word in body.lines().map(str::trim) {
            match word.to_ascii_uppercase().as_str() {
                "POSTPKIOPERATION" => caps.post = true,
                "AES" => caps.aes = true,
                "SHA-256" => caps.sha256 = true,
                "SCEPSTANDARD" => {
                    caps.post = true;
                    caps.aes = true;
                    caps.sha256 = true;
                }
                _ => {}
            }
        }
        caps
    }

    fn digest(self) -> (MessageDigest, ObjectIdentifier) {
        if self.sha256 { (MessageDigest::sha256(), oid(SHA256)) } else { (MessageDigest::sha1(), oid(SHA1)) }
    }

    fn cipher(self) -> Cipher {
        if self.aes { Cipher::aes_128_cbc() } else { Cipher::des_ede3_cbc() }
    }
}

/// A PKCSReq as sent, with what is needed to read its reply.
pub struct PkcsReq {
    signer: Identity,
    transaction_id: String,
    sender_nonce: Vec<u8>,
    message: Vec<u8>,
}

impl PkcsReq {
    /// Builds a PKCSReq for `key`: a CSR for `subject` with `challenge` as its
    /// challengePassword, enveloped to `ca`, signed by a self-signed certificate for `key`.
    pub fn build(
        key: &PKey<Private>,
        subject: &[(String, String)],
        challenge: Option<&str>,
        ca: &X509Ref,
        caps: Capabilities,
    ) -> Result<PkcsReq, ScepClientError> {
        let name = identity::x509_name(subject)?;
        let csr = csr(key, &name, challenge)?;
        let signer = Identity::new(key.clone(), identity::self_signed_certificate(key, &name, 1)?)?;

        let mut recipients = Stack::new()?;
        recipients.push(ca.to_owned())?;
        let envelope = Pkcs7::encrypt(&recipients, &csr, caps.cipher(), Pkcs7Flags::BINARY)?.to_der()?;

        // Random rather than the hash of the public key RFC 8894 suggests: devices of a load
        // run may share a key, and each enrollment must be its own transaction.
        let mut transaction_id = [0u8; 16];
        openssl::rand::rand_bytes(&mut transaction_id)?;
        let transaction_id: String = transaction_id.iter().map(|b| format!("{b:02X}")).collect();
        let mut sender_nonce = vec![0u8; 16];
        openssl::rand::rand_bytes(&mut sender_nonce)?;

        let (md, digest_oid) = caps.digest();
        let attributes = SetOfVec::try_from(vec![
            attribute(CONTENT_TYPE, Any::encode_from(&oid(DATA))?)?,
            attribute(MESSAGE_DIGEST, Any::encode_from(&OctetString::new(hash(md, &envelope)?.to_vec())?)?)?,
            attribute(MESSAGE_TYPE, Any::encode_from(&PrintableStringRef::new("19")?)?)?,
            attribute(TRANSACTION_ID, Any::encode_from(&PrintableStringRef::new(&transaction_id)?)?)?,
            attribute(SENDER_NONCE, Any::encode_from(&OctetString::new(sender_nonce.clone())?)?)?,
        ])?;
        let signature = Signer::new(md, key)?.sign_oneshot_to_vec(&attributes.to_der()?)?;

        let certificate = x509_cert::Certificate::from_der(signer.certificate_der())?;
        let sid = IssuerAndSerialNumber {
            issuer: certificate.tbs_certificate.issuer.clone(),
            serial_number: certificate.tbs_certificate.serial_number.clone(),
        };
        let digest_algorithm = AlgorithmIdentifierOwned { oid: digest_oid, parameters: None };
        let signed = SignedData {
            version: CmsVersion::V1,
            digest_algorithms: SetOfVec::try_from(vec![digest_algorithm.clone()])?,
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: oid(DATA),
                econtent: Some(Any::encode_from(&OctetString::new(envelope)?)?),
            },
            certificates: Some(CertificateSet::try_from(vec![CertificateChoices::Certificate(certificate)])?),
            crls: None,
            signer_infos: SignerInfos::try_from(vec![SignerInfo {
                version: CmsVersion::V1,
                sid: SignerIdentifier::IssuerAndSerialNumber(sid),
                digest_alg: digest_algorithm,
                signed_attrs: Some(attributes),
                signature_algorithm: AlgorithmIdentifierOwned {
                    oid: oid(RSA_ENCRYPTION),
                    parameters: Some(Any::null()),
                },
                signature: OctetString::new(signature)?,
                unsigned_attrs: None,
            }])?,
        };
        let message = ContentInfo { content_type: oid(SIGNED_DATA), content: Any::encode_from(&signed)? }.to_der()?;
        Ok(PkcsReq { signer, transaction_id, sender_nonce, message })
    }

    /// The PKIMessage, DER.
    pub fn message(&self) -> &[u8] {
        &self.message
    }

    /// The transactionID (32 random hex digits).
    pub fn transaction_id(&self) -> &str {
        &self.transaction_id
    }

    /// Reads the CertRep answering this request as a device does: signed by `ca` (or by a
    /// certificate `ca` issued), for this transaction and nonce, SUCCESS, with the issued
    /// certificate for this key enveloped to the request's signer. Returns that certificate.
    pub fn read_cert_rep(&self, reply: &[u8], ca: &X509Ref) -> Result<X509, ScepClientError> {
        let bad = |what: &str| ScepClientError::BadReply(what.to_owned());
        let info = ContentInfo::from_der(reply).map_err(|e| bad(&format!("not CMS: {e}")))?;
        if info.content_type != oid(SIGNED_DATA) {
            return Err(bad("not SignedData"));
        }
        let signed: SignedData = info.content.decode_as().map_err(|e| bad(&format!("not SignedData: {e}")))?;
        let has_content = signed.encap_content_info.econtent.is_some();

        let p7 = Pkcs7::from_der(reply).map_err(|e| bad(&e.to_string()))?;
        let no_certs = Stack::new()?;
        let store = X509StoreBuilder::new()?.build();
        let mut content = Vec::new();
        let detached: Option<&[u8]> = if has_content { None } else { Some(&[]) };
        p7.verify(&no_certs, &store, detached, Some(&mut content), Pkcs7Flags::NOVERIFY | Pkcs7Flags::BINARY)
            .map_err(|e| bad(&format!("signature does not verify: {e}")))?;
        let signers = p7.signers(&no_certs, Pkcs7Flags::empty()).map_err(|e| bad(&e.to_string()))?;
        let signer = match signers.len() {
            1 => signers.get(0).expect("one signer"),
            n => return Err(bad(&format!("{n} signers"))),
        };
        let by_ca = signer.to_der()? == ca.to_der()? || apple_mdm::signature::verify_chain(signer, ca).is_ok();
        if !by_ca {
            return Err(bad("not signed by the CA"));
        }

        let signer_info = signed.signer_infos.0.get(0).ok_or_else(|| bad("no SignerInfo"))?;
        let attributes = signer_info.signed_attrs.as_ref().ok_or_else(|| bad("no signed attributes"))?;
        let value = |oid_text: &str| -> Option<Any> {
            attributes.iter().find(|a| a.oid == oid(oid_text)).and_then(|a| a.values.get(0).cloned())
        };
        let text = |oid_text: &str| value(oid_text).map(|any| String::from_utf8_lossy(any.value()).into_owned());
        let octets = |oid_text: &str| {
            value(oid_text).and_then(|any| any.decode_as::<OctetStringRef>().ok().map(|o| o.as_bytes().to_vec()))
        };

        if text(MESSAGE_TYPE).as_deref() != Some("3") {
            return Err(bad("messageType is not CertRep (3)"));
        }
        if text(TRANSACTION_ID).as_deref() != Some(self.transaction_id.as_str()) {
            return Err(bad("transactionID does not match"));
        }
        if octets(RECIPIENT_NONCE).as_deref() != Some(self.sender_nonce.as_slice()) {
            return Err(bad("recipientNonce is not our senderNonce"));
        }
        match text(PKI_STATUS).as_deref() {
            Some("0") => {}
            Some("2") => return Err(ScepClientError::Refused { fail_info: text(FAIL_INFO) }),
            Some("3") => return Err(ScepClientError::Pending),
            other => return Err(bad(&format!("pkiStatus {other:?}"))),
        }

        let envelope = Pkcs7::from_der(&content).map_err(|e| bad(&format!("content is not PKCS#7: {e}")))?;
        let degenerate = envelope
            .decrypt(self.signer.key(), self.signer.certificate(), Pkcs7Flags::empty())
            .map_err(|e| bad(&format!("cannot open the envelope: {e}")))?;
        let degenerate = Pkcs7::from_der(&degenerate).map_err(|e| bad(&format!("envelope content: {e}")))?;
        let certificates = degenerate.signed().and_then(|s| s.certificates()).ok_or_else(|| bad("no certificates"))?;
        certificates
            .iter()
            .find(|c| c.public_key().is_ok_and(|k| k.public_eq(self.signer.key())))
            .map(|c| c.to_owned())
            .ok_or_else(|| bad("no certificate for our key"))
    }
}

fn attribute(oid_text: &str, value: Any) -> Result<Attribute, der::Error> {
    let mut values = SetOfVec::new();
    values.insert(value)?;
    Ok(Attribute { oid: oid(oid_text), values })
}

/// A PKCS#10 request for `key` and `subject`, with a challengePassword when given
/// (a PrintableString when it fits, else a UTF8String).
fn csr(
    key: &PKey<Private>,
    subject: &openssl::x509::X509NameRef,
    challenge: Option<&str>,
) -> Result<Vec<u8>, ScepClientError> {
    let subject = Name::from_der(&subject.to_der()?)?;
    let public_key = SubjectPublicKeyInfoOwned::from_der(&key.public_key_to_der()?)?;
    let mut attributes = SetOfVec::new();
    if let Some(password) = challenge {
        let value = match PrintableStringRef::new(password) {
            Ok(printable) => Any::encode_from(&printable)?,
            Err(_) => Any::encode_from(&Utf8StringRef::new(password)?)?,
        };
        attributes.insert(attribute(CHALLENGE_PASSWORD, value)?)?;
    }
    let info = CertReqInfo { version: x509_cert::request::Version::V1, subject, public_key, attributes };
    let signature = Signer::new(MessageDigest::sha256(), key)?.sign_oneshot_to_vec(&info.to_der()?)?;
    let request = CertReq {
        info,
        algorithm: AlgorithmIdentifierOwned { oid: oid(SHA256_WITH_RSA), parameters: Some(Any::null()) },
        signature: BitString::from_bytes(&signature)?,
    };
    Ok(request.to_der()?)
}

fn with_operation(url: &str, operation: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}operation={operation}")
}

async fn get(http: &reqwest::Client, url: &str, operation: &'static str) -> Result<reqwest::Response, ScepClientError> {
    let fail = |detail: String| ScepClientError::Http { operation, detail };
    let response = http.get(with_operation(url, operation)).send().await.map_err(|e| fail(error_chain(&e)))?;
    if !response.status().is_success() {
        return Err(fail(format!("HTTP {}", response.status())));
    }
    Ok(response)
}

/// The CA certificate from a `GetCACert` body: one DER certificate
/// (`application/x-x509-ca-cert`), or a certificates-only PKCS#7 with the CA and its RA
/// (`application/x-x509-ca-ra-cert`), of which the first certificate is taken as the recipient.
fn ca_certificate(body: &[u8]) -> Result<X509, ScepClientError> {
    if let Ok(certificate) = X509::from_der(body) {
        return Ok(certificate);
    }
    let detail = "neither a certificate nor a certificates-only PKCS#7".to_owned();
    let p7 =
        Pkcs7::from_der(body).map_err(|_| ScepClientError::Http { operation: "GetCACert", detail: detail.clone() })?;
    p7.signed()
        .and_then(|s| s.certificates())
        .and_then(|c| c.iter().next().map(|c| c.to_owned()))
        .ok_or(ScepClientError::Http { operation: "GetCACert", detail })
}

/// Enrolls as a device does for the profile's SCEP payload: `GetCACaps`, `GetCACert`, a
/// `PKCSReq` for `key` (POST when the CA offers it). Returns the identity (the key with the
/// issued certificate) and the CA certificate.
pub async fn enroll(
    http: &reqwest::Client,
    settings: &ScepSettings,
    key: PKey<Private>,
    subject: &[(String, String)],
) -> Result<(Identity, X509), ScepClientError> {
    let caps = get(http, &settings.url, "GetCACaps").await?;
    let caps = Capabilities::parse(
        &caps.text().await.map_err(|e| ScepClientError::Http { operation: "GetCACaps", detail: e.to_string() })?,
    );
    let ca = get(http, &settings.url, "GetCACert").await?;
    let ca = ca.bytes().await.map_err(|e| ScepClientError::Http { operation: "GetCACert", detail: e.to_string() })?;
    let ca = ca_certificate(&ca)?;

    let request = PkcsReq::build(&key, subject, settings.challenge.as_deref(), &ca, caps)?;
    let fail = |detail: String| ScepClientError::Http { operation: "PKIOperation", detail };
    let url = with_operation(&settings.url, "PKIOperation");
    let response = if caps.post {
        http.post(url).header(reqwest::header::CONTENT_TYPE, PKI_MESSAGE_CONTENT_TYPE).body(request.message().to_vec())
    } else {
        use base64::Engine as _;
        let message = base64::engine::general_purpose::STANDARD.encode(request.message());
        http.get(url).query(&[("message", message)])
    }
    .send()
    .await
    .map_err(|e| fail(error_chain(&e)))?;
    if !response.status().is_success() {
        return Err(fail(format!("HTTP {}", response.status())));
    }
    let reply = response.bytes().await.map_err(|e| fail(e.to_string()))?;
    let certificate = request.read_cert_rep(&reply, &ca)?;
    Ok((Identity::new(key, certificate)?, ca))
}
