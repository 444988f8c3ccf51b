//! Billing: the SQL counts held to the domain's rule over random histories (SQLite and
//! PostgreSQL), baselines and excess direct billing, closing (idempotent, locked, adjustments on
//! the next invoice), a close killed midway, and the three exports read back.

mod common;

use common::TestApp;
use common::billing::{bill_from, device_of_type, next_open_period, noon, stop_on};
use custody_app::Actor;
use custody_domain::billing::{Interval, Month, Period, billed_days, bills_full_month};
use custody_domain::role::Role;
use custody_store::billing::IntervalRow;
use custody_store::testing::TestDb;
use reqwest::Method;
use serde_json::{Value, json};

async fn model(app: &TestApp) -> String {
    let input = custody_domain::catalog::ModelInput {
        device_type: Some("smartphone".into()),
        platform: Some("ios".into()),
        maker: Some("Apple".into()),
        model: Some(format!("iPhone {}", custody_store::new_id())),
        ..Default::default()
    };
    custody_app::catalog::create_model(app.app(), &Actor::system("test"), input).await.unwrap().id
}

/// xorshift: deterministic histories without a dependency.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

async fn sql_counts_match_the_domain(db: TestDb) {
    let app = TestApp::spawn_with(db, |_| {}).await;
    app.agency("AAA", "A Agency").await;
    app.agency("BBB", "B Agency").await;
    let model = model(&app).await;
    let zone = app.app().config.billing.zone().unwrap();
    let months: Vec<Month> = ["2026-02", "2026-03", "2026-07", "2026-11"]
        .iter()
        .map(|p| Month::new(Period::parse(p).unwrap(), &zone))
        .collect();
    let (first, last) = (months[0].start(), months[3].end());
    let span = (last - first) as u64;
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut rows = Vec::new();
    for i in 0..150 {
        let agency = if i % 3 == 0 { "BBB" } else { "AAA" };
        let device = device_of_type(&app, agency, &model, ["smartphone", "tablet"][i % 2]).await;
        let mut t = first - 20 * 86_400_000 + rng.below(span) as i64;
        let mut prev = None;
        for _ in 0..1 + rng.below(3) {
            // Some intervals start and stop within a day, some on the same day as the last stop.
            let short = rng.below(4) == 0;
            let length = 1 + rng.below(if short { 86_400_000 } else { span / 3 }) as i64;
            let stop = if rng.below(3) == 0 { None } else { Some(t + length) };
            rows.push(IntervalRow {
                id: custody_store::new_id(),
                device_id: device.clone(),
                agency_code: agency.into(),
                device_type: ["smartphone", "tablet"][i % 2].into(),
                started_at: t,
                stopped_at: stop,
                prev_stopped_at: prev,
            });
            let Some(stop) = stop else { break };
            prev = Some(stop);
            t = stop + rng.below(3 * 86_400_000) as i64;
        }
    }
    let mut conn = app.app().store.conn().await.unwrap();
    custody_store::billing::insert_intervals_many(&mut conn, &rows).await.unwrap();
    for month in &months {
        for daily in [false, true] {
            let mut expected: std::collections::BTreeMap<(String, String, Option<i64>), i64> = Default::default();
            for r in &rows {
                let interval =
                    Interval { started_at: r.started_at, stopped_at: r.stopped_at, prev_stopped_at: r.prev_stopped_at };
                let charge = if daily {
                    Some(billed_days(month, &interval)).filter(|d| *d > 0).map(Some)
                } else {
                    bills_full_month(month, &interval).then_some(None)
                };
                if let Some(days) = charge {
                    *expected.entry((r.agency_code.clone(), r.device_type.clone(), days)).or_default() += 1;
                }
            }
            let got: std::collections::BTreeMap<_, _> = custody_store::billing::service_counts(&mut conn, month, daily)
                .await
                .unwrap()
                .into_iter()
                .map(|c| ((c.agency_code, c.device_type, c.days), c.quantity))
                .collect();
            assert_eq!(got, expected, "{} daily={daily} on {}", month.period, app.db.label);
            assert!(!got.is_empty());
        }
        let device_months = custody_store::billing::count_device_months(&mut conn, month).await.unwrap();
        let full: i64 = custody_store::billing::service_counts(&mut conn, month, false)
            .await
            .unwrap()
            .iter()
            .map(|c| c.quantity)
            .sum();
        assert_eq!(device_months, full);
    }
}

