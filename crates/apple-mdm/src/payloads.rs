//! Configuration profiles central IT builds for devices: typed settings for a passcode policy,
//! a Wi-Fi network, an IKEv2 VPN, restrictions and an Exchange ActiveSync account, each
//! validated (every bad field named) and rendered into a complete top-level `Configuration`
//! profile; and [`inspect_mobileconfig`], which reads an uploaded `.mobileconfig` (XML, binary
//! or CMS-signed) and says what it holds or what is wrong with it. Pure: no IO.
//!
//! The settings are `serde` types (snake_case JSON, the API's and the store's form); the plist
//! keys are Apple's, from `mdm/profiles/com.apple.mobiledevice.passwordpolicy.yaml`,
//! `com.apple.wifi.managed.yaml`, `com.apple.vpn.managed.yaml`, `com.apple.applicationaccess.yaml`,
//! `com.apple.eas.account.yaml`, `TopLevel.yaml` and `CommonPayloadKeys.yaml` of Apple's
//! `device-management` repository.

use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use plist::{Dictionary, Value};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::dict::DictBuilder;
use crate::profile::{ConfigurationProfile, Payload};

/// One bad field of a settings value: its path relative to the settings (`ssid`,
/// `enterprise.eap_types`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn bad(errors: &mut Vec<FieldError>, field: &str, message: impl Into<String>) {
    errors.push(FieldError { field: field.to_owned(), message: message.into() });
}

/// The kinds of profile the library holds; `Custom` is an uploaded `.mobileconfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileKind {
    Passcode,
    Wifi,
    Vpn,
    Restrictions,
    Exchange,
    Custom,
}

impl ProfileKind {
    pub const ALL: [ProfileKind; 6] = [
        ProfileKind::Passcode,
        ProfileKind::Wifi,
        ProfileKind::Vpn,
        ProfileKind::Restrictions,
        ProfileKind::Exchange,
        ProfileKind::Custom,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProfileKind::Passcode => "passcode",
            ProfileKind::Wifi => "wifi",
            ProfileKind::Vpn => "vpn",
            ProfileKind::Restrictions => "restrictions",
            ProfileKind::Exchange => "exchange",
            ProfileKind::Custom => "custom",
        }
    }

    pub fn parse(raw: &str) -> Option<ProfileKind> {
        ProfileKind::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    /// What the kind configures, for people.
    pub fn describe(self) -> &'static str {
        match self {
            ProfileKind::Passcode => "Passcode policy",
            ProfileKind::Wifi => "Wi-Fi network",
            ProfileKind::Vpn => "VPN (IKEv2)",
            ProfileKind::Restrictions => "Restrictions",
            ProfileKind::Exchange => "Exchange ActiveSync account",
            ProfileKind::Custom => "Uploaded profile",
        }
    }
}

/// `com.apple.mobiledevice.passwordpolicy`: what a device passcode must be. Absent values are
/// left to the device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasscodePolicy {
    /// `forcePIN`: a passcode is required (true by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_passcode: Option<bool>,
    /// `allowSimple`: sequential or repeated characters are allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_simple: Option<bool>,
    /// `requireAlphanumeric`: at least one letter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_alphanumeric: Option<bool>,
    /// `minLength`: 0–16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<i64>,
    /// `minComplexChars`: 0–4 non-alphanumeric characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_complex_chars: Option<i64>,
    /// `maxFailedAttempts`: 2–11 before the device is erased.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failed_attempts: Option<i64>,
    /// `maxInactivity`: minutes until the device locks, 1–5, 10 or 15.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_inactivity_minutes: Option<i64>,
    /// `maxPINAgeInDays`: 1–730.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_passcode_age_days: Option<i64>,
    /// `pinHistory`: 1–50 earlier passcodes may not be reused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passcode_history: Option<i64>,
    /// `maxGracePeriod`: minutes a locked device may be unlocked without the passcode (0–240).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_grace_period_minutes: Option<i64>,
}

fn in_range(errors: &mut Vec<FieldError>, field: &str, value: Option<i64>, low: i64, high: i64) {
    if let Some(v) = value
        && !(low..=high).contains(&v)
    {
        bad(errors, field, format!("must be between {low} and {high}"));
    }
}

impl PasscodePolicy {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        in_range(errors, "min_length", self.min_length, 0, 16);
        in_range(errors, "min_complex_chars", self.min_complex_chars, 0, 4);
        in_range(errors, "max_failed_attempts", self.max_failed_attempts, 2, 11);
        if let Some(m) = self.max_inactivity_minutes
            && !matches!(m, 1..=5 | 10 | 15)
        {
            bad(errors, "max_inactivity_minutes", "must be 1 to 5, 10 or 15");
        }
        in_range(errors, "max_passcode_age_days", self.max_passcode_age_days, 1, 730);
        in_range(errors, "passcode_history", self.passcode_history, 1, 50);
        in_range(errors, "max_grace_period_minutes", self.max_grace_period_minutes, 0, 240);
        if self.require_passcode == Some(false)
            && (self.min_length.is_some() || self.require_alphanumeric.is_some() || self.min_complex_chars.is_some())
        {
            bad(errors, "require_passcode", "passcode rules need a required passcode");
        }
    }

    fn content(&self) -> Dictionary {
        DictBuilder::new()
            .set("forcePIN", self.require_passcode.unwrap_or(true))
            .opt("allowSimple", self.allow_simple)
            .opt("requireAlphanumeric", self.require_alphanumeric)
            .opt("minLength", self.min_length)
            .opt("minComplexChars", self.min_complex_chars)
            .opt("maxFailedAttempts", self.max_failed_attempts)
            .opt("maxInactivity", self.max_inactivity_minutes)
            .opt("maxPINAgeInDays", self.max_passcode_age_days)
            .opt("pinHistory", self.passcode_history)
            .opt("maxGracePeriod", self.max_grace_period_minutes)
            .build()
    }
}

