//! Command reports: the XML plists a device `PUT`s to the `ServerURL` to say it is idle or to
//! give the result of a command, and typed readings of the inventory commands' results. Pure:
//! no IO.
//!
//! Reference: Apple's "Sending MDM commands to a device" and the `responsekeys` of
//! `mdm/commands/*.yaml`.

use std::time::SystemTime;

use plist::{Dictionary, Value};

use crate::command::CommandUuid;
use crate::dict::{self, KeyError, Keys, ParseError};
use crate::enrollment::Enrollment;

/// A decoded report from the command connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The enrollment and channel the report belongs to.
    pub enrollment: Enrollment,
    /// `Status`, with the `CommandUUID` (and `ErrorChain`) it carries.
    pub status: Status,
    /// Every other key: the command's result (e.g. `QueryResponses`), plus keys such as
    /// `NotOnConsole`.
    pub result: Dictionary,
    raw: Vec<u8>,
}

/// A report's `Status`. Every status but `Idle` names the command it answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// The device has nothing to report and asks for the next command.
    Idle,
    /// The command ran; its result is in [`Report::result`].
    Acknowledged {
        /// `CommandUUID`.
        command_uuid: CommandUuid,
    },
    /// The command failed.
    Error {
        /// `CommandUUID`.
        command_uuid: CommandUuid,
        /// `ErrorChain` (empty when absent).
        error_chain: Vec<ErrorChainItem>,
    },
    /// The command was malformed.
    CommandFormatError {
        /// `CommandUUID`.
        command_uuid: CommandUuid,
        /// `ErrorChain` (empty when absent).
        error_chain: Vec<ErrorChainItem>,
    },
    /// The device cannot run the command now (e.g. locked); send it again later.
    NotNow {
        /// `CommandUUID`.
        command_uuid: CommandUuid,
    },
}

impl Status {
    /// The `Status` string.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Idle => "Idle",
            Status::Acknowledged { .. } => "Acknowledged",
            Status::Error { .. } => "Error",
            Status::CommandFormatError { .. } => "CommandFormatError",
            Status::NotNow { .. } => "NotNow",
        }
    }

    /// The command answered, unless idle.
    pub fn command_uuid(&self) -> Option<&CommandUuid> {
        match self {
            Status::Idle => None,
            Status::Acknowledged { command_uuid }
            | Status::Error { command_uuid, .. }
            | Status::CommandFormatError { command_uuid, .. }
            | Status::NotNow { command_uuid } => Some(command_uuid),
        }
    }

    /// The error chain of an `Error` or `CommandFormatError`; empty otherwise.
    pub fn error_chain(&self) -> &[ErrorChainItem] {
        match self {
            Status::Error { error_chain, .. } | Status::CommandFormatError { error_chain, .. } => error_chain,
            _ => &[],
        }
    }
}

/// One dictionary of an `ErrorChain`.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorChainItem {
    /// `ErrorCode`.
    pub code: i64,
    /// `ErrorDomain`, e.g. `MCProfileErrorDomain`.
    pub domain: String,
    /// `LocalizedDescription`.
    pub localized_description: Option<String>,
    /// `USEnglishDescription`.
    pub us_english_description: Option<String>,
    /// Any other key, kept as sent.
    pub extra: Dictionary,
}

/// Why a report body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The body is not a property list.
    #[error("report body is not a property list: {0}")]
    Malformed(String),
    /// The property list's top level is not a dictionary.
    #[error("report body is not a dictionary")]
    NotADictionary,
    /// `Status` is not one of Apple's values.
    #[error("unknown report Status {0:?}")]
    UnknownStatus(String),
    /// A key is missing or has the wrong type (`UDID`, `Status`, `CommandUUID` ...).
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl From<ParseError> for ReportError {
    fn from(e: ParseError) -> Self {
        match e {
            ParseError::Malformed(m) => ReportError::Malformed(m),
            ParseError::NotADictionary => ReportError::NotADictionary,
        }
    }
}

impl Report {
    /// Decodes a command-connection request body (an XML plist; binary is accepted too).
    pub fn parse(body: &[u8]) -> Result<Report, ReportError> {
        let mut keys = Keys::new(dict::parse_dictionary(body)?);
        let status = keys.string("Status")?;
        let enrollment = Enrollment::take_from(&mut keys)?;
        let status = match status.as_str() {
            "Idle" => Status::Idle,
            "Acknowledged" => Status::Acknowledged { command_uuid: command_uuid(&mut keys)? },
            "NotNow" => Status::NotNow { command_uuid: command_uuid(&mut keys)? },
            "Error" => Status::Error { command_uuid: command_uuid(&mut keys)?, error_chain: error_chain(&mut keys)? },
            "CommandFormatError" => Status::CommandFormatError {
                command_uuid: command_uuid(&mut keys)?,
                error_chain: error_chain(&mut keys)?,
            },
            _ => return Err(ReportError::UnknownStatus(status)),
        };
        Ok(Report { enrollment, status, result: keys.rest(), raw: body.to_vec() })
    }

