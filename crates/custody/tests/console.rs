//! The console over plain HTTP: redirects to sign in, CSRF on forms, safe return paths, HTML 404.

mod common;

use common::{PASSWORD, TestApp};
use custody_domain::catalog::ModelInput;
use custody_domain::role::Role;
use reqwest::StatusCode;
use reqwest::redirect::Policy;

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

#[tokio::test]
async fn pages_send_strangers_to_sign_in_and_come_back() {
    let app = TestApp::spawn().await;
    let response = no_redirects().get(format!("{}/people?q=ruiz", app.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/login?next=%2Fpeople%3Fq%3Druiz");
    let login = reqwest::get(format!("{}/login?next=//evil.example/x", app.base)).await.unwrap().text().await.unwrap();
    assert!(login.contains("name=\"next\" value=\"/\""), "no return to another host");
}

#[tokio::test]
async fn console_forms_without_the_csrf_token_are_refused() {
    let app = TestApp::spawn().await;
    app.agency("AAA", "Alpha Agency").await;
    app.user_with_token("desk@x.example", Role::ServiceDesk, None).await;
    let (cookie, csrf) = app.sign_in("desk@x.example", PASSWORD).await;
    let before = app.audit_count().await;
    let post = |form: Vec<(&'static str, String)>| {
        no_redirects()
            .post(format!("{}/people", app.base))
            .header("cookie", format!("custody_session={cookie}"))
            .form(&form)
            .send()
    };
    let base = || vec![("agency", "AAA".to_string()), ("given_name", "Eve".into()), ("family_name", "Ng".into())];
    assert_eq!(post(base()).await.unwrap().status(), StatusCode::FORBIDDEN);
    let mut wrong = base();
    wrong.push(("csrf_token", "guess".into()));
    assert_eq!(post(wrong).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(app.audit_count().await, before);
    let mut right = base();
    right.push(("csrf_token", csrf));
    let created = post(right).await.unwrap();
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    assert!(created.headers()["location"].to_str().unwrap().starts_with("/people/"));
    assert_eq!(app.audit_count().await, before + 1);
}

#[tokio::test]
async fn unknown_pages_are_an_html_404_for_browsers_and_a_problem_for_machines() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    let page = client.get(format!("{}/nowhere", app.base)).header("accept", "text/html").send().await.unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(page.text().await.unwrap().contains("Page not found"));
    let machine = client.get(format!("{}/nowhere", app.base)).send().await.unwrap();
    assert_eq!(machine.headers()["content-type"], "application/problem+json");
    let css = client.get(format!("{}/static/custody.css", app.base)).send().await.unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
}

/// A signed-in console user: the session cookie and CSRF token, redirects not followed.
struct Console<'a> {
    app: &'a TestApp,
    cookie: String,
    csrf: String,
    client: reqwest::Client,
}

impl<'a> Console<'a> {
    async fn sign_in(app: &'a TestApp, email: &str) -> Self {
        let (cookie, csrf) = app.sign_in(email, PASSWORD).await;
        Self { app, cookie, csrf, client: no_redirects() }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        let url = format!("{}{path}", self.app.base);
        self.client.get(url).header("cookie", format!("custody_session={}", self.cookie)).send().await.unwrap()
    }

    /// A page's status and HTML.
    async fn page(&self, path: &str) -> (StatusCode, String) {
        let response = self.get(path).await;
        (response.status(), response.text().await.unwrap())
    }

    /// Posts a form with the session's CSRF token.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf_token", &self.csrf));
        let url = format!("{}{path}", self.app.base);
        let cookie = format!("custody_session={}", self.cookie);
        self.client.post(url).header("cookie", cookie).form(&form).send().await.unwrap()
    }
}

fn location(response: &reqwest::Response) -> String {
    response.headers().get("location").map(|l| l.to_str().unwrap().to_string()).unwrap_or_default()
}

