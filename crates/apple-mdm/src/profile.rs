//! Configuration profiles (`.mobileconfig`): a generic builder that wraps payload dictionaries
//! into a `Configuration` profile, the enrollment profile (SCEP identity + MDM payload + CA
//! root), and CMS signing of a profile. Pure: no IO.
//!
//! Reference: `mdm/profiles/TopLevel.yaml`, `CommonPayloadKeys.yaml`, `com.apple.mdm.yaml`,
//! `com.apple.security.scep.yaml` and `com.apple.security.root.yaml` of Apple's
//! `device-management` repository.

use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{PKeyRef, Private};
use openssl::stack::Stack;
use openssl::x509::{X509, X509Ref};
use plist::{Dictionary, Value};
use uuid::Uuid;

use crate::dict::{self, DictBuilder};
use crate::push::Topic;
use crate::signature::{self, SignatureError, SignerCertificate};

/// Every MDM access right (`AccessRights` 1 | 2 | 4 | ... | 4096 = 8191).
pub const ALL_ACCESS_RIGHTS: i64 = 8191;

/// The server capability telling devices the server handles user channels.
pub const PER_USER_CONNECTIONS: &str = "com.apple.mdm.per-user-connections";

/// A `PayloadUUID` as Apple writes them: an upper-case hyphenated UUID.
fn uuid_string(uuid: &Uuid) -> String {
    uuid.hyphenated().to_string().to_uppercase()
}

/// One payload of a profile: the common payload keys plus its own content keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    /// `PayloadType`, e.g. `com.apple.mobiledevice.passwordpolicy`.
    pub payload_type: String,
    /// `PayloadIdentifier`: reverse-DNS, unique within the profile.
    pub identifier: String,
    /// `PayloadUUID`.
    pub uuid: Uuid,
    /// `PayloadVersion` (1).
    pub version: i64,
    /// `PayloadDisplayName`.
    pub display_name: Option<String>,
    /// `PayloadDescription`.
    pub description: Option<String>,
    /// `PayloadOrganization`.
    pub organization: Option<String>,
    /// The payload's own keys (e.g. `minLength` for a passcode payload).
    pub content: Dictionary,
}

impl Payload {
    /// A payload with a fresh random UUID and version 1.
    pub fn new(payload_type: impl Into<String>, identifier: impl Into<String>, content: Dictionary) -> Payload {
        Payload {
            payload_type: payload_type.into(),
            identifier: identifier.into(),
            uuid: Uuid::new_v4(),
            version: 1,
            display_name: None,
            description: None,
            organization: None,
            content,
        }
    }

    fn to_dict(&self) -> Dictionary {
        let mut dict = self.content.clone();
        let common = DictBuilder::new()
            .set("PayloadType", self.payload_type.as_str())
            .set("PayloadIdentifier", self.identifier.as_str())
            .set("PayloadUUID", uuid_string(&self.uuid))
            .set("PayloadVersion", self.version)
            .opt("PayloadDisplayName", self.display_name.as_deref())
            .opt("PayloadDescription", self.description.as_deref())
            .opt("PayloadOrganization", self.organization.as_deref())
            .build();
        for (key, value) in common {
            dict.insert(key, value);
        }
        dict
    }
}

/// A `Configuration` profile: top-level keys and its payloads.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigurationProfile {
    /// `PayloadIdentifier`: a profile with the same identifier replaces an installed one.
    pub identifier: String,
    /// `PayloadUUID`.
    pub uuid: Uuid,
    /// `PayloadDisplayName`.
    pub display_name: String,
    /// `PayloadOrganization`.
    pub organization: Option<String>,
    /// `PayloadDescription`.
    pub description: Option<String>,
    /// `PayloadRemovalDisallowed`.
    pub removal_disallowed: Option<bool>,
    /// `PayloadContent`.
    pub payloads: Vec<Payload>,
}

impl ConfigurationProfile {
    /// An empty profile with a fresh random UUID.
    pub fn new(identifier: impl Into<String>, display_name: impl Into<String>) -> ConfigurationProfile {
        ConfigurationProfile {
            identifier: identifier.into(),
            uuid: Uuid::new_v4(),
            display_name: display_name.into(),
            organization: None,
            description: None,
            removal_disallowed: None,
            payloads: Vec::new(),
        }
    }

