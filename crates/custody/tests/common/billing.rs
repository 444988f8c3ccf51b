//! Billing fixtures: devices billed from a date, and closed months with invoices.

use custody_app::Actor;

use super::TestApp;

/// The instant of noon on `date` (`YYYY-MM-DD`) on the billing calendar.
pub fn noon(app: &TestApp, date: &str) -> i64 {
    let zone = app.app().config.billing.zone().unwrap();
    let date: jiff::civil::Date = date.parse().unwrap();
    date.at(12, 0, 0, 0).to_zoned(zone).unwrap().timestamp().as_millisecond()
}

/// Starts billing `device` at noon on `date`, as an enrollment then would have.
pub async fn bill_from(app: &TestApp, device: &str, date: &str) {
    let at = noon(app, date);
    let mut conn = app.app().store.conn().await.unwrap();
    let row = custody_store::devices::get(&mut conn, device).await.unwrap().unwrap();
    assert!(
        custody_store::billing::start_interval(&mut conn, device, &row.agency_code, row.device_type.as_str(), at)
            .await
            .unwrap()
    );
}

/// Stops billing `device` at noon on `date`.
pub async fn stop_on(app: &TestApp, device: &str, date: &str) {
    let at = noon(app, date);
    let mut conn = app.app().store.conn().await.unwrap();
    assert!(custody_store::billing::stop_interval(&mut conn, device, at).await.unwrap());
}

/// The first month not closed yet (months close in order): the one after the last closed, or
/// 2023-01 (the MDM rate's first month) when none is.
pub async fn next_open_period(app: &TestApp) -> String {
    let mut conn = app.app().store.conn().await.unwrap();
    match custody_store::billing::periods(&mut conn, 1).await.unwrap().first() {
        Some(last) => custody_domain::billing::Period::parse(&last.period).unwrap().next().to_string(),
        None => "2023-01".to_string(),
    }
}

/// A chargeback invoice of `agency`: the latest one, or else the one of the next open month,
/// closed with a device of the agency billed in it.
pub async fn closed_invoice(app: &TestApp, agency: &str, model: &str) -> String {
    let system = Actor::system("test");
    let filter = custody_store::billing::InvoiceFilter {
        agency: Some(agency.into()),
        kind: Some("chargeback".into()),
        ..Default::default()
    };
    if let Some(invoice) = custody_app::billing::invoices(app.app(), &system, filter, 1, 0).await.unwrap().first() {
        return invoice.id.clone();
    }
    let device = app.device_in_state(agency, model, custody_domain::device::DeviceState::InService).await;
    let period = next_open_period(app).await;
    bill_from(app, &device, &format!("{period}-03")).await;
    custody_app::billing::close(app.app(), &system, &period).await.unwrap();
    let filter = custody_store::billing::InvoiceFilter {
        period: Some(period),
        agency: Some(agency.into()),
        kind: Some("chargeback".into()),
        ..Default::default()
    };
    let invoices = custody_app::billing::invoices(app.app(), &system, filter, 10, 0).await.unwrap();
    invoices.first().expect("the agency's chargeback invoice").id.clone()
}

/// A device of `device_type` in service in `agency` (not billed yet).
pub async fn device_of_type(app: &TestApp, agency: &str, model: &str, device_type: &str) -> String {
    let id = app.device_in_state(agency, model, custody_domain::device::DeviceState::InService).await;
    let mut conn = app.app().store.conn().await.unwrap();
    sqlx::query("UPDATE devices SET device_type = $1 WHERE id = $2")
        .bind(device_type)
        .bind(&id)
        .execute(&mut *conn)
        .await
        .unwrap();
    id
}
