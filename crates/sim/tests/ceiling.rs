//! The ceiling server and the load loop: devices enrolled locally (self-signed identities, no
//! SCEP) run idle connects against an in-process ceiling server.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use custody_sim::ceiling::{self, CeilingConfig, CeilingCounters};
use custody_sim::{LoadConfig, LoadTarget, run_load};

async fn start(
    config: CeilingConfig,
) -> (std::net::SocketAddr, Arc<CeilingCounters>, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counters = Arc::new(CeilingCounters::default());
    let server = tokio::spawn(ceiling::serve(listener, config, counters.clone()));
    (addr, counters, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ceiling_load_reports_a_positive_rate_and_percentiles() {
    let (addr, counters, server) = start(CeilingConfig::default()).await;
    let config = LoadConfig::new(LoadTarget::Local { endpoints: ceiling::endpoints(addr) }, 6, 3, 5);
    let report = run_load(&config).await.unwrap();
    server.abort();

    assert_eq!(report.target, "local");
    assert_eq!((report.enroll.enrolled, report.enroll.failed), (6, 0));
    assert_eq!((report.sessions, report.session_failures), (30, 0), "{:?}", report.errors);
    assert_eq!(report.idle.count, 30);
    assert!(report.idle.rate_per_second > 0.0);
    assert!(report.idle.p50_ms > 0.0 && report.idle.p50_ms <= report.idle.p95_ms);
    assert!(report.idle.p95_ms <= report.idle.p99_ms && report.idle.p99_ms <= report.idle.max_ms);
    assert_eq!(report.commands.results.count, 0);
    assert_eq!(report.signatures, 30, "every connect signed");
    assert!(report.sign_mean_us > 0.0);
    // Each device checked in twice (Authenticate, TokenUpdate) and sent 5 idle reports.
    assert_eq!(counters.checkins.load(Ordering::Relaxed), 12);
    assert_eq!(counters.reports.load(Ordering::Relaxed), 30);
    assert_eq!(counters.malformed.load(Ordering::Relaxed), 0);
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["idle"]["p99_ms"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_from_the_ceiling_are_answered_and_measured_apart() {
    let (addr, counters, server) = start(CeilingConfig { command_every: 2, verify_signatures: true }).await;
    let config = LoadConfig {
        seed: Some(7),
        ..LoadConfig::new(LoadTarget::Local { endpoints: ceiling::endpoints(addr) }, 4, 2, 4)
    };
    let report = run_load(&config).await.unwrap();
    server.abort();

    assert_eq!(report.idle.count, 16);
    assert_eq!(counters.commands.load(Ordering::Relaxed), 8);
    assert_eq!(report.commands.by_status.get("Acknowledged"), Some(&8));
    assert_eq!(report.commands.results.count, 8);
    assert!(report.commands.results.p50_ms > 0.0);
    assert_eq!(report.signatures, 24);
    assert_eq!(counters.bad_signatures.load(Ordering::Relaxed), 0, "every signature verified");
}

#[tokio::test]
async fn a_verifying_ceiling_refuses_unsigned_messages() {
    let (addr, counters, server) = start(CeilingConfig { command_every: 0, verify_signatures: true }).await;
    let mut endpoints = ceiling::endpoints(addr);
    endpoints.sign_message = false;
    let config = LoadConfig::new(LoadTarget::Local { endpoints }, 1, 1, 1);
    assert!(matches!(run_load(&config).await, Err(custody_sim::SimError::Status { status: 403, .. })));
    server.abort();
    assert_eq!(counters.bad_signatures.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_load_that_cannot_enroll_returns_the_error() {
    let config = LoadConfig::new(
        LoadTarget::Server {
            base_url: "http://127.0.0.1:9".into(),
            token: "t".into(),
            agency: "DMV".into(),
            signed_profile: false,
        },
        2,
        1,
        1,
    );
    assert!(matches!(run_load(&config).await, Err(custody_sim::SimError::Http { .. })));
}
