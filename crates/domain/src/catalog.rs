//! The service catalog: device types (NYS Appendix A) with their standard accessories, device
//! models, money, and effective-dated rates of service codes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::validate::{FieldErrors, text};

/// What can be ordered (NYS Appendix A).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceType {
    CellPhone,
    Smartphone,
    Tablet,
    Mifi,
    Aircard,
}

impl DeviceType {
    pub const ALL: [DeviceType; 5] =
        [DeviceType::CellPhone, DeviceType::Smartphone, DeviceType::Tablet, DeviceType::Mifi, DeviceType::Aircard];

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceType::CellPhone => "cell_phone",
            DeviceType::Smartphone => "smartphone",
            DeviceType::Tablet => "tablet",
            DeviceType::Mifi => "mifi",
            DeviceType::Aircard => "aircard",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            DeviceType::CellPhone => "Cell phone with a voice plan",
            DeviceType::Smartphone => "Smartphone with a data plan",
            DeviceType::Tablet => "Tablet, with or without a data plan",
            DeviceType::Mifi => "MiFi hotspot with a data plan, up to 10 client devices",
            DeviceType::Aircard => "Aircard with a data plan, one client device",
        }
    }

    /// Accessories issued with the device at the state's cost (NYS); others are the agency's to fund.
    pub fn standard_accessories(self) -> &'static [&'static str] {
        match self {
            DeviceType::CellPhone | DeviceType::Smartphone => &["shell holster", "charging cable"],
            DeviceType::Tablet => &["charging cable", "basic case"],
            DeviceType::Mifi => &["charging cable"],
            DeviceType::Aircard => &[],
        }
    }

    /// Accessories that may be issued but are not standard (tablet keyboard).
    pub fn optional_accessories(self) -> &'static [&'static str] {
        match self {
            DeviceType::Tablet => &["keyboard"],
            _ => &[],
        }
    }

    /// True when the type always carries a data plan.
    pub fn has_data_plan(self) -> bool {
        matches!(self, DeviceType::Smartphone | DeviceType::Mifi | DeviceType::Aircard)
    }
}

impl fmt::Display for DeviceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeviceType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeviceType::ALL
            .into_iter()
            .find(|t| t.as_str() == s.trim())
            .ok_or_else(|| "must be one of cell_phone, smartphone, tablet, mifi, aircard".to_string())
    }
}

/// The operating system family of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Ios,
    Ipados,
    Android,
    Other,
}

impl Platform {
    pub const ALL: [Platform; 4] = [Platform::Ios, Platform::Ipados, Platform::Android, Platform::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Ios => "ios",
            Platform::Ipados => "ipados",
            Platform::Android => "android",
            Platform::Other => "other",
        }
    }
}

impl FromStr for Platform {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::ALL
            .into_iter()
            .find(|p| p.as_str() == s.trim())
            .ok_or_else(|| "must be one of ios, ipados, android, other".to_string())
    }
}

/// An amount of money in cents; never floating point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Cents(pub i64);

impl Cents {
    /// Parses `15`, `15.5` or `15.00` (dollars, at most two decimals, not negative).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim().trim_start_matches('$');
        let invalid = || "must be an amount in dollars such as 15.00".to_string();
        let (whole, fraction) = raw.split_once('.').unwrap_or((raw, ""));
        if whole.is_empty() || !whole.chars().all(|c| c.is_ascii_digit()) || whole.len() > 9 {
            return Err(invalid());
        }
        if fraction.len() > 2 || !fraction.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid());
        }
        let whole: i64 = whole.parse().map_err(|_| invalid())?;
        let fraction: i64 = format!("{fraction:0<2}").parse().map_err(|_| invalid())?;
        Ok(Cents(whole * 100 + fraction))
    }

    /// `15.00`, `-2.50`
    pub fn dollars(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        format!("{sign}{}.{:02}", self.0.unsigned_abs() / 100, self.0.unsigned_abs() % 100)
    }
}

/// A calendar date, `YYYY-MM-DD`.
pub fn parse_date(raw: &str) -> Result<String, String> {
    raw.trim()
        .parse::<jiff::civil::Date>()
        .map(|d| d.to_string())
        .map_err(|_| "must be a date such as 2026-07-01".to_string())
}

/// A device model's validated details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelDetails {
    pub device_type: DeviceType,
    pub platform: Platform,
    pub maker: String,
    pub model: String,
    /// Standard devices are funded by the service; non-standard ones are the agency's.
    pub standard: bool,
    pub quote_price: Option<Cents>,
    pub active: bool,
}

/// A device model as it arrives; `None` keeps the current value on an update.
#[derive(Debug, Clone, Default)]
pub struct ModelInput {
    pub device_type: Option<String>,
    pub platform: Option<String>,
    pub maker: Option<String>,
    pub model: Option<String>,
    pub standard: Option<bool>,
    pub quote_price: Option<String>,
    pub active: Option<bool>,
}

