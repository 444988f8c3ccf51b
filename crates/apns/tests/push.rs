//! The client against the stand-in: what goes on the wire, and what each APNs answer becomes.

mod common;

use std::time::Duration;

use apns::standin::{Answer, StandIn, StandInConfig};
use apns::{PushError, PushOutcome, PushTarget};
use common::*;

#[tokio::test]
async fn pushes_reach_the_standin_with_path_topic_push_type_and_body() {
    let (standin, client) = standin_and_client(StandInConfig::default(), push_certificate(&Fake::default())).await;

    let mut ids = Vec::new();
    for n in 0..5 {
        match client.push(&target(n)).await.unwrap() {
            PushOutcome::Delivered { apns_id } => ids.push(apns_id),
            other => panic!("push {n}: {other:?}"),
        }
    }

    assert!(standin.wait_for(5, Duration::from_secs(5)).await);
    let pushes = standin.pushes().await;
    assert_eq!(pushes.len(), 5);
    for (n, push) in pushes.iter().enumerate() {
        let n = n as u32;
        assert_eq!(push.path, format!("/3/device/{}", token(n)));
        assert_eq!(push.token, token(n));
        assert_eq!(push.topic, TOPIC);
        assert_eq!(push.client_topic, TOPIC);
        assert_eq!(push.push_type, "mdm");
        assert_eq!(push.push_magic, format!("magic-{n}"));
        assert_eq!(push.priority.as_deref(), Some("10"));
        assert_eq!(push.apns_id, ids[n as usize]);
        let header = |name: &str| push.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(header("content-type"), Some("application/json"));
    }
    assert_eq!(standin.count().await, 5);
    assert_eq!(standin.rejected().await, 0);
    let clients = standin.clients().await;
    assert_eq!(clients.len(), 1, "all pushes share one HTTP/2 connection");
    assert_eq!(clients[0].topic.as_deref(), Some(TOPIC));
    assert!(clients[0].subject.contains("CN=APSP:"), "{}", clients[0].subject);
}

#[tokio::test]
async fn an_rsa_push_certificate_authenticates_too() {
    let certificate = push_certificate(&Fake { key: KeyKind::Rsa, ..Fake::default() });
    let (standin, client) = standin_and_client(StandInConfig::default(), certificate).await;
    assert!(matches!(client.push(&target(1)).await.unwrap(), PushOutcome::Delivered { .. }));
    assert_eq!(standin.count_for(&token(1)).await, 1);
}

#[tokio::test]
async fn an_unregistered_token_is_invalid() {
    let config = StandInConfig { unregistered: vec![token(7)], ..StandInConfig::default() };
    let (standin, client) = standin_and_client(config, push_certificate(&Fake::default())).await;

    let outcome = client.push(&target(7)).await.unwrap();
    let PushOutcome::TokenInvalid { reason, since } = outcome else { panic!("{outcome:?}") };
    assert_eq!(reason, "Unregistered");
    assert!(since.is_some(), "410 Unregistered carries a timestamp");

    // A token can become unregistered while the stand-in runs.
    assert!(matches!(client.push(&target(8)).await.unwrap(), PushOutcome::Delivered { .. }));
    standin.set_unregistered(&token(8).to_uppercase()).await;
    assert!(matches!(client.push(&target(8)).await.unwrap(), PushOutcome::TokenInvalid { .. }));

    assert_eq!(standin.count().await, 1);
    assert_eq!(standin.rejected().await, 2);
}

#[tokio::test]
async fn a_topic_other_than_the_certificates_is_rejected_as_bad_topic() {
    let (standin, client) = standin_and_client(StandInConfig::default(), push_certificate(&Fake::default())).await;
    let target = PushTarget { topic: "com.apple.mgmt.External.someone-else".to_owned(), ..target(1) };
    assert_eq!(
        client.push(&target).await.unwrap(),
        PushOutcome::Rejected { status: 400, reason: "BadTopic".to_owned() }
    );
    assert_eq!(standin.count().await, 0);
}

#[tokio::test]
async fn an_expired_certificate_is_rejected_as_bad_certificate() {
    let certificate = push_certificate(&Fake { not_before_days: -400, not_after_days: -30, ..Fake::default() });
    let (_standin, client) = standin_and_client(StandInConfig::default(), certificate).await;
    assert_eq!(
        client.push(&target(1)).await.unwrap(),
        PushOutcome::Rejected { status: 403, reason: "BadCertificate".to_owned() }
    );
}

#[tokio::test]
async fn overload_and_server_errors_ask_for_a_retry() {
    let (standin, client) = standin_and_client(StandInConfig::default(), push_certificate(&Fake::default())).await;
    let cases = [(429, "TooManyRequests"), (500, "InternalServerError"), (503, "ServiceUnavailable")];
    for (n, (status, reason)) in cases.iter().enumerate() {
        let n = n as u32;
        standin.set_answer(&token(n), Some(Answer { status: *status, reason: reason.to_string() })).await;
        assert_eq!(
            client.push(&target(n)).await.unwrap(),
            PushOutcome::Retry { after: None, reason: reason.to_string() },
            "status {status}"
        );
    }
    standin.set_answer(&token(0), None).await;
    assert!(matches!(client.push(&target(0)).await.unwrap(), PushOutcome::Delivered { .. }));
}