/// A Wi-Fi network's encryption (`EncryptionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WifiEncryption {
    /// `WPA2`.
    Wpa2,
    /// `WPA3`.
    Wpa3,
}

/// An EAP method of an enterprise network (`AcceptEAPTypes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EapMethod {
    /// EAP-TLS (13): a certificate identifies the user.
    Tls,
    /// EAP-TTLS (21).
    Ttls,
    /// PEAP (25).
    Peap,
}

impl EapMethod {
    fn code(self) -> i64 {
        match self {
            EapMethod::Tls => 13,
            EapMethod::Ttls => 21,
            EapMethod::Peap => 25,
        }
    }
}

/// The 802.1X part of an enterprise network (`EAPClientConfiguration`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WifiEnterprise {
    /// `AcceptEAPTypes`: at least one.
    #[serde(default)]
    pub eap_types: Vec<EapMethod>,
    /// `UserName`: asked for on the device when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `OuterIdentity`: the identity sent in the clear (TTLS, PEAP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outer_identity: Option<String>,
    /// `TTLSInnerAuthentication`: `PAP`, `CHAP`, `MSCHAP`, `MSCHAPv2` or `EAP` (TTLS only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttls_inner_authentication: Option<String>,
    /// `TLSTrustedServerNames`: the authentication servers' certificate names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_server_names: Vec<String>,
}

/// `com.apple.wifi.managed`: a WPA2/WPA3 network, personal (a password) or enterprise (802.1X).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WifiNetwork {
    /// `SSID_STR`: 1–32 bytes.
    #[serde(default)]
    pub ssid: String,
    /// `HIDDEN_NETWORK`.
    #[serde(default)]
    pub hidden: bool,
    /// `AutoJoin` (true by default).
    #[serde(default = "yes")]
    pub auto_join: bool,
    /// `EncryptionType`.
    #[serde(default = "wpa2")]
    pub encryption: WifiEncryption,
    /// `Password` of a personal network: 8–63 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The 802.1X settings of an enterprise network (no password then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise: Option<WifiEnterprise>,
}

fn yes() -> bool {
    true
}

fn wpa2() -> WifiEncryption {
    WifiEncryption::Wpa2
}

impl WifiNetwork {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        let ssid = self.ssid.trim();
        if ssid.is_empty() {
            bad(errors, "ssid", "the network's name (SSID) is required");
        } else if ssid.len() > 32 {
            bad(errors, "ssid", "at most 32 bytes");
        }
        match (&self.enterprise, &self.password) {
            (None, None) => bad(errors, "password", "a personal network needs its password"),
            (None, Some(p)) if !(8..=63).contains(&p.chars().count()) => {
                bad(errors, "password", "must be 8 to 63 characters")
            }
            (None, Some(_)) => {}
            (Some(_), Some(_)) => bad(errors, "password", "an enterprise network takes no shared password"),
            (Some(e), None) => {
                if e.eap_types.is_empty() {
                    bad(errors, "enterprise.eap_types", "name at least one of tls, ttls, peap");
                }
                if let Some(inner) = &e.ttls_inner_authentication {
                    if !e.eap_types.contains(&EapMethod::Ttls) {
                        bad(errors, "enterprise.ttls_inner_authentication", "only with ttls");
                    } else if !["PAP", "CHAP", "MSCHAP", "MSCHAPv2", "EAP"].contains(&inner.as_str()) {
                        bad(
                            errors,
                            "enterprise.ttls_inner_authentication",
                            "must be PAP, CHAP, MSCHAP, MSCHAPv2 or EAP",
                        );
                    }
                }
                if e.username.as_deref().is_some_and(|u| u.trim().is_empty()) {
                    bad(errors, "enterprise.username", "must not be empty when given");
                }
                for (i, name) in e.trusted_server_names.iter().enumerate() {
                    if name.trim().is_empty() {
                        bad(errors, &format!("enterprise.trusted_server_names[{i}]"), "must not be empty");
                    }
                }
            }
        }
    }

    fn content(&self) -> Dictionary {
        let encryption = match self.encryption {
            WifiEncryption::Wpa2 => "WPA2",
            WifiEncryption::Wpa3 => "WPA3",
        };
        let eap = self.enterprise.as_ref().map(|e| {
            let types = e.eap_types.iter().map(|t| Value::Integer(t.code().into())).collect();
            let b = DictBuilder::new()
                .set("AcceptEAPTypes", Value::Array(types))
                .opt("UserName", e.username.as_deref())
                .opt("OuterIdentity", e.outer_identity.as_deref())
                .opt("TTLSInnerAuthentication", e.ttls_inner_authentication.as_deref());
            let b = if e.trusted_server_names.is_empty() {
                b
            } else {
                b.strings("TLSTrustedServerNames", &e.trusted_server_names)
            };
            Value::Dictionary(b.build())
        });
        DictBuilder::new()
            .set("SSID_STR", self.ssid.trim())
            .set("HIDDEN_NETWORK", self.hidden)
            .set("AutoJoin", self.auto_join)
            .set("EncryptionType", encryption)
            .set("IsHotspot", false)
            .opt("Password", self.password.as_deref())
            .opt("EAPClientConfiguration", eap)
            .build()
    }
}

