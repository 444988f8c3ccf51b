//! The simulated device's state and how it answers commands: a command plist in, a report
//! plist out (with Apple's result keys from `mdm/commands/*.yaml`), the state changed as the
//! command says (profiles installed and removed, apps, Lost Mode, lock, erase).
//!
//! Pure: no IO, no clock beyond the timestamps put into answers.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use apple_mdm::command::{AppSource, Command, CommandError, Setting};
use apple_mdm::plist::{Date, Dictionary, Value};

use crate::spec::{DeviceSpec, NotNow};

/// The `Status` a device answered a command with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum AnswerStatus {
    /// The command ran.
    Acknowledged,
    /// The command failed (the report carries an `ErrorChain`).
    Error,
    /// The device cannot run the command now.
    NotNow,
    /// The command was malformed (the report carries an `ErrorChain`).
    CommandFormatError,
}

impl AnswerStatus {
    /// Apple's `Status` string.
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerStatus::Acknowledged => "Acknowledged",
            AnswerStatus::Error => "Error",
            AnswerStatus::NotNow => "NotNow",
            AnswerStatus::CommandFormatError => "CommandFormatError",
        }
    }
}

/// One command a device received and answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandledCommand {
    /// `RequestType` as sent (possibly one the device does not know).
    pub request_type: String,
    /// `CommandUUID`.
    pub command_uuid: String,
    /// What the device answered.
    pub status: AnswerStatus,
}

/// A device's answer to one command: the report to send and what it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The report dictionary (`UDID`, `Status`, `CommandUUID` and the result keys).
    pub report: Dictionary,
    /// The command and the status answered.
    pub handled: HandledCommand,
}

impl Answer {
    /// The report as an XML plist, the body to `PUT`.
    pub fn to_xml(&self) -> Vec<u8> {
        to_xml(self.report.clone())
    }
}

/// A command body without a `CommandUUID` cannot be answered at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the server sent a command the device cannot answer: {0}")]
pub struct UnanswerableCommand(pub String);

/// A configuration profile installed on the device.
#[derive(Debug, Clone, PartialEq)]
pub struct InstalledProfile {
    /// `PayloadIdentifier`.
    pub identifier: String,
    /// `PayloadUUID`.
    pub uuid: String,
    /// `PayloadDisplayName`.
    pub display_name: Option<String>,
    /// `PayloadOrganization`.
    pub organization: Option<String>,
    /// `PayloadDescription`.
    pub description: Option<String>,
    /// `PayloadVersion`.
    pub version: i64,
    /// `PayloadRemovalDisallowed`.
    pub removal_disallowed: bool,
    /// Installed by MDM (`InstallProfile`), not by the user.
    pub managed: bool,
    /// `PayloadContent`, summarised as `ProfileList` gives it (type, identifier, UUID, names).
    pub payloads: Vec<Dictionary>,
}