impl ModelInput {
    pub fn apply(self, current: Option<&ModelDetails>, errors: &mut FieldErrors) -> Option<ModelDetails> {
        fn required<T: Clone>(
            errors: &mut FieldErrors,
            field: &str,
            parsed: Option<Result<T, String>>,
            current: Option<T>,
        ) -> Option<T> {
            match parsed {
                Some(result) => errors.check(field, result),
                None => current.or_else(|| {
                    errors.push(field, "is required");
                    None
                }),
            }
        }
        let device_type =
            required(errors, "device_type", self.device_type.map(|s| s.parse()), current.map(|c| c.device_type));
        let platform = required(errors, "platform", self.platform.map(|s| s.parse()), current.map(|c| c.platform));
        let maker = required(errors, "maker", self.maker.map(|s| text(&s, 1, 100)), current.map(|c| c.maker.clone()));
        let model = required(errors, "model", self.model.map(|s| text(&s, 1, 100)), current.map(|c| c.model.clone()));
        let quote_price = match self.quote_price {
            Some(raw) if raw.trim().is_empty() => None,
            Some(raw) => errors.check("quote_price", Cents::parse(&raw)),
            None => current.and_then(|c| c.quote_price),
        };
        if !errors.is_empty() {
            return None;
        }
        Some(ModelDetails {
            device_type: device_type?,
            platform: platform?,
            maker: maker?,
            model: model?,
            standard: self.standard.or(current.map(|c| c.standard)).unwrap_or(true),
            quote_price,
            active: self.active.or(current.map(|c| c.active)).unwrap_or(true),
        })
    }
}

/// How a partial month is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Proration {
    /// Any day of the month counts as the whole month (the default).
    FullMonth,
    /// Rate × days in service ÷ days in the month.
    Daily,
}

impl FromStr for Proration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "full_month" => Ok(Proration::FullMonth),
            "daily" => Ok(Proration::Daily),
            _ => Err("must be full_month or daily".into()),
        }
    }
}

impl Proration {
    pub fn as_str(self) -> &'static str {
        match self {
            Proration::FullMonth => "full_month",
            Proration::Daily => "daily",
        }
    }
}

/// One effective-dated rate: in force from `effective_from` until the next rate's start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rate {
    pub id: String,
    /// For line plan rates that differ per device type; `None` applies to every type.
    pub device_type: Option<DeviceType>,
    pub amount: Cents,
    /// `YYYY-MM-DD`
    pub effective_from: String,
}

/// The rate in force on `date` (`YYYY-MM-DD`) for `device_type`: the latest rate that started on
/// or before the date, for that device type, or else for every type.
pub fn rate_in_force<'a>(rates: &'a [Rate], date: &str, device_type: Option<DeviceType>) -> Option<&'a Rate> {
    let latest = |wanted: Option<DeviceType>| {
        rates
            .iter()
            .filter(|r| r.device_type == wanted && r.effective_from.as_str() <= date)
            .max_by(|a, b| a.effective_from.cmp(&b.effective_from))
    };
    device_type.and_then(|t| latest(Some(t))).or_else(|| latest(None))
}

/// When each rate stops: the start of the next rate of the same device type, if any.
pub fn effective_to(rates: &[Rate], rate: &Rate) -> Option<String> {
    rates
        .iter()
        .filter(|r| r.device_type == rate.device_type && r.effective_from > rate.effective_from)
        .map(|r| r.effective_from.clone())
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(id: &str, device_type: Option<DeviceType>, cents: i64, from: &str) -> Rate {
        Rate { id: id.into(), device_type, amount: Cents(cents), effective_from: from.into() }
    }

    #[test]
    fn money_parses_exactly() {
        assert_eq!(Cents::parse("15").unwrap(), Cents(1500));
        assert_eq!(Cents::parse("$15.5").unwrap(), Cents(1550));
        assert_eq!(Cents::parse("0.07").unwrap(), Cents(7));
        assert_eq!(Cents(1507).dollars(), "15.07");
        assert_eq!(Cents(-250).dollars(), "-2.50");
        assert_eq!(Cents(-7).dollars(), "-0.07");
        for bad in ["", "-1", "1.234", "1,00", "abc", "1e3", "."] {
            assert!(Cents::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_rate_in_force_is_the_latest_started_one_of_the_type() {
        let rates = vec![
            rate("a", None, 1500, "2023-01-01"),
            rate("b", None, 1700, "2027-01-01"),
            rate("c", Some(DeviceType::Tablet), 1200, "2024-06-01"),
        ];
        assert_eq!(rate_in_force(&rates, "2022-12-31", None), None);
        assert_eq!(rate_in_force(&rates, "2023-01-01", None).unwrap().id, "a");
        assert_eq!(rate_in_force(&rates, "2026-12-31", None).unwrap().id, "a");
        assert_eq!(rate_in_force(&rates, "2027-01-01", None).unwrap().id, "b");
        assert_eq!(rate_in_force(&rates, "2025-01-01", Some(DeviceType::Tablet)).unwrap().id, "c");
        assert_eq!(rate_in_force(&rates, "2024-01-01", Some(DeviceType::Tablet)).unwrap().id, "a");
        assert_eq!(effective_to(&rates, &rates[0]).as_deref(), Some("2027-01-01"));
        assert_eq!(effective_to(&rates, &rates[2]), None);
    }

    #[test]
    fn accessories_follow_the_nys_list() {
        assert_eq!(DeviceType::Smartphone.standard_accessories(), ["shell holster", "charging cable"]);
        assert!(DeviceType::Aircard.standard_accessories().is_empty());
        assert_eq!(DeviceType::Tablet.optional_accessories(), ["keyboard"]);
    }
}
