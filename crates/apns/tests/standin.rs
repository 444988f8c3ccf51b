//! The stand-in's own checks, through hand-made requests the client would never send: each
//! mistake gets the status and reason APNs gives it.

mod common;

use apns::standin::{StandIn, StandInConfig};
use common::*;

/// A well-formed MDM push, changed one way per case.
#[derive(Debug, Clone)]
struct Push {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, &'static str)>,
    body: String,
}

impl Push {
    fn good() -> Push {
        Push {
            method: "POST",
            path: format!("/3/device/{}", token(1)),
            headers: vec![("apns-topic", TOPIC), ("apns-push-type", "mdm")],
            body: r#"{"mdm":"magic"}"#.to_owned(),
        }
    }
    fn method(self, method: &'static str) -> Push {
        Push { method, ..self }
    }
    fn path(self, path: &str) -> Push {
        Push { path: path.to_owned(), ..self }
    }
    fn without(mut self, name: &str) -> Push {
        self.headers.retain(|(n, _)| *n != name);
        self
    }
    fn header(mut self, name: &'static str, value: &'static str) -> Push {
        self.headers.push((name, value));
        self
    }
    fn body(self, body: &str) -> Push {
        Push { body: body.to_owned(), ..self }
    }
}

#[tokio::test]
async fn the_standin_answers_malformed_pushes_like_apns() {
    install_ring();
    let standin = StandIn::start(StandInConfig::default()).await.unwrap();
    let (cert, key) = fake_certificate(&Fake::default());
    let too_big = format!(r#"{{"mdm":"{}"}}"#, "x".repeat(5000));

    let cases = [
        (Push::good().method("GET").body(""), 405, "MethodNotAllowed"),
        (Push::good().path("/3/devices/abcd"), 404, "BadPath"),
        (Push::good().path("/3/device/"), 400, "MissingDeviceToken"),
        (Push::good().path("/3/device/not-hex"), 400, "BadDeviceToken"),
        (Push::good().path("/3/device/abc"), 400, "BadDeviceToken"),
        (Push::good().without("apns-topic"), 400, "MissingTopic"),
        (Push::good().without("apns-topic").header("apns-topic", "com.example.app"), 400, "BadTopic"),
        (Push::good().header("apns-topic", TOPIC), 400, "DuplicateHeaders"),
        (Push::good().without("apns-push-type"), 400, "InvalidPushType"),
        (Push::good().without("apns-push-type").header("apns-push-type", "alert"), 400, "InvalidPushType"),
        (Push::good().header("apns-priority", "7"), 400, "BadPriority"),
        (Push::good().header("apns-expiration", "soon"), 400, "BadExpirationDate"),
        (Push::good().header("apns-id", "nope"), 400, "BadMessageId"),
        (Push::good().body(""), 400, "PayloadEmpty"),
        (Push::good().body(&too_big), 413, "PayloadTooLarge"),
        (Push::good().body(r#"{"aps":{"alert":"hi"}}"#), 400, "BadPayload"),
        (Push::good().body(r#"{"mdm":"magic","extra":1}"#), 400, "BadPayload"),
        (Push::good().body(r#"{"mdm":42}"#), 400, "BadPayload"),
        (Push::good().body("not json"), 400, "BadPayload"),
    ];
    for (push, status, reason) in &cases {
        let got = raw(&standin, &cert, &key, push.method, &push.path, &push.headers, &push.body).await;
        assert_eq!(got, RawAnswer { status: *status, reason: Some(reason.to_string()) }, "{push:?}");
    }
    assert_eq!(standin.count().await, 0);
    assert_eq!(standin.rejected().await, cases.len() as u64);

    // The well-formed push is accepted, with the client's own apns-id kept.
    let id = "0f5d4b8e-2c7a-4e19-9b3d-6a1f0e2d7c55";
    let push = Push::good().header("apns-id", id).header("apns-priority", "5").header("apns-expiration", "0");
    let got = raw(&standin, &cert, &key, push.method, &push.path, &push.headers, &push.body).await;
    assert_eq!(got, RawAnswer { status: 200, reason: None });
    let pushes = standin.pushes().await;
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0].apns_id, id);
    assert_eq!(pushes[0].push_magic, "magic");
    assert_eq!(pushes[0].priority.as_deref(), Some("5"));
    assert_eq!(pushes[0].expiration.as_deref(), Some("0"));
}

#[tokio::test]
async fn a_client_certificate_without_a_topic_is_a_bad_certificate() {
    install_ring();
    let standin = StandIn::start(StandInConfig::default()).await.unwrap();
    let (cert, key) = fake_certificate(&Fake { topic: None, ..Fake::default() });
    let path = format!("/3/device/{}", token(1));
    let headers = [("apns-topic", TOPIC), ("apns-push-type", "mdm")];

    let got = raw(&standin, &cert, &key, "POST", &path, &headers, r#"{"mdm":"magic"}"#).await;

    assert_eq!(got, RawAnswer { status: 403, reason: Some("BadCertificate".into()) });
    let clients = standin.clients().await;
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0].topic, None);
    assert!(clients[0].subject.starts_with("CN=APSP:"), "{}", clients[0].subject);
}
