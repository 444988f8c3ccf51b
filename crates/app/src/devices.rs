//! Devices through their life: ordered by an approved request, received, staged, enrolled and
//! delivered by the Deployment Center, repaired, lost, returned, cleared by agency legal or held,
//! destroyed, decommissioned and disposed of.
//!
//! Every move is `custody_domain::device::transition`; this module applies its effects (holder,
//! line, billing dates, pending commands, a replacement request), writes the custody event and
//! the audit event, all in one transaction.

use custody_domain::FieldErrors;
use custody_domain::agency::AgencyCode;
use custody_domain::authz::{Action, Scope};
use custody_domain::device::{Context, Destination, DeviceState, Effect, Event, imei, meid, transition};
use custody_domain::request::{RequestType, phone_number, serial_number};
use custody_store::devices::{self, CommandRow, CustodyEvent, DeviceFilter, DeviceRow, HoldRow, LineRow};
use custody_store::requests::RequestRow;
use custody_store::{Conn, audit, catalog};

use crate::paging::{self, Page};
use crate::{Actor, App, AppError};

/// Where a device in `state` is, by default.
pub fn location_of(state: DeviceState) -> &'static str {
    use DeviceState::*;
    match state {
        Ordered => "vendor",
        Received | Staged | Enrolled | Recovered | AwaitingClearance | OnLegalHold | Sanitizing | Sanitized
        | Decommissioned => "deployment_center",
        InTransit => "courier",
        InService => "holder",
        InRepair => "repair_vendor",
        LostStolen | WrittenOff => "unknown",
        Returned => "return_shipment",
        Destroyed => "destruction_vendor",
        Surplus => "surplus",
        Transferred => "new_owner",
        Recycled => "recycler",
    }
}

fn scope_of(device: &DeviceRow) -> Result<AgencyCode, AppError> {
    AgencyCode::parse(&device.agency_code).map_err(|_| AppError::NotFound)
}

async fn load(conn: &mut Conn, actor: &Actor, id: &str, action: Action) -> Result<DeviceRow, AppError> {
    let device = devices::get(conn, id).await?.ok_or(AppError::NotFound)?;
    let code = scope_of(&device)?;
    actor.authorize(Action::DeviceRead, Scope::Agency(&code))?;
    actor.authorize(action, Scope::Agency(&code))?;
    Ok(device)
}

/// The person record of an employee who holds devices: the person of their agency with the
/// e-mail they sign in with. `None` when the directory has no such person.
pub async fn own_person(conn: &mut Conn, actor: &Actor) -> Result<Option<String>, AppError> {
    let Some(principal) = &actor.principal else { return Ok(None) };
    let Some(agency) = &principal.agency else { return Ok(None) };
    Ok(custody_store::people::id_by_email(conn, agency.as_str(), &principal.label).await?)
}

/// Whether the actor reads devices only as their holder (an employee without a reader's role).
/// Then a device they do not hold answers 404, exactly like a missing one.
fn holder_only(actor: &Actor, code: &AgencyCode) -> Result<bool, AppError> {
    match actor.authorize(Action::DeviceRead, Scope::Agency(code)) {
        Ok(()) => Ok(false),
        Err(AppError::Forbidden) if actor.authorize(Action::OwnDevices, Scope::Agency(code)).is_ok() => Ok(true),
        Err(e) => Err(e),
    }
}

/// A device the actor may read: any of the agency's for readers, their own for holders.
pub(crate) async fn load_readable(conn: &mut Conn, actor: &Actor, id: &str) -> Result<DeviceRow, AppError> {
    let device = devices::get(conn, id).await?.ok_or(AppError::NotFound)?;
    if holder_only(actor, &scope_of(&device)?)? {
        let me = own_person(conn, actor).await?;
        if me.is_none() || device.holder_id != me {
            return Err(AppError::NotFound);
        }
    }
    Ok(device)
}

/// What the caller gives with a lifecycle action.
#[derive(Debug, Clone, Default)]
pub struct ActionInput {
    pub serial: Option<String>,
    pub imei: Option<String>,
    pub meid: Option<String>,
    /// The model received, checked against the order.
    pub model_id: Option<String>,
    /// Who took the device at delivery.
    pub received_by: Option<String>,
    /// The line attached at delivery.
    pub phone_number: Option<String>,
    pub carrier: Option<String>,
    pub destination: Option<String>,
    pub note: Option<String>,
    /// `deliver`: the accessories issued with the device (comma-separated).
    pub accessories: Option<String>,
    /// `replace`: a repurposed like device (staged, or sanitized for reuse) to take its place;
    /// without one a new like device is ordered.
    pub replacement_device_id: Option<String>,
}

