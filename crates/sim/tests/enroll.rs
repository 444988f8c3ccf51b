//! A simulated device against the test stand-in of Custody's MDM edge (`common`): enrollment
//! profile, SCEP with the `scep` crate's CA, signed check-ins and command sessions.

mod common;

use apple_mdm::checkin::CheckinMessage as Received;
use apple_mdm::command::{Command, DeviceLock, LostMode};
use apple_mdm::profile::ConfigurationProfile;
use apple_mdm::report::Status;
use common::{AGENCY, CHALLENGE, TOKEN, TOPIC, TestServer};
use custody_sim::{
    AnswerStatus, Behaviour, CHECKIN_CONTENT_TYPE, CONNECT_CONTENT_TYPE, CheckinMessage, DeviceKind, DeviceSpec,
    Identity, NotNow, Reply, SimDevice, SimError, fetch_profile,
};

async fn enrolled(server: &TestServer, spec: DeviceSpec) -> SimDevice {
    SimDevice::enroll(&TestServer::http(), &server.base_url, TOKEN, AGENCY, spec).await.expect("enrolls")
}

#[tokio::test]
async fn a_device_enrolls_through_the_profile_and_scep_and_checks_in() {
    let server = TestServer::start().await;
    let spec = DeviceSpec::numbered(DeviceKind::IPhone, 42);
    let device = enrolled(&server, spec.clone()).await;

    // The identity was issued by the CA, for the device's own key, with the profile's subject.
    let ca = server.ca_certificate();
    apple_mdm::signature::verify_chain(device.identity().certificate(), &ca).expect("chains to the CA");
    assert!(server.ca.verify_issued(device.identity().certificate_der(), common_now()).is_ok());
    assert!(device.identity().certificate().public_key().unwrap().public_eq(device.identity().key()));
    assert_eq!(device.ca_certificate().unwrap().to_der().unwrap(), ca.to_der().unwrap());
    assert_eq!(server.seen.lock().unwrap().challenges, vec![Some(CHALLENGE.to_owned())]);
    let rsa = device.identity().key().rsa().unwrap();
    assert_eq!(rsa.size() * 8, 2048, "a fresh RSA 2048 key");

    // Authenticate, then TokenUpdate, both verified and decoded by the server.
    let seen = server.seen.lock().unwrap();
    assert!(seen.refused.is_empty(), "{:?}", seen.refused);
    assert_eq!(seen.checkins.len(), 2);
    match &seen.checkins[0].message {
        Received::Authenticate(a) => {
            assert_eq!(a.topic.as_str(), TOPIC);
            assert_eq!(a.serial_number.as_deref(), Some(spec.serial_number.as_str()));
            assert_eq!(a.imei, spec.imei);
            assert_eq!(a.product_name.as_deref(), Some("iPhone16,2"));
            assert_eq!(a.os_version.as_deref(), Some("18.5"));
        }
        other => panic!("expected Authenticate, got {other:?}"),
    }
    assert_eq!(seen.checkins[0].enrollment.device_key(), spec.udid);
    match &seen.checkins[1].message {
        Received::TokenUpdate(t) => {
            assert_eq!(t.token.as_bytes(), device.push_token());
            assert_eq!(t.token.to_hex(), device.push_token_hex());
            assert_eq!(t.token.as_bytes().len(), 32);
            assert_eq!(t.push_magic.as_str(), device.push_magic());
            assert!(uuid::Uuid::parse_str(device.push_magic()).is_ok());
            assert_eq!(t.unlock_token.as_deref(), Some(device.unlock_token()));
            assert!(!t.awaiting_configuration);
        }
        other => panic!("expected TokenUpdate, got {other:?}"),
    }
    // The enrollment profile is installed, unmanaged; the identity and the root are listed.
    let state = device.state();
    assert_eq!(state.profiles.len(), 1);
    assert_eq!(state.profiles[0].identifier, "gov.example.custody.enrollment");
    assert!(!state.profiles[0].managed);
    assert_eq!(state.certificates.len(), 2);
}

