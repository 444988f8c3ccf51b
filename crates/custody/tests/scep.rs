//! Custody's SCEP service at `/scep`, on SQLite and PostgreSQL, driven by a real SCEP client:
//! micromdm's `scepclient` from Debian's `scep` package. A certificate is issued for the
//! agency's challenge, chains to Custody's CA and is recorded; a wrong or used challenge is
//! refused with a FAILURE CertRep.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::TestApp;
use custody_store::testing::TestDb;
use openssl::x509::X509;

fn scepclient() -> PathBuf {
    let path = PathBuf::from("/usr/bin/scepclient");
    assert!(
        path.exists(),
        "scepclient is missing: install Debian's `scep` package (apt-get install -y scep); this test does not skip"
    );
    path
}

/// Runs scepclient in a fresh directory (it writes its key and certificate there), off the
/// runtime's thread, which serves the requests it makes.
async fn enroll(dir: &Path, base: &str, challenge: &str, fingerprint: &str) -> Output {
    let (dir, base, challenge, fingerprint) =
        (dir.to_path_buf(), base.to_string(), challenge.to_string(), fingerprint.to_string());
    tokio::task::spawn_blocking(move || run_scepclient(&dir, &base, &challenge, &fingerprint)).await.unwrap()
}

fn run_scepclient(dir: &Path, base: &str, challenge: &str, fingerprint: &str) -> Output {
    Command::new(scepclient())
        .current_dir(dir)
        .args(["-server-url", &format!("{base}/scep")])
        .args(["-challenge", challenge])
        .args(["-private-key", "device.key", "-certificate", "device.pem"])
        .args(["-cn", "iPhone DNPSCEP01", "-organization", "Agency A", "-ou", "Devices"])
        .args(["-ca-fingerprint", fingerprint])
        .output()
        .expect("scepclient runs")
}

#[tokio::test]
async fn scepclient_enrolls_against_custody_and_a_wrong_or_used_challenge_is_refused() {
    for db in TestDb::all().await {
        let app = TestApp::spawn_with(db, |_| {}).await;
        app.agency("AAA", "Agency A").await;
        let system = custody_app::Actor::system("test");
        let (ca_pem, fingerprint) =
            custody_app::mdm::ca_certificate(app.app(), &custody_app::Actor::system("test")).await.unwrap();
        let ca = X509::from_pem(ca_pem.as_bytes()).unwrap();
        let challenge = custody_app::mdm::one_time_challenge(app.app(), &system, "AAA", 1).await.unwrap();

        // GetCACaps and GetCACert as any client asks them.
        let caps = reqwest::get(format!("{}/scep?operation=GetCACaps", app.base)).await.unwrap();
        assert!(caps.text().await.unwrap().lines().any(|l| l == "POSTPKIOperation"));
        let cacert = reqwest::get(format!("{}/scep?operation=GetCACert", app.base)).await.unwrap();
        assert_eq!(cacert.headers()["content-type"], "application/x-x509-ca-cert");
        assert_eq!(cacert.bytes().await.unwrap().as_ref(), ca.to_der().unwrap().as_slice());

        let wrong = tempfile::tempdir().unwrap();
        let output = enroll(wrong.path(), &app.base, "not-the-challenge", &fingerprint).await;
        assert!(!output.status.success(), "a wrong challenge is refused");
        assert!(String::from_utf8_lossy(&output.stdout).contains("failInfo: badRequest"), "{output:?}");
        assert!(!wrong.path().join("device.pem").exists());

        let dir = tempfile::tempdir().unwrap();
        let output = enroll(dir.path(), &app.base, &challenge, &fingerprint).await;
        assert!(output.status.success(), "scepclient failed: {output:?}");
        let issued = X509::from_pem(&std::fs::read(dir.path().join("device.pem")).unwrap()).unwrap();
        assert!(issued.verify(&ca.public_key().unwrap()).unwrap(), "the certificate chains to Custody's CA");
        let serial = scep::SerialNumber::of(&issued).unwrap().to_hex();
        let mut conn = app.app().store.conn().await.unwrap();
        let row =
            custody_store::mdm::certificate(&mut conn, &serial).await.unwrap().expect("the certificate is recorded");
        assert_eq!(row.agency_code, "AAA");
        drop(conn);

        // The challenge was for one enrollment.
        let again = tempfile::tempdir().unwrap();
        let output = enroll(again.path(), &app.base, &challenge, &fingerprint).await;
        assert!(!output.status.success(), "a used one-time challenge is refused: {output:?}");
    }
}
