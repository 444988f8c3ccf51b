//! The security review's tests (`docs/security.md` maps OWASP ASVS requirements to them):
//! security headers, HSTS under TLS, rate limits, session lifetime and rotation, MDM secrets
//! sealed at rest, and SQL metacharacters in every search and filter parameter of the API.

mod common;

use common::mdm::Mdm;
use common::{PASSWORD, TestApp, problem, server_certificate, session_cookie};
use custody_domain::role::Role;
use custody_sim::{DeviceKind, DeviceSpec};
use custody_store::testing::TestDb;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Row;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("ada@x.example", Role::Admin, None).await;
    let (cookie, _) = app.sign_in("ada@x.example", PASSWORD).await;
    let page = |path: &'static str| {
        app.request(Method::GET, path, None).header("cookie", format!("custody_session={cookie}")).send()
    };
    let responses = [
        ("sign-in page", app.request(Method::GET, "/login", None).send().await.unwrap()),
        ("console page", page("/people").await.unwrap()),
        (
            "API answer",
            app.request(Method::GET, "/api/v1/me", Some(&token))
                .header("origin", "https://evil.example")
                .send()
                .await
                .unwrap(),
        ),
        ("problem", app.request(Method::GET, "/api/v1/people/none", Some(&token)).send().await.unwrap()),
        ("unknown page", page("/no/such/page").await.unwrap()),
        ("stylesheet", app.request(Method::GET, "/static/custody.css", None).send().await.unwrap()),
        ("script", app.request(Method::GET, "/static/custody.js", None).send().await.unwrap()),
        ("probe", app.request(Method::GET, "/healthz", None).send().await.unwrap()),
    ];
    for (what, response) in &responses {
        assert_eq!(header(response, "content-security-policy").as_deref(), Some(CSP), "{what}");
        assert_eq!(header(response, "x-content-type-options").as_deref(), Some("nosniff"), "{what}");
        assert_eq!(header(response, "x-frame-options").as_deref(), Some("DENY"), "{what}");
        assert_eq!(header(response, "referrer-policy").as_deref(), Some("same-origin"), "{what}");
        assert_eq!(header(response, "strict-transport-security"), None, "{what}: plain HTTP sends no HSTS");
        assert_eq!(header(response, "server"), None, "{what}: no product or version");
        assert_eq!(header(response, "access-control-allow-origin"), None, "{what}: no CORS");
        let cache = header(response, "cache-control").unwrap_or_default();
        let public = matches!(*what, "stylesheet" | "script");
        assert_eq!(cache == "no-store", !public, "{what}: {cache}");
    }
    let script = responses.iter().find(|(what, _)| *what == "script").unwrap();
    assert_eq!(script.1.status(), StatusCode::OK);
    // Swagger UI's policy differs only by the hash of its logo's style element.
    let docs = app.request(Method::GET, "/api/docs/", None).send().await.unwrap();
    let policy = header(&docs, "content-security-policy").unwrap();
    assert!(policy.contains("script-src 'self';") && policy.contains("style-src 'self' 'sha256-"), "{policy}");
}

#[tokio::test]
async fn hsts_is_sent_when_custody_serves_tls_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = server_certificate();
    let (cert_path, key_path) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    std::fs::write(&cert_path, &cert).unwrap();
    std::fs::write(&key_path, &key).unwrap();
    let tls = TestApp::spawn_with(TestDb::sqlite().await, |c| {
        c.tls_cert = Some(cert_path.clone());
        c.tls_key = Some(key_path);
    })
    .await;
    assert!(tls.base.starts_with("https://"));
    let url = format!("{}/login", tls.base);
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-s", "-D", "-", "-o", "/dev/null", "--cacert"])
            .arg(cert_path)
            .arg(url)
            .output()
    })
    .await
    .unwrap()
    .expect("curl runs");
    let headers = String::from_utf8_lossy(&output.stdout).to_lowercase();
    assert!(headers.starts_with("http/1.1 200"), "{headers}");
    assert!(headers.contains("\r\nstrict-transport-security: max-age=31536000\r\n"), "{headers}");
    assert!(headers.contains("\r\ncontent-security-policy: default-src 'self';"), "{headers}");
}

