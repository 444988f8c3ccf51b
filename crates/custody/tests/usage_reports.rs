//! The biannual usage report: issued once per window with every line and the four
//! recommendations, frozen against later imports; the agency's answers within the window, and
//! the unanswered deemed accepted the day after it closes, each with its service request.

mod common;

use common::TestApp;
use common::usage::{csv, line, month};
use custody_domain::role::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Fleet {
    app: TestApp,
    billing: String,
    approver: String,
}

async fn database() -> custody_store::testing::TestDb {
    match custody_store::testing::TestDb::postgres_url() {
        Some(url) => custody_store::testing::TestDb::postgres(&url).await,
        None => custody_store::testing::TestDb::sqlite().await,
    }
}

/// A device of `device_type` held by `holder`, with a line `phone` in it.
async fn held(app: &TestApp, model: &str, device_type: &str, holder: &str, phone: &str) -> String {
    let device = app.device_in_state("AAA", model, custody_domain::device::DeviceState::InService).await;
    app.exec_owned(format!(
        "UPDATE devices SET device_type = '{device_type}', holder_id = '{holder}', serial = 'SER{}' WHERE id = '{device}'",
        &phone[8..]
    ))
    .await;
    line(app, "AAA", phone, Some(&device)).await;
    device
}

/// Ana holds a smartphone and a tablet, both with data (tether; review two data plans); Ben's
/// smartphone used no data (convert to voice only); a line in no device was silent (eliminate);
/// Cy's smartphone is busy (nothing). Six months of usage imported.
async fn fleet() -> Fleet {
    let app = TestApp::spawn_with(database().await, |_| {}).await;
    app.agency("AAA", "Alpha Agency").await;
    let (_, billing) = app.user_with_token("billing@x.example", Role::Billing, None).await;
    let (_, approver) = app.user_with_token("approver@aaa.example", Role::AgencyApprover, Some("AAA")).await;
    let input = custody_domain::catalog::ModelInput {
        device_type: Some("smartphone".into()),
        platform: Some("ios".into()),
        maker: Some("Apple".into()),
        model: Some("iPhone report".into()),
        ..Default::default()
    };
    let model =
        custody_app::catalog::create_model(app.app(), &custody_app::Actor::system("test"), input).await.unwrap().id;
    let (ana, ben, cy) = (
        app.person("AAA", "Ana", "Ruiz").await,
        app.person("AAA", "Ben", "Adams").await,
        app.person("AAA", "Cy", "Moss").await,
    );
    held(&app, &model, "smartphone", &ana, "+15185550301").await;
    held(&app, &model, "tablet", &ana, "+15185550302").await;
    held(&app, &model, "smartphone", &ben, "+15185550303").await;
    line(&app, "AAA", "+15185550304", None).await;
    held(&app, &model, "smartphone", &cy, "+15185550305").await;
    let mut rows = Vec::new();
    for back in 0..6 {
        let m = month(&app, back);
        rows.push(format!("+15185550301,Verizon,{m},300,40,2500,0,voice_data"));
        rows.push(format!("+15185550302,Verizon,{m},0,0,900,0,data_only"));
        rows.push(format!("+15185550303,Verizon,{m},45,3,0,0,voice_data"));
        rows.push(format!("+15185550304,Verizon,{m},0,0,0,0,voice_data"));
        rows.push(format!("+15185550305,Verizon,{m},800,120,6000,0,voice_data"));
    }
    let uploaded = app
        .request(Method::POST, "/api/v1/usage/import", Some(&billing))
        .header("content-type", "text/csv")
        .body(csv(&rows))
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    Fleet { app, billing, approver }
}

async fn issue(f: &Fleet) -> (StatusCode, Value) {
    let response =
        f.app.send_json(Method::POST, "/api/v1/usage/reports", Some(&f.billing), &json!({"agency": "AAA"})).await;
    (response.status(), response.json().await.unwrap())
}