/// Moves a device by one lifecycle action (`ACTIONS`, or `dispose` with a destination).
pub async fn act(app: &App, actor: &Actor, id: &str, action: &str, input: ActionInput) -> Result<DeviceRow, AppError> {
    let mut tx = app.store.write().await?;
    let mut device = load(&mut tx, actor, id, Action::DeviceWrite).await?;
    let mut errors = FieldErrors::new();
    let event = match action {
        "receive" => {
            let serial = match input.serial.as_deref() {
                Some(raw) => errors.check("serial", serial_number(raw)),
                None => {
                    errors.push("serial", "is required");
                    None
                }
            };
            let imei = input.imei.as_deref().and_then(|raw| errors.check("imei", imei(raw)));
            let meid = input.meid.as_deref().and_then(|raw| errors.check("meid", meid(raw)));
            if !errors.is_empty() {
                return Err(errors.into());
            }
            let mismatch = match input.model_id.as_deref() {
                None => Some("the received model is required (model_id)".to_string()),
                Some(model) if model != device.model_id => {
                    let name = |m: Option<custody_store::catalog::ModelRow>| {
                        m.map_or("an unknown model".to_string(), |m| format!("{} {}", m.details.maker, m.details.model))
                    };
                    let ordered = name(catalog::get_model(&mut tx, &device.model_id).await?);
                    let received = name(catalog::get_model(&mut tx, model).await?);
                    Some(format!("model: ordered {ordered}, received {received}"))
                }
                Some(_) => None,
            };
            if let Some(serial) = &serial
                && devices::by_serial(&mut tx, serial).await?.is_some_and(|d| d.id != device.id)
            {
                return Err(AppError::conflict("serial", "another device has this serial number"));
            }
            if let Some(imei) = &imei
                && devices::by_imei(&mut tx, imei).await?.is_some_and(|d| d.id != device.id)
            {
                return Err(AppError::conflict("imei", "another device has this IMEI"));
            }
            if mismatch.is_none() {
                device.serial = serial;
                device.imei = imei;
                device.meid = meid;
            }
            Event::Receive { mismatch }
        }
        "stage" => Event::Stage,
        "record-enrollment" => Event::RecordEnrollment,
        "ship" => Event::Ship,
        "deliver" => Event::Deliver,
        "send-to-repair" => Event::SendToRepair,
        "replace" => Event::Replace,
        "return-from-repair" => Event::ReturnFromRepair,
        "report-lost" => Event::ReportLost,
        "recover" => Event::Recover,
        "return-to-service" => Event::ReturnToService,
        "write-off" => Event::WriteOff,
        "return" => Event::Return,
        "request-clearance" => Event::RequestClearance,
        "destroy" => Event::Destroy,
        "decommission" => {
            if !crate::sanitization::validated(&mut tx, &device.id).await? {
                return Err(AppError::conflict(
                    "state",
                    "decommissioning needs a validated sanitization or destruction record (NIST SP 800-88)",
                ));
            }
            Event::Decommission
        }
        "dispose" => match input.destination.as_deref().map(str::parse::<Destination>) {
            Some(Ok(destination)) => Event::Dispose(destination),
            Some(Err(message)) => return Err(AppError::invalid("destination", message)),
            None => return Err(AppError::invalid("destination", "is required")),
        },
        _ => return Err(AppError::NotFound),
    };
    let holder = device.holder_id.clone().or_else(|| device.ordered_for.clone());
    let replacement = input.replacement_device_id.clone();
    if let (Event::Deliver, Some(raw)) = (&event, input.accessories.as_deref()) {
        device.accessories =
            custody_domain::validate::text(raw, 0, 500).map_err(|m| AppError::invalid("accessories", m))?;
    }
    let replacing = event == Event::Replace;
    move_device(app, &mut tx, actor, &mut device, event, input).await?;
    if replacing {
        replace_with(app, &mut tx, actor, &device, holder, replacement.as_deref()).await?;
    }
    tx.commit().await?;
    Ok(device)
}

