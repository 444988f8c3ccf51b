//! The `Mdm-Signature` header: a base64 detached CMS (PKCS #7) `SignedData` over the exact
//! request body, made with the device's identity certificate (the enrollment profile sets
//! `SignMessage`). Verifying it, and checking that the signer's certificate was issued by
//! Custody's CA, are two separate steps. Pure: no IO.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use openssl::asn1::Asn1Object;
use openssl::hash::{Hasher, MessageDigest};
use openssl::nid::Nid;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags, Pkcs7Ref};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509, X509Ref, X509StoreContext};

/// The certificate that signed a message, as DER and parsed.
#[derive(Clone)]
pub struct SignerCertificate {
    der: Vec<u8>,
    x509: X509,
}

impl SignerCertificate {
    /// Parses a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<SignerCertificate, openssl::error::ErrorStack> {
        Ok(SignerCertificate { der: der.to_vec(), x509: X509::from_der(der)? })
    }

    /// The certificate, DER-encoded (what to store and compare to bind it to an enrollment).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The parsed certificate.
    pub fn x509(&self) -> &X509Ref {
        &self.x509
    }

    /// The SHA-256 of the DER certificate, as lowercase hex.
    pub fn sha256_hex(&self) -> String {
        let digest = self.x509.digest(MessageDigest::sha256()).expect("SHA-256 of a parsed certificate");
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The subject's common name, if it has one.
    pub fn common_name(&self) -> Option<String> {
        let entry = self.x509.subject_name().entries_by_nid(Nid::COMMONNAME).next()?;
        entry.data().to_string().ok()
    }
}

impl std::fmt::Debug for SignerCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignerCertificate")
            .field("common_name", &self.common_name())
            .field("sha256", &self.sha256_hex())
            .finish()
    }
}

impl PartialEq for SignerCertificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for SignerCertificate {}

/// Why an `Mdm-Signature` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header is not base64.
    #[error("Mdm-Signature is not base64")]
    MalformedBase64,
    /// The decoded header is not a CMS (PKCS #7) structure.
    #[error("Mdm-Signature is not a CMS structure")]
    NotCms,
    /// The CMS structure is not `SignedData`.
    #[error("Mdm-Signature is not CMS SignedData")]
    NotSignedData,
    /// The `SignedData` has no signer whose certificate it carries.
    #[error("Mdm-Signature has no signer certificate")]
    NoSigner,
    /// The `SignedData` has more than one signer.
    #[error("Mdm-Signature has {0} signers; exactly one is expected")]
    SeveralSigners(usize),
    /// The signature does not match the body (the body was altered, or signed by another key).
    #[error("Mdm-Signature does not verify over the body: {0}")]
    BadSignature(String),
}

/// Verifies an `Mdm-Signature` header over the request body and returns the signer's
/// certificate. It checks the signature cryptographically; it does *not* check the certificate
/// chain (see [`verify_chain`]).
pub fn verify_mdm_signature(header_b64: &str, body: &[u8]) -> Result<SignerCertificate, SignatureError> {
    let compact: String = header_b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = STANDARD.decode(compact).map_err(|_| SignatureError::MalformedBase64)?;
    match fast::verify(&der, body) {
        Some(signer) => Ok(signer),
        // A shape the fast reader does not know, or a signature it did not accept: OpenSSL
        // decides (and says why it refuses).
        None => verify_signed_data(&der, Some(body)).map(|(_, signer)| signer),
    }
}

/// The common `Mdm-Signature` (one signer, its certificate inside, RSA or ECDSA with SHA-1/2) read
/// with the `cms` types, and verified with the signer's public key, which is decoded once per
/// certificate: OpenSSL 3's decoders are the cost of every message otherwise. `None` whenever it
/// does not verify the signature itself.
mod fast {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    use cms::cert::CertificateChoices;
    use cms::content_info::ContentInfo;
    use cms::signed_data::{SignedData, SignerIdentifier};
    use der::{Decode, Encode};
    use openssl::hash::{MessageDigest, hash};
    use openssl::pkey::{PKey, Public};
    use openssl::sign::Verifier;
    use openssl::x509::X509;