/// The HTML with askama's escapes of quotes undone, to find JSON in it.
fn unquoted(html: &str) -> String {
    html.replace("&#34;", "\"")
}

#[tokio::test]
async fn mdm_enrollments_and_their_commands_in_the_console() {
    let app = TestApp::spawn().await;
    app.agency("AAA", "Alpha Agency").await;
    app.agency("BBB", "Beta Agency").await;
    app.user_with_token("infosec@x.example", Role::Infosec, None).await;
    let (enrollment, serial) = app.enrollment_on("AAA", "UDID-CONSOLE-0001").await;
    app.enrollment_on("BBB", "UDID-CONSOLE-0002").await;
    let infosec = Console::sign_in(&app, "infosec@x.example").await;

    // The list, its navigation link and its filters.
    let (status, html) = infosec.page("/mdm").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<a href=\"/mdm\" aria-current=\"page\">MDM</a>"), "the MDM nav link is current");
    assert!(html.contains(&format!("href=\"/mdm/enrollments/{enrollment}\"")), "{html}");
    assert!(html.contains("UDID-CONSOLE-0001") && html.contains("UDID-CONSOLE-0002"));
    let (_, html) = infosec.page("/mdm?agency=BBB").await;
    assert!(html.contains("UDID-CONSOLE-0002") && !html.contains("UDID-CONSOLE-0001"), "agency filter");
    let (_, html) = infosec.page("/mdm?status=checked_out").await;
    assert!(!html.contains("UDID-CONSOLE-0001") && html.contains("No enrolled devices here."), "status filter");

    // A device name is text, never markup.
    app.exec_owned(format!(
        "UPDATE mdm_enrollments SET device_name = '<script>alert(1)</script>' WHERE id = '{enrollment}'"
    ))
    .await;
    let (_, html) = infosec.page("/mdm").await;
    assert!(!html.contains("<script>alert(1)"), "the device name is escaped");
    assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "the device name is shown as text");

    // The enrollment page, by id or UDID; an unknown one is the 404 page.
    let (status, html) = infosec.page(&format!("/mdm/enrollments/{enrollment}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&serial), "the identity certificate's serial");
    assert!(html.contains("No commands.") && html.contains("id=\"command-form\""));
    assert_eq!(infosec.page("/mdm/enrollments/UDID-CONSOLE-0001").await.0, StatusCode::OK);
    let (status, html) = infosec.page("/mdm/enrollments/no-such-enrollment").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("Page not found"));

    // Queue a command through the form: refused without the CSRF token, queued with it.
    let path = format!("/mdm/enrollments/{enrollment}/commands");
    let before = app.audit_count().await;
    let forged = no_redirects()
        .post(format!("{}{path}", app.base))
        .header("cookie", format!("custody_session={}", infosec.cookie))
        .form(&[("request_type", "DeviceInformation")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.audit_count().await, before);
    let unknown = infosec.post(&path, &[("request_type", "EraseDevice")]).await;
    assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unknown.text().await.unwrap().contains("request_type: choose one of the commands listed"));
    let queued = infosec.post(&path, &[("request_type", "DeviceInformation")]).await;
    assert_eq!(queued.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&queued), format!("/mdm/enrollments/{enrollment}?done=queued"));
    assert_eq!(app.audit_count().await, before + 1);
    let (_, html) = infosec.page(&location(&queued)).await;
    assert!(html.contains("The command is queued"));
    let start = html.find("action=\"/mdm/commands/").expect("a cancel button") + "action=\"/mdm/commands/".len();
    let command = html[start..].split('/').next().unwrap().to_string();
    assert!(html.contains(&format!("<tr id=\"command-{command}\">\n    <td>DeviceInformation")), "{html}");
    let row = custody_app::mdm::command(app.app(), &custody_app::Actor::system("test"), &command).await.unwrap();
    assert_eq!((row.request_type.as_str(), row.status.as_str()), ("DeviceInformation", "queued"));
    assert!(row.params.contains("\"IsSupervised\"") && row.params.contains("\"WiFiMAC\""), "{}", row.params);

    // Cancel it: back to the page, cancelled, without a cancel button; a second time is refused.
    let cancel = format!("/mdm/commands/{command}/cancel");
    let cancelled = infosec.post(&cancel, &[]).await;
    assert_eq!(cancelled.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&cancelled), format!("/mdm/enrollments/{enrollment}?done=cancelled"));
    let (_, html) = infosec.page(&location(&cancelled)).await;
    assert!(html.contains("The command is cancelled."));
    assert!(html.contains("<span class=\"status\">cancelled</span>") && !html.contains(&cancel), "{html}");
    let again = infosec.post(&cancel, &[]).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert!(again.text().await.unwrap().contains("a cancelled command cannot be cancelled"));

    // A device's answer is shown as pretty-printed JSON in a <details>.
    let answered = app.command_for(&enrollment).await;
    let report = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><plist version=\"1.0\"><dict><key>SecurityInfo</key>\
                  <dict><key>HardwareEncryptionCaps</key><integer>3</integer></dict></dict></plist>";
    app.exec_owned(format!(
        "UPDATE mdm_commands SET status = 'acknowledged', result_status = 'Acknowledged', result = '{report}', \
         completed_at = updated_at WHERE id = '{answered}'"
    ))
    .await;
    let (_, html) = infosec.page(&format!("/mdm/enrollments/{enrollment}")).await;
    assert!(html.contains("<details><summary>Result (Acknowledged)</summary>"), "{html}");
    assert!(unquoted(&html).contains("\"SecurityInfo\": {\n    \"HardwareEncryptionCaps\": 3\n  }"), "{html}");
    assert!(!html.contains(&format!("/mdm/commands/{answered}/cancel")), "an answered command cannot be cancelled");
}

