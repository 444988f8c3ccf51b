//! Reading an enrollment profile as a device does: an XML (or binary) plist, or a CMS-signed
//! one, holding a `com.apple.security.scep` payload (how to get the identity), a
//! `com.apple.mdm` payload (where to check in and fetch commands, signed with that identity)
//! and optionally a `com.apple.security.root` payload (the CA certificate).
//!
//! Pure: no IO.

use apple_mdm::plist::{Dictionary, Value};
use apple_mdm::signature::SignerCertificate;

/// The settings of the `com.apple.security.scep` payload a device uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScepSettings {
    /// `PayloadUUID` of the payload (the MDM payload names it as its identity).
    pub payload_uuid: String,
    /// `URL`: the SCEP endpoint.
    pub url: String,
    /// `Name`: the CA name, if any.
    pub name: Option<String>,
    /// `Challenge`: the challenge password put into the CSR.
    pub challenge: Option<String>,
    /// `Subject`: `(short name, value)` per RDN, e.g. `[("O", "Custody"), ("CN", "...")]`.
    pub subject: Vec<(String, String)>,
    /// `Keysize` (2048 when absent).
    pub key_size: u32,
}

/// The settings of the `com.apple.mdm` payload a device uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdmSettings {
    /// `ServerURL`: the command connection.
    pub server_url: String,
    /// `CheckInURL`: the check-in endpoint (the server URL when the profile has none).
    pub check_in_url: String,
    /// `Topic`: the push topic.
    pub topic: String,
    /// `SignMessage`: whether messages carry `Mdm-Signature`.
    pub sign_message: bool,
    /// `IdentityCertificateUUID`: the payload giving the identity.
    pub identity_certificate_uuid: String,
    /// `CheckOutWhenRemoved`.
    pub check_out_when_removed: bool,
    /// `AccessRights`.
    pub access_rights: Option<i64>,
}

/// What a device takes from an enrollment profile.
#[derive(Debug, Clone)]
pub struct EnrollmentProfile {
    /// The profile's `PayloadIdentifier`.
    pub identifier: String,
    /// The profile's `PayloadUUID`.
    pub uuid: String,
    /// The profile's `PayloadDisplayName`.
    pub display_name: Option<String>,
    /// The SCEP payload.
    pub scep: ScepSettings,
    /// The MDM payload.
    pub mdm: MdmSettings,
    /// The `com.apple.security.root` payload's certificate (DER), if there is one.
    pub root_certificate_der: Option<Vec<u8>>,
    /// The signer of a signed profile (its signature was checked, not its chain).
    pub signer: Option<SignerCertificate>,
    /// The profile's plist, as installed (the signed content for a signed profile).
    pub xml: Vec<u8>,
}

/// Why a profile is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// Neither a plist nor a CMS SignedData holding one.
    #[error("the profile is neither a plist nor a signed plist: {0}")]
    Malformed(String),
    /// A signed profile whose signature does not verify.
    #[error("the profile's signature does not verify: {0}")]
    BadSignature(String),
    /// A payload or key is missing or has the wrong type.
    #[error("the profile lacks {0}")]
    Missing(String),
    /// The MDM payload's identity is not the SCEP payload.
    #[error("IdentityCertificateUUID {0} names no SCEP payload of the profile")]
    IdentityMismatch(String),
}

impl EnrollmentProfile {
    /// Reads a profile as served (`application/x-apple-aspen-config`): a plist, or a DER CMS
    /// SignedData whose signature is checked and whose content is the plist.
    pub fn parse(body: &[u8]) -> Result<EnrollmentProfile, ProfileError> {
        let trimmed = body.trim_ascii_start();
        let is_plist = trimmed.starts_with(b"<") || trimmed.starts_with(b"bplist");
        let (xml, signer) = if is_plist {
            (body.to_vec(), None)
        } else {
            let (content, signer) =
                apple_mdm::profile::open_signed_profile(body).map_err(|e| ProfileError::BadSignature(e.to_string()))?;
            (content, Some(signer))
        };
        let top = match Value::from_reader(std::io::Cursor::new(&xml)) {
            Ok(Value::Dictionary(d)) => d,
            Ok(_) => return Err(ProfileError::Malformed("the top level is not a dictionary".into())),
            Err(e) => return Err(ProfileError::Malformed(e.to_string())),
        };
        let payloads = match top.get("PayloadContent") {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_dictionary).collect::<Vec<_>>(),
            _ => return Err(ProfileError::Missing("PayloadContent".into())),
        };
        let of_type = |t: &'static str| payloads.iter().copied().filter(move |p| string(p, "PayloadType") == Some(t));