    /// The exact bytes received.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    fn result_keys(&self) -> Keys {
        Keys::new(self.result.clone())
    }

    /// The result of `DeviceInformation`: its `QueryResponses`.
    pub fn device_information(&self) -> Result<DeviceInformation, KeyError> {
        let mut keys = self.result_keys();
        let responses = keys.dict("QueryResponses")?;
        DeviceInformation::read(Keys::nested(responses, "QueryResponses".to_owned()))
    }

    /// The result of `SecurityInfo`: its `SecurityInfo` dictionary.
    pub fn security_info(&self) -> Result<SecurityInfo, KeyError> {
        let mut keys = self.result_keys();
        let info = keys.dict("SecurityInfo")?;
        SecurityInfo::read(Keys::nested(info, "SecurityInfo".to_owned()))
    }

    /// The result of `InstalledApplicationList`.
    pub fn installed_applications(&self) -> Result<Vec<InstalledApplication>, KeyError> {
        self.result_keys().dicts("InstalledApplicationList", InstalledApplication::read)
    }

    /// The result of `ProfileList`.
    pub fn profiles(&self) -> Result<Vec<InstalledProfile>, KeyError> {
        self.result_keys().dicts("ProfileList", InstalledProfile::read)
    }

    /// The result of `CertificateList`.
    pub fn certificates(&self) -> Result<Vec<InstalledCertificate>, KeyError> {
        self.result_keys().dicts("CertificateList", InstalledCertificate::read)
    }

    /// The result of `DeviceLocation` (a device in Lost Mode).
    pub fn device_location(&self) -> Result<DeviceLocation, KeyError> {
        DeviceLocation::read(self.result_keys())
    }
}

fn command_uuid(keys: &mut Keys) -> Result<CommandUuid, KeyError> {
    Ok(CommandUuid::new(keys.non_empty("CommandUUID")?).expect("checked non-empty"))
}

fn error_chain(keys: &mut Keys) -> Result<Vec<ErrorChainItem>, KeyError> {
    Ok(keys
        .opt_dicts("ErrorChain", |mut item| {
            Ok(ErrorChainItem {
                code: item.opt_integer("ErrorCode")?.ok_or_else(|| item.missing("ErrorCode"))?,
                domain: item.string("ErrorDomain")?,
                localized_description: item.opt_string("LocalizedDescription")?,
                us_english_description: item.opt_string("USEnglishDescription")?,
                extra: item.rest(),
            })
        })?
        .unwrap_or_default())
}

/// The `QueryResponses` of a `DeviceInformation` result: the commonly used keys typed, every
/// other key in `extra`. Every key is optional: the device answers only what was asked and what
/// it may disclose.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeviceInformation {
    /// `UDID`.
    pub udid: Option<String>,
    /// `DeviceName`.
    pub device_name: Option<String>,
    /// `OSVersion`.
    pub os_version: Option<String>,
    /// `BuildVersion`.
    pub build_version: Option<String>,
    /// `ModelName`, e.g. `iPhone`.
    pub model_name: Option<String>,
    /// `Model`, e.g. `MLPF3LL/A`.
    pub model: Option<String>,
    /// `ModelNumber`.
    pub model_number: Option<String>,
    /// `ProductName`, e.g. `iPhone14,5`.
    pub product_name: Option<String>,
    /// `SerialNumber`.
    pub serial_number: Option<String>,
    /// `IMEI`.
    pub imei: Option<String>,
    /// `MEID`.
    pub meid: Option<String>,
    /// `ICCID`.
    pub iccid: Option<String>,
    /// `PhoneNumber`.
    pub phone_number: Option<String>,
    /// `ModemFirmwareVersion`.
    pub modem_firmware_version: Option<String>,
    /// `CurrentCarrierNetwork`.
    pub current_carrier_network: Option<String>,
    /// `SubscriberCarrierNetwork`.
    pub subscriber_carrier_network: Option<String>,
    /// `WiFiMAC`.
    pub wifi_mac: Option<String>,
    /// `BluetoothMAC`.
    pub bluetooth_mac: Option<String>,
    /// `DeviceCapacity` in GB.
    pub device_capacity: Option<f64>,
    /// `AvailableDeviceCapacity` in GB.
    pub available_device_capacity: Option<f64>,
    /// `BatteryLevel`, 0.0 to 1.0.
    pub battery_level: Option<f64>,
    /// `IsSupervised`.
    pub is_supervised: Option<bool>,
    /// `IsActivationLockEnabled`.
    pub is_activation_lock_enabled: Option<bool>,
    /// `IsDeviceLocatorServiceEnabled` (Find My).
    pub is_device_locator_service_enabled: Option<bool>,
    /// `IsMDMLostModeEnabled`.
    pub is_mdm_lost_mode_enabled: Option<bool>,
    /// `IsRoaming`.
    pub is_roaming: Option<bool>,
    /// `LastCloudBackupDate`.
    pub last_cloud_backup_date: Option<SystemTime>,
    /// Every other key of `QueryResponses`, kept as sent.
    pub extra: Dictionary,
}

