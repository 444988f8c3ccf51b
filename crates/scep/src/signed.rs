//! CMS SignedData with signed attributes (RFC 5652, section 5): verification of a request's
//! outer layer and signing of a CertRep, plus the degenerate certificates-only form.
//!
//! The structures are parsed and encoded with the `der`/`cms` types; every cryptographic step
//! (digest, RSA PKCS#1 v1.5 signature and its verification) is OpenSSL's.

use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier, SignerInfo};
use der::asn1::{Any, ObjectIdentifier, OctetString, OctetStringRef, SetOfVec};
use der::{Decode, Encode, Sequence, Tag, Tagged};
use openssl::hash::{MessageDigest, hash};
use openssl::pkey::Id;
use openssl::sign::{Signer, Verifier};
use openssl::x509::{X509, X509Ref};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;
use x509_cert::name::Name;

use crate::ca::CertificateAuthority;
use crate::message::ScepError;
use crate::{ber, oid};

/// The digest algorithms SCEP messages may use. MD5 is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Digest {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Digest {
    fn from_oid(oid: &ObjectIdentifier) -> Result<Self, ScepError> {
        Ok(match *oid {
            oid::SHA1 => Digest::Sha1,
            oid::SHA224 => Digest::Sha224,
            oid::SHA256 => Digest::Sha256,
            oid::SHA384 => Digest::Sha384,
            oid::SHA512 => Digest::Sha512,
            oid::MD5 => return Err(ScepError::UnsupportedAlgorithm("MD5 digest".into())),
            other => return Err(ScepError::UnsupportedAlgorithm(format!("digest {other}"))),
        })
    }

    fn oid(self) -> ObjectIdentifier {
        match self {
            Digest::Sha1 => oid::SHA1,
            Digest::Sha224 => oid::SHA224,
            Digest::Sha256 => oid::SHA256,
            Digest::Sha384 => oid::SHA384,
            Digest::Sha512 => oid::SHA512,
        }
    }

    /// The `shaNWithRSAEncryption` identifier that implies this digest.
    fn rsa_signature_oid(self) -> ObjectIdentifier {
        match self {
            Digest::Sha1 => oid::SHA1_WITH_RSA,
            Digest::Sha224 => oid::SHA224_WITH_RSA,
            Digest::Sha256 => oid::SHA256_WITH_RSA,
            Digest::Sha384 => oid::SHA384_WITH_RSA,
            Digest::Sha512 => oid::SHA512_WITH_RSA,
        }
    }

    pub(crate) fn message_digest(self) -> MessageDigest {
        match self {
            Digest::Sha1 => MessageDigest::sha1(),
            Digest::Sha224 => MessageDigest::sha224(),
            Digest::Sha256 => MessageDigest::sha256(),
            Digest::Sha384 => MessageDigest::sha384(),
            Digest::Sha512 => MessageDigest::sha512(),
        }
    }
}

/// SignedData as far as SCEP needs it. Certificates and CRLs stay as raw elements, so a
/// certificate reaches OpenSSL with exactly the bytes it was sent with.
#[derive(Clone, Debug, Sequence)]
struct SignedData {
    version: CmsVersion,
    digest_algorithms: SetOfVec<AlgorithmIdentifierOwned>,
    encap_content_info: EncapsulatedContentInfo,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    certificates: Option<SetOfVec<Any>>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    crls: Option<SetOfVec<Any>>,
    signer_infos: SetOfVec<SignerInfo>,
}

/// A SignedData whose one signature has been verified.
pub(crate) struct Verified {
    /// The encapsulated content (empty when absent).
    pub content: Vec<u8>,
    pub attributes: SetOfVec<Attribute>,
    pub signer: X509,
    pub digest: Digest,
}

