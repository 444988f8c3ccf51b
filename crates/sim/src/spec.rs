//! What a simulated device is: its kind, its hardware identifiers (serial number, UDID, IMEI
//! ...), its software, and how it behaves when asked to run commands. Identifiers are either
//! random or derived from an index, so a run can be repeated with the same devices.
//!
//! Pure: no IO.

use std::collections::{BTreeMap, BTreeSet};

/// The kinds of device simulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DeviceKind {
    /// An iPhone 15 Pro Max (`iPhone16,2`), with a cellular modem: IMEI, MEID, ICCID, phone
    /// number.
    IPhone,
    /// An iPad mini (6th generation, Wi-Fi, `iPad14,1`): no modem.
    IPad,
}

impl DeviceKind {
    /// `ProductName`.
    pub fn product_name(self) -> &'static str {
        match self {
            DeviceKind::IPhone => "iPhone16,2",
            DeviceKind::IPad => "iPad14,1",
        }
    }

    /// `ModelName`.
    pub fn model_name(self) -> &'static str {
        match self {
            DeviceKind::IPhone => "iPhone",
            DeviceKind::IPad => "iPad",
        }
    }

    /// `ModelNumber` (the part number without the region suffix).
    pub fn model_number(self) -> &'static str {
        match self {
            DeviceKind::IPhone => "MU6A3",
            DeviceKind::IPad => "MK7M3",
        }
    }

    /// `Model`: the part number with its region suffix.
    pub fn model(self) -> String {
        format!("{}LL/A", self.model_number())
    }

    /// The chip's prefix of a UDID (`00008130-` for A17 Pro, `00008110-` for A15).
    fn udid_prefix(self) -> &'static str {
        match self {
            DeviceKind::IPhone => "00008130",
            DeviceKind::IPad => "00008110",
        }
    }

    /// `DeviceCapacity` in GB, as iOS reports it (the formatted capacity).
    fn capacity_gb(self) -> f64 {
        match self {
            DeviceKind::IPhone => 238.35,
            DeviceKind::IPad => 59.55,
        }
    }

    /// Whether the device has a cellular modem.
    pub fn has_modem(self) -> bool {
        matches!(self, DeviceKind::IPhone)
    }
}

/// How a device answers commands of given request types, to exercise the server's queue.
/// Everything not named is answered normally.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Behaviour {
    /// Request types answered `NotNow`: once per command (the same `CommandUUID` sent again is
    /// then run) or always.
    pub not_now: BTreeMap<String, NotNow>,
    /// Request types answered `Error` (with an `ErrorChain`).
    pub error: BTreeSet<String>,
}

/// When a device answers `NotNow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotNow {
    /// The first time a command (by `CommandUUID`) arrives; it is run when sent again.
    Once,
    /// Every time.
    Always,
}

impl Behaviour {
    /// Answers `NotNow` to `request_type` as `mode` says.
    pub fn not_now(mut self, request_type: &str, mode: NotNow) -> Behaviour {
        self.not_now.insert(request_type.to_owned(), mode);
        self
    }

    /// Answers `Error` to `request_type`.
    pub fn error(mut self, request_type: &str) -> Behaviour {
        self.error.insert(request_type.to_owned());
        self
    }
}

/// A simulated device: its hardware, software and behaviour. The fields are public so a test
/// can set any of them; the constructors fill them consistently.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSpec {
    /// iPhone or iPad.
    pub kind: DeviceKind,
    /// `SerialNumber`: ten upper-case letters and digits, as Apple assigns them since 2021.
    pub serial_number: String,
    /// `UDID`: `<chip>-<16 hex digits>`, as on devices with Apple silicon.
    pub udid: String,
    /// `IMEI`: 15 digits with a valid Luhn check digit (iPhone only).
    pub imei: Option<String>,
    /// `MEID`: the IMEI's first 14 digits (iPhone only).
    pub meid: Option<String>,
    /// `ICCID`: 20 digits with a valid Luhn check digit (iPhone only).
    pub iccid: Option<String>,
    /// `PhoneNumber` (iPhone only).
    pub phone_number: Option<String>,
    /// `WiFiMAC`.
    pub wifi_mac: String,
    /// `BluetoothMAC`.
    pub bluetooth_mac: String,
    /// `DeviceName`.
    pub device_name: String,
    /// `OSVersion`.
    pub os_version: String,
    /// `BuildVersion`.
    pub build_version: String,
    /// `IsSupervised`: Lost Mode needs a supervised device.
    pub supervised: bool,
    /// How the device answers commands.
    pub behaviour: Behaviour,
}

impl DeviceSpec {
    /// A device with random identifiers.
    pub fn random(kind: DeviceKind) -> DeviceSpec {
        let mut bytes = [0u8; 16];
        openssl::rand::rand_bytes(&mut bytes).expect("the system's random source");
        let seed = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        let index = u64::from_le_bytes(bytes[8..].try_into().expect("8 bytes"));
        DeviceSpec::derive(kind, seed, index)
    }

    /// A device whose identifiers are derived from `index` alone: the same index gives the same
    /// serial number, UDID, IMEI ... and different indexes give different ones.
    pub fn numbered(kind: DeviceKind, index: u64) -> DeviceSpec {
        DeviceSpec::derive(kind, 0, index)
    }