#[tokio::test]
async fn mdm_settings_take_the_push_certificate_and_hand_out_profiles_in_the_console() {
    let app = TestApp::spawn().await;
    app.agency("AAA", "Alpha Agency").await;
    app.user_with_token("infosec@x.example", Role::Infosec, None).await;
    let infosec = Console::sign_in(&app, "infosec@x.example").await;

    let (status, html) = infosec.page("/mdm/settings").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("None uploaded"));
    let (_, hex) = custody_app::mdm::ca_certificate(app.app(), &custody_app::Actor::system("test")).await.unwrap();
    let upper = hex.to_uppercase();
    let pairs: Vec<&str> = upper.as_bytes().chunks(2).map(|p| std::str::from_utf8(p).unwrap()).collect();
    assert!(html.contains(&pairs.join(":")), "the CA's fingerprint");
    let ca = infosec.get("/mdm/ca.pem").await;
    assert_eq!(ca.headers()["content-type"], "application/x-pem-file");
    assert!(ca.text().await.unwrap().starts_with("-----BEGIN CERTIFICATE-----"));

    // Without a push certificate there is no profile: said on the page.
    let profile = infosec.get("/mdm/agencies/AAA/enrollment.mobileconfig").await;
    assert_eq!(profile.status(), StatusCode::CONFLICT);
    assert!(profile.text().await.unwrap().contains("upload the APNs MDM push certificate first"));

    // Upload: a bad PEM is explained, the right one shows its topic.
    let bad = infosec.post("/mdm/settings/push-certificate", &[("pem", "not a certificate")]).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await.unwrap().contains("id=\"settings-errors\">pem: "));
    let pem = common::push_certificate_pem();
    let topic = "com.apple.mgmt.External.0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b";
    let uploaded = infosec.post("/mdm/settings/push-certificate", &[("pem", &pem)]).await;
    assert_eq!(uploaded.status(), StatusCode::OK);
    assert!(uploaded.text().await.unwrap().contains(&format!("The push certificate for {topic} is in force")));
    let (_, html) = infosec.page("/mdm/settings").await;
    assert!(html.contains(&format!("<code id=\"push-topic\">{topic}</code>")) && !html.contains("None uploaded"));

    // The profiles, unsigned and signed.
    let profile = infosec.get("/mdm/agencies/AAA/enrollment.mobileconfig").await;
    assert_eq!(profile.status(), StatusCode::OK);
    assert_eq!(profile.headers()["content-type"], "application/x-apple-aspen-config");
    let body = profile.text().await.unwrap();
    assert!(body.starts_with("<?xml") && body.contains(topic), "an unsigned profile carries the topic");
    let signed = infosec.get("/mdm/agencies/AAA/enrollment.mobileconfig?signed=1").await;
    assert_eq!(signed.headers()["content-type"], "application/x-apple-aspen-config");
    assert!(!signed.bytes().await.unwrap().starts_with(b"<?xml"), "a signed profile is CMS");
    assert_eq!(infosec.get("/mdm/agencies/ZZZ/enrollment.mobileconfig").await.status(), StatusCode::NOT_FOUND);

    // Challenges: a one-time challenge is shown once; rotating says so.
    let created = infosec.post("/mdm/agencies/AAA/one-time-challenge", &[("hours", "2")]).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let html = created.text().await.unwrap();
    let start = html.find("<code id=\"one-time-challenge\">").expect("the challenge is shown") + 30;
    assert!(html[start..].find("</code>").unwrap() >= 20, "a challenge of 18 random bytes");
    assert!(!infosec.page("/mdm/settings").await.1.contains("one-time-challenge\">"), "shown only once");
    let wrong = infosec.post("/mdm/agencies/AAA/one-time-challenge", &[("hours", "9999")]).await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.text().await.unwrap().contains("hours: must be between 1 and 720"));
    let rotated = infosec.post("/mdm/agencies/AAA/rotate-challenge", &[]).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    assert!(rotated.text().await.unwrap().contains("The enrollment challenge of AAA is replaced"));
}

