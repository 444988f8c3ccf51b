//! Rate limits: a token bucket per client address for requests that carry no credential, and
//! one per credential (API token or session cookie) for the rest; past it, a 429 problem
//! document with `Retry-After`.
//!
//! A request whose credential is not accepted (unknown, expired, or sent where none is checked)
//! is charged to its address too, so inventing tokens does not escape the address's limit; and
//! a credential is refused while its address's bucket is empty. The device endpoints (`/scep`, `/mdm/checkin`, `/mdm/connect`) and
//! the probes (`/healthz`, `/readyz`, `/metrics`) are not limited: devices prove who they are on
//! every message, and an orchestrator's probe must not be refused. The buckets live in this
//! process: several nodes each allow the configured rate. Sign-in failures have their own
//! throttle in the database (`app::auth`).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::extract::SESSION_COOKIE;
use crate::problem::Problem;

/// A sustained rate and the burst allowed above it. `per_second == 0` turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

/// The limits in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Per client address, for requests without a credential (and for refused credentials).
    pub anonymous: Rate,
    /// Per API token or console session.
    pub credential: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self { anonymous: Rate { per_second: 50, burst: 200 }, credential: Rate { per_second: 20_000, burst: 40_000 } }
    }
}

/// The buckets of one process.
pub struct Limiter {
    anonymous: Buckets,
    credential: Buckets,
}

impl Limiter {
    pub fn new(limits: RateLimits) -> Self {
        Self { anonymous: Buckets::new(limits.anonymous), credential: Buckets::new(limits.credential) }
    }
}

const SHARDS: usize = 16;
/// Buckets kept per shard before the full (idle) ones are dropped.
const SHARD_CAPACITY: usize = 4_096;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key (a keyed hash of an address or a credential: no secret is kept).
struct Buckets {
    rate: Rate,
    hasher: std::collections::hash_map::RandomState,
    shards: [Mutex<HashMap<u64, Bucket>>; SHARDS],
}

impl Buckets {
    fn new(rate: Rate) -> Self {
        Self { rate, hasher: Default::default(), shards: std::array::from_fn(|_| Mutex::new(HashMap::new())) }
    }

    fn enabled(&self) -> bool {
        self.rate.per_second > 0
    }

    fn key(&self, what: &[u8]) -> u64 {
        self.hasher.hash_one(what)
    }

    /// Runs `f` on the bucket of `key`, refilled up to `now`.
    fn with<T>(&self, key: u64, now: Instant, f: impl FnOnce(&mut Bucket, Rate) -> T) -> T {
        let rate = self.rate;
        let burst = f64::from(rate.burst.max(1));
        let per_second = f64::from(rate.per_second);
        let mut shard = self.shards[(key as usize) % SHARDS].lock().unwrap_or_else(|e| e.into_inner());
        if shard.len() >= SHARD_CAPACITY && !shard.contains_key(&key) {
            // Forget the buckets that have refilled: they hold nothing a fresh one would not.
            shard.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * per_second < burst);
            if shard.len() >= SHARD_CAPACITY {
                shard.clear();
            }
        }
        let bucket = shard.entry(key).or_insert(Bucket { tokens: burst, at: now });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
        bucket.at = now;
        f(bucket, rate)
    }

    /// Takes one token, or answers how long until one is there.
    fn take(&self, key: u64, now: Instant) -> Result<(), Duration> {
        if !self.enabled() {
            return Ok(());
        }
        self.with(key, now, |bucket, rate| {
            if bucket.tokens >= 1.0 {
                bucket.tokens -= 1.0;
                Ok(())
            } else {
                Err(wait(bucket.tokens, rate))
            }
        })
    }

    /// How long until the bucket of `key` holds a token, when it holds none now.
    fn empty_for(&self, key: u64, now: Instant) -> Option<Duration> {
        if !self.enabled() {
            return None;
        }
        self.with(key, now, |bucket, rate| (bucket.tokens < 1.0).then(|| wait(bucket.tokens, rate)))
    }

    /// Takes one token if there is one (a credential not accepted, after the fact).
    fn charge(&self, key: u64, now: Instant) {
        if self.enabled() {
            self.with(key, now, |bucket, _| bucket.tokens = (bucket.tokens - 1.0).max(0.0));
        }
    }
}