impl InstalledProfile {
    /// Reads a profile plist (or a signed one) as `InstallProfile` delivers it.
    pub fn read(payload: &[u8], managed: bool) -> Result<InstalledProfile, String> {
        let trimmed = payload.trim_ascii_start();
        let xml = if trimmed.starts_with(b"<") || trimmed.starts_with(b"bplist") {
            payload.to_vec()
        } else {
            apple_mdm::profile::open_signed_profile(payload).map_err(|e| e.to_string())?.0
        };
        let top = match Value::from_reader(std::io::Cursor::new(xml)) {
            Ok(Value::Dictionary(d)) => d,
            Ok(_) => return Err("not a dictionary".into()),
            Err(e) => return Err(e.to_string()),
        };
        let text = |d: &Dictionary, k: &str| d.get(k).and_then(Value::as_string).map(str::to_owned);
        if text(&top, "PayloadType").as_deref() != Some("Configuration") {
            return Err("PayloadType is not Configuration".into());
        }
        let identifier = text(&top, "PayloadIdentifier").ok_or("no PayloadIdentifier")?;
        let uuid = text(&top, "PayloadUUID").ok_or("no PayloadUUID")?;
        let payloads = top
            .get("PayloadContent")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_dictionary)
                    .map(|p| {
                        let mut summary = Dictionary::new();
                        for key in [
                            "PayloadType",
                            "PayloadVersion",
                            "PayloadIdentifier",
                            "PayloadUUID",
                            "PayloadDisplayName",
                            "PayloadDescription",
                            "PayloadOrganization",
                        ] {
                            if let Some(v) = p.get(key) {
                                summary.insert(key.to_owned(), v.clone());
                            }
                        }
                        summary
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(InstalledProfile {
            identifier,
            uuid,
            display_name: text(&top, "PayloadDisplayName"),
            organization: text(&top, "PayloadOrganization"),
            description: text(&top, "PayloadDescription"),
            version: top.get("PayloadVersion").and_then(Value::as_signed_integer).unwrap_or(1),
            removal_disallowed: top.get("PayloadRemovalDisallowed").and_then(Value::as_boolean).unwrap_or(false),
            managed,
            payloads,
        })
    }

    fn to_dict(&self) -> Dictionary {
        let mut d = Dictionary::new();
        d.insert("PayloadIdentifier".into(), self.identifier.clone().into());
        d.insert("PayloadUUID".into(), self.uuid.clone().into());
        d.insert("PayloadVersion".into(), self.version.into());
        if let Some(v) = &self.display_name {
            d.insert("PayloadDisplayName".into(), v.clone().into());
        }
        if let Some(v) = &self.organization {
            d.insert("PayloadOrganization".into(), v.clone().into());
        }
        if let Some(v) = &self.description {
            d.insert("PayloadDescription".into(), v.clone().into());
        }
        d.insert("PayloadRemovalDisallowed".into(), self.removal_disallowed.into());
        d.insert("IsManaged".into(), self.managed.into());
        d.insert("IsEncrypted".into(), false.into());
        d.insert("HasRemovalPasscode".into(), false.into());
        d.insert("PayloadContent".into(), Value::Array(self.payloads.iter().cloned().map(Value::Dictionary).collect()));
        d
    }
}

/// An app on the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledApp {
    /// Bundle identifier.
    pub identifier: String,
    /// `Name`.
    pub name: String,
    /// `ShortVersion`.
    pub short_version: String,
    /// `Version` (the build).
    pub version: String,
    /// `BundleSize` in bytes.
    pub bundle_size: i64,
    /// Installed by MDM.
    pub managed: bool,
}

impl InstalledApp {
    fn to_dict(&self) -> Dictionary {
        let mut d = Dictionary::new();
        d.insert("Identifier".into(), self.identifier.clone().into());
        d.insert("Name".into(), self.name.clone().into());
        d.insert("ShortVersion".into(), self.short_version.clone().into());
        d.insert("Version".into(), self.version.clone().into());
        d.insert("BundleSize".into(), self.bundle_size.into());
        d.insert("DynamicSize".into(), (self.bundle_size / 4).into());
        d.insert("IsValidated".into(), true.into());
        d.insert("Installing".into(), false.into());
        d.insert("AppStoreVendable".into(), true.into());
        d.insert("DeviceBasedVPP".into(), self.managed.into());
        d.insert("BetaApp".into(), false.into());
        d.insert("AdHocCodeSigned".into(), false.into());
        d.insert("HasUpdateAvailable".into(), false.into());
        d.insert("IsAppClip".into(), false.into());
        d
    }
}

/// A certificate on the device, for `CertificateList`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledCertificate {
    /// `CommonName`.
    pub common_name: String,
    /// `IsIdentity`: the device holds its private key.
    pub is_identity: bool,
    /// `Data`: DER.
    pub der: Vec<u8>,
}

/// Lost Mode as enabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostMode {
    /// `Message`.
    pub message: Option<String>,
    /// `PhoneNumber`.
    pub phone_number: Option<String>,
    /// `Footnote`.
    pub footnote: Option<String>,
}

