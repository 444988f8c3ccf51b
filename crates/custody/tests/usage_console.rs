//! The biannual usage report in the console and its exports: the page with its charts' figures,
//! recommendations and rows; the agency approver's answers through its forms; another agency's
//! report as the 404 page; the XLSX and PDF read back (with every row of a report larger than a
//! page of the store), the same bytes from the console as from the API; the people and the
//! devices with no carrier line on the page and in the exports. On SQLite and, when configured,
//! PostgreSQL.

mod common;

use common::usage::{csv, line, month};
use common::{PASSWORD, TestApp};
use custody_domain::role::Role;
use custody_store::testing::TestDb;
use reqwest::StatusCode;
use serde_json::Value;

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
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { app, cookie, csrf, client }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        let url = format!("{}{path}", self.app.base);
        self.client.get(url).header("cookie", format!("custody_session={}", self.cookie)).send().await.unwrap()
    }

    async fn page(&self, path: &str) -> (StatusCode, String) {
        let response = self.get(path).await;
        (response.status(), response.text().await.unwrap())
    }

    /// Posts a form with the session's CSRF token (unless `csrf` is false).
    async fn post(&self, path: &str, fields: &[(&str, &str)], csrf: bool) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        if csrf {
            form.push(("csrf_token", &self.csrf));
        }
        let url = format!("{}{path}", self.app.base);
        let cookie = format!("custody_session={}", self.cookie);
        self.client.post(url).header("cookie", cookie).form(&form).send().await.unwrap()
    }
}

fn location(response: &reqwest::Response) -> String {
    response.headers().get("location").map(|l| l.to_str().unwrap().to_string()).unwrap_or_default()
}

struct Fleet {
    app: TestApp,
    /// The report issued over the fleet's six months.
    report: String,
    /// Its recommendations, as the API lists them.
    recommendations: Vec<Value>,
    approver: String,
}

/// A device of `device_type` held by `holder` (when given), with a line `phone` in it.
async fn held(app: &TestApp, model: &str, device_type: &str, holder: Option<&str>, phone: &str) {
    let device = app.device_in_state("AAA", model, custody_domain::device::DeviceState::InService).await;
    let holder = holder.map_or("NULL".to_string(), |h| format!("'{h}'"));
    app.exec_owned(format!(
        "UPDATE devices SET device_type = '{device_type}', holder_id = {holder}, serial = 'SER{}' WHERE id = '{device}'",
        &phone[8..]
    ))
    .await;
    line(app, "AAA", phone, Some(&device)).await;
}

