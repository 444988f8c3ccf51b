//! Check-in messages decoded from Apple-format fixtures, and the replies the server builds.

mod common;

use apple_mdm::KeyError;
use apple_mdm::checkin::{
    Authenticate, Checkin, CheckinError, CheckinMessage, CheckinReply, UserAuthentication, bootstrap_token_reply,
    get_token_reply, user_authenticate_reply,
};
use apple_mdm::enrollment::Enrollment;
use common::fixture;
use plist::Value;

const UDID: &str = "00008110-000A1B2C3D4E5F60";
const TOPIC: &str = "com.apple.mgmt.External.2f6a4b1e-8a7d-4c2b-9f3e-5d1c0b9a8e7f";

fn parse(name: &str) -> Checkin {
    let body = fixture(name);
    let checkin = Checkin::parse(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(checkin.raw(), body.as_slice(), "{name}: raw bytes are kept");
    checkin
}

fn device(udid: &str) -> Enrollment {
    Enrollment::Device { udid: apple_mdm::enrollment::Udid::new(udid).unwrap() }
}

/// A minimal XML plist dictionary from `(key, value)` pairs of strings.
fn plist_of(pairs: &[(&str, &str)]) -> Vec<u8> {
    let dict: plist::Dictionary = pairs.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect();
    let mut out = Vec::new();
    Value::Dictionary(dict).to_writer_xml(&mut out).unwrap();
    out
}

#[test]
fn authenticate_is_decoded_with_device_facts() {
    let checkin = parse("checkin_authenticate.plist");
    assert_eq!(checkin.enrollment, device(UDID));
    let CheckinMessage::Authenticate(auth) = &checkin.message else { panic!("{:?}", checkin.message) };
    assert_eq!(
        auth,
        &Authenticate {
            topic: apple_mdm::push::Topic::new(TOPIC).unwrap(),
            build_version: Some("21F90".into()),
            os_version: Some("17.5.1".into()),
            product_name: Some("iPhone14,5".into()),
            serial_number: Some("F2LXK0Q1N72J".into()),
            imei: Some("35 391805 123456 7".into()),
            meid: Some("35391805123456".into()),
            device_name: None,
            model: None,
            model_name: None,
        }
    );
    assert_eq!(checkin.message.message_type(), "Authenticate");
    assert!(checkin.extra.is_empty(), "every key is modelled: {:?}", checkin.extra);
}

#[test]
fn token_update_reads_data_tokens() {
    let checkin = parse("checkin_token_update.plist");
    assert_eq!(checkin.enrollment, device(UDID));
    let CheckinMessage::TokenUpdate(update) = &checkin.message else { panic!("{:?}", checkin.message) };
    assert_eq!(update.topic.as_str(), TOPIC);
    assert_eq!(update.token.to_hex(), "a54dca182530bb1d6d132cded6237b2ed91e3f721fcb1971174494d6493c9d5c");
    assert_eq!(update.push_magic.as_str(), "9B3F1D2C-6E4A-4F0B-8C7D-1A2B3C4D5E6F");
    let unlock = update.unlock_token.as_ref().expect("UnlockToken");
    assert_eq!(unlock.len(), 96);
    assert_eq!(&unlock[..4], &[0x34, 0x60, 0xbe, 0x31]);
    assert!(!update.awaiting_configuration);
    assert!(!update.not_on_console);
}

#[test]
fn check_out_is_decoded() {
    let checkin = parse("checkin_checkout.plist");
    assert_eq!(checkin.enrollment, device(UDID));
    assert_eq!(checkin.message, CheckinMessage::CheckOut { topic: apple_mdm::push::Topic::new(TOPIC).unwrap() });
}

#[test]
fn user_authenticate_is_a_user_channel() {
    let checkin = parse("checkin_user_authenticate.plist");
    assert_eq!(checkin.message, CheckinMessage::UserAuthenticate { digest_response: None });
    let Enrollment::User { udid, user_id, short_name, long_name } = &checkin.enrollment else {
        panic!("{:?}", checkin.enrollment)
    };
    assert_eq!(udid.as_str(), "564D7A5E-3C1B-5F2A-9E8D-7C6B5A493827");
    assert_eq!(user_id.as_str(), "A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D");
    assert_eq!(short_name.as_deref(), Some("pexample"));
    assert_eq!(long_name.as_deref(), Some("Pat Example"));
    assert!(checkin.enrollment.is_user_channel());
    assert_eq!(
        checkin.enrollment.channel_key(),
        "564D7A5E-3C1B-5F2A-9E8D-7C6B5A493827:A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D"
    );
    assert_eq!(checkin.enrollment.device_key(), "564D7A5E-3C1B-5F2A-9E8D-7C6B5A493827");
}

#[test]
fn user_enrollment_is_identified_by_enrollment_id() {
    let checkin = parse("checkin_token_update_user_enrollment.plist");
    assert!(matches!(checkin.message, CheckinMessage::TokenUpdate(ref u) if u.unlock_token.is_none()));
    assert!(checkin.enrollment.is_user_enrollment());
    assert!(!checkin.enrollment.is_user_channel());
    assert_eq!(checkin.enrollment.device_key(), "2E9A7F0C-1B3D-4C5E-8F6A-7B8C9D0E1F2A");
}

#[test]
fn unknown_keys_are_kept_in_order() {
    let body = plist_of(&[
        ("MessageType", "CheckOut"),
        ("Topic", TOPIC),
        ("UDID", UDID),
        ("SomeFutureKey", "one"),
        ("AnotherFutureKey", "two"),
    ]);
    let checkin = Checkin::parse(&body).unwrap();
    let extra: Vec<(&str, &str)> = checkin.extra.iter().map(|(k, v)| (k.as_str(), v.as_string().unwrap())).collect();
    assert_eq!(extra, [("SomeFutureKey", "one"), ("AnotherFutureKey", "two")]);
}

#[test]
fn every_message_type_decodes() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("MessageType", "GetBootstrapToken"), ("UDID", UDID)], "GetBootstrapToken"),
        (&[("MessageType", "SetBootstrapToken"), ("UDID", UDID)], "SetBootstrapToken"),
        (&[("MessageType", "DeclarativeManagement"), ("UDID", UDID), ("Endpoint", "tokens")], "DeclarativeManagement"),
        (&[("MessageType", "GetToken"), ("UDID", UDID), ("TokenServiceType", "com.apple.maid")], "GetToken"),
    ];
    for (pairs, expected) in cases {
        let checkin = Checkin::parse(&plist_of(pairs)).unwrap_or_else(|e| panic!("{expected}: {e}"));
        assert_eq!(checkin.message.message_type(), *expected);
    }
    let set = Checkin::parse(&plist_of(&[("MessageType", "SetBootstrapToken"), ("UDID", UDID)])).unwrap();
    assert_eq!(set.message, CheckinMessage::SetBootstrapToken { bootstrap_token: None, awaiting_configuration: false });
}