/// Everything a simulated device knows and keeps between commands.
#[derive(Debug, Clone)]
pub struct DeviceState {
    /// The hardware and behaviour.
    pub spec: DeviceSpec,
    /// Configuration profiles, the enrollment profile first.
    pub profiles: Vec<InstalledProfile>,
    /// Apps.
    pub apps: Vec<InstalledApp>,
    /// Certificates: the identity and the CA root.
    pub certificates: Vec<InstalledCertificate>,
    /// Lost Mode, when enabled.
    pub lost_mode: Option<LostMode>,
    /// Locked by `DeviceLock` (until [`DeviceState::unlock`]).
    pub locked: bool,
    /// Erased by `EraseDevice`: it no longer answers.
    pub wiped: bool,
    /// `RestartDevice` count.
    pub restarts: u32,
    /// `ShutDownDevice` count.
    pub shutdowns: u32,
    /// Sounds played in Lost Mode.
    pub sounds_played: u32,
    /// Whether a passcode is set (`ClearPasscode` removes it).
    pub passcode_present: bool,
    /// `UnlockToken` as sent in `TokenUpdate`.
    pub unlock_token: Vec<u8>,
    /// `BatteryLevel`, 0.0 to 1.0.
    pub battery_level: f64,
    /// The time zone set by `Settings`.
    pub time_zone: Option<String>,
    /// Commands (by `CommandUUID`) already answered `NotNow` once.
    not_now_answered: HashSet<String>,
}

impl DeviceState {
    /// A freshly set-up device with a few App Store apps and a passcode.
    pub fn new(spec: DeviceSpec, unlock_token: Vec<u8>) -> DeviceState {
        let app = |identifier: &str, name: &str, short_version: &str, version: &str, bundle_size: i64| InstalledApp {
            identifier: identifier.to_owned(),
            name: name.to_owned(),
            short_version: short_version.to_owned(),
            version: version.to_owned(),
            bundle_size,
            managed: false,
        };
        DeviceState {
            spec,
            profiles: Vec::new(),
            apps: vec![
                app("com.microsoft.Office.Outlook", "Microsoft Outlook", "4.2516.0", "4.2516.0", 312_475_648),
                app("com.apple.Pages", "Pages", "14.4", "8004", 598_736_896),
                app("com.google.Maps", "Google Maps", "25.22.2", "25.22.2", 226_902_016),
            ],
            certificates: Vec::new(),
            lost_mode: None,
            locked: false,
            wiped: false,
            restarts: 0,
            shutdowns: 0,
            sounds_played: 0,
            passcode_present: true,
            unlock_token,
            battery_level: 0.87,
            time_zone: None,
            not_now_answered: HashSet::new(),
        }
    }

    /// The user unlocks the device.
    pub fn unlock(&mut self) {
        self.locked = false;
    }

    /// Answers a command as the server sent it (`{CommandUUID, Command: {RequestType, ...}}`).
    pub fn answer(&mut self, body: &[u8]) -> Result<Answer, UnanswerableCommand> {
        let envelope = match Value::from_reader(std::io::Cursor::new(body)) {
            Ok(Value::Dictionary(d)) => d,
            Ok(_) => return Err(UnanswerableCommand("not a dictionary".into())),
            Err(e) => return Err(UnanswerableCommand(e.to_string())),
        };
        let command_uuid = envelope
            .get("CommandUUID")
            .and_then(Value::as_string)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| UnanswerableCommand("no CommandUUID".into()))?
            .to_owned();
        let request_type = envelope
            .get("Command")
            .and_then(Value::as_dictionary)
            .and_then(|c| c.get("RequestType"))
            .and_then(Value::as_string)
            .unwrap_or_default()
            .to_owned();

        let outcome = match Command::from_xml(body) {
            Err(CommandError::UnknownRequestType { .. }) => {
                Outcome::Error(error_chain("MCMDMErrorDomain", 12021, &format!("Unknown command: {request_type}")))
            }
            Err(e) => Outcome::FormatError(error_chain("MCMDMErrorDomain", 12001, &format!("Invalid command: {e}"))),
            Ok((_, command)) => self.decide(&command_uuid, &request_type, command),
        };

