//! Bad input answers 400, 409 or 422 with a problem document naming the field, and writes nothing.

mod common;

use common::{TestApp, fields, problem};
use custody_domain::role::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn setup() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    app.agency("AAA", "Alpha Agency").await;
    let (_, token) = app.user_with_token("admin@v.example", Role::Admin, None).await;
    (app, token)
}

async fn people_count(app: &TestApp) -> i64 {
    let mut conn = app.app().store.conn().await.unwrap();
    custody_store::people::count(&mut conn, None).await.unwrap()
}

#[tokio::test]
async fn malformed_json_is_a_400_and_writes_nothing() {
    let (app, token) = setup().await;
    let before = (app.audit_count().await, people_count(&app).await);
    for body in ["{\"agency\": \"AAA\", ", "not json", "{} trailing"] {
        let response = app
            .request(Method::POST, "/api/v1/people", Some(&token))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let problem = problem(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(problem["type"], "/problems/malformed-json", "{body}");
    }
    let response = app.request(Method::POST, "/api/v1/people", Some(&token)).body("{}").send().await.unwrap();
    problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    assert_eq!((app.audit_count().await, people_count(&app).await), before);
}

#[tokio::test]
async fn unknown_and_mistyped_fields_are_named() {
    let (app, token) = setup().await;
    let before = (app.audit_count().await, people_count(&app).await);
    let unknown = app
        .send_json(
            Method::POST,
            "/api/v1/people",
            Some(&token),
            &json!({"agency": "AAA", "given_name": "A", "family_name": "B", "nickname": "x"}),
        )
        .await;
    assert_eq!(fields(&problem(unknown, StatusCode::UNPROCESSABLE_ENTITY).await), ["nickname"]);
    let mistyped = app
        .send_json(Method::POST, "/api/v1/users", Some(&token), &json!({"email": "a@b.gov", "roles": "admin"}))
        .await;
    assert_eq!(fields(&problem(mistyped, StatusCode::UNPROCESSABLE_ENTITY).await), ["roles"]);
    let bad_query = app.get("/api/v1/people?limit=lots", &token).await;
    assert_eq!(fields(&problem(bad_query, StatusCode::UNPROCESSABLE_ENTITY).await), ["limit"]);
    let unknown_query = app.get("/api/v1/people?colour=red", &token).await;
    assert_eq!(fields(&problem(unknown_query, StatusCode::UNPROCESSABLE_ENTITY).await), ["colour"]);
    assert_eq!((app.audit_count().await, people_count(&app).await), before);
}

#[tokio::test]
async fn invalid_values_name_every_bad_field() {
    let (app, token) = setup().await;
    let before = (app.audit_count().await, people_count(&app).await);
    let response = app
        .send_json(
            Method::POST,
            "/api/v1/people",
            Some(&token),
            &json!({"agency": "AAA", "given_name": " ", "family_name": "Ruiz", "email": "ana@", "status": "retired"}),
        )
        .await;
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&body), ["given_name", "email", "status"]);

    let bad_code = app
        .send_json(Method::POST, "/api/v1/agencies", Some(&token), &json!({"code": "A-1", "name": "X Agency"}))
        .await;
    assert_eq!(fields(&problem(bad_code, StatusCode::UNPROCESSABLE_ENTITY).await), ["code"]);
    let bad_user = app
        .send_json(
            Method::POST,
            "/api/v1/users",
            Some(&token),
            &json!({"email": "x@y.gov", "roles": ["root"], "agency": "a!"}),
        )
        .await;
    let body = problem(bad_user, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&body), ["agency", "roles[0]"]);
    let mixed = app
        .send_json(
            Method::POST,
            "/api/v1/users",
            Some(&token),
            &json!({"email": "x@y.gov", "roles": ["admin"], "agency": "AAA"}),
        )
        .await;
    assert_eq!(fields(&problem(mixed, StatusCode::UNPROCESSABLE_ENTITY).await), ["roles"]);
    let weak = app
        .send_json(
            Method::POST,
            "/api/v1/users",
            Some(&token),
            &json!({"email": "x@y.gov", "roles": ["admin"], "password": "short"}),
        )
        .await;
    assert_eq!(fields(&problem(weak, StatusCode::UNPROCESSABLE_ENTITY).await), ["password"]);
    let unknown_agency = app
        .send_json(
            Method::POST,
            "/api/v1/people",
            Some(&token),
            &json!({"agency": "ZZZ", "given_name": "A", "family_name": "B"}),
        )
        .await;
    assert_eq!(fields(&problem(unknown_agency, StatusCode::UNPROCESSABLE_ENTITY).await), ["agency"]);
    assert_eq!((app.audit_count().await, people_count(&app).await), before);
}

#[tokio::test]
async fn duplicates_are_409_naming_the_field() {
    let (app, token) = setup().await;
    let first = app
        .send_json(
            Method::POST,
            "/api/v1/people",
            Some(&token),
            &json!({"agency": "AAA", "given_name": "Ana", "family_name": "Ruiz", "email": "Ana.Ruiz@alpha.example"}),
        )
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let before = (app.audit_count().await, people_count(&app).await);
    let again = app
        .send_json(
            Method::POST,
            "/api/v1/people",
            Some(&token),
            &json!({"agency": "AAA", "given_name": "Ann", "family_name": "Ruiz", "email": "ana.ruiz@ALPHA.example"}),
        )
        .await;
    assert_eq!(fields(&problem(again, StatusCode::CONFLICT).await), ["email"]);
    let agency =
        app.send_json(Method::POST, "/api/v1/agencies", Some(&token), &json!({"code": "aaa", "name": "Other"})).await;
    assert_eq!(fields(&problem(agency, StatusCode::CONFLICT).await), ["code"]);
    let name = app
        .send_json(Method::POST, "/api/v1/agencies", Some(&token), &json!({"code": "BBB", "name": "Alpha Agency"}))
        .await;
    assert_eq!(fields(&problem(name, StatusCode::CONFLICT).await), ["name"]);
    let user = app
        .send_json(
            Method::POST,
            "/api/v1/users",
            Some(&token),
            &json!({"email": "ADMIN@v.example", "roles": ["auditor"]}),
        )
        .await;
    assert_eq!(fields(&problem(user, StatusCode::CONFLICT).await), ["email"]);
    assert_eq!((app.audit_count().await, people_count(&app).await), before);
}

#[tokio::test]
async fn paging_walks_every_person_once_in_order() {
    let (app, token) = setup().await;
    for i in 0..7 {
        app.person("AAA", &format!("G{i}"), if i % 2 == 0 { "Even" } else { "Odd" }).await;
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/people?limit=3".to_string();
    loop {
        let page: serde_json::Value = app.get(&path, &token).await.json().await.unwrap();
        for item in page["items"].as_array().unwrap() {
            seen.push(format!("{} {}", item["family_name"].as_str().unwrap(), item["given_name"].as_str().unwrap()));
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/api/v1/people?limit=3&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ["Even G0", "Even G2", "Even G4", "Even G6", "Odd G1", "Odd G3", "Odd G5"]);
    let garbage = app.get("/api/v1/people?cursor=!!", &token).await;
    assert_eq!(fields(&problem(garbage, StatusCode::UNPROCESSABLE_ENTITY).await), ["cursor"]);
}
