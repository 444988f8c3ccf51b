//! Closing a billing month on a seeded database (`custody demo --devices 1000000 --agencies 120
//! --no-serve`), timed beside the plain SQL count of the month's billable device-months on the
//! same database. Each run times the count, the preview, then the close (the real
//! `billing::close`, committed),
//! checks that the close charged exactly the counted device-months, and reopens the month for the
//! next run. Prints one line of JSON.
//!
//! `cargo run --release -p custody --example billing_close -- --database-url sqlite://custody.db`
//! Options: `--database-url URL` (required), `--period YYYY-MM` (default: the month after the
//! last closed one), `--runs N` (default 3).
use std::time::Instant;

use custody_app::{Actor, App};
use custody_store::{Store, StoreOptions, migrate};

/// The allocator the `custody` binary runs with, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Options {
    url: String,
    period: Option<String>,
    runs: usize,
}

fn options() -> Options {
    let (mut url, mut period, mut runs) = (None, None, 3);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--database-url" => url = Some(value),
            "--period" => period = Some(value),
            "--runs" => runs = value.parse().expect("--runs takes a number"),
            other => panic!("unknown option {other}; use --database-url, --period, --runs"),
        }
    }
    Options { url: url.expect("--database-url is required"), period, runs }
}

/// Reopens `period` so that the next run closes it again: a benchmark-only undo, in one
/// transaction (the product never reopens a month).
async fn reopen(store: &Store, period: &str) {
    let mut tx = store.pool().begin().await.unwrap();
    for sql in [
        "DELETE FROM invoice_lines WHERE invoice_id IN (SELECT id FROM invoices WHERE period = $1)",
        "DELETE FROM invoices WHERE period = $1",
        "UPDATE billing_adjustments SET applied_period = NULL WHERE applied_period = $1",
        "DELETE FROM billing_periods WHERE period = $1",
    ] {
        sqlx::query(sql).bind(period).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

#[tokio::main]
async fn main() {
    let options = options();
    let store = Store::connect(&options.url, &StoreOptions::default()).await.expect("database");
    migrate::run(&store).await.expect("migrations");
    let dir = tempfile::tempdir().unwrap();
    let config = custody::Config { data_dir: dir.path().to_path_buf(), ..custody::Config::default() };
    let app = App::new(store.clone(), config.app_config().unwrap());
    let period = match options.period {
        Some(p) => p,
        None => {
            let mut conn = store.conn().await.unwrap();
            let last = custody_store::billing::periods(&mut conn, 1).await.unwrap();
            let last = last.first().expect("a closed month: seed with custody demo --billing-months 1 or more");
            custody_domain::billing::Period::parse(&last.period).unwrap().next().to_string()
        }
    };
    let intervals: i64 = {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) AS n FROM billing_intervals")
            .fetch_one(store.pool())
            .await
            .unwrap()
            .try_get("n")
            .unwrap()
    };
    let system = Actor::system("benchmark");
    let (mut counts, mut closes, mut previews) = (Vec::new(), Vec::new(), Vec::new());
    let (mut device_months, mut invoices, mut agencies) = (0, 0, 0);
    for _ in 0..options.runs {
        let started = Instant::now();
        device_months = custody_app::billing::count_device_months(&app, &period).await.unwrap();
        counts.push(started.elapsed().as_secs_f64());

        let started = Instant::now();
        custody_app::billing::preview(&app, &system, &period).await.unwrap();
        previews.push(started.elapsed().as_secs_f64());

        let started = Instant::now();
        let closed = custody_app::billing::close(&app, &system, &period).await.unwrap();
        closes.push(started.elapsed().as_secs_f64());
        assert!(closed.closed_now, "{period} was closed before the run");
        assert_eq!(closed.period.devices, device_months, "the close charged other device-months than the count");
        invoices = closed.period.invoices;
        let mut conn = store.conn().await.unwrap();
        let filter = custody_store::billing::InvoiceFilter { period: Some(period.clone()), ..Default::default() };
        let rows = custody_store::billing::invoices(&mut conn, &filter, 100_000, 0).await.unwrap();
        agencies = rows.iter().map(|r| r.agency_code.as_str()).collect::<std::collections::BTreeSet<_>>().len();
        drop(conn);
        reopen(&store, &period).await;
    }
    let report = serde_json::json!({
        "backend": if options.url.starts_with("postgres") { "postgres" } else { "sqlite" },
        "period": period,
        "intervals": intervals,
        "device_months": device_months,
        "invoices": invoices,
        "agencies": agencies,
        "count_seconds": counts,
        "close_seconds": closes,
        "preview_seconds": previews,
        "count_median": median(&counts),
        "close_median": median(&closes),
        "ratio": median(&closes) / median(&counts),
    });
    println!("{report}");
}
