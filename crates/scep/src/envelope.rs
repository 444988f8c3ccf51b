//! CMS EnvelopedData (RFC 5652, section 6), SCEP's `pkcsPKIEnvelope`: opening a request's
//! envelope with the CA key, and sealing a reply to the requester's certificate.
//!
//! Opening is done here rather than by `PKCS7_decrypt` for two reasons. First, Bleichenbacher:
//! the CA key that decrypts requests also signs certificates, so a padding oracle on it would be
//! a forgery oracle. When the RSA PKCS#1 v1.5 unwrap fails, a random content key is used instead
//! (RFC 3218, section 2.3.2) and the failure surfaces later, as every other failure does, as
//! [`ScepError::CannotDecrypt`]. Second, single DES: micromdm's `scepclient` 2.1 encrypts with
//! DES-CBC whatever the CA advertises, and OpenSSL 3 keeps DES-CBC in its legacy provider. It is
//! loaded into a private library context used for that one cipher, so the process-wide OpenSSL
//! configuration is left untouched.

use std::sync::OnceLock;

use cms::content_info::{CmsVersion, ContentInfo};
use cms::enveloped_data::{RecipientIdentifier, RecipientInfo};
use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef, SetOfVec};
use der::{Decode, Reader, SliceReader, Tag, TagNumber, Tagged};
use openssl::cipher::{Cipher, CipherRef};
use openssl::cipher_ctx::CipherCtx;
use openssl::lib_ctx::LibCtx;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey_ctx::PkeyCtx;
use openssl::provider::Provider;
use openssl::rand::rand_bytes;
use openssl::rsa::Padding;
use openssl::stack::Stack;
use openssl::x509::X509Ref;
use spki::AlgorithmIdentifierOwned;

use crate::ca::CertificateAuthority;
use crate::message::ScepError;
use crate::signed::issuer_and_serial_matches;
use crate::{ber, oid};

/// The content-encryption algorithm of an envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentEncryption {
    /// Single DES: read for old clients (micromdm `scepclient`), never written.
    DesCbc,
    DesEde3Cbc,
    Aes128Cbc,
    Aes192Cbc,
    Aes256Cbc,
}

impl ContentEncryption {
    fn from_oid(oid: &ObjectIdentifier) -> Result<Self, ScepError> {
        Ok(match *oid {
            oid::DES_CBC => ContentEncryption::DesCbc,
            oid::DES_EDE3_CBC => ContentEncryption::DesEde3Cbc,
            oid::AES128_CBC => ContentEncryption::Aes128Cbc,
            oid::AES192_CBC => ContentEncryption::Aes192Cbc,
            oid::AES256_CBC => ContentEncryption::Aes256Cbc,
            other => return Err(ScepError::UnsupportedAlgorithm(format!("content encryption {other}"))),
        })
    }

    /// Whether this is AES (any key size).
    pub fn is_aes(self) -> bool {
        matches!(self, ContentEncryption::Aes128Cbc | ContentEncryption::Aes192Cbc | ContentEncryption::Aes256Cbc)
    }

    /// Whether this cipher is too weak to protect anything today (single DES: 56-bit key).
    pub fn is_weak(self) -> bool {
        self == ContentEncryption::DesCbc
    }

    fn key_len(self) -> usize {
        match self {
            ContentEncryption::DesCbc => 8,
            ContentEncryption::DesEde3Cbc | ContentEncryption::Aes192Cbc => 24,
            ContentEncryption::Aes128Cbc => 16,
            ContentEncryption::Aes256Cbc => 32,
        }
    }

    fn iv_len(self) -> usize {
        if self.is_aes() { 16 } else { 8 }
    }

    fn cipher(self) -> Result<&'static CipherRef, ScepError> {
        Ok(match self {
            ContentEncryption::DesCbc => legacy_des_cbc()?,
            ContentEncryption::DesEde3Cbc => Cipher::des_ede3_cbc(),
            ContentEncryption::Aes128Cbc => Cipher::aes_128_cbc(),
            ContentEncryption::Aes192Cbc => Cipher::aes_192_cbc(),
            ContentEncryption::Aes256Cbc => Cipher::aes_256_cbc(),
        })
    }

    /// The cipher for a reply to a request that used `self`: the same AES, otherwise
    /// DES-EDE3-CBC (single DES is never written).
    pub fn for_reply(self) -> ContentEncryption {
        match self {
            ContentEncryption::DesCbc | ContentEncryption::DesEde3Cbc => ContentEncryption::DesEde3Cbc,
            aes => aes,
        }
    }

    fn symm_cipher(self) -> openssl::symm::Cipher {
        match self {
            ContentEncryption::DesCbc | ContentEncryption::DesEde3Cbc => openssl::symm::Cipher::des_ede3_cbc(),
            ContentEncryption::Aes128Cbc => openssl::symm::Cipher::aes_128_cbc(),
            ContentEncryption::Aes192Cbc => openssl::symm::Cipher::aes_192_cbc(),
            ContentEncryption::Aes256Cbc => openssl::symm::Cipher::aes_256_cbc(),
        }
    }
}