/// Parses `input` as a ContentInfo holding SignedData (DER, or BER that re-encodes to DER),
/// finds the signer's certificate among those included, and verifies the signature over the
/// signed attributes and the messageDigest over the content.
pub(crate) fn verify(input: &[u8]) -> Result<Verified, ScepError> {
    let normalized;
    let der = if ContentInfo::from_der(input).is_ok() {
        input
    } else {
        normalized = ber::to_der(input).map_err(|e| ScepError::NotCms(e.to_string()))?;
        &normalized
    };
    let content_info = ContentInfo::from_der(der).map_err(|e| ScepError::NotCms(e.to_string()))?;
    if content_info.content_type != oid::SIGNED_DATA {
        return Err(ScepError::NotCms(format!("content type {} is not signedData", content_info.content_type)));
    }
    let signed: SignedData =
        content_info.content.decode_as().map_err(|e| ScepError::NotCms(format!("signedData: {e}")))?;

    let mut signers = signed.signer_infos.iter();
    let (Some(signer_info), None) = (signers.next(), signers.next()) else {
        return Err(ScepError::Malformed("a SCEP message has exactly one signer".into()));
    };
    let digest = Digest::from_oid(&signer_info.digest_alg.oid)?;
    check_signature_algorithm(&signer_info.signature_algorithm, digest)?;
    let Some(attributes) = signer_info.signed_attrs.clone() else {
        return Err(ScepError::Malformed("the signer has no signed attributes".into()));
    };

    let signer = find_signer(signed.certificates.as_ref(), &signer_info.sid)?;
    let key = signer.public_key().map_err(|e| ScepError::Malformed(format!("signer certificate key: {e}")))?;
    if key.id() != Id::RSA {
        return Err(ScepError::UnsupportedAlgorithm("the signer's key is not RSA".into()));
    }

    let encap = &signed.encap_content_info;
    if encap.econtent_type != oid::DATA {
        return Err(ScepError::Malformed(format!("encapsulated content type {} is not data", encap.econtent_type)));
    }
    let content = match &encap.econtent {
        None => Vec::new(),
        Some(any) if any.tag() == Tag::OctetString => any.value().to_vec(),
        Some(_) => return Err(ScepError::Malformed("encapsulated content is not an OCTET STRING".into())),
    };

    // RFC 5652 5.4: the signature covers the DER encoding of the SET OF attributes (tag 0x31).
    let signed_bytes = attributes.to_der().map_err(|e| ScepError::Malformed(e.to_string()))?;
    let mut verifier = Verifier::new(digest.message_digest(), &key).map_err(|_| ScepError::BadSignature)?;
    let good = verifier.verify_oneshot(signer_info.signature.as_bytes(), &signed_bytes).unwrap_or(false);
    if !good {
        return Err(ScepError::BadSignature);
    }

    // The attributes are authentic now: check that they bind the content.
    let content_type = single_value(&attributes, oid::CONTENT_TYPE)?
        .ok_or(ScepError::MissingAttribute("contentType"))?
        .decode_as::<ObjectIdentifier>()
        .map_err(|_| ScepError::Malformed("contentType is not an OBJECT IDENTIFIER".into()))?;
    if content_type != encap.econtent_type {
        return Err(ScepError::BadMessageDigest);
    }
    let expected =
        single_value(&attributes, oid::MESSAGE_DIGEST)?.ok_or(ScepError::MissingAttribute("messageDigest"))?;
    let expected = expected.decode_as::<OctetStringRef>().map_err(|_| ScepError::Malformed("messageDigest".into()))?;
    let actual = hash(digest.message_digest(), &content).map_err(|e| ScepError::Malformed(e.to_string()))?;
    if expected.as_bytes().len() == actual.len() && openssl::memcmp::eq(expected.as_bytes(), &actual) {
        Ok(Verified { content, attributes, signer, digest })
    } else {
        Err(ScepError::BadMessageDigest)
    }
}

fn check_signature_algorithm(algorithm: &AlgorithmIdentifierOwned, digest: Digest) -> Result<(), ScepError> {
    if algorithm.oid == oid::RSA_ENCRYPTION || algorithm.oid == digest.rsa_signature_oid() {
        Ok(())
    } else {
        Err(ScepError::UnsupportedAlgorithm(format!("signature algorithm {} with digest {digest:?}", algorithm.oid)))
    }
}

fn find_signer(certificates: Option<&SetOfVec<Any>>, sid: &SignerIdentifier) -> Result<X509, ScepError> {
    for element in certificates.into_iter().flat_map(|set| set.iter()) {
        let Ok(bytes) = element.to_der() else { continue };
        let Ok(certificate) = X509::from_der(&bytes) else { continue };
        if identifies(sid, &certificate) {
            return Ok(certificate);
        }
    }
    Err(ScepError::SignerCertificateMissing)
}

/// Whether a CMS signer or recipient identifier names `certificate`.
pub(crate) fn identifies(sid: &SignerIdentifier, certificate: &X509Ref) -> bool {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(id) => issuer_and_serial_matches(id, certificate),
        SignerIdentifier::SubjectKeyIdentifier(ski) => {
            certificate.subject_key_id().is_some_and(|own| own.as_slice() == ski.0.as_bytes())
        }
    }
}

pub(crate) fn issuer_and_serial_matches(id: &IssuerAndSerialNumber, certificate: &X509Ref) -> bool {
    let Ok(issuer) = certificate.issuer_name().to_der() else { return false };
    let Ok(wanted_issuer) = id.issuer.to_der() else { return false };
    let Ok(serial) = certificate.serial_number().to_bn().map(|bn| bn.to_vec()) else { return false };
    let wanted_serial = id.serial_number.as_bytes();
    let wanted_serial = &wanted_serial[wanted_serial.iter().take_while(|b| **b == 0).count()..];
    issuer == wanted_issuer && serial == wanted_serial
}

/// The one value of the attribute `oid`, if present. Two attributes with one OID, or an
/// attribute with other than one value, are malformed.
pub(crate) fn single_value(attributes: &SetOfVec<Attribute>, oid: ObjectIdentifier) -> Result<Option<&Any>, ScepError> {
    let mut matching = attributes.iter().filter(|a| a.oid == oid);
    let Some(attribute) = matching.next() else { return Ok(None) };
    if matching.next().is_some() {
        return Err(ScepError::Malformed(format!("attribute {oid} appears twice")));
    }
    let mut values = attribute.values.iter();
    match (values.next(), values.next()) {
        (Some(value), None) => Ok(Some(value)),
        _ => Err(ScepError::Malformed(format!("attribute {oid} must have exactly one value"))),
    }
}

