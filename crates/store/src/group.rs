//! Group commit: many small writes from concurrent requests share one transaction.
//!
//! A device's report is a handful of statements; committing each on its own makes the commit
//! (on SQLite the WAL append, on PostgreSQL the flush) and the audit chain's head the cost of
//! the whole request, and serializes every writer behind them. [`Store::grouped`] hands a job to
//! this store's batcher task instead (a few on PostgreSQL, each with its queue): it takes every
//! job waiting (up to [`MAX_JOBS`]), runs them one after the other in one write transaction,
//! appends their audit events to the chain with one head update, commits once and answers each
//! caller. Jobs with the same [key](GroupJob::key) (a device's) go to the same batcher, so they
//! commit in the order they were handed in. [`Store::submit`] hands a job in without waiting for
//! it: a write nobody waits for waits a little for company instead of paying a commit of its own.
//!
//! A job that fails rolls the shared transaction back; the batcher then runs every job of that
//! batch again, each in a transaction of its own, so one bad job costs the others nothing but
//! time. Jobs must therefore be repeatable: they read what they need through the transaction and
//! keep no state between runs. A job must not begin another write (it would wait for itself).
//!
//! Each batcher writes through a connection of its own, outside the pool, kept from one batch to
//! the next: the pool checks a connection with a round trip each time it is taken (on
//! PostgreSQL), and on SQLite every statement is two thread hand-offs. On SQLite that
//! connection's page cache also stays warm, since it made the last changes itself. After any
//! failure the batcher lets the connection go and opens another.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{mpsc, oneshot};

use crate::audit::{self, NewEvent};
use sqlx::Executor;

use crate::{Conn, SqlError, Store};

/// At most this many jobs share a transaction.
pub const MAX_JOBS: usize = 128;

/// Jobs waiting for the batcher before callers wait to hand theirs in.
const QUEUE: usize = 4_096;

/// How long a batch of only [unhurried](GroupJob::unhurried) jobs waits for company.
pub const UNHURRIED_WAIT: std::time::Duration = std::time::Duration::from_millis(10);

/// A future a job returns, borrowing the transaction.
pub type JobFuture<'a, T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'a>>;

/// The transaction a job runs in: its connection, and the audit events its changes record,
/// appended to the chain when the batch commits.
pub struct GroupTx {
    /// The batcher's own connection, inside a transaction it began.
    conn: Conn,
    /// SQLite: this process's write turn, held until the transaction ends.
    _gate: Option<tokio::sync::OwnedMutexGuard<()>>,
    events: Vec<NewEvent>,
    /// MDM commands handed to their devices by the jobs, marked sent at commit, and the latest
    /// time one was handed out.
    handed_out: Vec<String>,
    handed_out_at: i64,
}

impl GroupTx {
    /// The connection, inside the shared transaction.
    pub fn conn(&mut self) -> &mut Conn {
        &mut self.conn
    }

    /// Records `event` in the audit chain when the transaction commits (and never otherwise).
    pub fn audit(&mut self, event: NewEvent) {
        self.events.push(event);
    }

    /// Marks MDM command `id` sent when the transaction commits, as handed to its device at
    /// `now` ([`mdm::mark_sent`](crate::mdm::mark_sent)): every command the batch hands out is
    /// marked by one statement. Only for a command its device receives after the commit (in the
    /// answer to its report): one it already has could be answered by a later job of the batch,
    /// before the mark.
    pub fn hand_out(&mut self, id: String, now: i64) {
        self.handed_out.push(id);
        self.handed_out_at = self.handed_out_at.max(now);
    }

    fn new(conn: Conn, gate: Option<tokio::sync::OwnedMutexGuard<()>>) -> GroupTx {
        GroupTx { conn, _gate: gate, events: Vec::new(), handed_out: Vec::new(), handed_out_at: 0 }
    }
}