#[tokio::test]
async fn mdm_pages_follow_the_roles() {
    let app = TestApp::spawn().await;
    app.agency("AAA", "Alpha Agency").await;
    app.user_with_token("auditor@x.example", Role::Auditor, None).await;
    app.user_with_token("viewer@aaa.example", Role::AgencyViewer, Some("AAA")).await;
    app.user_with_token("infosec@x.example", Role::Infosec, None).await;
    let (enrollment, _) = app.enrollment_on("AAA", "UDID-ROLES-0001").await;
    let command = app.command_for(&enrollment).await;

    // An auditor reads, and is offered nothing to change.
    let auditor = Console::sign_in(&app, "auditor@x.example").await;
    let (status, html) = auditor.page("/mdm/settings").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("push-certificate-form") && !html.contains("enrollment.mobileconfig"), "{html}");
    let (status, html) = auditor.page(&format!("/mdm/enrollments/{enrollment}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("id=\"command-{command}\"")), "the auditor sees the queue");
    assert!(!html.contains("command-form") && !html.contains("/cancel"), "but no form to change it");
    let upload = auditor.post("/mdm/settings/push-certificate", &[("pem", &common::push_certificate_pem())]).await;
    assert_eq!(upload.status(), StatusCode::FORBIDDEN);
    let queue = format!("/mdm/enrollments/{enrollment}/commands");
    assert_eq!(auditor.post(&queue, &[("request_type", "SecurityInfo")]).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(auditor.post(&format!("/mdm/commands/{command}/cancel"), &[]).await.status(), StatusCode::FORBIDDEN);

    // An agency viewer has no MDM at all.
    let viewer = Console::sign_in(&app, "viewer@aaa.example").await;
    assert!(!viewer.page("/").await.1.contains("href=\"/mdm\""), "no MDM navigation");
    for path in [
        "/mdm".to_string(),
        "/mdm/settings".into(),
        "/mdm/ca.pem".into(),
        format!("/mdm/enrollments/{enrollment}"),
        "/mdm/agencies/AAA/enrollment.mobileconfig".into(),
    ] {
        let status = viewer.get(&path).await.status();
        assert!(matches!(status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND), "{path}: {status}");
    }
    let rotate = viewer.post("/mdm/agencies/AAA/rotate-challenge", &[]).await.status();
    assert!(matches!(rotate, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND), "{rotate}");

    // The inventory device page links its enrollment, for MDM readers only.
    let model = custody_domain::catalog::ModelInput {
        device_type: Some("tablet".into()),
        platform: Some("ios".into()),
        maker: Some("Apple".into()),
        model: Some("iPad 11".into()),
        ..Default::default()
    };
    let system = custody_app::Actor::system("test");
    let model = custody_app::catalog::create_model(app.app(), &system, model).await.unwrap().id;
    let enrolled = app.device_in_state("AAA", &model, custody_domain::device::DeviceState::InService).await;
    let bare = app.device_in_state("AAA", &model, custody_domain::device::DeviceState::InService).await;
    app.exec_owned(format!("UPDATE mdm_enrollments SET device_id = '{enrolled}' WHERE id = '{enrollment}'")).await;
    let infosec = Console::sign_in(&app, "infosec@x.example").await;
    let (status, html) = infosec.page(&format!("/devices/{enrolled}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("<a href=\"/mdm/enrollments/{enrollment}\" id=\"mdm-enrollment\">")), "{html}");
    let (_, html) = infosec.page(&format!("/devices/{bare}")).await;
    assert!(html.contains("Not enrolled in MDM.") && !html.contains("mdm-enrollment"));
    let (_, html) = infosec.page(&format!("/mdm/enrollments/{enrollment}")).await;
    assert!(html.contains(&format!("<a href=\"/devices/{enrolled}\" id=\"inventory-link\">")));
    let (status, html) = viewer.page(&format!("/devices/{enrolled}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("device-mdm") && !html.contains("/mdm/enrollments/"), "no MDM section for the viewer");
}

#[tokio::test]
async fn euc_joins_an_unmatched_enrollment_to_its_device_in_the_console() {
    let app = TestApp::spawn().await;
    app.agency("AAA", "Alpha Agency").await;
    app.user_with_token("euc@x.example", Role::Euc, None).await;
    let (enrollment, _) = app.enrollment_on("AAA", "UDID-UNMATCHED-0001").await;
    let model = ModelInput {
        device_type: Some("tablet".into()),
        platform: Some("ios".into()),
        maker: Some("Apple".into()),
        model: Some("iPad 11".into()),
        ..Default::default()
    };
    let system = custody_app::Actor::system("test");
    let model = custody_app::catalog::create_model(app.app(), &system, model).await.unwrap().id;
    let device = app.device_in_state("AAA", &model, custody_domain::device::DeviceState::Ordered).await;
    let euc = Console::sign_in(&app, "euc@x.example").await;

    let (_, html) = euc.page("/mdm?unmatched=1").await;
    assert!(html.contains("UDID-UNMATCHED-0001") && html.contains("not in inventory"), "{html}");
    let (_, html) = euc.page(&format!("/mdm/enrollments/{enrollment}")).await;
    assert!(html.contains("id=\"link-form\""), "EUC is offered the link form");

    let path = format!("/mdm/enrollments/{enrollment}/link");
    let unknown = euc.post(&path, &[("device_id", "no-such-device")]).await;
    assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = unknown.text().await.unwrap();
    assert!(html.contains("device_id: no device of this enrollment") && html.contains("value=\"no-such-device\""));
    let linked = euc.post(&path, &[("device_id", device.as_str())]).await;
    assert_eq!(linked.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&linked), format!("/mdm/enrollments/{enrollment}?done=linked"));
    let (_, html) = euc.page(&location(&linked)).await;
    assert!(html.contains("joined to its inventory device") && html.contains(&format!("href=\"/devices/{device}\"")));
    assert!(!html.contains("id=\"link-form\""), "a joined enrollment has no link form");
    let (_, html) = euc.page("/mdm?unmatched=1").await;
    assert!(!html.contains("UDID-UNMATCHED-0001") && html.contains("Every enrollment here is joined"), "{html}");
}

