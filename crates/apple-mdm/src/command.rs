//! MDM commands: a typed [`Command`] per supported `RequestType`, the XML plist the server
//! sends (`{CommandUUID, Command: {RequestType, ...}}`), and parsing a command from a request
//! type and its parameters (as the API receives them, or as a device receives them). Pure: no
//! IO.
//!
//! Parameters use Apple's key names (`PIN`, `Message`, `PhoneNumber` ...), as in
//! `mdm/commands/*.yaml` of Apple's `device-management` repository. `<data>` parameters
//! (`Payload`, `UnlockToken` ...) are given as base64 strings when they come from JSON.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use plist::{Dictionary, Value};
use serde::Serialize;

use crate::dict::{self, DictBuilder, KeyError, Keys, ParseError};
use crate::enrollment::string_newtype;

string_newtype!(
    /// The identifier of one command (`CommandUUID`), echoed by the device in its report.
    CommandUuid
);

impl CommandUuid {
    /// A fresh random identifier (an upper-case UUID, as Apple's examples show).
    pub fn random() -> CommandUuid {
        CommandUuid(uuid::Uuid::new_v4().hyphenated().to_string().to_uppercase())
    }
}

/// The request types [`Command::parse`] accepts, in the order of the [`Command`] variants.
pub const SUPPORTED_REQUEST_TYPES: &[&str] = &[
    "DeviceInformation",
    "SecurityInfo",
    "ProfileList",
    "InstalledApplicationList",
    "CertificateList",
    "InstallProfile",
    "RemoveProfile",
    "InstallApplication",
    "RemoveApplication",
    "DeviceLock",
    "EraseDevice",
    "ClearPasscode",
    "EnableLostMode",
    "DisableLostMode",
    "DeviceLocation",
    "PlayLostModeSound",
    "RestartDevice",
    "ShutDownDevice",
    "Settings",
    "ScheduleOSUpdate",
];

/// The `DeviceInformation` queries an inventory asks for.
pub const INVENTORY_QUERIES: &[&str] = &[
    "UDID",
    "DeviceName",
    "OSVersion",
    "BuildVersion",
    "ModelName",
    "Model",
    "ModelNumber",
    "ProductName",
    "SerialNumber",
    "IMEI",
    "MEID",
    "ICCID",
    "PhoneNumber",
    "ModemFirmwareVersion",
    "CurrentCarrierNetwork",
    "SubscriberCarrierNetwork",
    "WiFiMAC",
    "BluetoothMAC",
    "DeviceCapacity",
    "AvailableDeviceCapacity",
    "BatteryLevel",
    "IsSupervised",
    "IsActivationLockEnabled",
    "IsDeviceLocatorServiceEnabled",
    "IsMDMLostModeEnabled",
    "IsRoaming",
    "LastCloudBackupDate",
];

/// A command to a device, by `RequestType`, with its typed parameters. Optional parameters are
/// `None` when not sent, so a command read from a plist writes back the same keys.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Asks for device attributes.
    DeviceInformation {
        /// `Queries`: the attribute names (see [`INVENTORY_QUERIES`]).
        queries: Vec<String>,
    },
    /// Asks for the security state (passcode, encryption, management status).
    SecurityInfo,
    /// Lists installed configuration profiles.
    ProfileList {
        /// `ManagedOnly`.
        managed_only: Option<bool>,
    },
    /// Lists installed apps.
    InstalledApplicationList {
        /// `Identifiers`: only these bundle IDs.
        identifiers: Option<Vec<String>>,
        /// `ManagedAppsOnly`.
        managed_apps_only: Option<bool>,
    },
    /// Lists installed certificates.
    CertificateList {
        /// `ManagedOnly`.
        managed_only: Option<bool>,
    },
    /// Installs a configuration profile.
    InstallProfile {
        /// `Payload`: the profile (`.mobileconfig`, signed or not).
        payload: Vec<u8>,
    },
    /// Removes a configuration profile.
    RemoveProfile {
        /// `Identifier`: the profile's `PayloadIdentifier`.
        identifier: String,
    },
    /// Installs an app.
    InstallApplication(InstallApplication),
    /// Removes a managed app.
    RemoveApplication {
        /// `Identifier`: the app's bundle ID.
        identifier: String,
    },
    /// Locks the device.
    DeviceLock(DeviceLock),
    /// Erases the device.
    EraseDevice(EraseDevice),
    /// Clears the passcode.
    ClearPasscode {
        /// `UnlockToken`: as the device sent it in `TokenUpdate`.
        unlock_token: Vec<u8>,
    },
    /// Puts a supervised device in Lost Mode.
    EnableLostMode(LostMode),
    /// Takes the device out of Lost Mode.
    DisableLostMode,
    /// Asks a device in Lost Mode for its location.
    DeviceLocation,
    /// Plays a sound on a device in Lost Mode.
    PlayLostModeSound,
    /// Restarts the device.
    RestartDevice {
        /// `NotifyUser` (macOS).
        notify_user: Option<bool>,
    },
    /// Shuts the device down.
    ShutDownDevice,
    /// Changes device settings.
    Settings {
        /// `Settings`: one item per setting.
        settings: Vec<Setting>,
    },
    /// Schedules OS updates.
    ScheduleOSUpdate {
        /// `Updates`.
        updates: Vec<OsUpdate>,
    },
}