/// A unit of work for [`Store::grouped`].
pub trait GroupJob: Send + Sync + 'static {
    type Output: Send + 'static;
    type Error: From<SqlError> + Send + 'static;

    /// Does the job's reads and writes in `tx`. May run twice (see the module's documentation).
    fn run<'a>(&'a self, tx: &'a mut GroupTx) -> JobFuture<'a, Self::Output, Self::Error>;

    /// Jobs of the same key (a device, say) go to the same batcher, so they commit in the order
    /// they were handed in; jobs without one are spread over the batchers.
    fn key(&self) -> Option<&str> {
        None
    }

    /// Nobody waits for this job's commit (it was [`Store::submit`]ted and its caller went on):
    /// a batch of only such jobs waits up to [`UNHURRIED_WAIT`] for a job somebody waits for, to
    /// share its commit rather than pay one of its own.
    fn unhurried(&self) -> bool {
        false
    }
}

/// A job with its caller's answer, its type erased so that jobs of any kind share a batch.
pub(crate) trait Pending: Send {
    /// Runs the job; false when it failed (or panicked), its error kept for its caller.
    fn run<'a>(&'a mut self, tx: &'a mut GroupTx) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>>;
    /// Answers the caller: the job's own error if it failed, else its output once `committed`.
    fn finish(self: Box<Self>, committed: Result<(), &SqlError>);
    /// See [`GroupJob::unhurried`].
    fn unhurried(&self) -> bool;
}

struct Slot<J: GroupJob> {
    job: J,
    outcome: Option<Result<J::Output, J::Error>>,
    reply: oneshot::Sender<Result<J::Output, J::Error>>,
}

impl<J: GroupJob> Pending for Slot<J> {
    fn run<'a>(&'a mut self, tx: &'a mut GroupTx) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        Box::pin(async move {
            let outcome = match (CatchUnwind { inner: self.job.run(tx) }).await {
                Ok(outcome) => outcome,
                Err(()) => Err(panicked().into()),
            };
            let ok = outcome.is_ok();
            self.outcome = Some(outcome);
            ok
        })
    }

    fn finish(self: Box<Self>, committed: Result<(), &SqlError>) {
        let answer = match (self.outcome, committed) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(output)), Ok(())) => Ok(output),
            (Some(Ok(_)), Err(e)) => Err(copy_error(e).into()),
            (None, Err(e)) => Err(copy_error(e).into()),
            (None, Ok(())) => Err(panicked().into()),
        };
        // The caller may have gone (its request was cancelled): what committed stays committed.
        let _ = self.reply.send(answer);
    }

    fn unhurried(&self) -> bool {
        self.job.unhurried()
    }
}

/// A future that turns a panic while it is polled into `Err(())`.
struct CatchUnwind<F> {
    inner: F,
}

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.inner;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

fn panicked() -> SqlError {
    SqlError::Protocol("a grouped write panicked; its changes were rolled back".into())
}

fn batcher_gone() -> SqlError {
    SqlError::Protocol("the group-commit batcher has stopped".into())
}

/// The same error for every caller of a batch whose commit failed.
fn copy_error(e: &SqlError) -> SqlError {
    match e {
        SqlError::Io(io) => SqlError::Io(std::io::Error::new(io.kind(), io.to_string())),
        SqlError::PoolTimedOut => SqlError::PoolTimedOut,
        other => SqlError::Protocol(format!("the shared transaction failed: {other}")),
    }
}

/// Where a store's jobs go, one queue per batcher: started with the first job.
#[derive(Debug)]
pub(crate) struct Sender {
    queues: Vec<mpsc::Sender<Box<dyn Pending>>>,
    /// The batcher of the next job without a key.
    next: std::sync::atomic::AtomicUsize,
    /// SQLite: dropped with the queues, which stops the checkpointer.
    _checkpointer: Option<oneshot::Sender<()>>,
}

