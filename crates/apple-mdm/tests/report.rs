//! Command reports decoded from Apple-format fixtures, and the typed results of the inventory
//! commands.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use apple_mdm::KeyError;
use apple_mdm::enrollment::{Enrollment, Udid};
use apple_mdm::report::{Report, ReportError, Status};
use common::fixture;
use plist::Value;

const UDID: &str = "00008110-000A1B2C3D4E5F60";

fn parse(name: &str) -> Report {
    let body = fixture(name);
    let report = Report::parse(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(report.raw(), body.as_slice(), "{name}: raw bytes are kept");
    assert_eq!(report.enrollment, Enrollment::Device { udid: Udid::new(UDID).unwrap() }, "{name}");
    report
}

fn status_of(name: &str) -> (&'static str, Option<String>) {
    let report = parse(name);
    (report.status.as_str(), report.status.command_uuid().map(|u| u.to_string()))
}

#[test]
fn each_status_is_decoded_with_its_command() {
    let expected = [
        ("report_idle.plist", "Idle", None),
        ("report_device_information.plist", "Acknowledged", Some("0001_DeviceInformation")),
        ("report_error.plist", "Error", Some("7C0A3E4F-5B6D-4E8A-9F1B-2C3D4E5F6A7B")),
        ("report_not_now.plist", "NotNow", Some("3D2C1B0A-9F8E-4D7C-6B5A-493827161504")),
        ("report_certificate_list.plist", "Acknowledged", Some("E4D3C2B1-A098-4F7E-8D6C-5B4A39281706")),
    ];
    for (name, status, uuid) in expected {
        assert_eq!(status_of(name), (status, uuid.map(String::from)), "{name}");
    }
    assert!(parse("report_idle.plist").result.is_empty());
}

#[test]
fn error_chain_is_typed() {
    let report = parse("report_error.plist");
    let Status::Error { error_chain, .. } = &report.status else { panic!("{:?}", report.status) };
    let chain: Vec<(i64, &str, Option<&str>, Option<&str>)> = error_chain
        .iter()
        .map(|e| (e.code, e.domain.as_str(), e.localized_description.as_deref(), e.us_english_description.as_deref()))
        .collect();
    assert_eq!(
        chain,
        [
            (
                4001,
                "MCInstallationErrorDomain",
                Some("Profile Installation Failed"),
                Some("Profile Installation Failed")
            ),
            (
                1000,
                "MCProfileErrorDomain",
                Some("The profile “Wi-Fi” could not be read."),
                Some("The profile could not be read.")
            ),
        ]
    );
    assert_eq!(report.status.error_chain().len(), 2);
    assert!(report.result.is_empty(), "ErrorChain is not left in the result");
}

#[test]
fn device_information_reads_nested_query_responses() {
    let info = parse("report_device_information.plist").device_information().unwrap();
    assert_eq!(info.device_name.as_deref(), Some("Pat's iPhone"));
    assert_eq!(info.os_version.as_deref(), Some("17.5.1"));
    assert_eq!(info.build_version.as_deref(), Some("21F90"));
    assert_eq!(info.serial_number.as_deref(), Some("F2LXK0Q1N72J"));
    assert_eq!(info.imei.as_deref(), Some("35 391805 123456 7"));
    assert_eq!(info.product_name.as_deref(), Some("iPhone14,5"));
    assert_eq!(info.model.as_deref(), Some("MLPF3LL/A"));
    assert_eq!(info.model_name.as_deref(), Some("iPhone"));
    assert_eq!(info.wifi_mac.as_deref(), Some("a4:83:e7:12:34:56"));
    assert_eq!(info.device_capacity, Some(128.0));
    assert_eq!(info.available_device_capacity, Some(97.84));
    assert_eq!(info.battery_level, Some(0.81));
    assert_eq!(info.is_supervised, Some(true));
    assert_eq!(info.is_activation_lock_enabled, Some(false));
    // 2024-06-03T14:25:07Z
    assert_eq!(info.last_cloud_backup_date, Some(UNIX_EPOCH + Duration::from_secs(1_717_424_707)));
    let subscriptions = info.extra.get("ServiceSubscriptions").and_then(Value::as_array).expect("kept in extra");
    let carrier = subscriptions[0].as_dictionary().unwrap().get("CurrentCarrierNetwork").and_then(Value::as_string);
    assert_eq!(carrier, Some("Verizon"));
    assert_eq!(info.extra.len(), 1, "only ServiceSubscriptions is unmodelled: {:?}", info.extra);
}

#[test]
fn certificate_list_reads_der_and_keeps_unknown_keys() {
    let report = parse("report_certificate_list.plist");
    let certificates = report.certificates().unwrap();
    assert_eq!(certificates.len(), 1);
    let certificate = &certificates[0];
    assert_eq!(certificate.common_name, "Custody Device Identity");
    assert!(certificate.is_identity);
    let x509 = openssl::x509::X509::from_der(&certificate.der).expect("Data is a DER certificate");
    let cn = x509.subject_name().entries_by_nid(openssl::nid::Nid::COMMONNAME).next().unwrap();
    assert_eq!(cn.data().to_string().unwrap(), "Custody Device Identity");
    assert_eq!(certificate.extra.get("ExampleUnknownKey").and_then(Value::as_string), Some("kept as sent"));
    // Keys outside the envelope stay in the result.
    assert_eq!(report.result.get("NotOnConsole").and_then(Value::as_boolean), Some(false));
    assert!(report.result.contains_key("CertificateList"));
}

#[test]
fn security_info_is_typed() {
    let info = parse("report_security_info.plist").security_info().unwrap();
    assert_eq!(info.hardware_encryption_caps, Some(3));
    assert_eq!(info.passcode_present, Some(true));
    assert_eq!(info.passcode_compliant, Some(true));
    assert_eq!(info.passcode_compliant_with_profiles, Some(true));
    assert_eq!(info.enrolled_via_dep, Some(false));
    assert_eq!(info.user_approved_enrollment, Some(true));
    assert_eq!(info.is_user_enrollment, Some(false));
    assert_eq!(info.extra.get("PasscodeLockGracePeriodEnforced").and_then(Value::as_signed_integer), Some(0));
    let status = info.extra.get("ManagementStatus").and_then(Value::as_dictionary).expect("rest of ManagementStatus");
    assert_eq!(status.get("IsActivationLockManageable").and_then(Value::as_boolean), Some(true));
    assert_eq!(status.len(), 1);
}

#[test]
fn installed_applications_are_typed() {
    let apps = parse("report_installed_applications.plist").installed_applications().unwrap();
    let summary: Vec<(Option<&str>, Option<&str>, Option<i64>)> =
        apps.iter().map(|a| (a.identifier.as_deref(), a.short_version.as_deref(), a.bundle_size)).collect();
    assert_eq!(
        summary,
        [
            (Some("com.microsoft.Office.Outlook"), Some("4.2421.0"), Some(104_857_600)),
            (Some("com.apple.Pages"), Some("14.0"), None),
        ]
    );
    assert_eq!(apps[0].installing, Some(false));
}

#[test]
fn profile_list_is_typed() {
    let profiles = parse("report_profile_list.plist").profiles().unwrap();
    assert_eq!(profiles.len(), 1);
    let profile = &profiles[0];
    assert_eq!(profile.identifier, "gov.example.custody.enrollment");
    assert_eq!(profile.uuid, "1F2E3D4C-5B6A-4798-8A7B-6C5D4E3F2A1B");
    assert_eq!(profile.display_name.as_deref(), Some("Custody enrollment"));
    assert_eq!(profile.organization.as_deref(), Some("Example Agency"));
    assert_eq!(profile.is_managed, Some(true));
    assert_eq!(profile.version, Some(1));
    assert!(profile.extra.contains_key("PayloadContent"));
}

#[test]
fn device_location_is_typed() {
    let location = parse("report_device_location.plist").device_location().unwrap();
    assert_eq!((location.latitude, location.longitude), (42.6526, -73.7562));
    assert_eq!(location.horizontal_accuracy, Some(8.5));
    assert_eq!(location.altitude, Some(45.2));
    assert_eq!(location.course, Some(-1.0));
    assert_eq!(location.timestamp.as_deref(), Some("2024-06-03T14:30:00Z"));
}

#[test]
fn reading_the_wrong_result_names_the_missing_key() {
    let report = parse("report_not_now.plist");
    assert_eq!(report.device_information().unwrap_err(), KeyError::Missing { key: "QueryResponses".into() });
    assert_eq!(report.certificates().unwrap_err(), KeyError::Missing { key: "CertificateList".into() });
}

fn body(pairs: &[(&str, Value)]) -> Vec<u8> {
    let dict: plist::Dictionary = pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    let mut out = Vec::new();
    Value::Dictionary(dict).to_writer_xml(&mut out).unwrap();
    out
}

#[test]
fn malformed_reports_are_refused_with_the_key_named() {
    let s = |v: &str| Value::String(v.into());
    let cases: Vec<(Vec<u8>, ReportError)> = vec![
        (body(&[("UDID", s(UDID))]), ReportError::Key(KeyError::Missing { key: "Status".into() })),
        (body(&[("Status", s("Idle"))]), ReportError::Key(KeyError::Missing { key: "UDID".into() })),
        (
            body(&[("Status", s("Acknowledged")), ("UDID", s(UDID))]),
            ReportError::Key(KeyError::Missing { key: "CommandUUID".into() }),
        ),
        (
            body(&[("Status", s("Done")), ("UDID", s(UDID)), ("CommandUUID", s("x"))]),
            ReportError::UnknownStatus("Done".into()),
        ),
        (
            body(&[
                ("Status", s("Error")),
                ("UDID", s(UDID)),
                ("CommandUUID", s("x")),
                ("ErrorChain", Value::Array(vec![Value::Dictionary(plist::Dictionary::new())])),
            ]),
            ReportError::Key(KeyError::Missing { key: "ErrorChain[0].ErrorCode".into() }),
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(Report::parse(&body).unwrap_err(), expected);
    }
    let bad_location = body(&[
        ("Status", s("Acknowledged")),
        ("UDID", s(UDID)),
        ("CommandUUID", s("x")),
        ("Latitude", s("north")),
        ("Longitude", Value::Real(1.0)),
    ]);
    assert_eq!(
        Report::parse(&bad_location).unwrap().device_location().unwrap_err(),
        KeyError::Invalid { key: "Latitude".into(), expected: "a number".into() }
    );
}
