//! Mixed load: simulated devices running command sessions beside API reads and writes and
//! console pages, against one Custody server, either as fast as `workers` tasks go (to measure
//! the mix's capacity) or at a fixed rate for a long run (open loop: each operation is due at
//! its own moment, and its latency counts from then, so a stall shows as latency instead of
//! hiding as fewer requests). Reports the whole run and each window of `window_seconds`.
//!
//! The mix, out of 20 operations: 8 device sessions (an Idle, and the commands queued for the
//! device), 5 reads of a page of people and 2 of enrollments through the API, 2 commands queued
//! for a device and 1 person created through the API, 2 console pages (the people list).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Mutex, Semaphore};

use crate::device::{SimDevice, SimError, error_chain, fetch_profile};
use crate::identity;
use crate::load::Latency;
use crate::spec::{DeviceKind, DeviceSpec};

/// A mixed run.
#[derive(Debug, Clone)]
pub struct MixedConfig {
    pub base_url: String,
    /// An admin API token (enrollment profile, commands, people).
    pub token: String,
    /// The agency the devices enroll in and people are created in.
    pub agency: String,
    /// A console user's e-mail and password (signed in once, its session used for pages).
    pub console_user: (String, String),
    pub devices: usize,
    pub seed: u64,
    /// Concurrent operations at most (closed loop: the number of tasks).
    pub workers: usize,
    /// Operations per second, or `None`: as fast as `workers` go.
    pub rate: Option<f64>,
    pub seconds: u64,
    pub window_seconds: u64,
    pub timeout: Duration,
}

/// What kind an operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    DeviceSession,
    ApiPeople,
    ApiEnrollments,
    ApiQueueCommand,
    ApiCreatePerson,
    ConsolePeople,
}

/// The mix, in order: operation `n` is `MIX[n % 20]`.
const MIX: [Kind; 20] = {
    use Kind::*;
    [
        DeviceSession,
        ApiPeople,
        DeviceSession,
        ConsolePeople,
        DeviceSession,
        ApiPeople,
        ApiQueueCommand,
        DeviceSession,
        ApiEnrollments,
        ApiPeople,
        DeviceSession,
        ApiCreatePerson,
        DeviceSession,
        ApiPeople,
        ConsolePeople,
        DeviceSession,
        ApiQueueCommand,
        ApiEnrollments,
        DeviceSession,
        ApiPeople,
    ]
};

/// One window of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// Seconds from the start of the run to the window's start.
    pub start_s: u64,
    pub operations: usize,
    pub errors: usize,
    pub rate_per_second: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The report of a mixed run.
#[derive(Debug, Clone, Serialize)]
pub struct MixedReport {
    pub devices: usize,
    pub workers: usize,
    /// The rate asked, when open loop.
    pub target_rate: Option<f64>,
    pub seconds: f64,
    pub operations: usize,
    pub errors: usize,
    pub rate_per_second: f64,
    pub overall: Latency,
    pub by_kind: BTreeMap<Kind, Latency>,
    pub errors_by_kind: BTreeMap<Kind, usize>,
    pub windows: Vec<Window>,
    /// The first few errors, as text.
    pub error_samples: Vec<String>,
    /// Operations that started later than due because `workers` were all busy.
    pub late_starts: usize,
}

/// One operation's outcome: when it was due (from the run's start), its kind, its latency from
/// then, and whether it failed.
struct Done {
    due: Duration,
    kind: Kind,
    micros: u32,
    error: Option<String>,
}

struct Shared {
    http: reqwest::Client,
    config: MixedConfig,
    cookie: String,
    devices: Mutex<Vec<SimDevice>>,
    udids: Vec<String>,
    done: std::sync::Mutex<Vec<Done>>,
}

