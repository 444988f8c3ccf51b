//! Kept connections for the hottest reads, outside the pool.
//!
//! sqlx's pool makes a round trip to the database each time a connection is taken (on
//! PostgreSQL, where it is asked to check the connection) and each time one is given back (always:
//! it flushes what a cancelled query may have left). A device's poll is one indexed read: through
//! the pool it costs three round trips, each a wake-up of the database's process, which on a busy
//! machine is most of the request. [`Store::lean`] hands out a connection of its own instead,
//! given back as it is when the read succeeded, dropped when it failed or was cancelled (such a
//! connection never serves again), and checked with a round trip only after it sat unused for a while (the
//! database may have restarted meanwhile).

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::Connection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{Conn, SqlError, Store};

/// At most this many kept connections at once; more callers wait for one.
const KEPT: usize = 4;

/// A connection unused for this long is checked before it serves again.
const CHECK_AFTER: Duration = Duration::from_secs(10);

/// The kept connections of one database.
pub(crate) struct LeanConns {
    idle: Mutex<Vec<(Conn, Instant)>>,
    permits: Arc<Semaphore>,
    /// Set when the store closed: connections are no longer kept.
    closed: AtomicBool,
}

impl Default for LeanConns {
    fn default() -> Self {
        LeanConns {
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(KEPT)),
            closed: AtomicBool::new(false),
        }
    }
}

impl std::fmt::Debug for LeanConns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeanConns").field("available", &self.permits.available_permits()).finish()
    }
}

/// A kept connection, handed back by [`LeanConn::release`]. Dropped otherwise: a caller whose
/// query failed, or whose request was cancelled in the middle of one, leaves the connection in
/// a state nobody knows, and it never serves again.
pub struct LeanConn {
    conn: Option<Conn>,
    home: Arc<LeanConns>,
    _permit: OwnedSemaphorePermit,
}

impl LeanConn {
    /// Hands the connection back for the next caller: after the caller's reads succeeded.
    pub fn release(mut self) {
        if let Some(conn) = self.conn.take()
            && !self.home.closed.load(Ordering::Acquire)
        {
            self.home.idle.lock().expect("not poisoned").push((conn, Instant::now()));
        }
    }
}

impl Deref for LeanConn {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        self.conn.as_ref().expect("present until dropped")
    }
}

impl DerefMut for LeanConn {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("present until dropped")
    }
}

impl LeanConns {
    /// Closes the kept connections not in use (the store is closing; one in use is dropped when
    /// its caller is done, since the store refuses to keep connections once closed).
    pub(crate) async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let kept: Vec<(Conn, Instant)> = std::mem::take(&mut *self.idle.lock().expect("not poisoned"));
        for (conn, _) in kept {
            let _ = conn.close().await;
        }
    }
}

impl Store {
    /// A kept connection for a short read (see the module's documentation). The caller releases
    /// it when its reads succeeded.
    pub async fn lean(&self) -> Result<LeanConn, SqlError> {
        if self.pool.is_closed() || self.lean.closed.load(Ordering::Acquire) {
            return Err(SqlError::PoolClosed);
        }
        let permit = self.lean.permits.clone().acquire_owned().await.map_err(|_| SqlError::PoolClosed)?;
        loop {
            let kept = self.lean.idle.lock().expect("not poisoned").pop();
            let conn = match kept {
                Some((mut conn, last_used)) => {
                    if last_used.elapsed() >= CHECK_AFTER && conn.ping().await.is_err() {
                        continue;
                    }
                    conn
                }
                None => self.dedicated().await?,
            };
            return Ok(LeanConn { conn: Some(conn), home: self.lean.clone(), _permit: permit });
        }
    }
}
