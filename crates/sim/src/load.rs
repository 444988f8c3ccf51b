//! The load benchmark: enroll N devices (concurrently, at most `workers` at a time), then run
//! `iterations` command sessions per device from `workers` tasks, and report the rate and
//! latency percentiles of idle connects, and separately of command results when the server
//! has commands queued.
//!
//! Every message is signed when it is sent, as a device does (SHA-256 with the RSA key held in
//! memory); the time spent signing is reported so the client's share of the cost is visible.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openssl::pkey::{PKey, Private};
use serde::Serialize;
use tokio::sync::Barrier;

use crate::MdmEndpoints;
use crate::device::{SessionTimings, SimDevice, SimError, error_chain, fetch_profile};
use crate::identity::{self, Identity};
use crate::spec::{DeviceKind, DeviceSpec};

/// Where the devices enroll.
#[derive(Debug, Clone)]
pub enum LoadTarget {
    /// A Custody server: each device fetches the agency's enrollment profile with the token,
    /// enrolls through SCEP and checks in.
    Server {
        /// The server's base URL, e.g. `http://127.0.0.1:8080`.
        base_url: String,
        /// An API token allowed to download the agency's enrollment profile.
        token: String,
        /// The agency's code.
        agency: String,
        /// Fetch the CMS-signed profile (`?signed=true`).
        signed_profile: bool,
    },
    /// No enrollment server: each device gets a self-signed identity locally and checks in at
    /// these endpoints (the ceiling server's, for instance).
    Local {
        /// Check-in and command URLs.
        endpoints: MdmEndpoints,
    },
}

/// A load run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Where to enroll.
    pub target: LoadTarget,
    /// How many devices (two iPhones for each iPad).
    pub devices: usize,
    /// How many concurrent tasks enroll and connect.
    pub workers: usize,
    /// Command sessions per device.
    pub iterations: usize,
    /// Identifiers derived from this seed and the device's index (the same seed gives the
    /// same devices); random identifiers when `None`.
    pub seed: Option<u64>,
    /// Give every device the same RSA key (each still gets its own certificate), to spare key
    /// generation when enrolling many devices. Devices enrolled without SCEP always share one.
    pub share_key: bool,
    /// The per-request timeout.
    pub timeout: Duration,
    /// Against a server: queue this many `DeviceInformation` commands per device through the
    /// API (`POST /api/v1/commands`, which the token must be allowed) after enrollment and
    /// before the timed phase, so that sessions carry command round trips.
    pub commands_per_device: usize,
    /// Against a server: queue one inventory of every device (`POST /api/v1/mdm/inventory`:
    /// five commands each) before the timed phase, so that it measures an inventory refresh.
    pub inventory_refresh: bool,
}

impl LoadConfig {
    /// A run with random identifiers, a fresh key per device and a 30 s timeout.
    pub fn new(target: LoadTarget, devices: usize, workers: usize, iterations: usize) -> LoadConfig {
        LoadConfig {
            target,
            devices,
            workers,
            iterations,
            seed: None,
            share_key: false,
            timeout: Duration::from_secs(30),
            commands_per_device: 0,
            inventory_refresh: false,
        }
    }
}

/// Latency figures of one kind of request.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Requests measured.
    pub count: usize,
    /// Requests per second over the run.
    pub rate_per_second: f64,
    /// Mean, in milliseconds.
    pub mean_ms: f64,
    /// Median, in milliseconds.
    pub p50_ms: f64,
    /// 95th percentile, in milliseconds.
    pub p95_ms: f64,
    /// 99th percentile, in milliseconds.
    pub p99_ms: f64,
    /// Slowest, in milliseconds.
    pub max_ms: f64,
}

impl Latency {
    pub(crate) fn of(mut micros: Vec<u32>, seconds: f64) -> Latency {
        if micros.is_empty() {
            return Latency::default();
        }
        micros.sort_unstable();
        let at = |p: f64| {
            let rank = ((p * micros.len() as f64).ceil() as usize).clamp(1, micros.len());
            f64::from(micros[rank - 1]) / 1000.0
        };
        let sum: u64 = micros.iter().map(|m| u64::from(*m)).sum();
        Latency {
            count: micros.len(),
            rate_per_second: if seconds > 0.0 { micros.len() as f64 / seconds } else { 0.0 },
            mean_ms: sum as f64 / micros.len() as f64 / 1000.0,
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            max_ms: f64::from(*micros.last().expect("not empty")) / 1000.0,
        }
    }
}