/// Runs the mix (see the module documentation): enrolls the devices (untimed), then runs.
pub async fn run_mixed(config: MixedConfig) -> Result<MixedReport, SimError> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(config.timeout)
        .pool_max_idle_per_host(config.workers.max(1))
        .build()
        .map_err(|source| SimError::Http { method: "GET", url: String::new(), source })?;
    let key = tokio::task::spawn_blocking(|| identity::rsa_key(2048)).await.expect("key generation does not panic")?;
    let profile = fetch_profile(&http, &config.base_url, &config.token, &config.agency, false).await?;
    let mut devices = Vec::with_capacity(config.devices);
    for index in 0..config.devices {
        let kind = if index % 3 == 2 { DeviceKind::IPad } else { DeviceKind::IPhone };
        let spec = DeviceSpec::derive(kind, config.seed, index as u64);
        let mut device = SimDevice::enroll_with_key(&http, &profile, spec, key.clone()).await?;
        device.run_until_idle().await?;
        devices.push(device);
    }
    let cookie = sign_in(&http, &config).await?;
    let udids = devices.iter().map(|d| d.udid().to_owned()).collect();
    let shared = Arc::new(Shared {
        http,
        config: config.clone(),
        cookie,
        devices: Mutex::new(devices),
        udids,
        done: std::sync::Mutex::new(Vec::new()),
    });

    let started = Instant::now();
    let run_for = Duration::from_secs(config.seconds);
    let mut late_starts = 0;
    match config.rate {
        None => {
            // The workers draw operation numbers from one counter, so the operations started
            // follow the mix in order. (Each worker stepping by the worker count instead gave
            // each worker a fixed subset of the mix, and the workers holding the cheap kinds ran
            // ahead: the mix done drifted toward API reads and the capacity read high.)
            let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..config.workers.max(1) {
                let (shared, next) = (shared.clone(), next.clone());
                tasks.spawn(async move {
                    while started.elapsed() < run_for {
                        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let due = started.elapsed();
                        operate(&shared, n, started, due).await;
                    }
                });
            }
            tasks.join_all().await;
        }
        Some(rate) => {
            let gate = Arc::new(Semaphore::new(config.workers.max(1)));
            let mut tasks = tokio::task::JoinSet::new();
            let total = (rate * config.seconds as f64) as usize;
            for n in 0..total {
                let due = Duration::from_secs_f64(n as f64 / rate);
                // Only a due time still ahead is slept to: a timer already past fires on the
                // timer driver's next turn (a millisecond or more), which capped a late run at
                // about one start a millisecond, whatever the server could do.
                if let Some(ahead) = (started + due).checked_duration_since(Instant::now()) {
                    tokio::time::sleep(ahead).await;
                }
                // Late: every slot was busy at its due time (a timer's own millisecond of
                // lateness is not counted; its latency still counts from the due time).
                let permit = match gate.clone().try_acquire_owned() {
                    Ok(permit) => permit,
                    Err(_) => {
                        late_starts += 1;
                        gate.clone().acquire_owned().await.expect("the gate stays open")
                    }
                };
                let shared = shared.clone();
                tasks.spawn(async move {
                    operate(&shared, n, started, due).await;
                    drop(permit);
                });
                while tasks.try_join_next().is_some() {}
            }
            tasks.join_all().await;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let done = std::mem::take(&mut *shared.done.lock().expect("not poisoned"));
    Ok(report(&config, done, seconds, late_starts))
}

/// Signs the console user in; returns the session cookie's value.
async fn sign_in(http: &reqwest::Client, config: &MixedConfig) -> Result<String, SimError> {
    let url = format!("{}/api/v1/session", config.base_url.trim_end_matches('/'));
    let body = serde_json::json!({"email": config.console_user.0, "password": config.console_user.1});
    let http_error = |source| SimError::Http { method: "POST", url: url.clone(), source };
    let response = http.post(&url).json(&body).send().await.map_err(http_error)?;
    let status = response.status().as_u16();
    let cookie = response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("custody_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    match cookie {
        Some(cookie) if status == 201 => Ok(cookie),
        _ => {
            let text = response.text().await.unwrap_or_default();
            Err(SimError::Status { method: "POST", url, status, body: text })
        }
    }
}

/// Runs operation `n` (its kind from the mix), due at `due` after `started`, and records it.
async fn operate(shared: &Shared, n: usize, started: Instant, due: Duration) {
    let kind = MIX[n % MIX.len()];
    let error = match kind {
        Kind::DeviceSession => device_session(shared).await,
        _ => api_call(shared, kind, n).await,
    };
    let micros = started.elapsed().saturating_sub(due).as_micros().min(u128::from(u32::MAX)) as u32;
    shared.done.lock().expect("not poisoned").push(Done { due, kind, micros, error });
}

/// One command session of the device that has waited longest.
async fn device_session(shared: &Shared) -> Option<String> {
    let device = {
        let mut devices = shared.devices.lock().await;
        if devices.is_empty() { None } else { Some(devices.remove(0)) }
    };
    let Some(mut device) = device else { return Some("no device free: every device is in a session".into()) };
    let outcome = device.run_until_idle().await;
    let udid = device.udid().to_owned();
    shared.devices.lock().await.push(device);
    outcome.err().map(|e: SimError| format!("session of {udid}: {}", error_chain(&e)))
}

/// An API call or console page.
async fn api_call(shared: &Shared, kind: Kind, n: usize) -> Option<String> {
    let config = &shared.config;
    let base = config.base_url.trim_end_matches('/');
    let request = match kind {
        Kind::ApiPeople => shared.http.get(format!("{base}/api/v1/people?limit=50")).bearer_auth(&config.token),
        Kind::ApiEnrollments => {
            shared.http.get(format!("{base}/api/v1/mdm/enrollments?limit=50")).bearer_auth(&config.token)
        }
        Kind::ApiQueueCommand => {
            let udid = &shared.udids[n % shared.udids.len()];
            let body = serde_json::json!({"devices": [udid], "request_type": "DeviceInformation",
                                          "params": {"Queries": ["OSVersion", "BatteryLevel"]}});
            shared.http.post(format!("{base}/api/v1/commands")).bearer_auth(&config.token).json(&body)
        }
        Kind::ApiCreatePerson => {
            let body = serde_json::json!({"agency": config.agency, "given_name": "Load", "family_name": format!("Mixed {n}"),
                                          "email": format!("mixed-{}-{n}@load.example", config.seed)});
            shared.http.post(format!("{base}/api/v1/people")).bearer_auth(&config.token).json(&body)
        }
        Kind::ConsolePeople => {
            shared.http.get(format!("{base}/people")).header("cookie", format!("custody_session={}", shared.cookie))
        }
        Kind::DeviceSession => unreachable!("sessions are not API calls"),
    };
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            let body = response.bytes().await;
            match body {
                Ok(_) if status.is_success() => None,
                Ok(body) => {
                    Some(format!("{kind:?}: {status}: {}", String::from_utf8_lossy(&body[..body.len().min(200)])))
                }
                Err(e) => Some(format!("{kind:?}: reading the body: {e}")),
            }
        }
        Err(e) => Some(format!("{kind:?}: {e}")),
    }
}

