//! Carrier usage imports through the API and the command line: a bad file writes nothing and
//! names every bad row; a good file imports; the same file again changes nothing; a corrected
//! file replaces its months, audited; the XLSX variant reads the same.

mod common;

use common::TestApp;
use common::usage::{csv, line, month};
use custody_domain::role::Role;
use reqwest::StatusCode;
use serde_json::Value;

/// PostgreSQL when `CUSTODY_TEST_POSTGRES` is set (the import's SQL differs), else SQLite.
async fn database() -> custody_store::testing::TestDb {
    match custody_store::testing::TestDb::postgres_url() {
        Some(url) => custody_store::testing::TestDb::postgres(&url).await,
        None => custody_store::testing::TestDb::sqlite().await,
    }
}

async fn setup() -> (TestApp, String) {
    let app = TestApp::spawn_with(database().await, |_| {}).await;
    app.agency("AAA", "Alpha Agency").await;
    app.agency("BBB", "Beta Agency").await;
    let (_, token) = app.user_with_token("billing@x.example", Role::Billing, None).await;
    for n in 1..=4 {
        line(&app, "AAA", &format!("+1518555010{n}"), None).await;
    }
    line(&app, "BBB", "+15185550201", None).await;
    (app, token)
}

async fn upload(app: &TestApp, token: &str, body: String) -> reqwest::Response {
    app.request(reqwest::Method::POST, "/api/v1/usage/import?file_name=verizon.csv", Some(token))
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn months_recorded(app: &TestApp) -> i64 {
    let mut conn = app.app().store.conn().await.unwrap();
    custody_store::usage::count_months(&mut conn, 0, i64::MAX).await.unwrap()
}

#[tokio::test]
async fn a_file_with_one_bad_row_of_each_kind_writes_nothing_and_names_every_row() {
    let (app, token) = setup().await;
    let (m, earlier) = (month(&app, 0), month(&app, 1));
    let file = csv(&[
        format!("+15185550101,Verizon,{m},120,14,350.5,0,voice_data"), // row 2: good
        format!("+15185559999,Verizon,{m},1,1,1,0,voice_data"),        // row 3: unknown number
        format!("518-555,Verizon,{m},1,1,1,0,voice_data"),             // row 4: malformed number
        format!("+15185550102,Verizon,{m},-5,1,1,0,voice_data"),       // row 5: negative
        format!("+15185550103,Verizon,{m},ten,1,1,0,voice_data"),      // row 6: not a number
        "+15185550104,Verizon,2001-01,1,1,1,0,voice_data".to_string(), // row 7: too old
        "+15185550104,Verizon,2999-01,1,1,1,0,voice_data".to_string(), // row 8: in the future
        format!("+15185550101,Verizon,{m},9,9,9,0,voice_data"),        // row 9: row 2's line and month
        format!("+15185550201,AT&T,{earlier},3,0,0,1.50,voice_only"),  // row 10: good
    ]);
    let before = app.audit_count().await;
    let response = upload(&app, &token, file).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = response.json().await.unwrap();
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(
        fields,
        [
            "row 3: phone_number",
            "row 4: phone_number",
            "row 5: voice_minutes",
            "row 6: voice_minutes",
            "row 7: month",
            "row 8: month",
            "row 9: month"
        ],
        "{problem}"
    );
    let messages = problem["errors"].to_string();
    assert!(messages.contains("is also on row 2") && messages.contains("not a line"), "{messages}");
    assert_eq!(months_recorded(&app).await, 0);
    assert_eq!(app.audit_count().await, before);
}

#[tokio::test]
async fn a_good_file_imports_once_and_a_corrected_one_replaces_its_months() {
    let (app, token) = setup().await;
    let system = custody_app::Actor::system("test");
    let model = custody_domain::catalog::ModelInput {
        device_type: Some("tablet".into()),
        platform: Some("ipados".into()),
        maker: Some("Apple".into()),
        model: Some("iPad usage".into()),
        ..Default::default()
    };
    let model = custody_app::catalog::create_model(app.app(), &system, model).await.unwrap().id;
    let device = app.device_in_state("AAA", &model, custody_domain::device::DeviceState::InService).await;
    line(&app, "AAA", "+15185550109", Some(&device)).await;
    let (m, earlier) = (month(&app, 0), month(&app, 1));
    let rows: Vec<String> = (1..=4)
        .flat_map(|n| {
            [
                format!("+1518555010{n},Verizon,{earlier},{},3,12.5,0,voice_data", n * 10),
                format!("+1518555010{n},Verizon,{m},{},3,0.25,2.00,voice_data", n * 11),
            ]
        })
        .chain([format!("+15185550109,Verizon,{m},0,0,812.125,0,data_only")])
        .collect();
    let before = app.audit_count().await;
    let first = upload(&app, &token, csv(&rows)).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let summary: Value = first.json().await.unwrap();
    assert_eq!((summary["rows"].as_i64(), summary["inserted"].as_i64()), (Some(9), Some(9)), "{summary}");
    assert_eq!(summary["first_month"], earlier.as_str());
    assert_eq!(months_recorded(&app).await, 9);
    assert_eq!(app.audit_count().await, before + 1);

    // The same file again changes nothing and records nothing.
    let again = upload(&app, &token, csv(&rows)).await;
    assert_eq!(again.status(), StatusCode::OK);
    let summary: Value = again.json().await.unwrap();
    assert_eq!((summary["unchanged"].as_i64(), summary["import_id"].is_null()), (Some(9), true));
    assert_eq!(app.audit_count().await, before + 1);
    // Every figure as the file gave it.
    let months: Value = app.get("/api/v1/usage/lines/+15185550103", &token).await.json().await.unwrap();
    let figures: Vec<(i64, i64, &str, &str, &str, &str)> = months
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let text = |k: &str| m[k].as_str().unwrap_or_default();
            let n = |k: &str| m[k].as_i64().unwrap_or(-1);
            (
                n("voice_minutes"),
                n("messages"),
                text("data_mb"),
                text("international_charges"),
                text("line_plan"),
                text("month"),
            )
        })
        .collect();
    assert_eq!(
        figures,
        [(30, 3, "12.500", "0.00", "voice_data", earlier.as_str()), (33, 3, "0.250", "2.00", "voice_data", m.as_str())]
    );
    assert_eq!(months[0]["partial"], false);

    // The line's months carry the device it was in when imported.
    let months: Value = app.get("/api/v1/usage/lines/+15185550109", &token).await.json().await.unwrap();
    assert_eq!(months[0]["device_id"], device.as_str());
    assert_eq!((months[0]["data_mb"].as_str(), months[0]["device_type"].as_str()), (Some("812.125"), Some("tablet")));

    // A corrected file for one month: that month's figures are replaced, the device kept.
    app.exec_owned("UPDATE lines SET device_id = NULL WHERE phone_number = '+15185550109'".into()).await;
    let corrected = csv(&[format!("+15185550109,Verizon,{m},0,0,700,0,data_only")]);
    let response = upload(&app, &token, corrected).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let summary: Value = response.json().await.unwrap();
    assert_eq!((summary["replaced"].as_i64(), summary["inserted"].as_i64()), (Some(1), Some(0)));
    let months: Value = app.get("/api/v1/usage/lines/+15185550109", &token).await.json().await.unwrap();
    assert_eq!(
        (months[0]["data_mb"].as_str(), months[0]["device_id"].as_str()),
        (Some("700.000"), Some(device.as_str()))
    );
    assert_eq!(months_recorded(&app).await, 9);
    let imports: Value = app.get("/api/v1/usage/imports", &token).await.json().await.unwrap();
    assert_eq!(imports.as_array().unwrap().len(), 2, "{imports}");
    assert_eq!(imports[0]["replaced"], 1);

    // Agency users read their own lines only.
    let (_, viewer) = app.user_with_token("viewer@bbb.example", Role::AgencyViewer, Some("BBB")).await;
    assert_eq!(app.get("/api/v1/usage/lines/+15185550109", &viewer).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/v1/usage/lines/+15185550201", &viewer).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_xlsx_variant_reads_like_the_csv() {
    use custody_app::xlsx::Cell;
    let (app, token) = setup().await;
    let m = month(&app, 0);
    let text = |s: &str| Cell::Text(s.to_string());
    let number = |s: &str| Cell::Number(s.to_string());
    let header = ["line_plan", "phone_number", "carrier", "month", "voice_minutes", "messages", "data_mb"]
        .into_iter()
        .chain(["international_charges"])
        .map(text)
        .collect();
    let rows = vec![
        header,
        vec![
            text("voice_only"),
            text("+15185550101"),
            text("T-Mobile"),
            text(&m),
            number("5"),
            number("0"),
            number("0"),
            Cell::Empty,
        ],
        vec![
            text("voice_data"),
            text("(518) 555-0102"),
            text("T-Mobile"),
            text(&m),
            number("0"),
            number("2"),
            number("1.5"),
            number("3.75"),
        ],
    ];
    let workbook = custody_app::xlsx::write("Usage", &rows);
    let response = app
        .request(reqwest::Method::POST, "/api/v1/usage/import?file_name=tmobile.xlsx", Some(&token))
        .header("content-type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        .body(workbook)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let months: Value = app.get("/api/v1/usage/lines/+15185550102", &token).await.json().await.unwrap();
    assert_eq!(months[0]["international_charges"], "3.75");
    assert_eq!(months[0]["data_mb"], "1.500");
    assert_eq!(months_recorded(&app).await, 2);
    // An agency user may not import.
    let (_, approver) = app.user_with_token("approver@aaa.example", Role::AgencyApprover, Some("AAA")).await;
    assert_eq!(upload(&app, &approver, csv(&[])).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_command_line_imports_a_file_and_lists_the_bad_rows_of_another() {
    let dir = tempfile::tempdir().unwrap();
    let test_db = custody_store::testing::TestDb::sqlite().await;
    let db = test_db.url.clone();
    let app = TestApp::spawn_with(test_db, |_| {}).await;
    app.agency("AAA", "Alpha Agency").await;
    line(&app, "AAA", "+15185550101", None).await;
    let m = month(&app, 0);
    let good = dir.path().join("good.csv");
    std::fs::write(&good, csv(&[format!("+15185550101,Verizon,{m},1,2,3,0,voice_data")])).unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, csv(&[format!("+15185550101,Verizon,{m},x,2,3,0,voice_data")])).unwrap();
    let run = |file: &std::path::Path| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_custody"));
        command.args(["usage", "import"]).arg(file).args(["--database-url", &db, "--data-dir"]).arg(dir.path());
        async move { tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap() }
    };
    let out = run(&bad).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("row 2: voice_minutes"), "{stderr}");
    assert_eq!(months_recorded(&app).await, 0);
    let out = run(&good).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("good.csv imported: 1 rows"));
    assert_eq!(months_recorded(&app).await, 1);
    let out = run(&good).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing changed"));
}
