//! `custody admin backup` and `custody admin restore` on SQLite: an online, consistent copy of the
//! live database, and a checked restore of one. Neither ever overwrites a file: each writes under
//! a temporary name beside its destination and links it into place whole, so a crash leaves no
//! half a file. PostgreSQL's backups are `pg_dump`'s job; for it these commands explain how.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use custody_store::audit::Verification;
use custody_store::{Backend, Store, StoreOptions, backup, migrate};

/// What `backup` wrote.
#[derive(Debug)]
pub struct Backup {
    pub path: PathBuf,
    pub bytes: u64,
    pub audit_events: i64,
    pub schema_version: i64,
}

/// What `restore` put in place.
#[derive(Debug)]
pub struct Restore {
    pub path: PathBuf,
    pub bytes: u64,
    pub audit_events: i64,
    /// The backup's schema version, before the migrations `restore` applied.
    pub from_version: i64,
    pub migrations_applied: usize,
}

/// The database file of a `sqlite:` URL, read as sqlx reads it.
pub fn sqlite_file(database_url: &str) -> anyhow::Result<PathBuf> {
    let rest = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .with_context(|| format!("`{database_url}` is not a SQLite URL"))?;
    let file = rest.split_once('?').map_or(rest, |(file, _)| file);
    ensure!(!file.is_empty() && file != ":memory:", "`{database_url}` names no database file");
    Ok(PathBuf::from(file))
}

/// Writes an online, consistent copy of the SQLite database at `database_url` to `out`, a new
/// file; checks the copy with `PRAGMA integrity_check` before putting it in place.
pub async fn backup(database_url: &str, out: &Path) -> anyhow::Result<Backup> {
    let live = sqlite_file(database_url)?;
    ensure!(live.is_file(), "there is no database at {}: nothing to back up", live.display());
    refuse_existing(out, "a backup never overwrites a file: choose a new name")?;
    let staged = Staged::beside(out, "backup")?;

    let store = open(&live).await?;
    let copied = backup::vacuum_into(&store, staged.path()).await;
    store.close().await;
    copied.with_context(|| format!("copying {} with VACUUM INTO", live.display()))?;

    let copy = open(staged.path()).await?;
    let checked = async {
        let problems = backup::integrity_problems(&copy).await?;
        ensure!(problems.is_empty(), "the copy fails SQLite's integrity check: {}", problems.join("; "));
        let audit_events = backup::audit_events(&copy).await?;
        let schema_version = migrate::current_version(&copy).await?.unwrap_or(0);
        backup::into_one_file(&copy).await?;
        Ok((audit_events, schema_version))
    }
    .await;
    copy.close().await;
    let (audit_events, schema_version) = checked?;

    let bytes = staged.place(out)?;
    Ok(Backup { path: out.to_path_buf(), bytes, audit_events, schema_version })
}

/// Restores the SQLite backup `from` as the database at `database_url`, which must not exist.
/// The backup is copied beside the target, checked there (`PRAGMA integrity_check`, the audit
/// chain), migrated when older than this binary, then linked into place. `from` is not changed.
pub async fn restore(from: &Path, database_url: &str) -> anyhow::Result<Restore> {
    let target = sqlite_file(database_url)?;
    ensure!(from.is_file(), "there is no backup file at {}", from.display());
    ensure!(is_sqlite_file(from)?, "{} is not a SQLite database: nothing was restored", from.display());
    ensure!(
        !sidecar(from, "-wal").exists(),
        "{} has a write-ahead log beside it: it is a live database, not a backup; take a backup of it \
         with `custody admin backup` and restore that",
        from.display()
    );
    for path in database_files(&target) {
        refuse_existing(&path, "restore never replaces a database: restore to a new path")?;
    }
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let staged = Staged::beside(&target, "restore")?;
    std::fs::copy(from, staged.path())
        .with_context(|| format!("copying {} to {}", from.display(), staged.path().display()))?;

    let store = open(staged.path())
        .await
        .with_context(|| format!("opening the backup {}: is it a SQLite database?", from.display()))?;
    let checked = check_and_migrate(&store, from).await;
    store.close().await;
    let (audit_events, from_version, migrations_applied) = checked?;

    let bytes = staged.place(&target)?;
    Ok(Restore { path: target, bytes, audit_events, from_version, migrations_applied })
}

/// The checks of a backup being restored, then its migrations; returns (audit events, the
/// backup's schema version, migrations applied).
async fn check_and_migrate(store: &Store, from: &Path) -> anyhow::Result<(i64, i64, usize)> {
    let problems = backup::integrity_problems(store)
        .await
        .with_context(|| format!("checking {}: is it a SQLite database?", from.display()))?;
    ensure!(
        problems.is_empty(),
        "{} fails SQLite's integrity check: {}; nothing was restored",
        from.display(),
        problems.join("; ")
    );
    let from_version = migrate::current_version(store)
        .await
        .ok()
        .flatten()
        .with_context(|| format!("{} is not a Custody database (it has no schema_migrations)", from.display()))?;
    let latest = migrate::latest_version();
    ensure!(
        from_version <= latest,
        "{} has schema version {from_version}, newer than this binary's {latest}: restore it with a newer custody",
        from.display()
    );
    let audit_events = match custody_store::audit::verify(store, 1000).await.context("verifying the audit chain")? {
        Verification::Intact { events } => events,
        Verification::Broken(brk) => bail!(
            "the audit chain of {} is BROKEN at event {} {}: {}; nothing was restored",
            from.display(),
            brk.seq,
            brk.id,
            brk.reason
        ),
    };
    let migrations_applied =
        if from_version < latest { migrate::run(store).await.context("migrating the backup")? } else { 0 };
    backup::into_one_file(store).await?;
    Ok((audit_events, from_version, migrations_applied))
}

