//! Device compliance: the rule that decides whether a device in use may stay on the network,
//! and the reasons it may not.
//!
//! A device in use (see [`in_scope`]) is non-compliant when it is not enrolled in MDM, has not
//! checked in for the allowed silence, runs an OS below its platform's minimum, reports no
//! passcode, reports a jailbroken or rooted signal, or has been reported lost or stolen. The
//! store evaluates the same rule in SQL over the whole fleet; a property test holds the two to
//! the same answers.

use std::fmt;

use crate::device::DeviceState;

/// Why a device is not compliant. The codes are stable: the API, the feed and the store use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    NotEnrolled,
    NoCheckIn,
    OsOutdated,
    NoPasscode,
    Compromised,
    ReportedLost,
}

impl Reason {
    pub const ALL: [Reason; 6] = [
        Reason::NotEnrolled,
        Reason::NoCheckIn,
        Reason::OsOutdated,
        Reason::NoPasscode,
        Reason::Compromised,
        Reason::ReportedLost,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotEnrolled => "not_enrolled",
            Reason::NoCheckIn => "no_check_in",
            Reason::OsOutdated => "os_outdated",
            Reason::NoPasscode => "no_passcode",
            Reason::Compromised => "compromised",
            Reason::ReportedLost => "reported_lost",
        }
    }

    pub fn parse(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == code)
    }

    /// What the reason means, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::NotEnrolled => "not enrolled in MDM",
            Reason::NoCheckIn => "has not checked in within the allowed time",
            Reason::OsOutdated => "runs an OS below the required minimum",
            Reason::NoPasscode => "has no passcode",
            Reason::Compromised => "reports a jailbroken or rooted signal",
            Reason::ReportedLost => "reported lost or stolen",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads a stored list of reason codes (space-separated); unknown codes are skipped.
pub fn parse_reasons(text: &str) -> Vec<Reason> {
    text.split_whitespace().filter_map(Reason::parse).collect()
}

/// The device states in which a device is in someone's hands or on its way there, and so must
/// be compliant. Devices in stock, in repair or retired are not evaluated.
pub const IN_SCOPE: [DeviceState; 5] = [
    DeviceState::Enrolled,
    DeviceState::InTransit,
    DeviceState::InService,
    DeviceState::LostStolen,
    DeviceState::Recovered,
];

pub fn in_scope(state: DeviceState) -> bool {
    IN_SCOPE.contains(&state)
}

/// An OS version as a number that orders like the version: `major * 1,000,000 + minor * 1,000 +
/// patch` (`17.4.1` → 17,004,001). `None` for anything that is not one to three dot-separated
/// numbers (each below 1,000).
pub fn os_rank(version: &str) -> Option<i64> {
    let mut rank = 0i64;
    let mut parts = 0;
    for part in version.trim().split('.') {
        if parts == 3 || part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        rank = rank * 1_000 + part.parse::<i64>().ok()?;
        parts += 1;
    }
    for _ in parts..3 {
        rank *= 1_000;
    }
    Some(rank)
}

/// The platform of an Apple device from its `ProductName` (`iPhone14,5`, `iPad13,1`, `Mac14,2`).
pub fn platform_of(product_name: &str) -> Option<&'static str> {
    let p = product_name.trim();
    if p.starts_with("iPhone") || p.starts_with("iPod") {
        Some("ios")
    } else if p.starts_with("iPad") {
        Some("ipados")
    } else if p.starts_with("Mac") || p.starts_with("iMac") {
        Some("macos")
    } else if p.starts_with("AppleTV") {
        Some("tvos")
    } else {
        None
    }
}

/// The compliance settings in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// A device not seen since before `now - max_silence_ms` has not checked in.
    pub max_silence_ms: i64,
    /// The minimum OS rank per platform (see [`os_rank`]); a platform not listed has none.
    pub min_os: Vec<(String, i64)>,
}

impl Policy {
    pub fn min_os_of(&self, platform: &str) -> Option<i64> {
        self.min_os.iter().find(|(p, _)| p == platform).map(|(_, rank)| *rank)
    }
}

/// What the rule looks at for one device in use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The device's own lifecycle state says it was reported lost or stolen.
    pub reported_lost: bool,
    /// Its active MDM enrollment, if it has one.
    pub enrollment: Option<EnrollmentFacts>,
}

/// What an active enrollment reported (`None`: not reported yet, which is not held against it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnrollmentFacts {
    pub last_seen_at: i64,
    pub platform: Option<String>,
    pub os_rank: Option<i64>,
    pub passcode_present: Option<bool>,
    pub compromised: Option<bool>,
}