/// Enrollment figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EnrollFigures {
    /// Devices enrolled.
    pub enrolled: usize,
    /// Devices that failed to enroll.
    pub failed: usize,
    /// Wall time of the enrollment phase.
    pub seconds: f64,
    /// Devices enrolled per second.
    pub rate_per_second: f64,
}

/// Command figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CommandFigures {
    /// Commands queued through the API before the timed phase.
    pub queued: usize,
    /// Seconds the API took to queue them.
    pub queue_seconds: f64,
    /// Commands of the first inventory a server queues at enrollment, answered before the
    /// timed phase.
    pub first_inventory: usize,
    /// Commands answered in the timed phase, by status.
    pub by_status: BTreeMap<String, usize>,
    /// The requests carrying a command's result (answered with the next command or nothing).
    pub results: Latency,
}

/// What a load run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LoadReport {
    /// `server` or `local`.
    pub target: String,
    /// Devices asked for.
    pub devices: usize,
    /// Concurrent tasks.
    pub workers: usize,
    /// Sessions per device.
    pub iterations: usize,
    /// The enrollment phase.
    pub enroll: EnrollFigures,
    /// Wall time of the connect phase.
    pub run_seconds: f64,
    /// Command sessions completed and failed.
    pub sessions: usize,
    /// Sessions that failed (an HTTP error, a status other than 200 ...).
    pub session_failures: usize,
    /// `Idle` requests: the rate is the idle connects per second.
    pub idle: Latency,
    /// Command round trips, when the server had commands queued.
    pub commands: CommandFigures,
    /// All connect requests per second (idle and results).
    pub requests_per_second: f64,
    /// Signatures made during the connect phase, and their mean cost on the client.
    pub signatures: u64,
    /// Mean time to sign one message, in microseconds.
    pub sign_mean_us: f64,
    /// The first errors met (at most 5).
    pub errors: Vec<String>,
}

#[derive(Default)]
struct WorkerResult {
    enrolled: usize,
    enroll_failures: usize,
    sessions: usize,
    session_failures: usize,
    timings: SessionTimings,
    by_status: BTreeMap<String, usize>,
    errors: Vec<String>,
    first_enroll_error: Option<SimError>,
    first_inventory: usize,
}

const KEPT_ERRORS: usize = 5;

