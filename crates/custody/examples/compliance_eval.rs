//! Compliance over a large fleet: `--count` devices in use (default 1,000,000) across 20
//! agencies, nine in ten enrolled with varied facts (old OS, no passcode, silent, jailbroken),
//! then the fleet evaluation timed three times: the first (every row written), the daily pass
//! when nothing changed, and a pass after 1% of the devices changed. Prints one line of JSON.
//!
//! `cargo run --release -p custody --example compliance_eval -- --count 1000000`
//! Options: `--count N`, `--database-url URL` (a fresh SQLite file by default; a PostgreSQL URL
//! is migrated, and the tables this fills are emptied first and after).

use std::time::Instant;

use custody_app::{Actor, App};
use custody_store::{Store, StoreOptions, migrate};

/// The allocator the `custody` binary runs with, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn options() -> (i64, Option<String>) {
    let (mut count, mut url) = (1_000_000, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--count" => count = value.parse().expect("--count takes a number"),
            "--database-url" => url = Some(value),
            other => panic!("unknown option {other}; use --count, --database-url"),
        }
    }
    (count, url)
}

const TABLES: [&str; 4] = ["device_compliance", "mdm_enrollments", "mdm_certificates", "devices"];

async fn empty(store: &Store) {
    for table in TABLES {
        let sql = format!("DELETE FROM {table} WHERE agency_code LIKE 'CB%'");
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(store.pool()).await.unwrap();
    }
}

async fn exec(store: &Store, sql: String) {
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(store.pool()).await.unwrap();
}

/// The devices and their enrollments, generated in SQL (a recursive count, on both backends).
async fn seed(store: &Store, app: &App, count: i64) {
    let system = Actor::system("bench");
    for a in 0..20 {
        let input =
            custody_domain::agency::AgencyDetailsInput { name: Some(format!("Bench {a}")), ..Default::default() };
        let _ = custody_app::agencies::create(app, &system, Some(&format!("CB{a:02}")), input).await;
    }
    let model = custody_domain::catalog::ModelInput {
        device_type: Some("smartphone".into()),
        platform: Some("ios".into()),
        maker: Some("Apple".into()),
        model: Some(format!("iPhone bench {}", custody_store::new_id())),
        ..Default::default()
    };
    let model = custody_app::catalog::create_model(app, &system, model).await.unwrap().id;
    let now = custody_store::now_ms();
    let numbers = format!("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {})", count - 1);
    let agency = "'CB' || CASE WHEN i % 20 < 10 THEN '0' ELSE '' END || (i % 20)";
    exec(
        store,
        format!(
            "INSERT INTO devices (id, agency_code, state, device_type, model_id, funding, location, accessories, \
             created_at, updated_at) {numbers} \
             SELECT 'cbdev' || i, {agency}, CASE WHEN i % 50 = 7 THEN 'lost_stolen' WHEN i % 3 = 0 THEN 'enrolled' \
             ELSE 'in_service' END, 'smartphone', '{model}', 'standard', 'with_holder', '', {now}, {now} FROM n"
        ),
    )
    .await;
    exec(
        store,
        format!(
            "INSERT INTO mdm_certificates (serial, agency_code, subject, cert_pem, not_before, not_after, issued_at, \
             udid) {numbers} SELECT 'cbcert' || i, {agency}, 'CN=' || i, '', {now}, {now}, {now}, 'cbudid' || i \
             FROM n WHERE i % 10 <> 9"
        ),
    )
    .await;
    let month = 31 * 86_400_000i64;
    exec(
        store,
        format!(
            "INSERT INTO mdm_enrollments (id, udid, agency_code, device_id, status, cert_serial, authenticated_at, \
             enrolled_at, last_seen_at, created_at, updated_at, platform, os_rank, passcode_present, compromised) \
             {numbers} SELECT 'cbenr' || i, 'cbudid' || i, {agency}, 'cbdev' || i, 'enrolled', 'cbcert' || i, \
             {now}, {now}, CASE WHEN i % 37 = 0 THEN {now} - {month} ELSE {now} END, {now}, {now}, \
             CASE WHEN i % 4 = 0 THEN 'ipados' ELSE 'ios' END, \
             CASE WHEN i % 23 = 0 THEN 16007002 ELSE 18005000 END, CASE WHEN i % 29 = 0 THEN 0 ELSE 1 END, \
             CASE WHEN i % 997 = 0 THEN 1 ELSE 0 END FROM n WHERE i % 10 <> 9"
        ),
    )
    .await;
}

async fn timed_pass(app: &App) -> (f64, custody_app::compliance::Evaluation) {
    let started = Instant::now();
    let done = custody_app::compliance::evaluate_fleet(app, true).await.expect("an evaluation");
    (started.elapsed().as_secs_f64(), done)
}

#[tokio::main]
async fn main() {
    let (count, url) = options();
    let dir = tempfile::tempdir().unwrap();
    let url = url.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("compliance.db").display()));
    let store = Store::connect(&url, &StoreOptions::default()).await.expect("database");
    migrate::run(&store).await.expect("migrations");
    empty(&store).await;
    let config = custody::Config { data_dir: dir.path().to_path_buf(), ..custody::Config::default() };
    let app = App::new(store.clone(), config.app_config().unwrap());

    let seeded = Instant::now();
    seed(&store, &app, count).await;
    if url.starts_with("postgres") {
        // Vacuumed as autovacuum would have it: this emptied and refilled the tables.
        exec(&store, "VACUUM ANALYZE".into()).await;
    }
    let seed_seconds = seeded.elapsed().as_secs_f64();

    let (first_seconds, first) = timed_pass(&app).await;
    let (steady_seconds, steady) = timed_pass(&app).await;
    // 1% of the devices lose their passcode.
    exec(&store, "UPDATE mdm_enrollments SET passcode_present = 0 WHERE id LIKE 'cbenr%00'".into()).await;
    let (changed_seconds, changed) = timed_pass(&app).await;
    let non_compliant: i64 = {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) AS n FROM device_compliance WHERE compliant = 0 AND agency_code LIKE 'CB%'")
            .fetch_one(store.pool())
            .await
            .unwrap()
            .try_get("n")
            .unwrap()
    };
    let report = serde_json::json!({
        "backend": if url.starts_with("postgres") { "postgres" } else { "sqlite" },
        "devices": count,
        "seed_seconds": seed_seconds,
        "first_seconds": first_seconds, "first_changed": first.changed,
        "steady_seconds": steady_seconds, "steady_changed": steady.changed,
        "changed_seconds": changed_seconds, "changed_changed": changed.changed,
        "non_compliant": non_compliant,
    });
    println!("{report}");
    // COMPLIANCE_EVAL_KEEP=1 leaves the data for a look at the plans.
    if std::env::var_os("COMPLIANCE_EVAL_KEEP").is_none() {
        empty(&store).await;
    }
}