/// The reasons a device is not compliant at `now`, in [`Reason::ALL`] order; empty when it is.
pub fn evaluate(facts: &Facts, policy: &Policy, now: i64) -> Vec<Reason> {
    let mut reasons = Vec::new();
    match &facts.enrollment {
        None => reasons.push(Reason::NotEnrolled),
        Some(e) => {
            if e.last_seen_at < now - policy.max_silence_ms {
                reasons.push(Reason::NoCheckIn);
            }
            let minimum = e.platform.as_deref().and_then(|p| policy.min_os_of(p)).unwrap_or(0);
            if e.os_rank.is_some_and(|rank| rank < minimum) {
                reasons.push(Reason::OsOutdated);
            }
            if e.passcode_present == Some(false) {
                reasons.push(Reason::NoPasscode);
            }
            if e.compromised == Some(true) {
                reasons.push(Reason::Compromised);
            }
        }
    }
    if facts.reported_lost {
        reasons.push(Reason::ReportedLost);
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy { max_silence_ms: 30 * 86_400_000, min_os: vec![("ios".into(), os_rank("17.0").unwrap())] }
    }

    fn enrolled(now: i64) -> EnrollmentFacts {
        EnrollmentFacts {
            last_seen_at: now,
            platform: Some("ios".into()),
            os_rank: os_rank("17.4.1"),
            passcode_present: Some(true),
            compromised: Some(false),
        }
    }

    #[test]
    fn versions_rank_in_order() {
        assert_eq!(os_rank("17.4.1"), Some(17_004_001));
        assert_eq!(os_rank("17"), Some(17_000_000));
        assert_eq!(os_rank("16.7"), Some(16_007_000));
        assert!(os_rank("16.7.10") < os_rank("17.0"));
        assert!(os_rank("17.10") > os_rank("17.9.9"));
        for bad in ["", "17.", "a.b", "1.2.3.4", "1000.0", " 17.-1"] {
            assert_eq!(os_rank(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn platforms_come_from_the_product_name() {
        assert_eq!(platform_of("iPhone14,5"), Some("ios"));
        assert_eq!(platform_of("iPad13,1"), Some("ipados"));
        assert_eq!(platform_of("Mac14,2"), Some("macos"));
        assert_eq!(platform_of("Pixel 8"), None);
    }

    #[test]
    fn each_reason_alone() {
        let now = 100 * 86_400_000;
        let p = policy();
        assert!(evaluate(&Facts { reported_lost: false, enrollment: Some(enrolled(now)) }, &p, now).is_empty());
        assert_eq!(evaluate(&Facts::default(), &p, now), vec![Reason::NotEnrolled]);
        let silent = EnrollmentFacts { last_seen_at: now - 31 * 86_400_000, ..enrolled(now) };
        assert_eq!(
            evaluate(&Facts { reported_lost: false, enrollment: Some(silent) }, &p, now),
            vec![Reason::NoCheckIn]
        );
        let seen_29_days_ago = EnrollmentFacts { last_seen_at: now - 29 * 86_400_000, ..enrolled(now) };
        assert!(evaluate(&Facts { reported_lost: false, enrollment: Some(seen_29_days_ago) }, &p, now).is_empty());
        let old = EnrollmentFacts { os_rank: os_rank("16.7.2"), ..enrolled(now) };
        assert_eq!(evaluate(&Facts { reported_lost: false, enrollment: Some(old) }, &p, now), vec![Reason::OsOutdated]);
        // No minimum for the platform: any version passes.
        let ipad = EnrollmentFacts { platform: Some("ipados".into()), os_rank: os_rank("12.0"), ..enrolled(now) };
        assert!(evaluate(&Facts { reported_lost: false, enrollment: Some(ipad) }, &p, now).is_empty());
        let open = EnrollmentFacts { passcode_present: Some(false), ..enrolled(now) };
        assert_eq!(
            evaluate(&Facts { reported_lost: false, enrollment: Some(open) }, &p, now),
            vec![Reason::NoPasscode]
        );
        // Not yet reported is not held against the device.
        let unknown = EnrollmentFacts { passcode_present: None, os_rank: None, compromised: None, ..enrolled(now) };
        assert!(evaluate(&Facts { reported_lost: false, enrollment: Some(unknown) }, &p, now).is_empty());
        let broken = EnrollmentFacts { compromised: Some(true), ..enrolled(now) };
        assert_eq!(
            evaluate(&Facts { reported_lost: false, enrollment: Some(broken) }, &p, now),
            vec![Reason::Compromised]
        );
        assert_eq!(
            evaluate(&Facts { reported_lost: true, enrollment: Some(enrolled(now)) }, &p, now),
            vec![Reason::ReportedLost]
        );
        assert_eq!(
            evaluate(&Facts { reported_lost: true, enrollment: None }, &p, now),
            vec![Reason::NotEnrolled, Reason::ReportedLost]
        );
    }

    #[test]
    fn reasons_read_back() {
        let text: String = Reason::ALL.iter().map(|r| format!("{r} ")).collect();
        assert_eq!(parse_reasons(&text), Reason::ALL.to_vec());
        assert!(parse_reasons("").is_empty());
    }
}
