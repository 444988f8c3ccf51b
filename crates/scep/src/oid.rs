//! The object identifiers SCEP, CMS and PKCS#9 use, in one place.

use der::asn1::ObjectIdentifier as Oid;

// CMS content types (RFC 5652).
pub(crate) const DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
pub(crate) const SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
pub(crate) const ENVELOPED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.3");

// PKCS#9 attributes.
pub(crate) const CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
pub(crate) const MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
pub(crate) const CHALLENGE_PASSWORD: Oid = Oid::new_unwrap("1.2.840.113549.1.9.7");

// SCEP's authenticated attributes (RFC 8894, section 3.2.1), under VeriSign's arc.
pub(crate) const MESSAGE_TYPE: Oid = Oid::new_unwrap("2.16.840.1.113733.1.9.2");
pub(crate) const PKI_STATUS: Oid = Oid::new_unwrap("2.16.840.1.113733.1.9.3");
pub(crate) const FAIL_INFO: Oid = Oid::new_unwrap("2.16.840.1.113733.1.9.4");
pub(crate) const SENDER_NONCE: Oid = Oid::new_unwrap("2.16.840.1.113733.1.9.5");
pub(crate) const RECIPIENT_NONCE: Oid = Oid::new_unwrap("2.16.840.1.113733.1.9.6");
pub(crate) const TRANSACTION_ID: Oid = Oid::new_unwrap("2.16.840.1.113733.1.9.7");

// Digests.
pub(crate) const MD5: Oid = Oid::new_unwrap("1.2.840.113549.2.5");
pub(crate) const SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
pub(crate) const SHA224: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.4");
pub(crate) const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
pub(crate) const SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
pub(crate) const SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");

// RSA (PKCS#1).
pub(crate) const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
pub(crate) const SHA1_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.5");
pub(crate) const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
pub(crate) const SHA384_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
pub(crate) const SHA512_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
pub(crate) const SHA224_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.14");

// Content-encryption algorithms.
pub(crate) const DES_CBC: Oid = Oid::new_unwrap("1.3.14.3.2.7");
pub(crate) const DES_EDE3_CBC: Oid = Oid::new_unwrap("1.2.840.113549.3.7");
pub(crate) const AES128_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.2");
pub(crate) const AES192_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.22");
pub(crate) const AES256_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.42");
