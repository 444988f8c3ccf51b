//! What a simulated device answers to each command, read back as the server reads reports:
//! with `apple_mdm::report::Report::parse` and its typed readings.

use apple_mdm::command::{
    AppSource, Command, CommandUuid, DeviceLock, EraseDevice, INVENTORY_QUERIES, InstallAction, InstallApplication,
    LostMode, OsUpdate, Setting,
};
use apple_mdm::plist::Dictionary;
use apple_mdm::profile::{ConfigurationProfile, Payload};
use apple_mdm::report::{Report, Status};
use custody_sim::spec::luhn_valid;
use custody_sim::state::InstalledCertificate;
use custody_sim::{AnswerStatus, Behaviour, DeviceKind, DeviceSpec, DeviceState, NotNow};

fn device(kind: DeviceKind) -> DeviceState {
    let mut state = DeviceState::new(DeviceSpec::numbered(kind, 3), b"unlock-token".to_vec());
    state.certificates.push(InstalledCertificate {
        common_name: "Custody device".into(),
        is_identity: true,
        der: b"identity certificate DER".to_vec(),
    });
    state
}

/// Sends `command` to `state` and reads the report back; checks the report names the device
/// and the command, and that the answer says what the report says.
fn check(state: &mut DeviceState, command: &Command) -> Report {
    let uuid = CommandUuid::random();
    check_body(state, &command.to_xml(&uuid), uuid.as_str())
}

fn check_body(state: &mut DeviceState, body: &[u8], uuid: &str) -> Report {
    let answer = state.answer(body).expect("answerable");
    let report = Report::parse(&answer.to_xml()).expect("the server reads the report");
    assert_eq!(report.enrollment.device_key(), state.spec.udid);
    assert_eq!(report.status.command_uuid().map(CommandUuid::as_str), Some(uuid));
    assert_eq!(answer.handled.command_uuid, uuid);
    assert_eq!(report.status.as_str(), answer.handled.status.as_str());
    report
}

fn acknowledged(report: &Report) -> bool {
    matches!(report.status, Status::Acknowledged { .. })
}

fn wifi_profile(identifier: &str) -> Vec<u8> {
    let mut profile = ConfigurationProfile::new(identifier, "Agency Wi-Fi");
    profile.organization = Some("NYS".into());
    profile.payloads.push(Payload::new("com.apple.wifi.managed", format!("{identifier}.wifi"), Dictionary::new()));
    profile.to_xml()
}

#[test]
fn device_information_answers_every_inventory_query_of_an_iphone() {
    let mut state = device(DeviceKind::IPhone);
    let queries: Vec<String> = INVENTORY_QUERIES.iter().map(|q| q.to_string()).collect();
    let report = check(&mut state, &Command::DeviceInformation { queries });
    assert!(acknowledged(&report));
    let info = report.device_information().unwrap();
    let spec = &state.spec;
    assert_eq!(info.udid.as_deref(), Some(spec.udid.as_str()));
    assert_eq!(info.serial_number.as_deref(), Some(spec.serial_number.as_str()));
    assert_eq!(info.product_name.as_deref(), Some("iPhone16,2"));
    assert_eq!(info.model_name.as_deref(), Some("iPhone"));
    assert_eq!(info.model.as_deref(), Some("MU6A3LL/A"));
    assert_eq!(info.os_version.as_deref(), Some("18.5"));
    assert_eq!(info.build_version.as_deref(), Some("22F76"));
    assert!(luhn_valid(info.imei.as_deref().unwrap()));
    assert_eq!(info.meid.as_deref(), spec.meid.as_deref());
    assert!(luhn_valid(info.iccid.as_deref().unwrap()));
    assert!(info.phone_number.as_deref().unwrap().starts_with("+1"));
    assert!(info.wifi_mac.is_some() && info.bluetooth_mac.is_some());
    let (capacity, available) = (info.device_capacity.unwrap(), info.available_device_capacity.unwrap());
    assert!(available > 0.0 && available < capacity);
    assert!((0.0..=1.0).contains(&info.battery_level.unwrap()));
    assert_eq!(info.is_supervised, Some(true));
    assert_eq!(info.is_activation_lock_enabled, Some(true));
    assert_eq!(info.is_device_locator_service_enabled, Some(true));
    assert_eq!(info.is_mdm_lost_mode_enabled, Some(false));
    assert!(info.last_cloud_backup_date.is_some());
    assert!(info.modem_firmware_version.is_some() && info.current_carrier_network.is_some());
    assert!(info.extra.is_empty(), "only the queried keys: {:?}", info.extra);
}