/// Runs the benchmark. Fails only when no device could enroll (with the first error).
pub async fn run_load(config: &LoadConfig) -> Result<LoadReport, SimError> {
    let workers = config.workers.max(1);
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(config.timeout)
        .pool_max_idle_per_host(workers)
        .build()
        .map_err(|source| SimError::Http { method: "GET", url: String::new(), source })?;

    let shared_key = match (&config.target, config.share_key) {
        (LoadTarget::Local { .. }, _) | (_, true) => Some(
            tokio::task::spawn_blocking(|| identity::rsa_key(2048)).await.expect("key generation does not panic")?,
        ),
        _ => None,
    };

    // Workers enroll their devices, meet at the barrier, then run their sessions; the main
    // task times the phase between the barrier and the last worker's end.
    let enroll_started = Instant::now();
    let barrier = Arc::new(Barrier::new(workers + 1));
    let udids = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::with_capacity(workers);
    for worker in 0..workers {
        let (http, config, key, barrier) = (http.clone(), config.clone(), shared_key.clone(), barrier.clone());
        let udids = udids.clone();
        tasks.push(tokio::spawn(async move {
            let mut result = WorkerResult::default();
            let mut devices = Vec::new();
            for index in (worker..config.devices).step_by(workers) {
                match enroll_one(&http, &config, index, key.clone()).await {
                    Ok(device) => devices.push(device),
                    Err(e) => {
                        result.enroll_failures += 1;
                        keep(&mut result.errors, format!("enroll device {index}: {}", error_chain(&e)));
                        result.first_enroll_error.get_or_insert(e);
                    }
                }
            }
            result.enrolled = devices.len();
            // A server queues each new enrollment's first inventory: answered before the timed
            // phase, as a real device answers it right after enrolling.
            if matches!(config.target, LoadTarget::Server { .. }) {
                for device in devices.iter_mut() {
                    match device.run_until_idle().await {
                        Ok(handled) => result.first_inventory += handled.len(),
                        Err(e) => {
                            result.session_failures += 1;
                            keep(
                                &mut result.errors,
                                format!("first inventory of {}: {}", device.udid(), error_chain(&e)),
                            );
                        }
                    }
                }
            }
            udids.lock().expect("not poisoned").extend(devices.iter().map(|d| d.udid().to_owned()));
            // Enrolled; then (after the commands are queued) the timed phase.
            barrier.wait().await;
            barrier.wait().await;
            for _ in 0..config.iterations {
                for device in devices.iter_mut() {
                    match device.session(&mut result.timings).await {
                        Ok(handled) => {
                            result.sessions += 1;
                            for command in handled {
                                *result.by_status.entry(command.status.as_str().to_owned()).or_default() += 1;
                            }
                        }
                        Err(e) => {
                            result.session_failures += 1;
                            keep(&mut result.errors, format!("session of {}: {}", device.udid(), error_chain(&e)));
                        }
                    }
                }
            }
            result
        }));
    }
    barrier.wait().await;
    let enroll_seconds = enroll_started.elapsed().as_secs_f64();
    let queue_started = Instant::now();
    let queued = match &config.target {
        LoadTarget::Server { base_url, token, .. } if config.inventory_refresh => {
            let udids = std::mem::take(&mut *udids.lock().expect("not poisoned"));
            queue_inventory(&http, base_url, token, &udids).await
        }
        LoadTarget::Server { base_url, token, .. } if config.commands_per_device > 0 => {
            let udids = std::mem::take(&mut *udids.lock().expect("not poisoned"));
            queue_commands(&http, base_url, token, &udids, config.commands_per_device).await
        }
        _ => Ok(0),
    };
    let queue_seconds = queue_started.elapsed().as_secs_f64();
    barrier.wait().await;
    let queued = queued?;
    let run_started = Instant::now();
    let mut results = Vec::with_capacity(workers);
    for task in tasks {
        results.push(task.await.expect("a load worker does not panic"));
    }
    let run_seconds = run_started.elapsed().as_secs_f64();

    let enrolled: usize = results.iter().map(|r| r.enrolled).sum();
    let errors: Vec<String> = results.iter().flat_map(|r| r.errors.iter().cloned()).take(KEPT_ERRORS).collect();
    if enrolled == 0
        && let Some(error) = results.iter_mut().find_map(|r| r.first_enroll_error.take())
    {
        return Err(error);
    }
    let mut idle = Vec::new();
    let mut result_times = Vec::new();
    let mut by_status = BTreeMap::new();
    let (mut sign_nanos, mut signatures) = (0u64, 0u64);
    let (mut sessions, mut session_failures, mut enroll_failures, mut first_inventory) = (0, 0, 0, 0);
    for r in results {
        first_inventory += r.first_inventory;
        idle.extend(r.timings.idle);
        result_times.extend(r.timings.results);
        sign_nanos += r.timings.sign_nanos;
        signatures += r.timings.signatures;
        sessions += r.sessions;
        session_failures += r.session_failures;
        enroll_failures += r.enroll_failures;
        for (status, n) in r.by_status {
            *by_status.entry(status).or_default() += n;
        }
    }
    let requests = idle.len() + result_times.len();
    Ok(LoadReport {
        target: match config.target {
            LoadTarget::Server { .. } => "server".to_owned(),
            LoadTarget::Local { .. } => "local".to_owned(),
        },
        devices: config.devices,
        workers,
        iterations: config.iterations,
        enroll: EnrollFigures {
            enrolled,
            failed: enroll_failures,
            seconds: enroll_seconds,
            rate_per_second: if enroll_seconds > 0.0 { enrolled as f64 / enroll_seconds } else { 0.0 },
        },
        run_seconds,
        sessions,
        session_failures,
        idle: Latency::of(idle, run_seconds),
        commands: CommandFigures {
            queued,
            queue_seconds,
            first_inventory,
            by_status,
            results: Latency::of(result_times, run_seconds),
        },
        requests_per_second: if run_seconds > 0.0 { requests as f64 / run_seconds } else { 0.0 },
        signatures,
        sign_mean_us: if signatures > 0 { sign_nanos as f64 / signatures as f64 / 1000.0 } else { 0.0 },
        errors,
    })
}

