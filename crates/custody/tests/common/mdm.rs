//! The MDM harness: the server with a local APNs stand-in, an agency, a push certificate and an
//! `infosec` token, and simulated devices that enroll through it.

use std::time::Duration;

use apns::standin::{StandIn, StandInConfig};
use custody_domain::device::DeviceState;
use custody_domain::role::Role;
use custody_sim::{DeviceSpec, SimDevice};
use custody_store::testing::TestDb;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::TestApp;

pub const TOPIC: &str = "com.apple.mgmt.External.5b9c2f4e-1d3a-4e6b-9f8c-7a2d1e0b3c4f";
pub const AGENCY: &str = "AAA";

/// A server with an APNs stand-in, an agency, a push certificate and an `infosec` token.
pub struct Mdm {
    pub app: TestApp,
    pub apns: StandIn,
    pub token: String,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Mdm {
    pub async fn start(db: TestDb, tweak: impl FnOnce(&mut custody::Config)) -> Mdm {
        let apns = StandIn::start(StandInConfig::default()).await.expect("APNs stand-in");
        let dir = tempfile::tempdir().unwrap();
        let roots = dir.path().join("apns-ca.pem");
        std::fs::write(&roots, apns.ca_pem()).unwrap();
        let url = apns.url();
        let app = TestApp::spawn_with(db, |config| {
            config.mdm.apns_url = url;
            config.mdm.apns_ca_file = Some(roots);
            tweak(config);
        })
        .await;
        app.agency(AGENCY, "Alpha Agency").await;
        let (_, token) = app.user_with_token("sec@central.example", Role::Infosec, None).await;
        let pem = apns::standin::fake_push_certificate_pem(TOPIC).unwrap();
        let uploaded =
            app.send_json(Method::PUT, "/api/v1/mdm/push-certificate", Some(&token), &json!({"pem": pem})).await;
        assert_eq!(uploaded.status(), StatusCode::OK);
        let uploaded: Value = uploaded.json().await.unwrap();
        assert_eq!(uploaded["topic"], TOPIC);
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        Mdm { app, apns, token, http, _dir: dir }
    }

    /// Enrolls a simulated device and lets it answer its first inventory (five commands), as a
    /// real device does right after enrolling, so each test starts from an empty queue.
    pub async fn enroll(&self, spec: DeviceSpec) -> SimDevice {
        let mut device = self.enroll_only(spec).await;
        let first = device.run_until_idle().await.expect("the first inventory");
        assert_eq!(first.len(), 5, "an enrollment queues its first inventory");
        device
    }

    /// Enrolls a simulated device and cancels its first inventory (for tests of the queue's own
    /// behaviour, whose device would not answer it as asked).
    pub async fn enroll_quiet(&self, spec: DeviceSpec) -> SimDevice {
        let device = self.enroll_only(spec).await;
        let enrollment = self.enrollment(&device).await;
        let path = format!("/api/v1/commands?device={}", enrollment["id"].as_str().unwrap());
        let list: Value = self.app.get(&path, &self.token).await.json().await.unwrap();
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 5, "the first inventory: {list}");
        for command in items {
            let cancel = format!("/api/v1/commands/{}/cancel", command["id"].as_str().unwrap());
            let response = self.app.send_json(Method::POST, &cancel, Some(&self.token), &json!({})).await;
            assert_eq!(response.status(), StatusCode::OK, "{cancel}");
        }
        device
    }

    /// Enrolls a simulated device and leaves its first inventory queued.
    pub async fn enroll_only(&self, spec: DeviceSpec) -> SimDevice {
        SimDevice::enroll(&self.http, &self.app.base, &self.token, AGENCY, spec).await.expect("the device enrolls")
    }

    /// Queues `request_type` for the devices; returns the batch's command ids in device order.
    pub async fn command(&self, devices: &[&SimDevice], request_type: &str, params: Value) -> Vec<String> {
        let udids: Vec<&str> = devices.iter().map(|d| d.udid()).collect();
        let body = json!({"devices": udids, "request_type": request_type, "params": params});
        let response = self.app.send_json(Method::POST, "/api/v1/commands", Some(&self.token), &body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let batch: Value = response.json().await.unwrap();
        assert_eq!(batch["count"], devices.len());
        let enrollments = self.enrollment_ids(devices).await;
        enrollments
            .iter()
            .map(|e| {
                let item = batch["items"].as_array().unwrap().iter().find(|c| c["enrollment_id"] == e.as_str());
                item.expect("a command per device")["id"].as_str().unwrap().to_string()
            })
            .collect()
    }

    pub async fn enrollment_ids(&self, devices: &[&SimDevice]) -> Vec<String> {
        let mut ids = Vec::new();
        for device in devices {
            ids.push(self.enrollment(device).await["id"].as_str().unwrap().to_string());
        }
        ids
    }

    pub async fn enrollment(&self, device: &SimDevice) -> Value {
        let response = self.app.get(&format!("/api/v1/mdm/enrollments/{}", device.udid()), &self.token).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    pub async fn command_state(&self, id: &str) -> Value {
        let response = self.app.get(&format!("/api/v1/commands/{id}"), &self.token).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
}

/// A device's model in the catalog, for inventory devices written straight to the store.
pub async fn phone_model(app: &TestApp) -> String {
    let system = custody_app::Actor::system("test");
    let model = custody_domain::catalog::ModelInput {
        device_type: Some("smartphone".into()),
        platform: Some("ios".into()),
        maker: Some("Apple".into()),
        model: Some("iPhone 16".into()),
        ..Default::default()
    };
    custody_app::catalog::create_model(app.app(), &system, model).await.unwrap().id
}

/// An inventory device of `agency` in `state` with `serial`. Returns its id.
pub async fn inventory_device(app: &TestApp, agency: &str, model: &str, state: DeviceState, serial: &str) -> String {
    let id = app.device_in_state(agency, model, state).await;
    app.exec_owned(format!("UPDATE devices SET serial = '{serial}' WHERE id = '{id}'")).await;
    id
}