/// Alpha Agency (AAA) and Beta Agency (BBB) with their users; AAA's lines over six months: Ana's
/// smartphone busy, Ben's smartphone voice only, Cy's smartphone, a tablet and a line in no
/// device all silent. Its report is issued.
async fn fleet(db: TestDb) -> Fleet {
    let app = TestApp::spawn_with(db, |_| {}).await;
    app.agency("AAA", "Alpha Agency").await;
    app.agency("BBB", "Beta Agency").await;
    let (_, approver) = app.user_with_token("approver@aaa.example", Role::AgencyApprover, Some("AAA")).await;
    app.user_with_token("viewer@aaa.example", Role::AgencyViewer, Some("AAA")).await;
    app.user_with_token("approver@bbb.example", Role::AgencyApprover, Some("BBB")).await;
    app.user_with_token("billing@x.example", Role::Billing, None).await;
    app.user_with_token("euc@x.example", Role::Euc, None).await;
    let input = custody_domain::catalog::ModelInput {
        device_type: Some("smartphone".into()),
        platform: Some("ios".into()),
        maker: Some("Apple".into()),
        model: Some("iPhone usage".into()),
        ..Default::default()
    };
    let system = custody_app::Actor::system("test");
    let model = custody_app::catalog::create_model(app.app(), &system, input).await.unwrap().id;
    let (ana, ben, cy) = (
        app.person("AAA", "Ana", "Ruiz").await,
        app.person("AAA", "Ben", "Adams").await,
        app.person("AAA", "Cy", "Moss").await,
    );
    held(&app, &model, "smartphone", Some(&ana), "+15185550401").await;
    held(&app, &model, "smartphone", Some(&ben), "+15185550402").await;
    held(&app, &model, "smartphone", Some(&cy), "+15185550403").await;
    line(&app, "AAA", "+15185550404", None).await;
    held(&app, &model, "tablet", None, "+15185550405").await;
    let mut rows = Vec::new();
    for back in 0..6 {
        let m = month(&app, back);
        rows.push(format!("+15185550401,Verizon,{m},300,40,2500,0,voice_data"));
        rows.push(format!("+15185550402,Verizon,{m},45,3,0,0,voice_data"));
        rows.push(format!("+15185550403,Verizon,{m},0,0,0,0,voice_data"));
        rows.push(format!("+15185550404,Verizon,{m},0,0,0,0,voice_data"));
        rows.push(format!("+15185550405,Verizon,{m},0,0,0,0,data_only"));
    }
    let file = custody_app::usage::UsageFile {
        name: "fleet.csv".into(),
        xlsx: false,
        data: custody_app::usage::FileData::Bytes(csv(&rows).into_bytes().into()),
    };
    custody_app::usage::import(app.app(), &system, &file, &|_, _| {}).await.unwrap();
    let issued =
        custody_app::usage_reports::issue_at(app.app(), &system, "AAA", custody_store::now_ms()).await.unwrap();
    let report = issued.report.id;
    let detail: Value = app.get(&format!("/api/v1/usage/reports/{report}"), &approver).await.json().await.unwrap();
    let recommendations = detail["recommendation_items"].as_array().unwrap().clone();
    Fleet { app, report, recommendations, approver }
}

impl Fleet {
    /// The id of the recommendation of `kind` for `phone`.
    fn recommendation(&self, kind: &str, phone: &str) -> String {
        let found = self
            .recommendations
            .iter()
            .find(|r| r["kind"] == kind && r["phone_number"] == phone)
            .unwrap_or_else(|| panic!("{kind} for {phone}: {:?}", self.recommendations));
        found["id"].as_str().unwrap().to_string()
    }
}

