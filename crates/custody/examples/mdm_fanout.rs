//! Push fan-out: one command queued for `--count` enrollments, then every push delivered to a
//! local APNs stand-in over TLS by Custody's own push sender. Prints one line of JSON.
//!
//! `cargo run --release -p custody --example mdm_fanout -- --count 100000`
//! Options: `--count N` (100000), `--database-url URL` (a fresh SQLite file by default; a
//! PostgreSQL URL is migrated, and its MDM tables emptied first).

use std::time::{Duration, Instant};

use apns::standin::{StandIn, StandInConfig};
use custody_app::{Actor, App};
use custody_store::{Store, StoreOptions, migrate};

/// The allocator the `custody` binary runs with, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TOPIC: &str = "com.apple.mgmt.External.7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f";

fn options() -> (usize, Option<String>) {
    let (mut count, mut url) = (100_000, None);
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

/// Enrollments (and their certificates) written in bulk, each with a push token and magic.
async fn seed(store: &Store, count: usize) -> Vec<String> {
    let now = custody_store::now_ms();
    let udids: Vec<String> = (0..count).map(|i| format!("00008120-{i:016X}")).collect();
    let mut tx = store.write().await.unwrap();
    for (chunk_index, chunk) in udids.chunks(500).enumerate() {
        let sql = custody_store::insert_values_sql(
            "mdm_certificates (serial, agency_code, subject, cert_pem, not_before, not_after, issued_at, udid)",
            8,
            chunk.len(),
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (i, udid) in chunk.iter().enumerate() {
            let serial = format!("{:032x}", chunk_index * 500 + i);
            query = query
                .bind(serial)
                .bind("AAA")
                .bind(format!("CN={udid}"))
                .bind("")
                .bind(now)
                .bind(now + 86_400_000)
                .bind(now)
                .bind(udid.clone());
        }
        query.execute(&mut *tx).await.unwrap();
        let sql = custody_store::insert_values_sql(
            "mdm_enrollments (id, udid, agency_code, status, cert_serial, push_token, push_magic, authenticated_at, \
             enrolled_at, last_seen_at, created_at, updated_at)",
            12,
            chunk.len(),
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (i, udid) in chunk.iter().enumerate() {
            let n = chunk_index * 500 + i;
            query = query
                .bind(format!("enr{n:08}"))
                .bind(udid.clone())
                .bind("AAA")
                .bind("enrolled")
                .bind(format!("{n:032x}"))
                .bind(format!("{n:064x}"))
                .bind(format!("magic-{n}"))
                .bind(now)
                .bind(now)
                .bind(now)
                .bind(now)
                .bind(now);
        }
        query.execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    udids
}

#[tokio::main]
async fn main() {
    let (count, url) = options();
    let dir = tempfile::tempdir().unwrap();
    let url = url.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("fanout.db").display()));
    let store = Store::connect(&url, &StoreOptions::default()).await.expect("database");
    migrate::run(&store).await.expect("migrations");
    empty_mdm_tables(&store).await;

    let apns = StandIn::start(StandInConfig { keep_last: 10, ..StandInConfig::default() }).await.expect("stand-in");
    let roots = dir.path().join("apns.pem");
    std::fs::write(&roots, apns.ca_pem()).unwrap();
    let mut config = custody::Config { data_dir: dir.path().to_path_buf(), ..custody::Config::default() };
    config.mdm.apns_url = apns.url();
    config.mdm.apns_ca_file = Some(roots);
    let app = App::new(store.clone(), config.app_config().unwrap());
    let system = Actor::system("bench");
    let agency = custody_domain::agency::AgencyDetailsInput { name: Some("Alpha".into()), ..Default::default() };
    let _ = custody_app::agencies::create(&app, &system, Some("AAA"), agency).await;
    let pem = apns::standin::fake_push_certificate_pem(TOPIC).unwrap();
    custody_app::mdm::upload_push_certificate(&app, &system, Some(pem.as_bytes()), None).await.unwrap();

    let seeded = Instant::now();
    let udids = seed(&store, count).await;
    let seed_seconds = seeded.elapsed().as_secs_f64();
    if store.backend() == custody_store::Backend::Postgres {
        // The statistics a database holding these enrollments for a while would have (autovacuum
        // gathers them): without them the planner takes the tables for empty.
        sqlx::query("ANALYZE mdm_enrollments, mdm_certificates").execute(store.pool()).await.unwrap();
    }

    // One command for every enrollment, named by UDID as an API caller names them.
    let started = Instant::now();
    let input = custody_app::mdm::NewCommands {
        devices: udids,
        request_type: "DeviceInformation".into(),
        params: serde_json::json!({"Queries": ["OSVersion"]}),
    };
    let (_, rows) = custody_app::mdm::enqueue(&app, &system, input).await.expect("queued");
    let enqueue_seconds = started.elapsed().as_secs_f64();
    assert_eq!(rows.len(), count);
    drop(rows);

    // Custody's push sender, pass after pass, until the stand-in has every push.
    let pushing = Instant::now();
    let deadline = pushing + Duration::from_secs(600);
    while apns.count().await < count as u64 && Instant::now() < deadline {
        custody_app::mdm::push_due(&app).await.expect("a push pass");
    }
    let push_seconds = pushing.elapsed().as_secs_f64();
    let delivered = apns.count().await;
    let report = serde_json::json!({
        "backend": if url.starts_with("postgres") { "postgres" } else { "sqlite" },
        "enrollments": count,
        "seed_seconds": seed_seconds,
        "enqueue_seconds": enqueue_seconds,
        "pushes_delivered": delivered,
        "push_seconds": push_seconds,
        "pushes_per_second": delivered as f64 / push_seconds,
        "rejected": apns.rejected().await,
    });
    println!("{report}");
    // Leave a PostgreSQL database as it was found (SQLite's file goes with its directory): the
    // push certificate too, whose key is sealed with this run's own key, which a server started
    // on the database afterwards would refuse.
    empty_mdm_tables(&store).await;
}

/// Empties the MDM tables. On PostgreSQL they are truncated: a run's rows deleted would stay in
/// the tables and their indexes as dead rows until a vacuum, and slow the next run's inserts
/// (its unique checks visit them), which no database in service would have.
async fn empty_mdm_tables(store: &Store) {
    let tables = [
        "mdm_push_batches",
        "mdm_push_due",
        "mdm_commands",
        "mdm_enrollments",
        "mdm_certificates",
        "push_certificates",
    ];
    if store.backend() == custody_store::Backend::Postgres {
        let sql = format!("TRUNCATE {}", tables.join(", "));
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(store.pool()).await.unwrap();
        return;
    }
    for table in tables {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}"))).execute(store.pool()).await.unwrap();
    }
}