pub(crate) fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, der::Error> {
    let mut values = SetOfVec::new();
    values.insert(value)?;
    Ok(Attribute { oid, values })
}

fn issuer_and_serial(certificate: &X509Ref) -> Result<IssuerAndSerialNumber, ScepError> {
    let internal = |e: &dyn std::fmt::Display| ScepError::Internal(e.to_string());
    let issuer =
        Name::from_der(&certificate.issuer_name().to_der().map_err(|e| internal(&e))?).map_err(|e| internal(&e))?;
    let serial = certificate.serial_number().to_bn().map_err(|e| internal(&e))?.to_vec();
    // An INTEGER's content: prefix a zero octet when the top bit is set (the serial is positive).
    let mut content = Vec::with_capacity(serial.len() + 1);
    if serial.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(&serial);
    let serial_number = x509_cert::serial_number::SerialNumber::new(&content).map_err(|e| internal(&e))?;
    Ok(IssuerAndSerialNumber { issuer, serial_number })
}

/// Signs `content` (absent when `None`) as SignedData by the CA, with contentType,
/// messageDigest and `extra` as signed attributes. The CA certificate is included.
pub(crate) fn sign(
    ca: &CertificateAuthority,
    digest: Digest,
    content: Option<&[u8]>,
    extra: Vec<Attribute>,
) -> Result<Vec<u8>, ScepError> {
    let internal = |e: &dyn std::fmt::Display| ScepError::Internal(e.to_string());
    let message_digest = hash(digest.message_digest(), content.unwrap_or_default()).map_err(|e| internal(&e))?;
    let mut attributes = vec![
        attribute(oid::CONTENT_TYPE, Any::encode_from(&oid::DATA).map_err(|e| internal(&e))?)
            .map_err(|e| internal(&e))?,
        attribute(
            oid::MESSAGE_DIGEST,
            Any::encode_from(&OctetString::new(message_digest.to_vec()).map_err(|e| internal(&e))?)
                .map_err(|e| internal(&e))?,
        )
        .map_err(|e| internal(&e))?,
    ];
    attributes.extend(extra);
    let attributes = SetOfVec::try_from(attributes).map_err(|e| internal(&e))?;

    let to_sign = attributes.to_der().map_err(|e| internal(&e))?;
    let mut signer = Signer::new(digest.message_digest(), ca.private_key()).map_err(|e| internal(&e))?;
    let signature = signer.sign_oneshot_to_vec(&to_sign).map_err(|e| internal(&e))?;

    let null = || Some(Any::null());
    let digest_algorithm = AlgorithmIdentifierOwned { oid: digest.oid(), parameters: null() };
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(issuer_and_serial(ca.certificate())?),
        digest_alg: digest_algorithm.clone(),
        signed_attrs: Some(attributes),
        signature_algorithm: AlgorithmIdentifierOwned { oid: oid::RSA_ENCRYPTION, parameters: null() },
        signature: OctetString::new(signature).map_err(|e| internal(&e))?,
        unsigned_attrs: None,
    };
    let econtent = match content {
        Some(bytes) => {
            Some(Any::encode_from(&OctetString::new(bytes).map_err(|e| internal(&e))?).map_err(|e| internal(&e))?)
        }
        None => None,
    };
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![digest_algorithm]).map_err(|e| internal(&e))?,
        encap_content_info: EncapsulatedContentInfo { econtent_type: oid::DATA, econtent },
        certificates: Some(
            SetOfVec::try_from(vec![Any::from_der(ca.certificate_der()).map_err(|e| internal(&e))?])
                .map_err(|e| internal(&e))?,
        ),
        crls: None,
        signer_infos: SetOfVec::try_from(vec![signer_info]).map_err(|e| internal(&e))?,
    };
    content_info(&signed)
}

/// A degenerate ("certificates-only") SignedData carrying one certificate (DER).
///
/// One, because `certificates` is a SET OF: DER sorts its elements, and clients that take the
/// first certificate as theirs must not find the CA's first.
pub(crate) fn certificate_only(certificate: &[u8]) -> Result<Vec<u8>, ScepError> {
    let internal = |e: &dyn std::fmt::Display| ScepError::Internal(e.to_string());
    let set = vec![Any::from_der(certificate).map_err(|e| internal(&e))?];
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo { econtent_type: oid::DATA, econtent: None },
        certificates: Some(SetOfVec::try_from(set).map_err(|e| internal(&e))?),
        crls: None,
        signer_infos: SetOfVec::new(),
    };
    content_info(&signed)
}

fn content_info(signed: &SignedData) -> Result<Vec<u8>, ScepError> {
    let internal = |e: der::Error| ScepError::Internal(e.to_string());
    let info = ContentInfo { content_type: oid::SIGNED_DATA, content: Any::encode_from(signed).map_err(internal)? };
    info.to_der().map_err(internal)
}