impl DeviceInformation {
    fn read(mut k: Keys) -> Result<Self, KeyError> {
        Ok(DeviceInformation {
            udid: k.opt_string("UDID")?,
            device_name: k.opt_string("DeviceName")?,
            os_version: k.opt_string("OSVersion")?,
            build_version: k.opt_string("BuildVersion")?,
            model_name: k.opt_string("ModelName")?,
            model: k.opt_string("Model")?,
            model_number: k.opt_string("ModelNumber")?,
            product_name: k.opt_string("ProductName")?,
            serial_number: k.opt_string("SerialNumber")?,
            imei: k.opt_string("IMEI")?,
            meid: k.opt_string("MEID")?,
            iccid: k.opt_string("ICCID")?,
            phone_number: k.opt_string("PhoneNumber")?,
            modem_firmware_version: k.opt_string("ModemFirmwareVersion")?,
            current_carrier_network: k.opt_string("CurrentCarrierNetwork")?,
            subscriber_carrier_network: k.opt_string("SubscriberCarrierNetwork")?,
            wifi_mac: k.opt_string("WiFiMAC")?,
            bluetooth_mac: k.opt_string("BluetoothMAC")?,
            device_capacity: k.opt_real("DeviceCapacity")?,
            available_device_capacity: k.opt_real("AvailableDeviceCapacity")?,
            battery_level: k.opt_real("BatteryLevel")?,
            is_supervised: k.opt_bool("IsSupervised")?,
            is_activation_lock_enabled: k.opt_bool("IsActivationLockEnabled")?,
            is_device_locator_service_enabled: k.opt_bool("IsDeviceLocatorServiceEnabled")?,
            is_mdm_lost_mode_enabled: k.opt_bool("IsMDMLostModeEnabled")?,
            is_roaming: k.opt_bool("IsRoaming")?,
            last_cloud_backup_date: k.opt_date("LastCloudBackupDate")?,
            extra: k.rest(),
        })
    }
}

/// The `SecurityInfo` of a `SecurityInfo` result.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SecurityInfo {
    /// `HardwareEncryptionCaps`: 1 block-level, 2 file-level, 3 both.
    pub hardware_encryption_caps: Option<i64>,
    /// `PasscodePresent`.
    pub passcode_present: Option<bool>,
    /// `PasscodeCompliant`.
    pub passcode_compliant: Option<bool>,
    /// `PasscodeCompliantWithProfiles`.
    pub passcode_compliant_with_profiles: Option<bool>,
    /// `AutoLockTime` in seconds.
    pub auto_lock_time: Option<i64>,
    /// `FDE_Enabled` (macOS FileVault).
    pub fde_enabled: Option<bool>,
    /// `ManagementStatus.EnrolledViaDEP`.
    pub enrolled_via_dep: Option<bool>,
    /// `ManagementStatus.UserApprovedEnrollment`.
    pub user_approved_enrollment: Option<bool>,
    /// `ManagementStatus.IsUserEnrollment`.
    pub is_user_enrollment: Option<bool>,
    /// Every other key of `SecurityInfo` (including the rest of `ManagementStatus`), kept as sent.
    pub extra: Dictionary,
}

impl SecurityInfo {
    fn read(mut k: Keys) -> Result<Self, KeyError> {
        let mut info = SecurityInfo {
            hardware_encryption_caps: k.opt_integer("HardwareEncryptionCaps")?,
            passcode_present: k.opt_bool("PasscodePresent")?,
            passcode_compliant: k.opt_bool("PasscodeCompliant")?,
            passcode_compliant_with_profiles: k.opt_bool("PasscodeCompliantWithProfiles")?,
            auto_lock_time: k.opt_integer("AutoLockTime")?,
            fde_enabled: k.opt_bool("FDE_Enabled")?,
            ..SecurityInfo::default()
        };
        if let Some(status) = k.opt_dict("ManagementStatus")? {
            let mut s = Keys::nested(status, k.path_of("ManagementStatus"));
            info.enrolled_via_dep = s.opt_bool("EnrolledViaDEP")?;
            info.user_approved_enrollment = s.opt_bool("UserApprovedEnrollment")?;
            info.is_user_enrollment = s.opt_bool("IsUserEnrollment")?;
            let rest = s.rest();
            let mut extra = k.rest();
            if !rest.is_empty() {
                extra.insert("ManagementStatus".to_owned(), Value::Dictionary(rest));
            }
            info.extra = extra;
        } else {
            info.extra = k.rest();
        }
        Ok(info)
    }
}

