//! Library objects written through the use cases (as the system), for tests of the endpoints
//! that act on them.

use custody_app::Actor;
use custody_app::profiles::{self, NewApp, NewAssignment, NewGroup, NewProfile};
use serde_json::json;

use super::TestApp;

/// A valid unsigned `.mobileconfig` (one web clip payload) with `identifier`.
pub fn mobileconfig(identifier: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>PayloadType</key><string>Configuration</string>
<key>PayloadIdentifier</key><string>{identifier}</string>
<key>PayloadUUID</key><string>{}</string>
<key>PayloadVersion</key><integer>1</integer>
<key>PayloadContent</key><array><dict>
<key>PayloadType</key><string>com.apple.webClip.managed</string>
<key>PayloadIdentifier</key><string>{identifier}.clip</string>
<key>PayloadUUID</key><string>{}</string>
<key>URL</key><string>https://intranet.example.gov</string>
<key>Label</key><string>Intranet</string>
</dict></array>
</dict></plist>"#,
        random_uuid(),
        random_uuid(),
    )
}

/// A random UUID in Apple's upper-case hyphenated form.
fn random_uuid() -> String {
    let hex = format!("{:032X}", rand::random::<u128>());
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// A passcode profile in the library; returns its id.
pub async fn profile(app: &TestApp, name: &str) -> String {
    let input = NewProfile {
        name: name.into(),
        kind: "passcode".into(),
        settings: json!({"min_length": 6}),
        ..Default::default()
    };
    profiles::create(app.app(), &Actor::system("test"), input).await.unwrap().id
}

/// An App Store app in the library (store id `n`); returns its id.
pub async fn store_app(app: &TestApp, n: i64) -> String {
    let input = NewApp {
        kind: "store".into(),
        store_id: Some(n),
        bundle_id: format!("com.example.store.app{n}"),
        name: format!("App {n}"),
        ..Default::default()
    };
    profiles::create_app(app.app(), &Actor::system("test"), input).await.unwrap().id
}

/// A device group of `agency`; returns its id.
pub async fn group(app: &TestApp, agency: &str, name: &str) -> String {
    let input = NewGroup { name: name.into(), agency: Some(agency.into()), description: None };
    profiles::create_group(app.app(), &Actor::system("test"), input).await.unwrap().id
}

/// An assignment of a new profile to `target_kind`/`target`; returns its id.
pub async fn assignment(app: &TestApp, name: &str, target_kind: &str, target: &str) -> String {
    let item_id = profile(app, name).await;
    let input =
        NewAssignment { item_kind: "profile".into(), item_id, target_kind: target_kind.into(), target: target.into() };
    profiles::assign(app.app(), &Actor::system("test"), input).await.unwrap().id
}
