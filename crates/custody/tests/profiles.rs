//! The profile and app library end to end: simulated devices of an agency receive what is
//! assigned to it (`InstallProfile`, `InstallApplication`), report it in `ProfileList` /
//! `InstalledApplicationList`, get a new version when a profile is edited, lose what is
//! unassigned (`RemoveProfile`, `RemoveApplication`); device types and groups select their
//! devices; bad input is refused by field with nothing written; agency users see nothing of
//! another agency's groups.

mod common;

use common::mdm::{AGENCY, Mdm};
use common::{TestApp, fields, problem};
use custody_domain::role::Role;
use custody_sim::{AnswerStatus, DeviceKind, DeviceSpec, SimDevice};
use custody_store::testing::TestDb;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// An App Store id the simulator installs as `com.example.store.app<id>`.
const STORE_ID: i64 = 361_309_726;

async fn created(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// Runs the device's command session; returns what it handled as (request type, status).
async fn session(device: &mut SimDevice) -> Vec<(String, AnswerStatus)> {
    let handled = device.run_until_idle().await.expect("a command session");
    handled.into_iter().map(|h| (h.request_type, h.status)).collect()
}

fn acknowledged(request_type: &str) -> (String, AnswerStatus) {
    (request_type.to_string(), AnswerStatus::Acknowledged)
}

/// Each enrollment's state of a profile, by UDID.
async fn profile_states(mdm: &Mdm, id: &str) -> Vec<(String, String, i64)> {
    let body: Value = mdm.app.get(&format!("/api/v1/profiles/{id}/status"), &mdm.token).await.json().await.unwrap();
    let mut states: Vec<(String, String, i64)> = body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|s| {
            (s["udid"].as_str().unwrap().into(), s["status"].as_str().unwrap().into(), s["version"].as_i64().unwrap())
        })
        .collect();
    states.sort();
    states
}

async fn app_states(mdm: &Mdm, id: &str) -> Vec<(String, String)> {
    let body: Value = mdm.app.get(&format!("/api/v1/apps/{id}"), &mdm.token).await.json().await.unwrap();
    let mut states: Vec<(String, String)> = body["devices"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|s| (s["udid"].as_str().unwrap().into(), s["status"].as_str().unwrap().into()))
        .collect();
    states.sort();
    states
}

fn holds_profile(device: &SimDevice, identifier: &str) -> Option<String> {
    device.state().profiles.iter().find(|p| p.identifier == identifier && p.managed).map(|p| p.uuid.clone())
}

fn holds_app(device: &SimDevice, bundle: &str) -> bool {
    device.state().apps.iter().any(|a| a.identifier == bundle && a.managed)
}