fn report(config: &MixedConfig, done: Vec<Done>, seconds: f64, late_starts: usize) -> MixedReport {
    let mut by_kind: BTreeMap<Kind, Vec<u32>> = BTreeMap::new();
    let mut errors_by_kind: BTreeMap<Kind, usize> = BTreeMap::new();
    let mut windows: BTreeMap<u64, (Vec<u32>, usize)> = BTreeMap::new();
    let mut error_samples = Vec::new();
    let window = config.window_seconds.max(1);
    for d in &done {
        by_kind.entry(d.kind).or_default().push(d.micros);
        let w = windows.entry(d.due.as_secs() / window * window).or_default();
        w.0.push(d.micros);
        if let Some(error) = &d.error {
            *errors_by_kind.entry(d.kind).or_default() += 1;
            w.1 += 1;
            if error_samples.len() < 5 {
                error_samples.push(error.clone());
            }
        }
    }
    let errors = errors_by_kind.values().sum();
    let overall = Latency::of(done.iter().map(|d| d.micros).collect(), seconds);
    MixedReport {
        devices: config.devices,
        workers: config.workers,
        target_rate: config.rate,
        seconds,
        operations: done.len(),
        errors,
        rate_per_second: done.len() as f64 / seconds,
        overall,
        by_kind: by_kind.into_iter().map(|(k, v)| (k, Latency::of(v, seconds))).collect(),
        errors_by_kind,
        windows: windows
            .into_iter()
            .map(|(start_s, (micros, errors))| {
                let l = Latency::of(micros, window as f64);
                Window {
                    start_s,
                    operations: l.count,
                    errors,
                    rate_per_second: l.rate_per_second,
                    p50_ms: l.p50_ms,
                    p95_ms: l.p95_ms,
                    p99_ms: l.p99_ms,
                    max_ms: l.max_ms,
                }
            })
            .collect(),
        error_samples,
        late_starts,
    }
}
