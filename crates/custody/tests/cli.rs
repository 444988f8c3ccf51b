//! The binary as an operator uses it: serve on SQLite or PostgreSQL, migrate, admin commands
//! against a database a server is using, configuration from file and environment.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestApp;
use custody_store::testing::TestDb;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn custody() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_custody"));
    command.env_remove("CUSTODY_CONFIG").env_remove("CUSTODY_LISTEN").env_remove("CUSTODY_DATABASE_URL");
    command
}

/// Runs a command to completion off the runtime's thread: a server in this process keeps
/// serving (and finishes the transactions it holds) while the command uses its database.
async fn run(args: &[&str]) -> std::process::Output {
    let mut command = custody();
    command.args(args);
    tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
}

/// A `custody serve` process; killed when dropped.
struct Process {
    child: Child,
    url: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary with `args` and waits for it to say where it serves.
fn spawn_serving(mut command: Command) -> Process {
    let mut child = command.stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("Custody is serving on ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let url = rx.recv_timeout(Duration::from_secs(30)).expect("the server reports its address");
    Process { child, url }
}

/// The database every binary test runs on: PostgreSQL when configured, SQLite otherwise.
async fn database() -> TestDb {
    match TestDb::postgres_url() {
        Some(url) => TestDb::postgres(&url).await,
        None => TestDb::sqlite().await,
    }
}

#[tokio::test]
async fn serve_migrates_and_answers_on_the_configured_database() {
    let db = database().await;
    let process = spawn_serving({
        let mut c = custody();
        c.args(["serve", "--listen", "127.0.0.1:0", "--database-url", &db.url]);
        c
    });
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = client.get(format!("{}/readyz", process.url)).send().await.unwrap();
        if ready.status() == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "not ready on {}", db.label);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(client.get(format!("{}/healthz", process.url)).send().await.unwrap().status(), StatusCode::OK);
    let openapi: Value =
        client.get(format!("{}/api/v1/openapi.json", process.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(openapi["openapi"], "3.1.0");
    let docs = client.get(format!("{}/api/docs/", process.url)).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().contains("swagger"), "Swagger UI is served from the binary");

    // SIGTERM drains and exits cleanly.
    let mut process = process;
    let pid = process.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = process.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn migrate_applies_once() {
    let dir = tempfile::tempdir().unwrap();
    let run = || custody().args(["migrate", "--data-dir"]).arg(dir.path()).output().unwrap();
    let first = run();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let expected = format!("{} migration(s) applied", custody_store::migrate::latest_version());
    assert!(
        String::from_utf8_lossy(&first.stdout).starts_with(&expected),
        "{}",
        String::from_utf8_lossy(&first.stdout)
    );
    assert!(dir.path().join("custody.db").exists());
    let second = run();
    assert!(String::from_utf8_lossy(&second.stdout).starts_with("0 migration(s) applied"));
    if let Some(url) = TestDb::postgres_url() {
        // A fresh schema on PostgreSQL migrates from the command line too.
        let db = TestDb::postgres(&url).await;
        let again = custody().args(["migrate", "--database-url", &db.url]).output().unwrap();
        assert!(
            String::from_utf8_lossy(&again.stdout).starts_with("0 migration(s) applied"),
            "already migrated by the harness"
        );
    }
}

#[tokio::test]
async fn admin_commands_work_while_a_server_uses_the_database() {
    let app = TestApp::spawn_with(database().await, |_| {}).await;
    app.agency("AAA", "Alpha Agency").await;

    let url = app.db.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        let mut child = custody()
            .args(["admin", "create-user", "--email", "Hana@Alpha.example", "--role", "agency_approver"])
            .args(["--agency", "AAA", "--password-stdin", "--database-url", &url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"a long enough passphrase\n").unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let (_, csrf) = app.sign_in("hana@alpha.example", "a long enough passphrase").await;
    assert!(!csrf.is_empty());

    let output =
        run(&["admin", "create-token", "--role", "auditor", "--name", "siem-export", "--database-url", &app.db.url])
            .await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let token = stdout.lines().last().unwrap().trim();
    assert!(token.starts_with("cst_"), "{stdout}");
    let me: Value = app.get("/api/v1/me", token).await.json().await.unwrap();
    assert_eq!(me["roles"], json!(["auditor"]));
    assert_eq!(me["label"], "siem-export");
    let events = app.get("/api/v1/audit-events?action=token.create", token).await;
    assert_eq!(events.status(), StatusCode::OK);

    // Errors are explained and exit non-zero.
    let bad = run(&["admin", "create-token", "--role", "root", "--name", "x", "--database-url", &app.db.url]).await;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown role `root`"));
    let mixed = run(&[
        "admin",
        "create-token",
        "--role",
        "admin",
        "--agency",
        "AAA",
        "--name",
        "x",
        "--database-url",
        &app.db.url,
    ])
    .await;
    assert!(
        String::from_utf8_lossy(&mixed.stderr).contains("take no agency"),
        "{}",
        String::from_utf8_lossy(&mixed.stderr)
    );
    let verify = run(&["admin", "audit-verify", "--database-url", &app.db.url]).await;
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}

#[tokio::test]
async fn configuration_comes_from_a_file_then_the_environment_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("custody.toml");
    let from_file = dir.path().join("from-file");
    let from_env = dir.path().join("from-env");
    let from_flag = dir.path().join("from-flag");
    std::fs::write(&file, format!("data_dir = {:?}\n[log]\nformat = \"json\"\n", from_file.display().to_string()))
        .unwrap();
    let migrate = |env: Option<&std::path::Path>, flag: Option<&std::path::Path>| {
        let mut command = custody();
        command.arg("--config").arg(&file).arg("migrate");
        if let Some(env) = env {
            command.env("CUSTODY_DATA_DIR", env);
        }
        if let Some(flag) = flag {
            command.arg("--data-dir").arg(flag);
        }
        command.output().unwrap()
    };
    let output = migrate(None, None);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(from_file.join("custody.db").exists());
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(logs.lines().any(|l| l.starts_with('{') && l.contains("migration applied")), "JSON logs: {logs}");
    migrate(Some(&from_env), None);
    assert!(from_env.join("custody.db").exists());
    migrate(Some(&from_env), Some(&from_flag));
    assert!(from_flag.join("custody.db").exists());

    let missing = custody().args(["--config", "/nonexistent/custody.toml", "migrate"]).output().unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("does not exist"));
    let help = custody().args(["admin", "create-user", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("--password-stdin"));
}

#[tokio::test]
async fn demo_seeds_once_and_is_deterministic_for_a_seed() {
    let people = |dir: &std::path::Path| {
        let output = custody()
            .args(["demo", "--no-serve", "--people", "300", "--seed", "7", "--data-dir"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stderr).to_string()
    };
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    assert!(people(a.path()).contains("Seeded 8 agencies, 300 people and 2000 devices"));
    assert!(people(a.path()).contains("reusing"));
    people(b.path());
    let dump = |dir: std::path::PathBuf| async move {
        let url = format!("sqlite://{}", dir.join("custody.db").display());
        let store = custody_store::Store::connect(&url, &Default::default()).await.unwrap();
        let rows = sqlx::query(
            "SELECT id, agency_code, given_name, family_name, email, unit, title, status FROM people ORDER BY id",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        use sqlx::Row;
        rows.iter()
            .map(|r| (0..8).map(|i| r.try_get::<String, _>(i).unwrap_or_default()).collect::<Vec<_>>().join("|"))
            .collect::<Vec<_>>()
    };
    let (left, right) = (dump(a.path().to_path_buf()).await, dump(b.path().to_path_buf()).await);
    assert_eq!(left.len(), 300);
    assert_eq!(left, right, "the same seed gives the same people");

    // Every demo account signs in with the printed password.
    let db = TestDb::sqlite().await;
    let app = TestApp::spawn_with(db, |_| {}).await;
    custody_app::demo::seed(
        app.app(),
        &custody_app::demo::DemoOptions { seed: 1, people: 10, devices: 100, ..Default::default() },
    )
    .await
    .unwrap();
    for account in custody_app::demo::accounts() {
        let response = app
            .send_json(
                Method::POST,
                "/api/v1/session",
                None,
                &json!({"email": account.email, "password": custody_app::demo::DEMO_PASSWORD}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "{}", account.email);
    }
    assert!(custody_app::demo::accounts().len() >= 6 + 5 * 6);
}

#[tokio::test]
async fn demo_seeds_plans_and_requests_in_every_status() {
    use custody_domain::request::{RequestType, Status};
    use custody_store::requests::RequestFilter;
    let app = TestApp::spawn_with(database().await, |_| {}).await;
    let started = Instant::now();
    custody_app::demo::seed(
        app.app(),
        &custody_app::demo::DemoOptions { seed: 3, people: 400, devices: 400, ..Default::default() },
    )
    .await
    .unwrap();
    let elapsed = started.elapsed();
    let mut conn = app.app().store.conn().await.unwrap();

    let standings = custody_store::plans::standings(&mut conn, None).await.unwrap();
    assert_eq!(standings.len(), 8);
    let certified: Vec<&str> =
        standings.iter().filter(|s| s.certified_version == Some(1)).map(|s| s.agency_code.as_str()).collect();
    assert_eq!(certified.len(), 7, "{certified:?}");
    let oep = standings.iter().find(|s| s.agency_code == "OEP").unwrap();
    assert_eq!((oep.certified_version, oep.open_version), (None, Some(1)));
    assert_eq!(oep.open_status, Some(custody_domain::plan::PlanStatus::Submitted));
    let dcr = standings.iter().find(|s| s.agency_code == "DCR").unwrap();
    assert_eq!((dcr.certified_version, dcr.open_version), (Some(1), Some(2)));
    assert_eq!(dcr.open_status, Some(custody_domain::plan::PlanStatus::Draft));
    let plan = custody_store::plans::certified(&mut conn, "DRT").await.unwrap().unwrap();
    assert!((2..=4).contains(&plan.content.units.len()) && (2..=3).contains(&plan.content.named.len()));
    assert_eq!(plan.content.data_plan_exceptions.len(), 1);
    let approver = custody_store::users::by_email(&mut conn, "approver@drt.state.example").await.unwrap().unwrap();
    assert!(approver.financial_executive);

    let requests = custody_store::requests::list(&mut conn, &RequestFilter::default(), None, 1_000).await.unwrap();
    assert!((100..=200).contains(&requests.len()), "{} requests", requests.len());

    // MDM: enrolled in-service devices, bound to their inventory device but for three waiting
    // in EUC's unmatched queue, and a command batch in every outcome.
    let enrollments = custody_store::mdm::list_enrollments(&mut conn, &Default::default(), None, 1_000).await.unwrap();
    let unmatched = enrollments.iter().filter(|e| e.device_id.is_none()).count();
    assert!(enrollments.len() > 100 && unmatched == 3, "{} enrollments, {unmatched} unmatched", enrollments.len());
    let commands = custody_store::mdm::list_commands(&mut conn, &Default::default(), None, 1_000).await.unwrap();
    for status in ["acknowledged", "error", "queued"] {
        assert!(commands.iter().any(|c| c.status == status), "no {status} command");
    }
    assert!(custody_store::mdm::push_certificate(&mut conn).await.unwrap().is_some());
    for status in [
        Status::Draft,
        Status::AwaitingAgency,
        Status::AwaitingCentral,
        Status::Approved,
        Status::InFulfillment,
        Status::Fulfilled,
        Status::Rejected,
        Status::Cancelled,
    ] {
        assert!(requests.iter().any(|r| r.status == status), "no request is {status}");
    }
    for &kind in RequestType::ALL {
        assert!(requests.iter().any(|r| r.request_type == kind), "no {kind} request");
    }
    assert!(requests.iter().any(|r| r.details.international()), "an international order");
    assert!(requests.iter().any(|r| r.funding.as_deref() == Some("agency_funded")), "a non-standard device");

    // Backdated: filed over the last ~120 days, numbered in filing order, each timeline row
    // entered when the previous one happened, and nothing in the future.
    let now = custody_store::now_ms();
    let day = 86_400_000;
    let oldest = requests.iter().map(|r| r.created_at).min().unwrap();
    assert!(oldest < now - 60 * day && oldest > now - 121 * day, "oldest request {} days ago", (now - oldest) / day);
    let mut by_number = requests.clone();
    by_number.sort_by_key(|r| r.number);
    assert!(by_number.windows(2).all(|w| w[0].created_at <= w[1].created_at), "numbers follow filing times");
    for request in &requests {
        let timeline = custody_store::requests::transitions(&mut conn, &request.id).await.unwrap();
        assert_eq!(timeline[0].at, request.created_at);
        assert_eq!(timeline.last().unwrap().at, request.updated_at);
        assert!(request.updated_at <= now);
        for pair in timeline.windows(2) {
            assert_eq!(pair[1].entered_at, Some(pair[0].at), "request #{}", request.number);
        }
        let approvals = custody_store::requests::approvals(&mut conn, &request.id).await.unwrap();
        for approval in approvals {
            assert!(timeline.iter().any(|t| t.at == approval.decided_at), "approval at a timeline step");
        }
    }
    let overridden = sqlx::query("SELECT COUNT(*) AS n FROM request_approvals WHERE override_reason IS NOT NULL")
        .fetch_one(app.app().store.pool())
        .await
        .unwrap();
    use sqlx::Row;
    assert!(overridden.try_get::<i64, _>("n").unwrap() > 0, "some approvals override the plan check");

    // Every demo device has a chain of custody that starts at its order and ends in its state.
    let filter = custody_store::devices::DeviceFilter::default();
    let devices = custody_store::devices::list(&mut conn, &filter, None, 1_000).await.unwrap();
    assert!(devices.len() >= 400, "{} devices", devices.len());
    for device in &devices {
        let chain = custody_store::devices::custody_of(&mut conn, &device.id).await.unwrap();
        let mut chain: Vec<_> = chain.iter().collect();
        chain.sort_by_key(|e| e.at);
        assert_eq!(chain[0].event, "order", "{}", device.id);
        assert_eq!(chain.last().unwrap().to_state, device.state.as_str(), "{}", device.id);
        for pair in chain.windows(2) {
            assert_eq!(pair[1].from_state.as_deref(), Some(pair[0].to_state.as_str()), "{}", device.id);
        }
    }
    drop(conn);
    let verify = custody().args(["admin", "audit-verify", "--database-url", &app.db.url]).output().unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
    assert!(elapsed < Duration::from_secs(60), "seeding took {elapsed:?}");
}

#[tokio::test]
async fn demo_closes_billing_history_over_generated_agencies() {
    use custody_domain::billing::Period;
    let app = TestApp::spawn_with(database().await, |_| {}).await;
    let options =
        custody_app::demo::DemoOptions { seed: 5, people: 240, devices: 1_200, agencies: 12, billing_months: 6 };
    custody_app::demo::seed(app.app(), &options).await.unwrap();
    let mut conn = app.app().store.conn().await.unwrap();

    let accounts = custody_store::billing::agency_accounts(&mut conn).await.unwrap();
    assert_eq!(accounts.len(), 12);
    assert!(accounts.iter().any(|a| a.code == "AG012"), "{accounts:?}");
    let generated_devices: i64 = {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) AS n FROM devices WHERE agency_code = 'AG009'")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
            .try_get("n")
            .unwrap()
    };
    assert_eq!(generated_devices, 100);

    // Six months closed in order, ending the month before the last ended one.
    let zone = jiff::tz::TimeZone::get("America/New_York").unwrap();
    let today = jiff::Timestamp::now().to_zoned(zone).date();
    let open = Period::new(today.year(), today.month()).unwrap().prev();
    let periods = custody_store::billing::periods(&mut conn, 100).await.unwrap();
    let names: Vec<String> = periods.iter().map(|p| p.period.clone()).collect();
    let mut expected = Vec::new();
    let mut p = open.prev();
    for _ in 0..6 {
        expected.push(p.to_string());
        p = p.prev();
    }
    assert_eq!(names, expected);
    let preview =
        custody_app::billing::preview(app.app(), &custody_app::Actor::system("test"), &open.to_string()).await.unwrap();
    assert!(preview.closed.is_none() && preview.blocked.is_none(), "{:?}", preview.blocked);

    // Every invoice adds up; the history carries baselines' excess, charges and adjustments.
    let filter = custody_store::billing::InvoiceFilter::default();
    let invoices = custody_store::billing::invoices(&mut conn, &filter, 10_000, 0).await.unwrap();
    assert!(invoices.iter().filter(|i| i.kind == "chargeback").count() >= 6 * 12);
    let mut kinds = std::collections::BTreeSet::new();
    for invoice in &invoices {
        let lines = custody_store::billing::invoice_lines(&mut conn, &invoice.id).await.unwrap();
        assert_eq!(invoice.total_cents, lines.iter().map(|l| l.amount_cents).sum::<i64>(), "{}", invoice.number);
        kinds.extend(lines.into_iter().map(|l| l.kind));
    }
    assert_eq!(kinds.into_iter().collect::<Vec<_>>(), ["adjustment", "excess", "pass_through", "service"]);
    assert!(!custody_store::billing::baselines(&mut conn, None).await.unwrap().is_empty());
    let pending = custody_store::billing::pending_adjustments(&mut conn).await.unwrap();
    assert!(pending.is_empty(), "{pending:?}");
}