async fn devices_converge_to_their_assignments(db: TestDb) {
    let mdm = Mdm::start(db, |_| {}).await;
    let label = mdm.app.db.label;
    let mut a = mdm.enroll(DeviceSpec::numbered(DeviceKind::IPhone, 61)).await;
    let mut b = mdm.enroll(DeviceSpec::numbered(DeviceKind::IPad, 62)).await;
    let mut udids = [a.udid().to_string(), b.udid().to_string()];
    udids.sort();

    // A typed Wi-Fi profile, assigned to the agency: both devices install it.
    let body = json!({"name": "Staff Wi-Fi", "kind": "wifi", "identifier": "gov.aaa.wifi.staff",
                      "settings": {"ssid": "AAA-Staff", "password": "correct horse battery"}});
    let profile = created(mdm.app.send_json(Method::POST, "/api/v1/profiles", Some(&mdm.token), &body).await).await;
    let id = profile["id"].as_str().unwrap().to_string();
    assert_eq!(profile["version"], 1);
    assert_eq!(profile["payload_types"], json!(["com.apple.wifi.managed"]));
    assert_eq!(profile["settings"]["ssid"], "AAA-Staff");
    let body = json!({"item_kind": "profile", "item_id": id, "target_kind": "agency", "target": AGENCY});
    let assignment =
        created(mdm.app.send_json(Method::POST, "/api/v1/assignments", Some(&mdm.token), &body).await).await;
    for device in [&mut a, &mut b] {
        assert_eq!(session(device).await, [acknowledged("InstallProfile")], "{label}");
        let uuid = holds_profile(device, "gov.aaa.wifi.staff").expect("the device holds the profile");
        assert_eq!(uuid, profile["payload_uuid"].as_str().unwrap());
        assert!(session(device).await.is_empty(), "{label}: nothing more to do");
    }
    let installed: Vec<(String, String, i64)> = udids.iter().map(|u| (u.clone(), "installed".into(), 1)).collect();
    assert_eq!(profile_states(&mdm, &id).await, installed, "{label}");

    // Convergence again changes nothing: no second command while the state is settled.
    let again = custody_app::profiles::converge(mdm.app.app()).await.unwrap();
    assert_eq!((again.profile_installs, again.batches), (0, 0), "{label}: {again:?}");

    // The user deletes the profile on A: its ProfileList says so, the state becomes missing, and
    // the next convergence installs it again. B's ProfileList confirms it.
    a.state_mut().profiles.retain(|p| p.identifier != "gov.aaa.wifi.staff");
    mdm.command(&[&a, &b], "ProfileList", json!({})).await;
    for device in [&mut a, &mut b] {
        assert_eq!(session(device).await, [acknowledged("ProfileList")]);
    }
    let states = profile_states(&mdm, &id).await;
    let of = |udid: &str| states.iter().find(|s| s.0 == udid).unwrap().1.clone();
    assert_eq!(of(a.udid()), "missing", "{label}: {states:?}");
    assert_eq!(of(b.udid()), "installed", "{label}: {states:?}");
    let healed = custody_app::profiles::converge(mdm.app.app()).await.unwrap();
    assert_eq!(healed.profile_installs, 1, "{label}: {healed:?}");
    assert_eq!(session(&mut a).await, [acknowledged("InstallProfile")]);
    assert!(holds_profile(&a, "gov.aaa.wifi.staff").is_some());
    assert_eq!(profile_states(&mdm, &id).await, installed, "{label}");

    // An edit is a new version: same identifier, new UUID, sent to both devices.
    let body = json!({"settings": {"ssid": "AAA-Staff", "password": "a new passphrase", "encryption": "wpa3"}});
    let response = mdm.app.send_json(Method::PATCH, &format!("/api/v1/profiles/{id}"), Some(&mdm.token), &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let edited: Value = response.json().await.unwrap();
    assert_eq!(edited["version"], 2);
    assert_eq!(edited["identifier"], "gov.aaa.wifi.staff");
    assert_ne!(edited["payload_uuid"], profile["payload_uuid"]);
    for device in [&mut a, &mut b] {
        assert_eq!(session(device).await, [acknowledged("InstallProfile")], "{label}");
        assert_eq!(holds_profile(device, "gov.aaa.wifi.staff").as_deref(), edited["payload_uuid"].as_str());
    }
    let at_two: Vec<(String, String, i64)> = udids.iter().map(|u| (u.clone(), "installed".into(), 2)).collect();
    assert_eq!(profile_states(&mdm, &id).await, at_two, "{label}");
    let download = mdm.app.get(&format!("/api/v1/profiles/{id}/download"), &mdm.token).await;
    assert_eq!(download.headers()["content-type"], "application/x-apple-aspen-config");
    let file = download.text().await.unwrap();
    assert!(file.contains("a new passphrase") && file.contains(edited["payload_uuid"].as_str().unwrap()));

    // Unassigned: both devices remove it.
    let path = format!("/api/v1/assignments/{}", assignment["id"].as_str().unwrap());
    let response = mdm.app.request(Method::DELETE, &path, Some(&mdm.token)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for device in [&mut a, &mut b] {
        assert_eq!(session(device).await, [acknowledged("RemoveProfile")], "{label}");
        assert!(holds_profile(device, "gov.aaa.wifi.staff").is_none(), "{label}: the device no longer holds it");
    }
    let removed: Vec<(String, String, i64)> = udids.iter().map(|u| (u.clone(), "removed".into(), 2)).collect();
    assert_eq!(profile_states(&mdm, &id).await, removed, "{label}");

    // An App Store app: assigned, installed, listed, unassigned, removed.
    let bundle = format!("com.example.store.app{STORE_ID}");
    let body = json!({"kind": "store", "store_id": STORE_ID, "bundle_id": bundle, "name": "Field Notes"});
    let app = created(mdm.app.send_json(Method::POST, "/api/v1/apps", Some(&mdm.token), &body).await).await;
    let app_id = app["id"].as_str().unwrap().to_string();
    let body = json!({"item_kind": "app", "item_id": app_id, "target_kind": "agency", "target": AGENCY});
    let assignment =
        created(mdm.app.send_json(Method::POST, "/api/v1/assignments", Some(&mdm.token), &body).await).await;
    for device in [&mut a, &mut b] {
        assert_eq!(session(device).await, [acknowledged("InstallApplication")], "{label}");
        assert!(holds_app(device, &bundle), "{label}: the app is on the device");
    }
    mdm.command(&[&a], "InstalledApplicationList", json!({})).await;
    assert_eq!(session(&mut a).await, [acknowledged("InstalledApplicationList")]);
    let installed: Vec<(String, String)> = udids.iter().map(|u| (u.clone(), "installed".into())).collect();
    assert_eq!(app_states(&mdm, &app_id).await, installed, "{label}");
    let path = format!("/api/v1/assignments/{}", assignment["id"].as_str().unwrap());
    let response = mdm.app.request(Method::DELETE, &path, Some(&mdm.token)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for device in [&mut a, &mut b] {
        assert_eq!(session(device).await, [acknowledged("RemoveApplication")], "{label}");
        assert!(!holds_app(device, &bundle), "{label}: the app is gone");
    }
    let removed: Vec<(String, String)> = udids.iter().map(|u| (u.clone(), "removed".into())).collect();
    assert_eq!(app_states(&mdm, &app_id).await, removed, "{label}");
}

#[tokio::test]
async fn devices_converge_to_their_assignments_on_sqlite() {
    devices_converge_to_their_assignments(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn devices_converge_to_their_assignments_on_postgres() {
    let Some(url) = TestDb::postgres_url() else { return };
    devices_converge_to_their_assignments(TestDb::postgres(&url).await).await;
}

/// Enrollments of AAA written to the store and joined to inventory devices: a tablet, another
/// tablet in a group, and one without a device. Returns (app, token, enrollment ids).
async fn linked_enrollments(db: TestDb) -> (TestApp, String, [String; 3], [String; 2]) {
    let app = TestApp::spawn_with(db, |_| {}).await;
    app.agency("AAA", "Alpha Agency").await;
    let (_, token) = app.user_with_token("sec@central.example", Role::Infosec, None).await;
    let model = common::mdm::phone_model(&app).await;
    let mut enrollments = Vec::new();
    let mut devices = Vec::new();
    for i in 0..3 {
        let (enrollment, _) = app.enrollment_on("AAA", &format!("00008120-00000000000000{i:02}")).await;
        if i < 2 {
            let device = app.device_in_state("AAA", &model, custody_domain::device::DeviceState::InService).await;
            app.exec_owned(format!("UPDATE mdm_enrollments SET device_id = '{device}' WHERE id = '{enrollment}'"))
                .await;
            devices.push(device);
        }
        enrollments.push(enrollment);
    }
    (app, token, enrollments.try_into().unwrap(), devices.try_into().unwrap())
}

async fn states_of(app: &TestApp, token: &str, profile: &str) -> Vec<(String, String)> {
    let body: Value = app.get(&format!("/api/v1/profiles/{profile}/status"), token).await.json().await.unwrap();
    let mut states: Vec<(String, String)> = body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|s| (s["enrollment_id"].as_str().unwrap().into(), s["status"].as_str().unwrap().into()))
        .collect();
    states.sort();
    states
}

async fn device_types_and_groups_select_their_devices(db: TestDb) {
    let (app, token, [tablet, grouped, unlinked], [_, grouped_device]) = linked_enrollments(db).await;
    let label = app.db.label;
    let body = json!({"name": "Passcode", "kind": "passcode", "settings": {"min_length": 6}});
    let passcode = created(app.send_json(Method::POST, "/api/v1/profiles", Some(&token), &body).await).await;
    let passcode = passcode["id"].as_str().unwrap().to_string();
    let body = json!({"name": "No camera", "kind": "restrictions", "settings": {"allow_camera": false}});
    let camera = created(app.send_json(Method::POST, "/api/v1/profiles", Some(&token), &body).await).await;
    let camera = camera["id"].as_str().unwrap().to_string();

    // By device type: the two enrollments joined to tablets, not the unlinked one.
    let body = json!({"item_kind": "profile", "item_id": passcode, "target_kind": "device_type", "target": "tablet"});
    created(app.send_json(Method::POST, "/api/v1/assignments", Some(&token), &body).await).await;
    let mut want = vec![(tablet.clone(), "installing".to_string()), (grouped.clone(), "installing".to_string())];
    want.sort();
    assert_eq!(states_of(&app, &token, &passcode).await, want, "{label}");
    assert!(!states_of(&app, &token, &passcode).await.iter().any(|s| s.0 == unlinked));

    // By group: only the group's device.
    let body = json!({"name": "Inspectors", "agency": "AAA"});
    let group = created(app.send_json(Method::POST, "/api/v1/device-groups", Some(&token), &body).await).await;
    let group = group["id"].as_str().unwrap().to_string();
    let members = format!("/api/v1/device-groups/{group}/members");
    let response = app.send_json(Method::POST, &members, Some(&token), &json!({"devices": [grouped_device]})).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["members"], 1);
    let body = json!({"item_kind": "profile", "item_id": camera, "target_kind": "group", "target": group});
    created(app.send_json(Method::POST, "/api/v1/assignments", Some(&token), &body).await).await;
    assert_eq!(states_of(&app, &token, &camera).await, [(grouped.clone(), "installing".to_string())], "{label}");

    // The queued commands are real InstallProfile commands carrying the profile.
    let listed: Value = app.get("/api/v1/commands?request_type=InstallProfile", &token).await.json().await.unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 3, "{label}: {listed}");

    // Out of the group: the pending install stays until the device answers (never a second
    // command for a pair while one is outstanding); after its answer, the removal goes out.
    let response =
        app.request(Method::DELETE, &members, Some(&token)).json(&json!({"devices": [grouped_device]})).send().await;
    assert_eq!(response.unwrap().status(), StatusCode::OK);
    assert_eq!(states_of(&app, &token, &camera).await, [(grouped.clone(), "installing".to_string())], "{label}");
    app.exec("UPDATE mdm_commands SET status = 'expired' WHERE request_type = 'InstallProfile'").await;
    let pass = custody_app::profiles::converge(app.app()).await.unwrap();
    assert_eq!((pass.profile_removals, pass.profile_installs), (1, 2), "{label}: {pass:?}");
    assert_eq!(states_of(&app, &token, &camera).await, [(grouped.clone(), "removing".to_string())], "{label}");

    // Installed; then the tablet enrolls again (a fresh Authenticate): what MDM installed is gone
    // from it, so the next pass installs it again there only.
    app.exec("UPDATE mdm_profile_states SET status = 'installed'").await;
    let pass = custody_app::profiles::converge(app.app()).await.unwrap();
    assert_eq!((pass.profile_installs, pass.profile_removals), (0, 0), "{label}: {pass:?}");
    let later = custody_store::now_ms() + 60_000;
    app.exec_owned(format!("UPDATE mdm_enrollments SET authenticated_at = {later} WHERE id = '{tablet}'")).await;
    let pass = custody_app::profiles::converge(app.app()).await.unwrap();
    assert_eq!((pass.profile_installs, pass.profile_removals), (1, 0), "{label}: {pass:?}");
}

#[tokio::test]
async fn device_types_and_groups_select_their_devices_on_sqlite() {
    device_types_and_groups_select_their_devices(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn device_types_and_groups_select_their_devices_on_postgres() {
    let Some(url) = TestDb::postgres_url() else { return };
    device_types_and_groups_select_their_devices(TestDb::postgres(&url).await).await;
}

const VALID: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>PayloadType</key><string>Configuration</string>
<key>PayloadIdentifier</key><string>gov.aaa.webclip</string>
<key>PayloadUUID</key><string>0C6F1E1A-2B3C-4D5E-8F90-A1B2C3D4E5F6</string>
<key>PayloadDisplayName</key><string>Intranet</string>
<key>PayloadVersion</key><integer>1</integer>
<key>PayloadContent</key><array><dict>
<key>PayloadType</key><string>com.apple.webClip.managed</string>
<key>PayloadIdentifier</key><string>gov.aaa.webclip.intranet</string>
<key>PayloadUUID</key><string>0C6F1E1A-2B3C-4D5E-8F90-A1B2C3D4E5F7</string>
<key>PayloadVersion</key><integer>1</integer>
<key>URL</key><string>https://intranet.aaa.example</string>
<key>Label</key><string>Intranet</string>
</dict></array>
</dict></plist>"#;

async fn upload(app: &TestApp, token: &str, name: &str, body: &str) -> reqwest::Response {
    app.request(Method::POST, &format!("/api/v1/profiles/upload?name={name}"), Some(token))
        .header("content-type", "application/x-apple-aspen-config")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn bad_profiles_are_refused_by_field_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("sec@central.example", Role::Infosec, None).await;
    let before = app.audit_count().await;

    // An upload without a payload identifier: 422 naming it; nothing written.
    let broken = VALID.replace("<key>PayloadIdentifier</key><string>gov.aaa.webclip.intranet</string>", "");
    let refused = problem(upload(&app, &token, "Intranet", &broken).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&refused), ["file"]);
    assert!(
        refused["errors"][0]["message"].as_str().unwrap().contains("PayloadContent[0].PayloadIdentifier"),
        "{refused}"
    );
    let refused =
        problem(upload(&app, &token, "Junk", "not a profile at all").await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&refused), ["file"]);
    let mdm_payload = VALID.replace("com.apple.webClip.managed", "com.apple.mdm");
    let refused = problem(upload(&app, &token, "MDM", &mdm_payload).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(refused["errors"][0]["message"].as_str().unwrap().contains("PayloadContent[0].PayloadType"), "{refused}");

    // A typed Wi-Fi profile without its SSID: 422 naming settings.ssid.
    let body = json!({"name": "Wi-Fi", "kind": "wifi", "settings": {"password": "correct horse battery"}});
    let response = app.send_json(Method::POST, "/api/v1/profiles", Some(&token), &body).await;
    let refused = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&refused), ["settings.ssid"]);
    let body = json!({"name": "", "kind": "vpn", "settings": {"remote_address": "vpn.aaa.example", "colour": "red"}});
    let response = app.send_json(Method::POST, "/api/v1/profiles", Some(&token), &body).await;
    let refused = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(fields(&refused).contains(&"name".to_string()), "{refused}");
    assert!(fields(&refused).iter().any(|f| f.starts_with("settings")), "{refused}");
    let body = json!({"kind": "store", "store_id": -4, "bundle_id": "not a bundle", "name": "X"});
    let refused = problem(
        app.send_json(Method::POST, "/api/v1/apps", Some(&token), &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&refused), ["bundle_id", "store_id"]);

    let library: Value = app.get("/api/v1/profiles", &token).await.json().await.unwrap();
    assert_eq!(library["items"], json!([]), "nothing was written");
    assert_eq!(app.audit_count().await, before, "refusals write no audit event");

    // The valid file is taken once; the same identifier again is a conflict.
    let taken: Value = created(upload(&app, &token, "Intranet", VALID).await).await;
    assert_eq!(taken["kind"], "custom");
    assert_eq!(taken["identifier"], "gov.aaa.webclip");
    assert_eq!(taken["payload_types"], json!(["com.apple.webClip.managed"]));
    problem(upload(&app, &token, "Again", VALID).await, StatusCode::CONFLICT).await;
    let download = app.get(&format!("/api/v1/profiles/{}/download", taken["id"].as_str().unwrap()), &token).await;
    assert_eq!(download.text().await.unwrap(), VALID);

    // One app per bundle id in the library.
    let body = json!({"kind": "enterprise", "manifest_url": "https://apps.aaa.example/notes.plist",
                      "bundle_id": "gov.aaa.notes", "name": "Notes"});
    created(app.send_json(Method::POST, "/api/v1/apps", Some(&token), &body).await).await;
    let refused =
        problem(app.send_json(Method::POST, "/api/v1/apps", Some(&token), &body).await, StatusCode::CONFLICT).await;
    assert_eq!(refused["errors"][0]["field"], "bundle_id", "{refused}");
}

#[tokio::test]
async fn an_agency_user_sees_nothing_of_another_agencys_group() {
    let app = TestApp::spawn().await;
    app.agency("AAA", "Alpha Agency").await;
    app.agency("BBB", "Beta Agency").await;
    let (_, central) = app.user_with_token("sec@central.example", Role::Infosec, None).await;
    let (_, viewer) = app.user_with_token("viewer@aaa.example", Role::AgencyViewer, Some("AAA")).await;
    let mut ids = Vec::new();
    for agency in ["AAA", "BBB"] {
        let body = json!({"name": format!("Field team {agency}"), "agency": agency});
        let group = created(app.send_json(Method::POST, "/api/v1/device-groups", Some(&central), &body).await).await;
        ids.push(group["id"].as_str().unwrap().to_string());
    }
    let foreign = app.get(&format!("/api/v1/device-groups/{}", ids[1]), &viewer).await;
    let missing = app.get("/api/v1/device-groups/no-such-group", &viewer).await;
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("request_id");
        v
    };
    assert_eq!(strip(foreign.json().await.unwrap()), strip(missing.json().await.unwrap()));
    // Its own agency's group: the viewer holds no MDM role.
    assert_eq!(app.get(&format!("/api/v1/device-groups/{}", ids[0]), &viewer).await.status(), StatusCode::FORBIDDEN);
    // Nor can they add to another agency's group.
    let path = format!("/api/v1/device-groups/{}/members", ids[1]);
    let response = app.send_json(Method::POST, &path, Some(&viewer), &json!({"devices": ["x"]})).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // Central IT sees both.
    let both: Value = app.get("/api/v1/device-groups", &central).await.json().await.unwrap();
    assert_eq!(both["items"].as_array().unwrap().len(), 2);
    assert_eq!(app.get(&format!("/api/v1/device-groups/{}", ids[1]), &central).await.status(), StatusCode::OK);
}