/// The parameters of `InstallApplication`.
#[derive(Debug, Clone, PartialEq)]
pub struct InstallApplication {
    /// Which app: exactly one of `iTunesStoreID`, `ManifestURL`, `Identifier`.
    pub source: AppSource,
    /// `ManagementFlags`: 1 remove the app when the MDM profile is removed, 4 prevent backup of
    /// its data, 5 both.
    pub management_flags: Option<i64>,
    /// `Options.PurchaseMethod`: 0 legacy volume purchase, 1 volume purchase with assigned
    /// licences.
    pub purchase_method: Option<i64>,
    /// `Configuration`: the managed app configuration, as given.
    pub configuration: Option<Dictionary>,
    /// `Attributes`: per-app attributes (`VPNUUID`, `Removable` ...), as given.
    pub attributes: Option<Dictionary>,
    /// `ChangeManagementState`: `Some(true)` sends `Managed` (take over a user-installed app).
    pub take_management: Option<bool>,
    /// `InstallAsManaged` (macOS).
    pub install_as_managed: Option<bool>,
}

/// Where an app to install comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppSource {
    /// `iTunesStoreID`: an App Store app.
    ITunesStoreId(i64),
    /// `ManifestURL`: an enterprise app's manifest (HTTPS).
    ManifestUrl(String),
    /// `Identifier`: an App Store app by bundle ID.
    Identifier(String),
}

/// A Find My PIN: six digits, required by macOS for `DeviceLock` and `EraseDevice`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin(String);

impl Pin {
    /// Accepts exactly six ASCII digits.
    pub fn parse(pin: &str) -> Option<Pin> {
        (pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit())).then(|| Pin(pin.to_owned()))
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The parameters of `DeviceLock`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeviceLock {
    /// `PIN` (macOS).
    pub pin: Option<Pin>,
    /// `Message`: shown on the Lock screen.
    pub message: Option<String>,
    /// `PhoneNumber`: shown on the Lock screen.
    pub phone_number: Option<String>,
}

/// The parameters of `EraseDevice`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EraseDevice {
    /// `PIN` (macOS).
    pub pin: Option<Pin>,
    /// `PreserveDataPlan`: keep the eSIM data plan.
    pub preserve_data_plan: Option<bool>,
    /// `DisallowProximitySetup`: disable Proximity Setup on the next reboot.
    pub disallow_proximity_setup: Option<bool>,
    /// `ObliterationBehavior` (macOS).
    pub obliteration_behavior: Option<ObliterationBehavior>,
    /// `ReturnToService`: re-enroll automatically after the erase.
    pub return_to_service: Option<ReturnToService>,
}

/// `EraseDevice.ReturnToService`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnToService {
    /// `Enabled`.
    pub enabled: bool,
    /// `WiFiProfileData`: a Wi-Fi profile to join after the erase.
    pub wifi_profile_data: Option<Vec<u8>>,
    /// `MDMProfileData`: an enrollment profile to install after the erase.
    pub mdm_profile_data: Option<Vec<u8>>,
}

/// The parameters of `EnableLostMode`: at least a message or a phone number.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LostMode {
    /// `Message`.
    pub message: Option<String>,
    /// `PhoneNumber`.
    pub phone_number: Option<String>,
    /// `Footnote`.
    pub footnote: Option<String>,
}