#[test]
fn device_information_answers_only_what_was_asked_and_an_ipad_has_no_modem() {
    let mut state = device(DeviceKind::IPad);
    let queries = ["SerialNumber", "IMEI", "PhoneNumber", "NoSuchQuery"].map(str::to_owned).to_vec();
    let info = check(&mut state, &Command::DeviceInformation { queries }).device_information().unwrap();
    assert_eq!(info.serial_number.as_deref(), Some(state.spec.serial_number.as_str()));
    assert_eq!((info.imei, info.phone_number, info.udid), (None, None, None));
    assert!(info.extra.is_empty());
}

#[test]
fn security_info_reports_passcode_and_encryption() {
    let mut state = device(DeviceKind::IPhone);
    let info = check(&mut state, &Command::SecurityInfo).security_info().unwrap();
    assert_eq!(info.hardware_encryption_caps, Some(3));
    assert_eq!((info.passcode_present, info.passcode_compliant), (Some(true), Some(true)));
    assert_eq!(
        (info.enrolled_via_dep, info.user_approved_enrollment, info.is_user_enrollment),
        (Some(false), Some(true), Some(false))
    );

    // ClearPasscode with the device's unlock token removes the passcode; another token fails.
    let wrong = check(&mut state, &Command::ClearPasscode { unlock_token: b"wrong".to_vec() });
    assert!(matches!(wrong.status, Status::Error { .. }));
    assert!(acknowledged(&check(&mut state, &Command::ClearPasscode { unlock_token: b"unlock-token".to_vec() })));
    let info = check(&mut state, &Command::SecurityInfo).security_info().unwrap();
    assert_eq!(info.passcode_present, Some(false));
}

#[test]
fn installed_and_removed_profiles_show_in_profile_list() {
    let mut state = device(DeviceKind::IPhone);
    assert!(check(&mut state, &Command::ProfileList { managed_only: None }).profiles().unwrap().is_empty());

    assert!(acknowledged(&check(&mut state, &Command::InstallProfile { payload: wifi_profile("gov.ny.wifi") })));
    assert!(acknowledged(&check(&mut state, &Command::InstallProfile { payload: wifi_profile("gov.ny.vpn") })));
    // The same identifier again replaces the installed one.
    assert!(acknowledged(&check(&mut state, &Command::InstallProfile { payload: wifi_profile("gov.ny.wifi") })));
    let profiles = check(&mut state, &Command::ProfileList { managed_only: Some(true) }).profiles().unwrap();
    let ids: Vec<&str> = profiles.iter().map(|p| p.identifier.as_str()).collect();
    assert_eq!(ids, vec!["gov.ny.vpn", "gov.ny.wifi"]);
    assert_eq!(profiles[1].display_name.as_deref(), Some("Agency Wi-Fi"));
    assert_eq!(profiles[1].organization.as_deref(), Some("NYS"));
    assert_eq!(profiles[1].is_managed, Some(true));

    assert!(acknowledged(&check(&mut state, &Command::RemoveProfile { identifier: "gov.ny.vpn".into() })));
    let missing = check(&mut state, &Command::RemoveProfile { identifier: "gov.ny.vpn".into() });
    assert_eq!(missing.status.error_chain()[0].domain, "MCProfileErrorDomain");
    let profiles = check(&mut state, &Command::ProfileList { managed_only: None }).profiles().unwrap();
    assert_eq!(profiles.iter().map(|p| p.identifier.as_str()).collect::<Vec<_>>(), vec!["gov.ny.wifi"]);

    let broken = check(&mut state, &Command::InstallProfile { payload: b"not a profile".to_vec() });
    assert!(matches!(broken.status, Status::Error { .. }));
}

