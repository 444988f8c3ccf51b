//! Apple MDM end to end: simulated iPhones and iPads enroll with the real server over loopback
//! (enrollment profile from the API, SCEP, signed check-ins), pushes reach a local APNs
//! stand-in over TLS, commands go out and their answers come back through the API. Then every
//! way a message's identity can be forged, and the command queue's promises.

mod common;

use std::time::Duration;

use common::mdm::{AGENCY, Mdm, TOPIC, inventory_device, phone_model};
use common::{TestApp, server_certificate};
use custody_domain::device::DeviceState;
use custody_domain::role::Role;
use custody_sim::{
    AnswerStatus, Behaviour, CONNECT_CONTENT_TYPE, DeviceKind, DeviceSpec, Identity, NotNow, SimDevice, SimError,
    fetch_profile,
};
use custody_store::testing::TestDb;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn ten_devices_enroll_are_pushed_and_answer(db: TestDb) {
    let mdm = Mdm::start(db, |_| {}).await;
    let label = mdm.app.db.label;
    let specs: Vec<DeviceSpec> = (0..10)
        .map(|i| DeviceSpec::numbered(if i % 3 == 2 { DeviceKind::IPad } else { DeviceKind::IPhone }, 100 + i))
        .collect();
    let mut enrolling = tokio::task::JoinSet::new();
    for spec in specs {
        let (http, base, token) = (mdm.http.clone(), mdm.app.base.clone(), mdm.token.clone());
        enrolling.spawn(async move { SimDevice::enroll(&http, &base, &token, AGENCY, spec).await });
    }
    let mut devices: Vec<SimDevice> =
        enrolling.join_all().await.into_iter().map(|d| d.expect("the device enrolls")).collect();

    // Every device is enrolled, bound to its certificate and reachable through APNs.
    let list: Value =
        mdm.app.get(&format!("/api/v1/mdm/enrollments?agency={AGENCY}"), &mdm.token).await.json().await.unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 10, "{label}: {list}");
    for device in &devices {
        let e = items.iter().find(|e| e["udid"] == device.udid()).expect("listed");
        assert_eq!(e["status"], "enrolled");
        assert_eq!(e["pushable"], true);
        assert_eq!(e["serial_number"], device.serial_number());
        let serial = e["certificate_serial"].as_str().unwrap();
        let issued = scep::SerialNumber::of(device.identity().certificate()).unwrap().to_hex();
        assert_eq!(serial, issued, "bound to the certificate SCEP issued");
    }

    // Enrolling queued each device's first inventory and pushed it; each answers all five.
    assert!(mdm.apns.wait_for(10, Duration::from_secs(20)).await, "{label}: 10 pushes, got {}", mdm.apns.count().await);
    for device in devices.iter_mut() {
        let handled = device.run_until_idle().await.expect("a command session");
        let kinds: Vec<&str> = handled.iter().map(|h| h.request_type.as_str()).collect();
        assert_eq!(kinds, custody_app::inventory::INVENTORY_COMMANDS, "{label}");
        assert!(handled.iter().all(|h| h.status == AnswerStatus::Acknowledged));
    }
    let before = mdm.apns.count().await;

    // DeviceInformation for all ten: one push each, with the right topic, token and magic.
    let refs: Vec<&SimDevice> = devices.iter().collect();
    let queries = json!({"Queries": ["DeviceName", "OSVersion", "SerialNumber", "ModelName", "IMEI"]});
    let ids = mdm.command(&refs, "DeviceInformation", queries).await;
    assert!(
        mdm.apns.wait_for(before + 10, Duration::from_secs(20)).await,
        "{label}: 10 more pushes, got {}",
        mdm.apns.count().await - before
    );
    let pushes = mdm.apns.pushes().await;
    for device in &devices {
        let push = pushes.iter().find(|p| p.token == device.push_token_hex()).expect("the device was pushed");
        assert_eq!(push.topic, TOPIC);
        assert_eq!(push.client_topic, TOPIC, "the client certificate is the uploaded one");
        assert_eq!(push.push_type, "mdm");
        assert_eq!(push.push_magic, device.push_magic());
        assert_eq!(push.path, format!("/3/device/{}", device.push_token_hex()));
    }

    // Woken, each device fetches the command and answers it.
    for device in devices.iter_mut() {
        let handled = device.run_until_idle().await.expect("a command session");
        assert_eq!(handled.len(), 1);
        assert_eq!(handled[0].request_type, "DeviceInformation");
        assert_eq!(handled[0].status, AnswerStatus::Acknowledged);
    }

    // The answers, raw and parsed, are in the API; the enrollment learned from them.
    for (device, id) in devices.iter().zip(&ids) {
        let command = mdm.command_state(id).await;
        assert_eq!(command["status"], "acknowledged", "{command}");
        assert_eq!(command["result_status"], "Acknowledged");
        assert_eq!(command["deliveries"], 1);
        let answers = &command["result"]["QueryResponses"];
        assert_eq!(answers["SerialNumber"], device.serial_number(), "{command}");
        assert_eq!(answers["DeviceName"], device.state().spec.device_name.as_str());
        assert!(command["result_raw"].as_str().unwrap().contains("<key>QueryResponses</key>"));
        let enrollment = mdm.enrollment(device).await;
        assert_eq!(enrollment["device_name"], device.state().spec.device_name.as_str());
        assert_eq!(enrollment["os_version"], device.state().spec.os_version.as_str());
    }
    let listed: Value = mdm
        .app
        .get("/api/v1/commands?status=acknowledged&request_type=DeviceInformation&limit=5", &mdm.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 5);
    assert!(listed["next"].is_string(), "paged: {listed}");
}

