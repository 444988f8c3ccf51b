//! Operations: readiness follows the schema, metrics report requests and the pool, responses
//! carry request ids and protective headers, unknown routes answer a problem 404, and a sweep
//! removes expired sessions.

mod common;

use common::{PASSWORD, TestApp, problem};
use custody_domain::role::Role;
use custody_store::testing::TestDb;
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn readiness_needs_a_migrated_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("empty.db").display());
    let store = custody_store::Store::connect(&url, &Default::default()).await.unwrap();
    let config = custody::Config { database_url: Some(url), auto_migrate: false, ..Default::default() };
    let app = custody_app::App::new(store.clone(), config.app_config().unwrap());
    let server = custody::Server::start(&config, app, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let client = reqwest::Client::new();
    let ready = client.get(format!("{}/readyz", server.url())).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.text().await.unwrap().contains("custody migrate"));
    assert_eq!(client.get(format!("{}/healthz", server.url())).send().await.unwrap().status(), StatusCode::OK);
    custody_store::migrate::run(&store).await.unwrap();
    assert_eq!(client.get(format!("{}/readyz", server.url())).send().await.unwrap().status(), StatusCode::OK);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("m@x.example", Role::Auditor, None).await;
    assert_eq!(app.get("/api/v1/people", &token).await.status(), StatusCode::OK);
    assert_eq!(
        app.request(Method::GET, "/api/v1/people", None).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let text = app.request(Method::GET, "/metrics", None).send().await.unwrap().text().await.unwrap();
    for needle in [
        r#"custody_http_requests_total{method="GET",route="/api/v1/people",status="200"}"#,
        r#"custody_http_requests_total{method="GET",route="/api/v1/people",status="401"}"#,
        "custody_http_request_duration_seconds_bucket",
        "custody_db_pool_connections",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}

#[tokio::test]
async fn responses_carry_request_ids_and_unknown_routes_are_problems() {
    let app = TestApp::spawn().await;
    let response =
        app.request(Method::GET, "/no/such/page", None).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let body = problem(response, StatusCode::NOT_FOUND).await;
    assert_eq!(body["request_id"], "abc-123");
    let generated = app.request(Method::GET, "/healthz", None).send().await.unwrap();
    assert_eq!(generated.headers()["x-request-id"].len(), 36);
}

#[tokio::test]
async fn the_sweep_removes_expired_sessions() {
    let app = TestApp::spawn_with(TestDb::sqlite().await, |_| {}).await;
    app.user_with_token("s@x.example", Role::Auditor, None).await;
    let (cookie, _) = app.sign_in("s@x.example", PASSWORD).await;
    app.exec("UPDATE sessions SET expires_at = 1").await;
    let swept = custody_app::maintenance::sweep(app.app()).await.unwrap();
    assert_eq!(swept.sessions, 1);
    let me =
        app.request(Method::GET, "/api/v1/me", None).header("cookie", format!("custody_session={cookie}")).send().await;
    assert_eq!(me.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn jobs_are_listed_with_their_leases_and_an_admin_runs_one_now() {
    let app = TestApp::spawn_with(TestDb::sqlite().await, |config| config.run_jobs = false).await;
    let (_, admin) = app.user_with_token("admin@x.example", Role::Admin, None).await;
    let (_, auditor) = app.user_with_token("audit@x.example", Role::Auditor, None).await;
    app.user_with_token("s@x.example", Role::Auditor, None).await;
    app.sign_in("s@x.example", PASSWORD).await;
    app.exec("UPDATE sessions SET expires_at = 1").await;

    let listed: serde_json::Value = app.get("/api/v1/jobs", &auditor).await.json().await.unwrap();
    let names: Vec<&str> = listed["items"].as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"usage.deem") && names.contains(&"compliance.evaluate"), "{names:?}");
    let never = listed["items"].as_array().unwrap().iter().find(|j| j["name"] == "compliance.evaluate").unwrap();
    assert!(never["last_finished_at"].is_null() && never["running_until"].is_null(), "{never}");

    // The node runs no jobs of its own: the expired session stays until the sweep is run.
    let run = app.request(Method::POST, "/api/v1/jobs/sessions.sweep/run", Some(&admin)).send().await.unwrap();
    assert_eq!(run.status(), StatusCode::OK);
    let run: serde_json::Value = run.json().await.unwrap();
    assert_eq!(run["ran"], true);
    assert_eq!(run["counts"]["sessions"], 1, "{run}");

    // A leased job records its pass.
    let run = app.request(Method::POST, "/api/v1/jobs/compliance.evaluate/run", Some(&admin)).send().await.unwrap();
    assert_eq!(run.status(), StatusCode::OK);
    let listed: serde_json::Value = app.get("/api/v1/jobs", &auditor).await.json().await.unwrap();
    let evaluated = listed["items"].as_array().unwrap().iter().find(|j| j["name"] == "compliance.evaluate").unwrap();
    assert!(evaluated["last_finished_at"].is_string(), "{evaluated}");

    let unknown = app.request(Method::POST, "/api/v1/jobs/no.such.job/run", Some(&admin)).send().await.unwrap();
    problem(unknown, StatusCode::NOT_FOUND).await;
    let refused = app.request(Method::POST, "/api/v1/jobs/usage.deem/run", Some(&auditor)).send().await.unwrap();
    problem(refused, StatusCode::FORBIDDEN).await;

    let events: serde_json::Value =
        app.get("/api/v1/audit-events?action=job.run", &auditor).await.json().await.unwrap();
    let runs: Vec<&str> =
        events["items"].as_array().unwrap().iter().map(|e| e["object_id"].as_str().unwrap()).collect();
    assert_eq!(runs.len(), 2, "each run audited: {events}");
    assert!(runs.contains(&"sessions.sweep") && runs.contains(&"compliance.evaluate"));
}

/// A node given another sealing key than the one the database's secrets were sealed with
/// refuses to start and names the setting, instead of starting and failing every enrollment.
#[tokio::test]
async fn a_node_with_another_secret_key_refuses_to_start() {
    let app = TestApp::spawn_with(TestDb::sqlite().await, |config| config.run_jobs = false).await;
    custody_app::mdm::ca(app.app()).await.unwrap();
    // Each node opens the database on its own, as another process would.
    let start = |config: custody::Config| {
        let url = app.db.url.clone();
        async move {
            let store = custody_store::Store::connect(&url, &Default::default()).await.unwrap();
            let node = custody_app::App::new(store, config.app_config().unwrap());
            custody::Server::start(&config, node, "127.0.0.1:0".parse().unwrap()).await
        }
    };
    start(app.config.clone()).await.expect("a node with the same key starts").stop().await.unwrap();
    let mut other = app.config.clone();
    let key: [u8; 32] = rand::random();
    other.mdm.secret_key = Some(base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key));
    let Err(refused) = start(other).await else { panic!("a node with another secret key started") };
    let message = format!("{refused:#}");
    assert!(message.contains("sealed with another key") && message.contains("mdm.secret_key"), "{message}");
}