fn by_kind<'a>(report: &'a Value, kind: &str) -> Vec<&'a Value> {
    report["recommendation_items"].as_array().unwrap().iter().filter(|r| r["kind"] == kind).collect()
}

#[tokio::test]
async fn a_report_lists_every_line_recommends_and_stays_frozen() {
    let f = fleet().await;
    let (status, issued) = issue(&f).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    assert_eq!((issued["lines"].as_i64(), issued["recommendations"].as_i64()), (Some(5), Some(4)), "{issued}");
    assert_eq!(issued["first_month"], month(&f.app, 5).as_str());
    // Issuing again for the window returns the same report.
    let (status, again) = issue(&f).await;
    assert_eq!((status, &again["id"]), (StatusCode::OK, &issued["id"]));

    let id = issued["id"].as_str().unwrap();
    let report: Value = f.app.get(&format!("/api/v1/usage/reports/{id}"), &f.approver).await.json().await.unwrap();
    for (kind, phone) in [
        ("tether_instead", Some("+15185550302")),
        ("convert_to_voice_only", Some("+15185550303")),
        ("eliminate_line", Some("+15185550304")),
        ("review_multiple_data_plans", None),
    ] {
        let found = by_kind(&report, kind);
        assert_eq!(found.len(), 1, "{kind}: {report}");
        assert_eq!(found[0]["phone_number"].as_str(), phone, "{kind}");
        assert_eq!(found[0]["status"], "pending");
    }
    let rows: Value = f.app.get(&format!("/api/v1/usage/reports/{id}/rows"), &f.approver).await.json().await.unwrap();
    let levels: Vec<(&str, &str)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["phone_number"].as_str().unwrap(), r["activity"].as_str().unwrap()))
        .collect();
    let mut sorted = levels.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            ("+15185550301", "active"),
            ("+15185550302", "active"),
            ("+15185550303", "voice_only"),
            ("+15185550304", "inactive"),
            ("+15185550305", "active")
        ]
    );
    let ana_phone = rows.as_array().unwrap().iter().find(|r| r["phone_number"] == "+15185550301").unwrap();
    assert_eq!((ana_phone["holder_name"].as_str(), ana_phone["months"].as_i64()), (Some("Ana Ruiz"), Some(6)));

    // A later import changes the usage; the issued report does not move.
    let corrected = csv(&[format!("+15185550304,Verizon,{},99,9,99,0,voice_data", month(&f.app, 0))]);
    let response = f
        .app
        .request(Method::POST, "/api/v1/usage/import", Some(&f.billing))
        .header("content-type", "text/csv")
        .body(corrected)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let after: Value = f.app.get(&format!("/api/v1/usage/reports/{id}/rows"), &f.approver).await.json().await.unwrap();
    assert_eq!(after, rows);
    let report_after: Value =
        f.app.get(&format!("/api/v1/usage/reports/{id}"), &f.approver).await.json().await.unwrap();
    assert_eq!(report_after, report);
}