#[tokio::test]
async fn ten_devices_enroll_are_pushed_and_answer_on_sqlite() {
    ten_devices_enroll_are_pushed_and_answer(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn ten_devices_enroll_are_pushed_and_answer_on_postgres() {
    let Some(url) = TestDb::postgres_url() else { return };
    ten_devices_enroll_are_pushed_and_answer(TestDb::postgres(&url).await).await;
}

fn is_refused(result: Result<custody_sim::RawResponse, SimError>) -> u16 {
    result.expect("the server answers").status
}

#[tokio::test]
async fn forged_identities_are_refused() {
    let mdm = Mdm::start(TestDb::sqlite().await, |_| {}).await;
    let mut a = mdm.enroll(DeviceSpec::numbered(DeviceKind::IPhone, 1)).await;
    let b = mdm.enroll(DeviceSpec::numbered(DeviceKind::IPhone, 2)).await;
    let connect = a.endpoints().server_url.clone();
    let checkin = a.endpoints().check_in_url.clone();
    let before = mdm.app.audit_count().await;

    // A genuine message passes: the refusals below are about identity, not the message.
    let body = a.idle_body();
    let good = a.send_raw(&connect, CONNECT_CONTENT_TYPE, body.clone(), Some(&a.sign(&body).unwrap())).await;
    assert_eq!(is_refused(good), 200);

    // Unsigned, on both endpoints.
    assert_eq!(is_refused(a.send_raw(&connect, CONNECT_CONTENT_TYPE, body.clone(), None).await), 401);
    let token_update = a.checkin_body(custody_sim::CheckinMessage::TokenUpdate);
    let unsigned = a.send_raw(&checkin, custody_sim::CHECKIN_CONTENT_TYPE, token_update.clone(), None).await;
    assert_eq!(is_refused(unsigned), 401);

    // Signed by a certificate Custody's CA did not issue (same subject, own key).
    let stranger = Identity::self_signed(a.udid()).unwrap();
    let forged = stranger.sign(&body).unwrap();
    assert_eq!(is_refused(a.send_raw(&connect, CONNECT_CONTENT_TYPE, body.clone(), Some(&forged)).await), 401);
    let forged = stranger.sign(&token_update).unwrap();
    let refused = a.send_raw(&checkin, custody_sim::CHECKIN_CONTENT_TYPE, token_update.clone(), Some(&forged)).await;
    assert_eq!(is_refused(refused), 401);

    // Device A's valid certificate speaking for device B's UDID.
    let b_body = b.idle_body();
    let a_signs_b = a.sign(&b_body).unwrap();
    assert_eq!(is_refused(a.send_raw(&connect, CONNECT_CONTENT_TYPE, b_body, Some(&a_signs_b)).await), 401);
    let b_token_update = b.checkin_body(custody_sim::CheckinMessage::TokenUpdate);
    let a_signs_b = a.sign(&b_token_update).unwrap();
    let refused = a.send_raw(&checkin, custody_sim::CHECKIN_CONTENT_TYPE, b_token_update, Some(&a_signs_b)).await;
    assert_eq!(is_refused(refused), 401);

    // A body altered after it was signed.
    let signature = a.sign(&token_update).unwrap();
    let altered = String::from_utf8(token_update.clone()).unwrap().replace(a.push_magic(), "attacker-magic");
    assert_ne!(altered.as_bytes(), token_update.as_slice());
    let refused = a.send_raw(&checkin, custody_sim::CHECKIN_CONTENT_TYPE, altered.into_bytes(), Some(&signature)).await;
    assert_eq!(is_refused(refused), 401);
    assert_eq!(mdm.enrollment(&a).await["status"], "enrolled", "nothing the forgeries said was taken");
    assert_eq!(mdm.app.audit_count().await, before, "refused messages change nothing");

    // SCEP with a wrong challenge issues nothing.
    let mut profile = fetch_profile(&mdm.http, &mdm.app.base, &mdm.token, AGENCY, false).await.unwrap();
    profile.scep.challenge = Some("not-the-agency-challenge".into());
    let refused = SimDevice::enroll_with_profile(&mdm.http, &profile, DeviceSpec::numbered(DeviceKind::IPad, 3)).await;
    assert!(matches!(refused, Err(SimError::Scep(_))), "{refused:?}");

    // A revoked certificate: its device is refused from its next message on.
    let serial = mdm.enrollment(&a).await["certificate_serial"].as_str().unwrap().to_string();
    let path = format!("/api/v1/mdm/certificates/{serial}/revoke");
    let revoked =
        mdm.app.send_json(Method::POST, &path, Some(&mdm.token), &json!({"reason": "device reported stolen"})).await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    match a.run_until_idle().await {
        Err(SimError::Status { status: 401, .. }) => {}
        other => panic!("a revoked certificate must be refused: {other:?}"),
    }
    let again = mdm.app.send_json(Method::POST, &path, Some(&mdm.token), &json!({"reason": "twice"})).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn not_now_does_not_block_the_queue_and_comes_back() {
    let db = match TestDb::postgres_url() {
        Some(url) => TestDb::postgres(&url).await,
        None => TestDb::sqlite().await,
    };
    let mdm = Mdm::start(db, |config| config.mdm.not_now_retry_seconds = 1).await;
    let spec = DeviceSpec::numbered(DeviceKind::IPhone, 7)
        .with_behaviour(Behaviour::default().not_now("DeviceInformation", NotNow::Once));
    let mut device = mdm.enroll_quiet(spec).await;
    let info = mdm.command(&[&device], "DeviceInformation", json!({"Queries": ["OSVersion"]})).await.remove(0);
    let security = mdm.command(&[&device], "SecurityInfo", json!({})).await.remove(0);

    // The device cannot run DeviceInformation now: it still gets SecurityInfo in the same session.
    let handled = device.run_until_idle().await.unwrap();
    let seen: Vec<(&str, AnswerStatus)> = handled.iter().map(|h| (h.request_type.as_str(), h.status)).collect();
    assert_eq!(seen, [("DeviceInformation", AnswerStatus::NotNow), ("SecurityInfo", AnswerStatus::Acknowledged)]);
    assert_eq!(mdm.command_state(&info).await["status"], "not_now");
    assert_eq!(mdm.command_state(&security).await["status"], "acknowledged");

    // Later, the deferred command is pushed again and delivered again.
    let pushed = mdm.apns.count_for(&device.push_token_hex()).await;
    assert!(
        {
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            loop {
                if mdm.apns.count_for(&device.push_token_hex()).await > pushed {
                    break true;
                }
                if std::time::Instant::now() > deadline {
                    break false;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        },
        "a re-push after the NotNow delay"
    );
    let handled = device.run_until_idle().await.unwrap();
    assert_eq!(handled.len(), 1);
    assert_eq!(
        (handled[0].request_type.as_str(), handled[0].status),
        ("DeviceInformation", AnswerStatus::Acknowledged)
    );
    let done = mdm.command_state(&info).await;
    assert_eq!(done["status"], "acknowledged");
    assert_eq!(done["deliveries"], 2);
    assert_eq!(done["not_now_count"], 1);
}

#[tokio::test]
async fn expired_commands_are_marked_and_never_delivered() {
    let mdm = Mdm::start(TestDb::sqlite().await, |_| {}).await;
    let mut device = mdm.enroll(DeviceSpec::numbered(DeviceKind::IPad, 8)).await;
    let old = mdm.command(&[&device], "ProfileList", json!({})).await.remove(0);
    let cancelled = mdm.command(&[&device], "CertificateList", json!({})).await.remove(0);
    let fresh = mdm.command(&[&device], "SecurityInfo", json!({})).await.remove(0);
    // The first command's seven days have passed.
    mdm.app.exec_owned(format!("UPDATE mdm_commands SET expires_at = 1 WHERE id = '{old}'")).await;
    let (expired, _) = custody_app::mdm::expire_and_reap(mdm.app.app()).await.unwrap();
    assert_eq!(expired, 1);
    assert_eq!(mdm.command_state(&old).await["status"], "expired");
    let path = format!("/api/v1/commands/{cancelled}/cancel");
    let response = mdm.app.send_json(Method::POST, &path, Some(&mdm.token), &json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);

    let handled = device.run_until_idle().await.unwrap();
    let types: Vec<&str> = handled.iter().map(|h| h.request_type.as_str()).collect();
    assert_eq!(types, ["SecurityInfo"], "neither the expired nor the cancelled command is sent");
    assert_eq!(mdm.command_state(&fresh).await["status"], "acknowledged");
    assert_eq!(mdm.command_state(&old).await["status"], "expired");
    assert_eq!(mdm.command_state(&cancelled).await["status"], "cancelled");
    let again = mdm.app.send_json(Method::POST, &path, Some(&mdm.token), &json!({})).await;
    assert_eq!(again.status(), StatusCode::CONFLICT, "an answered or cancelled command cannot be cancelled");
}

#[tokio::test]
async fn a_duplicate_report_changes_nothing() {
    let mdm = Mdm::start(TestDb::sqlite().await, |_| {}).await;
    let device = mdm.enroll(DeviceSpec::numbered(DeviceKind::IPhone, 9)).await;
    let id = mdm
        .command(&[&device], "DeviceLock", json!({"Message": "Call 555-0100", "PhoneNumber": "5550100"}))
        .await
        .remove(0);
    let connect = device.endpoints().server_url.clone();
    let idle = device.idle_body();
    let sent = device
        .send_raw(&connect, CONNECT_CONTENT_TYPE, idle.clone(), Some(&device.sign(&idle).unwrap()))
        .await
        .unwrap();
    assert_eq!(sent.status, 200);
    assert!(String::from_utf8_lossy(&sent.body).contains("DeviceLock"));

    let report = |status: &str| report_body(device.udid(), status, &id);
    let ack = report("Acknowledged");
    let first =
        device.send_raw(&connect, CONNECT_CONTENT_TYPE, ack.clone(), Some(&device.sign(&ack).unwrap())).await.unwrap();
    assert_eq!(first.status, 200);
    let answered = mdm.command_state(&id).await;
    assert_eq!(answered["status"], "acknowledged");
    let events = mdm.app.audit_count().await;

    // The same acknowledgement again, then a contradicting late report: both change nothing.
    for body in [ack.clone(), report("Error")] {
        let response = device
            .send_raw(&connect, CONNECT_CONTENT_TYPE, body.clone(), Some(&device.sign(&body).unwrap()))
            .await
            .unwrap();
        assert_eq!(response.status, 200);
        let now = mdm.command_state(&id).await;
        assert_eq!(now["status"], "acknowledged");
        assert_eq!(now["completed_at"], answered["completed_at"]);
        assert_eq!(now["result_raw"], answered["result_raw"]);
    }
    assert_eq!(mdm.app.audit_count().await, events, "no second result event");
}

/// A report of `status` for command `id`, as device `udid` would send it.
fn report_body(udid: &str, status: &str, id: &str) -> Vec<u8> {
    let mut dict = apple_mdm::plist::Dictionary::new();
    dict.insert("UDID".into(), udid.into());
    dict.insert("Status".into(), status.into());
    dict.insert("CommandUUID".into(), id.into());
    let mut xml = Vec::new();
    apple_mdm::plist::Value::Dictionary(dict).to_writer_xml(&mut xml).unwrap();
    xml
}

/// The status of `body` sent to `url`, signed by `device`.
async fn signed(device: &SimDevice, url: &str, body: Vec<u8>) -> u16 {
    let signature = device.sign(&body).unwrap();
    device.send_raw(url, CONNECT_CONTENT_TYPE, body, Some(&signature)).await.unwrap().status
}

/// The answer to a command is recorded by the statement that checks who sent it: each way that
/// check can fail must leave the command as it was.
async fn answers_from_refused_devices_record_nothing(db: TestDb) {
    let mdm = Mdm::start(db, |_| {}).await;
    let a = mdm.enroll(DeviceSpec::numbered(DeviceKind::IPhone, 21)).await;
    let b = mdm.enroll(DeviceSpec::numbered(DeviceKind::IPhone, 22)).await;
    let id = mdm.command(&[&a], "SecurityInfo", json!({})).await.remove(0);
    let connect = a.endpoints().server_url.clone();
    let idle = a.idle_body();
    let sent = a.send_raw(&connect, CONNECT_CONTENT_TYPE, idle.clone(), Some(&a.sign(&idle).unwrap())).await.unwrap();
    assert_eq!(sent.status, 200);
    assert!(String::from_utf8_lossy(&sent.body).contains(&id), "the command went out");
    // Its delivery is recorded right after the answer.
    let marked_by = std::time::Instant::now() + Duration::from_secs(10);
    while mdm.command_state(&id).await["status"] != "sent" {
        assert!(std::time::Instant::now() < marked_by, "the delivery is recorded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let events = mdm.app.audit_count().await;

    // Device B's certificate acknowledging A's command as A: refused.
    assert_eq!(signed(&b, &connect, report_body(a.udid(), "Acknowledged", &id)).await, 401);
    // Device B, as itself, acknowledging a command that is not its own: heard, but nothing recorded.
    assert_eq!(signed(&b, &connect, report_body(b.udid(), "Acknowledged", &id)).await, 200);
    assert_eq!(mdm.command_state(&id).await["status"], "sent");

    // A's certificate revoked: its own answer is refused.
    let serial = mdm.enrollment(&a).await["certificate_serial"].as_str().unwrap().to_string();
    let path = format!("/api/v1/mdm/certificates/{serial}/revoke");
    let revoked = mdm.app.send_json(Method::POST, &path, Some(&mdm.token), &json!({"reason": "stolen"})).await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let events = events + 1;
    assert_eq!(signed(&a, &connect, report_body(a.udid(), "Acknowledged", &id)).await, 401);
    let command = mdm.command_state(&id).await;
    assert_eq!(command["status"], "sent");
    assert!(command["completed_at"].is_null(), "{command}");
    assert_eq!(mdm.app.audit_count().await, events, "only the revocation was recorded");
}

#[tokio::test]
async fn answers_from_refused_devices_record_nothing_on_sqlite() {
    answers_from_refused_devices_record_nothing(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn answers_from_refused_devices_record_nothing_on_postgres() {
    let Some(url) = TestDb::postgres_url() else { return };
    answers_from_refused_devices_record_nothing(TestDb::postgres(&url).await).await;
}

#[tokio::test]
async fn commands_are_validated_and_scoped() {
    let mdm = Mdm::start(TestDb::sqlite().await, |_| {}).await;
    let device = mdm.enroll(DeviceSpec::numbered(DeviceKind::IPhone, 11)).await;
    let queued_before =
        mdm.app.get("/api/v1/commands", &mdm.token).await.json::<Value>().await.unwrap()["items"].clone();

    let unknown = mdm
        .app
        .send_json(
            Method::POST,
            "/api/v1/commands",
            Some(&mdm.token),
            &json!({"devices": [device.udid()], "request_type": "MakeCoffee"}),
        )
        .await;
    let problem = common::problem(unknown, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["errors"][0]["field"], "request_type", "{problem}");
    let bad_param = mdm
        .app
        .send_json(
            Method::POST,
            "/api/v1/commands",
            Some(&mdm.token),
            &json!({"devices": [device.udid()], "request_type": "DeviceLock", "params": {"PIN": 12}}),
        )
        .await;
    let problem = common::problem(bad_param, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(problem["errors"][0]["field"].as_str().unwrap().starts_with("params"), "{problem}");
    let nobody = mdm
        .app
        .send_json(
            Method::POST,
            "/api/v1/commands",
            Some(&mdm.token),
            &json!({"devices": [device.udid(), "NOT-A-DEVICE"], "request_type": "SecurityInfo"}),
        )
        .await;
    let problem = common::problem(nobody, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["errors"][0]["field"], "devices[1]", "{problem}");
    assert_eq!(
        mdm.app.get("/api/v1/commands", &mdm.token).await.json::<Value>().await.unwrap()["items"],
        queued_before,
        "nothing queued"
    );

    // Another agency's infosec? Infosec is central; an agency user sees no MDM at all, and a
    // foreign enrollment is as absent as a missing one.
    mdm.app.agency("BBB", "Bravo Agency").await;
    let (_, viewer) = mdm.app.user_with_token("viewer@bbb.example", Role::AgencyViewer, Some("BBB")).await;
    let response = mdm.app.get(&format!("/api/v1/mdm/enrollments/{}", device.udid()), &viewer).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = mdm.app.get("/api/v1/commands", &viewer).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_enrollment_profile_needs_the_push_certificate_and_can_be_signed() {
    let app = TestApp::spawn().await;
    app.agency(AGENCY, "Alpha Agency").await;
    let (_, token) = app.user_with_token("euc@central.example", Role::Euc, None).await;
    let path = format!("/api/v1/agencies/{AGENCY}/enrollment-profile");
    let problem = common::problem(app.get(&path, &token).await, StatusCode::CONFLICT).await;
    assert_eq!(problem["errors"][0]["field"], "push_certificate", "{problem}");
    let missing = app.get("/api/v1/mdm/push-certificate", &token).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let (_, admin) = app.user_with_token("admin@central.example", Role::Admin, None).await;
    let bad =
        app.send_json(Method::PUT, "/api/v1/mdm/push-certificate", Some(&admin), &json!({"pem": "nonsense"})).await;
    let problem = common::problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["errors"][0]["field"], "pem");
    let pem = apns::standin::fake_push_certificate_pem(TOPIC).unwrap();
    let euc_upload =
        app.send_json(Method::PUT, "/api/v1/mdm/push-certificate", Some(&token), &json!({"pem": pem})).await;
    assert_eq!(euc_upload.status(), StatusCode::FORBIDDEN, "settings are admin and infosec only");
    let ok = app.send_json(Method::PUT, "/api/v1/mdm/push-certificate", Some(&admin), &json!({"pem": pem})).await;
    assert_eq!(ok.status(), StatusCode::OK);

    let plain = app.get(&path, &token).await;
    assert_eq!(plain.status(), StatusCode::OK);
    assert_eq!(plain.headers()["content-type"], "application/x-apple-aspen-config");
    let xml = plain.bytes().await.unwrap();
    let text = String::from_utf8_lossy(&xml);
    assert!(text.contains(&format!("{}/mdm/connect", app.base)) && text.contains(TOPIC), "{text}");
    assert!(text.contains("<key>SignMessage</key>") && text.contains("com.apple.security.scep"));

    let signed = app.get(&format!("{path}?signed=true"), &token).await;
    assert_eq!(signed.status(), StatusCode::OK);
    let der = signed.bytes().await.unwrap();
    let ca: Value = app.get("/api/v1/mdm/ca", &token).await.json().await.unwrap();
    let root = openssl::x509::X509::from_pem(ca["certificate_pem"].as_str().unwrap().as_bytes()).unwrap();
    let (content, signer) = apple_mdm::profile::open_signed_profile(&der).expect("a valid CMS signature");
    assert_eq!(signer.der(), root.to_der().unwrap().as_slice(), "signed by Custody's CA");
    assert!(String::from_utf8_lossy(&content).contains(TOPIC));

    // A one-time challenge is shown once; the standing one rotates.
    let path = format!("/api/v1/agencies/{AGENCY}/enrollment-challenges");
    let created = app.send_json(Method::POST, &path, Some(&token), &json!({"hours": 2})).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let too_long = app.send_json(Method::POST, &path, Some(&token), &json!({"hours": 10_000})).await;
    assert_eq!(common::problem(too_long, StatusCode::UNPROCESSABLE_ENTITY).await["errors"][0]["field"], "hours");
    let before = String::from_utf8_lossy(
        &app.get(&format!("/api/v1/agencies/{AGENCY}/enrollment-profile"), &token).await.bytes().await.unwrap(),
    )
    .to_string();
    let rotate = format!("/api/v1/agencies/{AGENCY}/enrollment-challenge/rotate");
    assert_eq!(app.send_json(Method::POST, &rotate, Some(&token), &json!({})).await.status(), StatusCode::NO_CONTENT);
    let after = String::from_utf8_lossy(
        &app.get(&format!("/api/v1/agencies/{AGENCY}/enrollment-profile"), &token).await.bytes().await.unwrap(),
    )
    .to_string();
    let challenge = |xml: &str| {
        xml.split("<key>Challenge</key>").nth(1).and_then(|r| r.split("</string>").next()).map(str::to_string)
    };
    assert!(challenge(&before).is_some());
    assert_ne!(challenge(&before), challenge(&after), "a rotated challenge");
}

/// `PUT`s `body` to `url` with curl, presenting `identity` as the TLS client certificate when
/// given; returns the HTTP status.
async fn put_over_tls(
    dir: &std::path::Path,
    ca: &std::path::Path,
    url: String,
    body: Vec<u8>,
    identity: Option<&Identity>,
) -> u16 {
    let name = format!("{:x}", rand::random::<u64>());
    let body_path = dir.join(format!("{name}.plist"));
    std::fs::write(&body_path, body).unwrap();
    let mut command = std::process::Command::new("curl");
    command.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "--cacert"]).arg(ca);
    command.args(["-H", "Content-Type: application/x-apple-aspen-mdm"]).arg("--data-binary");
    command.arg(format!("@{}", body_path.display()));
    if let Some(identity) = identity {
        let (cert, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
        std::fs::write(&cert, identity.certificate().to_pem().unwrap()).unwrap();
        std::fs::write(&key, identity.key().private_key_to_pem_pkcs8().unwrap()).unwrap();
        command.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    command.arg(url);
    let output = tokio::task::spawn_blocking(move || command.output().expect("curl runs")).await.unwrap();
    String::from_utf8_lossy(&output.stdout).parse().unwrap_or(0)
}

#[tokio::test]
async fn with_custody_terminating_tls_the_client_certificate_identifies_the_device() {
    let mdm = Mdm::start(TestDb::sqlite().await, |_| {}).await;
    let a = mdm.enroll(DeviceSpec::numbered(DeviceKind::IPhone, 21)).await;
    let b = mdm.enroll(DeviceSpec::numbered(DeviceKind::IPhone, 22)).await;

    // A second node of the same application serving TLS itself (--tls-cert/--tls-key).
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = server_certificate();
    let (cert_path, key_path) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    std::fs::write(&cert_path, &cert).unwrap();
    std::fs::write(&key_path, &key).unwrap();
    let mut config = mdm.app.config.clone();
    config.tls_cert = Some(cert_path.clone());
    config.tls_key = Some(key_path);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls = custody::Server::start_on(&config, mdm.app.app().clone(), listener).await.unwrap();
    assert!(tls.url().starts_with("https://"));
    let connect = format!("{}/mdm/connect", tls.url());
    let checkin = format!("{}/mdm/checkin", tls.url());

    // No Mdm-Signature: the handshake's client certificate is the device's identity.
    let (here, ca) = (dir.path(), cert_path.as_path());
    assert_eq!(put_over_tls(here, ca, connect.clone(), a.idle_body(), Some(a.identity())).await, 200);
    let token_update = a.checkin_body(custody_sim::CheckinMessage::TokenUpdate);
    assert_eq!(put_over_tls(here, ca, checkin.clone(), token_update.clone(), Some(a.identity())).await, 200);
    // Refused: no certificate, one Custody did not issue, and A's for B's UDID.
    assert_eq!(put_over_tls(here, ca, connect.clone(), a.idle_body(), None).await, 401);
    let stranger = Identity::self_signed(a.udid()).unwrap();
    assert_eq!(put_over_tls(here, ca, connect.clone(), a.idle_body(), Some(&stranger)).await, 401);
    assert_eq!(put_over_tls(here, ca, connect.clone(), b.idle_body(), Some(a.identity())).await, 401);
    assert_eq!(put_over_tls(here, ca, checkin.clone(), token_update, Some(b.identity())).await, 401);
    tls.stop().await.unwrap();
}

async fn enrollments_join_their_inventory_device(db: TestDb) {
    let mdm = Mdm::start(db, |_| {}).await;
    let label = mdm.app.db.label;
    let model = phone_model(&mdm.app).await;
    let device_state = |id: String| {
        let (app, token) = (&mdm.app, mdm.token.clone());
        async move {
            let device: Value = app.get(&format!("/api/v1/devices/{id}"), &token).await.json().await.unwrap();
            device
        }
    };

    // A staged device enrolls at the Deployment Center: joined by its serial number, and
    // enrolled from the MDM signal, which starts its billing.
    let spec = DeviceSpec::numbered(DeviceKind::IPhone, 41);
    let staged = inventory_device(&mdm.app, AGENCY, &model, DeviceState::Staged, &spec.serial_number).await;
    let mut joined = mdm.enroll(spec).await;
    assert_eq!(mdm.enrollment(&joined).await["device_id"], staged.as_str(), "{label}");
    let device = device_state(staged.clone()).await;
    assert_eq!(device["state"], "enrolled", "{label}: {device}");
    assert!(device["enrolled_at"].is_string(), "{label}: billing starts at enrollment: {device}");
    assert!(
        device["custody"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "record_enrollment" && e["by"].as_str().is_some_and(|a| a.contains(joined.udid()))),
        "{label}: the device recorded its own enrollment: {device}"
    );

    // A device of another agency with the same serial, or none: EUC's unmatched queue.
    app_agency(&mdm.app, "BBB").await;
    let stray_spec = DeviceSpec::numbered(DeviceKind::IPhone, 42);
    let elsewhere = inventory_device(&mdm.app, "BBB", &model, DeviceState::Staged, &stray_spec.serial_number).await;
    let stray = mdm.enroll(stray_spec).await;
    let unmatched: Value =
        mdm.app.get("/api/v1/mdm/enrollments?unmatched=true", &mdm.token).await.json().await.unwrap();
    let udids: Vec<&str> = unmatched["items"].as_array().unwrap().iter().map(|e| e["udid"].as_str().unwrap()).collect();
    assert_eq!(udids, [stray.udid()], "{label}: {unmatched}");
    assert_eq!(device_state(elsewhere.clone()).await["state"], "staged", "{label}: no device of another agency");

    // EUC joins it by hand; a device of another agency, or with another serial, is refused.
    let euc = mdm.app.user_with_token("euc@central.example", Role::Euc, None).await.1;
    let link = |id: String, token: String| {
        let (app, udid) = (&mdm.app, stray.udid().to_string());
        async move {
            let path = format!("/api/v1/mdm/enrollments/{udid}/link");
            app.send_json(Method::POST, &path, Some(&token), &json!({"device_id": id})).await
        }
    };
    let refused = link(elsewhere.clone(), euc.clone()).await;
    assert_eq!(common::fields(&common::problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await), ["device_id"]);
    let other_serial = inventory_device(&mdm.app, AGENCY, &model, DeviceState::Staged, "DNPOTHER01").await;
    let refused = link(other_serial, euc.clone()).await;
    assert_eq!(common::fields(&common::problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await), ["device_id"]);
    let requester = mdm.app.user_with_token("req@aaa.example", Role::AgencyRequester, Some(AGENCY)).await.1;
    let unserialized = mdm.app.device_in_state(AGENCY, &model, DeviceState::Staged).await;
    assert_eq!(link(unserialized.clone(), requester).await.status(), StatusCode::FORBIDDEN, "{label}");
    let linked = link(unserialized.clone(), euc.clone()).await;
    assert_eq!(linked.status(), StatusCode::OK, "{label}");
    assert_eq!(device_state(unserialized.clone()).await["state"], "enrolled", "{label}");
    let unmatched: Value =
        mdm.app.get("/api/v1/mdm/enrollments?unmatched=true", &mdm.token).await.json().await.unwrap();
    assert_eq!(unmatched["items"], json!([]), "{label}");

    // Removing MDM outside decommissioning alerts central IT security; a decommissioned
    // device leaving MDM is expected.
    joined.check_out().await.unwrap();
    let inbox: Value = mdm.app.get("/api/v1/notifications", &mdm.token).await.json().await.unwrap();
    let alerts: Vec<&Value> =
        inbox["items"].as_array().unwrap().iter().filter(|n| n["kind"] == "mdm_unexpected_check_out").collect();
    assert_eq!(alerts.len(), 1, "{label}: {inbox}");
    assert!(alerts[0]["body"].as_str().unwrap().contains(joined.udid()), "{label}: {inbox}");
    let mut retired = stray;
    mdm.app.exec_owned(format!("UPDATE devices SET state = 'decommissioned' WHERE id = '{unserialized}'")).await;
    retired.check_out().await.unwrap();
    let auditor = mdm.app.user_with_token("audit@central.example", Role::Auditor, None).await.1;
    let events: Value =
        mdm.app.get("/api/v1/audit-events?action=mdm.alert.unexpected_check_out", &auditor).await.json().await.unwrap();
    assert_eq!(events["items"].as_array().unwrap().len(), 1, "{label}: {events}");
}

async fn app_agency(app: &TestApp, code: &str) {
    app.agency(code, &format!("Agency {code}")).await;
}

#[tokio::test]
async fn enrollments_join_their_inventory_device_on_sqlite() {
    enrollments_join_their_inventory_device(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn enrollments_join_their_inventory_device_on_postgres() {
    let Some(url) = TestDb::postgres_url() else { return };
    enrollments_join_their_inventory_device(TestDb::postgres(&url).await).await;
}

/// A lost device is put in Lost Mode at once (locked when not supervised), with the configured
/// notice; recovery takes it out. Each lifecycle command mirrors the device's answer.
#[tokio::test]
async fn lost_devices_go_into_lost_mode_and_recovery_takes_them_out() {
    let db = match TestDb::postgres_url() {
        Some(url) => TestDb::postgres(&url).await,
        None => TestDb::sqlite().await,
    };
    let mdm = Mdm::start(db, |config| config.mdm.lost_mode_phone = Some("+15185550100".into())).await;
    let label = mdm.app.db.label;
    let model = phone_model(&mdm.app).await;
    let euc = mdm.app.user_with_token("euc@central.example", Role::Euc, None).await.1;
    let act = |device: String, action: &'static str| {
        let (app, euc) = (&mdm.app, euc.clone());
        async move {
            let path = format!("/api/v1/devices/{device}/actions/{action}");
            let response = app.send_json(Method::POST, &path, Some(&euc), &json!({})).await;
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            assert_eq!(status, StatusCode::OK, "{action}: {body}");
            body
        }
    };
    let lifecycle_commands = |device: String| {
        let (app, euc) = (&mdm.app, euc.clone());
        async move {
            let device: Value = app.get(&format!("/api/v1/devices/{device}"), &euc).await.json().await.unwrap();
            device["commands"].as_array().unwrap().clone()
        }
    };

    let mut spec = DeviceSpec::numbered(DeviceKind::IPhone, 51);
    spec.supervised = true;
    let supervised = inventory_device(&mdm.app, AGENCY, &model, DeviceState::InService, &spec.serial_number).await;
    let mut phone = mdm.enroll(spec).await;
    let mut spec = DeviceSpec::numbered(DeviceKind::IPhone, 52);
    spec.supervised = false;
    let unsupervised = inventory_device(&mdm.app, AGENCY, &model, DeviceState::InService, &spec.serial_number).await;
    let mut other = mdm.enroll(spec).await;
    // Each says whether it is supervised.
    mdm.command(&[&phone, &other], "DeviceInformation", json!({"Queries": ["IsSupervised"]})).await;
    for device in [&mut phone, &mut other] {
        assert_eq!(device.run_until_idle().await.unwrap().len(), 1);
    }

    // Reported lost: Lost Mode on the supervised one, a lock on the other, sent at once.
    act(supervised.clone(), "report-lost").await;
    act(unsupervised.clone(), "report-lost").await;
    let handled = phone.run_until_idle().await.unwrap();
    assert_eq!(handled.iter().map(|h| h.request_type.as_str()).collect::<Vec<_>>(), ["EnableLostMode"], "{label}");
    assert_eq!(handled[0].status, AnswerStatus::Acknowledged);
    let notice = phone.state().lost_mode.clone().expect("in Lost Mode");
    assert_eq!(notice.phone_number.as_deref(), Some("+15185550100"));
    assert!(notice.message.unwrap().contains("reported lost"));
    let handled = other.run_until_idle().await.unwrap();
    assert_eq!(handled.iter().map(|h| h.request_type.as_str()).collect::<Vec<_>>(), ["DeviceLock"], "{label}");
    assert!(other.state().locked && other.state().lost_mode.is_none());
    let commands = lifecycle_commands(supervised.clone()).await;
    assert_eq!(commands.len(), 1, "{label}: {commands:?}");
    assert_eq!(
        (commands[0]["kind"].as_str(), commands[0]["status"].as_str()),
        (Some("enable_lost_mode"), Some("acknowledged"))
    );

    // Recovered: Lost Mode ends; a locked phone is unlocked with its passcode, not by command.
    act(supervised.clone(), "recover").await;
    act(unsupervised.clone(), "recover").await;
    let handled = phone.run_until_idle().await.unwrap();
    assert_eq!(handled.iter().map(|h| h.request_type.as_str()).collect::<Vec<_>>(), ["DisableLostMode"], "{label}");
    assert!(phone.state().lost_mode.is_none());
    assert!(other.run_until_idle().await.unwrap().is_empty(), "{label}");
    let commands = lifecycle_commands(unsupervised.clone()).await;
    let kinds: Vec<(&str, &str)> =
        commands.iter().map(|c| (c["kind"].as_str().unwrap(), c["status"].as_str().unwrap())).collect();
    assert_eq!(kinds, [("enable_lost_mode", "acknowledged"), ("disable_lost_mode", "not_needed")], "{label}");

    // Under a legal hold no erase goes out, whoever asks.
    mdm.app.hold_on(AGENCY, &supervised).await;
    let body = json!({"devices": [phone.udid()], "reason": "stolen"});
    let refused = mdm.app.send_json(Method::POST, "/api/v1/erase-requests", Some(&mdm.token), &body).await;
    let problem = common::problem(refused, StatusCode::CONFLICT).await;
    assert_eq!(common::fields(&problem), ["devices"], "{label}: {problem}");
    assert!(problem.to_string().contains("legal hold"), "{problem}");
    assert!(phone.run_until_idle().await.unwrap().is_empty(), "{label}: nothing was queued");
}

/// The two-person rule: one person may erase one device when they are in central IT security;
/// anything else waits for a second person, who cannot be the requester. A rejected erase sends
/// nothing, and an erase never goes out through the plain command queue.
#[tokio::test]
async fn an_erase_needs_a_second_person_unless_infosec_erases_one_device() {
    let mdm = Mdm::start(TestDb::sqlite().await, |_| {}).await;
    let mut devices = Vec::new();
    for i in 0..4 {
        devices.push(mdm.enroll(DeviceSpec::numbered(DeviceKind::IPhone, 60 + i)).await);
    }
    let euc = mdm.app.user_with_token("euc@central.example", Role::Euc, None).await.1;
    let second = mdm.app.user_with_token("sec2@central.example", Role::Infosec, None).await.1;
    let erase = |token: String, udids: Vec<String>| {
        let app = &mdm.app;
        async move {
            let body = json!({"devices": udids, "reason": "reported stolen"});
            let response = app.send_json(Method::POST, "/api/v1/erase-requests", Some(&token), &body).await;
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (status, body)
        }
    };
    let decide = |token: String, id: String, verb: &'static str, body: Value| {
        let app = &mdm.app;
        async move {
            let path = format!("/api/v1/erase-requests/{id}/{verb}");
            app.send_json(Method::POST, &path, Some(&token), &body).await
        }
    };
    let udid = |i: usize| devices[i].udid().to_string();

    // Never through the plain command queue.
    let body = json!({"devices": [udid(0)], "request_type": "EraseDevice"});
    let refused = mdm.app.send_json(Method::POST, "/api/v1/commands", Some(&mdm.token), &body).await;
    assert_eq!(common::fields(&common::problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await), ["request_type"]);

    // Infosec, one device: at once.
    let (status, one) = erase(mdm.token.clone(), vec![udid(0)]).await;
    assert_eq!((status, one["status"].as_str()), (StatusCode::CREATED, Some("approved")), "{one}");
    // Infosec, two devices; EUC, one device: both wait.
    let (status, bulk) = erase(mdm.token.clone(), vec![udid(1), udid(2)]).await;
    assert_eq!((status, bulk["status"].as_str()), (StatusCode::CREATED, Some("pending")), "{bulk}");
    let (_, by_euc) = erase(euc.clone(), vec![udid(3)]).await;
    assert_eq!(by_euc["status"], "pending", "{by_euc}");
    let inbox: Value = mdm.app.get("/api/v1/notifications", &second).await.json().await.unwrap();
    let waiting = inbox["items"].as_array().unwrap().iter().filter(|n| n["kind"] == "erase_approval").count();
    assert_eq!(waiting, 2, "the other security officer is asked: {inbox}");
    let pending: Value = mdm.app.get("/api/v1/erase-requests?status=pending", &euc).await.json().await.unwrap();
    assert_eq!(pending["items"].as_array().unwrap().len(), 2, "{pending}");

    let handled = devices[0].run_until_idle().await.unwrap();
    assert_eq!(handled.iter().map(|h| h.request_type.as_str()).collect::<Vec<_>>(), ["EraseDevice"]);
    assert!(devices[0].state().wiped);
    for device in &mut devices[1..] {
        assert!(device.run_until_idle().await.unwrap().is_empty(), "nothing goes out before the approval");
    }

    // The requester cannot approve their own erase, nor can EUC; another security officer can.
    let bulk_id = bulk["id"].as_str().unwrap().to_string();
    let own = decide(mdm.token.clone(), bulk_id.clone(), "approve", json!({})).await;
    assert_eq!(common::fields(&common::problem(own, StatusCode::CONFLICT).await), ["decided_by"]);
    assert_eq!(decide(euc.clone(), bulk_id.clone(), "approve", json!({})).await.status(), StatusCode::FORBIDDEN);
    let approved = decide(second.clone(), bulk_id.clone(), "approve", json!({"note": "confirmed"})).await;
    assert_eq!(approved.status(), StatusCode::OK);
    let approved: Value = approved.json().await.unwrap();
    assert_eq!(approved["status"], "approved");
    assert!(approved["decided_by"].as_str().unwrap().starts_with("sec2@central.example"), "{approved}");
    let again = decide(second.clone(), bulk_id.clone(), "approve", json!({})).await;
    assert_eq!(common::fields(&common::problem(again, StatusCode::CONFLICT).await), ["status"]);
    for device in &mut devices[1..3] {
        let handled = device.run_until_idle().await.unwrap();
        assert_eq!(handled.iter().map(|h| h.request_type.as_str()).collect::<Vec<_>>(), ["EraseDevice"]);
    }

    // A rejection needs a note and sends nothing.
    let euc_id = by_euc["id"].as_str().unwrap().to_string();
    let bare = decide(second.clone(), euc_id.clone(), "reject", json!({})).await;
    assert_eq!(common::fields(&common::problem(bare, StatusCode::UNPROCESSABLE_ENTITY).await), ["note"]);
    let rejected: Value =
        decide(second.clone(), euc_id, "reject", json!({"note": "found in a drawer"})).await.json().await.unwrap();
    assert_eq!(rejected["status"], "rejected");
    assert!(devices[3].run_until_idle().await.unwrap().is_empty());
    assert!(!devices[3].state().wiped);
}

/// Sanitization by remote erase: the record waits for the device to acknowledge `EraseDevice`
/// (itself waiting for a second person when EUC asks), then is validated, and the device can be
/// decommissioned. A legal hold refuses the remote erase, and an approval after a hold was placed.
async fn remote_erase_completes_a_sanitization(db: TestDb) {
    let mdm = Mdm::start(db, |_| {}).await;
    let label = mdm.app.db.label;
    let model = phone_model(&mdm.app).await;
    let euc = mdm.app.user_with_token("euc@central.example", Role::Euc, None).await.1;
    let euc2 = mdm.app.user_with_token("euc2@central.example", Role::Euc, None).await.1;
    let second = mdm.app.user_with_token("sec2@central.example", Role::Infosec, None).await.1;
    let spec = DeviceSpec::numbered(DeviceKind::IPhone, 71);
    let serial = spec.serial_number.clone();
    let device = inventory_device(&mdm.app, AGENCY, &model, DeviceState::Sanitizing, &serial).await;
    let mut phone = mdm.enroll(spec).await;
    let call = |token: String, path: String, body: Value| {
        let app = &mdm.app;
        async move {
            let response = app.send_json(Method::POST, &path, Some(&token), &body).await;
            let status = response.status();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let sanitization = format!("/api/v1/devices/{device}/sanitization");
    let validation = json!({"name": "Vic Validator", "title": "EUC Supervisor", "organization": "ITS"});

    let mut record = common::sanitization_record("clear");
    record["media_serial"] = json!(serial);
    record["remote_erase"] = json!(true);
    let (status, row) = call(euc.clone(), sanitization.clone(), record.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{label}: {row}");
    let request = row["erase_request_id"].as_str().expect("a remote erase request").to_string();
    let (status, problem) = call(euc2.clone(), format!("{sanitization}/validation"), validation.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{label}: {problem}");
    assert!(problem.to_string().contains("second person"), "{problem}");

    let (status, _) = call(second.clone(), format!("/api/v1/erase-requests/{request}/approve"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{label}");
    let (status, problem) = call(euc2.clone(), format!("{sanitization}/validation"), validation.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{label}: not acknowledged yet: {problem}");
    let handled = phone.run_until_idle().await.unwrap();
    assert_eq!(
        handled.iter().map(|h| (h.request_type.as_str(), h.status)).collect::<Vec<_>>(),
        [("EraseDevice", AnswerStatus::Acknowledged)],
        "{label}"
    );
    let (status, body) = call(euc2.clone(), format!("{sanitization}/validation"), validation.clone()).await;
    assert_eq!(status, StatusCode::OK, "{label}: {body}");
    let (status, body) = call(euc.clone(), format!("/api/v1/devices/{device}/actions/decommission"), json!({})).await;
    assert_eq!((status, body["state"].as_str()), (StatusCode::OK, Some("decommissioned")), "{label}: {body}");

    // Under a legal hold: the remote erase is refused, and so is an approval given after the
    // hold was placed.
    let spec = DeviceSpec::numbered(DeviceKind::IPhone, 72);
    let serial = spec.serial_number.clone();
    let held = inventory_device(&mdm.app, AGENCY, &model, DeviceState::Sanitizing, &serial).await;
    let mut held_phone = mdm.enroll(spec).await;
    let (_, pending) = call(
        euc.clone(),
        "/api/v1/erase-requests".into(),
        json!({"devices": [held_phone.udid()], "reason": "retired"}),
    )
    .await;
    assert_eq!(pending["status"], "pending", "{label}: {pending}");
    mdm.app.hold_on(AGENCY, &held).await;
    let mut record = common::sanitization_record("clear");
    record["media_serial"] = json!(serial);
    record["remote_erase"] = json!(true);
    let (status, problem) = call(euc.clone(), format!("/api/v1/devices/{held}/sanitization"), record).await;
    assert_eq!(status, StatusCode::CONFLICT, "{label}: {problem}");
    assert!(problem.to_string().contains("legal hold"), "{problem}");
    let approve = format!("/api/v1/erase-requests/{}/approve", pending["id"].as_str().unwrap());
    let (status, problem) = call(second.clone(), approve, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{label}: {problem}");
    assert!(problem.to_string().contains("legal hold"), "{problem}");
    assert!(held_phone.run_until_idle().await.unwrap().is_empty(), "{label}: nothing was erased");
}

#[tokio::test]
async fn remote_erase_completes_a_sanitization_on_sqlite() {
    remote_erase_completes_a_sanitization(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn remote_erase_completes_a_sanitization_on_postgres() {
    let Some(url) = TestDb::postgres_url() else { return };
    remote_erase_completes_a_sanitization(TestDb::postgres(&url).await).await;
}

/// A device reported lost before it had an enrollment is locked as soon as it enrolls.
#[tokio::test]
async fn a_device_reported_lost_before_it_enrolled_is_locked_when_it_does() {
    let mdm = Mdm::start(TestDb::sqlite().await, |_| {}).await;
    let model = phone_model(&mdm.app).await;
    let euc = mdm.app.user_with_token("euc@central.example", Role::Euc, None).await.1;
    let spec = DeviceSpec::numbered(DeviceKind::IPhone, 81);
    let device = inventory_device(&mdm.app, AGENCY, &model, DeviceState::InService, &spec.serial_number).await;
    let path = format!("/api/v1/devices/{device}/actions/report-lost");
    assert_eq!(mdm.app.send_json(Method::POST, &path, Some(&euc), &json!({})).await.status(), StatusCode::OK);
    let commands = |token: String| {
        let (app, device) = (&mdm.app, device.clone());
        async move {
            let device: Value = app.get(&format!("/api/v1/devices/{device}"), &token).await.json().await.unwrap();
            device["commands"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["status"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(commands(euc.clone()).await, ["pending"]);

    let mut phone = mdm.enroll_only(spec).await;
    assert_eq!(commands(euc.clone()).await, ["queued"], "sent when the enrollment joined the device");
    let handled = phone.run_until_idle().await.unwrap();
    // Whether it is supervised is not known yet: it is locked, with the notice, in the same
    // session as its first inventory.
    let mut kinds: Vec<&str> = handled.iter().map(|h| h.request_type.as_str()).collect();
    kinds.sort_unstable();
    let mut want = custody_app::inventory::INVENTORY_COMMANDS.to_vec();
    want.push("DeviceLock");
    want.sort_unstable();
    assert_eq!(kinds, want);
    assert!(phone.state().locked);
    assert_eq!(commands(euc).await, ["acknowledged"]);
}