    use super::SignerCertificate;

    const SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
    const MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
    /// Certificates remembered (parsed, with their public key) before the memory starts afresh.
    const REMEMBERED: usize = 100_000;

    type Known = (X509, PKey<Public>);

    fn known() -> &'static Mutex<HashMap<Vec<u8>, Known>> {
        static KNOWN: OnceLock<Mutex<HashMap<Vec<u8>, Known>>> = OnceLock::new();
        KNOWN.get_or_init(Default::default)
    }

    fn digest_of(oid: &str) -> Option<MessageDigest> {
        Some(match oid {
            "1.3.14.3.2.26" => MessageDigest::sha1(),
            "2.16.840.1.101.3.4.2.1" => MessageDigest::sha256(),
            "2.16.840.1.101.3.4.2.2" => MessageDigest::sha384(),
            "2.16.840.1.101.3.4.2.3" => MessageDigest::sha512(),
            _ => return None,
        })
    }

    pub fn verify(der: &[u8], body: &[u8]) -> Option<SignerCertificate> {
        let info = ContentInfo::from_der(der).ok()?;
        if info.content_type.to_string() != SIGNED_DATA {
            return None;
        }
        let signed = info.content.decode_as::<SignedData>().ok()?;
        let [signer] = signed.signer_infos.0.as_slice() else { return None };
        let SignerIdentifier::IssuerAndSerialNumber(sid) = &signer.sid else { return None };
        let certificate = signed.certificates.as_ref()?.0.iter().find_map(|choice| match choice {
            CertificateChoices::Certificate(c)
                if c.tbs_certificate.serial_number == sid.serial_number && c.tbs_certificate.issuer == sid.issuer =>
            {
                Some(c)
            }
            _ => None,
        })?;
        let cert_der = certificate.to_der().ok()?;
        let md = digest_of(&signer.digest_alg.oid.to_string())?;

        // What was signed: the signed attributes (whose message digest must be the body's), or
        // the body itself.
        let signed_bytes = match &signer.signed_attrs {
            Some(attributes) => {
                let body_digest = hash(md, body).ok()?;
                let claimed = attributes
                    .iter()
                    .find(|a| a.oid.to_string() == MESSAGE_DIGEST)?
                    .values
                    .get(0)?
                    .decode_as::<der::asn1::OctetString>()
                    .ok()?;
                if claimed.as_bytes() != &body_digest[..] {
                    return None;
                }
                attributes.to_der().ok()?
            }
            None => body.to_vec(),
        };

        let cached = known().lock().expect("not poisoned").get(&cert_der).cloned();
        let (x509, key) = match cached {
            Some(known) => known,
            None => {
                let x509 = X509::from_der(&cert_der).ok()?;
                let key = x509.public_key().ok()?;
                let mut map = known().lock().expect("not poisoned");
                if map.len() >= REMEMBERED {
                    map.clear();
                }
                map.insert(cert_der.clone(), (x509.clone(), key.clone()));
                (x509, key)
            }
        };
        let mut verifier = Verifier::new(md, &key).ok()?;
        verifier
            .verify_oneshot(signer.signature.as_bytes(), &signed_bytes)
            .ok()
            .filter(|verified| *verified)
            .map(|_| SignerCertificate { der: cert_der, x509 })
    }

    #[cfg(test)]
    mod tests {
        use openssl::asn1::Asn1Time;
        use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
        use openssl::rsa::Rsa;
        use openssl::stack::Stack;
        use openssl::x509::{X509, X509NameBuilder};

        use super::*;

        fn signed(body: &[u8]) -> (Vec<u8>, X509) {
            let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
            let mut name = X509NameBuilder::new().unwrap();
            name.append_entry_by_text("CN", "device").unwrap();
            let name = name.build();
            let mut builder = X509::builder().unwrap();
            builder.set_version(2).unwrap();
            builder.set_subject_name(&name).unwrap();
            builder.set_issuer_name(&name).unwrap();
            builder.set_pubkey(&key).unwrap();
            builder.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
            builder.set_not_after(&Asn1Time::days_from_now(1).unwrap()).unwrap();
            builder.sign(&key, MessageDigest::sha256()).unwrap();
            let cert = builder.build();
            let flags = Pkcs7Flags::DETACHED | Pkcs7Flags::BINARY;
            let pkcs7 = Pkcs7::sign(&cert, &key, &Stack::new().unwrap(), body, flags).unwrap();
            (pkcs7.to_der().unwrap(), cert)
        }

        #[test]
        fn the_fast_reader_verifies_a_detached_signature_and_rejects_another_body() {
            let (der, cert) = signed(b"<plist>body</plist>");
            let signer = verify(&der, b"<plist>body</plist>").expect("verified without OpenSSL's CMS code");
            assert_eq!(signer.der(), cert.to_der().unwrap().as_slice());
            assert!(verify(&der, b"<plist>other</plist>").is_none());
            assert!(verify(b"not der", b"x").is_none());
            // The same certificate again comes from the memory.
            assert!(known().lock().unwrap().contains_key(&cert.to_der().unwrap()));
            assert!(verify(&der, b"<plist>body</plist>").is_some());
        }
    }
}