/// One item of a `Settings` command; the common ones typed, any other kept as its dictionary.
#[derive(Debug, Clone, PartialEq)]
pub enum Setting {
    /// `{Item: DeviceName, DeviceName}`.
    DeviceName(String),
    /// `{Item: HostName, HostName}` (macOS).
    HostName(String),
    /// `{Item: TimeZone, TimeZone}`.
    TimeZone(String),
    /// `{Item: DataRoaming, Enabled}`.
    DataRoaming(bool),
    /// `{Item: VoiceRoaming, Enabled}`.
    VoiceRoaming(bool),
    /// `{Item: PersonalHotspot, Enabled}`.
    PersonalHotspot(bool),
    /// `{Item: Bluetooth, Enabled}`.
    Bluetooth(bool),
    /// `{Item: DiagnosticSubmission, Enabled}`.
    DiagnosticSubmission(bool),
    /// `{Item: AppAnalytics, Enabled}`.
    AppAnalytics(bool),
    /// Any other item, sent as given; it must have an `Item` string.
    Other(Dictionary),
}

/// One item of `ScheduleOSUpdate.Updates`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsUpdate {
    /// `ProductKey`: from `AvailableOSUpdates`.
    pub product_key: Option<String>,
    /// `ProductVersion`: e.g. `17.5.1`.
    pub product_version: Option<String>,
    /// `InstallAction`.
    pub install_action: InstallAction,
    /// `MaxUserDeferrals` (macOS).
    pub max_user_deferrals: Option<i64>,
    /// `Priority` (macOS).
    pub priority: Option<UpdatePriority>,
}

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, as Apple spells it.
            pub const ALL: &[&str] = &[$($wire),+];

            /// The value as Apple spells it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }

            /// Reads Apple's spelling.
            pub fn parse(value: &str) -> Option<Self> {
                match value {
                    $($wire => Some($name::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

wire_enum!(
    /// `ScheduleOSUpdate.Updates[].InstallAction`.
    InstallAction {
        /// `Default`: download or install as the device decides.
        Default => "Default",
        /// `DownloadOnly`.
        DownloadOnly => "DownloadOnly",
        /// `InstallASAP`.
        InstallAsap => "InstallASAP",
        /// `NotifyOnly` (macOS).
        NotifyOnly => "NotifyOnly",
        /// `InstallLater` (macOS).
        InstallLater => "InstallLater",
        /// `InstallForceRestart` (macOS).
        InstallForceRestart => "InstallForceRestart",
    }
);

wire_enum!(
    /// `ScheduleOSUpdate.Updates[].Priority`.
    UpdatePriority {
        /// `Low`.
        Low => "Low",
        /// `High`.
        High => "High",
    }
);

wire_enum!(
    /// `EraseDevice.ObliterationBehavior` (macOS).
    ObliterationBehavior {
        /// `Default`.
        Default => "Default",
        /// `DoNotObliterate`.
        DoNotObliterate => "DoNotObliterate",
        /// `ObliterateWithWarning`.
        ObliterateWithWarning => "ObliterateWithWarning",
        /// `Always`.
        Always => "Always",
    }
);

/// Why a command could not be built from a request type and parameters, or read from a plist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The request type is not one of [`SUPPORTED_REQUEST_TYPES`].
    #[error("unknown request type {request_type:?}; supported: {}", SUPPORTED_REQUEST_TYPES.join(", "))]
    UnknownRequestType {
        /// The request type given.
        request_type: String,
    },
    /// The parameters are not a dictionary (a JSON object).
    #[error("params must be a dictionary")]
    ParamsNotADictionary,
    /// A required parameter is absent.
    #[error("missing required param {param}")]
    MissingParam {
        /// The parameter's path, e.g. `Queries` or `Updates[0].InstallAction`.
        param: String,
    },
    /// A parameter has the wrong type or an unacceptable value.
    #[error("param {param}: {reason}")]
    InvalidParam {
        /// The parameter's path.
        param: String,
        /// What is wrong.
        reason: String,
    },
    /// A parameter this request type does not take.
    #[error("unknown param {param} for {request_type}")]
    UnknownParam {
        /// The request type.
        request_type: &'static str,
        /// The parameter's path.
        param: String,
    },
    /// A command plist (as a device receives it) is malformed.
    #[error("command body is malformed: {0}")]
    MalformedBody(String),
}

impl CommandError {
    /// The parameter at fault, if the error is about one.
    pub fn param(&self) -> Option<&str> {
        match self {
            CommandError::MissingParam { param }
            | CommandError::InvalidParam { param, .. }
            | CommandError::UnknownParam { param, .. } => Some(param),
            _ => None,
        }
    }
}

impl From<KeyError> for CommandError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Missing { key } => CommandError::MissingParam { param: key },
            KeyError::Invalid { key, expected } => {
                CommandError::InvalidParam { param: key, reason: format!("must be {expected}") }
            }
        }
    }
}

