//! Configuration profiles: the enrollment profile parses back with its three payloads wired
//! together, any payloads can be wrapped, and a signed profile verifies with OpenSSL.

mod common;

use apple_mdm::profile::{
    ConfigurationProfile, EnrollmentProfile, Mdm, PER_USER_CONNECTIONS, Payload, Scep, open_signed_profile,
    sign_profile,
};
use apple_mdm::push::Topic;
use common::pki;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use plist::{Dictionary, Value};

fn enrollment_profile() -> EnrollmentProfile {
    EnrollmentProfile {
        identifier: "gov.example.custody.enrollment".into(),
        display_name: "Custody enrollment".into(),
        organization: "Example Agency".into(),
        description: Some("Enrolls this device in Custody.".into()),
        scep: Scep::new(
            "https://custody.example.gov/scep",
            Some("one-time-challenge".into()),
            vec![("O".into(), "Example Agency".into()), ("CN".into(), "Custody device".into())],
        ),
        mdm: Mdm::new(
            "https://custody.example.gov/mdm/connect",
            Some("https://custody.example.gov/mdm/checkin".into()),
            Topic::new("com.apple.mgmt.External.2f6a4b1e-8a7d-4c2b-9f3e-5d1c0b9a8e7f").unwrap(),
        ),
        ca_certificate_der: pki().ca.cert.to_der().unwrap(),
    }
}

fn parse(xml: &[u8]) -> Dictionary {
    Value::from_reader_xml(xml).unwrap().into_dictionary().unwrap()
}

fn string<'a>(dict: &'a Dictionary, key: &str) -> &'a str {
    dict.get(key).and_then(Value::as_string).unwrap_or_else(|| panic!("{key} is not a string in {dict:?}"))
}

fn integer(dict: &Dictionary, key: &str) -> i64 {
    dict.get(key).and_then(Value::as_signed_integer).unwrap_or_else(|| panic!("{key} is not an integer"))
}

fn boolean(dict: &Dictionary, key: &str) -> bool {
    dict.get(key).and_then(Value::as_boolean).unwrap_or_else(|| panic!("{key} is not a boolean"))
}

/// The payloads of a profile by `PayloadType`.
fn payload_of<'a>(profile: &'a Dictionary, payload_type: &str) -> &'a Dictionary {
    let payloads = profile.get("PayloadContent").and_then(Value::as_array).unwrap();
    let mut found =
        payloads.iter().filter_map(Value::as_dictionary).filter(|p| string(p, "PayloadType") == payload_type);
    let first = found.next().unwrap_or_else(|| panic!("no {payload_type} payload"));
    assert!(found.next().is_none(), "one {payload_type} payload");
    first
}

#[test]
fn enrollment_profile_has_scep_mdm_and_root_payloads_wired_together() {
    let config = enrollment_profile();
    let profile = parse(&config.build().to_xml());
    assert_eq!(string(&profile, "PayloadType"), "Configuration");
    assert_eq!(integer(&profile, "PayloadVersion"), 1);
    assert_eq!(string(&profile, "PayloadIdentifier"), "gov.example.custody.enrollment");
    assert_eq!(string(&profile, "PayloadDisplayName"), "Custody enrollment");
    assert_eq!(string(&profile, "PayloadOrganization"), "Example Agency");
    assert_eq!(profile.get("PayloadContent").and_then(Value::as_array).unwrap().len(), 3);

    let scep = payload_of(&profile, "com.apple.security.scep");
    let mdm = payload_of(&profile, "com.apple.mdm");
    let root = payload_of(&profile, "com.apple.security.root");
    assert_eq!(string(mdm, "IdentityCertificateUUID"), string(scep, "PayloadUUID"));

    let mut uuids = vec![string(&profile, "PayloadUUID")];
    for (p, suffix) in [(scep, "scep"), (mdm, "mdm"), (root, "ca")] {
        assert_eq!(string(p, "PayloadIdentifier"), format!("gov.example.custody.enrollment.{suffix}"));
        assert_eq!(integer(p, "PayloadVersion"), 1);
        assert!(!string(p, "PayloadDisplayName").is_empty());
        assert_eq!(string(p, "PayloadOrganization"), "Example Agency");
        let uuid = string(p, "PayloadUUID");
        assert!(uuid::Uuid::parse_str(uuid).is_ok() && uuid == uuid.to_uppercase(), "{uuid}");
        uuids.push(uuid);
    }
    uuids.sort();
    uuids.dedup();
    assert_eq!(uuids.len(), 4, "every PayloadUUID differs");

    let content = scep.get("PayloadContent").and_then(Value::as_dictionary).unwrap();
    assert_eq!(string(content, "URL"), "https://custody.example.gov/scep");
    assert_eq!(string(content, "Challenge"), "one-time-challenge");
    assert_eq!(integer(content, "Keysize"), 2048);
    assert_eq!(string(content, "Key Type"), "RSA");
    assert_eq!(integer(content, "Key Usage"), 5);
    assert_eq!(integer(content, "Retries"), 3);
    assert_eq!(integer(content, "RetryDelay"), 10);
    let subject: Vec<Vec<Vec<&str>>> = content
        .get("Subject")
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .map(|rdn| {
            rdn.as_array()
                .unwrap()
                .iter()
                .map(|pair| pair.as_array().unwrap().iter().map(|s| s.as_string().unwrap()).collect())
                .collect()
        })
        .collect();
    assert_eq!(subject, vec![vec![vec!["O", "Example Agency"]], vec![vec!["CN", "Custody device"]]]);

    assert_eq!(string(mdm, "ServerURL"), "https://custody.example.gov/mdm/connect");
    assert_eq!(string(mdm, "CheckInURL"), "https://custody.example.gov/mdm/checkin");
    assert_eq!(string(mdm, "Topic"), "com.apple.mgmt.External.2f6a4b1e-8a7d-4c2b-9f3e-5d1c0b9a8e7f");
    assert_eq!(integer(mdm, "AccessRights"), 8191);
    assert!(boolean(mdm, "SignMessage"));
    assert!(boolean(mdm, "CheckOutWhenRemoved"));
    assert!(!boolean(mdm, "UseDevelopmentAPNS"));
    let capabilities: Vec<&str> = mdm
        .get("ServerCapabilities")
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .map(|c| c.as_string().unwrap())
        .collect();
    assert_eq!(capabilities, [PER_USER_CONNECTIONS]);

    assert_eq!(root.get("PayloadContent").and_then(Value::as_data), Some(config.ca_certificate_der.as_slice()));
}

