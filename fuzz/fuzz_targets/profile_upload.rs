//! An uploaded `.mobileconfig` (XML, binary plist, or CMS-signed) through
//! `inspect_mobileconfig`, as `app::profiles` does before storing it.
#![no_main]

use apple_mdm::payloads::inspect_mobileconfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(summary) = inspect_mobileconfig(data) {
        assert!(!summary.payload_types.is_empty(), "an accepted profile holds a payload");
        assert!(!summary.identifier.trim().is_empty() && !summary.uuid.trim().is_empty());
    }
});
