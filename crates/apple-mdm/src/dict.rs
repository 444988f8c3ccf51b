//! Reading typed values out of a plist dictionary, naming the key on failure, and writing XML
//! plists. Pure: no IO.

use std::io::Cursor;
use std::time::SystemTime;

use plist::{Dictionary, Value};

/// A key of a plist dictionary that is missing or holds the wrong type of value.
///
/// Keys of nested dictionaries are named by their path, e.g. `QueryResponses.DeviceCapacity` or
/// `CertificateList[2].Data`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A required key is absent.
    #[error("missing required key {key}")]
    Missing {
        /// The key's path.
        key: String,
    },
    /// The key is present but its value is not of the expected type, or is not acceptable.
    #[error("key {key} must be {expected}")]
    Invalid {
        /// The key's path.
        key: String,
        /// What the value must be, e.g. `a string` or `data`.
        expected: String,
    },
}

impl KeyError {
    /// The path of the key at fault.
    pub fn key(&self) -> &str {
        match self {
            KeyError::Missing { key } | KeyError::Invalid { key, .. } => key,
        }
    }
}

/// Parses a property list (XML or binary) whose top level must be a dictionary.
pub(crate) fn parse_dictionary(bytes: &[u8]) -> Result<Dictionary, ParseError> {
    let value = Value::from_reader(Cursor::new(bytes)).map_err(|e| ParseError::Malformed(e.to_string()))?;
    value.into_dictionary().ok_or(ParseError::NotADictionary)
}

/// Why a body could not be read as a plist dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParseError {
    Malformed(String),
    NotADictionary,
}

/// Writes a dictionary as an XML plist.
pub(crate) fn to_xml(dict: Dictionary) -> Vec<u8> {
    let mut out = Vec::new();
    Value::Dictionary(dict).to_writer_xml(&mut out).expect("writing a plist to memory cannot fail");
    out
}

/// The keys of one dictionary, taken one by one as they are read; what is left over is kept.
pub(crate) struct Keys {
    entries: Vec<(String, Option<Value>)>,
    path: String,
}

impl Keys {
    /// The keys of a top-level dictionary.
    pub(crate) fn new(dict: Dictionary) -> Self {
        Keys::nested(dict, String::new())
    }

    /// The keys of a dictionary found at `path` (used as a prefix in errors).
    pub(crate) fn nested(dict: Dictionary, path: String) -> Self {
        Keys { entries: dict.into_iter().map(|(k, v)| (k, Some(v))).collect(), path }
    }