        let mut report = Dictionary::new();
        report.insert("UDID".into(), self.spec.udid.clone().into());
        report.insert("CommandUUID".into(), command_uuid.clone().into());
        let status = match outcome {
            Outcome::Acknowledged(result) => {
                report.extend(result);
                AnswerStatus::Acknowledged
            }
            Outcome::NotNow => AnswerStatus::NotNow,
            Outcome::Error(chain) => {
                report.insert("ErrorChain".into(), chain);
                AnswerStatus::Error
            }
            Outcome::FormatError(chain) => {
                report.insert("ErrorChain".into(), chain);
                AnswerStatus::CommandFormatError
            }
        };
        report.insert("Status".into(), status.as_str().into());
        Ok(Answer { report, handled: HandledCommand { request_type, command_uuid, status } })
    }

    /// Applies the behaviour knobs, then runs the command.
    fn decide(&mut self, command_uuid: &str, request_type: &str, command: Command) -> Outcome {
        match self.spec.behaviour.not_now.get(request_type) {
            Some(NotNow::Always) => return Outcome::NotNow,
            Some(NotNow::Once) if self.not_now_answered.insert(command_uuid.to_owned()) => return Outcome::NotNow,
            _ => {}
        }
        if self.spec.behaviour.error.contains(request_type) {
            return Outcome::Error(error_chain(
                "MCMDMErrorDomain",
                12078,
                "The simulated device refuses this command.",
            ));
        }
        self.run(command)
    }

    fn run(&mut self, command: Command) -> Outcome {
        let ack = Outcome::Acknowledged;
        match command {
            Command::DeviceInformation { queries } => {
                let available = self.device_information();
                let responses: Dictionary =
                    queries.iter().filter_map(|q| available.get(q).map(|v| (q.clone(), v.clone()))).collect();
                ack(one("QueryResponses", Value::Dictionary(responses)))
            }
            Command::SecurityInfo => ack(one("SecurityInfo", Value::Dictionary(self.security_info()))),
            Command::ProfileList { managed_only } => {
                let items = self
                    .profiles
                    .iter()
                    .filter(|p| !managed_only.unwrap_or(false) || p.managed)
                    .map(|p| Value::Dictionary(p.to_dict()))
                    .collect();
                ack(one("ProfileList", Value::Array(items)))
            }
            Command::InstalledApplicationList { identifiers, managed_apps_only } => {
                let items = self
                    .apps
                    .iter()
                    .filter(|a| !managed_apps_only.unwrap_or(false) || a.managed)
                    .filter(|a| identifiers.as_ref().is_none_or(|ids| ids.contains(&a.identifier)))
                    .map(|a| Value::Dictionary(a.to_dict()))
                    .collect();
                ack(one("InstalledApplicationList", Value::Array(items)))
            }
            Command::CertificateList { .. } => {
                let items = self
                    .certificates
                    .iter()
                    .map(|c| {
                        let mut d = Dictionary::new();
                        d.insert("CommonName".into(), c.common_name.clone().into());
                        d.insert("IsIdentity".into(), c.is_identity.into());
                        d.insert("Data".into(), Value::Data(c.der.clone()));
                        Value::Dictionary(d)
                    })
                    .collect();
                ack(one("CertificateList", Value::Array(items)))
            }
            Command::InstallProfile { payload } => match InstalledProfile::read(&payload, true) {
                Ok(profile) => {
                    if profile
                        .payloads
                        .iter()
                        .any(|p| p.get("PayloadType").and_then(Value::as_string) == Some("com.apple.mdm"))
                    {
                        return Outcome::Error(error_chain(
                            "MCInstallationErrorDomain",
                            4001,
                            "An MDM payload cannot be installed by MDM.",
                        ));
                    }
                    self.profiles.retain(|p| p.identifier != profile.identifier);
                    self.profiles.push(profile);
                    ack(Dictionary::new())
                }
                Err(reason) => Outcome::Error(error_chain(
                    "MCProfileErrorDomain",
                    1000,
                    &format!("The profile could not be read: {reason}"),
                )),
            },
            Command::RemoveProfile { identifier } => {
                match self.profiles.iter().position(|p| p.identifier == identifier && p.managed) {
                    Some(i) => {
                        self.profiles.remove(i);
                        ack(Dictionary::new())
                    }
                    None => Outcome::Error(error_chain(
                        "MCProfileErrorDomain",
                        1009,
                        &format!("The profile “{identifier}” is not installed by MDM."),
                    )),
                }
            }
            Command::InstallApplication(install) => {
                let identifier = match &install.source {
                    AppSource::Identifier(id) => id.clone(),
                    AppSource::ITunesStoreId(id) => format!("com.example.store.app{id}"),
                    AppSource::ManifestUrl(url) => format!("com.example.enterprise.{:08x}", fnv(url.as_bytes())),
                };
                self.apps.retain(|a| a.identifier != identifier);
                self.apps.push(InstalledApp {
                    identifier: identifier.clone(),
                    name: identifier.rsplit('.').next().unwrap_or(&identifier).to_owned(),
                    short_version: "1.0".into(),
                    version: "1".into(),
                    bundle_size: 48_234_496,
                    managed: true,
                });
                let mut result = one("Identifier", identifier.into());
                result.insert("State".into(), "Managed".into());
                ack(result)
            }
            Command::RemoveApplication { identifier } => {
                match self.apps.iter().position(|a| a.identifier == identifier && a.managed) {
                    Some(i) => {
                        self.apps.remove(i);
                        ack(Dictionary::new())
                    }
                    None => Outcome::Error(error_chain(
                        "MCMDMErrorDomain",
                        12026,
                        &format!("The app {identifier} is not managed."),
                    )),
                }
            }
            Command::DeviceLock(_) => {
                self.locked = true;
                ack(Dictionary::new())
            }
            Command::EraseDevice(_) => {
                self.wiped = true;
                ack(Dictionary::new())
            }
            Command::ClearPasscode { unlock_token } => {
                if unlock_token == self.unlock_token {
                    self.passcode_present = false;
                    ack(Dictionary::new())
                } else {
                    Outcome::Error(error_chain("MCPasscodeErrorDomain", 5012, "The unlock token is invalid."))
                }
            }
            Command::EnableLostMode(lost) => {
                if !self.spec.supervised {
                    return Outcome::Error(error_chain("MCMDMErrorDomain", 12081, "The device is not supervised."));
                }
                self.lost_mode =
                    Some(LostMode { message: lost.message, phone_number: lost.phone_number, footnote: lost.footnote });
                ack(Dictionary::new())
            }
            Command::DisableLostMode => {
                self.lost_mode = None;
                ack(Dictionary::new())
            }
            Command::DeviceLocation => match self.lost_mode {
                Some(_) => ack(self.location()),
                None => Outcome::Error(not_in_lost_mode()),
            },
            Command::PlayLostModeSound => match self.lost_mode {
                Some(_) => {
                    self.sounds_played += 1;
                    ack(Dictionary::new())
                }
                None => Outcome::Error(not_in_lost_mode()),
            },
            Command::RestartDevice { .. } => {
                self.restarts += 1;
                ack(Dictionary::new())
            }
            Command::ShutDownDevice => {
                self.shutdowns += 1;
                ack(Dictionary::new())
            }
            Command::Settings { settings } => {
                for setting in settings {
                    match setting {
                        Setting::DeviceName(name) => self.spec.device_name = name,
                        Setting::TimeZone(zone) => self.time_zone = Some(zone),
                        _ => {}
                    }
                }
                ack(Dictionary::new())
            }
            Command::ScheduleOSUpdate { updates } => {
                let results = updates
                    .iter()
                    .map(|u| {
                        let mut d = Dictionary::new();
                        if let Some(key) = &u.product_key {
                            d.insert("ProductKey".into(), key.clone().into());
                        }
                        d.insert("InstallAction".into(), u.install_action.as_str().into());
                        d.insert("Status".into(), "Idle".into());
                        Value::Dictionary(d)
                    })
                    .collect();
                ack(one("UpdateResults", Value::Array(results)))
            }
        }
    }

    /// Every `DeviceInformation` query this device can answer.
    fn device_information(&self) -> Dictionary {
        let spec = &self.spec;
        let mut d = Dictionary::new();
        let mut put = |k: &str, v: Value| {
            d.insert(k.to_owned(), v);
        };
        put("UDID", spec.udid.clone().into());
        put("DeviceName", spec.device_name.clone().into());
        put("OSVersion", spec.os_version.clone().into());
        put("BuildVersion", spec.build_version.clone().into());
        put("ModelName", spec.kind.model_name().into());
        put("Model", spec.kind.model().into());
        put("ModelNumber", spec.kind.model_number().into());
        put("ProductName", spec.kind.product_name().into());
        put("SerialNumber", spec.serial_number.clone().into());
        put("DeviceCapacity", Value::Real(spec.capacity_gb()));
        let used: i64 = self.apps.iter().map(|a| a.bundle_size).sum();
        let available = spec.capacity_gb() * 0.71 - used as f64 / 1e9;
        put("AvailableDeviceCapacity", Value::Real((available * 100.0).round() / 100.0));
        put("BatteryLevel", Value::Real(self.battery_level));
        put("WiFiMAC", spec.wifi_mac.clone().into());
        put("BluetoothMAC", spec.bluetooth_mac.clone().into());
        put("IsSupervised", spec.supervised.into());
        put("IsActivationLockEnabled", true.into());
        put("IsDeviceLocatorServiceEnabled", true.into());
        put("IsDoNotDisturbInEffect", false.into());
        put("IsCloudBackupEnabled", true.into());
        put("IsMDMLostModeEnabled", self.lost_mode.is_some().into());
        put("LastCloudBackupDate", Value::Date(Date::from(SystemTime::now() - Duration::from_secs(20 * 3600))));
        put("TimeZone", self.time_zone.clone().unwrap_or_else(|| "America/New_York".into()).into());
        if let Some(v) = &spec.imei {
            put("IMEI", v.clone().into());
        }
        if let Some(v) = &spec.meid {
            put("MEID", v.clone().into());
        }
        if let Some(v) = &spec.iccid {
            put("ICCID", v.clone().into());
        }
        if let Some(v) = &spec.phone_number {
            put("PhoneNumber", v.clone().into());
        }
        if spec.kind.has_modem() {
            put("ModemFirmwareVersion", "2.60.02".into());
            put("CurrentCarrierNetwork", "Verizon".into());
            put("SubscriberCarrierNetwork", "Verizon".into());
            put("CarrierSettingsVersion", "60.0".into());
            put("IsRoaming", false.into());
            put("DataRoamingEnabled", false.into());
            put("VoiceRoamingEnabled", true.into());
            put("PersonalHotspotEnabled", false.into());
        }
        d
    }

    fn security_info(&self) -> Dictionary {
        let mut status = Dictionary::new();
        status.insert("EnrolledViaDEP".into(), false.into());
        status.insert("UserApprovedEnrollment".into(), true.into());
        status.insert("IsUserEnrollment".into(), false.into());
        status.insert("IsActivationLockManageable".into(), self.spec.supervised.into());
        let mut d = Dictionary::new();
        d.insert("HardwareEncryptionCaps".into(), 3.into());
        d.insert("PasscodePresent".into(), self.passcode_present.into());
        d.insert("PasscodeCompliant".into(), self.passcode_present.into());
        d.insert("PasscodeCompliantWithProfiles".into(), self.passcode_present.into());
        d.insert("PasscodeLockGracePeriodEnforced".into(), 0.into());
        d.insert("ManagementStatus".into(), Value::Dictionary(status));
        d
    }

    /// Somewhere in Albany, NY, a little apart for each device.
    fn location(&self) -> Dictionary {
        let spread = f64::from(fnv(self.spec.udid.as_bytes()) % 1000) / 100_000.0;
        let mut d = Dictionary::new();
        d.insert("Latitude".into(), Value::Real(42.6526 + spread));
        d.insert("Longitude".into(), Value::Real(-73.7562 - spread));
        d.insert("HorizontalAccuracy".into(), Value::Real(8.5));
        d.insert("VerticalAccuracy".into(), Value::Real(4.0));
        d.insert("Altitude".into(), Value::Real(45.2));
        d.insert("Speed".into(), Value::Real(0.0));
        d.insert("Course".into(), Value::Real(-1.0));
        d.insert("Timestamp".into(), Date::from(SystemTime::now()).to_xml_format().into());
        d
    }
}

enum Outcome {
    Acknowledged(Dictionary),
    NotNow,
    Error(Value),
    FormatError(Value),
}

fn one(key: &str, value: Value) -> Dictionary {
    let mut d = Dictionary::new();
    d.insert(key.to_owned(), value);
    d
}

/// An `ErrorChain` of one item.
fn error_chain(domain: &str, code: i64, description: &str) -> Value {
    let mut item = Dictionary::new();
    item.insert("ErrorCode".into(), code.into());
    item.insert("ErrorDomain".into(), domain.into());
    item.insert("LocalizedDescription".into(), description.into());
    item.insert("USEnglishDescription".into(), description.into());
    Value::Array(vec![Value::Dictionary(item)])
}

fn not_in_lost_mode() -> Value {
    error_chain("MCMDMErrorDomain", 12067, "The device is not in Lost Mode.")
}

/// FNV-1a, for stable per-device variations.
fn fnv(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

/// A dictionary as an XML plist.
pub(crate) fn to_xml(dict: Dictionary) -> Vec<u8> {
    let mut out = Vec::new();
    Value::Dictionary(dict).to_writer_xml(&mut out).expect("writing a plist to memory cannot fail");
    out
}
