//! Push throughput: starts the APNs stand-in in this process, makes a fake push certificate,
//! and sends `--count` MDM pushes to distinct tokens through `Client::push_many`, then prints
//! pushes per second.
//!
//! `cargo run --release -p apns --example push_bench -- --count 100000 --concurrency 500`
//! Options: `--count N` (100000), `--concurrency N` (500), `--connections N` (1).

use std::time::{Duration, Instant};

use apns::standin::{StandIn, StandInConfig};
use apns::{Client, ClientConfig, PushCertificate, PushOutcome, PushTarget};

const TOPIC: &str = "com.apple.mgmt.External.9d0c1f3e-6b2a-4f5d-8e7c-1a2b3c4d5e6f";

struct Options {
    count: u32,
    concurrency: usize,
    connections: usize,
}

fn options() -> Options {
    let mut options = Options { count: 100_000, concurrency: 500, connections: 1 };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        let number = |v: &str| v.parse::<usize>().unwrap_or_else(|_| panic!("{flag}: not a number: {v}"));
        match flag.as_str() {
            "--count" => options.count = number(&value) as u32,
            "--concurrency" => options.concurrency = number(&value),
            "--connections" => options.connections = number(&value),
            other => panic!("unknown option {other}; use --count, --concurrency, --connections"),
        }
    }
    options
}

fn fake_push_certificate() -> PushCertificate {
    let pem = apns::standin::fake_push_certificate_pem(TOPIC).expect("certificate");
    PushCertificate::from_pem(pem.as_bytes()).expect("push certificate")
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let options = options();

    let standin = StandIn::start(StandInConfig { keep_last: 100, ..StandInConfig::default() }).await.expect("stand-in");
    let mut config = ClientConfig::new(fake_push_certificate());
    config.base_url = standin.url();
    config.extra_roots_pem = Some(standin.ca_pem().as_bytes().to_vec());
    config.connections = options.connections;
    let client = Client::new(config).expect("client");

    let targets: Vec<PushTarget> = (0..options.count)
        .map(|n| PushTarget {
            token_hex: format!("{:064x}", 0xbe_0000_0000u64 + u64::from(n)),
            push_magic: format!("5C6F2E1A-0000-4000-8000-{n:012X}"),
            topic: TOPIC.to_owned(),
        })
        .collect();

    // Warm up: open the connections before the clock starts.
    let warm = client.push_many(&targets[..options.connections.min(targets.len())], options.connections).await;
    assert!(warm.iter().all(|(_, o)| matches!(o, Ok(PushOutcome::Delivered { .. }))), "warm-up failed: {warm:?}");

    let started = Instant::now();
    let outcomes = client.push_many(&targets, options.concurrency).await;
    let elapsed = started.elapsed();

    let delivered = outcomes.iter().filter(|(_, o)| matches!(o, Ok(PushOutcome::Delivered { .. }))).count();
    let failed: Vec<_> =
        outcomes.iter().filter(|(_, o)| !matches!(o, Ok(PushOutcome::Delivered { .. }))).take(3).collect();
    let expected = u64::from(options.count) + warm.len() as u64;
    assert!(standin.wait_for(expected, Duration::from_secs(5)).await, "the stand-in did not receive every push");

    let rate = delivered as f64 / elapsed.as_secs_f64();
    println!(
        "pushes: {delivered} delivered of {} in {:.3} s = {rate:.0} pushes/s (concurrency {}, connections {}); \
         stand-in counted {}",
        options.count,
        elapsed.as_secs_f64(),
        options.concurrency,
        options.connections,
        standin.count().await,
    );
    if !failed.is_empty() {
        println!("first failures: {failed:?}");
        std::process::exit(1);
    }
}
