//! Who an MDM message comes from: the device channel (UDID), a user channel (UDID + UserID), or
//! a user enrollment (EnrollmentID, with EnrollmentUserID on its user channel). Pure: no IO.

use crate::dict::{KeyError, Keys};

macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Wraps a value; `None` when it is empty.
            pub fn new(value: impl Into<String>) -> Option<Self> {
                let value = value.into();
                if value.is_empty() { None } else { Some($name(value)) }
            }

            /// The value as sent on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The value as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}
pub(crate) use string_newtype;

string_newtype!(
    /// A device's UDID (unique device identifier), the key of a device enrollment.
    Udid
);
string_newtype!(
    /// The per-enrollment identifier of a device in a user enrollment (`EnrollmentID`).
    EnrollmentId
);
string_newtype!(
    /// The per-enrollment identifier of the user in a user enrollment (`EnrollmentUserID`).
    EnrollmentUserId
);
string_newtype!(
    /// The user of a user channel (`UserID`): a macOS user's GUID, or
    /// `FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF` on Shared iPad.
    UserId
);

/// The enrollment (and channel) a check-in message or command report belongs to.
///
/// Read from the message's `UDID`, `EnrollmentID`, `EnrollmentUserID`, `UserID`,
/// `UserShortName` and `UserLongName` keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enrollment {
    /// The device channel of a device enrollment: `UDID`.
    Device {
        /// The device's UDID.
        udid: Udid,
    },
    /// A user channel of a device enrollment (macOS user, Shared iPad user): `UDID` + `UserID`.
    User {
        /// The device's UDID.
        udid: Udid,
        /// The user's ID.
        user_id: UserId,
        /// `UserShortName`: the macOS short name, or the Managed Apple Account on Shared iPad.
        short_name: Option<String>,
        /// `UserLongName`: the user's full name (macOS).
        long_name: Option<String>,
    },
    /// The device channel of a user enrollment (BYOD): `EnrollmentID`.
    UserEnrollmentDevice {
        /// The per-enrollment device identifier.
        enrollment_id: EnrollmentId,
    },
    /// The user channel of a user enrollment (macOS): `EnrollmentID` + `EnrollmentUserID`.
    UserEnrollmentUser {
        /// The per-enrollment device identifier.
        enrollment_id: EnrollmentId,
        /// The per-enrollment user identifier.
        enrollment_user_id: EnrollmentUserId,
        /// `UserShortName`, when sent.
        short_name: Option<String>,
        /// `UserLongName`, when sent.
        long_name: Option<String>,
    },
}

impl Enrollment {
    /// Reads the identity keys; `UDID` is required unless `EnrollmentID` is present.
    pub(crate) fn take_from(keys: &mut Keys) -> Result<Enrollment, KeyError> {
        fn names(keys: &mut Keys) -> Result<(Option<String>, Option<String>), KeyError> {
            Ok((keys.opt_string("UserShortName")?, keys.opt_string("UserLongName")?))
        }
        if let Some(enrollment_id) = keys.opt_non_empty("EnrollmentID")? {
            let enrollment_id = EnrollmentId(enrollment_id);
            return Ok(match keys.opt_non_empty("EnrollmentUserID")? {
                Some(id) => {
                    let (short_name, long_name) = names(keys)?;
                    Enrollment::UserEnrollmentUser {
                        enrollment_id,
                        enrollment_user_id: EnrollmentUserId(id),
                        short_name,
                        long_name,
                    }
                }
                None => Enrollment::UserEnrollmentDevice { enrollment_id },
            });
        }
        let Some(udid) = keys.opt_non_empty("UDID")? else { return Err(keys.missing("UDID")) };
        let udid = Udid(udid);
        Ok(match keys.opt_non_empty("UserID")? {
            Some(user_id) => {
                let (short_name, long_name) = names(keys)?;
                Enrollment::User { udid, user_id: UserId(user_id), short_name, long_name }
            }
            None => Enrollment::Device { udid },
        })
    }

    /// The identifier of the device this enrollment is on: its UDID, or its EnrollmentID in a
    /// user enrollment.
    pub fn device_key(&self) -> &str {
        match self {
            Enrollment::Device { udid } | Enrollment::User { udid, .. } => udid.as_str(),
            Enrollment::UserEnrollmentDevice { enrollment_id }
            | Enrollment::UserEnrollmentUser { enrollment_id, .. } => enrollment_id.as_str(),
        }
    }

    /// Whether the message came over a user channel.
    pub fn is_user_channel(&self) -> bool {
        matches!(self, Enrollment::User { .. } | Enrollment::UserEnrollmentUser { .. })
    }

    /// Whether this is a user enrollment (BYOD, identified by EnrollmentID and not UDID).
    pub fn is_user_enrollment(&self) -> bool {
        matches!(self, Enrollment::UserEnrollmentDevice { .. } | Enrollment::UserEnrollmentUser { .. })
    }

    /// A string naming this channel uniquely: the device key for a device channel, and
    /// `<device key>:<user id>` for a user channel. Suitable as a storage key.
    pub fn channel_key(&self) -> String {
        match self {
            Enrollment::Device { udid } => udid.to_string(),
            Enrollment::UserEnrollmentDevice { enrollment_id } => enrollment_id.to_string(),
            Enrollment::User { udid, user_id, .. } => format!("{udid}:{user_id}"),
            Enrollment::UserEnrollmentUser { enrollment_id, enrollment_user_id, .. } => {
                format!("{enrollment_id}:{enrollment_user_id}")
            }
        }
    }
}