#[tokio::test]
async fn the_report_page_shows_its_rows_charts_and_recommendations_to_its_agency_only() {
    for db in TestDb::all().await {
        let label = db.label;
        let f = fleet(db).await;
        let (app, id) = (&f.app, &f.report);
        assert_eq!(f.recommendations.len(), 4, "{label}: {:?}", f.recommendations);

        let approver = Console::sign_in(app, "approver@aaa.example").await;
        let (status, html) = approver.page("/usage/reports").await;
        assert_eq!(status, StatusCode::OK, "{label}");
        assert!(html.contains("<a href=\"/usage\" aria-current=\"page\">Usage</a>"), "{label}: the Usage nav entry");
        assert!(html.contains(&format!("href=\"/usage/reports/{id}\"")), "{label}: {html}");
        assert!(!html.contains("issue-form") && !html.contains("usage-filter"), "{label}: agency users issue nothing");

        let (status, html) = approver.page(&format!("/usage/reports/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{label}");
        let window = format!("{} to {}", month(app, 5), month(app, 0));
        assert!(html.contains(&format!("<dd id=\"report-window\">{window}</dd>")), "{label}: {html}");
        assert!(html.contains("Alpha Agency (AAA)") && html.contains("<dd id=\"report-lines\">5</dd>"), "{label}");
        // Every row, with its holder and activity level.
        for phone in ["+15185550401", "+15185550402", "+15185550403", "+15185550404", "+15185550405"] {
            assert!(html.contains(&format!("<td>{phone}</td>")), "{label}: row {phone}");
        }
        assert!(html.contains(">Ana Ruiz</a>") && html.contains("<td>voice only</td>"), "{label}");
        // The charts' figures: smartphones 1 inactive, 1 voice only, 1 active; a tablet and a
        // line in no device inactive; three inactive lines in all.
        for (device_type, series, value) in [
            ("smartphone", "Inactive", 1),
            ("smartphone", "Voice only", 1),
            ("smartphone", "Active", 1),
            ("tablet", "Inactive", 1),
            ("no device", "Inactive", 1),
        ] {
            let segment = format!("data-label=\"{device_type}\" data-series=\"{series}\" data-value=\"{value}\"");
            assert!(html.contains(&segment), "{label}: {segment}");
        }
        assert!(html.contains("data-label=\"Inactive\" data-value=\"3\""), "{label}: lines by activity level");
        assert!(html.contains("<td id=\"level-1\">3</td>"), "{label}: three inactive lines in the table");
        // Two inactive lines in devices at the MDM service's $15.00; the line in no device costs nothing.
        assert!(html.contains("<span class=\"big\" id=\"inactive-cost\">$30.00</span>"), "{label}");
        assert!(html.contains("data-label=\"smartphone\" data-value=\"1500\""), "{label}: the cost chart");
        assert!(html.contains("1 inactive lines in no known device are not counted"), "{label}");
        // The recommendations, each answerable by the approver.
        for r in &f.recommendations {
            let rec = r["id"].as_str().unwrap();
            assert!(html.contains(&format!("id=\"rec-{rec}\"")), "{label}: {r}");
            assert!(html.contains(&format!("id=\"accept-{rec}\"")), "{label}: the approver answers {r}");
            assert!(html.contains(&format!("<td>{}</td>", r["detail"].as_str().unwrap())), "{label}: {r}");
        }
        assert!(html.contains("4, 4 awaiting an answer"), "{label}");

        // The agency's viewer reads it but answers nothing.
        let viewer = Console::sign_in(app, "viewer@aaa.example").await;
        let (status, html) = viewer.page(&format!("/usage/reports/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{label}");
        assert!(html.contains("id=\"recommendations\"") && !html.contains("id=\"accept-"), "{label}");

        // Another agency's report is not there for Beta's approver, nor its downloads.
        let foreign = Console::sign_in(app, "approver@bbb.example").await;
        let (status, html) = foreign.page(&format!("/usage/reports/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{label}");
        assert!(html.contains("id=\"not-found\"") && !html.contains("+15185550401"), "{label}");
        let (_, missing) = foreign.page("/usage/reports/no-such-report").await;
        assert_eq!(missing, html, "{label}: a foreign report looks exactly like a missing one");
        assert_eq!(foreign.get(&format!("/usage/reports/{id}/download/pdf")).await.status(), StatusCode::NOT_FOUND);
        let (_, list) = foreign.page("/usage/reports").await;
        assert!(list.contains("No report yet.") && !list.contains(id.as_str()), "{label}: Beta's list is empty");

        // Central IT without usage reading has no Usage entry and is refused the page.
        let euc = Console::sign_in(app, "euc@x.example").await;
        let (status, _) = euc.page(&format!("/usage/reports/{id}")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{label}");
        assert!(!euc.page("/").await.1.contains("href=\"/usage\""), "{label}");
    }
}

#[tokio::test]
async fn central_it_filters_by_agency_and_issues_a_report_from_the_list() {
    for db in TestDb::all().await {
        let label = db.label;
        let f = fleet(db).await;
        let billing = Console::sign_in(&f.app, "billing@x.example").await;
        let (status, html) = billing.page("/usage/reports").await;
        assert_eq!(status, StatusCode::OK, "{label}");
        assert!(html.contains("id=\"issue-form\"") && html.contains(&f.report), "{label}");
        let (_, filtered) = billing.page("/usage/reports?agency=BBB").await;
        assert!(filtered.contains("No report yet.") && !filtered.contains(&f.report), "{label}: the agency filter");

        // Without choosing an agency the form names the field; then Beta's report is issued
        // once, and issuing it again shows the same one.
        let refused = billing.post("/usage/reports", &[("agency", "")], true).await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{label}");
        assert!(refused.text().await.unwrap().contains("agency: choose the agency"), "{label}");
        let forged = billing.post("/usage/reports", &[("agency", "BBB")], false).await;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN, "{label}: no CSRF token");
        let issued = billing.post("/usage/reports", &[("agency", "BBB")], true).await;
        assert_eq!(issued.status(), StatusCode::SEE_OTHER, "{label}");
        let to = location(&issued);
        assert!(to.starts_with("/usage/reports/") && to.ends_with("?done=issued"), "{label}: {to}");
        let again = billing.post("/usage/reports", &[("agency", "BBB")], true).await;
        assert_eq!(location(&again), to.replace("done=issued", "done=already"), "{label}");
        let (_, html) = billing.page(&to).await;
        assert!(html.contains("Beta Agency (BBB)") && html.contains("The report recommends nothing."), "{label}");
        assert!(!html.contains("id=\"accept-"), "{label}: central IT does not answer");

        // An agency approver may not issue.
        let approver = Console::sign_in(&f.app, "approver@aaa.example").await;
        let refused = approver.post("/usage/reports", &[("agency", "AAA")], true).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{label}");
    }
}

#[tokio::test]
async fn the_agency_approver_accepts_one_and_rejects_one_with_an_explanation() {
    for db in TestDb::all().await {
        let label = db.label;
        let f = fleet(db).await;
        let (app, id) = (&f.app, &f.report);
        let eliminate = f.recommendation("eliminate_line", "+15185550403");
        let voice_only = f.recommendation("convert_to_voice_only", "+15185550402");
        let approver = Console::sign_in(app, "approver@aaa.example").await;

        // A rejection without an explanation is refused, naming the field beside its form.
        let path = format!("/usage/recommendations/{voice_only}/reject");
        let refused = approver.post(&path, &[("report", id), ("explanation", "  ")], true).await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{label}");
        let html = refused.text().await.unwrap();
        assert!(html.contains("explanation: is required to reject a recommendation"), "{label}: {html}");
        assert!(
            html.contains(&format!(
                "id=\"explanation-{voice_only}\" name=\"explanation\" rows=\"2\" aria-invalid=\"true\""
            )),
            "{label}: the field is marked"
        );
        assert_eq!(approver.post(&path, &[("report", id), ("explanation", "x")], false).await.status(), 403);

        let rejected =
            approver.post(&path, &[("report", id), ("explanation", "Needed for field inspections")], true).await;
        assert_eq!(rejected.status(), StatusCode::SEE_OTHER, "{label}");
        assert_eq!(location(&rejected), format!("/usage/reports/{id}?done=reject#rec-{voice_only}"), "{label}");
        let accepted =
            approver.post(&format!("/usage/recommendations/{eliminate}/accept"), &[("report", id)], true).await;
        assert_eq!(accepted.status(), StatusCode::SEE_OTHER, "{label}");

        // Both answers are on the page; the accepted one links its request; neither has forms.
        let detail: Value = app.get(&format!("/api/v1/usage/reports/{id}"), &f.approver).await.json().await.unwrap();
        let item = |rec: &str| {
            detail["recommendation_items"].as_array().unwrap().iter().find(|r| r["id"] == rec).unwrap().clone()
        };
        assert_eq!(item(&voice_only)["status"], "rejected", "{label}");
        assert_eq!(item(&voice_only)["explanation"], "Needed for field inspections", "{label}");
        let request = item(&eliminate)["request_id"].as_str().expect("a request carries it out").to_string();
        let filed: Value = app.get(&format!("/api/v1/requests/{request}"), &f.approver).await.json().await.unwrap();
        assert_eq!(filed["type"], "return_device", "{label}: the silent smartphone goes back");
        let (_, html) = approver.page(&format!("/usage/reports/{id}?done=accept")).await;
        assert!(html.contains("Accepted: the service request that carries it out is filed."), "{label}");
        assert!(html.contains(&format!("href=\"/requests/{request}\"")), "{label}: the request link");
        assert!(html.contains("Needed for field inspections") && html.contains(">rejected</span>"), "{label}");
        assert!(html.contains(">accepted</span>"), "{label}");
        for rec in [&voice_only, &eliminate] {
            assert!(!html.contains(&format!("id=\"accept-{rec}\"")), "{label}: {rec} is answered");
        }
        assert!(html.contains("4, 2 awaiting an answer"), "{label}");
        // Answering again is refused with the reason.
        let again = approver.post(&path, &[("report", id), ("explanation", "twice")], true).await;
        assert_eq!(again.status(), StatusCode::CONFLICT, "{label}");
        assert!(again.text().await.unwrap().contains("status: the recommendation is rejected already"), "{label}");
        // Beta's approver cannot answer Alpha's.
        let foreign = Console::sign_in(app, "approver@bbb.example").await;
        let other = f.recommendation("eliminate_line", "+15185550405");
        let refused = foreign.post(&format!("/usage/recommendations/{other}/accept"), &[("report", id)], true).await;
        assert_eq!(refused.status(), StatusCode::NOT_FOUND, "{label}");
    }
}

/// Runs `pdftotext -layout` over a PDF and returns its text; fails on anything pdfinfo reports
/// about the file's structure.
fn pdf_text(pdf: &[u8]) -> (String, usize) {
    assert!(pdf.starts_with(b"%PDF-") && pdf.ends_with(b"%%EOF"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.pdf");
    std::fs::write(&path, pdf).unwrap();
    let info = std::process::Command::new("pdfinfo").arg(&path).output().expect("pdfinfo (poppler-utils)");
    let stderr = String::from_utf8_lossy(&info.stderr);
    assert!(info.status.success() && stderr.trim().is_empty(), "pdfinfo: {stderr}");
    let pages = String::from_utf8_lossy(&info.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Pages:").map(|n| n.trim().parse::<usize>().unwrap()))
        .expect("a page count");
    let out =
        std::process::Command::new("pdftotext").args(["-layout"]).arg(&path).arg("-").output().expect("pdftotext");
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    (String::from_utf8_lossy(&out.stdout).to_string(), pages)
}

/// A report written straight to the store with `lines` rows (more than a page of the store's
/// reads) and two recommendations, over a window of its own.
async fn big_report(app: &TestApp, lines: i64) -> String {
    use custody_store::usage_reports::{RecommendationRow, ReportLine, ReportRow};
    let id = custody_store::new_id();
    let now = custody_store::now_ms();
    let rows: Vec<ReportLine> = (1..=lines)
        .map(|n| ReportLine {
            row_no: n,
            phone_number: Some(format!("+1518700{n:04}")),
            line_plan: Some("voice_data".into()),
            device_id: None,
            serial: (n % 3 != 0).then(|| format!("BIG{n:05}")),
            device_type: match n % 3 {
                0 => None,
                1 => Some("smartphone".into()),
                _ => Some("tablet".into()),
            },
            holder_id: None,
            holder_name: Some(format!("Holder {n}")),
            months: 6,
            voice_minutes: n,
            messages: 2 * n,
            data_kb: 1_500 * n,
            international_cents: n % 7,
            activity: Some(["inactive", "voice_only", "low", "active"][(n % 4) as usize].into()),
        })
        .collect();
    let recommendation = |kind: &str, phone: &str| RecommendationRow {
        id: custody_store::new_id(),
        report_id: id.clone(),
        agency_code: "AAA".into(),
        kind: kind.into(),
        line_id: None,
        phone_number: Some(phone.into()),
        device_id: None,
        person_id: None,
        detail: format!("{phone} is silent (big report)"),
        status: "pending".into(),
        explanation: None,
        decided_by: None,
        decided_at: None,
        deadline_at: now + 86_400_000,
        request_id: None,
    };
    let recommendations =
        vec![recommendation("eliminate_line", "+15187000004"), recommendation("convert_to_voice_only", "+15187000008")];
    let report = ReportRow {
        id: id.clone(),
        agency_code: "AAA".into(),
        first_month: "2020-01".into(),
        last_month: "2020-06".into(),
        issued_at: now,
        issued_by: "test".into(),
        deadline_at: now + 86_400_000,
        line_count: lines,
        recommendation_count: 2,
    };
    let mut tx = app.app().store.write().await.unwrap();
    custody_store::usage_reports::insert(&mut tx, &report, &rows, &recommendations).await.unwrap();
    tx.commit().await.unwrap();
    id
}

#[tokio::test]
async fn the_exports_carry_every_row_and_the_recommendations_the_same_from_console_and_api() {
    for db in TestDb::all().await {
        let label = db.label;
        let f = fleet(db).await;
        let app = &f.app;
        let approver = Console::sign_in(app, "approver@aaa.example").await;
        let fetch = |id: String, format: &'static str| {
            let (approver, token) = (&approver, f.approver.clone());
            async move {
                let api = app.get(&format!("/api/v1/usage/reports/{id}/export?format={format}"), &token).await;
                assert_eq!(api.status(), StatusCode::OK, "{format}");
                let disposition = api.headers()["content-disposition"].to_str().unwrap().to_string();
                assert!(disposition.starts_with("attachment; filename=\"usage-report-AAA-"), "{disposition}");
                let api = api.bytes().await.unwrap().to_vec();
                let console = approver.get(&format!("/usage/reports/{id}/download/{format}")).await;
                assert_eq!(console.status(), StatusCode::OK);
                assert_eq!(console.bytes().await.unwrap().to_vec(), api, "{format}: the console's bytes are the API's");
                api
            }
        };

        // The fleet's report: every row, the recommendations with their answers, the summary.
        let voice_only = f.recommendation("convert_to_voice_only", "+15185550402");
        custody_app::usage_reports::respond(
            app.app(),
            &custody_app::Actor::system("test"),
            &voice_only,
            false,
            Some("Needed for field inspections"),
        )
        .await
        .unwrap();
        let xlsx = fetch(f.report.clone(), "xlsx").await;
        let lines = custody_app::xlsx::read_first_sheet(&xlsx).unwrap();
        assert_eq!(lines[0][..4], ["row", "phone_number", "line_plan", "device_type"], "{label}");
        assert_eq!(lines.len(), 6, "{label}: a heading and five rows");
        let ana = lines.iter().find(|r| r[1] == "+15185550401").unwrap();
        assert_eq!(
            ana[3..],
            ["smartphone", "SER0401", "Ana Ruiz", "6", "1800", "240", "15000.000", "0.00", "active"],
            "{label}"
        );
        let recommendations = custody_app::xlsx::read_sheet(&xlsx, "Recommendations").unwrap().unwrap();
        assert_eq!(recommendations.len(), 5, "{label}: a heading and four recommendations");
        let rejected = recommendations.iter().find(|r| r[1] == "+15185550402").unwrap();
        assert_eq!((rejected[0].as_str(), rejected[3].as_str()), ("convert_to_voice_only", "rejected"), "{label}");
        assert_eq!(rejected[4], "Needed for field inspections", "{label}");
        let summary = custody_app::xlsx::read_sheet(&xlsx, "Summary").unwrap().unwrap();
        let window = format!("{} to {}", month(app, 5), month(app, 0));
        assert!(summary.contains(&vec!["Window".to_string(), window.clone()]), "{label}: {summary:?}");
        assert!(summary.contains(&vec!["Inactive lines".to_string(), "3".into()]), "{label}: {summary:?}");

        let (text, _) = pdf_text(&fetch(f.report.clone(), "pdf").await);
        assert!(text.contains("Biannual usage report: AAA Alpha Agency"), "{label}: {text}");
        assert!(text.contains(&window), "{label}: the window");
        assert!(text.contains("Eliminate the line: pending"), "{label}: {text}");
        assert!(text.contains("Convert to voice only: rejected"), "{label}: {text}");
        assert!(text.contains("Needed for field inspections"), "{label}");
        assert!(text.contains("$30.00 a month"), "{label}: the inactive lines' charge");
        for phone in ["+15185550401", "+15185550405"] {
            assert!(text.lines().any(|l| l.contains(phone) && l.contains("SER")), "{label}: row {phone}");
        }

        // A report larger than a page of the store's reads: every row, in order, in both.
        let big = big_report(app, 4_321).await;
        let xlsx = fetch(big.clone(), "xlsx").await;
        let lines = custody_app::xlsx::read_first_sheet(&xlsx).unwrap();
        assert_eq!(lines.len(), 4_322, "{label}");
        let numbers: Vec<String> = lines[1..].iter().map(|r| r[0].clone()).collect();
        assert_eq!(numbers, (1..=4_321).map(|n| n.to_string()).collect::<Vec<_>>(), "{label}: every row in order");
        assert_eq!(
            lines[4_321],
            [
                "4321",
                "+15187004321",
                "voice_data",
                "smartphone",
                "BIG04321",
                "Holder 4321",
                "6",
                "4321",
                "8642",
                "6481.500",
                "0.02",
                "voice_only"
            ],
            "{label}"
        );
        let (text, pages) = pdf_text(&fetch(big, "pdf").await);
        assert!(pages > 50, "{label}: {pages} pages");
        for n in [1, 2_000, 2_001, 4_000, 4_001, 4_321] {
            let phone = format!("+1518700{n:04}");
            assert!(text.lines().any(|l| l.contains(&phone) && l.contains(&format!("Holder {n}"))), "{label}: row {n}");
        }
        assert!(text.contains(&format!("AAA usage report 2020-01 to 2020-06: lines (page {pages})")), "{label}");

        // Another agency's and an unknown format.
        let (_, foreign) = app.user_with_token("viewer@bbb.example", Role::AgencyViewer, Some("BBB")).await;
        let path = format!("/api/v1/usage/reports/{}/export?format=pdf", f.report);
        assert_eq!(app.get(&path, &foreign).await.status(), StatusCode::NOT_FOUND, "{label}");
        let path = format!("/api/v1/usage/reports/{}/export?format=csv", f.report);
        let problem = common::problem(app.get(&path, &f.approver).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(common::fields(&problem), ["format"], "{label}");
    }
}

#[tokio::test]
async fn the_page_and_exports_show_people_and_devices_without_a_line() {
    for db in TestDb::all().await {
        let label = db.label;
        let f = fleet(db).await;
        let app = &f.app;

        // Alpha's people: Ana active, Ben voice only, Cy inactive (the tablet has no holder).
        let approver = Console::sign_in(app, "approver@aaa.example").await;
        let (status, html) = approver.page(&format!("/usage/reports/{}", f.report)).await;
        assert_eq!(status, StatusCode::OK, "{label}");
        assert!(
            html.contains("<dd id=\"report-people\">3: inactive 1, voice only 1, low 0, active 1</dd>"),
            "{label}: {html}"
        );
        assert!(html.contains("<dd id=\"report-without-line\">0</dd>"), "{label}");
        assert!(html.contains("id=\"report-people-table\""), "{label}");
        assert!(
            html.contains(">Ben Adams</a></td><td>1</td><td>6</td><td>270</td><td>18</td><td>0.000</td><td>$0.00</td><td>voice only</td>"),
            "{label}: Ben's row"
        );
        let xlsx = app.get(&format!("/api/v1/usage/reports/{}/export?format=xlsx", f.report), &f.approver).await;
        let xlsx = xlsx.bytes().await.unwrap().to_vec();
        let people = custody_app::xlsx::read_sheet(&xlsx, "People").unwrap().expect("a People sheet");
        assert_eq!(people.len(), 4, "{label}: a heading and three people");
        assert_eq!(
            people[0][1..],
            ["person", "lines", "months", "voice_minutes", "messages", "data_mb", "international", "activity"]
        );
        let ana = people.iter().find(|p| p[1] == "Ana Ruiz").unwrap();
        assert_eq!(ana[2..], ["1", "6", "1800", "240", "15000.000", "0.00", "active"], "{label}");
        let summary = custody_app::xlsx::read_sheet(&xlsx, "Summary").unwrap().unwrap();
        for (label_, value) in
            [("People", "3"), ("Active people", "1"), ("Inactive people", "1"), ("Devices with no carrier line", "0")]
        {
            assert!(summary.contains(&vec![label_.to_string(), value.to_string()]), "{label}: {label_} in {summary:?}");
        }

        // Beta's Wi-Fi tablet, held by Gus, has no line: a row with its holder and no activity.
        let input = custody_domain::catalog::ModelInput {
            device_type: Some("tablet".into()),
            platform: Some("ipados".into()),
            maker: Some("Apple".into()),
            model: Some("iPad wifi".into()),
            ..Default::default()
        };
        let system = custody_app::Actor::system("test");
        let model = custody_app::catalog::create_model(app.app(), &system, input).await.unwrap().id;
        let gus = app.person("BBB", "Gus", "Hale").await;
        let wifi = app.device_in_state("BBB", &model, custody_domain::device::DeviceState::InService).await;
        app.exec_owned(format!("UPDATE devices SET holder_id = '{gus}', serial = 'WIFI01' WHERE id = '{wifi}'")).await;
        app.device_in_state("BBB", &model, custody_domain::device::DeviceState::Returned).await;
        let beta =
            custody_app::usage_reports::issue_at(app.app(), &system, "BBB", custody_store::now_ms()).await.unwrap();
        let beta = beta.report.id;
        let foreign = Console::sign_in(app, "approver@bbb.example").await;
        let (status, html) = foreign.page(&format!("/usage/reports/{beta}")).await;
        assert_eq!(status, StatusCode::OK, "{label}");
        assert!(html.contains("<dd id=\"report-lines\">0</dd>"), "{label}");
        assert!(html.contains("<dd id=\"report-without-line\">1 (tablet 1)</dd>"), "{label}: {html}");
        assert!(html.contains(">WIFI01</a>") && html.contains(">Gus Hale</a>"), "{label}");
        assert!(html.contains("<td>no carrier line</td>"), "{label}: {html}");
        assert!(html.contains("No person held a line."), "{label}");
        let (_, token) = app.user_with_token("viewer@bbb.example", Role::AgencyViewer, Some("BBB")).await;
        let xlsx = app.get(&format!("/api/v1/usage/reports/{beta}/export?format=xlsx"), &token).await;
        let xlsx = xlsx.bytes().await.unwrap().to_vec();
        let lines = custody_app::xlsx::read_first_sheet(&xlsx).unwrap();
        assert_eq!(
            lines[1..],
            [["1", "", "", "tablet", "WIFI01", "Gus Hale", "", "", "", "", "", "no carrier line"]],
            "{label}: {lines:?}"
        );
        let summary = custody_app::xlsx::read_sheet(&xlsx, "Summary").unwrap().unwrap();
        assert!(
            summary.contains(&vec!["Devices with no carrier line".to_string(), "1 (tablet 1)".into()]),
            "{label}: {summary:?}"
        );
        let pdf = app.get(&format!("/api/v1/usage/reports/{beta}/export?format=pdf"), &token).await;
        let (text, _) = pdf_text(&pdf.bytes().await.unwrap());
        assert!(text.lines().any(|l| l.contains("WIFI01") && l.contains("no carrier line")), "{label}: {text}");
        // Alpha's approver does not see Beta's people.
        let hidden = app.get(&format!("/api/v1/usage/reports/{beta}/people"), &f.approver).await;
        assert_eq!(hidden.status(), StatusCode::NOT_FOUND, "{label}");
    }
}