fn invalid(keys: &Keys, key: &str, reason: impl Into<String>) -> CommandError {
    CommandError::InvalidParam { param: keys.path_of(key), reason: reason.into() }
}

/// Fails on the first key left unread.
fn no_more(keys: &Keys, request_type: &'static str) -> Result<(), CommandError> {
    match keys.first_left() {
        Some(key) => Err(CommandError::UnknownParam { request_type, param: keys.path_of(key) }),
        None => Ok(()),
    }
}

/// `<data>` in a plist, or a base64 string from JSON.
fn opt_bytes(keys: &mut Keys, key: &str) -> Result<Option<Vec<u8>>, CommandError> {
    match keys.take(key) {
        None => Ok(None),
        Some(Value::Data(d)) => Ok(Some(d)),
        Some(Value::String(s)) => {
            STANDARD.decode(s.trim()).map(Some).map_err(|_| invalid(keys, key, "must be data (a base64 string)"))
        }
        Some(_) => Err(invalid(keys, key, "must be data (a base64 string)")),
    }
}

fn bytes(keys: &mut Keys, key: &str) -> Result<Vec<u8>, CommandError> {
    match opt_bytes(keys, key)? {
        Some(b) if b.is_empty() => Err(invalid(keys, key, "must not be empty")),
        Some(b) => Ok(b),
        None => Err(keys.missing(key).into()),
    }
}

fn opt_pin(keys: &mut Keys) -> Result<Option<Pin>, CommandError> {
    match keys.opt_string("PIN")? {
        None => Ok(None),
        Some(pin) => Pin::parse(&pin).map(Some).ok_or_else(|| invalid(keys, "PIN", "must be six digits")),
    }
}

fn opt_wire<T>(
    keys: &mut Keys,
    key: &str,
    parse: fn(&str) -> Option<T>,
    all: &[&str],
) -> Result<Option<T>, CommandError> {
    match keys.opt_string(key)? {
        None => Ok(None),
        Some(v) => parse(&v).map(Some).ok_or_else(|| invalid(keys, key, format!("must be one of {}", all.join(", ")))),
    }
}

