//! Sign-in lockout and throttling, argon2id hashes, cookie flags, CSRF refusal, hashed tokens.

mod common;

use common::{PASSWORD, TestApp, problem, set_cookie_header};
use custody_domain::role::Role;
use custody_store::testing::TestDb;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Row;

async fn sign_in_status(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.send_json(Method::POST, "/api/v1/session", None, &json!({"email": email, "password": password})).await
}

#[tokio::test]
async fn five_failures_lock_the_account_even_for_the_right_password() {
    let app = TestApp::spawn().await;
    app.user_with_token("ana@x.example", Role::Auditor, None).await;
    for attempt in 1..=4 {
        let response = sign_in_status(&app, "ana@x.example", "wrong password!").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    let fifth = sign_in_status(&app, "ana@x.example", "wrong password!").await;
    let body = problem(fifth, StatusCode::LOCKED).await;
    let until = body["locked_until"].as_i64().unwrap();
    let in_15_min = custody_store::now_ms() + 15 * 60_000;
    assert!((in_15_min - until).abs() < 10_000, "locked for 15 minutes: {until}");
    let right = sign_in_status(&app, "ana@x.example", PASSWORD).await;
    assert!(right.headers().contains_key("retry-after"));
    assert_eq!(problem(right, StatusCode::LOCKED).await["type"], "/problems/account-locked");

    // When the lock has run out, the right password works and the count starts again.
    app.exec("UPDATE users SET locked_until = 1 WHERE email = 'ana@x.example'").await;
    assert_eq!(sign_in_status(&app, "ana@x.example", PASSWORD).await.status(), StatusCode::CREATED);
    let row = sqlx::query("SELECT failed_logins FROM users WHERE email = 'ana@x.example'")
        .fetch_one(app.app().store.pool())
        .await
        .unwrap();
    assert_eq!(row.try_get::<i64, _>("failed_logins").unwrap(), 0);
}

#[tokio::test]
async fn failures_from_one_address_are_throttled() {
    let app = TestApp::spawn_with(TestDb::sqlite().await, |c| c.auth.throttle_failures = 3).await;
    app.user_with_token("ben@x.example", Role::Auditor, None).await;
    for email in ["a@x.example", "b@x.example", "c@x.example"] {
        assert_eq!(sign_in_status(&app, email, "wrong password!").await.status(), StatusCode::UNAUTHORIZED);
    }
    let throttled = sign_in_status(&app, "ben@x.example", PASSWORD).await;
    assert!(throttled.headers().contains_key("retry-after"));
    problem(throttled, StatusCode::TOO_MANY_REQUESTS).await;
}

#[tokio::test]
async fn passwords_are_stored_as_argon2id_hashes_and_tokens_as_sha256() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("cy@x.example", Role::Auditor, None).await;
    let row = sqlx::query("SELECT password_hash FROM users WHERE email = 'cy@x.example'")
        .fetch_one(app.app().store.pool())
        .await
        .unwrap();
    let hash: String = row.try_get("password_hash").unwrap();
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
    let rows = sqlx::query("SELECT secret_hash FROM api_tokens").fetch_all(app.app().store.pool()).await.unwrap();
    let hashes: Vec<String> = rows.iter().map(|r| r.try_get("secret_hash").unwrap()).collect();
    assert!(hashes.iter().all(|h| h.len() == 64 && *h != token), "{hashes:?}");
    assert!(hashes.contains(&custody_app::auth::sha256_hex(&token)));
}

#[tokio::test]
async fn the_session_cookie_is_httponly_and_lax_and_secure_when_configured() {
    let app = TestApp::spawn().await;
    app.user_with_token("di@x.example", Role::Auditor, None).await;
    let response = sign_in_status(&app, "di@x.example", PASSWORD).await;
    let cookie = set_cookie_header(&response).unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");

    let tls =
        TestApp::spawn_with(TestDb::sqlite().await, |c| c.public_url = Some("https://custody.example".into())).await;
    tls.user_with_token("di@x.example", Role::Auditor, None).await;
    let response = sign_in_status(&tls, "di@x.example", PASSWORD).await;
    let cookie = set_cookie_header(&response).unwrap();
    assert!(cookie.contains("; Secure") && cookie.contains("HttpOnly"), "{cookie}");
}

