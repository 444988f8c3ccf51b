//! Keyset paging: a list answers a page and an opaque cursor for the next one.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::AppError;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The cursor to ask for the next page with; `None` on the last page.
    pub next: Option<String>,
}

/// The requested page size, checked.
pub fn limit(requested: Option<i64>) -> Result<i64, AppError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(AppError::invalid("limit", format!("must be between 1 and {MAX_LIMIT}"))),
    }
}

/// Encodes the sort key of the last item of a page.
pub fn encode(parts: &[&str]) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(parts).expect("strings serialize"))
}

/// Decodes a cursor made by [`encode`] with `n` parts.
pub fn decode(cursor: &str, n: usize) -> Result<Vec<String>, AppError> {
    let invalid = || AppError::invalid("cursor", "is not a cursor this list gave out");
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| invalid())?;
    let parts: Vec<String> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if parts.len() != n {
        return Err(invalid());
    }
    Ok(parts)
}

/// Builds a page from `limit + 1` fetched rows: the extra row only tells that more follow.
pub fn page<R, T>(mut rows: Vec<R>, limit: i64, key: impl Fn(&R) -> String, map: impl Fn(R) -> T) -> Page<T> {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = if more { rows.last().map(&key) } else { None };
    Page { items: rows.into_iter().map(map).collect(), next }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let cursor = encode(&["Ruiz", "Ana", "id-1"]);
        assert_eq!(decode(&cursor, 3).unwrap(), ["Ruiz", "Ana", "id-1"]);
        assert!(decode(&cursor, 2).is_err());
        assert!(decode("not base64!", 3).is_err());
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(limit(None).unwrap(), DEFAULT_LIMIT);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(MAX_LIMIT + 1)).is_err());
    }
}