/// How an IKEv2 client authenticates the tunnel (`IKEv2.AuthenticationMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VpnAuthentication {
    /// `SharedSecret`: with `shared_secret`.
    SharedSecret,
    /// `Certificate`: with `certificate_payload_uuid`.
    Certificate,
}

/// `com.apple.vpn.managed` of `VPNType` `IKEv2`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ikev2Vpn {
    /// `UserDefinedName`: the connection's name on the device.
    #[serde(default)]
    pub connection_name: String,
    /// `IKEv2.RemoteAddress`: the server's host name or address.
    #[serde(default)]
    pub remote_address: String,
    /// `IKEv2.RemoteIdentifier`.
    #[serde(default)]
    pub remote_identifier: String,
    /// `IKEv2.LocalIdentifier`.
    #[serde(default)]
    pub local_identifier: String,
    /// `IKEv2.AuthenticationMethod`.
    #[serde(default = "shared_secret")]
    pub authentication: VpnAuthentication,
    /// `IKEv2.SharedSecret` (shared-secret authentication).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_secret: Option<String>,
    /// `IKEv2.PayloadCertificateUUID`: the identity payload's UUID (certificate authentication).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_payload_uuid: Option<String>,
    /// `IKEv2.ExtendedAuthEnabled` with `AuthName`: EAP with this user name after IKE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eap_username: Option<String>,
    /// `IKEv2.DisconnectOnIdle` + `DisconnectOnIdleTimer` (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnect_on_idle_seconds: Option<i64>,
}

fn shared_secret() -> VpnAuthentication {
    VpnAuthentication::SharedSecret
}

/// A host name or IP address: letters, digits, dots, hyphens and colons, no scheme or path.
fn is_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        && !host.starts_with(['.', '-'])
}

fn required(errors: &mut Vec<FieldError>, field: &str, value: &str, what: &str) {
    if value.trim().is_empty() {
        bad(errors, field, format!("{what} is required"));
    }
}

impl Ikev2Vpn {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        required(errors, "connection_name", &self.connection_name, "the connection's name");
        if self.remote_address.trim().is_empty() {
            bad(errors, "remote_address", "the server's address is required");
        } else if !is_host(self.remote_address.trim()) {
            bad(errors, "remote_address", "must be a host name or an IP address (no scheme, no path)");
        }
        required(errors, "remote_identifier", &self.remote_identifier, "the remote identifier");
        required(errors, "local_identifier", &self.local_identifier, "the local identifier");
        match self.authentication {
            VpnAuthentication::SharedSecret => {
                if self.shared_secret.as_deref().is_none_or(|s| s.is_empty()) {
                    bad(errors, "shared_secret", "required with shared_secret authentication");
                }
                if self.certificate_payload_uuid.is_some() {
                    bad(errors, "certificate_payload_uuid", "only with certificate authentication");
                }
            }
            VpnAuthentication::Certificate => {
                match self.certificate_payload_uuid.as_deref() {
                    None => bad(errors, "certificate_payload_uuid", "required with certificate authentication"),
                    Some(u) if Uuid::parse_str(u).is_err() => bad(errors, "certificate_payload_uuid", "must be a UUID"),
                    Some(_) => {}
                }
                if self.shared_secret.is_some() {
                    bad(errors, "shared_secret", "only with shared_secret authentication");
                }
            }
        }
        if self.eap_username.as_deref().is_some_and(|u| u.trim().is_empty()) {
            bad(errors, "eap_username", "must not be empty when given");
        }
        in_range(errors, "disconnect_on_idle_seconds", self.disconnect_on_idle_seconds, 1, 86_400);
    }

    fn content(&self) -> Dictionary {
        let method = match self.authentication {
            VpnAuthentication::SharedSecret => "SharedSecret",
            VpnAuthentication::Certificate => "Certificate",
        };
        let ikev2 = DictBuilder::new()
            .set("RemoteAddress", self.remote_address.trim())
            .set("RemoteIdentifier", self.remote_identifier.trim())
            .set("LocalIdentifier", self.local_identifier.trim())
            .set("AuthenticationMethod", method)
            .opt("SharedSecret", self.shared_secret.as_deref())
            .opt("PayloadCertificateUUID", self.certificate_payload_uuid.as_deref().map(str::to_uppercase))
            .set("ExtendedAuthEnabled", i64::from(self.eap_username.is_some()))
            .opt("AuthName", self.eap_username.as_deref())
            .opt("DisconnectOnIdle", self.disconnect_on_idle_seconds.map(|_| 1i64))
            .opt("DisconnectOnIdleTimer", self.disconnect_on_idle_seconds)
            .build();
        DictBuilder::new()
            .set("VPNType", "IKEv2")
            .set("UserDefinedName", self.connection_name.trim())
            .set("IKEv2", Value::Dictionary(ikev2))
            .build()
    }
}

