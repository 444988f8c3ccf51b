//! The test harness: the real server on a free port over a fresh database, and typed helpers to
//! talk to it.
#![allow(dead_code)]

pub mod billing;
pub mod mdm;
pub mod profiles;
pub mod smtp;
pub mod usage;

use custody::{Config, Server};
use custody_app::{Actor, App};
use custody_domain::agency::AgencyCode;
use custody_domain::role::{Role, RoleSet};
use custody_store::testing::TestDb;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub server: Server,
    pub db: TestDb,
    pub config: Config,
    pub client: reqwest::Client,
    pub base: String,
}

impl TestApp {
    /// The server over a fresh SQLite database.
    pub async fn spawn() -> Self {
        Self::spawn_with(TestDb::sqlite().await, |_| {}).await
    }

    /// The server over `db`, its configuration adjusted by `tweak`. The public URL (what
    /// enrollment profiles name) is the server's own address unless `tweak` sets one; the
    /// sealing key is a fresh one per server.
    pub async fn spawn_with(db: TestDb, tweak: impl FnOnce(&mut Config)) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut config = Config {
            database_url: Some(db.url.clone()),
            public_url: Some(format!("http://{}", listener.local_addr().unwrap())),
            ..Config::default()
        };
        let key: [u8; 32] = rand::random();
        config.mdm.secret_key = Some(base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key));
        tweak(&mut config);
        let app = App::new(db.store.clone(), config.app_config().unwrap());
        let server = Server::start_on(&config, app, listener).await.expect("server starts");
        let base = server.url();
        let client = reqwest::Client::builder().cookie_store(false).build().unwrap();
        Self { server, db, config, client, base }
    }

    pub fn app(&self) -> &App {
        &self.server.app
    }

    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let mut builder = self.client.request(method, format!("{}{}", self.base, path));
        if let Some(token) = token {
            builder = builder.bearer_auth(token);
        }
        builder
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, Some(token)).send().await.unwrap()
    }

    pub async fn send_json(&self, method: Method, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.request(method, path, token).json(body).send().await.unwrap()
    }

    /// Creates an agency through the application layer.
    pub async fn agency(&self, code: &str, name: &str) {
        let input = custody_domain::agency::AgencyDetailsInput { name: Some(name.into()), ..Default::default() };
        custody_app::agencies::create(self.app(), &Actor::system("test"), Some(code), input).await.unwrap();
    }

    /// Creates a person in `agency` and returns the id.
    pub async fn person(&self, agency: &str, given: &str, family: &str) -> String {
        let input = custody_domain::person::PersonInput {
            given_name: Some(given.into()),
            family_name: Some(family.into()),
            ..Default::default()
        };
        custody_app::people::create(self.app(), &Actor::system("test"), Some(agency), input).await.unwrap().id
    }

    /// Creates a user holding `role` (in `agency` for agency roles) with password [`PASSWORD`],
    /// and an API token for it. Returns (user id, token).
    pub async fn user_with_token(&self, email: &str, role: Role, agency: Option<&str>) -> (String, String) {
        let actor = Actor::system("test");
        let input = custody_app::users::NewUserInput {
            email: Some(email.into()),
            display_name: None,
            roles: vec![role.as_str().into()],
            agency: agency.map(str::to_string),
            password: Some(PASSWORD.into()),
        };
        let user = custody_app::users::create(self.app(), &actor, input).await.unwrap();
        let token = self.token_for(&user.id, role, agency).await;
        (user.id, token)
    }

    /// A new token for an existing user.
    pub async fn token_for(&self, user_id: &str, role: Role, agency: Option<&str>) -> String {
        let actor = Actor::system("test");
        let agency = agency.map(|a| AgencyCode::parse(a).unwrap());
        let mut tx = self.app().store.write().await.unwrap();
        let roles = RoleSet::new(vec![role]);
        let issued =
            custody_app::tokens::issue(&mut tx, &actor, user_id, "test", &roles, agency.as_ref(), None).await.unwrap();
        tx.commit().await.unwrap();
        issued.secret
    }

    /// A new API token for the user with this e-mail, holding all the user's roles.
    pub async fn token_for_email(&self, email: &str) -> String {
        let user = {
            let mut conn = self.app().store.conn().await.unwrap();
            custody_store::users::by_email(&mut conn, email).await.unwrap().expect("user exists")
        };
        let actor = Actor::system("test");
        let mut tx = self.app().store.write().await.unwrap();
        let agency = user.agency_code.as_deref().map(|a| AgencyCode::parse(a).unwrap());
        let issued = custody_app::tokens::issue(&mut tx, &actor, &user.id, "test", &user.roles, agency.as_ref(), None)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        issued.secret
    }

    /// Signs in through the API; returns (session cookie value, CSRF token).
    pub async fn sign_in(&self, email: &str, password: &str) -> (String, String) {
        let response =
            self.send_json(Method::POST, "/api/v1/session", None, &json!({"email": email, "password": password})).await;
        assert_eq!(response.status(), StatusCode::CREATED, "sign-in of {email}");
        let cookie = session_cookie(&response).expect("a session cookie");
        let body: Value = response.json().await.unwrap();
        (cookie, body["csrf_token"].as_str().unwrap().to_string())
    }

    /// The number of audit events.
    pub async fn audit_count(&self) -> i64 {
        use sqlx::Row;
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM audit_events").fetch_one(self.app().store.pool()).await.unwrap();
        row.try_get("n").unwrap()
    }

    /// Runs a SQL statement directly against the database (to tamper, in tests).
    pub async fn exec(&self, sql: &'static str) {
        sqlx::query(sql).execute(self.app().store.pool()).await.unwrap();
    }

    /// Like [`TestApp::exec`], for a statement built at run time (tests only: no user input).
    pub async fn exec_owned(&self, sql: String) {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(self.app().store.pool()).await.unwrap();
    }
}