/// What to run instead on PostgreSQL: `pg_dump` and `pg_restore` with the URL's database.
pub fn postgres_guidance(database_url: &str, out: Option<&Path>) -> String {
    let url = without_password(database_url);
    // postgres://USER@HOST/DATABASE?PARAMS
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let (server, rest) = match url[scheme_end..].find('/') {
        Some(slash) => (&url[..scheme_end + slash], &url[scheme_end + slash + 1..]),
        None => (url.as_str(), ""),
    };
    let (database, params) = rest.split_once('?').map_or((rest, String::new()), |(d, p)| (d, format!("?{p}")));
    let database = if database.is_empty() { "custody" } else { database };
    let restored = format!("{database}_restored");
    let restored_url = format!("{server}/{restored}{params}");
    let file = out.map_or_else(|| format!("{database}.dump"), |p| p.display().to_string());
    format!(
        "Custody backs up SQLite itself; on PostgreSQL the online backup is pg_dump's job. pg_dump reads one \
         consistent snapshot while the server keeps writing:\n\
         \n    pg_dump --format=custom --file='{file}' '{url}'\n\
         \nRestore into a new, empty database with pg_restore, check it, then point Custody at it:\n\
         \n    psql '{url}' --command='CREATE DATABASE \"{restored}\"'\
         \n    pg_restore --no-owner --dbname='{restored_url}' '{file}'\
         \n    custody admin audit-verify --database-url '{restored_url}'\n\
         \n(The password is left out: give it with PGPASSWORD or ~/.pgpass.)"
    )
}

fn without_password(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => match url[scheme + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}{}", &url[..scheme + 3], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

/// True when `database_url` is PostgreSQL's.
pub fn is_postgres(database_url: &str) -> bool {
    matches!(Backend::of_url(database_url), Ok(Backend::Postgres))
}

/// One connection to the SQLite file at `path`, which must exist (never created here).
async fn open(path: &Path) -> anyhow::Result<Store> {
    let file = path.to_str().with_context(|| format!("{} is not a UTF-8 path", path.display()))?;
    ensure!(!file.contains('?'), "{file}: a database path may not contain `?`");
    let options = StoreOptions { max_connections: 1, ..Default::default() };
    Store::connect(&format!("sqlite://{file}?mode=rw"), &options).await
}

/// True when the file starts with SQLite's header (a file SQLite would not open makes the pool
/// retry until its timeout, so it is recognised first).
fn is_sqlite_file(path: &Path) -> anyhow::Result<bool> {
    use std::io::Read;
    let mut header = [0u8; 16];
    let mut file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(file.read_exact(&mut header).is_ok() && &header == b"SQLite format 3\0")
}

fn refuse_existing(path: &Path, why: &str) -> anyhow::Result<()> {
    if std::fs::symlink_metadata(path).is_ok() {
        bail!("{} already exists: {why}", path.display());
    }
    Ok(())
}

/// `path` with `suffix` appended to its name (`custody.db-wal`).
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// A SQLite database's file and the files SQLite keeps beside it: a stale log left there would be
/// replayed into a database restored under the same name.
fn database_files(path: &Path) -> [PathBuf; 4] {
    [path.to_path_buf(), sidecar(path, "-wal"), sidecar(path, "-shm"), sidecar(path, "-journal")]
}

/// A file written under a temporary name in its destination's directory: removed (with any
/// SQLite files beside it) when dropped, unless `place` moved it into place.
struct Staged {
    path: PathBuf,
}

impl Staged {
    fn beside(destination: &Path, purpose: &str) -> anyhow::Result<Self> {
        let name = destination
            .file_name()
            .with_context(|| format!("{} names no file", destination.display()))?
            .to_string_lossy()
            .into_owned();
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let staged = format!(".{name}.{purpose}-{}-{nanos}", std::process::id());
        let path = match destination.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(dir) => {
                ensure!(dir.is_dir(), "there is no directory {}", dir.display());
                dir.join(staged)
            }
            None => PathBuf::from(staged),
        };
        Ok(Self { path })
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the file durable and gives it the name `destination`, which must not exist: a hard
    /// link, which fails rather than replace a file; on file systems without hard links (FAT, some
    /// network shares) a rename after checking. Returns the file's size.
    fn place(self, destination: &Path) -> anyhow::Result<u64> {
        let file = std::fs::File::open(&self.path).with_context(|| format!("opening {}", self.path.display()))?;
        file.sync_all().with_context(|| format!("syncing {}", self.path.display()))?;
        let bytes = file.metadata()?.len();
        drop(file);
        match std::fs::hard_link(&self.path, destination) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                bail!("{} appeared meanwhile: it was left as it is", destination.display())
            }
            Err(_) => {
                refuse_existing(destination, "it appeared meanwhile and was left as it is")?;
                std::fs::rename(&self.path, destination)
                    .with_context(|| format!("renaming {} to {}", self.path.display(), destination.display()))?;
            }
        }
        drop(self);
        #[cfg(unix)]
        if let Some(dir) = destination.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .with_context(|| format!("syncing {}", dir.display()))?;
        }
        Ok(bytes)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        for path in database_files(&self.path) {
            let _ = std::fs::remove_file(path);
        }
    }
}