impl Sender {
    /// The queue of a job with `key` (the same for the same key), or the next in turn.
    fn queue(&self, key: Option<&str>) -> &mpsc::Sender<Box<dyn Pending>> {
        let index = match key {
            _ if self.queues.len() == 1 => 0,
            Some(key) => {
                use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
                BuildHasherDefault::<DefaultHasher>::default().hash_one(key) as usize % self.queues.len()
            }
            None => self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.queues.len(),
        };
        &self.queues[index]
    }
}

/// A job handed to the batcher ([`Store::submit`]): its outcome, once its transaction ended.
pub struct Submitted<J: GroupJob> {
    answer: oneshot::Receiver<Result<J::Output, J::Error>>,
}

impl<J: GroupJob> Submitted<J> {
    /// The job's output once its transaction committed, or its error.
    pub async fn outcome(self) -> Result<J::Output, J::Error> {
        self.answer.await.map_err(|_| batcher_gone())?
    }
}

impl Store {
    /// Runs `job` in a write transaction shared with other callers' jobs (group commit), and
    /// answers once that transaction committed, or with the job's own error.
    pub async fn grouped<J: GroupJob>(&self, job: J) -> Result<J::Output, J::Error> {
        self.submit(job).await?.outcome().await
    }

    /// Hands `job` to its batcher and returns as soon as it is queued, before it runs: for a
    /// write its caller need not wait for (its outcome is in the returned handle). The jobs of
    /// one key run in the order they were submitted.
    pub async fn submit<J: GroupJob>(&self, job: J) -> Result<Submitted<J>, SqlError> {
        let sender = self.group.get_or_init(|| Arc::new(start(self.without_batcher()))).clone();
        let (reply, answer) = oneshot::channel();
        let queue = sender.queue(job.key()).clone();
        let pending: Box<dyn Pending> = Box::new(Slot { job, outcome: None, reply });
        queue.send(pending).await.map_err(|_| batcher_gone())?;
        Ok(Submitted { answer })
    }

    /// A handle on the same database whose own batcher is not started: the batcher task holds
    /// it, so that dropping every other handle ends the task.
    fn without_batcher(&self) -> Store {
        Store {
            pool: self.pool.clone(),
            backend: self.backend,
            write_gate: self.write_gate.clone(),
            group: Arc::default(),
            lean: self.lean.clone(),
        }
    }
}

/// Batchers per store. SQLite has one writer at a time, so one batcher; PostgreSQL runs a few
/// batches at once (their jobs' statements overlap, and only the audit append and commit at the
/// end of each batch take turns on the chain's head).
fn batchers(store: &Store) -> usize {
    match store.backend {
        crate::Backend::Sqlite => 1,
        crate::Backend::Postgres => 4,
    }
}

fn start(store: Store) -> Sender {
    let mut queues = Vec::new();
    let store_for_checkpoints = store.clone();
    let batchers: Vec<_> = (0..batchers(&store))
        .map(|_| {
            let (sender, receiver) = mpsc::channel::<Box<dyn Pending>>(QUEUE);
            queues.push(sender);
            batcher(receiver, Writer { store: store.clone(), idle: None })
        })
        .collect();
    // The batchers run on a thread of their own, with a runtime of their own: their work is a
    // chain of statements, each an await, and on the server's runtime every await would queue
    // behind the request handlers ready at that moment (a batch's latency is every report's).
    let sqlite = store.backend == crate::Backend::Sqlite;
    let thread = std::thread::Builder::new().name("custody-batcher".into()).spawn(move || {
        if sqlite {
            keep_to_one_core();
        }
        match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime.block_on(async move {
                let running: Vec<_> = batchers.into_iter().map(tokio::spawn).collect();
                for batcher in running {
                    let _ = batcher.await;
                }
            }),
            Err(e) => tracing::error!(error = %e, "the group-commit batcher's runtime did not start"),
        }
    });
    if let Err(e) = thread {
        tracing::error!(error = %e, "the group-commit batcher's thread did not start");
    }
    let checkpointer = sqlite.then(|| checkpointer(store_for_checkpoints));
    Sender { queues, next: std::sync::atomic::AtomicUsize::new(0), _checkpointer: checkpointer }
}

