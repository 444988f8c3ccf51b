//! The APNs side of MDM as data: the push token and push magic a device reports in
//! `TokenUpdate`, the MDM topic, and the body of the push that wakes a device. Pure: no IO (the
//! push itself is sent elsewhere).

use std::fmt;

use crate::enrollment::string_newtype;

string_newtype!(
    /// The magic string a device sends in `TokenUpdate` (`PushMagic`), which the push body must
    /// carry.
    PushMagic
);
string_newtype!(
    /// The APNs topic the device subscribes to (`Topic`): the UID in the subject of the MDM push
    /// certificate, `com.apple.mgmt.External.<uuid>`.
    Topic
);

/// A device's APNs push token (`Token`, sent as `<data>` in `TokenUpdate`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PushToken(Vec<u8>);

impl PushToken {
    /// Wraps the token's bytes; `None` when empty.
    pub fn new(bytes: Vec<u8>) -> Option<Self> {
        if bytes.is_empty() { None } else { Some(PushToken(bytes)) }
    }

    /// The token's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The token as lowercase hex, the form APNs takes in the request path
    /// (`/3/device/<hex token>`).
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = String::with_capacity(self.0.len() * 2);
        for byte in &self.0 {
            hex.push(DIGITS[usize::from(byte >> 4)] as char);
            hex.push(DIGITS[usize::from(byte & 0x0f)] as char);
        }
        hex
    }

    /// Reads a token from its hex form (either case).
    pub fn from_hex(hex: &str) -> Option<Self> {
        if !hex.len().is_multiple_of(2) {
            return None;
        }
        let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        let bytes = hex
            .as_bytes()
            .chunks(2)
            .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
            .collect::<Option<Vec<u8>>>()?;
        PushToken::new(bytes)
    }
}

impl fmt::Debug for PushToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PushToken({})", self.to_hex())
    }
}

/// The body of an MDM push: the JSON object `{"mdm":"<PushMagic>"}` and nothing else (no `aps`
/// key), as Apple requires.
pub fn mdm_push_body(magic: &PushMagic) -> Vec<u8> {
    let mut body = String::from("{\"mdm\":\"");
    for c in magic.as_str().chars() {
        match c {
            '"' => body.push_str("\\\""),
            '\\' => body.push_str("\\\\"),
            c if u32::from(c) < 0x20 => body.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => body.push(c),
        }
    }
    body.push_str("\"}");
    body.into_bytes()
}
