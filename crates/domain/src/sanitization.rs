//! Sanitization records (NIST SP 800-88 Rev. 1, Appendix G "Certificate of Sanitization"): who
//! performed it, the media, the method and its verification, where the device goes, and a second
//! person who validated it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::named_enum;
use crate::request::{Reader, choice, prose};
use crate::validate::FieldErrors;

named_enum! {
    /// NIST SP 800-88 method types.
    pub enum MethodType {
        Clear = ("clear", "Clear"),
        Purge = ("purge", "Purge"),
        Destroy = ("destroy", "Destroy"),
    }
}

named_enum! {
    /// Where the media goes after sanitization.
    pub enum MediaDestination {
        InternalReuse = ("internal_reuse", "Internal reuse"),
        ExternalReuse = ("external_reuse", "External reuse"),
        Recycling = ("recycling", "Recycling facility"),
        Manufacturer = ("manufacturer", "Manufacturer"),
        Other = ("other", "Other"),
    }
}

named_enum! {
    /// Whether the data was backed up before sanitization.
    pub enum Backup {
        Yes = ("yes", "Yes"),
        No = ("no", "No"),
        Unknown = ("unknown", "Unknown"),
    }
}

/// The certificate's fields, as the person performing the sanitization records them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    // Person performing sanitization.
    pub performer_name: String,
    pub performer_title: String,
    pub performer_organization: String,
    pub performer_location: String,
    pub performer_phone: String,
    // Media information.
    pub media_make: String,
    pub media_model: String,
    pub media_serial: String,
    pub media_property_number: Option<String>,
    /// E.g. `flash memory`.
    pub media_type: String,
    /// The source (user) of the media.
    pub media_source: Option<String>,
    /// Classification of the data before sanitization.
    pub classification: String,
    pub data_backed_up: Backup,
    pub backup_location: Option<String>,
    // Sanitization details.
    pub method_type: MethodType,
    /// E.g. `crypto erase by factory reset`, `physical destruction (shredding)`.
    pub method_used: String,
    pub tool: String,
    pub tool_version: Option<String>,
    pub verification_method: String,
    pub post_classification: String,
    pub destination: MediaDestination,
    pub destination_detail: Option<String>,
    pub notes: Option<String>,
}

/// The validator's identity on the certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validation {
    pub name: String,
    pub title: String,
    pub organization: String,
    pub phone: Option<String>,
}

fn reader<'a>(value: &'a Value, errors: &'a mut FieldErrors, empty: &'a Map<String, Value>) -> Option<Reader<'a>> {
    match value {
        Value::Object(object) => Some(Reader { object, errors, known: Vec::new(), prefix: "" }),
        Value::Null => Some(Reader { object: empty, errors, known: Vec::new(), prefix: "" }),
        _ => {
            errors.push("record", "must be an object with the certificate's fields");
            None
        }
    }
}

/// Parses a sanitization record, naming every bad field.
pub fn parse_record(value: &Value, errors: &mut FieldErrors) -> Option<Record> {
    let before = errors.0.len();
    let empty = Map::new();
    let mut r = reader(value, errors, &empty)?;
    let text = |max| prose(max);
    let record = Record {
        performer_name: r.required("performer_name", text(200)).unwrap_or_default(),
        performer_title: r.required("performer_title", text(200)).unwrap_or_default(),
        performer_organization: r.required("performer_organization", text(200)).unwrap_or_default(),
        performer_location: r.required("performer_location", text(200)).unwrap_or_default(),
        performer_phone: r.required("performer_phone", text(40)).unwrap_or_default(),
        media_make: r.required("media_make", text(100)).unwrap_or_default(),
        media_model: r.required("media_model", text(100)).unwrap_or_default(),
        media_serial: r.required("media_serial", text(100)).unwrap_or_default(),
        media_property_number: r.optional("media_property_number", text(100)),
        media_type: r.required("media_type", text(100)).unwrap_or_default(),
        media_source: r.optional("media_source", text(200)),
        classification: r.required("classification", text(100)).unwrap_or_default(),
        data_backed_up: r.required("data_backed_up", choice).unwrap_or(Backup::Unknown),
        backup_location: r.optional("backup_location", text(300)),
        method_type: r.required("method_type", choice).unwrap_or(MethodType::Clear),
        method_used: r.required("method_used", text(300)).unwrap_or_default(),
        tool: r.required("tool", text(200)).unwrap_or_default(),
        tool_version: r.optional("tool_version", text(100)),
        verification_method: r.required("verification_method", text(300)).unwrap_or_default(),
        post_classification: r.required("post_classification", text(100)).unwrap_or_default(),
        destination: r.required("destination", choice).unwrap_or(MediaDestination::Other),
        destination_detail: r.optional("destination_detail", text(300)),
        notes: r.optional("notes", text(2000)),
    };
    r.finish();
    (errors.0.len() == before).then_some(record)
}

/// Parses the validator's identity.
pub fn parse_validation(value: &Value, errors: &mut FieldErrors) -> Option<Validation> {
    let before = errors.0.len();
    let empty = Map::new();
    let mut r = reader(value, errors, &empty)?;
    let validation = Validation {
        name: r.required("name", prose(200)).unwrap_or_default(),
        title: r.required("title", prose(200)).unwrap_or_default(),
        organization: r.required("organization", prose(200)).unwrap_or_default(),
        phone: r.optional("phone", prose(40)),
    };
    r.finish();
    (errors.0.len() == before).then_some(validation)
}

impl Record {
    /// The certificate's lines, grouped under its section headings, in the form's order.
    pub fn sections(&self) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        vec![
            (
                "Person performing sanitization",
                vec![
                    ("Name", self.performer_name.clone()),
                    ("Title", self.performer_title.clone()),
                    ("Organization", self.performer_organization.clone()),
                    ("Location", self.performer_location.clone()),
                    ("Phone", self.performer_phone.clone()),
                ],
            ),
            (
                "Media information",
                vec![
                    ("Make/Vendor", self.media_make.clone()),
                    ("Model", self.media_model.clone()),
                    ("Serial number", self.media_serial.clone()),
                    ("Media property number", opt(&self.media_property_number)),
                    ("Media type", self.media_type.clone()),
                    ("Source (user)", opt(&self.media_source)),
                    ("Classification", self.classification.clone()),
                    ("Data backed up", self.data_backed_up.label().to_string()),
                    ("Backup location", opt(&self.backup_location)),
                ],
            ),
            (
                "Sanitization details",
                vec![
                    ("Method type", self.method_type.label().to_string()),
                    ("Method used", self.method_used.clone()),
                    (
                        "Tool used (including version)",
                        match &self.tool_version {
                            Some(v) => format!("{} {v}", self.tool),
                            None => self.tool.clone(),
                        },
                    ),
                    ("Verification method", self.verification_method.clone()),
                    ("Post-sanitization classification", self.post_classification.clone()),
                    (
                        "Media destination",
                        match &self.destination_detail {
                            Some(d) => format!("{} ({d})", self.destination.label()),
                            None => self.destination.label().to_string(),
                        },
                    ),
                    ("Notes", opt(&self.notes)),
                ],
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_missing_or_bad_field_is_named() {
        let mut errors = FieldErrors::new();
        let record = parse_record(&json!({"method_type": "degauss", "performer_name": "Lee", "shoe": 1}), &mut errors);
        assert!(record.is_none());
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert!(
            fields.contains(&"method_type") && fields.contains(&"media_serial") && fields.contains(&"shoe"),
            "{fields:?}"
        );
        assert!(!fields.contains(&"performer_name"));
    }
}
