//! Snapshot files for the state × event tables.

/// Compares `actual` with `tests/snapshots/<name>`; `UPDATE_SNAPSHOTS=1` writes it first.
pub fn assert_snapshot(name: &str, actual: &str) {
    let path = format!("{}/tests/snapshots/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).expect("snapshot file (UPDATE_SNAPSHOTS=1 writes it)");
    if actual != expected {
        let first = actual.lines().zip(expected.lines()).position(|(a, e)| a != e);
        panic!("{name} changed; first differing line: {first:?}; run with UPDATE_SNAPSHOTS=1 and review the diff");
    }
}