#[test]
fn a_signed_profile_installs_too() {
    let mut state = device(DeviceKind::IPad);
    let signer = custody_sim::Identity::self_signed("Profile signer").unwrap();
    let signed =
        apple_mdm::profile::sign_profile(&wifi_profile("gov.ny.signed"), signer.certificate(), signer.key(), &[])
            .unwrap();
    assert!(acknowledged(&check(&mut state, &Command::InstallProfile { payload: signed })));
    assert_eq!(state.profiles[0].identifier, "gov.ny.signed");
}

#[test]
fn installed_applications_and_certificates_are_listed() {
    let mut state = device(DeviceKind::IPhone);
    let apps = check(&mut state, &Command::InstalledApplicationList { identifiers: None, managed_apps_only: None })
        .installed_applications()
        .unwrap();
    assert!(apps.len() >= 3);
    assert!(apps.iter().all(|a| a.identifier.is_some() && a.name.is_some() && a.bundle_size.is_some()));

    let install = InstallApplication {
        source: AppSource::Identifier("gov.ny.its.fieldapp".into()),
        management_flags: Some(1),
        purchase_method: None,
        configuration: None,
        attributes: None,
        take_management: None,
        install_as_managed: None,
    };
    let installed = check(&mut state, &Command::InstallApplication(install));
    assert!(acknowledged(&installed));
    assert_eq!(installed.result.get("Identifier").and_then(|v| v.as_string()), Some("gov.ny.its.fieldapp"));
    let managed =
        check(&mut state, &Command::InstalledApplicationList { identifiers: None, managed_apps_only: Some(true) })
            .installed_applications()
            .unwrap();
    assert_eq!(
        managed.iter().map(|a| a.identifier.as_deref().unwrap()).collect::<Vec<_>>(),
        vec!["gov.ny.its.fieldapp"]
    );
    let picked = check(
        &mut state,
        &Command::InstalledApplicationList {
            identifiers: Some(vec!["com.apple.Pages".into()]),
            managed_apps_only: None,
        },
    )
    .installed_applications()
    .unwrap();
    assert_eq!(picked.len(), 1);
    assert!(acknowledged(&check(&mut state, &Command::RemoveApplication { identifier: "gov.ny.its.fieldapp".into() })));
    let unmanaged = check(&mut state, &Command::RemoveApplication { identifier: "com.apple.Pages".into() });
    assert!(matches!(unmanaged.status, Status::Error { .. }));

    let certificates = check(&mut state, &Command::CertificateList { managed_only: None }).certificates().unwrap();
    assert_eq!(certificates.len(), 1);
    assert!(certificates[0].is_identity);
    assert_eq!(certificates[0].der, b"identity certificate DER");
}

#[test]
fn lock_erase_restart_and_settings_change_the_state() {
    let mut state = device(DeviceKind::IPhone);
    assert!(acknowledged(&check(
        &mut state,
        &Command::DeviceLock(DeviceLock { message: Some("Call IT".into()), ..Default::default() })
    )));
    assert!(state.locked);
    assert!(acknowledged(&check(&mut state, &Command::RestartDevice { notify_user: None })));
    assert!(acknowledged(&check(&mut state, &Command::ShutDownDevice)));
    assert_eq!((state.restarts, state.shutdowns), (1, 1));
    let rename = Command::Settings {
        settings: vec![Setting::DeviceName("Loaner 12".into()), Setting::TimeZone("America/New_York".into())],
    };
    assert!(acknowledged(&check(&mut state, &rename)));
    let info = check(&mut state, &Command::DeviceInformation { queries: vec!["DeviceName".into()] })
        .device_information()
        .unwrap();
    assert_eq!(info.device_name.as_deref(), Some("Loaner 12"));
    let update = Command::ScheduleOSUpdate {
        updates: vec![OsUpdate {
            product_key: Some("iOSUpdate22G86".into()),
            product_version: None,
            install_action: InstallAction::InstallAsap,
            max_user_deferrals: None,
            priority: None,
        }],
    };
    let scheduled = check(&mut state, &update);
    assert!(acknowledged(&scheduled));
    assert!(scheduled.result.contains_key("UpdateResults"));
    assert!(acknowledged(&check(&mut state, &Command::EraseDevice(EraseDevice::default()))));
    assert!(state.wiped);
}