#[tokio::test]
async fn a_second_security_officer_decides_erase_requests_in_the_console() {
    let app = TestApp::spawn().await;
    app.agency("AAA", "Alpha Agency").await;
    app.user_with_token("sec@x.example", Role::Infosec, None).await;
    app.user_with_token("euc@x.example", Role::Euc, None).await;
    let (first, _) = app.enrollment_on("AAA", "UDID-ERASE-0001").await;
    let (second, _) = app.enrollment_on("AAA", "UDID-ERASE-0002").await;
    let approve_me = app.erase_request_for(&first).await;
    let reject_me = app.erase_request_for(&second).await;
    let security = Console::sign_in(&app, "sec@x.example").await;
    let euc = Console::sign_in(&app, "euc@x.example").await;

    let (status, html) = security.page("/mdm/erase-requests").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("action=\"/mdm/erase-requests/{approve_me}/approve\"")), "{html}");
    let (_, html) = euc.page("/mdm/erase-requests").await;
    assert!(
        html.contains(&format!("id=\"erase-{approve_me}\"")) && !html.contains("/approve\""),
        "EUC sees, cannot decide"
    );

    let path = format!("/mdm/erase-requests/{approve_me}/approve");
    let forged = no_redirects()
        .post(format!("{}{path}", app.base))
        .header("cookie", format!("custody_session={}", security.cookie))
        .form(&[("note", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let approved = security.post(&path, &[("note", "confirmed stolen")]).await;
    assert_eq!(approved.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&approved), "/mdm/erase-requests?done=approved");
    let queued = custody_app::mdm::commands(
        app.app(),
        &custody_app::Actor::system("test"),
        custody_app::mdm::CommandQuery { batch: Some(approve_me.clone()), ..Default::default() },
    )
    .await
    .unwrap();
    assert_eq!(queued.items.iter().map(|c| c.request_type.as_str()).collect::<Vec<_>>(), ["EraseDevice"]);

    let path = format!("/mdm/erase-requests/{reject_me}/reject");
    let bare = security.post(&path, &[("note", "")]).await;
    assert_eq!(bare.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bare.text().await.unwrap().contains("note:"));
    let rejected = security.post(&path, &[("note", "found it")]).await;
    assert_eq!(location(&rejected), "/mdm/erase-requests?done=rejected");
    let (_, html) = security.page(&location(&rejected)).await;
    assert!(
        html.contains("nothing is erased") && html.contains("found it") && html.contains("No erase waits"),
        "{html}"
    );
}

#[tokio::test]
async fn a_sanitization_by_remote_erase_is_asked_from_the_device_page() {
    let app = TestApp::spawn().await;
    app.agency("AAA", "Alpha Agency").await;
    app.user_with_token("euc@x.example", Role::Euc, None).await;
    let model = ModelInput {
        device_type: Some("tablet".into()),
        platform: Some("ios".into()),
        maker: Some("Apple".into()),
        model: Some("iPad 11".into()),
        ..Default::default()
    };
    let system = custody_app::Actor::system("test");
    let model = custody_app::catalog::create_model(app.app(), &system, model).await.unwrap().id;
    let device = app.device_in_state("AAA", &model, custody_domain::device::DeviceState::Sanitizing).await;
    let (enrollment, _) = app.enrollment_on("AAA", "UDID-WIPE-0001").await;
    app.exec_owned(format!("UPDATE mdm_enrollments SET device_id = '{device}' WHERE id = '{enrollment}'")).await;
    let euc = Console::sign_in(&app, "euc@x.example").await;
    let (_, html) = euc.page(&format!("/devices/{device}")).await;
    assert!(html.contains("id=\"s-remote_erase\""), "the sanitization form offers the remote erase");

    let record = common::sanitization_record("clear");
    let mut fields: Vec<(String, String)> =
        record.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect();
    fields.push(("remote_erase".into(), "1".into()));
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let done = euc.post(&format!("/devices/{device}/sanitize"), &fields).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let (_, html) = euc.page(&format!("/devices/{device}")).await;
    assert!(html.contains("remote erase: validated by a second person once the device acknowledged it"), "{html}");
    let waiting = custody_app::erase::list(app.app(), &system, Some("pending")).await.unwrap();
    assert_eq!(waiting.len(), 1, "EUC's erase waits for security");
}

#[tokio::test]
async fn billing_pages_follow_the_roles_and_download_what_the_api_exports() {
    let app = TestApp::spawn().await;
    app.agency("AAA", "Alpha Agency").await;
    app.agency("BBB", "Beta Agency").await;
    app.user_with_token("billing@x.example", Role::Billing, None).await;
    app.user_with_token("auditor@x.example", Role::Auditor, None).await;
    app.user_with_token("viewer@aaa.example", Role::AgencyViewer, Some("AAA")).await;
    app.user_with_token("requester@aaa.example", Role::AgencyRequester, Some("AAA")).await;
    let model = custody_domain::catalog::ModelInput {
        device_type: Some("smartphone".into()),
        platform: Some("ios".into()),
        maker: Some("Apple".into()),
        model: Some("iPhone roles".into()),
        ..Default::default()
    };
    let model =
        custody_app::catalog::create_model(app.app(), &custody_app::Actor::system("test"), model).await.unwrap().id;
    let own = common::billing::closed_invoice(&app, "AAA", &model).await;
    let foreign = common::billing::closed_invoice(&app, "BBB", &model).await;

    // The billing officer's forms need the session's CSRF token.
    let billing = Console::sign_in(&app, "billing@x.example").await;
    let before = app.audit_count().await;
    let url = format!("{}/billing/adjustments", app.base);
    let forged = billing
        .client
        .post(url)
        .header("cookie", format!("custody_session={}", billing.cookie))
        .form(&[("agency", "AAA"), ("amount", "-1.00"), ("reason", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.audit_count().await, before);
    let entered =
        billing.post("/billing/adjustments", &[("agency", "AAA"), ("amount", "-1.00"), ("reason", "typo")]).await;
    assert_eq!(entered.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.audit_count().await, before + 1);
    let refused = billing.post("/billing/close", &[("period", "2999-01")]).await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);

    // The downloads are the API's exports, byte for byte.
    let token = app.token_for_email("billing@x.example").await;
    for (format, content_type) in [
        ("csv", "text/csv; charset=utf-8"),
        ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("pdf", "application/pdf"),
    ] {
        let page = billing.get(&format!("/billing/invoices/{own}/download/{format}")).await;
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()["content-type"], content_type);
        let api = app.get(&format!("/api/v1/billing/invoices/{own}/export?format={format}"), &token).await;
        let (page, api) = (page.bytes().await.unwrap(), api.bytes().await.unwrap());
        if format == "csv" {
            assert_eq!(page, api);
        } else {
            assert!(
                page.len() > 500 && page.len().abs_diff(api.len()) < 64,
                "{format}: {} vs {}",
                page.len(),
                api.len()
            );
        }
    }

    // An auditor reads everything and changes nothing.
    let auditor = Console::sign_in(&app, "auditor@x.example").await;
    let (status, html) = auditor.page("/billing").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("billing-periods") && !html.contains("close-next"), "{html}");
    let (_, html) = auditor.page("/billing/entries").await;
    assert!(!html.contains("adjustment-form"));
    assert_eq!(auditor.post("/billing/close", &[("period", "2999-01")]).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(auditor.get("/billing/close").await.status(), StatusCode::FORBIDDEN);

    // An agency viewer reads its own invoices and statements only.
    let viewer = Console::sign_in(&app, "viewer@aaa.example").await;
    let (status, html) = viewer.page("/billing").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("-AAA-CB") && !html.contains("BBB"), "{html}");
    assert_eq!(viewer.get(&format!("/billing/invoices/{own}")).await.status(), StatusCode::OK);
    assert_eq!(viewer.get(&format!("/billing/invoices/{foreign}")).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(viewer.get(&format!("/billing/invoices/{foreign}/download/pdf")).await.status(), StatusCode::NOT_FOUND);
    let (status, _) = viewer.page("/billing/statements?agency=BBB&quarter=2023-Q1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, html) = viewer.page("/billing/statements?agency=AAA&quarter=2023-Q1").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("statement-total"), "{html}");
    let forbidden =
        viewer.post("/billing/adjustments", &[("agency", "AAA"), ("amount", "-1.00"), ("reason", "x")]).await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);

    // A requester has no billing at all.
    let requester = Console::sign_in(&app, "requester@aaa.example").await;
    assert!(!requester.page("/").await.1.contains("href=\"/billing\""));
    assert_eq!(requester.get("/billing").await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn administrators_run_a_job_from_the_jobs_page_and_auditors_only_read_it() {
    let app = TestApp::spawn_with(custody_store::testing::TestDb::sqlite().await, |c| c.run_jobs = false).await;
    app.user_with_token("admin@x.example", Role::Admin, None).await;
    app.user_with_token("audit@x.example", Role::Auditor, None).await;
    app.user_with_token("desk@x.example", Role::ServiceDesk, None).await;
    let get = |cookie: String, path: &'static str| {
        no_redirects().get(format!("{}{path}", app.base)).header("cookie", format!("custody_session={cookie}")).send()
    };

    let (admin, csrf) = app.sign_in("admin@x.example", PASSWORD).await;
    let page = get(admin.clone(), "/jobs").await.unwrap().text().await.unwrap();
    assert!(page.contains("usage.deem") && page.contains("compliance.evaluate"), "every job listed");
    assert!(page.contains("action=\"/jobs/sessions.sweep/run\""), "an administrator may run one");
    let post = |form: Vec<(&'static str, String)>| {
        no_redirects()
            .post(format!("{}/jobs/compliance.evaluate/run", app.base))
            .header("cookie", format!("custody_session={admin}"))
            .form(&form)
            .send()
    };
    assert_eq!(post(Vec::new()).await.unwrap().status(), StatusCode::FORBIDDEN, "no CSRF token, no run");
    let ran = post(vec![("csrf_token", csrf)]).await.unwrap();
    assert_eq!(ran.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&ran), "/jobs?ran=compliance.evaluate");
    let page = get(admin.clone(), "/jobs?ran=compliance.evaluate").await.unwrap().text().await.unwrap();
    assert!(page.contains("compliance.evaluate ran on this node."), "{page}");
    let echoed = get(admin, "/jobs?ran=%3Cscript%3E").await.unwrap().text().await.unwrap();
    assert!(!echoed.contains("job-message"), "only a job's own name is shown back");

    let (auditor, _) = app.sign_in("audit@x.example", PASSWORD).await;
    let page = get(auditor, "/jobs").await.unwrap().text().await.unwrap();
    assert!(page.contains("compliance.evaluate") && !page.contains("Run now"), "auditors read, without the button");
    let (desk, _) = app.sign_in("desk@x.example", PASSWORD).await;
    assert_eq!(get(desk, "/jobs").await.unwrap().status(), StatusCode::FORBIDDEN);
}
