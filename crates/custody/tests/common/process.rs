//! The real `custody` binary as a child process: a command with no `CUSTODY_*` settings from
//! the test's environment, and a server process killed when dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `custody`, built by Cargo for this test, without the environment's `CUSTODY_*` settings.
pub fn custody() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_custody"));
    for variable in ["CUSTODY_CONFIG", "CUSTODY_LISTEN", "CUSTODY_DATABASE_URL", "CUSTODY_DATA_DIR"] {
        command.env_remove(variable);
    }
    command
}

/// A `custody serve` process; killed when dropped.
pub struct Serving {
    child: Child,
    /// Where it serves, as it said.
    pub url: String,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serving {
    /// Runs `custody ARGS` (a `serve`); returns once it says where it serves (its port when it
    /// was asked for port 0).
    pub async fn spawn(args: &[String], label: &str) -> Serving {
        let mut child = custody().args(args).stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("Custody is serving on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await;
        let url = url.ok().flatten().unwrap_or_else(|| panic!("{label}: the server did not start"));
        Serving { child, url }
    }

    /// The port it serves on.
    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("the URL ends with the port")
    }

    /// SIGKILL, and waits for the process to be gone.
    #[cfg(unix)]
    pub fn kill(mut self) {
        use std::os::unix::process::ExitStatusExt;
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "killed with SIGKILL, not exited: {status:?}");
    }
}
