//! The biannual usage report: issued once per window with every line and the four
//! recommendations, frozen against later imports; the agency's answers within the window, and
//! the unanswered deemed accepted the day after it closes, each with its service request; each
//! person judged on the months they held each line, and devices with no line listed.

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

/// Imports `rows` of usage as central IT.
async fn import(f: &Fleet, rows: &[String]) {
    let response = f
        .app
        .request(Method::POST, "/api/v1/usage/import", Some(&f.billing))
        .header("content-type", "text/csv")
        .body(csv(rows))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "{}", response.text().await.unwrap());
}

#[tokio::test]
async fn a_report_judges_each_person_on_the_months_they_held_and_lists_devices_without_a_line() {
    let f = fleet().await;
    let app = &f.app;
    let input = custody_domain::catalog::ModelInput {
        device_type: Some("tablet".into()),
        platform: Some("ipados".into()),
        maker: Some("Apple".into()),
        model: Some("iPad people".into()),
        ..Default::default()
    };
    let model =
        custody_app::catalog::create_model(app.app(), &custody_app::Actor::system("test"), input).await.unwrap().id;
    let (dee, eve, fay, gus) = (
        app.person("AAA", "Dee", "Park").await,
        app.person("AAA", "Eve", "Lund").await,
        app.person("AAA", "Fay", "Ortiz").await,
        app.person("AAA", "Gus", "Hale").await,
    );
    // Dee's smartphone only talks (voice only) and her tablet uses a little data (low): summed
    // over her twelve line-months, 500 minutes a month is active.
    held(app, &model, "smartphone", &dee, "+15185550306").await;
    held(app, &model, "tablet", &dee, "+15185550307").await;
    // Eve holds a smartphone for the window's first three months (50 minutes a month), then it
    // passes to Fay, who leaves it silent.
    let handed = held(app, &model, "smartphone", &eve, "+15185550308").await;
    let mut rows = Vec::new();
    for back in 0..6 {
        let m = month(app, back);
        rows.push(format!("+15185550306,Verizon,{m},1000,0,0,0,voice_data"));
        rows.push(format!("+15185550307,Verizon,{m},0,0,50,0,data_only"));
    }
    for back in 3..6 {
        rows.push(format!("+15185550308,Verizon,{},50,5,100,0,voice_data", month(app, back)));
    }
    import(&f, &rows).await;
    app.exec_owned(format!("UPDATE devices SET holder_id = '{fay}' WHERE id = '{handed}'")).await;
    let rows: Vec<String> =
        (0..3).map(|back| format!("+15185550308,Verizon,{},0,0,0,0,voice_data", month(app, back))).collect();
    import(&f, &rows).await;
    // Gus's Wi-Fi tablet has no line; a device in repair with no line and no holder is in use
    // too; a returned one is not.
    let wifi = app.device_in_state("AAA", &model, custody_domain::device::DeviceState::InService).await;
    app.exec_owned(format!("UPDATE devices SET holder_id = '{gus}', serial = 'WIFI01' WHERE id = '{wifi}'")).await;
    let repair = app.device_in_state("AAA", &model, custody_domain::device::DeviceState::InRepair).await;
    let returned = app.device_in_state("AAA", &model, custody_domain::device::DeviceState::Returned).await;

    let (status, issued) = issue(&f).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    assert_eq!(issued["lines"], 8, "{issued}");
    let id = issued["id"].as_str().unwrap();
    let rows: Value = app.get(&format!("/api/v1/usage/reports/{id}/rows"), &f.approver).await.json().await.unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 10, "eight lines and two devices without one: {rows:?}");
    let row = |device: &str| rows.iter().find(|r| r["device_id"] == device).cloned();
    let tablet = row(&wifi).expect("the Wi-Fi tablet is listed");
    assert_eq!(
        (&tablet["phone_number"], &tablet["line_plan"], &tablet["activity"]),
        (&Value::Null, &Value::Null, &Value::Null),
        "{tablet}"
    );
    assert_eq!(
        (tablet["holder_name"].as_str(), tablet["device_type"].as_str(), tablet["serial"].as_str()),
        (Some("Gus Hale"), Some("tablet"), Some("WIFI01"))
    );
    assert_eq!((tablet["months"].as_i64(), tablet["voice_minutes"].as_i64()), (Some(0), Some(0)));
    assert!(tablet["row"].as_i64().unwrap() > 8, "devices follow the lines: {tablet}");
    let in_repair = row(&repair).expect("a device in repair is in use");
    assert_eq!((&in_repair["holder_id"], &in_repair["activity"]), (&Value::Null, &Value::Null));
    assert!(row(&returned).is_none(), "a returned device is not in use");
    let line = rows.iter().find(|r| r["phone_number"] == "+15185550308").unwrap();
    assert_eq!((line["activity"].as_str(), line["holder_name"].as_str()), (Some("low"), Some("Fay Ortiz")));

    // Each person, on the months they held each line.
    let people: Value = app.get(&format!("/api/v1/usage/reports/{id}/people"), &f.approver).await.json().await.unwrap();
    let people = people.as_array().unwrap().clone();
    let person = |id: &str| people.iter().find(|p| p["person_id"] == id).cloned();
    let summary = |p: Value| {
        (
            p["name"].as_str().unwrap().to_string(),
            p["lines"].as_i64().unwrap(),
            p["months"].as_i64().unwrap(),
            p["voice_minutes"].as_i64().unwrap(),
            p["activity"].as_str().unwrap().to_string(),
        )
    };
    let dee = summary(person(&dee).expect("Dee"));
    assert_eq!(dee, ("Dee Park".to_string(), 2, 12, 6_000, "active".to_string()), "two lines summed");
    let mut lines_of_dee: Vec<&str> =
        rows.iter().filter(|r| r["holder_name"] == "Dee Park").map(|r| r["activity"].as_str().unwrap()).collect();
    lines_of_dee.sort();
    assert_eq!(lines_of_dee, ["low", "voice_only"], "neither of her lines is active on its own");
    assert_eq!(summary(person(&eve).expect("Eve")), ("Eve Lund".to_string(), 1, 3, 150, "active".to_string()));
    assert_eq!(person(&eve).unwrap()["data_mb"], "300.000", "only her months");
    assert_eq!(summary(person(&fay).expect("Fay")), ("Fay Ortiz".to_string(), 1, 3, 0, "inactive".to_string()));
    assert!(person(&gus).is_none(), "a Wi-Fi tablet carries no usage");
    let ana = people.iter().find(|p| p["name"] == "Ana Ruiz").unwrap();
    assert_eq!((ana["lines"].as_i64(), ana["months"].as_i64()), (Some(2), Some(12)));
    assert_eq!(people.len(), 6, "Ana, Ben, Cy, Dee, Eve, Fay: {people:?}");

    // Paged by person id.
    let first: Value =
        app.get(&format!("/api/v1/usage/reports/{id}/people?limit=4"), &f.approver).await.json().await.unwrap();
    let first = first.as_array().unwrap();
    assert_eq!(first.len(), 4);
    let after = first[3]["person_id"].as_str().unwrap();
    let rest: Value =
        app.get(&format!("/api/v1/usage/reports/{id}/people?after={after}"), &f.approver).await.json().await.unwrap();
    let ids: Vec<&Value> = first.iter().chain(rest.as_array().unwrap()).map(|p| &p["person_id"]).collect();
    assert_eq!(ids, people.iter().map(|p| &p["person_id"]).collect::<Vec<_>>());

    // Another agency's report is not there, exactly like a missing one.
    app.agency("BBB", "Beta Agency").await;
    let (_, foreign) = app.user_with_token("approver@bbb.example", Role::AgencyApprover, Some("BBB")).await;
    let hidden = app.get(&format!("/api/v1/usage/reports/{id}/people"), &foreign).await;
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND);
    let missing = app.get("/api/v1/usage/reports/no-such-report/people", &foreign).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("request_id");
        v
    };
    assert_eq!(strip(hidden.json().await.unwrap()), strip(missing.json().await.unwrap()));
    assert_eq!(app.get(&format!("/api/v1/usage/reports/{id}/people"), &f.billing).await.status(), StatusCode::OK);
}
