//! The APNs push body and push token forms.

use apple_mdm::push::{PushMagic, PushToken, mdm_push_body};

#[test]
fn push_body_is_exactly_the_mdm_key() {
    let magic = PushMagic::new("9B3F1D2C-6E4A-4F0B-8C7D-1A2B3C4D5E6F").unwrap();
    assert_eq!(mdm_push_body(&magic), br#"{"mdm":"9B3F1D2C-6E4A-4F0B-8C7D-1A2B3C4D5E6F"}"#);
    let odd = PushMagic::new("a\"b\\c\n").unwrap();
    assert_eq!(mdm_push_body(&odd), br#"{"mdm":"a\"b\\c\u000a"}"#);
}

#[test]
fn push_token_hex_round_trips() {
    let token = PushToken::new(vec![0x00, 0x0f, 0xa5, 0xff]).unwrap();
    assert_eq!(token.to_hex(), "000fa5ff");
    assert_eq!(PushToken::from_hex("000FA5ff"), Some(token));
    assert_eq!(PushToken::from_hex("abc"), None);
    assert_eq!(PushToken::from_hex("zz"), None);
    assert_eq!(PushToken::from_hex(""), None);
    assert_eq!(PushToken::new(Vec::new()), None);
}