/// The value of the session cookie set by `response`.
pub fn session_cookie(response: &Response) -> Option<String> {
    set_cookie_header(response)?.split(';').next()?.split_once('=').map(|(_, v)| v.to_string())
}

/// The raw `Set-Cookie` header for the session cookie.
pub fn set_cookie_header(response: &Response) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("custody_session="))
        .map(str::to_string)
}

/// Asserts a problem document with `status`, and returns it.
pub async fn problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status, "unexpected status");
    let content_type = response.headers().get("content-type").unwrap().to_str().unwrap().to_string();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    assert!(body["type"].is_string() && body["title"].is_string(), "{body}");
    body
}

/// The fields a problem document names.
pub fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| errors.iter().map(|e| e["field"].as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_default()
}

impl TestApp {
    /// A device of `agency` in `state`, written straight to the store (for tests of what
    /// happens next). Returns its id.
    pub async fn device_in_state(
        &self,
        agency: &str,
        model_id: &str,
        state: custody_domain::device::DeviceState,
    ) -> String {
        let now = custody_store::now_ms();
        let id = custody_store::new_id();
        let device = custody_store::devices::DeviceRow {
            id: id.clone(),
            agency_code: agency.into(),
            state,
            device_type: custody_domain::catalog::DeviceType::Tablet,
            model_id: model_id.into(),
            serial: None,
            imei: None,
            meid: None,
            funding: "standard".into(),
            ordered_for: None,
            holder_id: None,
            line_id: None,
            request_id: None,
            location: "deployment_center".into(),
            accessories: String::new(),
            enrolled_at: None,
            billing_stop_at: None,
            destination: None,
            created_at: now,
            updated_at: now,
        };
        let mut conn = self.app().store.conn().await.unwrap();
        custody_store::devices::insert(&mut conn, &device).await.unwrap();
        id
    }

    /// A legal hold in force on a device, written straight to the store. Returns its id.
    pub async fn hold_on(&self, agency: &str, device_id: &str) -> String {
        let hold = custody_store::devices::HoldRow {
            id: custody_store::new_id(),
            agency_code: agency.into(),
            matter: "Test matter".into(),
            person_id: None,
            device_id: Some(device_id.into()),
            placed_by: "test".into(),
            placed_at: custody_store::now_ms(),
            released_by: None,
            released_at: None,
        };
        let mut conn = self.app().store.conn().await.unwrap();
        custody_store::devices::insert_hold(&mut conn, &hold).await.unwrap();
        hold.id
    }
}

/// A complete sanitization record (NIST SP 800-88 fields) with `method_type`.
pub fn sanitization_record(method_type: &str) -> Value {
    json!({
        "performer_name": "Pat Technician", "performer_title": "EUC Technician", "performer_organization": "ITS EUC",
        "performer_location": "Deployment Center", "performer_phone": "+15185550199", "media_make": "Apple",
        "media_model": "iPad", "media_serial": "ANY", "media_type": "flash memory", "classification": "Confidential",
        "data_backed_up": "no", "method_type": method_type, "method_used": "crypto erase", "tool": "Configurator",
        "verification_method": "erase status verified", "post_classification": "Unclassified",
        "destination": "recycling"
    })
}

impl TestApp {
    /// A sanitization record on a device performed by `performer` (a user id), validated or not,
    /// written straight to the store.
    pub async fn sanitization_on(
        &self,
        agency: &str,
        device_id: &str,
        method_type: &str,
        performer: &str,
        validated: bool,
    ) {
        let mut errors = custody_domain::FieldErrors::new();
        let record = custody_domain::sanitization::parse_record(&sanitization_record(method_type), &mut errors)
            .expect("a complete record");
        let row = custody_store::devices::SanitizationRow {
            id: custody_store::new_id(),
            device_id: device_id.into(),
            agency_code: agency.into(),
            method_type: method_type.into(),
            record: serde_json::to_string(&record).unwrap(),
            performed_by: performer.into(),
            performed_by_label: "someone".into(),
            performed_at: custody_store::now_ms(),
            validation: None,
            validated_by: None,
            validated_by_label: None,
            validated_at: None,
            erase_request_id: None,
        };
        let mut conn = self.app().store.conn().await.unwrap();
        custody_store::devices::insert_sanitization(&mut conn, &row).await.unwrap();
        if validated {
            let validation = r#"{"name":"Vic","title":"Supervisor","organization":"ITS","phone":null}"#;
            custody_store::devices::validate_sanitization(
                &mut conn,
                &row.id,
                validation,
                "v",
                "v",
                custody_store::now_ms(),
            )
            .await
            .unwrap();
        }
    }
}