/// `com.apple.applicationaccess`: the common restrictions. Absent values are left to the device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restrictions {
    /// `allowCamera`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_camera: Option<bool>,
    /// `allowScreenShot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_screen_shot: Option<bool>,
    /// `allowAppInstallation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_app_installation: Option<bool>,
    /// `allowAppRemoval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_app_removal: Option<bool>,
    /// `allowInAppPurchases`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_in_app_purchases: Option<bool>,
    /// `allowCloudBackup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_cloud_backup: Option<bool>,
    /// `allowAirDrop` (supervised).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_air_drop: Option<bool>,
    /// `forceEncryptedBackup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_encrypted_backup: Option<bool>,
    /// `allowExplicitContent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_explicit_content: Option<bool>,
    /// `allowPassbookWhileLocked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_passbook_while_locked: Option<bool>,
    /// `allowUntrustedTLSPrompt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_untrusted_tls_prompt: Option<bool>,
    /// `allowSafari`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_safari: Option<bool>,
}

impl Restrictions {
    /// Each restriction with its plist key, in the order they are written.
    fn keys(&self) -> [(&'static str, Option<bool>); 12] {
        [
            ("allowCamera", self.allow_camera),
            ("allowScreenShot", self.allow_screen_shot),
            ("allowAppInstallation", self.allow_app_installation),
            ("allowAppRemoval", self.allow_app_removal),
            ("allowInAppPurchases", self.allow_in_app_purchases),
            ("allowCloudBackup", self.allow_cloud_backup),
            ("allowAirDrop", self.allow_air_drop),
            ("forceEncryptedBackup", self.force_encrypted_backup),
            ("allowExplicitContent", self.allow_explicit_content),
            ("allowPassbookWhileLocked", self.allow_passbook_while_locked),
            ("allowUntrustedTLSPrompt", self.allow_untrusted_tls_prompt),
            ("allowSafari", self.allow_safari),
        ]
    }

    fn validate(&self, errors: &mut Vec<FieldError>) {
        if self.keys().iter().all(|(_, v)| v.is_none()) {
            bad(errors, "allow_camera", "set at least one restriction");
        }
    }

    fn content(&self) -> Dictionary {
        let mut b = DictBuilder::new();
        for (key, value) in self.keys() {
            b = b.opt(key, value);
        }
        b.build()
    }
}

/// `com.apple.eas.account`: an Exchange ActiveSync account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeAccount {
    /// `EmailAccountName`: the account's name on the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    /// `Host`: the Exchange server's host name.
    #[serde(default)]
    pub host: String,
    /// `SSL` (true by default).
    #[serde(default = "yes")]
    pub ssl: bool,
    /// `UserName`: asked for on the device when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `EmailAddress`: asked for on the device when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_address: Option<String>,
    /// `MailNumberOfPastDaysToSync`: 0 (no limit), 1, 3, 7, 14 or 31.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_days_to_sync: Option<i64>,
    /// `PreventMove`: messages cannot be moved to other accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prevent_move: Option<bool>,
}

impl ExchangeAccount {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        if self.host.trim().is_empty() {
            bad(errors, "host", "the Exchange server's host name is required");
        } else if !is_host(self.host.trim()) {
            bad(errors, "host", "must be a host name (no scheme, no path)");
        }
        if let Some(email) = &self.email_address {
            let parts: Vec<&str> = email.trim().split('@').collect();
            if parts.len() != 2 || parts[0].is_empty() || !parts[1].contains('.') {
                bad(errors, "email_address", "must be an e-mail address");
            }
        }
        if self.username.as_deref().is_some_and(|u| u.trim().is_empty()) {
            bad(errors, "username", "must not be empty when given");
        }
        if self.mail_days_to_sync.is_some_and(|d| ![0, 1, 3, 7, 14, 31].contains(&d)) {
            bad(errors, "mail_days_to_sync", "must be 0, 1, 3, 7, 14 or 31");
        }
    }

    fn content(&self) -> Dictionary {
        DictBuilder::new()
            .opt("EmailAccountName", self.account_name.as_deref())
            .set("Host", self.host.trim())
            .set("SSL", self.ssl)
            .opt("UserName", self.username.as_deref().map(str::trim))
            .opt("EmailAddress", self.email_address.as_deref().map(str::trim))
            .opt("MailNumberOfPastDaysToSync", self.mail_days_to_sync)
            .opt("PreventMove", self.prevent_move)
            .build()
    }
}

/// The settings of a typed profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ProfileSettings {
    Passcode(PasscodePolicy),
    Wifi(WifiNetwork),
    Vpn(Ikev2Vpn),
    Restrictions(Restrictions),
    Exchange(ExchangeAccount),
}

impl ProfileSettings {
    /// Reads the settings of `kind` (JSON in the API and the store). `None` for `Custom`, which
    /// has no typed settings.
    pub fn deserialize_kind<'de, D: serde::Deserializer<'de>>(
        kind: ProfileKind,
        deserializer: D,
    ) -> Result<Option<ProfileSettings>, D::Error> {
        Ok(Some(match kind {
            ProfileKind::Passcode => ProfileSettings::Passcode(PasscodePolicy::deserialize(deserializer)?),
            ProfileKind::Wifi => ProfileSettings::Wifi(WifiNetwork::deserialize(deserializer)?),
            ProfileKind::Vpn => ProfileSettings::Vpn(Ikev2Vpn::deserialize(deserializer)?),
            ProfileKind::Restrictions => ProfileSettings::Restrictions(Restrictions::deserialize(deserializer)?),
            ProfileKind::Exchange => ProfileSettings::Exchange(ExchangeAccount::deserialize(deserializer)?),
            ProfileKind::Custom => return Ok(None),
        }))
    }