/// SQLite: the write-ahead log's size in pages at which the batcher checkpoints it itself.
const BATCHER_CHECKPOINT_PAGES: u32 = 4_000;

/// How often the checkpointer moves the SQLite write-ahead log into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(25);

/// SQLite: a thread of its own copies the write-ahead log into the database, passively (never
/// blocking a writer or a reader), every [`CHECKPOINT_EVERY`], until the batcher's queues are
/// dropped. By default the committing connection checkpoints, every 1,000 pages: the copy and its
/// `fsync` then stall the batch, and every report waiting on it, while the other core idles. The
/// batcher still checkpoints, every [`BATCHER_CHECKPOINT_PAGES`], but finds most of the log
/// copied already; it is needed all the same, since only a checkpoint that catches up with the
/// last commit lets the next one start the log over (a passive checkpoint on another thread
/// never catches up under a steady stream of commits, and the log would grow without end).
fn checkpointer(store: Store) -> oneshot::Sender<()> {
    let (stop, mut stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new().name("custody-checkpoint".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(e) => return tracing::error!(error = %e, "the checkpointer's runtime did not start"),
        };
        runtime.block_on(async move {
            let mut conn: Option<Conn> = None;
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    () = tokio::time::sleep(CHECKPOINT_EVERY) => {}
                }
                let result = match conn.as_mut() {
                    Some(c) => c.execute("PRAGMA wal_checkpoint(PASSIVE)").await.map(drop),
                    None => match store.dedicated().await {
                        Ok(c) => {
                            conn = Some(c);
                            Ok(())
                        }
                        Err(e) => Err(e),
                    },
                };
                if let Err(e) = result {
                    tracing::warn!(error = %e, "checkpointing the write-ahead log failed");
                    conn = None;
                    if store.pool.is_closed() {
                        break;
                    }
                }
            }
        });
    });
    if let Err(e) = thread {
        tracing::error!(error = %e, "the checkpointer's thread did not start");
    }
    stop
}

/// Keeps the calling thread on one of the cores it may use, and with it the threads it starts
/// from now on, which inherit the choice: on SQLite, the batcher and its connection's thread (sqlx
/// runs each SQLite connection on a thread of its own). A batch is a chain of statements, each
/// handed to that thread and its answer handed back; between two threads on one core a hand-off
/// is a plain switch, where across cores it is a wake-up of the other core, which costs more, and
/// far more on a virtual machine. Measured with `bench/mdm.py` on 2 cores: command round trips
/// went from 0.45–0.51 of the ceiling to 0.50–0.57.
#[cfg(target_os = "linux")]
fn keep_to_one_core() {
    use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
    use nix::unistd::Pid;
    let Ok(allowed) = sched_getaffinity(Pid::from_raw(0)) else { return };
    let cores: Vec<usize> = (0..CpuSet::count()).filter(|&core| allowed.is_set(core).unwrap_or(false)).collect();
    let Some(&last) = cores.last() else { return };
    if cores.len() < 2 {
        return;
    }
    let mut one = CpuSet::new();
    if let Err(e) = one.set(last).and_then(|()| sched_setaffinity(Pid::from_raw(0), &one)) {
        tracing::debug!(error = %e, "the batcher stays free to move between cores");
    }
}

#[cfg(not(target_os = "linux"))]
fn keep_to_one_core() {}

/// Runs batches as jobs arrive, until every sender is gone.
async fn batcher(mut receiver: mpsc::Receiver<Box<dyn Pending>>, mut writer: Writer) {
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        loop {
            while batch.len() < MAX_JOBS {
                match receiver.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            if batch.len() >= MAX_JOBS || !batch.iter().all(|job| job.unhurried()) {
                break;
            }
            match tokio::time::timeout(UNHURRIED_WAIT, receiver.recv()).await {
                Ok(Some(job)) => batch.push(job),
                // The wait is over, or every sender is gone: what is here commits now.
                Ok(None) | Err(_) => break,
            }
        }
        writer.run_batch(batch).await;
    }
}

