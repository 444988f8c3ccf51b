//! Commands: the XML plist the server sends, reading it back, and building commands from API
//! parameters with errors that name the bad parameter.

use apple_mdm::command::{
    AppSource, Command, CommandError, CommandUuid, DeviceLock, EraseDevice, InstallAction, InstallApplication,
    LostMode, ObliterationBehavior, OsUpdate, Pin, ReturnToService, SUPPORTED_REQUEST_TYPES, Setting, UpdatePriority,
};
use plist::{Dictionary, Value};
use serde_json::json;

/// One command of every supported request type, with the parameter keys it must send.
fn every_command() -> Vec<(Command, &'static [&'static str])> {
    let mut config = Dictionary::new();
    config.insert("ServerURL".into(), Value::String("https://mail.example.gov".into()));
    vec![
        (Command::DeviceInformation { queries: vec!["SerialNumber".into(), "IMEI".into()] }, &["Queries"]),
        (Command::SecurityInfo, &[]),
        (Command::ProfileList { managed_only: Some(true) }, &["ManagedOnly"]),
        (
            Command::InstalledApplicationList {
                identifiers: Some(vec!["com.apple.Pages".into()]),
                managed_apps_only: Some(false),
            },
            &["Identifiers", "ManagedAppsOnly"],
        ),
        (Command::CertificateList { managed_only: None }, &[]),
        (Command::InstallProfile { payload: b"<plist/>".to_vec() }, &["Payload"]),
        (Command::RemoveProfile { identifier: "gov.example.wifi".into() }, &["Identifier"]),
        (
            Command::InstallApplication(InstallApplication {
                source: AppSource::ITunesStoreId(951_937_596),
                management_flags: Some(1),
                purchase_method: Some(1),
                configuration: Some(config),
                attributes: None,
                take_management: Some(true),
                install_as_managed: None,
            }),
            &["ChangeManagementState", "Configuration", "ManagementFlags", "Options", "iTunesStoreID"],
        ),
        (Command::RemoveApplication { identifier: "com.example.app".into() }, &["Identifier"]),
        (
            Command::DeviceLock(DeviceLock {
                pin: Pin::parse("123456"),
                message: Some("Return to IT".into()),
                phone_number: Some("+1 518 555 0100".into()),
            }),
            &["Message", "PIN", "PhoneNumber"],
        ),
        (
            Command::EraseDevice(EraseDevice {
                pin: None,
                preserve_data_plan: Some(true),
                disallow_proximity_setup: Some(true),
                obliteration_behavior: Some(ObliterationBehavior::Default),
                return_to_service: Some(ReturnToService {
                    enabled: true,
                    wifi_profile_data: Some(b"wifi".to_vec()),
                    mdm_profile_data: None,
                }),
            }),
            &["DisallowProximitySetup", "ObliterationBehavior", "PreserveDataPlan", "ReturnToService"],
        ),
        (Command::ClearPasscode { unlock_token: vec![1, 2, 3, 4] }, &["UnlockToken"]),
        (
            Command::EnableLostMode(LostMode {
                message: Some("This device belongs to the State".into()),
                phone_number: None,
                footnote: Some("Reward offered".into()),
            }),
            &["Footnote", "Message"],
        ),
        (Command::DisableLostMode, &[]),
        (Command::DeviceLocation, &[]),
        (Command::PlayLostModeSound, &[]),
        (Command::RestartDevice { notify_user: Some(true) }, &["NotifyUser"]),
        (Command::ShutDownDevice, &[]),
        (
            Command::Settings {
                settings: vec![Setting::DeviceName("DOH-0042".into()), Setting::DataRoaming(false), {
                    let mut other = Dictionary::new();
                    other.insert("Item".into(), Value::String("SoftwareUpdateSettings".into()));
                    other.insert("RecommendationCadence".into(), Value::Integer(1.into()));
                    Setting::Other(other)
                }],
            },
            &["Settings"],
        ),
        (
            Command::ScheduleOSUpdate {
                updates: vec![OsUpdate {
                    product_key: None,
                    product_version: Some("17.5.1".into()),
                    install_action: InstallAction::InstallAsap,
                    max_user_deferrals: None,
                    priority: Some(UpdatePriority::High),
                }],
            },
            &["Updates"],
        ),
    ]
}

#[test]
fn every_supported_request_type_is_covered() {
    let covered: Vec<&str> = every_command().iter().map(|(c, _)| c.request_type()).collect();
    assert_eq!(covered, SUPPORTED_REQUEST_TYPES);
}

