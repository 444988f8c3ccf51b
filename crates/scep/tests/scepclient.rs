//! Interoperability with a real SCEP client: micromdm's `scepclient` from Debian's `scep`
//! package enrolls against a minimal HTTP/1.1 server (test-only, std only) that answers through
//! this crate. The server's challenge check is a plain comparison; Custody's real server checks
//! challenges against the database.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{chains_to, now};
use openssl::pkey::PKey;
use openssl::x509::X509;
use scep::{
    CertificateAuthority, ContentEncryption, Digest, FailInfo, Issuance, MessageType, PkiMessage, Request,
    SerialNumber, Subject, caps, response,
};

const CHALLENGE: &str = "enroll-me-4711";

/// What the server saw and answered, for the assertions.
#[derive(Clone, Debug)]
struct Exchange {
    method: String,
    message_type: MessageType,
    request_encryption: Option<ContentEncryption>,
    reply_encryption: ContentEncryption,
    digest: Digest,
    challenge: Option<String>,
    answer: Result<(), FailInfo>,
}

struct Server {
    url: String,
    ca: Arc<CertificateAuthority>,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
}

impl Server {
    fn start(capabilities: &'static str) -> Self {
        let ca = CertificateAuthority::generate(&Subject::new("Custody Interop CA").organization("Custody"), 5, now())
            .unwrap();
        let ca = Arc::new(ca);
        let exchanges = Arc::new(Mutex::new(Vec::new()));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/scep", listener.local_addr().unwrap());
        let (thread_ca, thread_exchanges) = (ca.clone(), exchanges.clone());
        std::thread::spawn(move || {
            // Serves until the test process ends; one connection at a time is all scepclient needs.
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = handle(stream, &thread_ca, &thread_exchanges, capabilities);
            }
        });
        Self { url, ca, exchanges }
    }

    fn exchanges(&self) -> Vec<Exchange> {
        self.exchanges.lock().unwrap().clone()
    }
}

fn handle(
    stream: TcpStream,
    ca: &CertificateAuthority,
    exchanges: &Mutex<Vec<Exchange>>,
    capabilities: &str,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
    let mut content_length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            content_length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; content_length];
    reader.read_exact(&mut body)?;

    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let parameter = |name: &str| {
        query.split('&').find_map(|pair| pair.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v.to_owned()))
    };
    let (status, content_type, payload): (&str, &str, Vec<u8>) = match parameter("operation").as_deref() {
        Some("GetCACaps") => ("200 OK", caps::CA_CAPS_CONTENT_TYPE, capabilities.as_bytes().to_vec()),
        Some("GetCACert") => ("200 OK", scep::cacert::CA_CERT_CONTENT_TYPE, scep::cacert::ca_cert(ca).to_vec()),
        Some("PKIOperation") => {
            // The GET parameter is passed exactly as sent: the crate undoes the URL encoding.
            let decoded = if method == "POST" {
                PkiMessage::decode(&body)
            } else {
                PkiMessage::decode_base64(&parameter("message").unwrap_or_default())
            };
            match decoded {
                Ok(message) => {
                    let (reply, exchange) = enroll(ca, &message, &method);
                    exchanges.lock().unwrap().push(exchange);
                    ("200 OK", response::PKI_MESSAGE_CONTENT_TYPE, reply)
                }
                Err(error) => ("400 Bad Request", "text/plain", error.to_string().into_bytes()),
            }
        }
        _ => ("404 Not Found", "text/plain", b"unknown operation".to_vec()),
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        payload.len()
    )?;
    stream.write_all(&payload)?;
    stream.flush()
}

/// The server's decision: issue for the right challenge, FAILURE otherwise.
fn enroll(ca: &CertificateAuthority, message: &PkiMessage, method: &str) -> (Vec<u8>, Exchange) {
    let mut exchange = Exchange {
        method: method.to_owned(),
        message_type: message.message_type(),
        request_encryption: message.content_encryption().ok(),
        reply_encryption: message.reply_encryption(),
        digest: message.digest(),
        challenge: None,
        answer: Ok(()),
    };
    let outcome = match message.open(ca) {
        Ok(Request::PkcsReq(csr)) => {
            exchange.challenge = csr.challenge_password().map(str::to_owned);
            if csr.challenge_password() == Some(CHALLENGE) {
                let issuance =
                    Issuance { serial: SerialNumber::random(), subject: None, now: now(), validity_days: 30 };
                Ok(ca.issue(&csr, &issuance).expect("issues"))
            } else {
                Err(FailInfo::BadRequest)
            }
        }
        Ok(_) => Err(FailInfo::BadRequest),
        Err(error) => Err(error.fail_info()),
    };
    let reply = match &outcome {
        Ok(certificate) => response::success(ca, message, certificate).unwrap(),
        Err(fail_info) => response::failure(ca, message, *fail_info).unwrap(),
    };
    exchange.answer = outcome.map(|_| ());
    (reply, exchange)
}

