//! The `Mdm-Signature` header over a body, as `web::device` verifies every check-in and report:
//! `verify_mdm_signature(header, body)`, then what the server reads of the signer (its digest,
//! name, and chain).
//!
//! Input: a mode byte, a big-endian `u16` length, that many bytes, then the body. An even mode
//! passes those bytes as the header's text; an odd mode passes them as the CMS DER itself, base64
//! encoded here, so the fuzzer works on the structure and not on base64.
#![no_main]

use apple_mdm::signature::{verify_chain, verify_mdm_signature};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use custody_fuzz::split_framed;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((mode, first, body)) = split_framed(data) else { return };
    let header = if mode % 2 == 0 { String::from_utf8_lossy(first).into_owned() } else { STANDARD.encode(first) };
    let Ok(signer) = verify_mdm_signature(&header, body) else { return };
    let _ = (signer.sha256_hex(), signer.common_name(), format!("{signer:?}"));
    let _ = verify_chain(signer.x509(), signer.x509());
});