#[test]
fn any_payloads_can_be_wrapped_into_a_profile() {
    let mut passcode = Dictionary::new();
    passcode.insert("minLength".into(), Value::Integer(6.into()));
    passcode.insert("requireAlphanumeric".into(), Value::Boolean(false));
    let mut profile = ConfigurationProfile::new("gov.example.passcode", "Passcode policy");
    profile.removal_disallowed = Some(true);
    let mut payload = Payload::new("com.apple.mobiledevice.passwordpolicy", "gov.example.passcode.policy", passcode);
    payload.display_name = Some("Passcode".into());
    let payload_uuid = payload.uuid;
    profile.payloads.push(payload);

    let parsed = parse(&profile.to_xml());
    assert_eq!(string(&parsed, "PayloadType"), "Configuration");
    assert!(boolean(&parsed, "PayloadRemovalDisallowed"));
    assert_eq!(string(&parsed, "PayloadUUID"), profile.uuid.hyphenated().to_string().to_uppercase());
    let policy = payload_of(&parsed, "com.apple.mobiledevice.passwordpolicy");
    assert_eq!(integer(policy, "minLength"), 6);
    assert!(!boolean(policy, "requireAlphanumeric"));
    assert_eq!(string(policy, "PayloadIdentifier"), "gov.example.passcode.policy");
    assert_eq!(string(policy, "PayloadUUID"), payload_uuid.hyphenated().to_string().to_uppercase());
    assert_eq!(string(policy, "PayloadDisplayName"), "Passcode");
    assert_eq!(integer(policy, "PayloadVersion"), 1);
}

#[test]
fn a_signed_profile_verifies_with_openssl_and_holds_the_xml() {
    let pki = pki();
    let xml = enrollment_profile().build().to_xml();
    // Custody signs with a certificate its CA issued; the CA goes along as the chain.
    let der = sign_profile(&xml, &pki.device.cert, &pki.device.key, std::slice::from_ref(&pki.ca.cert)).unwrap();

    let pkcs7 = Pkcs7::from_der(&der).unwrap();
    let mut store = X509StoreBuilder::new().unwrap();
    store.add_cert(pki.ca.cert.clone()).unwrap();
    let store = store.build();
    let mut content = Vec::new();
    pkcs7.verify(&Stack::new().unwrap(), &store, None, Some(&mut content), Pkcs7Flags::BINARY).unwrap();
    assert_eq!(content, xml);
    let carried = pkcs7.signed().unwrap().certificates().unwrap();
    assert_eq!(carried.len(), 2, "signer and chain are carried");

    let (opened, signer) = open_signed_profile(&der).unwrap();
    assert_eq!(opened, xml);
    assert_eq!(signer.der(), pki.device.cert.to_der().unwrap().as_slice());

    // Against another CA, the full chain check fails.
    let mut other = X509StoreBuilder::new().unwrap();
    other.add_cert(pki.other_ca.cert.clone()).unwrap();
    assert!(pkcs7.verify(&Stack::new().unwrap(), &other.build(), None, None, Pkcs7Flags::BINARY).is_err());
}