impl TestApp {
    /// An enrolled device of `agency` written straight to the store (no SCEP, no check-in), for
    /// tests of the API around enrollments. Returns (enrollment id, certificate serial).
    pub async fn enrollment_on(&self, agency: &str, udid: &str) -> (String, String) {
        use custody_store::mdm::{CertificateRow, EnrollmentRow};
        let now = custody_store::now_ms();
        let serial = format!("{:032x}", rand::random::<u128>());
        let mut tx = self.app().store.write().await.unwrap();
        let certificate = CertificateRow {
            serial: serial.clone(),
            agency_code: agency.into(),
            subject: format!("CN={udid}"),
            challenge_id: None,
            renewed_from: None,
            cert_pem: String::new(),
            not_before: now,
            not_after: now + 86_400_000,
            issued_at: now,
            udid: Some(udid.into()),
            revoked_at: None,
            revocation_reason: None,
        };
        custody_store::mdm::insert_certificate(&mut tx, &certificate).await.unwrap();
        let enrollment = EnrollmentRow {
            id: custody_store::new_id(),
            udid: udid.into(),
            agency_code: agency.into(),
            device_id: None,
            status: "enrolled".into(),
            cert_serial: serial.clone(),
            topic: None,
            serial_number: None,
            imei: None,
            meid: None,
            product_name: None,
            model: None,
            model_name: None,
            device_name: None,
            os_version: None,
            build_version: None,
            push_token: None,
            push_magic: None,
            unlock_token_sealed: None,
            token_invalid_at: None,
            authenticated_at: now,
            enrolled_at: Some(now),
            last_seen_at: now,
            checked_out_at: None,
            created_at: now,
            updated_at: now,
        };
        custody_store::mdm::insert_enrollment(&mut tx, &enrollment).await.unwrap();
        tx.commit().await.unwrap();
        (enrollment.id, serial)
    }

    /// A queued `SecurityInfo` command for an enrollment; returns its id.
    /// A pending erase request for the enrollment, asked by someone else, written straight to
    /// the store. Returns its id.
    pub async fn erase_request_for(&self, enrollment_id: &str) -> String {
        let row = custody_store::mdm::EraseRequestRow {
            id: custody_store::new_id(),
            enrollment_ids: vec![enrollment_id.to_string()],
            agency_code: None,
            reason: "lost in a flood".into(),
            status: "pending".into(),
            device_command_id: None,
            sanitization_id: None,
            requested_by: "someone-else".into(),
            requested_by_label: "someone@else.example".into(),
            requested_at: custody_store::now_ms(),
            decided_by: None,
            decided_by_label: None,
            decided_at: None,
            decision_note: None,
        };
        let mut conn = self.app().store.conn().await.unwrap();
        custody_store::mdm::insert_erase_request(&mut conn, &row).await.unwrap();
        row.id
    }

    pub async fn command_for(&self, enrollment_id: &str) -> String {
        let input = custody_app::mdm::NewCommands {
            devices: vec![enrollment_id.to_string()],
            request_type: "SecurityInfo".into(),
            params: serde_json::json!({}),
        };
        let (_, rows) = custody_app::mdm::enqueue(self.app(), &Actor::system("test"), input).await.unwrap();
        rows[0].id.clone()
    }
}

/// A push certificate (PEM) for uploads in tests.
pub fn push_certificate_pem() -> String {
    apns::standin::fake_push_certificate_pem("com.apple.mgmt.External.0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b").unwrap()
}

/// A self-signed server certificate for 127.0.0.1 (PEM certificate, PEM key).
pub fn server_certificate() -> (Vec<u8>, Vec<u8>) {
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::x509::extension::SubjectAlternativeName;
    use openssl::x509::{X509, X509NameBuilder};
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "127.0.0.1").unwrap();
    let name = name.build();
    let mut builder = X509::builder().unwrap();
    builder.set_version(2).unwrap();
    builder.set_subject_name(&name).unwrap();
    builder.set_issuer_name(&name).unwrap();
    builder.set_pubkey(&key).unwrap();
    builder.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
    builder.set_not_after(&Asn1Time::days_from_now(2).unwrap()).unwrap();
    let san = SubjectAlternativeName::new().ip("127.0.0.1").build(&builder.x509v3_context(None, None)).unwrap();
    builder.append_extension(san).unwrap();
    builder.sign(&key, MessageDigest::sha256()).unwrap();
    (builder.build().to_pem().unwrap(), key.private_key_to_pem_pkcs8().unwrap())
}