#[tokio::test]
async fn cookie_writes_without_the_csrf_token_are_refused() {
    let app = TestApp::spawn().await;
    app.agency("AAA", "Alpha Agency").await;
    app.user_with_token("ed@x.example", Role::Admin, None).await;
    let (cookie, csrf) = app.sign_in("ed@x.example", PASSWORD).await;
    let body = json!({"agency": "AAA", "given_name": "Fay", "family_name": "Gold"});
    let send = |csrf: Option<&str>, origin: Option<&str>| {
        let mut request = app
            .request(Method::POST, "/api/v1/people", None)
            .header("cookie", format!("custody_session={cookie}"))
            .json(&body);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    let before = app.audit_count().await;
    assert_eq!(problem(send(None, None).await.unwrap(), StatusCode::FORBIDDEN).await["type"], "/problems/csrf");
    assert_eq!(
        problem(send(Some("guess"), None).await.unwrap(), StatusCode::FORBIDDEN).await["type"],
        "/problems/csrf"
    );
    let cross = send(Some(&csrf), Some("https://evil.example")).await.unwrap();
    problem(cross, StatusCode::FORBIDDEN).await;
    assert_eq!(app.audit_count().await, before, "refused writes change nothing");
    // Reads need no token; the right token lets the write through.
    let read = app
        .request(Method::GET, "/api/v1/me", None)
        .header("cookie", format!("custody_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    let origin = app.base.clone();
    assert_eq!(send(Some(&csrf), Some(&origin)).await.unwrap().status(), StatusCode::CREATED);
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let app = TestApp::spawn().await;
    app.user_with_token("fi@x.example", Role::Auditor, None).await;
    let (cookie, csrf) = app.sign_in("fi@x.example", PASSWORD).await;
    let me = |cookie: String| {
        app.request(Method::GET, "/api/v1/me", None).header("cookie", format!("custody_session={cookie}")).send()
    };
    let who: Value = me(cookie.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(who["authenticated_by"], "session");
    let out = app
        .request(Method::DELETE, "/api/v1/session", None)
        .header("cookie", format!("custody_session={cookie}"))
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert!(set_cookie_header(&out).unwrap().contains("Max-Age=0"));
    assert_eq!(me(cookie).await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revoked_tokens_and_disabled_users_are_refused() {
    let app = TestApp::spawn().await;
    let (admin_id, admin) = app.user_with_token("admin@x.example", Role::Admin, None).await;
    let (user_id, token) = app.user_with_token("gil@x.example", Role::Auditor, None).await;
    assert_eq!(app.get("/api/v1/me", &token).await.status(), StatusCode::OK);
    let disable = app
        .send_json(Method::PATCH, &format!("/api/v1/users/{user_id}"), Some(&admin), &json!({"disabled": true}))
        .await;
    assert_eq!(disable.status(), StatusCode::OK);
    assert_eq!(app.get("/api/v1/me", &token).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sign_in_status(&app, "gil@x.example", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);

    let created: Value = app
        .send_json(Method::POST, "/api/v1/tokens", Some(&admin), &json!({"name": "short-lived", "roles": ["admin"]}))
        .await
        .json()
        .await
        .unwrap();
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("cst_"));
    assert_eq!(app.get("/api/v1/me", secret).await.status(), StatusCode::OK);
    let id = created["token"]["id"].as_str().unwrap();
    let revoked = app.request(Method::DELETE, &format!("/api/v1/tokens/{id}"), Some(&admin)).send().await.unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(app.get("/api/v1/me", secret).await.status(), StatusCode::UNAUTHORIZED);

    // A token cannot carry a role its user does not hold.
    let escalate = app
        .send_json(Method::POST, "/api/v1/tokens", Some(&admin), &json!({"name": "x", "roles": ["agency_viewer"]}))
        .await;
    assert_eq!(common::fields(&problem(escalate, StatusCode::UNPROCESSABLE_ENTITY).await), ["roles[0]"]);
    // An admin cannot disable themselves.
    let own = app
        .send_json(Method::PATCH, &format!("/api/v1/users/{admin_id}"), Some(&admin), &json!({"disabled": true}))
        .await;
    assert_eq!(common::fields(&problem(own, StatusCode::UNPROCESSABLE_ENTITY).await), ["disabled"]);
}

#[tokio::test]
async fn another_node_honours_a_revocation_within_the_credential_cache_time() {
    let db = TestDb::sqlite().await;
    let node_a = TestApp::spawn_with(db, |c| c.auth.credential_cache_ms = 400).await;
    let mut config_b = node_a.config.clone();
    config_b.auth.credential_cache_ms = 400;
    let app_b = custody_app::App::new(node_a.app().store.clone(), config_b.app_config().unwrap());
    let node_b = custody::Server::start(&config_b, app_b, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let (_, admin) = node_a.user_with_token("admin@x.example", Role::Admin, None).await;
    let created: Value = node_a
        .send_json(Method::POST, "/api/v1/tokens", Some(&admin), &json!({"name": "shared"}))
        .await
        .json()
        .await
        .unwrap();
    let secret = created["secret"].as_str().unwrap().to_string();
    let me_on_b = || node_a.client.get(format!("{}/api/v1/me", node_b.url())).bearer_auth(&secret).send();
    assert_eq!(me_on_b().await.unwrap().status(), StatusCode::OK, "node B resolves and keeps the token");
    let id = created["token"]["id"].as_str().unwrap();
    let revoked = node_a.request(Method::DELETE, &format!("/api/v1/tokens/{id}"), Some(&admin)).send().await.unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(node_a.get("/api/v1/me", &secret).await.status(), StatusCode::UNAUTHORIZED, "at once on node A");
    tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    assert_eq!(me_on_b().await.unwrap().status(), StatusCode::UNAUTHORIZED, "on node B once its cache time passed");
    node_b.stop().await.unwrap();
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions() {
    let app = TestApp::spawn().await;
    app.user_with_token("hal@x.example", Role::Auditor, None).await;
    let (first, _) = app.sign_in("hal@x.example", PASSWORD).await;
    let (second, csrf) = app.sign_in("hal@x.example", PASSWORD).await;
    let me = |cookie: &str| {
        app.request(Method::GET, "/api/v1/me", None).header("cookie", format!("custody_session={cookie}")).send()
    };
    let changed = app
        .request(Method::PUT, "/api/v1/me/password", None)
        .header("cookie", format!("custody_session={second}"))
        .header("x-csrf-token", csrf)
        .json(&json!({"current_password": PASSWORD, "new_password": "another long passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    assert_eq!(me(&first).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(me(&second).await.unwrap().status(), StatusCode::OK);
    assert_eq!(sign_in_status(&app, "hal@x.example", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sign_in_status(&app, "hal@x.example", "another long passphrase").await.status(), StatusCode::CREATED);
}