/// Puts a like device in the place of `old` for `holder`: a repurposed one from stock, or a new
/// one ordered; it then goes through enrollment and delivery like any other.
async fn replace_with(
    app: &App,
    tx: &mut Conn,
    actor: &Actor,
    old: &DeviceRow,
    holder: Option<String>,
    repurposed: Option<&str>,
) -> Result<(), AppError> {
    let now = custody_store::now_ms();
    match repurposed {
        Some(id) => {
            let mut stock = devices::get(tx, id)
                .await?
                .filter(|d| d.agency_code == old.agency_code)
                .ok_or_else(|| AppError::invalid("replacement_device_id", "no device of this agency has this id"))?;
            if stock.device_type != old.device_type {
                return Err(AppError::invalid(
                    "replacement_device_id",
                    format!("a {} is replaced by a like device, not a {}", old.device_type, stock.device_type),
                ));
            }
            if stock.state == DeviceState::Sanitized {
                move_device(app, tx, actor, &mut stock, Event::Reissue, ActionInput::default()).await?;
            }
            if stock.state != DeviceState::Staged {
                return Err(AppError::invalid(
                    "replacement_device_id",
                    format!(
                        "the replacement must be staged or sanitized for reuse; it is {}",
                        stock.state.label().to_lowercase()
                    ),
                ));
            }
            stock.ordered_for = holder;
            stock.updated_at = now;
            devices::update_assignment(tx, &stock.id, stock.ordered_for.as_deref(), now).await?;
            let changes = serde_json::json!({ "replaces": old.id, "for": stock.ordered_for });
            audit::append(
                tx,
                actor.event("device.assign_replacement", "device", &stock.id, Some(&stock.agency_code), changes),
            )
            .await?;
        }
        None => {
            let order = Order {
                agency: &old.agency_code,
                device_type: old.device_type,
                model_id: &old.model_id,
                funding: &old.funding,
                ordered_for: holder,
                request_id: None,
                note: format!("replaces {}", old.serial.as_deref().unwrap_or(&old.id)),
            };
            order_device(tx, actor, order, serde_json::json!({ "replaces": old.id })).await?;
        }
    }
    Ok(())
}

/// Applies `event` to `device` inside `tx`: transition, effects, custody event, audit event.
pub(crate) async fn move_device(
    app: &App,
    tx: &mut Conn,
    actor: &Actor,
    device: &mut DeviceRow,
    event: Event,
    input: ActionInput,
) -> Result<(), AppError> {
    let holds = devices::holds_covering(tx, device).await?;
    let transfer_approved = match &device.serial {
        Some(serial) => devices::transfer_approved(tx, &device.agency_code, serial).await?,
        None => false,
    };
    let context = Context { hold: holds.first().map(|h| h.matter.clone()), transfer_approved };
    let outcome = transition(device.state, &event, &context).map_err(|r| AppError::conflict("state", r.0))?;
    let now = custody_store::now_ms();
    let before = device.clone();
    device.state = outcome.state;
    device.location = location_of(outcome.state).to_string();
    device.updated_at = now;
    if let Event::Dispose(destination) = &event {
        device.destination = Some(destination.as_str().to_string());
    }
    let mut line_attached = None;
    for effect in &outcome.effects {
        match effect {
            Effect::StartBilling => {
                device.enrolled_at = Some(now);
                device.billing_stop_at = None;
                custody_store::billing::start_interval(
                    tx,
                    &device.id,
                    &device.agency_code,
                    device.device_type.as_str(),
                    now,
                )
                .await?;
            }
            Effect::StopBilling => {
                device.billing_stop_at.get_or_insert(now);
                custody_store::billing::stop_interval(tx, &device.id, now).await?;
            }
            Effect::EndEnrollment => {}
            Effect::AssignToHolder => {
                device.holder_id = device.ordered_for.clone();
                if let Some(raw) = input.phone_number.as_deref() {
                    let phone = phone_number(raw).map_err(|m| AppError::invalid("phone_number", m))?;
                    line_attached = Some(attach_line(tx, device, &phone, input.carrier.as_deref(), now).await?);
                }
            }
            Effect::Unassign => device.holder_id = None,
            Effect::DetachLine => {
                if let Some(line) = device.line_id.take() {
                    devices::attach_line(tx, &line, None, now).await?;
                }
            }
            Effect::Command(kind) => {
                // Through the device's MDM enrollment at once, or pending until it has one.
                let id = custody_store::new_id().to_uppercase();
                let status = crate::mdm::lifecycle_command(app, tx, actor, &device.id, &id, *kind).await?;
                let command = CommandRow {
                    id,
                    device_id: device.id.clone(),
                    kind: kind.as_str().to_string(),
                    status: status.into(),
                    requested_by: actor.label.clone(),
                    created_at: now,
                    updated_at: now,
                };
                devices::insert_command(tx, &command).await?;
            }
            Effect::CreateReplacementRequest => replacement_request(app, tx, actor, device).await?,
        }
    }
    if let Some(line) = line_attached {
        device.line_id = Some(line);
    }
    devices::update(tx, device).await?;
    if before.state.in_fleet() != device.state.in_fleet() {
        let delta = if device.state.in_fleet() { 1 } else { -1 };
        custody_store::counts::add(
            tx,
            &device.agency_code,
            &custody_store::counts::devices_of(device.device_type),
            delta,
        )
        .await?;
    }
    let custody = CustodyEvent {
        id: custody_store::new_id(),
        device_id: device.id.clone(),
        event: event.name().to_string(),
        from_state: Some(before.state.as_str().to_string()),
        to_state: device.state.as_str().to_string(),
        from_location: Some(before.location.clone()),
        to_location: device.location.clone(),
        holder_before: before.holder_id.clone(),
        holder_after: device.holder_id.clone(),
        received_by: input.received_by.clone().filter(|r| !r.trim().is_empty()),
        actor_label: actor.label.clone(),
        note: input.note.clone().filter(|n| !n.trim().is_empty()),
        at: now,
    };
    devices::insert_custody_event(tx, &custody).await?;
    let commands: Vec<&str> = outcome
        .effects
        .iter()
        .filter_map(|e| if let Effect::Command(kind) = e { Some(kind.as_str()) } else { None })
        .collect();
    let changes = serde_json::json!({
        "state": { "from": before.state, "to": device.state },
        "location": { "from": before.location, "to": device.location },
        "holder": { "from": before.holder_id, "to": device.holder_id },
        "serial": device.serial, "imei": device.imei, "commands": commands,
        "received_by": custody.received_by, "billing_stop_at": device.billing_stop_at,
    });
    let action = format!("device.{}", event.name());
    audit::append(tx, actor.event(&action, "device", &device.id, Some(&device.agency_code), changes)).await?;
    crate::compliance::refresh_device(&app.config.compliance, tx, &device.id, now).await?;
    Ok(())
}