/// One item of an `InstalledApplicationList` result.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InstalledApplication {
    /// `Identifier`: the bundle identifier.
    pub identifier: Option<String>,
    /// `Name`.
    pub name: Option<String>,
    /// `Version`.
    pub version: Option<String>,
    /// `ShortVersion`.
    pub short_version: Option<String>,
    /// `BundleSize` in bytes.
    pub bundle_size: Option<i64>,
    /// `DynamicSize` in bytes.
    pub dynamic_size: Option<i64>,
    /// `IsValidated`.
    pub is_validated: Option<bool>,
    /// `Installing`.
    pub installing: Option<bool>,
    /// Every other key, kept as sent.
    pub extra: Dictionary,
}

impl InstalledApplication {
    fn read(mut k: Keys) -> Result<Self, KeyError> {
        Ok(InstalledApplication {
            identifier: k.opt_string("Identifier")?,
            name: k.opt_string("Name")?,
            version: k.opt_string("Version")?,
            short_version: k.opt_string("ShortVersion")?,
            bundle_size: k.opt_integer("BundleSize")?,
            dynamic_size: k.opt_integer("DynamicSize")?,
            is_validated: k.opt_bool("IsValidated")?,
            installing: k.opt_bool("Installing")?,
            extra: k.rest(),
        })
    }
}

/// One item of a `ProfileList` result.
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
    pub version: Option<i64>,
    /// `IsManaged`: installed by MDM.
    pub is_managed: Option<bool>,
    /// `PayloadRemovalDisallowed`.
    pub removal_disallowed: Option<bool>,
    /// Every other key (`PayloadContent`, `SignerCertificates` ...), kept as sent.
    pub extra: Dictionary,
}

impl InstalledProfile {
    fn read(mut k: Keys) -> Result<Self, KeyError> {
        Ok(InstalledProfile {
            identifier: k.string("PayloadIdentifier")?,
            uuid: k.string("PayloadUUID")?,
            display_name: k.opt_string("PayloadDisplayName")?,
            organization: k.opt_string("PayloadOrganization")?,
            description: k.opt_string("PayloadDescription")?,
            version: k.opt_integer("PayloadVersion")?,
            is_managed: k.opt_bool("IsManaged")?,
            removal_disallowed: k.opt_bool("PayloadRemovalDisallowed")?,
            extra: k.rest(),
        })
    }
}

/// One item of a `CertificateList` result.
#[derive(Debug, Clone, PartialEq)]
pub struct InstalledCertificate {
    /// `CommonName`.
    pub common_name: String,
    /// `IsIdentity`: the device holds the private key.
    pub is_identity: bool,
    /// `Data`: the certificate, DER.
    pub der: Vec<u8>,
    /// Every other key, kept as sent.
    pub extra: Dictionary,
}

impl InstalledCertificate {
    fn read(mut k: Keys) -> Result<Self, KeyError> {
        Ok(InstalledCertificate {
            common_name: k.string("CommonName")?,
            is_identity: k.bool("IsIdentity")?,
            der: k.data("Data")?,
            extra: k.rest(),
        })
    }
}

/// The result of `DeviceLocation`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceLocation {
    /// `Latitude` in degrees.
    pub latitude: f64,
    /// `Longitude` in degrees.
    pub longitude: f64,
    /// `HorizontalAccuracy` in metres.
    pub horizontal_accuracy: Option<f64>,
    /// `VerticalAccuracy` in metres.
    pub vertical_accuracy: Option<f64>,
    /// `Altitude` in metres.
    pub altitude: Option<f64>,
    /// `Speed` in metres per second.
    pub speed: Option<f64>,
    /// `Course` in degrees.
    pub course: Option<f64>,
    /// `Timestamp`, as sent (an RFC 3339 string).
    pub timestamp: Option<String>,
}

impl DeviceLocation {
    fn read(mut k: Keys) -> Result<Self, KeyError> {
        Ok(DeviceLocation {
            latitude: k.real("Latitude")?,
            longitude: k.real("Longitude")?,
            horizontal_accuracy: k.opt_real("HorizontalAccuracy")?,
            vertical_accuracy: k.opt_real("VerticalAccuracy")?,
            altitude: k.opt_real("Altitude")?,
            speed: k.opt_real("Speed")?,
            course: k.opt_real("Course")?,
            timestamp: match k.take("Timestamp") {
                None => None,
                Some(Value::String(s)) => Some(s),
                Some(Value::Date(d)) => Some(d.to_xml_format()),
                Some(_) => return Err(k.invalid("Timestamp", "a string")),
            },
        })
    }
}