#[test]
fn lost_mode_is_kept_and_location_needs_it() {
    let mut state = device(DeviceKind::IPhone);
    let not_lost = check(&mut state, &Command::DeviceLocation);
    assert!(matches!(not_lost.status, Status::Error { .. }));
    assert!(!not_lost.status.error_chain().is_empty());
    assert!(matches!(check(&mut state, &Command::PlayLostModeSound).status, Status::Error { .. }));

    let lost =
        LostMode { message: Some("Please return".into()), phone_number: Some("+15185550100".into()), footnote: None };
    assert!(acknowledged(&check(&mut state, &Command::EnableLostMode(lost))));
    let location = check(&mut state, &Command::DeviceLocation).device_location().unwrap();
    assert!((42.0..43.0).contains(&location.latitude) && (-74.0..-73.0).contains(&location.longitude));
    assert!(location.timestamp.is_some());
    assert!(acknowledged(&check(&mut state, &Command::PlayLostModeSound)));
    let info = check(&mut state, &Command::DeviceInformation { queries: vec!["IsMDMLostModeEnabled".into()] });
    assert_eq!(info.device_information().unwrap().is_mdm_lost_mode_enabled, Some(true));

    assert!(acknowledged(&check(&mut state, &Command::DisableLostMode)));
    assert!(state.lost_mode.is_none());
    assert!(matches!(check(&mut state, &Command::DeviceLocation).status, Status::Error { .. }));

    // Lost Mode needs supervision.
    let mut unsupervised = device(DeviceKind::IPad);
    unsupervised.spec.supervised = false;
    let refused = check(
        &mut unsupervised,
        &Command::EnableLostMode(LostMode { message: Some("x".into()), ..Default::default() }),
    );
    assert!(matches!(refused.status, Status::Error { .. }));
}

#[test]
fn unknown_request_types_are_errors_and_malformed_commands_format_errors() {
    let mut state = device(DeviceKind::IPhone);
    let unknown = br#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>CommandUUID</key><string>0001</string>
<key>Command</key><dict><key>RequestType</key><string>ActivationLockBypassCode</string></dict>
</dict></plist>"#;
    let report = check_body(&mut state, unknown, "0001");
    let Status::Error { error_chain, .. } = &report.status else { panic!("{:?}", report.status) };
    assert_eq!(error_chain[0].domain, "MCMDMErrorDomain");
    assert!(error_chain[0].localized_description.as_deref().unwrap().contains("ActivationLockBypassCode"));

    let malformed = br#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>CommandUUID</key><string>0002</string>
<key>Command</key><dict><key>RequestType</key><string>DeviceInformation</string></dict>
</dict></plist>"#;
    let report = check_body(&mut state, malformed, "0002");
    assert!(matches!(report.status, Status::CommandFormatError { .. }));
    assert!(!report.status.error_chain().is_empty());

    assert!(state.answer(b"<plist><dict></dict></plist>").is_err(), "no CommandUUID: nothing to answer");
}

#[test]
fn behaviour_answers_not_now_once_or_always_and_errors() {
    let behaviour = Behaviour::default()
        .not_now("SecurityInfo", NotNow::Once)
        .not_now("DeviceLock", NotNow::Always)
        .error("ProfileList");
    let mut state = device(DeviceKind::IPhone);
    state.spec.behaviour = behaviour;

    let uuid = CommandUuid::random();
    let body = Command::SecurityInfo.to_xml(&uuid);
    assert!(matches!(check_body(&mut state, &body, uuid.as_str()).status, Status::NotNow { .. }));
    // The same command again runs; a new SecurityInfo command is deferred once too.
    assert!(acknowledged(&check_body(&mut state, &body, uuid.as_str())));
    assert!(matches!(check(&mut state, &Command::SecurityInfo).status, Status::NotNow { .. }));

    let lock = Command::DeviceLock(DeviceLock::default());
    for _ in 0..3 {
        assert!(matches!(check(&mut state, &lock).status, Status::NotNow { .. }));
    }
    assert!(!state.locked);
    let refused = check(&mut state, &Command::ProfileList { managed_only: None });
    assert!(matches!(refused.status, Status::Error { .. }));
    assert_eq!(refused.status.error_chain().len(), 1);
    let answer = state.answer(&Command::ProfileList { managed_only: None }.to_xml(&CommandUuid::random())).unwrap();
    assert_eq!(answer.handled.status, AnswerStatus::Error);
    assert_eq!(answer.handled.request_type, "ProfileList");
}