/// DES-CBC from OpenSSL's legacy provider, loaded once into a library context of its own.
struct LegacyDes {
    // Field order is drop order: the cipher before its provider, the provider before its context.
    cipher: Cipher,
    _provider: Provider,
    _context: LibCtx,
}

fn legacy_des_cbc() -> Result<&'static CipherRef, ScepError> {
    static LEGACY: OnceLock<Result<LegacyDes, String>> = OnceLock::new();
    let loaded = LEGACY.get_or_init(|| {
        let context = LibCtx::new().map_err(|e| e.to_string())?;
        let provider = Provider::try_load(Some(&context), "legacy", true).map_err(|e| e.to_string())?;
        let cipher = Cipher::fetch(Some(&context), "DES-CBC", None).map_err(|e| e.to_string())?;
        Ok(LegacyDes { cipher, _provider: provider, _context: context })
    });
    match loaded {
        Ok(legacy) => Ok(&legacy.cipher),
        Err(e) => Err(ScepError::UnsupportedAlgorithm(format!("DES-CBC needs OpenSSL's legacy provider: {e}"))),
    }
}

/// The parts of an EnvelopedData that opening needs.
struct Envelope {
    recipients: SetOfVec<RecipientInfo>,
    algorithm: AlgorithmIdentifierOwned,
    ciphertext: Vec<u8>,
}

fn parse(input: &[u8]) -> Result<Envelope, ScepError> {
    let normalized;
    let der = if ContentInfo::from_der(input).is_ok() {
        input
    } else {
        normalized = ber::to_der(input).map_err(|e| ScepError::Malformed(format!("pkcsPKIEnvelope: {e}")))?;
        &normalized
    };
    let malformed = |e: der::Error| ScepError::Malformed(format!("pkcsPKIEnvelope: {e}"));
    let info = ContentInfo::from_der(der).map_err(malformed)?;
    if info.content_type != oid::ENVELOPED_DATA {
        return Err(ScepError::Malformed(format!("pkcsPKIEnvelope has content type {}", info.content_type)));
    }
    info.content
        .sequence(|reader| {
            let _version = CmsVersion::decode(reader)?;
            let mut next = AnyRef::decode(reader)?;
            if next.tag() == (Tag::ContextSpecific { constructed: true, number: TagNumber::N0 }) {
                next = AnyRef::decode(reader)?; // originatorInfo: not used by SCEP
            }
            let recipients: SetOfVec<RecipientInfo> = next.decode_as()?;
            let (algorithm, ciphertext) = AnyRef::decode(reader)?.sequence(|reader| {
                let _content_type = ObjectIdentifier::decode(reader)?;
                let algorithm = AlgorithmIdentifierOwned::decode(reader)?;
                let content = AnyRef::decode(reader)?;
                Ok((algorithm, encrypted_content(content)?))
            })?;
            while !reader.is_finished() {
                AnyRef::decode(reader)?; // unprotectedAttrs
            }
            Ok(Envelope { recipients, algorithm, ciphertext })
        })
        .map_err(malformed)
}

/// `encryptedContent [0] IMPLICIT OCTET STRING`: primitive, or (from BER) constructed of
/// OCTET STRING segments.
fn encrypted_content(element: AnyRef<'_>) -> der::Result<Vec<u8>> {
    match element.tag() {
        Tag::ContextSpecific { constructed: false, number: TagNumber::N0 } => Ok(element.value().to_vec()),
        Tag::ContextSpecific { constructed: true, number: TagNumber::N0 } => {
            let mut reader = SliceReader::new(element.value())?;
            let mut content = Vec::new();
            while !reader.is_finished() {
                content.extend_from_slice(OctetStringRef::decode(&mut reader)?.as_bytes());
            }
            Ok(content)
        }
        other => Err(other.unexpected_error(None)),
    }
}