#[test]
fn errors_name_what_is_wrong() {
    let cases: &[(Vec<u8>, CheckinError)] = &[
        (
            plist_of(&[("Topic", TOPIC), ("UDID", UDID)]),
            CheckinError::Key(KeyError::Missing { key: "MessageType".into() }),
        ),
        (
            plist_of(&[("MessageType", "CheckOut"), ("Topic", TOPIC)]),
            CheckinError::Key(KeyError::Missing { key: "UDID".into() }),
        ),
        (
            plist_of(&[("MessageType", "Authenticate"), ("UDID", UDID)]),
            CheckinError::Key(KeyError::Missing { key: "Topic".into() }),
        ),
        (
            plist_of(&[("MessageType", "TokenUpdate"), ("UDID", UDID), ("Topic", TOPIC), ("PushMagic", "x")]),
            CheckinError::Key(KeyError::Missing { key: "Token".into() }),
        ),
        (
            plist_of(&[
                ("MessageType", "TokenUpdate"),
                ("UDID", UDID),
                ("Topic", TOPIC),
                ("PushMagic", "x"),
                ("Token", "not data"),
            ]),
            CheckinError::Key(KeyError::Invalid { key: "Token".into(), expected: "data".into() }),
        ),
        (
            plist_of(&[("MessageType", "UserAuthenticate"), ("UDID", UDID)]),
            CheckinError::Key(KeyError::Missing { key: "UserID".into() }),
        ),
        (plist_of(&[("MessageType", "Enroll"), ("UDID", UDID)]), CheckinError::UnknownMessageType("Enroll".into())),
    ];
    for (body, expected) in cases {
        assert_eq!(&Checkin::parse(body).unwrap_err(), expected);
    }
    assert!(matches!(Checkin::parse(b"not a plist"), Err(CheckinError::Malformed(_))));
    let array = b"<?xml version=\"1.0\"?><plist version=\"1.0\"><array/></plist>";
    assert_eq!(Checkin::parse(array).unwrap_err(), CheckinError::NotADictionary);
    assert_eq!(
        Checkin::parse(&plist_of(&[("MessageType", "Enroll")])).unwrap_err().to_string(),
        "unknown check-in MessageType \"Enroll\""
    );
}

fn reply_dict(reply: CheckinReply) -> plist::Dictionary {
    let CheckinReply::Plist(body) = reply else { panic!("{reply:?}") };
    Value::from_reader_xml(body.as_slice()).unwrap().into_dictionary().unwrap()
}

#[test]
fn replies_are_plists_with_apples_keys() {
    let with_token = reply_dict(bootstrap_token_reply(Some(b"token-bytes")));
    assert_eq!(with_token.get("BootstrapToken").and_then(Value::as_data), Some(&b"token-bytes"[..]));
    assert!(reply_dict(bootstrap_token_reply(None)).is_empty());

    let challenge = reply_dict(user_authenticate_reply(UserAuthentication::NotRequired));
    assert_eq!(challenge.get("DigestChallenge").and_then(Value::as_string), Some(""));
    let challenge = reply_dict(user_authenticate_reply(UserAuthentication::Challenge("nonce")));
    assert_eq!(challenge.get("DigestChallenge").and_then(Value::as_string), Some("nonce"));
    let accepted = reply_dict(user_authenticate_reply(UserAuthentication::Accepted { auth_token: "t0k" }));
    assert_eq!(accepted.get("AuthToken").and_then(Value::as_string), Some("t0k"));

    let token = reply_dict(get_token_reply(b"abc"));
    assert_eq!(token.get("TokenData").and_then(Value::as_data), Some(&b"abc"[..]));
}