fn scepclient() -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("scepclient"))
        .find(|candidate| candidate.is_file());
    found.expect(
        "the `scepclient` binary is missing: install Debian's `scep` package (apt-get install -y scep), \
         which ships micromdm's scepclient; this interoperability test does not skip",
    )
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("scep-{name}-{}-{}", std::process::id(), now()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs scepclient in `dir` (it writes its CSR and self-signed certificate to the working
/// directory), killing it if it runs for more than a minute.
fn run_scepclient(dir: &Path, server: &Server, challenge: &str, common_name: &str) -> Output {
    let fingerprint: String = server.ca.fingerprint_sha256().unwrap().iter().map(|b| format!("{b:02x}")).collect();
    let mut child = Command::new(scepclient())
        .current_dir(dir)
        .args(["-server-url", &server.url])
        .args(["-challenge", challenge])
        .args(["-private-key", "device.key"])
        .args(["-certificate", "device.pem"])
        .args(["-cn", common_name, "-organization", "Custody Interop", "-ou", "Devices"])
        .args(["-ca-fingerprint", &fingerprint])
        .arg("-debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("scepclient did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn check_enrolled(dir: &TempDir, server: &Server, output: &Output, common_name: &str) {
    assert!(output.status.success(), "scepclient failed:\n{}", describe(output));
    let certificate =
        X509::from_pem(&std::fs::read(dir.0.join("device.pem")).expect("scepclient wrote the certificate"))
            .expect("a PEM certificate");
    let key = PKey::private_key_from_pem(&std::fs::read(dir.0.join("device.key")).unwrap()).unwrap();
    let ca_certificate = X509::from_der(server.ca.certificate_der()).unwrap();
    assert!(chains_to(&certificate, &ca_certificate), "the certificate chains to the CA");
    assert!(certificate.public_key().unwrap().public_eq(&key), "it certifies scepclient's own key");
    let text = String::from_utf8(certificate.to_text().unwrap()).unwrap();
    assert!(text.contains(&format!("CN={common_name}")), "{text}");
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
}

#[test]
fn scepclient_enrolls_with_post() {
    let server = Server::start("AES\nDES3\nPOSTPKIOperation\nRenewal\nSHA-1\nSHA-256\nSHA-512\nSCEPStandard");
    let dir = TempDir::new("post");
    let output = run_scepclient(&dir.0, &server, CHALLENGE, "iPad 0042");
    check_enrolled(&dir, &server, &output, "iPad 0042");

    let exchanges = server.exchanges();
    assert_eq!(exchanges.len(), 1, "{exchanges:?}");
    let exchange = &exchanges[0];
    assert_eq!(exchange.method, "POST");
    assert_eq!(exchange.message_type, MessageType::PkcsReq);
    assert_eq!(exchange.challenge.as_deref(), Some(CHALLENGE));
    assert_eq!(exchange.answer, Ok(()));
    // What scepclient 2.1.0 actually uses, whatever the CA advertises: SHA-1 and single DES
    // (answered with DES-EDE3-CBC, which it decrypts).
    assert_eq!(exchange.digest, Digest::Sha1);
    assert_eq!(exchange.request_encryption, Some(ContentEncryption::DesCbc));
    assert_eq!(exchange.reply_encryption, ContentEncryption::DesEde3Cbc);
}

#[test]
fn scepclient_enrolls_with_get_when_post_is_not_advertised() {
    let server = Server::start("DES3\nRenewal\nSHA-1\nSHA-256");
    let dir = TempDir::new("get");
    let output = run_scepclient(&dir.0, &server, CHALLENGE, "Laptop 7");
    check_enrolled(&dir, &server, &output, "Laptop 7");
    let exchanges = server.exchanges();
    assert_eq!(exchanges.len(), 1, "{exchanges:?}");
    assert_eq!(exchanges[0].method, "GET");
}

#[test]
fn scepclient_is_refused_with_a_failure_cert_rep_for_a_wrong_challenge() {
    let server = Server::start("AES\nDES3\nPOSTPKIOperation\nRenewal\nSHA-1\nSHA-256\nSHA-512\nSCEPStandard");
    let dir = TempDir::new("wrong");
    let output = run_scepclient(&dir.0, &server, "not-the-challenge", "iPad 0043");
    assert!(!output.status.success(), "scepclient must fail:\n{}", describe(&output));
    assert!(!dir.0.join("device.pem").exists(), "no certificate is written");

    let exchanges = server.exchanges();
    assert_eq!(exchanges.len(), 1, "{exchanges:?}");
    assert_eq!(exchanges[0].challenge.as_deref(), Some("not-the-challenge"));
    assert_eq!(exchanges[0].answer, Err(FailInfo::BadRequest));
    // scepclient read and understood the signed FAILURE CertRep (it did not fail on parsing it).
    let said = describe(&output);
    assert!(said.contains("failInfo: badRequest (2)"), "{said}");
}