/// The content-encryption algorithm of an envelope, read without decrypting it.
pub(crate) fn content_encryption(input: &[u8]) -> Result<ContentEncryption, ScepError> {
    ContentEncryption::from_oid(&parse(input)?.algorithm.oid)
}

/// Opens a request's `pkcsPKIEnvelope` with the CA's key.
pub(crate) fn open(input: &[u8], ca: &CertificateAuthority) -> Result<(Vec<u8>, ContentEncryption), ScepError> {
    let envelope = parse(input)?;
    let ca_certificate = ca.certificate();
    let recipient = envelope
        .recipients
        .iter()
        .find_map(|info| match info {
            RecipientInfo::Ktri(ktri) if recipient_matches(&ktri.rid, ca_certificate) => Some(ktri),
            _ => None,
        })
        .ok_or(ScepError::NotEncryptedToThisCa)?;
    if recipient.key_enc_alg.oid != oid::RSA_ENCRYPTION {
        return Err(ScepError::UnsupportedAlgorithm(format!("key encryption {}", recipient.key_enc_alg.oid)));
    }
    let encryption = ContentEncryption::from_oid(&envelope.algorithm.oid)?;
    let iv = envelope
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<OctetStringRef>().ok())
        .map(|iv| iv.as_bytes().to_vec())
        .filter(|iv| iv.len() == encryption.iv_len())
        .ok_or_else(|| ScepError::Malformed("content encryption parameters are not the IV".into()))?;
    let cipher = encryption.cipher()?;

    let key = unwrap_key(ca, recipient.enc_key.as_bytes(), encryption.key_len());
    decrypt(cipher, &key, &iv, &envelope.ciphertext).map(|content| (content, encryption))
}

fn recipient_matches(rid: &RecipientIdentifier, certificate: &X509Ref) -> bool {
    match rid {
        RecipientIdentifier::IssuerAndSerialNumber(id) => issuer_and_serial_matches(id, certificate),
        RecipientIdentifier::SubjectKeyIdentifier(ski) => {
            certificate.subject_key_id().is_some_and(|own| own.as_slice() == ski.0.as_bytes())
        }
    }
}

/// RSA PKCS#1 v1.5 unwrap of the content key. Any failure yields a random key of the right
/// length instead of an error, so that a bad key is indistinguishable from bad content.
fn unwrap_key(ca: &CertificateAuthority, wrapped: &[u8], key_len: usize) -> Vec<u8> {
    let unwrapped = (|| {
        let mut ctx = PkeyCtx::new(ca.private_key())?;
        ctx.decrypt_init()?;
        ctx.set_rsa_padding(Padding::PKCS1)?;
        let mut key = Vec::new();
        ctx.decrypt_to_vec(wrapped, &mut key)?;
        Ok::<_, openssl::error::ErrorStack>(key)
    })();
    match unwrapped {
        Ok(key) if key.len() == key_len => key,
        _ => {
            let mut key = vec![0u8; key_len];
            rand_bytes(&mut key).expect("the OpenSSL random generator failed");
            key
        }
    }
}

fn decrypt(cipher: &CipherRef, key: &[u8], iv: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, ScepError> {
    let run = || {
        let mut ctx = CipherCtx::new()?;
        ctx.decrypt_init(Some(cipher), Some(key), Some(iv))?;
        let mut plaintext = Vec::with_capacity(ciphertext.len());
        ctx.cipher_update_vec(ciphertext, &mut plaintext)?;
        ctx.cipher_final_vec(&mut plaintext)?;
        Ok::<_, openssl::error::ErrorStack>(plaintext)
    };
    run().map_err(|_| ScepError::CannotDecrypt)
}

/// Encrypts `content` to `recipient`'s RSA key as EnvelopedData (PKCS#7 `PKCS7_encrypt`).
pub(crate) fn seal(recipient: &X509Ref, content: &[u8], encryption: ContentEncryption) -> Result<Vec<u8>, ScepError> {
    let internal = |e: openssl::error::ErrorStack| ScepError::Internal(e.to_string());
    let mut recipients = Stack::new().map_err(internal)?;
    recipients.push(recipient.to_owned()).map_err(internal)?;
    let envelope = Pkcs7::encrypt(&recipients, content, encryption.for_reply().symm_cipher(), Pkcs7Flags::BINARY)
        .map_err(internal)?;
    envelope.to_der().map_err(internal)
}