async fn attach_line(
    tx: &mut Conn,
    device: &DeviceRow,
    phone: &str,
    carrier: Option<&str>,
    now: i64,
) -> Result<String, AppError> {
    let line = match devices::line_by_phone(tx, phone).await? {
        Some(line) if line.agency_code != device.agency_code => {
            return Err(AppError::conflict(
                "phone_number",
                "this number belongs to another agency: moving it needs an approved transfer_exception",
            ));
        }
        Some(line) if line.device_id.as_deref().is_some_and(|d| d != device.id) => {
            return Err(AppError::conflict("phone_number", "this line is attached to another device"));
        }
        Some(line) => line.id,
        None => {
            let plan_kind = if device.device_type.has_data_plan() { "voice_data" } else { "voice_only" };
            let line = LineRow {
                id: custody_store::new_id(),
                agency_code: device.agency_code.clone(),
                phone_number: phone.to_string(),
                carrier: carrier.filter(|c| !c.trim().is_empty()).unwrap_or("unspecified").to_string(),
                plan_kind: plan_kind.into(),
                status: "active".into(),
                international_from: None,
                international_until: None,
                device_id: None,
                created_at: now,
                updated_at: now,
            };
            devices::insert_line(tx, &line).await?;
            line.id
        }
    };
    devices::attach_line(tx, &line, Some(&device.id), now).await?;
    Ok(line)
}

/// Files a draft `new_device` request for a like device after a loss, for the agency to submit.
async fn replacement_request(app: &App, tx: &mut Conn, actor: &Actor, device: &DeviceRow) -> Result<(), AppError> {
    let Some(principal) = &actor.principal else { return Ok(()) };
    let line_plan = match device.device_type {
        custody_domain::catalog::DeviceType::CellPhone => "voice_only",
        custody_domain::catalog::DeviceType::Smartphone => "voice_data",
        custody_domain::catalog::DeviceType::Tablet => "none",
        _ => "data_only",
    };
    let details = serde_json::json!({
        "device_model_id": device.model_id,
        "line_plan": line_plan,
        "justification": format!("Replacement for lost or stolen device {}", device.serial.as_deref().unwrap_or(&device.id)),
    });
    let _ = app;
    crate::requests::file_in(
        tx,
        actor,
        &principal.user_id,
        &device.agency_code,
        RequestType::NewDevice,
        device.holder_id.clone().or_else(|| device.ordered_for.clone()),
        details,
    )
    .await?;
    Ok(())
}

/// A device to order.
struct Order<'a> {
    agency: &'a str,
    device_type: custody_domain::catalog::DeviceType,
    model_id: &'a str,
    funding: &'a str,
    ordered_for: Option<String>,
    request_id: Option<String>,
    /// Why, for the chain of custody.
    note: String,
}

/// Creates an ordered device with its first custody event and audit event (`changes` adds the
/// reason to the audit event).
async fn order_device(
    tx: &mut Conn,
    actor: &Actor,
    order: Order<'_>,
    mut changes: serde_json::Value,
) -> Result<(), AppError> {
    let now = custody_store::now_ms();
    let device = DeviceRow {
        id: custody_store::new_id(),
        agency_code: order.agency.to_string(),
        state: DeviceState::Ordered,
        device_type: order.device_type,
        model_id: order.model_id.to_string(),
        serial: None,
        imei: None,
        meid: None,
        funding: order.funding.to_string(),
        ordered_for: order.ordered_for,
        holder_id: None,
        line_id: None,
        request_id: order.request_id,
        location: location_of(DeviceState::Ordered).into(),
        accessories: order.device_type.standard_accessories().join(", "),
        enrolled_at: None,
        billing_stop_at: None,
        destination: None,
        created_at: now,
        updated_at: now,
    };
    devices::insert(tx, &device).await?;
    let custody = CustodyEvent {
        id: custody_store::new_id(),
        device_id: device.id.clone(),
        event: "order".into(),
        from_state: None,
        to_state: DeviceState::Ordered.as_str().into(),
        from_location: None,
        to_location: device.location.clone(),
        holder_before: None,
        holder_after: None,
        received_by: None,
        actor_label: actor.label.clone(),
        note: Some(order.note),
        at: now,
    };
    devices::insert_custody_event(tx, &custody).await?;
    changes["model"] = serde_json::json!(device.model_id);
    changes["state"] = serde_json::json!("ordered");
    audit::append(tx, actor.event("device.order", "device", &device.id, Some(&device.agency_code), changes)).await?;
    Ok(())
}