#[tokio::test]
async fn sql_counts_match_the_domain_rule_on_sqlite() {
    sql_counts_match_the_domain(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn sql_counts_match_the_domain_rule_on_postgres() {
    let Some(url) = TestDb::postgres_url() else { return };
    sql_counts_match_the_domain(TestDb::postgres(&url).await).await;
}

async fn invoice_of(app: &TestApp, token: &str, period: &str, agency: &str, kind: &str) -> Option<Value> {
    let list: Value = app
        .get(&format!("/api/v1/billing/invoices?period={period}&agency={agency}&kind={kind}"), token)
        .await
        .json()
        .await
        .unwrap();
    let id = list.as_array().unwrap().first()?["id"].as_str()?.to_string();
    Some(app.get(&format!("/api/v1/billing/invoices/{id}"), token).await.json().await.unwrap())
}

fn cents(value: &Value) -> i64 {
    value.as_i64().unwrap()
}

#[tokio::test]
async fn devices_beyond_the_baseline_are_direct_billed_and_closing_is_idempotent_and_locked() {
    let app = TestApp::spawn().await;
    app.agency("AAA", "A Agency").await;
    let model = model(&app).await;
    let (_, billing) = app.user_with_token("billing@central.example", Role::Billing, None).await;
    let (_, viewer) = app.user_with_token("viewer@aaa.example", Role::AgencyViewer, Some("AAA")).await;
    let baseline = json!({"agency": "AAA", "device_type": "smartphone", "as_of": "2020-03-31", "count": 10});
    let response = app.send_json(Method::POST, "/api/v1/billing/baselines", Some(&billing), &baseline).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());

    // 13 smartphones in service in 2023-01 (one enrolled on the 31st: a full month all the same).
    let mut phones = Vec::new();
    for i in 0..13 {
        let device = device_of_type(&app, "AAA", &model, "smartphone").await;
        bill_from(&app, &device, if i == 12 { "2023-01-31" } else { "2022-12-15" }).await;
        phones.push(device);
    }
    // Four stop in January: in February 9 are in service.
    for device in &phones[..4] {
        stop_on(&app, device, "2023-01-20").await;
    }
    let charge = json!({"agency": "AAA", "period": "2023-01", "kind": "international",
                        "phone_number": "+15185550123", "description": "Roaming in Canada", "amount": "42.17"});
    let response = app.send_json(Method::POST, "/api/v1/billing/charges", Some(&billing), &charge).await;
    assert_eq!(response.status(), 201);

    // Months close in order, only once ended.
    let response =
        app.send_json(Method::POST, "/api/v1/billing/periods/2099-01/close", Some(&billing), &json!({})).await;
    assert_eq!(response.status(), 409);
    let preview: Value = app.get("/api/v1/billing/periods/2023-01/preview", &billing).await.json().await.unwrap();
    assert_eq!(preview["chargeback"], "195.00", "{preview}");
    assert_eq!(preview["direct_bill"], "147.17", "{preview}");
    assert!(preview["blocked"].is_null());

    let response =
        app.send_json(Method::POST, "/api/v1/billing/periods/2023-01/close", Some(&billing), &json!({})).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let chargeback = invoice_of(&app, &viewer, "2023-01", "AAA", "chargeback").await.unwrap();
    assert_eq!(chargeback["devices"], 13);
    assert_eq!(cents(&chargeback["total_cents"]), 13 * 1500);
    let direct = invoice_of(&app, &viewer, "2023-01", "AAA", "direct_bill").await.unwrap();
    let lines = direct["lines"].as_array().unwrap();
    let excess = lines.iter().find(|l| l["kind"] == "excess").expect("an excess line");
    assert_eq!(
        (excess["quantity"].as_i64(), excess["in_service"].as_i64(), excess["baseline"].as_i64()),
        (Some(3), Some(13), Some(10))
    );
    assert_eq!(excess["amount"], "105.00");
    assert!(lines.iter().any(|l| l["kind"] == "pass_through" && l["amount"] == "42.17"));
    let sum: i64 = lines.iter().map(|l| cents(&l["amount_cents"])).sum();
    assert_eq!(sum, cents(&direct["total_cents"]));
    // The devices behind the chargeback line: the 13, with their serials' devices.
    let devices: Value = app
        .get(&format!("/api/v1/billing/invoices/{}/devices", chargeback["id"].as_str().unwrap()), &viewer)
        .await
        .json()
        .await
        .unwrap();
    let mut listed: Vec<&str> =
        devices["items"].as_array().unwrap().iter().map(|d| d["device_id"].as_str().unwrap()).collect();
    listed.sort();
    let mut expected: Vec<&str> = phones.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(listed, expected);

    // Closing again changes nothing and answers the same month.
    let before = app.audit_count().await;
    let again = app.send_json(Method::POST, "/api/v1/billing/periods/2023-01/close", Some(&billing), &json!({})).await;
    assert_eq!(again.status(), 200);
    assert_eq!(app.audit_count().await, before);
    let same = invoice_of(&app, &viewer, "2023-01", "AAA", "direct_bill").await.unwrap();
    assert_eq!(same, direct);

    // The closed month refuses changes; a correction is an adjustment on the next invoice.
    let late = json!({"agency": "AAA", "period": "2023-01", "description": "Late roaming", "amount": "5.00"});
    let response = app.send_json(Method::POST, "/api/v1/billing/charges", Some(&billing), &late).await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert!(problem.to_string().contains("closed"), "{problem}");
    let credit = json!({"agency": "AAA", "amount": "-15.00", "reason": "A phone billed after its return",
                        "corrects_period": "2023-01"});
    let response = app.send_json(Method::POST, "/api/v1/billing/adjustments", Some(&billing), &credit).await;
    assert_eq!(response.status(), 201);
    let response =
        app.send_json(Method::POST, "/api/v1/billing/periods/2023-02/close", Some(&billing), &json!({})).await;
    assert_eq!(response.status(), 201);
    let february = invoice_of(&app, &viewer, "2023-02", "AAA", "chargeback").await.unwrap();
    let lines = february["lines"].as_array().unwrap();
    assert!(lines.iter().any(|l| l["kind"] == "adjustment" && l["amount"] == "-15.00"), "{february}");
    assert_eq!(february["devices"], 9);
    assert_eq!(cents(&february["total_cents"]), 9 * 1500 - 1500);
    // With 9 in service against a baseline of 10, nothing is direct-billed.
    assert!(invoice_of(&app, &viewer, "2023-02", "AAA", "direct_bill").await.is_none());
    // The closed January is as it was.
    assert_eq!(invoice_of(&app, &viewer, "2023-01", "AAA", "direct_bill").await.unwrap(), direct);
    // A statement rolls up the quarter.
    let statement: Value = app.get("/api/v1/billing/statements/AAA/2023-Q1", &viewer).await.json().await.unwrap();
    assert_eq!(statement["total"], "462.17", "{statement}");
    assert_eq!(statement["months"][2]["closed"], false);
}

#[tokio::test]
async fn a_rate_change_applies_from_its_month() {
    let app = TestApp::spawn().await;
    app.agency("AAA", "A Agency").await;
    let model = model(&app).await;
    let device = device_of_type(&app, "AAA", &model, "tablet").await;
    bill_from(&app, &device, "2023-11-02").await;
    let system = Actor::system("test");
    custody_app::catalog::add_rate(app.app(), &system, "A8154121", Some("16.50"), Some("2024-01-01"), None)
        .await
        .unwrap();
    for (period, amount) in [("2023-11", 1500), ("2023-12", 1500), ("2024-01", 1650)] {
        custody_app::billing::close(app.app(), &system, period).await.unwrap();
        let filter = custody_store::billing::InvoiceFilter { period: Some(period.into()), ..Default::default() };
        let invoices = custody_app::billing::invoices(app.app(), &system, filter, 10, 0).await.unwrap();
        assert_eq!(invoices.len(), 1);
        assert_eq!(invoices[0].total_cents, amount, "{period}");
    }
}

#[tokio::test]
async fn the_csv_xlsx_and_pdf_of_an_invoice_carry_the_same_lines_and_totals() {
    let app = TestApp::spawn().await;
    app.agency("AAA", "A Agency").await;
    let model = model(&app).await;
    let (_, billing) = app.user_with_token("billing@central.example", Role::Billing, None).await;
    for (i, device_type) in ["smartphone", "tablet", "smartphone"].iter().enumerate() {
        let device = device_of_type(&app, "AAA", &model, device_type).await;
        bill_from(&app, &device, &format!("2023-0{}-05", 1 + i % 2)).await;
    }
    let period = next_open_period(&app).await;
    assert_eq!(period, "2023-01");
    let system = Actor::system("test");
    let adjustment = custody_app::billing::AdjustmentInput {
        agency: Some("AAA".into()),
        amount: Some("-2.50".into()),
        reason: Some("Goodwill credit, \"as agreed\"".into()),
        ..Default::default()
    };
    custody_app::billing::add_adjustment(app.app(), &system, adjustment).await.unwrap();
    custody_app::billing::close(app.app(), &system, "2023-01").await.unwrap();
    custody_app::billing::close(app.app(), &system, "2023-02").await.unwrap();
    let invoice = invoice_of(&app, &billing, "2023-02", "AAA", "chargeback").await.unwrap();
    let id = invoice["id"].as_str().unwrap();
    let expected: Vec<(String, String)> = invoice["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["line_no"].to_string(), l["amount"].as_str().unwrap().to_string()))
        .collect();
    assert!(expected.len() >= 2, "{invoice}");
    let total = invoice["total"].as_str().unwrap().to_string();

    let fetch = |format: &'static str| {
        let app = &app;
        let billing = billing.clone();
        async move {
            let response = app.get(&format!("/api/v1/billing/invoices/{id}/export?format={format}"), &billing).await;
            assert_eq!(response.status(), 200, "{format}");
            response.bytes().await.unwrap().to_vec()
        }
    };
    let table = |rows: Vec<Vec<String>>| {
        let start = rows.iter().position(|r| r.first().is_some_and(|c| c == "line")).expect("the line table");
        let lines: Vec<(String, String)> = rows[start + 1..]
            .iter()
            .filter(|r| r.first().is_some_and(|c| c != "total"))
            .map(|r| (r[0].clone(), r[8].clone()))
            .collect();
        let total =
            rows.iter().find(|r| r.first().is_some_and(|c| c == "total")).map(|r| r[8].clone()).expect("a total row");
        (lines, total)
    };
    let csv_bytes = fetch("csv").await;
    let csv_rows: Vec<Vec<String>> = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(csv_bytes.as_slice())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    assert_eq!(table(csv_rows), (expected.clone(), total.clone()));
    let xlsx_rows = custody_app::xlsx::read_first_sheet(&fetch("xlsx").await).unwrap();
    let (xlsx_lines, xlsx_total) = table(xlsx_rows);
    let as_money = |raw: &str| format!("{:.2}", raw.parse::<f64>().unwrap());
    assert_eq!(xlsx_lines.iter().map(|(n, a)| (n.clone(), as_money(a))).collect::<Vec<_>>(), expected);
    assert_eq!(as_money(&xlsx_total), total);

    let pdf = fetch("pdf").await;
    assert!(pdf.starts_with(b"%PDF-"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("invoice.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let out =
        std::process::Command::new("pdftotext").args(["-layout"]).arg(&path).arg("-").output().expect("pdftotext");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    for (line_no, amount) in &expected {
        let entry = text.lines().find(|l| l.contains(&format!("line {line_no} "))).unwrap_or_else(|| panic!("{text}"));
        assert!(entry.contains(&format!("amount {amount}")), "{entry}");
    }
    assert!(text.lines().any(|l| l.contains("total") && l.trim_end().ends_with(&total)), "{text}");
}

/// The `custody billing close` process killed at several points: each time the month is either
/// not closed or closed whole, and the run that finishes leaves exactly one set of invoices.
#[tokio::test]
async fn a_close_killed_midway_leaves_nothing_or_the_whole_month() {
    let app = TestApp::spawn().await;
    let agencies: Vec<String> = (0..40).map(|i| format!("K{i:02}")).collect();
    for code in &agencies {
        app.agency(code, &format!("Agency {code}")).await;
    }
    let model = model(&app).await;
    // 20,000 billed devices: a close that takes a moment.
    let start = noon(&app, "2022-12-10");
    let mut rows = Vec::new();
    {
        let mut conn = app.app().store.conn().await.unwrap();
        for chunk in 0..20 {
            let mut devices = Vec::new();
            for i in 0..1000 {
                let k = chunk * 1000 + i;
                let agency = agencies[k % agencies.len()].clone();
                let id = format!("00000000-0000-7000-c000-{k:012x}");
                devices.push(custody_store::devices::DeviceRow {
                    id: id.clone(),
                    agency_code: agency.clone(),
                    state: custody_domain::device::DeviceState::InService,
                    device_type: custody_domain::catalog::DeviceType::Smartphone,
                    model_id: model.clone(),
                    serial: None,
                    imei: None,
                    meid: None,
                    funding: "standard".into(),
                    ordered_for: None,
                    holder_id: None,
                    line_id: None,
                    request_id: None,
                    location: "with_holder".into(),
                    accessories: String::new(),
                    enrolled_at: Some(start),
                    billing_stop_at: None,
                    destination: None,
                    created_at: start,
                    updated_at: start,
                });
                rows.push(IntervalRow {
                    id: custody_store::new_id(),
                    device_id: id,
                    agency_code: agency,
                    device_type: "smartphone".into(),
                    started_at: start + (k as i64 % 40) * 86_400_000,
                    stopped_at: None,
                    prev_stopped_at: None,
                });
            }
            custody_store::devices::insert_many(&mut conn, &devices).await.unwrap();
        }
        custody_store::billing::insert_intervals_many(&mut conn, &rows).await.unwrap();
    }
    let expected = custody_app::billing::preview(app.app(), &Actor::system("test"), "2023-01").await.unwrap();
    assert_eq!(expected.devices, 20_000);
    let url = app.db.url.clone();
    let run = move |kill_after_ms: Option<u64>| {
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_custody"))
                    .args(["billing", "close", "--period", "2023-01", "--database-url", &url])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                if let Some(ms) = kill_after_ms {
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                    let _ = child.kill();
                }
                child.wait_with_output().unwrap()
            })
            .await
            .unwrap()
        }
    };
    let check = |closed: Option<custody_store::billing::PeriodRow>, invoices: &[custody_store::billing::InvoiceRow]| {
        match closed {
            None => assert!(invoices.is_empty(), "invoices without a closed month"),
            Some(period) => {
                assert_eq!(invoices.len(), 40);
                assert_eq!(period.devices, 20_000);
                assert_eq!(invoices.iter().map(|i| i.total_cents).sum::<i64>(), expected.chargeback_cents);
            }
        }
    };
    for ms in [30, 80, 150, 250, 400, 600] {
        let _ = run(Some(ms)).await;
        let mut conn = app.app().store.conn().await.unwrap();
        let closed = custody_store::billing::get_period(&mut conn, "2023-01").await.unwrap();
        let filter = custody_store::billing::InvoiceFilter { period: Some("2023-01".into()), ..Default::default() };
        let invoices = custody_store::billing::invoices(&mut conn, &filter, 1000, 0).await.unwrap();
        check(closed, &invoices);
    }
    let out = run(None).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut conn = app.app().store.conn().await.unwrap();
    let closed = custody_store::billing::get_period(&mut conn, "2023-01").await.unwrap();
    assert!(closed.is_some());
    let filter = custody_store::billing::InvoiceFilter { period: Some("2023-01".into()), ..Default::default() };
    let invoices = custody_store::billing::invoices(&mut conn, &filter, 1000, 0).await.unwrap();
    check(closed, &invoices);
    // And once more: nothing changes.
    let again = run(None).await;
    assert!(String::from_utf8_lossy(&again.stdout).contains("already closed"), "{again:?}");
    let after = custody_store::billing::invoices(&mut conn, &filter, 1000, 0).await.unwrap();
    assert_eq!(after, invoices);
}