#[test]
fn every_command_writes_apples_envelope_and_reads_back() {
    for (command, params) in every_command() {
        let uuid = CommandUuid::random();
        let xml = command.to_xml(&uuid);
        let text = String::from_utf8(xml.clone()).unwrap();
        assert!(text.starts_with("<?xml"), "{text}");
        let envelope = Value::from_reader_xml(xml.as_slice()).unwrap().into_dictionary().unwrap();
        let mut top: Vec<&str> = envelope.keys().map(String::as_str).collect();
        top.sort();
        assert_eq!(top, ["Command", "CommandUUID"]);
        assert_eq!(envelope.get("CommandUUID").and_then(Value::as_string), Some(uuid.as_str()));
        let inner = envelope.get("Command").and_then(Value::as_dictionary).unwrap();
        assert_eq!(inner.get("RequestType").and_then(Value::as_string), Some(command.request_type()));
        let mut keys: Vec<&str> = inner.keys().map(String::as_str).filter(|k| *k != "RequestType").collect();
        keys.sort();
        assert_eq!(keys, params, "{}", command.request_type());

        let (read_uuid, read) = Command::from_xml(&xml).unwrap();
        assert_eq!(read_uuid, uuid);
        assert_eq!(read, command);
    }
}

#[test]
fn wire_values_are_apples() {
    // The XML as sent, whitespace aside.
    let compact = |command: &Command| -> String {
        let xml = String::from_utf8(command.to_xml(&CommandUuid::new("abc").unwrap())).unwrap();
        xml.split_whitespace().collect()
    };
    let lock = Command::DeviceLock(DeviceLock { pin: Pin::parse("123456"), ..DeviceLock::default() });
    assert!(compact(&lock).contains("<key>PIN</key><string>123456</string>"), "{}", compact(&lock));
    let clear = Command::ClearPasscode { unlock_token: b"unlock".to_vec() };
    assert!(compact(&clear).contains("<key>UnlockToken</key><data>dW5sb2Nr</data>"), "{}", compact(&clear));
    assert!(compact(&clear).contains("<key>CommandUUID</key><string>abc</string>"), "{}", compact(&clear));
    let update = Command::ScheduleOSUpdate {
        updates: vec![OsUpdate {
            product_key: Some("iOSUpdate21F90".into()),
            product_version: None,
            install_action: InstallAction::InstallAsap,
            max_user_deferrals: None,
            priority: None,
        }],
    };
    let params = update.params();
    let item = params["Updates"].as_array().unwrap()[0].as_dictionary().unwrap();
    assert_eq!(item.get("InstallAction").and_then(Value::as_string), Some("InstallASAP"));
    assert_eq!(item.get("ProductKey").and_then(Value::as_string), Some("iOSUpdate21F90"));
}

#[test]
fn api_params_build_typed_commands() {
    let lock = Command::from_params("DeviceLock", &json!({"Message": "Call IT", "PhoneNumber": "555-0100"})).unwrap();
    assert_eq!(
        lock,
        Command::DeviceLock(DeviceLock {
            pin: None,
            message: Some("Call IT".into()),
            phone_number: Some("555-0100".into())
        })
    );
    let profile = Command::from_params("InstallProfile", &json!({"Payload": "PHBsaXN0Lz4="})).unwrap();
    assert_eq!(profile, Command::InstallProfile { payload: b"<plist/>".to_vec() });
    assert_eq!(Command::from_params("SecurityInfo", &json!(null)).unwrap(), Command::SecurityInfo);
    assert_eq!(Command::from_params("DeviceLocation", &json!({})).unwrap(), Command::DeviceLocation);
    let app = Command::from_params(
        "InstallApplication",
        &json!({"ManifestURL": "https://apps.example.gov/app.plist", "ManagementFlags": 5}),
    )
    .unwrap();
    let Command::InstallApplication(app) = app else { panic!() };
    assert_eq!(app.source, AppSource::ManifestUrl("https://apps.example.gov/app.plist".into()));
    assert_eq!(app.management_flags, Some(5));
    let updates = Command::from_params(
        "ScheduleOSUpdate",
        &json!({"Updates": [{"ProductVersion": "17.5.1", "InstallAction": "DownloadOnly"}]}),
    )
    .unwrap();
    let Command::ScheduleOSUpdate { updates } = updates else { panic!() };
    assert_eq!(updates[0].install_action, InstallAction::DownloadOnly);
    let settings = Command::from_params(
        "Settings",
        &json!({"Settings": [{"Item": "Bluetooth", "Enabled": true}, {"Item": "TimeZone", "TimeZone": "America/New_York"}]}),
    )
    .unwrap();
    assert_eq!(
        settings,
        Command::Settings { settings: vec![Setting::Bluetooth(true), Setting::TimeZone("America/New_York".into())] }
    );
}

/// The parameter a bad request is blamed on, and the error's message.
fn refused(request_type: &str, params: serde_json::Value) -> (Option<String>, String) {
    let error = Command::from_params(request_type, &params).unwrap_err();
    (error.param().map(String::from), error.to_string())
}