/// Verifies a DER CMS `SignedData` with exactly one signer whose certificate it carries, over
/// `detached` content or its own content, and returns the content and the signer. The chain is
/// not checked.
pub(crate) fn verify_signed_data(
    der: &[u8],
    detached: Option<&[u8]>,
) -> Result<(Vec<u8>, SignerCertificate), SignatureError> {
    let pkcs7 = Pkcs7::from_der(der).map_err(|_| SignatureError::NotCms)?;
    if pkcs7.signed().is_none() {
        return Err(SignatureError::NotSignedData);
    }
    check_digest_algorithms(&pkcs7)?;
    let no_extra_certs = Stack::new().expect("allocating an empty stack");
    let signers = pkcs7.signers(&no_extra_certs, Pkcs7Flags::empty()).map_err(|_| SignatureError::NoSigner)?;
    let signer = match signers.len() {
        0 => return Err(SignatureError::NoSigner),
        1 => signers.get(0).expect("one signer").to_owned(),
        n => return Err(SignatureError::SeveralSigners(n)),
    };
    // No chain is checked here (NOVERIFY): one empty store serves every call.
    static EMPTY_STORE: std::sync::OnceLock<openssl::x509::store::X509Store> = std::sync::OnceLock::new();
    let empty_store = EMPTY_STORE.get_or_init(|| X509StoreBuilder::new().expect("allocating a store").build());
    let mut content = Vec::new();
    pkcs7
        .verify(&no_extra_certs, empty_store, detached, Some(&mut content), Pkcs7Flags::NOVERIFY | Pkcs7Flags::BINARY)
        .map_err(|e| SignatureError::BadSignature(e.to_string()))?;
    let der = signer.to_der().map_err(|e| SignatureError::BadSignature(e.to_string()))?;
    Ok((content, SignerCertificate { der, x509: signer }))
}

/// Refuses a `SignedData` whose `digestAlgorithms` name a digest OpenSSL cannot compute.
/// OpenSSL refuses it as well, but OpenSSL 3.0's `PKCS7_verify` then leaks its copy of the
/// detached content (its `PKCS7_dataInit` fails and the error path does not free it): a few
/// hundred bytes per message anyone can send. Found by fuzzing (`fuzz/`, target `mdm_signature`).
fn check_digest_algorithms(pkcs7: &Pkcs7Ref) -> Result<(), SignatureError> {
    let der = pkcs7.to_der().map_err(|_| SignatureError::NotCms)?;
    let algorithms = digest_algorithms(&der).ok_or(SignatureError::NotSignedData)?;
    for oid in algorithms {
        // As OpenSSL picks the digest: by the algorithm's NID, then initialised.
        let usable = Asn1Object::from_str(&oid)
            .ok()
            .and_then(|object| MessageDigest::from_nid(object.nid()))
            .is_some_and(|md| Hasher::new(md).is_ok());
        if !usable {
            return Err(SignatureError::BadSignature(format!("unsupported digest algorithm {oid}")));
        }
    }
    Ok(())
}