#[tokio::test]
async fn answers_within_the_window_then_the_unanswered_are_deemed_on_day_31() {
    let f = fleet().await;
    let (_, issued) = issue(&f).await;
    let id = issued["id"].as_str().unwrap();
    let report: Value = f.app.get(&format!("/api/v1/usage/reports/{id}"), &f.approver).await.json().await.unwrap();
    let rec = |kind: &str| by_kind(&report, kind)[0]["id"].as_str().unwrap().to_string();
    let respond = |rec: String, body: Value| {
        let app = &f.app;
        let token = f.approver.clone();
        async move {
            app.send_json(Method::POST, &format!("/api/v1/usage/recommendations/{rec}/respond"), Some(&token), &body)
                .await
        }
    };

    // A rejection needs an explanation; central IT does not answer for the agency.
    let refused = respond(rec("tether_instead"), json!({"accept": false})).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "explanation");
    let by_central = f
        .app
        .send_json(
            Method::POST,
            &format!("/api/v1/usage/recommendations/{}/respond", rec("tether_instead")),
            Some(&f.billing),
            &json!({"accept": true}),
        )
        .await;
    assert_eq!(by_central.status(), StatusCode::FORBIDDEN);
    let rejected =
        respond(rec("tether_instead"), json!({"accept": false, "explanation": "Field use without coverage"})).await;
    assert_eq!(rejected.status(), StatusCode::OK);
    let accepted: Value = respond(rec("convert_to_voice_only"), json!({"accept": true})).await.json().await.unwrap();
    assert_eq!(accepted["status"], "accepted");
    let request = accepted["request_id"].as_str().expect("a request carries it out").to_string();
    let filed: Value = f.app.get(&format!("/api/v1/requests/{request}"), &f.approver).await.json().await.unwrap();
    assert_eq!(
        (filed["type"].as_str(), filed["details"]["feature"].as_str()),
        (Some("feature_change"), Some("convert_to_voice_only")),
        "{filed}"
    );
    let again = respond(rec("convert_to_voice_only"), json!({"accept": false, "explanation": "changed my mind"})).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);

    // The clock moves: day 30 deems nothing; the first instant of day 31 deems the rest.
    let issued_at = {
        let mut conn = f.app.app().store.conn().await.unwrap();
        custody_store::usage_reports::get(&mut conn, id).await.unwrap().unwrap()
    };
    let zone = f.app.app().config.billing.zone().unwrap();
    let issue_day = jiff::Timestamp::from_millisecond(issued_at.issued_at).unwrap().to_zoned(zone.clone()).date();
    let at = |days: i64, hour: i8| {
        issue_day
            .checked_add(jiff::Span::new().days(days))
            .unwrap()
            .at(hour, 0, 0, 0)
            .to_zoned(zone.clone())
            .unwrap()
            .timestamp()
            .as_millisecond()
    };
    assert_eq!(custody_app::usage_reports::deem_due(f.app.app(), at(30, 23) + 59 * 60_000).await.unwrap(), 0);
    assert_eq!(issued_at.deadline_at, at(31, 0));
    let late = custody_app::usage_reports::respond_at(
        f.app.app(),
        &custody_app::Actor::system("test"),
        &rec("eliminate_line"),
        true,
        None,
        at(31, 0),
    )
    .await;
    assert!(matches!(late, Err(custody_app::AppError::Conflict { .. })), "{late:?}");
    assert_eq!(custody_app::usage_reports::deem_due(f.app.app(), at(31, 0)).await.unwrap(), 2);
    assert_eq!(custody_app::usage_reports::deem_due(f.app.app(), at(32, 0)).await.unwrap(), 0);

    let report: Value = f.app.get(&format!("/api/v1/usage/reports/{id}"), &f.approver).await.json().await.unwrap();
    let status = |kind: &str| by_kind(&report, kind)[0]["status"].as_str().unwrap().to_string();
    assert_eq!(status("tether_instead"), "rejected");
    assert_eq!(status("convert_to_voice_only"), "accepted");
    assert_eq!(status("eliminate_line"), "deemed_accepted");
    assert_eq!(status("review_multiple_data_plans"), "deemed_accepted");
    // The eliminated line was in no device: its service is suspended.
    let eliminate = by_kind(&report, "eliminate_line")[0];
    let request = eliminate["request_id"].as_str().expect("a request for the deemed recommendation");
    let filed: Value = f.app.get(&format!("/api/v1/requests/{request}"), &f.approver).await.json().await.unwrap();
    assert_eq!(filed["type"], "suspend_service", "{filed}");
    // The request finds its recommendation back.
    let mut conn = f.app.app().store.conn().await.unwrap();
    let back = custody_store::usage_reports::by_request(&mut conn, request).await.unwrap().unwrap();
    assert_eq!(back.id, eliminate["id"].as_str().unwrap());
}