#[test]
fn bad_params_are_named() {
    let cases: &[(&str, serde_json::Value, &str, &str)] = &[
        ("DeviceLock", json!({"PIN": "12ab56"}), "PIN", "param PIN: must be six digits"),
        ("DeviceLock", json!({"Pin": "123456"}), "Pin", "unknown param Pin for DeviceLock"),
        ("DeviceLock", json!({"Message": 42}), "Message", "param Message: must be a string"),
        ("DeviceLock", json!({"Message": ""}), "Message", "param Message: must be a non-empty string"),
        ("EnableLostMode", json!({"Footnote": "x"}), "Message", "param Message: Message or PhoneNumber is required"),
        ("DeviceInformation", json!({}), "Queries", "missing required param Queries"),
        ("DeviceInformation", json!({"Queries": []}), "Queries", "param Queries: must not be empty"),
        ("DeviceInformation", json!({"Queries": ["UDID", 7]}), "Queries[1]", "param Queries[1]: must be a string"),
        ("InstallProfile", json!({"Payload": "%%%"}), "Payload", "param Payload: must be data (a base64 string)"),
        ("ClearPasscode", json!({}), "UnlockToken", "missing required param UnlockToken"),
        ("RemoveProfile", json!({}), "Identifier", "missing required param Identifier"),
        (
            "InstallApplication",
            json!({"iTunesStoreID": 1, "Identifier": "com.example"}),
            "iTunesStoreID",
            "param iTunesStoreID: exactly one of iTunesStoreID, ManifestURL, Identifier is required",
        ),
        (
            "InstallApplication",
            json!({"Identifier": "a", "ManagementFlags": 2}),
            "ManagementFlags",
            "param ManagementFlags: must be 1, 4 or 5",
        ),
        (
            "InstallApplication",
            json!({"ManifestURL": "http://insecure.example/app.plist"}),
            "ManifestURL",
            "param ManifestURL: must be an https:// URL",
        ),
        (
            "ScheduleOSUpdate",
            json!({"Updates": [{"InstallAction": "Now"}]}),
            "Updates[0].InstallAction",
            "param Updates[0].InstallAction: must be one of Default, DownloadOnly, InstallASAP, NotifyOnly, InstallLater, InstallForceRestart",
        ),
        (
            "ScheduleOSUpdate",
            json!({"Updates": [{}]}),
            "Updates[0].InstallAction",
            "missing required param Updates[0].InstallAction",
        ),
        (
            "EraseDevice",
            json!({"ReturnToService": {"Enabled": "yes"}}),
            "ReturnToService.Enabled",
            "param ReturnToService.Enabled: must be a boolean",
        ),
        (
            "Settings",
            json!({"Settings": [{"Item": "DataRoaming"}]}),
            "Settings[0].Enabled",
            "missing required param Settings[0].Enabled",
        ),
        (
            "Settings",
            json!({"Settings": [{"Enabled": true}]}),
            "Settings[0].Item",
            "missing required param Settings[0].Item",
        ),
        ("SecurityInfo", json!({"Extra": 1}), "Extra", "unknown param Extra for SecurityInfo"),
    ];
    for (request_type, params, param, message) in cases {
        assert_eq!(
            refused(request_type, params.clone()),
            (Some(param.to_string()), message.to_string()),
            "{request_type} {params}"
        );
    }
}

#[test]
fn unknown_request_types_list_the_supported_ones() {
    let error = Command::from_params("WipeEverything", &json!({})).unwrap_err();
    assert_eq!(error, CommandError::UnknownRequestType { request_type: "WipeEverything".into() });
    let message = error.to_string();
    assert!(
        message.starts_with("unknown request type \"WipeEverything\"; supported: DeviceInformation, "),
        "{message}"
    );
    for supported in SUPPORTED_REQUEST_TYPES {
        assert!(message.contains(supported), "{message} lacks {supported}");
    }
    assert_eq!(Command::from_params("DeviceLock", &json!([1, 2])).unwrap_err(), CommandError::ParamsNotADictionary);
}

#[test]
fn command_bodies_must_be_well_formed() {
    assert!(matches!(Command::from_xml(b"nope"), Err(CommandError::MalformedBody(_))));
    let mut envelope = Dictionary::new();
    envelope.insert("CommandUUID".into(), Value::String("x".into()));
    let mut xml = Vec::new();
    Value::Dictionary(envelope).to_writer_xml(&mut xml).unwrap();
    assert_eq!(
        Command::from_xml(&xml).unwrap_err(),
        CommandError::MalformedBody("missing required key Command".into())
    );
}

#[test]
fn command_uuids_are_fresh_uuids() {
    let (a, b) = (CommandUuid::random(), CommandUuid::random());
    assert_ne!(a, b);
    assert_eq!(a.as_str().len(), 36);
    assert_eq!(a.as_str(), a.as_str().to_uppercase());
}