/// The OIDs of a DER `ContentInfo`'s `SignedData.digestAlgorithms`; `None` if it cannot be read.
fn digest_algorithms(der: &[u8]) -> Option<Vec<String>> {
    use cms::content_info::{CmsVersion, ContentInfo};
    use der::asn1::AnyRef;
    use der::{Decode, Reader, SliceReader, Tag, Tagged};
    use x509_cert::spki::AlgorithmIdentifierRef;

    let info = ContentInfo::from_der(der).ok()?;
    let mut signed_data = SliceReader::new(info.content.value()).ok()?;
    CmsVersion::decode(&mut signed_data).ok()?;
    let set = AnyRef::decode(&mut signed_data).ok()?;
    if set.tag() != Tag::Set {
        return None;
    }
    let mut items = SliceReader::new(set.value()).ok()?;
    let mut oids = Vec::new();
    while !items.is_finished() {
        oids.push(AlgorithmIdentifierRef::decode(&mut items).ok()?.oid.to_string());
    }
    Some(oids)
}

/// Why a certificate is not accepted as issued by the given CA.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The certificate was not issued (signed) by the CA.
    #[error("certificate was not issued by the CA: {0}")]
    NotIssuedByCa(String),
    /// The certificate (or the CA) has expired.
    #[error("certificate has expired")]
    Expired,
    /// The certificate (or the CA) is not valid yet.
    #[error("certificate is not valid yet")]
    NotYetValid,
    /// Any other reason OpenSSL gives.
    #[error("certificate rejected: {0}")]
    Rejected(String),
}

/// Checks that `cert` was issued by `ca` and that both are valid now.
pub fn verify_chain(cert: &X509Ref, ca: &X509Ref) -> Result<(), ChainError> {
    verify_chain_at(cert, ca, SystemTime::now())
}

/// Checks that `cert` was issued by `ca` and that both are valid at `at`.
pub fn verify_chain_at(cert: &X509Ref, ca: &X509Ref, at: SystemTime) -> Result<(), ChainError> {
    let internal = |e: openssl::error::ErrorStack| ChainError::Rejected(e.to_string());
    let mut store = X509StoreBuilder::new().map_err(internal)?;
    store.add_cert(ca.to_owned()).map_err(internal)?;
    let mut param = X509VerifyParam::new().map_err(internal)?;
    let seconds = match at.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    param.set_time(seconds);
    store.set_param(&param).map_err(internal)?;
    let store = store.build();
    let chain = Stack::new().map_err(internal)?;
    let mut context = X509StoreContext::new().map_err(internal)?;
    let (ok, error) = context.init(&store, cert, &chain, |c| Ok((c.verify_cert()?, c.error()))).map_err(internal)?;
    if ok {
        return Ok(());
    }
    // Codes from OpenSSL's x509_vfy.h.
    const NOT_YET_VALID: i32 = 9;
    const EXPIRED: i32 = 10;
    const NOT_ISSUED_BY_CA: [i32; 6] = [2, 7, 18, 19, 20, 21];
    let reason = error.error_string().to_owned();
    Err(match error.as_raw() {
        NOT_YET_VALID => ChainError::NotYetValid,
        EXPIRED => ChainError::Expired,
        code if NOT_ISSUED_BY_CA.contains(&code) => ChainError::NotIssuedByCa(reason),
        _ => ChainError::Rejected(reason),
    })
}
