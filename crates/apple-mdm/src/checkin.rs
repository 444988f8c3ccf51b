//! Check-in messages: the XML plists a device `PUT`s to the `CheckInURL` (`Authenticate`,
//! `TokenUpdate`, `CheckOut`, ...), decoded once into a typed [`CheckinMessage`], and the bodies
//! the server answers with. Pure: no IO.
//!
//! Reference: Apple's "Check-in" documentation and `mdm/checkin/*.yaml` of Apple's
//! `device-management` repository.

use plist::Dictionary;

use crate::dict::{self, DictBuilder, KeyError, Keys, ParseError};
use crate::enrollment::Enrollment;
use crate::push::{PushMagic, PushToken, Topic};

/// The `MessageType`s this crate decodes.
pub const MESSAGE_TYPES: &[&str] = &[
    "Authenticate",
    "TokenUpdate",
    "CheckOut",
    "UserAuthenticate",
    "GetBootstrapToken",
    "SetBootstrapToken",
    "DeclarativeManagement",
    "GetToken",
];

/// A decoded check-in request: who sent it, what it says, the keys this crate does not model,
/// and the exact bytes received.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkin {
    /// The enrollment and channel the message belongs to.
    pub enrollment: Enrollment,
    /// The message, by `MessageType`.
    pub message: CheckinMessage,
    /// Every key not modelled by this crate, kept as sent.
    pub extra: Dictionary,
    raw: Vec<u8>,
}

/// A check-in message by `MessageType`, with its typed keys.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckinMessage {
    /// The MDM payload is being installed; answer with an empty 200.
    Authenticate(Authenticate),
    /// The device (or a user channel) reports its push token; answer with an empty 200.
    TokenUpdate(TokenUpdate),
    /// The MDM payload was removed (sent when `CheckOutWhenRemoved` is set).
    CheckOut {
        /// `Topic`.
        topic: Topic,
    },
    /// A macOS network or mobile user logs in; answer with [`user_authenticate_reply`].
    UserAuthenticate {
        /// `DigestResponse`: absent in the first request, present in the second.
        digest_response: Option<String>,
    },
    /// The device asks for its bootstrap token; answer with [`bootstrap_token_reply`].
    GetBootstrapToken {
        /// `AwaitingConfiguration` (false when absent).
        awaiting_configuration: bool,
    },
    /// The device escrows (or, when `None`, clears) its bootstrap token.
    SetBootstrapToken {
        /// `BootstrapToken`; `None` when absent or empty, meaning "remove the stored token".
        bootstrap_token: Option<Vec<u8>>,
        /// `AwaitingConfiguration` (false when absent).
        awaiting_configuration: bool,
    },
    /// A declarative-management request; may be declined ([`CheckinReply::Declined`]).
    DeclarativeManagement {
        /// `Endpoint`: `tokens`, `declaration-items`, `status` or `declaration/<type>/<id>`.
        endpoint: String,
        /// `Data`: the request's JSON body, when any.
        data: Option<Vec<u8>>,
    },
    /// The device asks for a token for a service; may be declined, or answered with
    /// [`get_token_reply`].
    GetToken {
        /// `TokenServiceType`, e.g. `com.apple.maid` or `com.apple.watch.pairing`.
        token_service_type: String,
        /// `TokenParameters`, as sent.
        token_parameters: Option<Dictionary>,
    },
}

/// The keys of an `Authenticate` message besides the identity. Every field is optional on the
/// wire (iOS omits `DeviceName`, `Model` and `ModelName`; user enrollments omit serial, IMEI,
/// MEID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticate {
    /// `Topic`.
    pub topic: Topic,
    /// `BuildVersion`.
    pub build_version: Option<String>,
    /// `OSVersion`.
    pub os_version: Option<String>,
    /// `ProductName`, e.g. `iPhone14,5`.
    pub product_name: Option<String>,
    /// `SerialNumber`.
    pub serial_number: Option<String>,
    /// `IMEI`.
    pub imei: Option<String>,
    /// `MEID`.
    pub meid: Option<String>,
    /// `DeviceName` (macOS).
    pub device_name: Option<String>,
    /// `Model` (macOS).
    pub model: Option<String>,
    /// `ModelName` (macOS).
    pub model_name: Option<String>,
}