    /// The profile as an XML plist (`application/x-apple-aspen-config` when served).
    pub fn to_xml(&self) -> Vec<u8> {
        let payloads = self.payloads.iter().map(|p| Value::Dictionary(p.to_dict())).collect();
        dict::to_xml(
            DictBuilder::new()
                .set("PayloadType", "Configuration")
                .set("PayloadVersion", 1)
                .set("PayloadIdentifier", self.identifier.as_str())
                .set("PayloadUUID", uuid_string(&self.uuid))
                .set("PayloadDisplayName", self.display_name.as_str())
                .opt("PayloadOrganization", self.organization.as_deref())
                .opt("PayloadDescription", self.description.as_deref())
                .opt("PayloadRemovalDisallowed", self.removal_disallowed)
                .set("PayloadContent", Value::Array(payloads))
                .build(),
        )
    }
}

/// The `com.apple.security.scep` payload's content: how the device gets its identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scep {
    /// `URL`: the SCEP endpoint.
    pub url: String,
    /// `Name`: the CA name understood by the SCEP server, if any.
    pub name: Option<String>,
    /// `Subject`: the certificate subject, one `[oid-name, value]` pair per RDN, e.g.
    /// `[("O", "Custody"), ("CN", "device")]`.
    pub subject: Vec<(String, String)>,
    /// `Challenge`: the pre-shared secret (one-time enrollment challenge).
    pub challenge: Option<String>,
    /// `Keysize`: 2048 by default.
    pub key_size: i64,
    /// `Key Usage`: 5 (signing and encryption) by default.
    pub key_usage: i64,
    /// `Retries`: 3 by default.
    pub retries: i64,
    /// `RetryDelay` in seconds: 10 by default.
    pub retry_delay: i64,
}

impl Scep {
    /// SCEP settings with Apple's usual values: RSA 2048, key usage 5, 3 retries 10 s apart.
    pub fn new(url: impl Into<String>, challenge: Option<String>, subject: Vec<(String, String)>) -> Scep {
        Scep {
            url: url.into(),
            name: None,
            subject,
            challenge,
            key_size: 2048,
            key_usage: 5,
            retries: 3,
            retry_delay: 10,
        }
    }

    fn content(&self) -> Dictionary {
        let subject = self
            .subject
            .iter()
            .map(|(oid, value)| {
                Value::Array(vec![Value::Array(vec![Value::String(oid.clone()), Value::String(value.clone())])])
            })
            .collect();
        DictBuilder::new()
            .set("URL", self.url.as_str())
            .opt("Name", self.name.as_deref())
            .set("Subject", Value::Array(subject))
            .opt("Challenge", self.challenge.as_deref())
            .set("Keysize", self.key_size)
            .set("Key Type", "RSA")
            .set("Key Usage", self.key_usage)
            .set("Retries", self.retries)
            .set("RetryDelay", self.retry_delay)
            .build()
    }
}

/// The `com.apple.mdm` payload's content (its `IdentityCertificateUUID` is filled in by the
/// enrollment profile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mdm {
    /// `ServerURL`: the command connection (must be `https://` for real devices).
    pub server_url: String,
    /// `CheckInURL`: the check-in endpoint; the server URL is used when absent.
    pub check_in_url: Option<String>,
    /// `Topic`: the push certificate's topic.
    pub topic: Topic,
    /// `AccessRights`: [`ALL_ACCESS_RIGHTS`] by default.
    pub access_rights: i64,
    /// `SignMessage`: true by default, so devices send `Mdm-Signature`.
    pub sign_message: bool,
    /// `CheckOutWhenRemoved`: true by default.
    pub check_out_when_removed: bool,
    /// `ServerCapabilities`: [`PER_USER_CONNECTIONS`] by default.
    pub server_capabilities: Vec<String>,
    /// `UseDevelopmentAPNS`: false by default.
    pub use_development_apns: bool,
}

impl Mdm {
    /// MDM settings with Custody's defaults: every access right, signed messages, check-out on
    /// removal, per-user connections, production APNs.
    pub fn new(server_url: impl Into<String>, check_in_url: Option<String>, topic: Topic) -> Mdm {
        Mdm {
            server_url: server_url.into(),
            check_in_url,
            topic,
            access_rights: ALL_ACCESS_RIGHTS,
            sign_message: true,
            check_out_when_removed: true,
            server_capabilities: vec![PER_USER_CONNECTIONS.to_owned()],
            use_development_apns: false,
        }
    }