    /// Like [`DeviceSpec::numbered`], in the namespace `seed`: the same (seed, index) pair
    /// gives the same device; another seed gives other devices (barring unlikely collisions).
    pub fn derive(kind: DeviceKind, seed: u64, index: u64) -> DeviceSpec {
        let id = mix(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index);
        // Counters offset by the seed: distinct for up to 10^n devices of one seed.
        let counter = |salt: u64, width: u32| {
            let modulus = 10u64.pow(width);
            let n = (mix(seed ^ salt) % modulus + index % modulus) % modulus;
            format!("{n:0width$}", width = width as usize)
        };
        let (imei, meid, iccid, phone_number) = if kind.has_modem() {
            let body = format!("353281{}", counter(0x1111, 8));
            let imei = with_luhn(&body);
            let iccid = with_luhn(&format!("8901260{}", counter(0x2222, 12)));
            let phone = format!("+1518{}", counter(0x3333, 7));
            (Some(imei), Some(body), Some(iccid), Some(phone))
        } else {
            (None, None, None, None)
        };
        let mac_number = (mix(seed ^ 0x4444) & 0xff_ffff).wrapping_add(index) & 0xff_ffff;
        let mac = |oui: &str| {
            format!("{oui}:{:02x}:{:02x}:{:02x}", (mac_number >> 16) as u8, (mac_number >> 8) as u8, mac_number as u8)
        };
        DeviceSpec {
            kind,
            serial_number: serial_number(seed, index),
            udid: format!("{}-{:016X}", kind.udid_prefix(), id),
            imei,
            meid,
            iccid,
            phone_number,
            wifi_mac: mac("f0:18:98"),
            bluetooth_mac: mac("f0:18:99"),
            device_name: format!("{} {}", kind.model_name(), index % 100_000),
            os_version: "18.5".to_owned(),
            build_version: "22F76".to_owned(),
            supervised: true,
            behaviour: Behaviour::default(),
        }
    }

    /// The same device with another behaviour.
    pub fn with_behaviour(mut self, behaviour: Behaviour) -> DeviceSpec {
        self.behaviour = behaviour;
        self
    }

    /// `DeviceCapacity` in GB.
    pub fn capacity_gb(&self) -> f64 {
        self.kind.capacity_gb()
    }
}

/// The characters of a serial number: digits and upper-case letters without vowels (which
/// Apple's randomised serials avoid): 31 symbols.
const SERIAL_ALPHABET: &[u8] = b"0123456789BCDFGHJKLMNPQRSTVWXYZ";

/// Ten symbols of [`SERIAL_ALPHABET`]: a bijection of `index` (modulo 31^10) mixed with the
/// seed, so numbered devices never share a serial number.
fn serial_number(seed: u64, index: u64) -> String {
    const BASE: u128 = SERIAL_ALPHABET.len() as u128;
    const MODULUS: u128 = 819_628_286_980_801; // 31^10
    // Multiplying by a number coprime to 31 is a bijection modulo 31^10.
    const MULTIPLIER: u128 = 0x0005_DEEC_E66D;
    let start = u128::from(mix(seed)) % MODULUS;
    let mut n = (start + u128::from(index) % MODULUS * MULTIPLIER) % MODULUS;
    let mut out = [0u8; 10];
    for slot in out.iter_mut().rev() {
        *slot = SERIAL_ALPHABET[(n % BASE) as usize];
        n /= BASE;
    }
    String::from_utf8(out.to_vec()).expect("ASCII")
}

/// SplitMix64's finaliser: a bijection of `u64` that spreads neighbouring inputs apart.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `digits` followed by their Luhn check digit.
pub fn with_luhn(digits: &str) -> String {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    format!("{digits}{}", (10 - sum % 10) % 10)
}

/// Whether `number` (digits only) ends with a valid Luhn check digit.
pub fn luhn_valid(number: &str) -> bool {
    number.len() >= 2 && number.bytes().all(|b| b.is_ascii_digit()) && with_luhn(&number[..number.len() - 1]) == number
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_matches_known_numbers() {
        // The IMEI example of 3GPP TS 23.003 and a well-known test card number.
        assert_eq!(with_luhn("49015420323751"), "490154203237518");
        assert!(luhn_valid("4111111111111111"));
        assert!(!luhn_valid("4111111111111112"));
    }

    #[test]
    fn numbered_devices_are_stable_and_distinct() {
        let a = DeviceSpec::numbered(DeviceKind::IPhone, 7);
        assert_eq!(a, DeviceSpec::numbered(DeviceKind::IPhone, 7));
        let mut serials = std::collections::HashSet::new();
        let mut udids = std::collections::HashSet::new();
        for i in 0..5000 {
            let d = DeviceSpec::numbered(DeviceKind::IPhone, i);
            assert_eq!(d.serial_number.len(), 10);
            assert!(luhn_valid(d.imei.as_deref().unwrap()), "{d:?}");
            assert!(luhn_valid(d.iccid.as_deref().unwrap()), "{d:?}");
            assert_eq!(d.meid.as_deref().unwrap(), &d.imei.as_deref().unwrap()[..14]);
            assert!(serials.insert(d.serial_number));
            assert!(udids.insert(d.udid));
        }
        let ipad = DeviceSpec::numbered(DeviceKind::IPad, 7);
        assert!(ipad.imei.is_none() && ipad.phone_number.is_none());
        assert!(ipad.udid.starts_with("00008110-"));
        assert_ne!(DeviceSpec::derive(DeviceKind::IPhone, 1, 7).serial_number, a.serial_number);
    }
}