/// The keys of a `TokenUpdate` message besides the identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUpdate {
    /// `Topic`.
    pub topic: Topic,
    /// `Token`: the APNs push token.
    pub token: PushToken,
    /// `PushMagic`: to be sent in every push.
    pub push_magic: PushMagic,
    /// `UnlockToken`: keep it to send `ClearPasscode` later.
    pub unlock_token: Option<Vec<u8>>,
    /// `AwaitingConfiguration` (false when absent): the device waits in Setup Assistant for
    /// `DeviceConfigured`.
    pub awaiting_configuration: bool,
    /// `NotOnConsole` (macOS user channel; false when absent).
    pub not_on_console: bool,
}

/// Why a check-in body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckinError {
    /// The body is not a property list.
    #[error("check-in body is not a property list: {0}")]
    Malformed(String),
    /// The property list's top level is not a dictionary.
    #[error("check-in body is not a dictionary")]
    NotADictionary,
    /// `MessageType` names a message this crate does not know.
    #[error("unknown check-in MessageType {0:?}")]
    UnknownMessageType(String),
    /// A key is missing or has the wrong type (`MessageType`, `UDID`, `Topic`, `Token` ...).
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl From<ParseError> for CheckinError {
    fn from(e: ParseError) -> Self {
        match e {
            ParseError::Malformed(m) => CheckinError::Malformed(m),
            ParseError::NotADictionary => CheckinError::NotADictionary,
        }
    }
}

impl Checkin {
    /// Decodes a check-in request body (an XML plist; binary is accepted too).
    pub fn parse(body: &[u8]) -> Result<Checkin, CheckinError> {
        let mut keys = Keys::new(dict::parse_dictionary(body)?);
        let message_type = keys.string("MessageType")?;
        if !MESSAGE_TYPES.contains(&message_type.as_str()) {
            return Err(CheckinError::UnknownMessageType(message_type));
        }
        let enrollment = Enrollment::take_from(&mut keys)?;
        let message = match message_type.as_str() {
            "Authenticate" => CheckinMessage::Authenticate(Authenticate {
                topic: topic(&mut keys)?,
                build_version: keys.opt_string("BuildVersion")?,
                os_version: keys.opt_string("OSVersion")?,
                product_name: keys.opt_string("ProductName")?,
                serial_number: keys.opt_string("SerialNumber")?,
                imei: keys.opt_string("IMEI")?,
                meid: keys.opt_string("MEID")?,
                device_name: keys.opt_string("DeviceName")?,
                model: keys.opt_string("Model")?,
                model_name: keys.opt_string("ModelName")?,
            }),
            "TokenUpdate" => CheckinMessage::TokenUpdate(TokenUpdate {
                topic: topic(&mut keys)?,
                token: PushToken::new(keys.data("Token")?).ok_or_else(|| keys.invalid("Token", "non-empty data"))?,
                push_magic: PushMagic::new(keys.non_empty("PushMagic")?).expect("checked non-empty"),
                unlock_token: keys.opt_data("UnlockToken")?,
                awaiting_configuration: keys.opt_bool("AwaitingConfiguration")?.unwrap_or(false),
                not_on_console: keys.opt_bool("NotOnConsole")?.unwrap_or(false),
            }),
            "CheckOut" => CheckinMessage::CheckOut { topic: topic(&mut keys)? },
            "UserAuthenticate" => {
                if !enrollment.is_user_channel() {
                    return Err(keys.missing("UserID").into());
                }
                CheckinMessage::UserAuthenticate { digest_response: keys.opt_string("DigestResponse")? }
            }
            "GetBootstrapToken" => CheckinMessage::GetBootstrapToken {
                awaiting_configuration: keys.opt_bool("AwaitingConfiguration")?.unwrap_or(false),
            },
            "SetBootstrapToken" => CheckinMessage::SetBootstrapToken {
                bootstrap_token: keys.opt_data("BootstrapToken")?.filter(|t| !t.is_empty()),
                awaiting_configuration: keys.opt_bool("AwaitingConfiguration")?.unwrap_or(false),
            },
            "DeclarativeManagement" => CheckinMessage::DeclarativeManagement {
                endpoint: keys.non_empty("Endpoint")?,
                data: keys.opt_data("Data")?,
            },
            "GetToken" => CheckinMessage::GetToken {
                token_service_type: keys.non_empty("TokenServiceType")?,
                token_parameters: keys.opt_dict("TokenParameters")?,
            },
            other => unreachable!("{other} is in MESSAGE_TYPES but not decoded"),
        };
        Ok(Checkin { enrollment, message, extra: keys.rest(), raw: body.to_vec() })
    }