    pub fn kind(&self) -> ProfileKind {
        match self {
            ProfileSettings::Passcode(_) => ProfileKind::Passcode,
            ProfileSettings::Wifi(_) => ProfileKind::Wifi,
            ProfileSettings::Vpn(_) => ProfileKind::Vpn,
            ProfileSettings::Restrictions(_) => ProfileKind::Restrictions,
            ProfileSettings::Exchange(_) => ProfileKind::Exchange,
        }
    }

    /// The payload's `PayloadType`.
    pub fn payload_type(&self) -> &'static str {
        match self {
            ProfileSettings::Passcode(_) => "com.apple.mobiledevice.passwordpolicy",
            ProfileSettings::Wifi(_) => "com.apple.wifi.managed",
            ProfileSettings::Vpn(_) => "com.apple.vpn.managed",
            ProfileSettings::Restrictions(_) => "com.apple.applicationaccess",
            ProfileSettings::Exchange(_) => "com.apple.eas.account",
        }
    }

    /// Every bad field, named relative to the settings (`ssid`, `enterprise.eap_types`).
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        match self {
            ProfileSettings::Passcode(s) => s.validate(&mut errors),
            ProfileSettings::Wifi(s) => s.validate(&mut errors),
            ProfileSettings::Vpn(s) => s.validate(&mut errors),
            ProfileSettings::Restrictions(s) => s.validate(&mut errors),
            ProfileSettings::Exchange(s) => s.validate(&mut errors),
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    fn content(&self) -> Dictionary {
        match self {
            ProfileSettings::Passcode(s) => s.content(),
            ProfileSettings::Wifi(s) => s.content(),
            ProfileSettings::Vpn(s) => s.content(),
            ProfileSettings::Restrictions(s) => s.content(),
            ProfileSettings::Exchange(s) => s.content(),
        }
    }
}

/// A typed profile to render: the top-level names and the one payload's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedProfile {
    /// The profile's `PayloadIdentifier` (kept across versions: a new version replaces the old).
    pub identifier: String,
    /// `PayloadDisplayName`.
    pub display_name: String,
    /// `PayloadOrganization`.
    pub organization: String,
    /// `PayloadDescription`.
    pub description: Option<String>,
    pub settings: ProfileSettings,
}

/// Whether `identifier` is a reverse-DNS identifier (`gov.example.wifi`): dot-separated labels
/// of letters, digits, hyphens and underscores.
pub fn is_identifier(identifier: &str) -> bool {
    identifier.len() <= 200
        && identifier.split('.').count() >= 2
        && identifier
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')))
}

impl TypedProfile {
    /// The profile as an XML plist: `Configuration` with `uuid`, one payload of `uuid`'s
    /// settings (identifier `<identifier>.<kind>`, its own `payload_uuid`).
    pub fn render(&self, uuid: Uuid, payload_uuid: Uuid) -> Vec<u8> {
        let mut payload = Payload::new(
            self.settings.payload_type(),
            format!("{}.{}", self.identifier, self.settings.kind().as_str()),
            self.settings.content(),
        );
        payload.uuid = payload_uuid;
        payload.display_name = Some(self.display_name.clone());
        payload.organization = Some(self.organization.clone());
        let profile = ConfigurationProfile {
            uuid,
            organization: Some(self.organization.clone()),
            description: self.description.clone(),
            payloads: vec![payload],
            ..ConfigurationProfile::new(self.identifier.clone(), self.display_name.clone())
        };
        profile.to_xml()
    }
}

/// What an uploaded `.mobileconfig` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileSummary {
    /// `PayloadIdentifier`.
    pub identifier: String,
    /// `PayloadUUID`.
    pub uuid: String,
    /// `PayloadDisplayName`.
    pub display_name: Option<String>,
    /// `PayloadOrganization`.
    pub organization: Option<String>,
    /// The `PayloadType` of each item of `PayloadContent`.
    pub payload_types: Vec<String>,
    /// Whether it came CMS-signed.
    pub signed: bool,
}

/// Why an uploaded profile is refused: the key (path) at fault, or the form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    /// Neither a property list nor a CMS signed profile.
    #[error("not a configuration profile: {0}")]
    Unreadable(String),
    /// A key is missing or wrong.
    #[error("{key}: {message}")]
    Key { key: String, message: String },
}

fn key_error(key: impl Into<String>, message: impl Into<String>) -> InspectError {
    InspectError::Key { key: key.into(), message: message.into() }
}

/// The content of a CMS `SignedData` (DER or BER), without checking who signed it: the device
/// decides whether it trusts the signer.
fn signed_content(der: &[u8]) -> Result<Vec<u8>, InspectError> {
    let unreadable = |e: openssl::error::ErrorStack| InspectError::Unreadable(format!("not a signed profile ({e})"));
    let pkcs7 = Pkcs7::from_der(der).map_err(unreadable)?;
    let store = X509StoreBuilder::new().map_err(unreadable)?.build();
    let certs = Stack::new().map_err(unreadable)?;
    let mut content = Vec::new();
    pkcs7
        .verify(&certs, &store, None, Some(&mut content), Pkcs7Flags::NOVERIFY | Pkcs7Flags::NOSIGS)
        .map_err(unreadable)?;
    Ok(content)
}

fn text(dict: &Dictionary, key: &str, path: &str) -> Result<Option<String>, InspectError> {
    match dict.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(key_error(format!("{path}{key}"), "must be a non-empty string")),
    }
}

fn required_text(dict: &Dictionary, key: &str, path: &str) -> Result<String, InspectError> {
    text(dict, key, path)?.ok_or_else(|| key_error(format!("{path}{key}"), "is missing"))
}