impl Command {
    /// Apple's `RequestType` for this command.
    pub fn request_type(&self) -> &'static str {
        match self {
            Command::DeviceInformation { .. } => "DeviceInformation",
            Command::SecurityInfo => "SecurityInfo",
            Command::ProfileList { .. } => "ProfileList",
            Command::InstalledApplicationList { .. } => "InstalledApplicationList",
            Command::CertificateList { .. } => "CertificateList",
            Command::InstallProfile { .. } => "InstallProfile",
            Command::RemoveProfile { .. } => "RemoveProfile",
            Command::InstallApplication(_) => "InstallApplication",
            Command::RemoveApplication { .. } => "RemoveApplication",
            Command::DeviceLock(_) => "DeviceLock",
            Command::EraseDevice(_) => "EraseDevice",
            Command::ClearPasscode { .. } => "ClearPasscode",
            Command::EnableLostMode(_) => "EnableLostMode",
            Command::DisableLostMode => "DisableLostMode",
            Command::DeviceLocation => "DeviceLocation",
            Command::PlayLostModeSound => "PlayLostModeSound",
            Command::RestartDevice { .. } => "RestartDevice",
            Command::ShutDownDevice => "ShutDownDevice",
            Command::Settings { .. } => "Settings",
            Command::ScheduleOSUpdate { .. } => "ScheduleOSUpdate",
        }
    }

    /// Builds a command from its request type and parameters given as any serializable value,
    /// typically the JSON object of an API request (`{"request_type": "DeviceLock", "params":
    /// {"Message": "..."}}`). `null` parameters count as none.
    pub fn from_params<P: Serialize>(request_type: &str, params: &P) -> Result<Command, CommandError> {
        let value = plist::to_value(params).map_err(|_| CommandError::ParamsNotADictionary)?;
        let params = match value {
            Value::Dictionary(d) => d,
            // serde's unit (JSON null) is written by plist as an empty string.
            Value::String(s) if s.is_empty() => Dictionary::new(),
            _ => return Err(CommandError::ParamsNotADictionary),
        };
        Command::parse(request_type, params)
    }

    /// Builds a command from its request type and parameter dictionary, checking every
    /// parameter: a missing, mistyped, invalid or unknown one is an error naming it.
    pub fn parse(request_type: &str, params: Dictionary) -> Result<Command, CommandError> {
        let Some(&request_type) = SUPPORTED_REQUEST_TYPES.iter().find(|t| **t == request_type) else {
            return Err(CommandError::UnknownRequestType { request_type: request_type.to_owned() });
        };
        let mut k = Keys::new(params);
        let command = match request_type {
            "DeviceInformation" => {
                let queries = k.opt_strings("Queries")?.ok_or_else(|| k.missing("Queries"))?;
                if queries.is_empty() {
                    return Err(invalid(&k, "Queries", "must not be empty"));
                }
                Command::DeviceInformation { queries }
            }
            "SecurityInfo" => Command::SecurityInfo,
            "ProfileList" => Command::ProfileList { managed_only: k.opt_bool("ManagedOnly")? },
            "InstalledApplicationList" => Command::InstalledApplicationList {
                identifiers: k.opt_strings("Identifiers")?,
                managed_apps_only: k.opt_bool("ManagedAppsOnly")?,
            },
            "CertificateList" => Command::CertificateList { managed_only: k.opt_bool("ManagedOnly")? },
            "InstallProfile" => Command::InstallProfile { payload: bytes(&mut k, "Payload")? },
            "RemoveProfile" => Command::RemoveProfile { identifier: k.non_empty("Identifier")? },
            "InstallApplication" => Command::InstallApplication(InstallApplication::read(&mut k)?),
            "RemoveApplication" => Command::RemoveApplication { identifier: k.non_empty("Identifier")? },
            "DeviceLock" => Command::DeviceLock(DeviceLock {
                pin: opt_pin(&mut k)?,
                message: k.opt_non_empty("Message")?,
                phone_number: k.opt_non_empty("PhoneNumber")?,
            }),
            "EraseDevice" => Command::EraseDevice(EraseDevice::read(&mut k)?),
            "ClearPasscode" => Command::ClearPasscode { unlock_token: bytes(&mut k, "UnlockToken")? },
            "EnableLostMode" => {
                let lost = LostMode {
                    message: k.opt_non_empty("Message")?,
                    phone_number: k.opt_non_empty("PhoneNumber")?,
                    footnote: k.opt_non_empty("Footnote")?,
                };
                if lost.message.is_none() && lost.phone_number.is_none() {
                    return Err(invalid(&k, "Message", "Message or PhoneNumber is required"));
                }
                Command::EnableLostMode(lost)
            }
            "DisableLostMode" => Command::DisableLostMode,
            "DeviceLocation" => Command::DeviceLocation,
            "PlayLostModeSound" => Command::PlayLostModeSound,
            "RestartDevice" => Command::RestartDevice { notify_user: k.opt_bool("NotifyUser")? },
            "ShutDownDevice" => Command::ShutDownDevice,
            "Settings" => {
                let items = k.array("Settings")?;
                let settings = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| Setting::read(item, format!("Settings[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                Command::Settings { settings }
            }
            "ScheduleOSUpdate" => {
                let mut updates = Vec::new();
                for (i, item) in k.array("Updates")?.into_iter().enumerate() {
                    let path = format!("Updates[{i}]");
                    let Value::Dictionary(d) = item else {
                        return Err(CommandError::InvalidParam { param: path, reason: "must be a dictionary".into() });
                    };
                    updates.push(OsUpdate::read(Keys::nested(d, path))?);
                }
                Command::ScheduleOSUpdate { updates }
            }
            other => unreachable!("{other} is supported but not parsed"),
        };
        no_more(&k, request_type)?;
        Ok(command)
    }

    /// The command's parameters as Apple's keys, without `RequestType`.
    pub fn params(&self) -> Dictionary {
        let b = DictBuilder::new();
        match self {
            Command::DeviceInformation { queries } => b.strings("Queries", queries),
            Command::SecurityInfo
            | Command::DisableLostMode
            | Command::DeviceLocation
            | Command::PlayLostModeSound
            | Command::ShutDownDevice => b,
            Command::ProfileList { managed_only } | Command::CertificateList { managed_only } => {
                b.opt("ManagedOnly", *managed_only)
            }
            Command::InstalledApplicationList { identifiers, managed_apps_only } => {
                let b = match identifiers {
                    Some(ids) => b.strings("Identifiers", ids),
                    None => b,
                };
                b.opt("ManagedAppsOnly", *managed_apps_only)
            }
            Command::InstallProfile { payload } => b.data("Payload", payload),
            Command::RemoveProfile { identifier } | Command::RemoveApplication { identifier } => {
                b.set("Identifier", identifier.as_str())
            }
            Command::InstallApplication(app) => app.write(b),
            Command::DeviceLock(lock) => b
                .opt("PIN", lock.pin.as_ref().map(Pin::as_str))
                .opt("Message", lock.message.as_deref())
                .opt("PhoneNumber", lock.phone_number.as_deref()),
            Command::EraseDevice(erase) => erase.write(b),
            Command::ClearPasscode { unlock_token } => b.data("UnlockToken", unlock_token),
            Command::EnableLostMode(lost) => b
                .opt("Message", lost.message.as_deref())
                .opt("PhoneNumber", lost.phone_number.as_deref())
                .opt("Footnote", lost.footnote.as_deref()),
            Command::RestartDevice { notify_user } => b.opt("NotifyUser", *notify_user),
            Command::Settings { settings } => {
                b.set("Settings", Value::Array(settings.iter().map(|s| Value::Dictionary(s.to_dict())).collect()))
            }
            Command::ScheduleOSUpdate { updates } => {
                b.set("Updates", Value::Array(updates.iter().map(|u| Value::Dictionary(u.to_dict())).collect()))
            }
        }
        .build()
    }

    /// The XML plist the server sends to the device:
    /// `{CommandUUID: <uuid>, Command: {RequestType: <type>, ...params}}`.
    pub fn to_xml(&self, uuid: &CommandUuid) -> Vec<u8> {
        let mut command = DictBuilder::new().set("RequestType", self.request_type()).build();
        for (key, value) in self.params() {
            command.insert(key, value);
        }
        dict::to_xml(DictBuilder::new().set("CommandUUID", uuid.as_str()).set("Command", command).build())
    }

    /// Reads a command plist as a device receives it (the inverse of [`Command::to_xml`]).
    pub fn from_xml(body: &[u8]) -> Result<(CommandUuid, Command), CommandError> {
        let dict = dict::parse_dictionary(body).map_err(|e| match e {
            ParseError::Malformed(m) => CommandError::MalformedBody(m),
            ParseError::NotADictionary => CommandError::MalformedBody("not a dictionary".into()),
        })?;
        let body_error = |e: KeyError| CommandError::MalformedBody(e.to_string());
        let mut envelope = Keys::new(dict);
        let uuid = envelope.non_empty("CommandUUID").map_err(body_error)?;
        let mut command = envelope.dict("Command").map_err(body_error)?;
        let request_type = match command.remove("RequestType") {
            Some(Value::String(t)) => t,
            _ => return Err(CommandError::MalformedBody("Command.RequestType must be a string".into())),
        };
        let command = Command::parse(&request_type, command)?;
        Ok((CommandUuid(uuid), command))
    }
}

impl InstallApplication {
    const SOURCES: [&'static str; 3] = ["iTunesStoreID", "ManifestURL", "Identifier"];

    fn read(k: &mut Keys) -> Result<Self, CommandError> {
        let given: Vec<&str> = Self::SOURCES.into_iter().filter(|key| k.has(key)).collect();
        if given.len() != 1 {
            return Err(invalid(
                k,
                "iTunesStoreID",
                "exactly one of iTunesStoreID, ManifestURL, Identifier is required",
            ));
        }
        let source = match given[0] {
            "iTunesStoreID" => AppSource::ITunesStoreId(
                k.opt_integer("iTunesStoreID")?
                    .filter(|id| *id > 0)
                    .ok_or_else(|| invalid(k, "iTunesStoreID", "must be a positive integer"))?,
            ),
            "ManifestURL" => {
                let url = k.non_empty("ManifestURL")?;
                if !url.starts_with("https://") {
                    return Err(invalid(k, "ManifestURL", "must be an https:// URL"));
                }
                AppSource::ManifestUrl(url)
            }
            _ => AppSource::Identifier(k.non_empty("Identifier")?),
        };
        let management_flags = k.opt_integer("ManagementFlags")?;
        if management_flags.is_some_and(|f| ![1, 4, 5].contains(&f)) {
            return Err(invalid(k, "ManagementFlags", "must be 1, 4 or 5"));
        }
        let purchase_method = match k.opt_dict("Options")? {
            None => None,
            Some(options) => {
                let mut o = Keys::nested(options, k.path_of("Options"));
                let method = o.opt_integer("PurchaseMethod")?;
                if method.is_some_and(|m| m != 0 && m != 1) {
                    return Err(invalid(&o, "PurchaseMethod", "must be 0 or 1"));
                }
                no_more(&o, "InstallApplication")?;
                method
            }
        };
        let take_management = match k.opt_string("ChangeManagementState")? {
            None => None,
            Some(s) if s == "Managed" => Some(true),
            Some(_) => return Err(invalid(k, "ChangeManagementState", "must be Managed")),
        };
        Ok(InstallApplication {
            source,
            management_flags,
            purchase_method,
            configuration: k.opt_dict("Configuration")?,
            attributes: k.opt_dict("Attributes")?,
            take_management,
            install_as_managed: k.opt_bool("InstallAsManaged")?,
        })
    }

    fn write(&self, b: DictBuilder) -> DictBuilder {
        let b = match &self.source {
            AppSource::ITunesStoreId(id) => b.set("iTunesStoreID", *id),
            AppSource::ManifestUrl(url) => b.set("ManifestURL", url.as_str()),
            AppSource::Identifier(id) => b.set("Identifier", id.as_str()),
        };
        b.opt("ManagementFlags", self.management_flags)
            .opt("Options", self.purchase_method.map(|m| DictBuilder::new().set("PurchaseMethod", m).build()))
            .opt("Configuration", self.configuration.clone())
            .opt("Attributes", self.attributes.clone())
            .opt("ChangeManagementState", self.take_management.filter(|t| *t).map(|_| "Managed"))
            .opt("InstallAsManaged", self.install_as_managed)
    }
}

impl EraseDevice {
    fn read(k: &mut Keys) -> Result<Self, CommandError> {
        let return_to_service = match k.opt_dict("ReturnToService")? {
            None => None,
            Some(d) => {
                let mut r = Keys::nested(d, k.path_of("ReturnToService"));
                let rts = ReturnToService {
                    enabled: r.bool("Enabled")?,
                    wifi_profile_data: opt_bytes(&mut r, "WiFiProfileData")?,
                    mdm_profile_data: opt_bytes(&mut r, "MDMProfileData")?,
                };
                no_more(&r, "EraseDevice")?;
                Some(rts)
            }
        };
        Ok(EraseDevice {
            pin: opt_pin(k)?,
            preserve_data_plan: k.opt_bool("PreserveDataPlan")?,
            disallow_proximity_setup: k.opt_bool("DisallowProximitySetup")?,
            obliteration_behavior: opt_wire(
                k,
                "ObliterationBehavior",
                ObliterationBehavior::parse,
                ObliterationBehavior::ALL,
            )?,
            return_to_service,
        })
    }

    fn write(&self, b: DictBuilder) -> DictBuilder {
        b.opt("PIN", self.pin.as_ref().map(Pin::as_str))
            .opt("PreserveDataPlan", self.preserve_data_plan)
            .opt("DisallowProximitySetup", self.disallow_proximity_setup)
            .opt("ObliterationBehavior", self.obliteration_behavior.map(ObliterationBehavior::as_str))
            .opt(
                "ReturnToService",
                self.return_to_service.as_ref().map(|r| {
                    DictBuilder::new()
                        .set("Enabled", r.enabled)
                        .opt_data("WiFiProfileData", r.wifi_profile_data.as_deref())
                        .opt_data("MDMProfileData", r.mdm_profile_data.as_deref())
                        .build()
                }),
            )
    }
}

impl Setting {
    /// The setting's `Item`.
    pub fn item(&self) -> &str {
        match self {
            Setting::DeviceName(_) => "DeviceName",
            Setting::HostName(_) => "HostName",
            Setting::TimeZone(_) => "TimeZone",
            Setting::DataRoaming(_) => "DataRoaming",
            Setting::VoiceRoaming(_) => "VoiceRoaming",
            Setting::PersonalHotspot(_) => "PersonalHotspot",
            Setting::Bluetooth(_) => "Bluetooth",
            Setting::DiagnosticSubmission(_) => "DiagnosticSubmission",
            Setting::AppAnalytics(_) => "AppAnalytics",
            Setting::Other(d) => d.get("Item").and_then(Value::as_string).unwrap_or_default(),
        }
    }

    fn read(item: Value, path: String) -> Result<Setting, CommandError> {
        let Value::Dictionary(dict) = item else {
            return Err(CommandError::InvalidParam { param: path, reason: "must be a dictionary".into() });
        };
        let original = dict.clone();
        let mut k = Keys::nested(dict, path);
        let item = k.non_empty("Item")?;
        let setting = match item.as_str() {
            "DeviceName" => Setting::DeviceName(k.non_empty("DeviceName")?),
            "HostName" => Setting::HostName(k.non_empty("HostName")?),
            "TimeZone" => Setting::TimeZone(k.non_empty("TimeZone")?),
            "DataRoaming" => Setting::DataRoaming(k.bool("Enabled")?),
            "VoiceRoaming" => Setting::VoiceRoaming(k.bool("Enabled")?),
            "PersonalHotspot" => Setting::PersonalHotspot(k.bool("Enabled")?),
            "Bluetooth" => Setting::Bluetooth(k.bool("Enabled")?),
            "DiagnosticSubmission" => Setting::DiagnosticSubmission(k.bool("Enabled")?),
            "AppAnalytics" => Setting::AppAnalytics(k.bool("Enabled")?),
            _ => return Ok(Setting::Other(original)),
        };
        no_more(&k, "Settings")?;
        Ok(setting)
    }

    fn to_dict(&self) -> Dictionary {
        let b = DictBuilder::new().set("Item", self.item());
        match self {
            Setting::DeviceName(v) => b.set("DeviceName", v.as_str()),
            Setting::HostName(v) => b.set("HostName", v.as_str()),
            Setting::TimeZone(v) => b.set("TimeZone", v.as_str()),
            Setting::DataRoaming(on)
            | Setting::VoiceRoaming(on)
            | Setting::PersonalHotspot(on)
            | Setting::Bluetooth(on)
            | Setting::DiagnosticSubmission(on)
            | Setting::AppAnalytics(on) => b.set("Enabled", *on),
            Setting::Other(d) => return d.clone(),
        }
        .build()
    }
}

impl OsUpdate {
    fn read(mut k: Keys) -> Result<Self, CommandError> {
        let install_action = opt_wire(&mut k, "InstallAction", InstallAction::parse, InstallAction::ALL)?
            .ok_or_else(|| k.missing("InstallAction"))?;
        let update = OsUpdate {
            product_key: k.opt_non_empty("ProductKey")?,
            product_version: k.opt_non_empty("ProductVersion")?,
            install_action,
            max_user_deferrals: k.opt_integer("MaxUserDeferrals")?,
            priority: opt_wire(&mut k, "Priority", UpdatePriority::parse, UpdatePriority::ALL)?,
        };
        no_more(&k, "ScheduleOSUpdate")?;
        Ok(update)
    }

    fn to_dict(&self) -> Dictionary {
        DictBuilder::new()
            .opt("ProductKey", self.product_key.as_deref())
            .set("InstallAction", self.install_action.as_str())
            .opt("ProductVersion", self.product_version.as_deref())
            .opt("MaxUserDeferrals", self.max_user_deferrals)
            .opt("Priority", self.priority.map(UpdatePriority::as_str))
            .build()
    }
}
