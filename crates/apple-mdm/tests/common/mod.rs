//! Shared test helpers: fixtures from `tests/testdata`, and a small PKI made with OpenSSL.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, KeyUsage};
use openssl::x509::{X509, X509NameBuilder};

/// The bytes of a fixture in `tests/testdata`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/testdata").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A key and its certificate.
pub struct Identity {
    pub key: PKey<Private>,
    pub cert: X509,
}

/// Custody's CA, a device identity it issued, another CA, and a device identity that other CA
/// issued. Three RSA 2048 keys in all, made once per test binary.
pub struct Pki {
    pub ca: Identity,
    pub device: Identity,
    pub other_ca: Identity,
    pub stranger: Identity,
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca_key = rsa_key();
        let device_key = rsa_key();
        let other_key = rsa_key();
        let ca = certificate("Custody Test CA", &ca_key, None, true, 0, 3650);
        let device = certificate("00008110-000A1B2C3D4E5F60", &device_key, Some((&ca, &ca_key)), false, 0, 365);
        let other_ca = certificate("Some Other CA", &other_key, None, true, 0, 3650);
        // The stranger reuses the device's key: only the issuer differs.
        let stranger =
            certificate("00008110-000A1B2C3D4E5F60", &device_key, Some((&other_ca, &other_key)), false, 0, 365);
        Pki {
            ca: Identity { key: ca_key, cert: ca },
            device: Identity { key: device_key.clone(), cert: device },
            other_ca: Identity { key: other_key.clone(), cert: other_ca },
            stranger: Identity { key: device_key, cert: stranger },
        }
    })
}

pub fn rsa_key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).expect("RSA key")).expect("PKey")
}

/// A certificate for `key`, issued by `issuer` (self-signed when `None`), valid from
/// `from_days` to `to_days` days from now.
pub fn certificate(
    common_name: &str,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    is_ca: bool,
    from_days: i64,
    to_days: i64,
) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("O", "Custody Tests").unwrap();
    name.append_entry_by_text("CN", common_name).unwrap();
    let name = name.build();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut builder = X509::builder().unwrap();
    builder.set_version(2).unwrap();
    let serial = BigNum::from_u32(rand_serial()).unwrap().to_asn1_integer().unwrap();
    builder.set_serial_number(&serial).unwrap();
    builder.set_subject_name(&name).unwrap();
    builder.set_pubkey(key).unwrap();
    builder.set_not_before(&Asn1Time::from_unix(now + from_days * 86_400).unwrap()).unwrap();
    builder.set_not_after(&Asn1Time::from_unix(now + to_days * 86_400).unwrap()).unwrap();
    if is_ca {
        builder.append_extension(BasicConstraints::new().critical().ca().build().unwrap()).unwrap();
        builder.append_extension(KeyUsage::new().critical().key_cert_sign().crl_sign().build().unwrap()).unwrap();
    } else {
        builder.append_extension(BasicConstraints::new().build().unwrap()).unwrap();
        builder
            .append_extension(KeyUsage::new().critical().digital_signature().key_encipherment().build().unwrap())
            .unwrap();
    }
    match issuer {
        Some((issuer_cert, issuer_key)) => {
            builder.set_issuer_name(issuer_cert.subject_name()).unwrap();
            builder.sign(issuer_key, MessageDigest::sha256()).unwrap();
        }
        None => {
            builder.set_issuer_name(&name).unwrap();
            builder.sign(key, MessageDigest::sha256()).unwrap();
        }
    }
    builder.build()
}

fn rand_serial() -> u32 {
    let mut bytes = [0u8; 4];
    openssl::rand::rand_bytes(&mut bytes).unwrap();
    u32::from_be_bytes(bytes) >> 1
}