/// Posts a console form as the signed-in `cookie` (redirects not followed).
async fn post_form(app: &TestApp, cookie: &str, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    client
        .post(format!("{}{path}", app.base))
        .header("cookie", format!("custody_session={cookie}"))
        .form(fields)
        .send()
        .await
        .unwrap()
}

async fn console_page(app: &TestApp, cookie: &str, path: &str) -> (StatusCode, String) {
    let response = app
        .client
        .get(format!("{}{path}", app.base))
        .header("cookie", format!("custody_session={cookie}"))
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn the_console_builds_assigns_and_shows_profiles_and_apps() {
    let (app, _, [enrollment, _, _], [device, _]) = linked_enrollments(TestDb::sqlite().await).await;
    app.user_with_token("infosec@x.example", Role::Infosec, None).await;
    let (cookie, csrf) = app.sign_in("infosec@x.example", common::PASSWORD).await;

    let (status, html) = console_page(&app, &cookie, "/mdm/profiles").await;
    assert_eq!(status, StatusCode::OK);
    for form in ["form-passcode", "form-wifi", "form-vpn", "form-restrictions", "form-exchange", "upload-form"] {
        assert!(html.contains(&format!("id=\"{form}\"")), "{form}");
    }
    let (_, html) = console_page(&app, &cookie, "/mdm").await;
    assert!(html.contains("href=\"/mdm/profiles\"") && html.contains("href=\"/mdm/apps\""));

    // Without the CSRF token: refused. Without an SSID: the field is named.
    let fields = [("kind", "wifi"), ("name", "Lobby"), ("t.ssid", "Lobby"), ("t.password", "correct horse")];
    assert_eq!(post_form(&app, &cookie, "/mdm/profiles", &fields).await.status(), StatusCode::FORBIDDEN);
    let missing = [("csrf_token", csrf.as_str()), ("kind", "wifi"), ("name", "Lobby"), ("t.password", "correct horse")];
    let refused = post_form(&app, &cookie, "/mdm/profiles", &missing).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text().await.unwrap().contains("settings.ssid"));

    let mut with_csrf = fields.to_vec();
    with_csrf.push(("csrf_token", &csrf));
    let made = post_form(&app, &cookie, "/mdm/profiles", &with_csrf).await;
    assert_eq!(made.status(), StatusCode::SEE_OTHER);
    let location = made.headers()["location"].to_str().unwrap().to_string();
    let id = location.trim_start_matches("/mdm/profiles/").split('?').next().unwrap().to_string();

    // Assigned to the agency from its page: the device's state shows there and on the device page.
    let assign = [("csrf_token", csrf.as_str()), ("target_kind", "agency"), ("agency", "AAA")];
    let assigned = post_form(&app, &cookie, &format!("/mdm/profiles/{id}/assign"), &assign).await;
    assert_eq!(assigned.status(), StatusCode::SEE_OTHER);
    let (status, html) = console_page(&app, &cookie, &format!("/mdm/profiles/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("/mdm/enrollments/{enrollment}")) && html.contains("installing"), "{html}");
    assert!(html.contains("id=\"assign-form\"") && html.contains("id=\"edit-form\""));
    let (_, html) = console_page(&app, &cookie, &format!("/devices/{device}")).await;
    assert!(html.contains("id=\"device-mdm-items\""), "{html}");
    assert!(html.contains(&format!("href=\"/mdm/profiles/{id}\">Lobby</a>")) && html.contains("installing"));

    // An app from the form.
    let add = [
        ("csrf_token", csrf.as_str()),
        ("kind", "store"),
        ("name", "Notes"),
        ("store_id", "5150"),
        ("bundle_id", "com.example.store.app5150"),
    ];
    let added = post_form(&app, &cookie, "/mdm/apps", &add).await;
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    let (_, html) = console_page(&app, &cookie, "/mdm/apps").await;
    assert!(html.contains("com.example.store.app5150"));
}
