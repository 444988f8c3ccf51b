//! A check-in body (`PUT /mdm/checkin`) through `Checkin::parse`, then what the server reads of
//! the decoded message (`app::mdm::checkin`): the enrollment's keys and the message type.
#![no_main]

use apple_mdm::checkin::{Checkin, CheckinMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(checkin) = Checkin::parse(data) else { return };
    assert_eq!(checkin.raw(), data, "a check-in keeps its exact bytes");
    let enrollment = &checkin.enrollment;
    let _ = (enrollment.device_key(), enrollment.channel_key());
    let _ = (enrollment.is_user_channel(), enrollment.is_user_enrollment());
    let _ = checkin.message.message_type();
    if let CheckinMessage::TokenUpdate(update) = &checkin.message {
        assert!(!update.token.to_hex().is_empty(), "a push token is never empty");
    }
});