fn wait(tokens: f64, rate: Rate) -> Duration {
    Duration::from_secs_f64((1.0 - tokens).max(0.0) / f64::from(rate.per_second.max(1)))
}

/// Set by the extractors when they accept the request's credential.
#[derive(Debug, Clone, Default)]
pub struct CredentialAccepted(Arc<AtomicBool>);

/// Notes on the request that its credential was resolved to a principal (otherwise its address
/// pays for the request too).
pub fn note_accepted(parts: &Parts) {
    if let Some(flag) = parts.extensions.get::<CredentialAccepted>() {
        flag.0.store(true, Ordering::Relaxed);
    }
}

/// Paths outside the limits: the device endpoints and the probes.
fn exempt(path: &str) -> bool {
    matches!(path, "/scep" | "/mdm/checkin" | "/mdm/connect" | "/healthz" | "/readyz" | "/metrics")
}

/// The credential a request carries, if any: a bearer token, else the session cookie.
fn credential(request: &Request) -> Option<&[u8]> {
    let headers = request.headers();
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        return Some(value.as_bytes());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
        .filter(|v| !v.is_empty())
        .map(str::as_bytes)
}

/// The middleware.
pub async fn limit(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if exempt(request.uri().path()) {
        return next.run(request).await;
    }
    let limiter = &state.limiter;
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
        .unwrap_or_default();
    let address = limiter.anonymous.key(address.as_bytes());
    let now = Instant::now();
    let Some(credential) = credential(&request).map(|c| limiter.credential.key(c)) else {
        return match limiter.anonymous.take(address, now) {
            Ok(()) => next.run(request).await,
            Err(wait) => too_many(wait),
        };
    };
    if let Some(wait) = limiter.anonymous.empty_for(address, now) {
        return too_many(wait);
    }
    if let Err(wait) = limiter.credential.take(credential, now) {
        return too_many(wait);
    }
    let accepted = CredentialAccepted::default();
    request.extensions_mut().insert(accepted.clone());
    let response = next.run(request).await;
    if !accepted.0.load(Ordering::Relaxed) {
        limiter.anonymous.charge(address, Instant::now());
    }
    response
}

fn too_many(wait: Duration) -> Response {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as i64;
    Problem::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", "Too many requests")
        .detail(format!("This client sent more requests than Custody accepts. Try again in {seconds} s."))
        .retry_after(seconds)
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let buckets = Buckets::new(Rate { per_second: 10, burst: 3 });
        let start = Instant::now();
        let key = buckets.key(b"10.0.0.1");
        for _ in 0..3 {
            assert!(buckets.take(key, start).is_ok());
        }
        let wait = buckets.take(key, start).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6, "{wait:?}");
        assert!(buckets.take(buckets.key(b"10.0.0.2"), start).is_ok(), "another key has its own bucket");
        assert!(buckets.take(key, start + Duration::from_millis(100)).is_ok(), "one token comes back in 100 ms");
        assert!(buckets.take(key, start + Duration::from_millis(100)).is_err());
        assert!(buckets.empty_for(key, start + Duration::from_millis(150)).is_some());
        assert!(buckets.empty_for(key, start + Duration::from_secs(10)).is_none());
    }

    #[test]
    fn charging_unaccepted_credentials_empties_the_address() {
        let buckets = Buckets::new(Rate { per_second: 1, burst: 2 });
        let now = Instant::now();
        let key = buckets.key(b"10.0.0.1");
        buckets.charge(key, now);
        buckets.charge(key, now);
        buckets.charge(key, now);
        assert!(buckets.empty_for(key, now).is_some());
        assert!(buckets.take(key, now).is_err());
    }

    #[test]
    fn a_zero_rate_is_no_limit() {
        let buckets = Buckets::new(Rate { per_second: 0, burst: 0 });
        let now = Instant::now();
        for _ in 0..1_000 {
            assert!(buckets.take(7, now).is_ok());
        }
    }

    #[test]
    fn full_shards_forget_refilled_buckets() {
        let buckets = Buckets::new(Rate { per_second: 1, burst: 1 });
        let now = Instant::now();
        for i in 0..(SHARDS * SHARD_CAPACITY * 2) as u64 {
            let _ = buckets.take(i, now);
        }
        let kept: usize = buckets.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(kept <= SHARDS * SHARD_CAPACITY, "{kept}");
    }
}
