//! Importing carrier usage at scale: `--lines` lines (default 1,000,000) across 120 agencies,
//! each in a device held by a person (a ninth of the people hold two), and Wi-Fi tablets with
//! no line held by every twentieth person; then a CSV of `--months` months (default 6) of usage
//! for every line — realistic shapes: a tenth without data, a twentieth silent — imported by the
//! same function `custody usage import` runs, timed, then imported again (which changes
//! nothing); then every agency's biannual report issued on that data, timed. Prints one line of
//! JSON.
//!
//! `cargo run --release -p custody --example usage_import -- --lines 1000000`
//! Options: `--lines N`, `--months N`, `--database-url URL` (a fresh SQLite file by default; a
//! PostgreSQL database given here is emptied of what this writes first).
use std::io::Write;
use std::time::Instant;

use custody_app::{Actor, App};
use custody_store::{Store, StoreOptions, migrate};

/// The allocator the `custody` binary runs with, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn options() -> (i64, u32, Option<String>) {
    let (mut lines, mut months, mut url) = (1_000_000, 6, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--lines" => lines = value.parse().expect("--lines takes a number"),
            "--months" => months = value.parse().expect("--months takes a number"),
            "--database-url" => url = Some(value),
            other => panic!("unknown option {other}; use --lines, --months, --database-url"),
        }
    }
    (lines, months, url)
}

async fn exec(store: &Store, sql: String) {
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(store.pool()).await.unwrap();
}

const AGENCIES: i64 = 120;

async fn seed(store: &Store, app: &App, lines: i64) {
    exec(
        store,
        "DELETE FROM usage_months WHERE state_id IN (SELECT id FROM usage_line_states WHERE agency_code LIKE 'UB%')"
            .into(),
    )
    .await;
    for table in ["usage_line_states", "lines", "devices", "people"] {
        exec(store, format!("DELETE FROM {table} WHERE agency_code LIKE 'UB%'")).await;
    }
    let system = Actor::system("bench");
    for a in 0..AGENCIES {
        let input =
            custody_domain::agency::AgencyDetailsInput { name: Some(format!("Usage bench {a}")), ..Default::default() };
        let _ = custody_app::agencies::create(app, &system, Some(&format!("UB{a:03}")), input).await;
    }
    let model = custody_domain::catalog::ModelInput {
        device_type: Some("smartphone".into()),
        platform: Some("ios".into()),
        maker: Some("Apple".into()),
        model: Some(format!("iPhone usage bench {}", custody_store::new_id())),
        ..Default::default()
    };
    let model = custody_app::catalog::create_model(app, &system, model).await.unwrap().id;
    let old = custody_store::now_ms() - 400 * 86_400_000;
    let numbers = format!("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {})", lines - 1);
    let agency = format!("'UB' || substr('00' || (i % {AGENCIES}), -3, 3)");
    let agency_pg = format!("'UB' || lpad((i % {AGENCIES})::text, 3, '0')");
    let postgres = store.backend() == custody_store::Backend::Postgres;
    let agency = if postgres { agency_pg } else { agency };
    exec(
        store,
        format!(
            "INSERT INTO lines (id, agency_code, phone_number, carrier, plan_kind, status, device_id, created_at, \
             updated_at) {numbers} SELECT 'ubline' || i, {agency}, '+1' || (2000000000 + i), 'Verizon', \
             'voice_data', 'active', 'ubdev' || i, {old}, {old} FROM n"
        ),
    )
    .await;
    // A person per line, but the last tenth of the lines go to people who hold one already (of
    // the same agency: the offset is a multiple of the 120 agencies), so some hold two.
    let people = lines - lines / 10;
    let offset = (lines / 10 + AGENCIES - 1) / AGENCIES * AGENCIES;
    let people_numbers =
        format!("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {})", people - 1);
    exec(
        store,
        format!(
            "INSERT INTO people (id, agency_code, given_name, family_name, status, search, created_at, updated_at) \
             {people_numbers} SELECT 'ubp' || i, {agency}, 'Given' || i, 'Family' || i, 'active', \
             'given' || i || ' family' || i, {old}, {old} FROM n"
        ),
    )
    .await;
    let holder = format!("'ubp' || CASE WHEN i < {people} THEN i ELSE i - {offset} END");
    exec(
        store,
        format!(
            "INSERT INTO devices (id, agency_code, state, device_type, model_id, funding, location, accessories, \
             line_id, holder_id, created_at, updated_at) {numbers} \
             SELECT 'ubdev' || i, {agency}, 'in_service', CASE WHEN i % 7 = 0 THEN 'tablet' ELSE 'smartphone' END, \
             '{model}', 'standard', 'with_holder', '', 'ubline' || i, {holder}, {old}, {old} FROM n"
        ),
    )
    .await;
    // Wi-Fi tablets: devices in use with no carrier line, one for every twentieth person.
    exec(
        store,
        format!(
            "INSERT INTO devices (id, agency_code, state, device_type, model_id, funding, location, accessories, \
             holder_id, created_at, updated_at) {people_numbers} \
             SELECT 'ubtab' || i, {agency}, 'in_service', 'tablet', '{model}', 'standard', 'with_holder', '', \
             'ubp' || i, {old}, {old} FROM n WHERE i % 20 = 3"
        ),
    )
    .await;
}