        let mdm =
            of_type("com.apple.mdm").next().ok_or_else(|| ProfileError::Missing("a com.apple.mdm payload".into()))?;
        let server_url = required(mdm, "ServerURL", "com.apple.mdm")?;
        let mdm = MdmSettings {
            check_in_url: string(mdm, "CheckInURL").map(str::to_owned).unwrap_or_else(|| server_url.clone()),
            server_url,
            topic: required(mdm, "Topic", "com.apple.mdm")?,
            sign_message: mdm.get("SignMessage").and_then(Value::as_boolean).unwrap_or(false),
            identity_certificate_uuid: required(mdm, "IdentityCertificateUUID", "com.apple.mdm")?,
            check_out_when_removed: mdm.get("CheckOutWhenRemoved").and_then(Value::as_boolean).unwrap_or(false),
            access_rights: mdm.get("AccessRights").and_then(Value::as_signed_integer),
        };

        let scep = of_type("com.apple.security.scep")
            .find(|p| string(p, "PayloadUUID").is_some_and(|u| u.eq_ignore_ascii_case(&mdm.identity_certificate_uuid)))
            .ok_or_else(|| ProfileError::IdentityMismatch(mdm.identity_certificate_uuid.clone()))?;
        let payload_uuid = required(scep, "PayloadUUID", "com.apple.security.scep")?;
        let content = scep
            .get("PayloadContent")
            .and_then(Value::as_dictionary)
            .ok_or_else(|| ProfileError::Missing("com.apple.security.scep PayloadContent".into()))?;
        let scep = ScepSettings {
            payload_uuid,
            url: required(content, "URL", "com.apple.security.scep")?,
            name: string(content, "Name").map(str::to_owned),
            challenge: string(content, "Challenge").map(str::to_owned),
            subject: subject(content.get("Subject"))?,
            key_size: content
                .get("Keysize")
                .and_then(Value::as_unsigned_integer)
                .and_then(|k| u32::try_from(k).ok())
                .unwrap_or(2048),
        };

        let root_certificate_der = of_type("com.apple.security.root")
            .find_map(|p| p.get("PayloadContent").and_then(Value::as_data))
            .map(<[u8]>::to_vec);

        Ok(EnrollmentProfile {
            identifier: required(&top, "PayloadIdentifier", "the profile")?,
            uuid: required(&top, "PayloadUUID", "the profile")?,
            display_name: string(&top, "PayloadDisplayName").map(str::to_owned),
            scep,
            mdm,
            root_certificate_der,
            signer,
            xml,
        })
    }
}

fn string<'a>(dict: &'a Dictionary, key: &str) -> Option<&'a str> {
    dict.get(key).and_then(Value::as_string)
}

fn required(dict: &Dictionary, key: &str, payload: &str) -> Result<String, ProfileError> {
    string(dict, key)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| ProfileError::Missing(format!("{payload} {key}")))
}

/// `Subject`: an array of RDNs, each an array of `[oid, value]` pairs.
fn subject(value: Option<&Value>) -> Result<Vec<(String, String)>, ProfileError> {
    let bad = || ProfileError::Missing("a well-formed com.apple.security.scep Subject".into());
    let Some(value) = value else { return Ok(Vec::new()) };
    let mut entries = Vec::new();
    for rdn in value.as_array().ok_or_else(bad)? {
        for pair in rdn.as_array().ok_or_else(bad)? {
            match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(oid), Value::String(v)]) => entries.push((oid.clone(), v.clone())),
                _ => return Err(bad()),
            }
        }
    }
    Ok(entries)
}