/// Queues one inventory of each device through the server's API (five commands each), 10,000
/// devices a request. Returns how many commands were queued.
async fn queue_inventory(
    http: &reqwest::Client,
    base_url: &str,
    token: &str,
    udids: &[String],
) -> Result<usize, SimError> {
    let url = format!("{}/api/v1/mdm/inventory", base_url.trim_end_matches('/'));
    let mut queued = 0;
    for chunk in udids.chunks(10_000) {
        let body = serde_json::json!({ "devices": chunk });
        let http_error = |source| SimError::Http { method: "POST", url: url.clone(), source };
        let response = http.post(&url).bearer_auth(token).json(&body).send().await.map_err(http_error)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(http_error)?;
        if status != 202 {
            return Err(SimError::Status { method: "POST", url: url.clone(), status, body: text });
        }
        queued += chunk.len() * 5;
    }
    Ok(queued)
}

/// Queues `per_device` `DeviceInformation` commands for each device through the server's API,
/// 5,000 devices a request. Returns how many commands were queued.
async fn queue_commands(
    http: &reqwest::Client,
    base_url: &str,
    token: &str,
    udids: &[String],
    per_device: usize,
) -> Result<usize, SimError> {
    let url = format!("{}/api/v1/commands", base_url.trim_end_matches('/'));
    let mut queued = 0;
    for _ in 0..per_device {
        for chunk in udids.chunks(5_000) {
            let body = serde_json::json!({
                "devices": chunk,
                "request_type": "DeviceInformation",
                "params": {"Queries": ["DeviceName", "OSVersion", "BuildVersion", "SerialNumber", "BatteryLevel"]},
            });
            let http_error = |source| SimError::Http { method: "POST", url: url.clone(), source };
            let response = http.post(&url).bearer_auth(token).json(&body).send().await.map_err(http_error)?;
            let status = response.status().as_u16();
            let text = response.text().await.map_err(http_error)?;
            if status != 201 {
                return Err(SimError::Status { method: "POST", url: url.clone(), status, body: text });
            }
            queued += chunk.len();
        }
    }
    Ok(queued)
}

fn keep(errors: &mut Vec<String>, error: String) {
    if errors.len() < KEPT_ERRORS {
        errors.push(error);
    }
}

/// Two iPhones for each iPad.
fn spec_for(config: &LoadConfig, index: usize) -> DeviceSpec {
    let kind = if index % 3 == 2 { DeviceKind::IPad } else { DeviceKind::IPhone };
    match config.seed {
        Some(seed) => DeviceSpec::derive(kind, seed, index as u64),
        None => DeviceSpec::random(kind),
    }
}

async fn enroll_one(
    http: &reqwest::Client,
    config: &LoadConfig,
    index: usize,
    key: Option<PKey<Private>>,
) -> Result<SimDevice, SimError> {
    let spec = spec_for(config, index);
    match &config.target {
        LoadTarget::Server { base_url, token, agency, signed_profile } => {
            let profile = fetch_profile(http, base_url, token, agency, *signed_profile).await?;
            match key {
                Some(key) => SimDevice::enroll_with_key(http, &profile, spec, key).await,
                None => SimDevice::enroll_with_profile(http, &profile, spec).await,
            }
        }
        LoadTarget::Local { endpoints } => {
            let key = match key {
                Some(key) => key,
                None => identity::rsa_key(2048)?,
            };
            let identity = Identity::self_signed_with_key(key, &spec.udid)?;
            SimDevice::enroll_without_scep(http, spec, endpoints.clone(), identity).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let l = Latency::of((1..=100).map(|ms| ms * 1000).collect(), 2.0);
        assert_eq!((l.count, l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms), (100, 50.0, 95.0, 99.0, 100.0));
        assert_eq!(l.rate_per_second, 50.0);
        assert_eq!(l.mean_ms, 50.5);
        assert_eq!(Latency::of(Vec::new(), 1.0), Latency::default());
    }
}