/// Reads an uploaded `.mobileconfig` (XML or binary plist, or CMS-signed) and checks it is a
/// top-level `Configuration` profile with `PayloadIdentifier` and `PayloadUUID`, whose
/// `PayloadContent` items each have `PayloadType`, `PayloadIdentifier` and `PayloadUUID`, and
/// none of which is an MDM payload (a device refuses those from MDM).
pub fn inspect_mobileconfig(bytes: &[u8]) -> Result<ProfileSummary, InspectError> {
    let trimmed = bytes.trim_ascii_start();
    if trimmed.is_empty() {
        return Err(InspectError::Unreadable("the file is empty".into()));
    }
    let (content, signed) = if trimmed.starts_with(b"<") || trimmed.starts_with(b"bplist") {
        (bytes.to_vec(), false)
    } else {
        (signed_content(bytes)?, true)
    };
    let value = Value::from_reader(std::io::Cursor::new(&content))
        .map_err(|e| InspectError::Unreadable(format!("not a property list ({e})")))?;
    let Value::Dictionary(top) = value else {
        return Err(InspectError::Unreadable("the property list is not a dictionary".into()));
    };
    let payload_type = required_text(&top, "PayloadType", "")?;
    if payload_type != "Configuration" {
        return Err(key_error("PayloadType", format!("must be Configuration, not {payload_type}")));
    }
    let identifier = required_text(&top, "PayloadIdentifier", "")?;
    let uuid = required_text(&top, "PayloadUUID", "")?;
    let items = match top.get("PayloadContent") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) => return Err(key_error("PayloadContent", "holds no payload")),
        Some(_) => return Err(key_error("PayloadContent", "must be an array of payloads")),
        None => return Err(key_error("PayloadContent", "is missing")),
    };
    let mut payload_types = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("PayloadContent[{i}].");
        let Value::Dictionary(payload) = item else {
            return Err(key_error(format!("PayloadContent[{i}]"), "must be a dictionary"));
        };
        let kind = required_text(payload, "PayloadType", &path)?;
        required_text(payload, "PayloadIdentifier", &path)?;
        required_text(payload, "PayloadUUID", &path)?;
        if kind == "com.apple.mdm" {
            return Err(key_error(format!("{path}PayloadType"), "an MDM payload cannot be installed through MDM"));
        }
        payload_types.push(kind);
    }
    Ok(ProfileSummary {
        identifier,
        uuid,
        display_name: text(&top, "PayloadDisplayName", "")?,
        organization: text(&top, "PayloadOrganization", "")?,
        payload_types,
        signed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(kind: ProfileKind, json: serde_json::Value) -> ProfileSettings {
        ProfileSettings::deserialize_kind(kind, json).unwrap().unwrap()
    }

    fn fields(settings: &ProfileSettings) -> Vec<String> {
        settings.validate().err().unwrap_or_default().into_iter().map(|e| e.field).collect()
    }

    fn rendered(settings: ProfileSettings) -> Dictionary {
        let profile = TypedProfile {
            identifier: "gov.example.test".into(),
            display_name: "Test".into(),
            organization: "Example".into(),
            description: None,
            settings,
        };
        let uuid = Uuid::new_v4();
        let xml = profile.render(uuid, Uuid::new_v4());
        let summary = inspect_mobileconfig(&xml).expect("a rendered profile passes inspection");
        assert_eq!(summary.identifier, "gov.example.test");
        assert_eq!(summary.uuid, uuid.hyphenated().to_string().to_uppercase());
        let top = Value::from_reader(std::io::Cursor::new(xml)).unwrap().into_dictionary().unwrap();
        assert_eq!(top["PayloadType"].as_string(), Some("Configuration"));
        assert_eq!(top["PayloadVersion"].as_signed_integer(), Some(1));
        assert_eq!(top["PayloadOrganization"].as_string(), Some("Example"));
        let items = top["PayloadContent"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        let payload = items[0].as_dictionary().unwrap().clone();
        assert!(payload["PayloadIdentifier"].as_string().unwrap().starts_with("gov.example.test."));
        assert_ne!(payload["PayloadUUID"].as_string(), top["PayloadUUID"].as_string());
        payload
    }

    #[test]
    fn a_passcode_policy_renders_apple_keys_and_checks_ranges() {
        let settings = parse(
            ProfileKind::Passcode,
            serde_json::json!({"min_length": 6, "require_alphanumeric": true, "max_inactivity_minutes": 5,
                               "max_failed_attempts": 10}),
        );
        assert_eq!(fields(&settings), Vec::<String>::new());
        let payload = rendered(settings);
        assert_eq!(payload["PayloadType"].as_string(), Some("com.apple.mobiledevice.passwordpolicy"));
        assert_eq!(payload["forcePIN"].as_boolean(), Some(true));
        assert_eq!(payload["minLength"].as_signed_integer(), Some(6));
        assert_eq!(payload["maxInactivity"].as_signed_integer(), Some(5));
        assert_eq!(payload["maxFailedAttempts"].as_signed_integer(), Some(10));

        let wrong = parse(
            ProfileKind::Passcode,
            serde_json::json!({"min_length": 40, "max_inactivity_minutes": 7, "max_failed_attempts": 1}),
        );
        assert_eq!(fields(&wrong), ["min_length", "max_failed_attempts", "max_inactivity_minutes"]);
        assert!(ProfileSettings::deserialize_kind(ProfileKind::Passcode, serde_json::json!({"minLen": 4})).is_err());
    }

    #[test]
    fn a_personal_wifi_network_needs_its_ssid_and_password() {
        let settings =
            parse(ProfileKind::Wifi, serde_json::json!({"ssid": "Agency-Staff", "password": "correct horse"}));
        assert_eq!(fields(&settings), Vec::<String>::new());
        let payload = rendered(settings);
        assert_eq!(payload["PayloadType"].as_string(), Some("com.apple.wifi.managed"));
        assert_eq!(payload["SSID_STR"].as_string(), Some("Agency-Staff"));
        assert_eq!(payload["EncryptionType"].as_string(), Some("WPA2"));
        assert_eq!(payload["Password"].as_string(), Some("correct horse"));
        assert_eq!(payload["AutoJoin"].as_boolean(), Some(true));

        let missing = parse(ProfileKind::Wifi, serde_json::json!({"encryption": "wpa3"}));
        assert_eq!(fields(&missing), ["ssid", "password"]);
        let short = parse(ProfileKind::Wifi, serde_json::json!({"ssid": "x", "password": "short"}));
        assert_eq!(fields(&short), ["password"]);
        assert!(
            ProfileSettings::deserialize_kind(ProfileKind::Wifi, serde_json::json!({"encryption": "wep"})).is_err()
        );
    }

    #[test]
    fn an_enterprise_wifi_network_carries_its_eap_settings() {
        let settings = parse(
            ProfileKind::Wifi,
            serde_json::json!({"ssid": "Agency", "encryption": "wpa3",
                "enterprise": {"eap_types": ["peap", "ttls"], "username": "jdoe", "ttls_inner_authentication": "MSCHAPv2",
                               "trusted_server_names": ["radius.agency.example"]}}),
        );
        assert_eq!(fields(&settings), Vec::<String>::new());
        let payload = rendered(settings);
        assert_eq!(payload["EncryptionType"].as_string(), Some("WPA3"));
        assert!(payload.get("Password").is_none());
        let eap = payload["EAPClientConfiguration"].as_dictionary().unwrap();
        let types: Vec<i64> =
            eap["AcceptEAPTypes"].as_array().unwrap().iter().map(|v| v.as_signed_integer().unwrap()).collect();
        assert_eq!(types, [25, 21]);
        assert_eq!(eap["UserName"].as_string(), Some("jdoe"));
        assert_eq!(eap["TTLSInnerAuthentication"].as_string(), Some("MSCHAPv2"));

        let wrong = parse(
            ProfileKind::Wifi,
            serde_json::json!({"ssid": "Agency", "password": "a shared one",
                "enterprise": {"eap_types": [], "ttls_inner_authentication": "MSCHAPv2"}}),
        );
        assert_eq!(fields(&wrong), ["password"]);
        let wrong = parse(
            ProfileKind::Wifi,
            serde_json::json!({"ssid": "Agency", "enterprise": {"eap_types": [], "ttls_inner_authentication": "PAP"}}),
        );
        assert_eq!(fields(&wrong), ["enterprise.eap_types", "enterprise.ttls_inner_authentication"]);
    }

    #[test]
    fn an_ikev2_vpn_names_its_server_identities_and_authentication() {
        let settings = parse(
            ProfileKind::Vpn,
            serde_json::json!({"connection_name": "Agency VPN", "remote_address": "vpn.agency.example",
                "remote_identifier": "vpn.agency.example", "local_identifier": "device@agency.example",
                "shared_secret": "s3cret", "eap_username": "jdoe"}),
        );
        assert_eq!(fields(&settings), Vec::<String>::new());
        let payload = rendered(settings);
        assert_eq!(payload["PayloadType"].as_string(), Some("com.apple.vpn.managed"));
        assert_eq!(payload["VPNType"].as_string(), Some("IKEv2"));
        assert_eq!(payload["UserDefinedName"].as_string(), Some("Agency VPN"));
        let ikev2 = payload["IKEv2"].as_dictionary().unwrap();
        assert_eq!(ikev2["RemoteAddress"].as_string(), Some("vpn.agency.example"));
        assert_eq!(ikev2["AuthenticationMethod"].as_string(), Some("SharedSecret"));
        assert_eq!(ikev2["SharedSecret"].as_string(), Some("s3cret"));
        assert_eq!(ikev2["ExtendedAuthEnabled"].as_signed_integer(), Some(1));

        let wrong = parse(
            ProfileKind::Vpn,
            serde_json::json!({"connection_name": "x", "remote_address": "https://vpn/x", "remote_identifier": "",
                "local_identifier": "me", "authentication": "certificate", "certificate_payload_uuid": "nope"}),
        );
        assert_eq!(fields(&wrong), ["remote_address", "remote_identifier", "certificate_payload_uuid"]);
    }

    #[test]
    fn restrictions_write_only_what_is_set_and_need_one() {
        let settings = parse(
            ProfileKind::Restrictions,
            serde_json::json!({"allow_camera": false, "force_encrypted_backup": true, "allow_untrusted_tls_prompt": false}),
        );
        let payload = rendered(settings);
        assert_eq!(payload["PayloadType"].as_string(), Some("com.apple.applicationaccess"));
        assert_eq!(payload["allowCamera"].as_boolean(), Some(false));
        assert_eq!(payload["forceEncryptedBackup"].as_boolean(), Some(true));
        assert_eq!(payload["allowUntrustedTLSPrompt"].as_boolean(), Some(false));
        assert!(payload.get("allowAirDrop").is_none());
        assert_eq!(fields(&parse(ProfileKind::Restrictions, serde_json::json!({}))), ["allow_camera"]);
    }

    #[test]
    fn an_exchange_account_needs_its_host() {
        let settings = parse(
            ProfileKind::Exchange,
            serde_json::json!({"host": "mail.agency.example", "email_address": "jdoe@agency.example", "mail_days_to_sync": 14}),
        );
        let payload = rendered(settings);
        assert_eq!(payload["PayloadType"].as_string(), Some("com.apple.eas.account"));
        assert_eq!(payload["Host"].as_string(), Some("mail.agency.example"));
        assert_eq!(payload["SSL"].as_boolean(), Some(true));
        assert_eq!(payload["EmailAddress"].as_string(), Some("jdoe@agency.example"));
        let wrong =
            parse(ProfileKind::Exchange, serde_json::json!({"email_address": "nobody", "mail_days_to_sync": 2}));
        assert_eq!(fields(&wrong), ["host", "email_address", "mail_days_to_sync"]);
    }

    #[test]
    fn settings_serialize_back_to_the_json_they_came_from() {
        let json = serde_json::json!({"ssid": "Agency", "hidden": false, "auto_join": true, "encryption": "wpa2",
                                      "password": "correct horse"});
        let settings = parse(ProfileKind::Wifi, json.clone());
        assert_eq!(serde_json::to_value(&settings).unwrap(), json);
    }

    fn profile_xml(top: &str, payloads: &str) -> Vec<u8> {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict>{top}<key>PayloadContent</key><array>{payloads}</array></dict></plist>"#
        )
        .into_bytes()
    }

    const TOP: &str = "<key>PayloadType</key><string>Configuration</string><key>PayloadIdentifier</key>\
                       <string>gov.example.custom</string><key>PayloadUUID</key><string>6F1B0E4A-1111-4C4C-9D9D-000000000001</string>\
                       <key>PayloadDisplayName</key><string>Custom</string><key>PayloadVersion</key><integer>1</integer>";
    const PAYLOAD: &str = "<dict><key>PayloadType</key><string>com.apple.webClip.managed</string>\
                           <key>PayloadIdentifier</key><string>gov.example.custom.clip</string>\
                           <key>PayloadUUID</key><string>6F1B0E4A-1111-4C4C-9D9D-000000000002</string></dict>";

    #[test]
    fn an_uploaded_profile_is_summarised() {
        let summary = inspect_mobileconfig(&profile_xml(TOP, PAYLOAD)).unwrap();
        assert_eq!(summary.identifier, "gov.example.custom");
        assert_eq!(summary.uuid, "6F1B0E4A-1111-4C4C-9D9D-000000000001");
        assert_eq!(summary.display_name.as_deref(), Some("Custom"));
        assert_eq!(summary.payload_types, ["com.apple.webClip.managed"]);
        assert!(!summary.signed);
    }

    #[test]
    fn an_uploaded_profile_names_what_is_wrong() {
        let check = |bytes: Vec<u8>| match inspect_mobileconfig(&bytes) {
            Err(InspectError::Key { key, .. }) => key,
            other => panic!("expected a key error, got {other:?}"),
        };
        assert_eq!(check(profile_xml(&TOP.replace("Configuration", "com.apple.mdm"), PAYLOAD)), "PayloadType");
        assert_eq!(check(profile_xml(&TOP.replace("PayloadUUID", "PayloadUUIDx"), PAYLOAD)), "PayloadUUID");
        assert_eq!(check(profile_xml(TOP, "")), "PayloadContent");
        assert_eq!(
            check(profile_xml(TOP, &PAYLOAD.replace("<key>PayloadIdentifier</key>", "<key>Other</key>"))),
            "PayloadContent[0].PayloadIdentifier"
        );
        assert_eq!(
            check(profile_xml(TOP, &PAYLOAD.replace("com.apple.webClip.managed", "com.apple.mdm"))),
            "PayloadContent[0].PayloadType"
        );
        assert!(matches!(inspect_mobileconfig(b"hello"), Err(InspectError::Unreadable(_))));
        assert!(matches!(inspect_mobileconfig(b"<plist><dict>"), Err(InspectError::Unreadable(_))));
        assert!(matches!(inspect_mobileconfig(b""), Err(InspectError::Unreadable(_))));
    }

    #[test]
    fn a_signed_profile_is_read_without_trusting_its_signer() {
        use openssl::asn1::Asn1Time;
        use openssl::hash::MessageDigest;
        use openssl::pkey::PKey;
        use openssl::rsa::Rsa;
        use openssl::x509::{X509, X509NameBuilder};

        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "Somebody's signer").unwrap();
        let name = name.build();
        let mut cert = X509::builder().unwrap();
        cert.set_version(2).unwrap();
        cert.set_subject_name(&name).unwrap();
        cert.set_issuer_name(&name).unwrap();
        cert.set_pubkey(&key).unwrap();
        cert.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
        cert.set_not_after(&Asn1Time::days_from_now(1).unwrap()).unwrap();
        cert.sign(&key, MessageDigest::sha256()).unwrap();
        let cert = cert.build();
        let signed = crate::profile::sign_profile(&profile_xml(TOP, PAYLOAD), &cert, &key, &[]).unwrap();
        let summary = inspect_mobileconfig(&signed).unwrap();
        assert!(summary.signed);
        assert_eq!(summary.identifier, "gov.example.custom");
        assert_eq!(summary.payload_types, ["com.apple.webClip.managed"]);
    }
}