/// A batcher's writing side: its own connection, kept between batches and opened again after
/// any failure (a job's error, a failed commit, a lost connection), so that a connection in an
/// unknown state never begins the next batch.
struct Writer {
    store: Store,
    idle: Option<Conn>,
}

impl Writer {
    async fn run_batch(&mut self, mut batch: Vec<Box<dyn Pending>>) {
        if batch.len() > 1 {
            match self.together(&mut batch).await {
                Ok(()) => {
                    for job in batch {
                        job.finish(Ok(()));
                    }
                    return;
                }
                Err(Some(e)) => {
                    // Beginning or committing failed: nothing of the batch is written, and running
                    // the jobs again would meet the same database. Every caller learns why.
                    tracing::warn!(error = %e, jobs = batch.len(), "a grouped transaction failed");
                    for job in batch {
                        job.finish(Err(&e));
                    }
                    return;
                }
                // A job failed: each runs again alone, below.
                Err(None) => {}
            }
        }
        for mut job in batch {
            match self.alone(&mut job).await {
                Ok(()) => job.finish(Ok(())),
                Err(e) => job.finish(Err(&e)),
            }
        }
    }

    /// Every job of the batch in one transaction. `Err(None)`: a job failed (rolled back).
    async fn together(&mut self, batch: &mut [Box<dyn Pending>]) -> Result<(), Option<SqlError>> {
        let mut group = self.begin().await.map_err(Some)?;
        for job in batch.iter_mut() {
            if !job.run(&mut group).await {
                self.rollback(group).await;
                return Err(None);
            }
        }
        self.commit(group).await.map_err(Some)
    }

    /// One job in its own transaction. A failed job rolls back and keeps its own error.
    async fn alone(&mut self, job: &mut Box<dyn Pending>) -> Result<(), SqlError> {
        let mut group = self.begin().await?;
        if !job.run(&mut group).await {
            self.rollback(group).await;
            return Ok(());
        }
        self.commit(group).await
    }

    /// Begins a write transaction on the kept connection, or on a new one when there is none or
    /// the kept one fails to begin (the database restarted since the last batch, say).
    async fn begin(&mut self) -> Result<GroupTx, SqlError> {
        let gate = self.store.gate().await?;
        if let Some(mut conn) = self.idle.take() {
            match conn.execute(self.store.begin_write()).await {
                Ok(_) => return Ok(GroupTx::new(conn, gate)),
                Err(e) => tracing::info!(error = %e, "the batcher's connection failed; opening another"),
            }
        }
        let mut conn = self.store.dedicated().await?;
        if self.store.backend == crate::Backend::Sqlite {
            // Mostly the checkpointer's work (see `checkpointer`).
            conn.execute(sqlx::AssertSqlSafe(format!("PRAGMA wal_autocheckpoint = {BATCHER_CHECKPOINT_PAGES}")))
                .await?;
        }
        conn.execute(self.store.begin_write()).await?;
        Ok(GroupTx::new(conn, gate))
    }

    /// Marks the commands the batch handed out, appends its audit events and commits; the
    /// connection is kept for the next batch only when that succeeded.
    async fn commit(&mut self, mut group: GroupTx) -> Result<(), SqlError> {
        if !group.handed_out.is_empty() {
            crate::mdm::mark_sent_many(&mut group.conn, &group.handed_out, group.handed_out_at).await?;
        }
        let events = std::mem::take(&mut group.events);
        audit::append_many(&mut group.conn, events).await?;
        group.conn.execute("COMMIT").await?;
        self.idle = Some(group.conn);
        Ok(())
    }

    /// Rolls a failed batch back, and lets the connection go: the next batch opens a new one.
    async fn rollback(&mut self, mut group: GroupTx) {
        if let Err(e) = group.conn.execute("ROLLBACK").await {
            tracing::warn!(error = %e, "rolling a grouped transaction back failed");
        }
        let _ = sqlx::Connection::close(group.conn).await;
    }
}