/// The CSV: every line in every month, in month order.
fn write_file(path: &std::path::Path, lines: i64, months: &[String]) -> u64 {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    writeln!(out, "phone_number,carrier,month,voice_minutes,messages,data_mb,international_charges,line_plan").unwrap();
    let mut rows = 0;
    for (m, month) in months.iter().enumerate() {
        for i in 0..lines {
            let seed = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ m as u64;
            let (voice, messages, data) = match i % 20 {
                0 => (0, 0, 0),
                1 | 2 => (seed % 300, seed % 40, 0),
                _ => (seed % 900, seed % 200, seed % 4_000_000),
            };
            let international = if i % 97 == 0 { "12.50" } else { "0" };
            writeln!(
                out,
                "+1{},Verizon,{month},{voice},{messages},{}.{:03},{international},voice_data",
                2_000_000_000 + i,
                data / 1000,
                data % 1000
            )
            .unwrap();
            rows += 1;
        }
    }
    out.flush().unwrap();
    rows
}

#[tokio::main]
async fn main() {
    let (lines, months, url) = options();
    let dir = tempfile::tempdir().unwrap();
    let url = url.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("usage.db").display()));
    let store = Store::connect(&url, &StoreOptions::default()).await.expect("database");
    migrate::run(&store).await.expect("migrations");
    let config = custody::Config { data_dir: dir.path().to_path_buf(), ..custody::Config::default() };
    let app = App::new(store.clone(), config.app_config().unwrap());

    let started = Instant::now();
    seed(&store, &app, lines).await;
    if url.starts_with("postgres") {
        exec(&store, "ANALYZE".into()).await;
    }
    let seed_seconds = started.elapsed().as_secs_f64();
    let zone = app.config.billing.zone().unwrap();
    let today = jiff::Timestamp::now().to_zoned(zone).date();
    let mut period = custody_domain::billing::Period::new(today.year(), today.month()).unwrap();
    let mut names = Vec::new();
    for _ in 0..months {
        period = period.prev();
        names.push(period.to_string());
    }
    names.reverse();
    let file = dir.path().join("usage.csv");
    let rows = write_file(&file, lines, &names);
    let bytes = std::fs::metadata(&file).unwrap().len();

    let system = Actor::system("bench");
    let usage_file = custody_app::usage::UsageFile::path(file);
    let started = Instant::now();
    let first = custody_app::usage::import(&app, &system, &usage_file, &|_, _| {}).await.expect("an import");
    let import_seconds = started.elapsed().as_secs_f64();
    assert_eq!(first.inserted as u64, rows, "every row written");
    let started = Instant::now();
    let again = custody_app::usage::import(&app, &system, &usage_file, &|_, _| {}).await.expect("a re-import");
    let again_seconds = started.elapsed().as_secs_f64();
    assert_eq!((again.unchanged as u64, again.import_id.is_none()), (rows, true), "the same file changes nothing");
    eprintln!("issuing every agency's report");
    let started = Instant::now();
    let reports = custody_app::usage_reports::issue_all(&app, &system).await.expect("the reports");
    let reports_seconds = started.elapsed().as_secs_f64();
    assert_eq!(reports.len() as i64, AGENCIES, "a report per agency");
    let recommendations: i64 = reports.iter().map(|r| r.recommendation_count).sum();
    let report_lines: i64 = reports.iter().map(|r| r.line_count).sum();
    assert_eq!(report_lines, lines, "every line in its agency's report");
    let report = serde_json::json!({
        "backend": if url.starts_with("postgres") { "postgres" } else { "sqlite" },
        "lines": lines, "months": months, "rows": rows, "file_bytes": bytes,
        "seed_seconds": seed_seconds,
        "import_seconds": import_seconds, "rows_per_second": rows as f64 / import_seconds,
        "reimport_seconds": again_seconds,
        "reports": reports.len(), "reports_seconds": reports_seconds, "recommendations": recommendations,
    });
    println!("{report}");
}