/// Called when a request is approved, in its transaction: a device order creates the ordered
/// device; a loss report moves the named device to lost_stolen at once.
pub async fn on_request_approved(
    app: &App,
    tx: &mut Conn,
    actor: &Actor,
    request: &RequestRow,
) -> Result<(), AppError> {
    match request.request_type {
        RequestType::NewDevice | RequestType::Onboarding => {
            let (Some(order), Some(device_type)) = (request.details.order(), request.device_type) else {
                return Ok(());
            };
            let funding = request.funding.clone().unwrap_or_else(|| "standard".into());
            let order = Order {
                agency: &request.agency_code,
                device_type,
                model_id: &order.device_model_id,
                funding: &funding,
                ordered_for: request.subject_person_id.clone(),
                request_id: Some(request.id.clone()),
                note: format!("ordered by request #{}", request.number),
            };
            order_device(tx, actor, order, serde_json::json!({ "request": request.id })).await?;
        }
        RequestType::LostStolen => {
            if let custody_domain::request::Details::LostStolen { device_serial, .. } = &request.details
                && let Some(mut device) = devices::by_serial(tx, device_serial).await?
                && device.agency_code == request.agency_code
            {
                let input = ActionInput {
                    note: Some(format!("reported by request #{}", request.number)),
                    ..ActionInput::default()
                };
                move_device(app, tx, actor, &mut device, Event::ReportLost, input).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// What a fulfilled request does to devices: an offboarding takes back the leaving person's
/// devices (or the one it names) and a return takes back its device. Each device taken back is
/// `returned` and goes at once to agency legal for clearance, so that nothing wipes or
/// reassigns it before legal cleared it or placed a hold. Devices not in use (in repair, lost)
/// are left where they are.
pub async fn on_request_fulfilled(
    app: &App,
    tx: &mut Conn,
    actor: &Actor,
    request: &custody_store::requests::RequestRow,
) -> Result<(), AppError> {
    use custody_domain::request::Details;
    let mut taken_back = Vec::new();
    match &request.details {
        Details::Offboarding { device_serial: None, .. } => {
            if let Some(person) = &request.subject_person_id {
                let filter = DeviceFilter {
                    agency: Some(request.agency_code.clone()),
                    states: vec![DeviceState::InService, DeviceState::Recovered],
                    holder_id: Some(person.clone()),
                    ..DeviceFilter::default()
                };
                taken_back = devices::list(tx, &filter, None, 1000).await?;
            }
        }
        Details::Offboarding { device_serial: Some(serial), .. }
        | Details::ReturnDevice { device_serial: serial, .. } => {
            if let Some(device) = devices::by_serial(tx, serial).await?
                && device.agency_code == request.agency_code
                && matches!(device.state, DeviceState::InService | DeviceState::Recovered)
            {
                taken_back.push(device);
            }
        }
        _ => {}
    }
    for mut device in taken_back {
        let note = |what: &str| ActionInput {
            note: Some(format!("{what} by request #{}", request.number)),
            ..ActionInput::default()
        };
        move_device(app, tx, actor, &mut device, Event::Return, note("returned")).await?;
        move_device(app, tx, actor, &mut device, Event::RequestClearance, note("sent to agency legal for clearance"))
            .await?;
    }
    Ok(())
}

/// A device with its chain of custody, commands and the holds over it.
#[derive(Debug, Clone)]
pub struct DeviceView {
    pub device: DeviceRow,
    pub phone_number: Option<String>,
    pub custody: Vec<CustodyEvent>,
    pub commands: Vec<CommandRow>,
    pub holds: Vec<HoldRow>,
}

pub async fn get(app: &App, actor: &Actor, id: &str) -> Result<DeviceView, AppError> {
    let mut conn = app.store.conn().await?;
    let device = load_readable(&mut conn, actor, id).await?;
    // A holder is not told of the legal holds on their own device.
    let holder_view = holder_only(actor, &scope_of(&device)?)?;
    let phone_number = match &device.line_id {
        Some(line) => devices::line(&mut conn, line).await?,
        None => None,
    };
    let custody = devices::custody_of(&mut conn, id).await?;
    let commands = devices::commands_of(&mut conn, id).await?;
    let holds = if holder_view { Vec::new() } else { devices::holds_covering(&mut conn, &device).await? };
    Ok(DeviceView { device, phone_number, custody, commands, holds })
}

/// What a device list shows.
#[derive(Debug, Clone, Default)]
pub struct DeviceQuery {
    pub agency: Option<String>,
    /// Comma-separated states.
    pub state: Option<String>,
    /// A serial number, IMEI or phone number: an exact lookup.
    pub q: Option<String>,
    pub holder_id: Option<String>,
    pub request_id: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

pub async fn list(app: &App, actor: &Actor, query: DeviceQuery) -> Result<Page<DeviceRow>, AppError> {
    let (agency, holder) = match actor.list_scope(Action::DeviceRead, query.agency.as_deref()) {
        Ok(agency) => (agency, None),
        Err(AppError::Forbidden) => {
            // An employee sees the devices they hold, in their own agency, and nothing else.
            let agency = actor.list_scope(Action::OwnDevices, query.agency.as_deref())?;
            let mut conn = app.store.conn().await?;
            // No directory entry: a holder id nobody has, so the list is empty.
            let me = own_person(&mut conn, actor).await?.unwrap_or_else(|| "-".to_string());
            (agency, Some(me))
        }
        Err(e) => return Err(e),
    };
    let limit = paging::limit(query.limit)?;
    let mut states = Vec::new();
    for raw in query.state.as_deref().unwrap_or("").split(',').filter(|s| !s.trim().is_empty()) {
        states.push(raw.parse::<DeviceState>().map_err(|m| AppError::invalid("state", m))?);
    }
    let mut conn = app.store.conn().await?;
    if let Some(q) = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let found = match (imei(q), phone_number(q), serial_number(q)) {
            (Ok(i), _, _) => devices::by_imei(&mut conn, &i).await?,
            (_, Ok(p), _) if q.starts_with('+') || q.chars().filter(char::is_ascii_digit).count() >= 10 => {
                match devices::by_phone(&mut conn, &p).await? {
                    Some(d) => Some(d),
                    None => devices::by_serial(&mut conn, &q.to_ascii_uppercase()).await?,
                }
            }
            (_, _, Ok(s)) => devices::by_serial(&mut conn, &s).await?,
            _ => None,
        };
        let visible = found.filter(|d| {
            agency.as_deref().is_none_or(|a| a == d.agency_code)
                && (states.is_empty() || states.contains(&d.state))
                && (holder.is_none() || d.holder_id == holder)
        });
        return Ok(Page { items: visible.into_iter().collect(), next: None });
    }
    let filter = DeviceFilter {
        agency,
        states,
        holder_id: holder.or(query.holder_id),
        request_id: query.request_id,
        ..DeviceFilter::default()
    };
    let after = match &query.cursor {
        Some(cursor) => Some(paging::decode(cursor, 1)?.remove(0)),
        None => None,
    };
    let rows = devices::list(&mut conn, &filter, after.as_deref(), limit + 1).await?;
    Ok(paging::page(rows, limit, |d| paging::encode(&[&d.id]), |d| d))
}

/// Places a legal hold for `matter` on a person (covering their devices) or on one device.
pub async fn place_hold(
    app: &App,
    actor: &Actor,
    matter: &str,
    person_id: Option<&str>,
    device_id: Option<&str>,
) -> Result<HoldRow, AppError> {
    let matter = custody_domain::validate::text(matter, 2, 300).map_err(|m| AppError::invalid("matter", m))?;
    let mut tx = app.store.write().await?;
    let (agency, covered) = match (person_id, device_id) {
        (Some(person), None) => {
            let found = custody_store::people::get(&mut tx, person).await?.ok_or(AppError::NotFound)?;
            let code = AgencyCode::parse(&found.agency_code).map_err(|_| AppError::NotFound)?;
            actor.authorize(Action::HoldWrite, Scope::Agency(&code))?;
            let filter = DeviceFilter { person_id: Some(person.into()), ..DeviceFilter::default() };
            let covered = devices::list(&mut tx, &filter, None, 500).await?;
            (found.agency_code, covered)
        }
        (None, Some(device)) => {
            let found = devices::get(&mut tx, device).await?.ok_or(AppError::NotFound)?;
            let code = scope_of(&found)?;
            actor.authorize(Action::HoldWrite, Scope::Agency(&code))?;
            (found.agency_code.clone(), vec![found])
        }
        _ => return Err(AppError::invalid("person_id", "name a person or a device (not both)")),
    };
    let hold = HoldRow {
        id: custody_store::new_id(),
        agency_code: agency.clone(),
        matter,
        person_id: person_id.map(str::to_string),
        device_id: device_id.map(str::to_string),
        placed_by: actor.label.clone(),
        placed_at: custody_store::now_ms(),
        released_by: None,
        released_at: None,
    };
    devices::insert_hold(&mut tx, &hold).await?;
    let changes = serde_json::json!({ "matter": hold.matter, "person": hold.person_id, "device": hold.device_id });
    audit::append(&mut tx, actor.event("legal_hold.place", "legal_hold", &hold.id, Some(&agency), changes)).await?;
    for mut device in covered.into_iter().filter(|d| d.state == DeviceState::AwaitingClearance) {
        // The hold is recorded first, so the transition sees it; placing a hold is not refused by one.
        let outcome = transition(device.state, &Event::PlaceHold, &Context::default());
        if outcome.is_ok() {
            move_device(app, &mut tx, actor, &mut device, Event::PlaceHold, ActionInput::default()).await?;
        }
    }
    tx.commit().await?;
    Ok(hold)
}

/// Releases a hold; devices it alone kept on hold go back to awaiting clearance.
pub async fn release_hold(app: &App, actor: &Actor, id: &str) -> Result<HoldRow, AppError> {
    let mut tx = app.store.write().await?;
    let hold = devices::get_hold(&mut tx, id).await?.ok_or(AppError::NotFound)?;
    let code = AgencyCode::parse(&hold.agency_code).map_err(|_| AppError::NotFound)?;
    actor.authorize(Action::HoldRead, Scope::Agency(&code))?;
    actor.authorize(Action::HoldWrite, Scope::Agency(&code))?;
    if hold.released_at.is_some() {
        return Err(AppError::conflict("hold", "this hold is already released"));
    }
    let now = custody_store::now_ms();
    devices::release_hold(&mut tx, id, &actor.label, now).await?;
    audit::append(
        &mut tx,
        actor.event(
            "legal_hold.release",
            "legal_hold",
            id,
            Some(&hold.agency_code),
            serde_json::json!({"matter": hold.matter}),
        ),
    )
    .await?;
    let filter = match (&hold.person_id, &hold.device_id) {
        (Some(person), _) => DeviceFilter { person_id: Some(person.clone()), ..DeviceFilter::default() },
        _ => DeviceFilter {
            agency: Some(hold.agency_code.clone()),
            states: vec![DeviceState::OnLegalHold],
            ..DeviceFilter::default()
        },
    };
    for mut device in devices::list(&mut tx, &filter, None, 500).await? {
        let on_hold = device.state == DeviceState::OnLegalHold;
        let mine = hold.device_id.as_deref().is_none_or(|d| d == device.id);
        if on_hold && mine && devices::holds_covering(&mut tx, &device).await?.is_empty() {
            move_device(app, &mut tx, actor, &mut device, Event::ReleaseHold, ActionInput::default()).await?;
        }
    }
    let released = devices::get_hold(&mut tx, id).await?.ok_or(AppError::NotFound)?;
    tx.commit().await?;
    Ok(released)
}

/// Agency legal clears a returned device: sanitization may start (refused while a hold covers it).
pub async fn clear(app: &App, actor: &Actor, id: &str) -> Result<DeviceRow, AppError> {
    let mut tx = app.store.write().await?;
    let mut device = load(&mut tx, actor, id, Action::HoldWrite).await?;
    move_device(app, &mut tx, actor, &mut device, Event::Clear, ActionInput::default()).await?;
    tx.commit().await?;
    Ok(device)
}

/// The holds of an agency (or every agency for central IT).
pub async fn holds(app: &App, actor: &Actor, agency: Option<&str>) -> Result<Vec<HoldRow>, AppError> {
    let agency = match agency.filter(|a| !a.is_empty()).map(str::to_string).or_else(|| actor.agency_filter()) {
        Some(asked) => asked,
        None => {
            actor.authorize(Action::HoldRead, Scope::Global)?;
            return Err(AppError::invalid("agency", "is required: legal holds are listed per agency"));
        }
    };
    let code = AgencyCode::parse(&agency).map_err(|m| AppError::invalid("agency", m))?;
    actor.authorize(Action::HoldRead, Scope::Agency(&code))?;
    let mut conn = app.store.conn().await?;
    Ok(devices::holds_of_agency(&mut conn, code.as_str()).await?)
}

/// The preservation export for legal: a ZIP of the device's record, line, holds, chain of
/// custody, commands, sanitization records, the request that ordered it and every audit event
/// about it, as JSON. Reading it is itself audited.
pub async fn preservation_export(app: &App, actor: &Actor, id: &str) -> Result<Vec<u8>, AppError> {
    use std::io::Write;
    let mut tx = app.store.write().await?;
    let device = load(&mut tx, actor, id, Action::HoldRead).await?;
    let view_line = match &device.line_id {
        Some(line) => devices::line(&mut tx, line).await?,
        None => None,
    };
    let custody = devices::custody_of(&mut tx, id).await?;
    let commands = devices::commands_of(&mut tx, id).await?;
    let holds = devices::holds_covering(&mut tx, &device).await?;
    let records = devices::sanitizations_of(&mut tx, id).await?;
    let request = match &device.request_id {
        Some(request) => custody_store::requests::get(&mut tx, request).await?,
        None => None,
    };
    let filter = custody_store::audit::AuditFilter {
        object_type: None,
        object_id: Some(id.to_string()),
        actor_id: None,
        action: None,
        agency: None,
        from_ms: None,
        to_ms: None,
    };
    let events = custody_store::audit::list(&mut tx, &filter, None, 10_000).await?;
    let json = |value: serde_json::Value| serde_json::to_vec_pretty(&value).expect("JSON serializes");
    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            "device.json",
            json(serde_json::json!({
                "id": device.id, "agency": device.agency_code, "state": device.state, "device_type": device.device_type,
                "model_id": device.model_id, "serial": device.serial, "imei": device.imei, "meid": device.meid,
                "funding": device.funding, "ordered_for": device.ordered_for, "holder_id": device.holder_id,
                "phone_number": view_line, "location": device.location, "accessories": device.accessories,
                "enrolled_at_ms": device.enrolled_at, "billing_stop_at_ms": device.billing_stop_at,
                "destination": device.destination, "created_at_ms": device.created_at,
            })),
        ),
        (
            "custody.json",
            json(serde_json::Value::Array(
                custody
                    .iter()
                    .map(|c| {
                        serde_json::json!({"event": c.event, "from_state": c.from_state, "to_state": c.to_state,
                            "from_location": c.from_location, "to_location": c.to_location,
                            "holder_before": c.holder_before, "holder_after": c.holder_after,
                            "received_by": c.received_by, "by": c.actor_label, "note": c.note, "at_ms": c.at})
                    })
                    .collect(),
            )),
        ),
        (
            "commands.json",
            json(serde_json::Value::Array(
                commands
                    .iter()
                    .map(|c| serde_json::json!({"kind": c.kind, "status": c.status, "requested_by": c.requested_by, "at_ms": c.created_at}))
                    .collect(),
            )),
        ),
        (
            "legal_holds.json",
            json(serde_json::Value::Array(
                holds
                    .iter()
                    .map(|h| serde_json::json!({"id": h.id, "matter": h.matter, "person_id": h.person_id,
                        "device_id": h.device_id, "placed_by": h.placed_by, "placed_at_ms": h.placed_at}))
                    .collect(),
            )),
        ),
        (
            "sanitization.json",
            json(serde_json::Value::Array(
                records
                    .iter()
                    .map(|r| serde_json::json!({"id": r.id, "method_type": r.method_type,
                        "record": serde_json::from_str::<serde_json::Value>(&r.record).unwrap_or_default(),
                        "performed_by": r.performed_by_label, "performed_at_ms": r.performed_at,
                        "validated_by": r.validated_by_label, "validated_at_ms": r.validated_at}))
                    .collect(),
            )),
        ),
        (
            "request.json",
            json(match &request {
                Some(r) => serde_json::json!({"id": r.id, "number": r.number, "type": r.request_type, "status": r.status,
                    "requester": r.requester_label, "details": r.details, "summary": r.summary}),
                None => serde_json::Value::Null,
            }),
        ),
        (
            "audit_events.json",
            json(serde_json::Value::Array(
                events
                    .iter()
                    .map(|e| {
                        let c = &e.content;
                        serde_json::json!({"seq": c.seq, "at_ms": c.at_ms, "actor": c.actor_label, "action": c.action,
                            "object_type": c.object_type, "object_id": c.object_id,
                            "changes": serde_json::from_str::<serde_json::Value>(&c.changes).unwrap_or_default(),
                            "hash": e.hash})
                    })
                    .collect(),
            )),
        ),
    ];
    let mut buffer = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buffer);
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in &files {
            zip.start_file(*name, options).map_err(|e| anyhow::anyhow!("zip: {e}"))?;
            zip.write_all(bytes).map_err(|e| anyhow::anyhow!("zip: {e}"))?;
        }
        zip.finish().map_err(|e| anyhow::anyhow!("zip: {e}"))?;
    }
    let changes =
        serde_json::json!({ "files": files.iter().map(|(n, _)| *n).collect::<Vec<_>>(), "audit_events": events.len() });
    audit::append(&mut tx, actor.event("device.preservation_export", "device", id, Some(&device.agency_code), changes))
        .await?;
    tx.commit().await?;
    Ok(buffer.into_inner())
}