    /// The path of `key` for error messages.
    pub(crate) fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_owned() } else { format!("{}.{key}", self.path) }
    }

    pub(crate) fn invalid(&self, key: &str, expected: &str) -> KeyError {
        KeyError::Invalid { key: self.path_of(key), expected: expected.to_owned() }
    }

    pub(crate) fn missing(&self, key: &str) -> KeyError {
        KeyError::Missing { key: self.path_of(key) }
    }

    /// Takes the value of `key`, if present.
    pub(crate) fn take(&mut self, key: &str) -> Option<Value> {
        self.entries.iter_mut().find(|(k, _)| k == key).and_then(|(_, v)| v.take())
    }

    /// Whether `key` is present and not yet taken.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, v)| k == key && v.is_some())
    }

    fn required<T>(
        &mut self,
        key: &str,
        read: impl FnOnce(&mut Self, &str) -> Result<Option<T>, KeyError>,
    ) -> Result<T, KeyError> {
        read(self, key)?.ok_or_else(|| self.missing(key))
    }

    pub(crate) fn opt_string(&mut self, key: &str) -> Result<Option<String>, KeyError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.invalid(key, "a string")),
        }
    }

    pub(crate) fn string(&mut self, key: &str) -> Result<String, KeyError> {
        self.required(key, Self::opt_string)
    }

    /// A string that must not be empty when present.
    pub(crate) fn opt_non_empty(&mut self, key: &str) -> Result<Option<String>, KeyError> {
        match self.opt_string(key)? {
            Some(s) if s.is_empty() => Err(self.invalid(key, "a non-empty string")),
            other => Ok(other),
        }
    }

    pub(crate) fn non_empty(&mut self, key: &str) -> Result<String, KeyError> {
        self.required(key, Self::opt_non_empty)
    }

    pub(crate) fn opt_data(&mut self, key: &str) -> Result<Option<Vec<u8>>, KeyError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Data(d)) => Ok(Some(d)),
            Some(_) => Err(self.invalid(key, "data")),
        }
    }

    pub(crate) fn data(&mut self, key: &str) -> Result<Vec<u8>, KeyError> {
        self.required(key, Self::opt_data)
    }

    pub(crate) fn opt_bool(&mut self, key: &str) -> Result<Option<bool>, KeyError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(b)),
            Some(_) => Err(self.invalid(key, "a boolean")),
        }
    }

    pub(crate) fn bool(&mut self, key: &str) -> Result<bool, KeyError> {
        self.required(key, Self::opt_bool)
    }

    pub(crate) fn opt_integer(&mut self, key: &str) -> Result<Option<i64>, KeyError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Integer(i)) => i.as_signed().map(Some).ok_or_else(|| self.invalid(key, "a 64-bit integer")),
            Some(_) => Err(self.invalid(key, "an integer")),
        }
    }

    /// A real number; an integer is accepted too.
    pub(crate) fn opt_real(&mut self, key: &str) -> Result<Option<f64>, KeyError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Real(r)) => Ok(Some(r)),
            Some(Value::Integer(i)) => match (i.as_signed(), i.as_unsigned()) {
                (Some(s), _) => Ok(Some(s as f64)),
                (None, Some(u)) => Ok(Some(u as f64)),
                (None, None) => Err(self.invalid(key, "a number")),
            },
            Some(_) => Err(self.invalid(key, "a number")),
        }
    }

    pub(crate) fn real(&mut self, key: &str) -> Result<f64, KeyError> {
        self.required(key, Self::opt_real)
    }

    pub(crate) fn opt_date(&mut self, key: &str) -> Result<Option<SystemTime>, KeyError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Date(d)) => Ok(Some(d.into())),
            Some(_) => Err(self.invalid(key, "a date")),
        }
    }

    pub(crate) fn opt_dict(&mut self, key: &str) -> Result<Option<Dictionary>, KeyError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Dictionary(d)) => Ok(Some(d)),
            Some(_) => Err(self.invalid(key, "a dictionary")),
        }
    }

    pub(crate) fn dict(&mut self, key: &str) -> Result<Dictionary, KeyError> {
        self.required(key, Self::opt_dict)
    }

    pub(crate) fn opt_array(&mut self, key: &str) -> Result<Option<Vec<Value>>, KeyError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(self.invalid(key, "an array")),
        }
    }

    pub(crate) fn array(&mut self, key: &str) -> Result<Vec<Value>, KeyError> {
        self.required(key, Self::opt_array)
    }

    /// An array of dictionaries, each handed to `read` with its own `Keys` (path `key[i]`).
    pub(crate) fn opt_dicts<T>(
        &mut self,
        key: &str,
        mut read: impl FnMut(Keys) -> Result<T, KeyError>,
    ) -> Result<Option<Vec<T>>, KeyError> {
        let Some(items) = self.opt_array(key)? else { return Ok(None) };
        let base = self.path_of(key);
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Dictionary(d) => read(Keys::nested(d, format!("{base}[{i}]"))),
                _ => Err(KeyError::Invalid { key: format!("{base}[{i}]"), expected: "a dictionary".to_owned() }),
            })
            .collect::<Result<Vec<T>, KeyError>>()
            .map(Some)
    }

    pub(crate) fn dicts<T>(
        &mut self,
        key: &str,
        read: impl FnMut(Keys) -> Result<T, KeyError>,
    ) -> Result<Vec<T>, KeyError> {
        self.opt_dicts(key, read)?.ok_or_else(|| self.missing(key))
    }

    pub(crate) fn opt_strings(&mut self, key: &str) -> Result<Option<Vec<String>>, KeyError> {
        let Some(items) = self.opt_array(key)? else { return Ok(None) };
        let base = self.path_of(key);
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s),
                _ => Err(KeyError::Invalid { key: format!("{base}[{i}]"), expected: "a string".to_owned() }),
            })
            .collect::<Result<Vec<String>, KeyError>>()
            .map(Some)
    }

    /// The keys not taken, in their original order.
    pub(crate) fn rest(self) -> Dictionary {
        self.entries.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect()
    }

    /// The first key not taken, if any.
    pub(crate) fn first_left(&self) -> Option<&str> {
        self.entries.iter().find(|(_, v)| v.is_some()).map(|(k, _)| k.as_str())
    }
}

/// Builds a dictionary, skipping absent optional values.
#[derive(Default)]
pub(crate) struct DictBuilder(Dictionary);

impl DictBuilder {
    pub(crate) fn new() -> Self {
        DictBuilder::default()
    }

    pub(crate) fn set(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.insert(key.to_owned(), value.into());
        self
    }

    pub(crate) fn opt(self, key: &str, value: Option<impl Into<Value>>) -> Self {
        match value {
            Some(v) => self.set(key, v),
            None => self,
        }
    }

    pub(crate) fn data(self, key: &str, bytes: &[u8]) -> Self {
        self.set(key, Value::Data(bytes.to_vec()))
    }

    pub(crate) fn opt_data(self, key: &str, bytes: Option<&[u8]>) -> Self {
        match bytes {
            Some(b) => self.data(key, b),
            None => self,
        }
    }

    pub(crate) fn strings(self, key: &str, items: &[String]) -> Self {
        self.set(key, Value::Array(items.iter().cloned().map(Value::String).collect()))
    }

    pub(crate) fn build(self) -> Dictionary {
        self.0
    }
}
