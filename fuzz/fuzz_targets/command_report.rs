//! A command report (`PUT /mdm/connect`) through `Report::parse`, then every typed reading the
//! server takes of a result (`app::inventory::observe`, `app::profiles`, Lost Mode's location).
#![no_main]

use apple_mdm::report::Report;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(report) = Report::parse(data) else { return };
    assert_eq!(report.raw(), data, "a report keeps its exact bytes");
    let _ = (report.enrollment.device_key(), report.enrollment.channel_key());
    let _ = (report.status.as_str(), report.status.command_uuid(), report.status.error_chain());
    let _ = report.device_information();
    let _ = report.security_info();
    let _ = report.installed_applications();
    let _ = report.profiles();
    let _ = report.certificates();
    let _ = report.device_location();
});