    /// The exact bytes received.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }
}

impl CheckinMessage {
    /// The message's `MessageType`.
    pub fn message_type(&self) -> &'static str {
        match self {
            CheckinMessage::Authenticate(_) => "Authenticate",
            CheckinMessage::TokenUpdate(_) => "TokenUpdate",
            CheckinMessage::CheckOut { .. } => "CheckOut",
            CheckinMessage::UserAuthenticate { .. } => "UserAuthenticate",
            CheckinMessage::GetBootstrapToken { .. } => "GetBootstrapToken",
            CheckinMessage::SetBootstrapToken { .. } => "SetBootstrapToken",
            CheckinMessage::DeclarativeManagement { .. } => "DeclarativeManagement",
            CheckinMessage::GetToken { .. } => "GetToken",
        }
    }
}

fn topic(keys: &mut Keys) -> Result<Topic, KeyError> {
    Ok(Topic::new(keys.non_empty("Topic")?).expect("checked non-empty"))
}

/// What the server answers to a check-in request, independent of HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckinReply {
    /// Success with an empty body (`Authenticate`, `TokenUpdate`, `CheckOut`,
    /// `SetBootstrapToken`).
    Empty,
    /// Success with this XML plist body (`Content-Type: application/xml`).
    Plist(Vec<u8>),
    /// Success with this JSON body (`Content-Type: application/json`; declarative management).
    Json(Vec<u8>),
    /// The server does not serve this request (e.g. `DeclarativeManagement` or `GetToken` when
    /// unsupported). The HTTP layer answers with an error status, which the device takes as a
    /// refusal.
    Declined,
}

/// The answer to `GetBootstrapToken`: `{BootstrapToken: <data>}`, or an empty dictionary when no
/// token is stored (Apple: "a success response ... omits the key").
pub fn bootstrap_token_reply(token: Option<&[u8]>) -> CheckinReply {
    CheckinReply::Plist(dict::to_xml(DictBuilder::new().opt_data("BootstrapToken", token).build()))
}

/// The answer to `UserAuthenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserAuthentication<'a> {
    /// First request: `{DigestChallenge: ""}`, meaning no authentication is required.
    NotRequired,
    /// First request: `{DigestChallenge: <challenge>}`; the device answers with a digest.
    Challenge(&'a str),
    /// Second request, digest accepted: `{AuthToken: <token>}`, sent by the user channel
    /// afterwards.
    Accepted {
        /// The token the device will present.
        auth_token: &'a str,
    },
}

/// The plist body answering a `UserAuthenticate` message.
pub fn user_authenticate_reply(answer: UserAuthentication<'_>) -> CheckinReply {
    let dict = match answer {
        UserAuthentication::NotRequired => DictBuilder::new().set("DigestChallenge", ""),
        UserAuthentication::Challenge(c) => DictBuilder::new().set("DigestChallenge", c),
        UserAuthentication::Accepted { auth_token } => DictBuilder::new().set("AuthToken", auth_token),
    };
    CheckinReply::Plist(dict::to_xml(dict.build()))
}

/// The answer to `GetToken`: `{TokenData: <data>}`.
pub fn get_token_reply(token_data: &[u8]) -> CheckinReply {
    CheckinReply::Plist(dict::to_xml(DictBuilder::new().data("TokenData", token_data).build()))
}