#[tokio::test]
async fn requests_without_credentials_are_limited_per_address() {
    let app = TestApp::spawn_with(TestDb::sqlite().await, |c| {
        c.limits.anonymous_per_second = 1;
        c.limits.anonymous_burst = 5;
    })
    .await;
    let (_, token) = app.user_with_token("ada@x.example", Role::Admin, None).await;
    for _ in 0..5 {
        assert_eq!(app.request(Method::GET, "/login", None).send().await.unwrap().status(), StatusCode::OK);
    }
    let refused = app.request(Method::GET, "/api/v1/openapi.json", None).send().await.unwrap();
    let retry: i64 = header(&refused, "retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(problem(refused, StatusCode::TOO_MANY_REQUESTS).await["type"], "/problems/rate-limited");
    // Devices and probes are not limited.
    assert_eq!(app.request(Method::GET, "/healthz", None).send().await.unwrap().status(), StatusCode::OK);
    let scep = app.request(Method::GET, "/scep?operation=GetCACaps", None).send().await.unwrap();
    assert_eq!(scep.status(), StatusCode::OK);
    let connect = app.request(Method::PUT, "/mdm/connect", None).body("not a plist").send().await.unwrap();
    assert_ne!(connect.status(), StatusCode::TOO_MANY_REQUESTS);
    // An address whose bucket is empty is refused even with a token: invented tokens must not
    // be a way around the limit.
    let with_token = app.get("/api/v1/me", &token).await;
    assert_eq!(with_token.status(), StatusCode::TOO_MANY_REQUESTS);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(app.get("/api/v1/me", &token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_tokens_pay_for_their_address_and_each_credential_has_its_own_bucket() {
    let app = TestApp::spawn_with(TestDb::sqlite().await, |c| {
        c.limits.anonymous_per_second = 1;
        c.limits.anonymous_burst = 3;
        c.limits.credential_per_second = 1;
        c.limits.credential_burst = 4;
    })
    .await;
    let (_, one) = app.user_with_token("ada@x.example", Role::Admin, None).await;
    let (_, two) = app.user_with_token("bea@x.example", Role::Auditor, None).await;
    // A valid token may burst past the address's limit: it has its own bucket.
    for _ in 0..4 {
        assert_eq!(app.get("/api/v1/me", &one).await.status(), StatusCode::OK);
    }
    let limited = app.get("/api/v1/me", &one).await;
    assert!(limited.headers().contains_key("retry-after"));
    problem(limited, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(app.get("/api/v1/me", &two).await.status(), StatusCode::OK, "another token is not held back");
    // Invented tokens: each is a 401 charged to the address, until the address is refused.
    let mut statuses = Vec::new();
    for i in 0..5 {
        statuses.push(app.get("/api/v1/me", &format!("cst_invented{i}")).await.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    assert_eq!(app.request(Method::GET, "/login", None).send().await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_default_limits_leave_room_for_busy_clients() {
    let config = custody::Config::default();
    assert_eq!((config.limits.anonymous_per_second, config.limits.anonymous_burst), (50, 200));
    assert!(config.limits.credential_per_second >= 10_000, "the API benchmark sends ~7,000 requests/s on one token");
    // And they are on: one address gets its burst of 200, then is held to 50 a second.
    let app = TestApp::spawn().await;
    let started = std::time::Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..400 {
        statuses.push(app.request(Method::GET, "/static/custody.css", None).send().await.unwrap().status().as_u16());
    }
    assert!(statuses[..200].iter().all(|s| *s == 200), "the burst");
    let refused = statuses.iter().filter(|s| **s == 429).count();
    let allowed = 200.0 + 50.0 * started.elapsed().as_secs_f64();
    assert!(refused > 0 && (400 - refused) as f64 <= allowed + 1.0, "{refused} refused of 400");
}

async fn me_with(app: &TestApp, cookie: &str) -> StatusCode {
    app.request(Method::GET, "/api/v1/me", None)
        .header("cookie", format!("custody_session={cookie}"))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn signing_in_makes_a_new_session_and_ends_the_one_the_browser_held() {
    let app = TestApp::spawn_with(TestDb::sqlite().await, |c| c.auth.credential_cache_ms = 0).await;
    app.user_with_token("ada@x.example", Role::Auditor, None).await;
    app.user_with_token("bea@x.example", Role::Auditor, None).await;
    let (first, _) = app.sign_in("ada@x.example", PASSWORD).await;
    assert_eq!(me_with(&app, &first).await, StatusCode::OK);

    // Signing in again from the same browser (its cookie sent along) rotates the secret.
    let again = app
        .request(Method::POST, "/api/v1/session", None)
        .header("cookie", format!("custody_session={first}"))
        .json(&json!({"email": "ada@x.example", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    let second = session_cookie(&again).unwrap();
    assert_ne!(second, first);
    assert_eq!(me_with(&app, &first).await, StatusCode::UNAUTHORIZED, "the old secret is dead");
    assert_eq!(me_with(&app, &second).await, StatusCode::OK);

    // A value planted in the browser before sign-in (fixation) is never adopted; the console's
    // sign-in form ends a real planted session too.
    let (planted, _) = app.sign_in("bea@x.example", PASSWORD).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let form = client
        .post(format!("{}/login", app.base))
        .header("cookie", format!("custody_session={planted}"))
        .form(&[("email", "ada@x.example"), ("password", PASSWORD), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::SEE_OTHER);
    let third = session_cookie(&form).unwrap();
    assert!(third != planted && third != second);
    assert_eq!(me_with(&app, &planted).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_with(&app, &third).await, StatusCode::OK);

    // The console's sign-in refuses a form posted from another site (login CSRF).
    let cross = client
        .post(format!("{}/login", app.base))
        .header("origin", "https://evil.example")
        .form(&[("email", "ada@x.example"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    assert!(session_cookie(&cross).is_none());
}

#[tokio::test]
async fn sessions_end_when_idle_and_at_the_end_of_their_whole_lifetime() {
    let defaults = custody::Config::default().auth;
    assert_eq!((defaults.session_idle_minutes, defaults.session_max_hours), (30, 12), "NIST SP 800-63B AAL2");
    let app = TestApp::spawn_with(TestDb::sqlite().await, |c| c.auth.credential_cache_ms = 0).await;
    app.user_with_token("ada@x.example", Role::Auditor, None).await;
    let now = custody_store::now_ms();
    let expires = |session: &str| {
        let pool = app.app().store.pool().clone();
        let hash = custody_app::auth::sha256_hex(session);
        async move {
            let row = sqlx::query("SELECT expires_at FROM sessions WHERE secret_hash = $1")
                .bind(hash)
                .fetch_one(&pool)
                .await
                .unwrap();
            row.try_get::<i64, _>("expires_at").unwrap()
        }
    };

    // A new session lasts the idle time.
    let (idle, _) = app.sign_in("ada@x.example", PASSWORD).await;
    let at = expires(&idle).await;
    assert!((at - (now + 30 * 60_000)).abs() < 10_000, "{at}");
    app.exec_owned(format!(
        "UPDATE sessions SET expires_at = {} WHERE secret_hash = '{}'",
        now - 1,
        custody_app::auth::sha256_hex(&idle)
    ))
    .await;
    assert_eq!(me_with(&app, &idle).await, StatusCode::UNAUTHORIZED, "idle too long");

    // Use slides the idle expiry, but never past twelve hours after sign-in.
    let (old, _) = app.sign_in("ada@x.example", PASSWORD).await;
    let created = now - 12 * 3_600_000 + 10 * 60_000;
    app.exec_owned(format!(
        "UPDATE sessions SET created_at = {created}, last_seen_at = {} WHERE secret_hash = '{}'",
        now - 5 * 60_000,
        custody_app::auth::sha256_hex(&old)
    ))
    .await;
    assert_eq!(me_with(&app, &old).await, StatusCode::OK);
    assert_eq!(expires(&old).await, created + 12 * 3_600_000, "slid to the end of its lifetime only");
    app.exec_owned(format!(
        "UPDATE sessions SET created_at = {}, expires_at = {} WHERE secret_hash = '{}'",
        now - 12 * 3_600_000 - 1,
        now + 30 * 60_000,
        custody_app::auth::sha256_hex(&old)
    ))
    .await;
    assert_eq!(me_with(&app, &old).await, StatusCode::UNAUTHORIZED, "twelve hours after sign-in");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn passwords_and_secrets_never_reach_the_audit_log() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.user_with_token("ada@x.example", Role::Admin, None).await;
    let wrong = "a wrong but memorable passphrase";
    let failed = app
        .send_json(Method::POST, "/api/v1/session", None, &json!({"email": "ada@x.example", "password": wrong}))
        .await;
    assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
    let (cookie, csrf) = app.sign_in("ada@x.example", PASSWORD).await;
    let new_password = "a brand new long passphrase";
    let changed = app
        .request(Method::PUT, "/api/v1/me/password", None)
        .header("cookie", format!("custody_session={cookie}"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"current_password": PASSWORD, "new_password": new_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    let created: Value =
        app.send_json(Method::POST, "/api/v1/tokens", Some(&admin), &json!({"name": "ci"})).await.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap();
    let user = app
        .send_json(
            Method::POST,
            "/api/v1/users",
            Some(&admin),
            &json!({"email": "bea@x.example", "roles": ["auditor"], "password": "an initial long passphrase"}),
        )
        .await;
    assert_eq!(user.status(), StatusCode::CREATED);
    let rows = sqlx::query("SELECT * FROM audit_events").fetch_all(app.app().store.pool()).await.unwrap();
    let text: String = rows
        .iter()
        .flat_map(|row| (0..row.len()).filter_map(|i| row.try_get::<Option<String>, _>(i).ok().flatten()))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(text.contains("session.sign_in_failed") && text.contains("session.create"), "sign-ins are audited");
    for secret in [wrong, PASSWORD, new_password, "an initial long passphrase", secret, &admin, &cookie, &csrf] {
        assert!(!text.contains(secret), "the audit log holds a secret: {secret}");
    }
}

#[tokio::test]
async fn passwords_are_long_any_text_untruncated_and_changed_only_with_the_current_one() {
    let app = TestApp::spawn().await;
    app.user_with_token("ada@x.example", Role::Auditor, None).await;
    let (cookie, csrf) = app.sign_in("ada@x.example", PASSWORD).await;
    let change = |current: String, new: String| {
        app.request(Method::PUT, "/api/v1/me/password", None)
            .header("cookie", format!("custody_session={cookie}"))
            .header("x-csrf-token", &csrf)
            .json(&json!({"current_password": current, "new_password": new}))
            .send()
    };
    let short = change(PASSWORD.into(), "elevenchars".into()).await.unwrap();
    assert_eq!(common::fields(&problem(short, StatusCode::UNPROCESSABLE_ENTITY).await), ["new_password"]);
    let not_current = change("not the password!".into(), "a perfectly fine passphrase".into()).await.unwrap();
    assert_ne!(not_current.status(), StatusCode::NO_CONTENT, "the current password is required");
    // Any characters, no composition rules, 200 of them, none cut off.
    let long: String = "ünïcødé pässphrase ☃ ".chars().cycle().take(200).collect();
    assert_eq!(change(PASSWORD.into(), long.clone()).await.unwrap().status(), StatusCode::NO_CONTENT);
    let sign_in = |password: String| {
        let body = json!({"email": "ada@x.example", "password": password});
        app.request(Method::POST, "/api/v1/session", None).json(&body).send()
    };
    assert_eq!(sign_in(long.chars().take(199).collect()).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sign_in(long).await.unwrap().status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_client_certificate_header_is_trusted_only_when_configured() {
    let mdm = Mdm::start(TestDb::sqlite().await, |_| {}).await;
    let device = mdm.enroll(DeviceSpec::numbered(DeviceKind::IPhone, 8)).await;
    let header = format!(
        ":{}:",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, device.identity().certificate_der())
    );
    let connect = |base: String| {
        mdm.http
            .put(format!("{base}/mdm/connect"))
            .header("content-type", custody_sim::CONNECT_CONTENT_TYPE)
            .header("client-cert", header.clone())
            .body(device.idle_body())
            .send()
    };
    // By default no proxy is trusted: the header alone identifies nobody.
    assert_eq!(connect(mdm.app.base.clone()).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    // A node told that its proxy passes the certificate in `Client-Cert` takes it.
    let mut config = mdm.app.config.clone();
    config.mdm.client_cert_header = Some("Client-Cert".into());
    let proxied = custody::Server::start(&config, mdm.app.app().clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    assert_eq!(connect(proxied.url()).await.unwrap().status(), StatusCode::OK);
    proxied.stop().await.unwrap();
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_before_they_are_read() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("ada@x.example", Role::Admin, None).await;
    let big = format!("{{\"given_name\": \"{}\"}}", "x".repeat(3 * 1024 * 1024));
    let response = app
        .request(Method::POST, "/api/v1/people", Some(&token))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(response, StatusCode::PAYLOAD_TOO_LARGE).await["type"], "/problems/too-large");
}

/// Opens a value sealed by `app::mdm` (base64 of `scep::seal_key`'s output) with `key`.
fn open(sealed: &str, key: &[u8; 32]) -> Result<Vec<u8>, scep::SealError> {
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, sealed).unwrap();
    scep::open_key(&bytes, key)
}

#[tokio::test]
async fn the_ca_key_push_key_unlock_tokens_and_challenges_are_sealed_at_rest() {
    let mdm = Mdm::start(TestDb::sqlite().await, |_| {}).await;
    let device = mdm.enroll(DeviceSpec::numbered(DeviceKind::IPhone, 7)).await;
    let key: [u8; 32] = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        mdm.app.config.mdm.secret_key.as_deref().unwrap(),
    )
    .unwrap()
    .try_into()
    .unwrap();
    let pool = mdm.app.app().store.pool();
    let one = |sql: &'static str| async move {
        let row = sqlx::query(sql).fetch_one(pool).await.unwrap();
        row.try_get::<String, _>(0).unwrap()
    };
    let ca = one("SELECT key_sealed FROM mdm_ca").await;
    let push = one("SELECT key_sealed FROM push_certificates").await;
    let unlock = one("SELECT unlock_token_sealed FROM mdm_enrollments").await;
    let challenge = one("SELECT value_sealed FROM scep_challenges").await;
    let other_key = [7u8; 32];
    for (what, sealed) in [("CA key", &ca), ("push key", &push), ("UnlockToken", &unlock), ("challenge", &challenge)] {
        assert!(!sealed.contains("PRIVATE KEY") && !sealed.contains("-----"), "{what} is stored in the clear");
        assert!(open(sealed, &other_key).is_err(), "{what} opens with another key");
        let plain = open(sealed, &key).unwrap_or_else(|e| panic!("{what} does not open with mdm.secret_key: {e}"));
        if what.ends_with("key") {
            assert!(String::from_utf8_lossy(&plain).contains("PRIVATE KEY"), "{what} seals the private key");
        }
    }
    assert_eq!(open(&unlock, &key).unwrap(), device.unlock_token(), "the UnlockToken the device sent, sealed");
    let token_b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, device.unlock_token());
    let dump: Vec<String> = sqlx::query("SELECT * FROM mdm_enrollments")
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .flat_map(|row| (0..row.len()).filter_map(|i| row.try_get::<Option<String>, _>(i).ok().flatten()))
        .collect();
    assert!(!dump.iter().any(|v| v.contains(&token_b64) || v.contains(&hex(device.unlock_token()))));
    // Nor does the API give them out.
    let enrollment = mdm.enrollment(&device).await.to_string();
    assert!(!enrollment.contains(&token_b64) && !enrollment.to_lowercase().contains("unlock_token\":\""));
}

/// SQL metacharacters, wildcards, quotes, escapes, a NUL and non-ASCII text.
const HOSTILE: [&str; 11] = [
    "' OR 1=1 --",
    "' OR '1'='1",
    "\"; DROP TABLE people; --",
    "1); DELETE FROM agencies; --",
    "%",
    "_",
    "\\",
    "%' UNION SELECT secret_hash, 1 FROM sessions --",
    "a\u{0}b",
    "Ünïcødé ☃ 𝔘 مرحبا",
    "${jndi:ldap://x}/../../etc/passwd",
];

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// Every `(path with its parameters filled, query parameter names)` of the API's `GET`
/// operations, from the OpenAPI document.
fn get_operations() -> Vec<(String, Vec<String>, Vec<String>)> {
    let document = serde_json::to_value(custody_web::openapi_document()).unwrap();
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        let Some(get) = item.get("get") else { continue };
        let params = get["parameters"].as_array().cloned().unwrap_or_default();
        let of = |place: &str| -> Vec<String> {
            params.iter().filter(|p| p["in"] == place).map(|p| p["name"].as_str().unwrap().to_string()).collect()
        };
        operations.push((path.clone(), of("path"), of("query")));
    }
    operations
}

/// Strings that name the other agency or its person: none may reach the own agency's user.
fn foreign_marks(body: &str) -> bool {
    body.contains("\"BBB\"") || body.contains("Otto") || body.contains("Other Agency")
}

/// Rows of the tables a destructive injection would reach first.
async fn counts(app: &TestApp) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in ["people", "agencies", "users", "sessions", "api_tokens", "audit_events"] {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}")))
            .fetch_one(app.app().store.pool())
            .await
            .unwrap();
        counts.push(row.try_get::<i64, _>("n").unwrap());
    }
    counts
}

#[tokio::test]
async fn sql_metacharacters_in_search_and_filter_parameters_are_only_data() {
    for db in TestDb::all().await {
        let label = db.label;
        // Thousands of calls, some refused before their credential is read (charged to the
        // address): the limits have their own tests, so they are off here.
        let app = TestApp::spawn_with(db, |config| {
            config.limits.anonymous_per_second = 0;
            config.limits.credential_per_second = 0;
        })
        .await;
        app.agency("AAA", "Own Agency").await;
        app.agency("BBB", "Other Agency").await;
        let own = app.person("AAA", "Pat", "O'Brien").await;
        app.person("AAA", "Ana", "100%_Sure\\").await;
        app.person("BBB", "Otto", "Other").await;
        let (_, admin) = app.user_with_token("admin@its.example", Role::Admin, None).await;
        let (_, approver) = app.user_with_token("appr@aaa.example", Role::AgencyApprover, Some("AAA")).await;
        app.user_with_token("ada@x.example", Role::Admin, None).await;
        let (cookie, _) = app.sign_in("ada@x.example", PASSWORD).await;
        let people_before: Value = app.get("/api/v1/people?limit=100", &admin).await.json().await.unwrap();
        let agencies_before: Value = app.get("/api/v1/agencies", &admin).await.json().await.unwrap();
        let counts_before = counts(&app).await;

        // Searches treat the characters literally: a quote finds the name with a quote; the
        // wildcards find only names that hold them.
        let search = |q: &str| {
            let path = format!("/api/v1/people?q={}", encode(q));
            let (app, admin) = (&app, admin.clone());
            async move {
                let list: Value = app.get(&path, &admin).await.json().await.unwrap();
                let mut names: Vec<String> = list["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["family_name"].as_str().unwrap().to_string())
                    .collect();
                names.sort();
                names
            }
        };
        assert_eq!(search("o'b").await, ["O'Brien"], "{label}");
        assert_eq!(search("' OR 1=1 --").await, Vec::<String>::new(), "{label}");
        assert_eq!(search("%").await, ["100%_Sure\\"], "{label}");
        assert_eq!(search("_").await, ["100%_Sure\\"], "{label}");
        assert_eq!(search("\\").await, ["100%_Sure\\"], "{label}");
        // A NUL character (which PostgreSQL refuses in text) is a 400, in a URL or in JSON.
        let nul = app.get("/api/v1/people?q=a%00b", &admin).await;
        assert_eq!(problem(nul, StatusCode::BAD_REQUEST).await["type"], "/problems/nul-character", "{label}");
        let body = json!({"agency": "AAA", "given_name": "a\u{0}b", "family_name": "Nul"});
        let nul = app.send_json(Method::POST, "/api/v1/people", Some(&admin), &body).await;
        assert_eq!(problem(nul, StatusCode::BAD_REQUEST).await["type"], "/problems/nul-character", "{label}");

        // Every query and path parameter of every GET operation, as central IT and as an agency
        // user: never a 500, and never another agency's rows for the agency user.
        let mut failures = Vec::new();
        let mut calls = 0;
        for (path, path_params, query_params) in get_operations() {
            let mut urls = Vec::new();
            for param in &query_params {
                for value in HOSTILE {
                    let filled = path_params.iter().fold(path.clone(), |p, name| match name.as_str() {
                        "code" | "agency" => p.replace(&format!("{{{name}}}"), "AAA"),
                        _ => p.replace(&format!("{{{name}}}"), &own),
                    });
                    urls.push(format!("{filled}?{param}={}", encode(value)));
                }
            }
            for param in &path_params {
                for value in HOSTILE {
                    let mut filled = path.replace(&format!("{{{param}}}"), &encode(value));
                    for other in path_params.iter().filter(|p| *p != param) {
                        filled = filled.replace(&format!("{{{other}}}"), "AAA");
                    }
                    urls.push(filled);
                }
            }
            for url in urls {
                for (who, token) in [("admin", &admin), ("agency approver", &approver)] {
                    let response = app.get(&url, token).await;
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    calls += 1;
                    if status.is_server_error() {
                        failures.push(format!("{url} as {who}: {status} {body}"));
                    } else if who != "admin" && status.is_success() && foreign_marks(&body) {
                        failures.push(format!("{url} as {who}: another agency's rows: {body}"));
                    }
                }
            }
        }
        // The console's searches and filters.
        for (page, params) in [
            ("/people", &["q", "agency", "status", "sort", "cursor"][..]),
            ("/agencies", &["q", "sort", "cursor"]),
            ("/users", &["q", "agency", "sort", "cursor"]),
            ("/devices", &["q", "state", "agency", "cursor"]),
            ("/requests", &["status", "type", "agency", "cursor"]),
            ("/audit", &["object", "actor", "action", "from", "to", "cursor"]),
            ("/compliance", &["agency", "reason", "compliant", "cursor"]),
            ("/mdm", &["agency", "status", "cursor"]),
            ("/billing", &["period", "kind", "offset"]),
            ("/people.csv", &["q", "agency"]),
        ] {
            for param in params {
                for value in HOSTILE {
                    let url = format!("{page}?{param}={}", encode(value));
                    let response = app
                        .request(Method::GET, &url, None)
                        .header("cookie", format!("custody_session={cookie}"))
                        .send()
                        .await
                        .unwrap();
                    calls += 1;
                    if response.status().is_server_error() {
                        failures.push(format!("console {url}: {}", response.status()));
                    }
                }
            }
        }
        assert!(failures.is_empty(), "{label}: {} of {calls} calls:\n{}", failures.len(), failures.join("\n"));
        assert!(calls > 1_000, "{label}: {calls} calls");

        // Nothing changed, and the audit chain is whole.
        let people_after: Value = app.get("/api/v1/people?limit=100", &admin).await.json().await.unwrap();
        let agencies_after: Value = app.get("/api/v1/agencies", &admin).await.json().await.unwrap();
        assert_eq!(people_after, people_before, "{label}");
        assert_eq!(agencies_after, agencies_before, "{label}");
        assert_eq!(counts(&app).await, counts_before, "{label}");
        match custody_app::audit_log::verify(app.app()).await.unwrap() {
            custody_store::audit::Verification::Intact { events } => assert!(events > 0),
            broken => panic!("{label}: {broken:?}"),
        }
    }
}