    fn content(&self, identity: &Uuid) -> Dictionary {
        DictBuilder::new()
            .set("ServerURL", self.server_url.as_str())
            .opt("CheckInURL", self.check_in_url.as_deref())
            .set("Topic", self.topic.as_str())
            .set("IdentityCertificateUUID", uuid_string(identity))
            .set("AccessRights", self.access_rights)
            .set("SignMessage", self.sign_message)
            .set("CheckOutWhenRemoved", self.check_out_when_removed)
            .strings("ServerCapabilities", &self.server_capabilities)
            .set("UseDevelopmentAPNS", self.use_development_apns)
            .build()
    }
}

/// What goes into an enrollment profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentProfile {
    /// The profile's `PayloadIdentifier`; the payloads get `.scep`, `.mdm` and `.ca` appended.
    pub identifier: String,
    /// `PayloadDisplayName` of the profile.
    pub display_name: String,
    /// `PayloadOrganization` of the profile and its payloads.
    pub organization: String,
    /// `PayloadDescription` of the profile.
    pub description: Option<String>,
    /// The SCEP payload's settings.
    pub scep: Scep,
    /// The MDM payload's settings.
    pub mdm: Mdm,
    /// The CA certificate (DER) for the `com.apple.security.root` payload.
    pub ca_certificate_der: Vec<u8>,
}

impl EnrollmentProfile {
    /// The profile: a SCEP payload, an MDM payload whose `IdentityCertificateUUID` is the SCEP
    /// payload's `PayloadUUID`, and the CA root payload. UUIDs are fresh.
    pub fn build(&self) -> ConfigurationProfile {
        let with_names = |mut payload: Payload, name: &str| {
            payload.display_name = Some(name.to_owned());
            payload.organization = Some(self.organization.clone());
            payload
        };
        let scep = with_names(
            Payload::new("com.apple.security.scep", format!("{}.scep", self.identifier), Dictionary::new()),
            "Device identity (SCEP)",
        );
        let scep = Payload { content: DictBuilder::new().set("PayloadContent", self.scep.content()).build(), ..scep };
        let mdm = with_names(
            Payload::new("com.apple.mdm", format!("{}.mdm", self.identifier), self.mdm.content(&scep.uuid)),
            "Device management",
        );
        let ca = with_names(
            Payload::new(
                "com.apple.security.root",
                format!("{}.ca", self.identifier),
                DictBuilder::new()
                    .set("PayloadCertificateFileName", "custody-ca.cer")
                    .data("PayloadContent", &self.ca_certificate_der)
                    .build(),
            ),
            "Certificate authority",
        );
        ConfigurationProfile {
            organization: Some(self.organization.clone()),
            description: self.description.clone(),
            payloads: vec![ca, scep, mdm],
            ..ConfigurationProfile::new(self.identifier.clone(), self.display_name.clone())
        }
    }
}

/// Why a profile could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signing the profile failed: {0}")]
pub struct SignError(String);

/// Signs a profile: an attached CMS `SignedData` (DER) holding `xml`, signed by `cert`/`key`,
/// carrying `chain` (intermediates) so devices can build the path. Served as
/// `application/x-apple-aspen-config` like an unsigned one.
pub fn sign_profile(xml: &[u8], cert: &X509Ref, key: &PKeyRef<Private>, chain: &[X509]) -> Result<Vec<u8>, SignError> {
    let error = |e: openssl::error::ErrorStack| SignError(e.to_string());
    let mut certs = Stack::new().map_err(error)?;
    for c in chain {
        certs.push(c.clone()).map_err(error)?;
    }
    let signed = Pkcs7::sign(cert, key, &certs, xml, Pkcs7Flags::BINARY).map_err(error)?;
    signed.to_der().map_err(error)
}

/// Opens a signed profile: checks its signature (not the signer's chain) and returns the
/// profile's content and the signer's certificate. A device does this before installing.
pub fn open_signed_profile(der: &[u8]) -> Result<(Vec<u8>, SignerCertificate), SignatureError> {
    signature::verify_signed_data(der, None)
}
