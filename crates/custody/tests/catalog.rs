//! The catalog and rates through the API: the seeded MDM service, rate history that never
//! changes the past, device models with accessories, and admin-only writes.

mod common;

use common::{TestApp, fields, problem};
use custody_domain::role::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn setup() -> (TestApp, String, String) {
    let app = TestApp::spawn().await;
    let (_, admin) = app.user_with_token("admin@c.example", Role::Admin, None).await;
    let (_, billing) = app.user_with_token("billing@c.example", Role::Billing, None).await;
    (app, admin, billing)
}

#[tokio::test]
async fn the_mdm_service_is_seeded_at_fifteen_dollars_a_device_month() {
    let (app, _, billing) = setup().await;
    let code: Value = app.get("/api/v1/service-codes/A8154121", &billing).await.json().await.unwrap();
    assert_eq!(code["billing_unit"], "device_month");
    assert_eq!(code["proration"], "full_month");
    assert_eq!(
        code["rates"],
        json!([{
            "id": code["rates"][0]["id"], "device_type": null, "amount": "15.00", "amount_cents": 1500,
            "effective_from": "2023-01-01", "effective_to": null
        }])
    );
}

#[tokio::test]
async fn a_rate_change_is_a_new_row_and_the_past_never_changes() {
    let (app, admin, _) = setup().await;
    let path = "/api/v1/service-codes/A8154121/rates";
    let changed = app
        .send_json(Method::POST, path, Some(&admin), &json!({"amount": "17.25", "effective_from": "2027-01-01"}))
        .await;
    assert_eq!(changed.status(), StatusCode::CREATED);
    let code: Value = changed.json().await.unwrap();
    let rates = code["rates"].as_array().unwrap();
    assert_eq!(rates.len(), 2);
    assert_eq!((rates[0]["amount"].as_str(), rates[0]["effective_to"].as_str()), (Some("15.00"), Some("2027-01-01")));
    assert_eq!((rates[1]["amount_cents"].as_i64(), rates[1]["effective_to"].as_str()), (Some(1725), None));

    let before = app.audit_count().await;
    for from in ["2026-06-01", "2027-01-01"] {
        let back =
            app.send_json(Method::POST, path, Some(&admin), &json!({"amount": "9.00", "effective_from": from})).await;
        assert_eq!(fields(&problem(back, StatusCode::CONFLICT).await), ["effective_from"], "{from}");
    }
    let bad =
        app.send_json(Method::POST, path, Some(&admin), &json!({"amount": "-3", "effective_from": "31/12/2027"})).await;
    assert_eq!(fields(&problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await), ["amount", "effective_from"]);
    assert_eq!(app.audit_count().await, before, "refused changes write nothing");

    // A line plan rate for one device type stands beside the general one.
    let tablet = app
        .send_json(
            Method::POST,
            path,
            Some(&admin),
            &json!({"amount": "12.00", "effective_from": "2024-01-01", "device_type": "tablet"}),
        )
        .await;
    assert_eq!(tablet.status(), StatusCode::CREATED);
    let rates = tablet.json::<Value>().await.unwrap()["rates"].as_array().unwrap().clone();
    assert_eq!(rates.iter().filter(|r| r["device_type"] == "tablet").count(), 1);
}

#[tokio::test]
async fn only_admin_changes_the_catalog_and_everyone_reads_it() {
    let (app, admin, billing) = setup().await;
    let body = json!({"device_type": "smartphone", "platform": "ios", "maker": "Apple", "model": "iPhone 17", "quote_price": "799"});
    let refused = app.send_json(Method::POST, "/api/v1/device-models", Some(&billing), &body).await;
    problem(refused, StatusCode::FORBIDDEN).await;
    let created = app.send_json(Method::POST, "/api/v1/device-models", Some(&admin), &body).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let model: Value = created.json().await.unwrap();
    assert_eq!(model["quote_price"], "799.00");
    assert_eq!(model["accessories"], json!(["shell holster", "charging cable"]));
    assert_eq!(model["standard"], true);
    let again = app.send_json(Method::POST, "/api/v1/device-models", Some(&admin), &body).await;
    assert_eq!(fields(&problem(again, StatusCode::CONFLICT).await), ["model"]);
    let wrong = app
        .send_json(
            Method::POST,
            "/api/v1/device-models",
            Some(&admin),
            &json!({"device_type": "pager", "platform": "ios", "maker": "X", "model": "Y"}),
        )
        .await;
    assert_eq!(fields(&problem(wrong, StatusCode::UNPROCESSABLE_ENTITY).await), ["device_type"]);

    let (_, viewer) = {
        app.agency("AAA", "Alpha Agency").await;
        app.user_with_token("viewer@c.example", Role::AgencyViewer, Some("AAA")).await
    };
    let list: Value = app.get("/api/v1/device-models?device_type=smartphone", &viewer).await.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let none: Value = app.get("/api/v1/device-models?device_type=tablet", &viewer).await.json().await.unwrap();
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
    let types: Value = app.get("/api/v1/device-types", &viewer).await.json().await.unwrap();
    let names: Vec<&str> = types["items"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["cell_phone", "smartphone", "tablet", "mifi", "aircard"]);
    assert_eq!(types["items"][2]["optional_accessories"], json!(["keyboard"]));
}
