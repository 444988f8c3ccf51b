//! Usage fixtures: lines with numbers, and the months an import accepts.

use super::TestApp;

/// A line of `agency` with `phone` (E.164), in `device` when given; returns its id. Adds nothing
/// when the number is taken.
pub async fn line(app: &TestApp, agency: &str, phone: &str, device: Option<&str>) -> String {
    let mut conn = app.app().store.conn().await.unwrap();
    if let Some(existing) = custody_store::devices::line_by_phone(&mut conn, phone).await.unwrap() {
        return existing.id;
    }
    let now = custody_store::now_ms() - 400 * 86_400_000;
    let row = custody_store::devices::LineRow {
        id: custody_store::new_id(),
        agency_code: agency.into(),
        phone_number: phone.into(),
        carrier: "Verizon".into(),
        plan_kind: "voice_data".into(),
        status: "active".into(),
        international_from: None,
        international_until: None,
        device_id: device.map(str::to_string),
        created_at: now,
        updated_at: now,
    };
    custody_store::devices::insert_lines_many(&mut conn, std::slice::from_ref(&row)).await.unwrap();
    row.id
}

/// The last ended month (`YYYY-MM`) on the billing calendar, and `back` months before it.
pub fn month(app: &TestApp, back: u32) -> String {
    let zone = app.app().config.billing.zone().unwrap();
    let today = jiff::Timestamp::now().to_zoned(zone).date();
    let mut period = custody_domain::billing::Period::new(today.year(), today.month()).unwrap().prev();
    for _ in 0..back {
        period = period.prev();
    }
    period.to_string()
}

/// A usage file: the header, then `rows`.
pub fn csv(rows: &[String]) -> String {
    let mut text =
        String::from("phone_number,carrier,month,voice_minutes,messages,data_mb,international_charges,line_plan\n");
    for row in rows {
        text.push_str(row);
        text.push('\n');
    }
    text
}

/// `agency`'s usage report of the current window, issued (once) over a silent line of its own,
/// so it recommends eliminating it; returns the report id and its recommendations, the pending
/// ones first.
pub async fn report(app: &TestApp, agency: &str) -> (String, Vec<String>) {
    let system = custody_app::Actor::system("test");
    let digits: u64 = agency.bytes().fold(0, |n, b| (n * 31 + u64::from(b)) % 10_000);
    let phone = format!("+1518666{digits:04}");
    line(app, agency, &phone, None).await;
    let rows: Vec<String> =
        (0..6).map(|back| format!("{phone},Verizon,{},0,0,0,0,voice_data", month(app, back))).collect();
    let file = custody_app::usage::UsageFile {
        name: "fixture.csv".into(),
        xlsx: false,
        data: custody_app::usage::FileData::Bytes(csv(&rows).into_bytes().into()),
    };
    custody_app::usage::import(app.app(), &system, &file, &|_, _| {}).await.unwrap();
    let issued =
        custody_app::usage_reports::issue_at(app.app(), &system, agency, custody_store::now_ms()).await.unwrap();
    let (_, recommendations) = custody_app::usage_reports::get(app.app(), &system, &issued.report.id).await.unwrap();
    let mut ids: Vec<(bool, String)> = recommendations.into_iter().map(|r| (r.status != "pending", r.id)).collect();
    ids.sort();
    (issued.report.id, ids.into_iter().map(|(_, id)| id).collect())
}