#[tokio::test]
async fn an_unreachable_server_asks_for_a_retry() {
    install_ring();
    let standin = StandIn::start(StandInConfig::default()).await.unwrap();
    let client = client_for(&standin, push_certificate(&Fake::default()), 1);
    standin.shutdown().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let outcome = client.push(&target(1)).await.unwrap();
    assert!(matches!(outcome, PushOutcome::Retry { after: None, .. }), "{outcome:?}");
}

#[tokio::test]
async fn a_server_the_client_does_not_trust_asks_for_a_retry_and_gets_nothing() {
    install_ring();
    let standin = StandIn::start(StandInConfig::default()).await.unwrap();
    let mut config = apns::ClientConfig::new(push_certificate(&Fake::default()));
    config.base_url = standin.url();
    let client = apns::Client::new(config).unwrap();
    let outcome = client.push(&target(1)).await.unwrap();
    let PushOutcome::Retry { reason, .. } = outcome else { panic!("{outcome:?}") };
    assert!(reason.contains("TLS"), "{reason}");
    assert_eq!(standin.count().await, 0);
}

#[tokio::test]
async fn targets_that_cannot_be_sent_are_errors_and_nothing_is_sent() {
    let (standin, client) = standin_and_client(StandInConfig::default(), push_certificate(&Fake::default())).await;
    let cases = [
        (PushTarget { token_hex: "not-hex".into(), ..target(1) }, PushError::BadToken("not-hex".into())),
        (PushTarget { token_hex: "abc".into(), ..target(1) }, PushError::BadToken("abc".into())),
        (PushTarget { push_magic: String::new(), ..target(1) }, PushError::EmptyPushMagic),
        (PushTarget { topic: "two words".into(), ..target(1) }, PushError::BadTopic("two words".into())),
    ];
    for (target, error) in cases {
        assert_eq!(client.push(&target).await, Err(error));
    }
    assert_eq!(standin.count().await + standin.rejected().await, 0);
}

#[tokio::test]
async fn push_many_sends_one_push_per_token_and_answers_every_target() {
    let (standin, client) = standin_and_client(StandInConfig::default(), push_certificate(&Fake::default())).await;
    let mut targets: Vec<PushTarget> = (0..20).map(target).collect();
    // The same devices again: the same token (in upper case once), a newer push magic.
    targets.push(PushTarget { push_magic: "magic-3-newer".into(), ..target(3) });
    targets.push(PushTarget { token_hex: token(5).to_uppercase(), ..target(5) });
    targets.push(target(3));
    targets.push(PushTarget { token_hex: "zz".into(), ..target(99) });

    let outcomes = client.push_many(&targets, 8).await;

    assert_eq!(outcomes.len(), targets.len());
    for (position, (index, outcome)) in outcomes.iter().enumerate() {
        assert_eq!(*index, position);
        if *index == 23 {
            assert_eq!(*outcome, Err(PushError::BadToken("zz".into())));
        } else {
            assert!(matches!(outcome, Ok(PushOutcome::Delivered { .. })), "{index}: {outcome:?}");
        }
    }
    assert_eq!(outcomes[3].1, outcomes[20].1, "duplicates share the one push's outcome");
    assert_eq!(outcomes[3].1, outcomes[22].1);
    assert_eq!(outcomes[5].1, outcomes[21].1);

    assert!(standin.wait_for(20, Duration::from_secs(5)).await);
    assert_eq!(standin.count().await, 20);
    for n in 0..20 {
        assert_eq!(standin.count_for(&token(n)).await, 1, "token {n}");
    }
    let pushed_3 = standin.pushes().await.into_iter().find(|p| p.token == token(3)).unwrap();
    assert_eq!(pushed_3.push_magic, "magic-3", "the last duplicate's push magic goes out");
}

#[tokio::test]
async fn push_many_multiplexes_hundreds_of_pushes_over_few_connections() {
    install_ring();
    let standin = StandIn::start(StandInConfig { keep_last: 10, ..StandInConfig::default() }).await.unwrap();
    let client = client_for(&standin, push_certificate(&Fake::default()), 2);
    let targets: Vec<PushTarget> = (0..2_000).map(target).collect();

    let outcomes = client.push_many(&targets, 200).await;

    assert!(outcomes.iter().all(|(_, o)| matches!(o, Ok(PushOutcome::Delivered { .. }))));
    assert_eq!(standin.count().await, 2_000);
    assert_eq!(standin.pushes().await.len(), 10, "only the last pushes are kept in full");
    assert_eq!(standin.clients().await.len(), 2);
}

#[tokio::test]
async fn wait_for_gives_up_after_the_timeout() {
    install_ring();
    let standin = StandIn::start(StandInConfig::default()).await.unwrap();
    assert!(!standin.wait_for(1, Duration::from_millis(50)).await);
}