fn common_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[tokio::test]
async fn a_signed_profile_is_opened_and_its_signer_kept() {
    let server = TestServer::start().await;
    let http = TestServer::http();
    let profile = fetch_profile(&http, &server.base_url, TOKEN, AGENCY, true).await.unwrap();
    assert_eq!(profile.signer.as_ref().and_then(|s| s.common_name()).as_deref(), Some("Custody Profile Signing"));
    assert_eq!(profile.mdm.topic, TOPIC);
    assert!(profile.mdm.sign_message);
    assert_eq!(profile.scep.challenge.as_deref(), Some(CHALLENGE));
    let mut device =
        SimDevice::enroll_with_profile(&http, &profile, DeviceSpec::random(DeviceKind::IPad)).await.unwrap();
    assert_eq!(server.seen.lock().unwrap().checkins.len(), 2);
    assert!(device.run_until_idle().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_wrong_token_or_agency_is_an_http_status_error() {
    let server = TestServer::start().await;
    let http = TestServer::http();
    match fetch_profile(&http, &server.base_url, "wrong", AGENCY, false).await {
        Err(SimError::Status { status: 401, .. }) => {}
        other => panic!("expected a 401, got {other:?}"),
    }
    match SimDevice::enroll(&http, &server.base_url, TOKEN, "NOPE", DeviceSpec::random(DeviceKind::IPhone)).await {
        Err(SimError::Status { status: 404, .. }) => {}
        other => panic!("expected a 404, got {other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_challenge_is_refused_by_the_ca() {
    let server = TestServer::start().await;
    let http = TestServer::http();
    let mut profile = fetch_profile(&http, &server.base_url, TOKEN, AGENCY, false).await.unwrap();
    profile.scep.challenge = Some("not-the-challenge".into());
    match SimDevice::enroll_with_profile(&http, &profile, DeviceSpec::random(DeviceKind::IPhone)).await {
        Err(SimError::Scep(custody_sim::scep_client::ScepClientError::Refused { fail_info })) => {
            assert_eq!(fail_info.as_deref(), Some("2"), "badRequest");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(server.seen.lock().unwrap().checkins.is_empty());
}

fn statuses(handled: &[custody_sim::HandledCommand]) -> Vec<(&str, AnswerStatus)> {
    handled.iter().map(|h| (h.request_type.as_str(), h.status)).collect()
}

#[tokio::test]
async fn queued_commands_are_answered_until_the_queue_is_empty() {
    let server = TestServer::start().await;
    let mut device = enrolled(&server, DeviceSpec::numbered(DeviceKind::IPhone, 1)).await;
    let udid = device.udid().to_owned();
    assert!(device.run_until_idle().await.unwrap().is_empty(), "nothing queued");

    let mut profile = ConfigurationProfile::new("gov.example.wifi", "Wi-Fi");
    profile.payloads.push(apple_mdm::profile::Payload::new(
        "com.apple.wifi.managed",
        "gov.example.wifi.payload",
        apple_mdm::plist::Dictionary::new(),
    ));
    let info =
        server.enqueue(&udid, &Command::DeviceInformation { queries: vec!["SerialNumber".into(), "IMEI".into()] });
    let install = server.enqueue(&udid, &Command::InstallProfile { payload: profile.to_xml() });
    let list = server.enqueue(&udid, &Command::ProfileList { managed_only: Some(true) });
    let certs = server.enqueue(&udid, &Command::CertificateList { managed_only: None });
    let location = server.enqueue(&udid, &Command::DeviceLocation);
    let lost = server.enqueue(
        &udid,
        &Command::EnableLostMode(LostMode { message: Some("Return to DMV".into()), ..LostMode::default() }),
    );
    let location_lost = server.enqueue(&udid, &Command::DeviceLocation);

    let handled = device.run_until_idle().await.unwrap();
    assert_eq!(
        statuses(&handled),
        vec![
            ("DeviceInformation", AnswerStatus::Acknowledged),
            ("InstallProfile", AnswerStatus::Acknowledged),
            ("ProfileList", AnswerStatus::Acknowledged),
            ("CertificateList", AnswerStatus::Acknowledged),
            ("DeviceLocation", AnswerStatus::Error),
            ("EnableLostMode", AnswerStatus::Acknowledged),
            ("DeviceLocation", AnswerStatus::Acknowledged),
        ]
    );
    assert_eq!(handled[0].command_uuid, info);
    assert!(server.seen.lock().unwrap().refused.is_empty());

    let serial = server.report_for(&info).device_information().unwrap().serial_number;
    assert_eq!(serial.as_deref(), Some(device.serial_number()));
    assert!(matches!(server.report_for(&install).status, Status::Acknowledged { .. }));
    let profiles = server.report_for(&list).profiles().unwrap();
    assert_eq!(profiles.iter().map(|p| p.identifier.as_str()).collect::<Vec<_>>(), vec!["gov.example.wifi"]);
    let identity = server.report_for(&certs).certificates().unwrap();
    assert!(identity.iter().any(|c| c.is_identity && c.der == device.identity().certificate_der()));
    assert_eq!(server.report_for(&location).status.error_chain().len(), 1);
    assert!(matches!(server.report_for(&lost).status, Status::Acknowledged { .. }));
    assert!(server.report_for(&location_lost).device_location().unwrap().latitude > 42.0);
    assert!(device.state().lost_mode.is_some());
}

#[tokio::test]
async fn not_now_and_error_behaviours_exercise_the_queue() {
    let server = TestServer::start().await;
    let behaviour = Behaviour::default()
        .not_now("DeviceLock", NotNow::Once)
        .not_now("RestartDevice", NotNow::Always)
        .error("SecurityInfo");
    let mut device = enrolled(&server, DeviceSpec::numbered(DeviceKind::IPad, 2).with_behaviour(behaviour)).await;
    let udid = device.udid().to_owned();
    server.enqueue(&udid, &Command::DeviceLock(DeviceLock::default()));
    server.enqueue(&udid, &Command::RestartDevice { notify_user: None });
    server.enqueue(&udid, &Command::SecurityInfo);

    let first = device.run_until_idle().await.unwrap();
    assert_eq!(
        statuses(&first),
        vec![
            ("DeviceLock", AnswerStatus::NotNow),
            ("RestartDevice", AnswerStatus::NotNow),
            ("SecurityInfo", AnswerStatus::Error),
        ]
    );
    assert!(!device.state().locked);
    // The deferred commands come again in the next session: the lock runs now, the restart is
    // still refused.
    let second = device.run_until_idle().await.unwrap();
    assert_eq!(
        statuses(&second),
        vec![("DeviceLock", AnswerStatus::Acknowledged), ("RestartDevice", AnswerStatus::NotNow)]
    );
    assert!(device.state().locked);
    assert_eq!(second[0].command_uuid, first[0].command_uuid);
}

#[tokio::test]
async fn an_erased_device_stops_answering() {
    let server = TestServer::start().await;
    let mut device = enrolled(&server, DeviceSpec::random(DeviceKind::IPhone)).await;
    let udid = device.udid().to_owned();
    server.enqueue(&udid, &Command::EraseDevice(Default::default()));
    server.enqueue(&udid, &Command::SecurityInfo);
    let handled = device.run_until_idle().await.unwrap();
    assert_eq!(statuses(&handled), vec![("EraseDevice", AnswerStatus::Acknowledged)]);
    assert!(device.is_wiped());
    assert!(matches!(device.run_until_idle().await, Err(SimError::Wiped)));
    assert!(matches!(device.checkin(CheckinMessage::TokenUpdate).await, Err(SimError::Wiped)));
}

#[tokio::test]
async fn poll_and_answer_step_through_a_session() {
    let server = TestServer::start().await;
    let mut device = enrolled(&server, DeviceSpec::random(DeviceKind::IPhone)).await;
    let udid = device.udid().to_owned();
    assert_eq!(device.poll().await.unwrap(), Reply::Empty);
    let uuid = server.enqueue(&udid, &Command::SecurityInfo);
    let Reply::Command(body) = device.poll().await.unwrap() else { panic!("a command") };
    let (handled, next) = device.answer(&body).await.unwrap();
    assert_eq!((handled.command_uuid.as_str(), handled.status), (uuid.as_str(), AnswerStatus::Acknowledged));
    assert_eq!(next, Reply::Empty);
    assert_eq!(server.report_for(&uuid).security_info().unwrap().passcode_present, Some(true));
}

#[tokio::test]
async fn check_out_is_sent_and_ends_the_enrollment() {
    let server = TestServer::start().await;
    let mut device = enrolled(&server, DeviceSpec::random(DeviceKind::IPhone)).await;
    device.check_out().await.unwrap();
    assert!(matches!(server.seen.lock().unwrap().checkins.last().unwrap().message, Received::CheckOut { .. }));
    assert!(matches!(device.run_until_idle().await, Err(SimError::CheckedOut)));
}

#[tokio::test]
async fn send_raw_delivers_forged_messages_for_security_tests() {
    let server = TestServer::start().await;
    let device = enrolled(&server, DeviceSpec::random(DeviceKind::IPhone)).await;
    let url = &device.endpoints().server_url;

    // Correctly signed: accepted.
    let body = device.idle_body();
    let ok =
        device.send_raw(url, CONNECT_CONTENT_TYPE, body.clone(), Some(&device.sign(&body).unwrap())).await.unwrap();
    assert_eq!(ok.status, 200);
    // Unsigned, signed over another body, or signed by a stranger's certificate: refused.
    let unsigned = device.send_raw(url, CONNECT_CONTENT_TYPE, body.clone(), None).await.unwrap();
    let other = device.sign(b"another body").unwrap();
    let tampered = device.send_raw(url, CONNECT_CONTENT_TYPE, body.clone(), Some(&other)).await.unwrap();
    let stranger = Identity::self_signed(device.udid()).unwrap().sign(&body).unwrap();
    let forged = device.send_raw(url, CONNECT_CONTENT_TYPE, body.clone(), Some(&stranger)).await.unwrap();
    assert_eq!((unsigned.status, tampered.status, forged.status), (403, 403, 403));

    // Another enrolled device's certificate cannot speak for this one.
    let other_device = enrolled(&server, DeviceSpec::random(DeviceKind::IPad)).await;
    let checkin = device.checkin_body(CheckinMessage::TokenUpdate);
    let impostor = other_device.sign(&checkin).unwrap();
    let refused = device
        .send_raw(&device.endpoints().check_in_url, CHECKIN_CONTENT_TYPE, checkin, Some(&impostor))
        .await
        .unwrap();
    assert_eq!(refused.status, 403);
    assert_eq!(server.seen.lock().unwrap().refused.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_run_enrolls_through_scep_and_measures_connects_and_commands() {
    let server = TestServer::start().await;
    for share_key in [false, true] {
        let seed = u64::from(share_key) + 100;
        // The devices of a seeded run are known in advance: queue a command for the first one.
        let first = DeviceSpec::derive(DeviceKind::IPhone, seed, 0);
        server.enqueue(&first.udid, &Command::SecurityInfo);
        let target = custody_sim::LoadTarget::Server {
            base_url: server.base_url.clone(),
            token: TOKEN.into(),
            agency: AGENCY.into(),
            signed_profile: share_key,
        };
        let config =
            custody_sim::LoadConfig { seed: Some(seed), share_key, ..custody_sim::LoadConfig::new(target, 3, 2, 2) };
        let report = custody_sim::run_load(&config).await.unwrap();
        assert_eq!((report.enroll.enrolled, report.enroll.failed), (3, 0), "{:?}", report.errors);
        assert_eq!((report.sessions, report.session_failures), (6, 0), "{:?}", report.errors);
        assert_eq!(report.idle.count, 6);
        assert!(report.idle.rate_per_second > 0.0);
        // The command queued before enrollment is answered right after it, with what a server
        // queues at enrollment (its first inventory), before the timed phase.
        assert_eq!(report.commands.first_inventory, 1);
        assert_eq!(report.commands.by_status.get("Acknowledged"), None);
        assert_eq!(report.commands.results.count, 0);
        assert_eq!(report.signatures, 6);
    }
    let seen = server.seen.lock().unwrap();
    assert!(seen.refused.is_empty(), "{:?}", seen.refused);
    assert_eq!(seen.checkins.len(), 12);
    assert_eq!(seen.challenges.len(), 6);
}
