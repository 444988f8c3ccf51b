//! The simulator's mixed load (`custody-sim mixed`, which `bench/mixed.py` runs for the sustained
//! load figures) against the real server: what it runs follows its mix, as fast as its workers go
//! and at a fixed rate, without an error.

mod common;

use std::time::Duration;

use common::PASSWORD;
use common::mdm::{AGENCY, Mdm};
use custody_domain::role::Role;
use custody_sim::mixed::{Kind, MixedConfig, MixedReport, run_mixed};
use custody_store::testing::TestDb;

/// Out of every 20 operations.
const SHARES: [(Kind, usize); 6] = [
    (Kind::DeviceSession, 8),
    (Kind::ApiPeople, 5),
    (Kind::ApiEnrollments, 2),
    (Kind::ApiQueueCommand, 2),
    (Kind::ApiCreatePerson, 1),
    (Kind::ConsolePeople, 2),
];

fn count(report: &MixedReport, kind: Kind) -> usize {
    report.by_kind.get(&kind).map_or(0, |l| l.count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operations_run_follow_the_mix_as_fast_as_they_go_and_at_a_fixed_rate() {
    let mdm = Mdm::start(TestDb::sqlite().await, |_| {}).await;
    let email = "load@central.example".to_string();
    let (_, token) = mdm.app.user_with_token(&email, Role::Admin, None).await;
    let config = |seed, workers, rate, seconds| MixedConfig {
        base_url: mdm.app.base.clone(),
        token: token.clone(),
        agency: AGENCY.into(),
        console_user: (email.clone(), PASSWORD.into()),
        devices: 12,
        seed,
        workers,
        rate,
        seconds,
        window_seconds: 1,
        timeout: Duration::from_secs(30),
    };

    // As fast as 8 workers go: they draw from one sequence, so each kind's count is its share
    // of the operations give or take the operations in flight, however slow or fast each kind
    // is (device sessions sign every message; a page of people is a read).
    let fast = run_mixed(config(1, 8, None, 4)).await.unwrap();
    assert_eq!(fast.errors, 0, "{:?}", fast.error_samples);
    assert!(fast.operations >= 40, "{} operations", fast.operations);
    for (kind, share) in SHARES {
        let expected = fast.operations * share / 20;
        assert!(
            count(&fast, kind).abs_diff(expected) <= 8 + 1,
            "{kind:?}: {} of {}, expected about {expected}",
            count(&fast, kind),
            fast.operations
        );
    }

    // At 25 a second for 4 seconds: every one of the 100 operations, each kind its exact share,
    // and a window a second.
    let paced = run_mixed(config(2, 8, Some(25.0), 4)).await.unwrap();
    assert_eq!(paced.errors, 0, "{:?}", paced.error_samples);
    assert_eq!(paced.operations, 100);
    for (kind, share) in SHARES {
        assert_eq!(count(&paced, kind), 100 * share / 20, "{kind:?}");
    }
    // Late counts the operations that found every slot busy, not a timer's own millisecond:
    // at 25 a second, 8 slots are seldom all busy.
    assert!(paced.late_starts < 50, "{} of 100 late", paced.late_starts);
    assert_eq!(paced.windows.len(), 4);
    assert!(paced.windows.iter().all(|w| w.operations == 25), "{:?}", paced.windows);
}
