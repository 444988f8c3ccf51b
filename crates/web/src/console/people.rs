//! People pages: list with search, order and paging, CSV export, detail, create and edit forms.

use std::collections::HashMap;
use std::future::Future;

use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use custody_app::AppError;
use custody_app::people::{self, PeopleQuery};
use custody_domain::authz::Action;
use custody_domain::person::{EmploymentStatus, PersonInput};
use custody_store::people::PersonRow;
use serde::Deserialize;

use super::{Layout, Viewer, error_page, form_fields, render, urlencode};
use crate::AppState;

fn statuses() -> Vec<&'static str> {
    EmploymentStatus::ALL.iter().map(|s| s.as_str()).collect()
}

#[derive(Template)]
#[template(path = "people.html")]
struct PeoplePage<'a> {
    layout: &'a Layout,
    people: Vec<PersonRow>,
    q: String,
    status: String,
    sort: String,
    statuses: Vec<&'static str>,
    filter_query: String,
    next: Option<String>,
    first_page: bool,
    can_create: bool,
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    q: Option<String>,
    status: Option<String>,
    sort: Option<String>,
    agency: Option<String>,
    cursor: Option<String>,
}

impl ListQuery {
    fn people_query(&self, viewer: &Viewer, limit: i64) -> PeopleQuery {
        PeopleQuery {
            agency: self.agency.clone().filter(|a| !a.is_empty()).or_else(|| viewer.agency()),
            status: self.status.clone().filter(|s| !s.is_empty()),
            q: self.q.clone(),
            sort: self.sort.clone().filter(|s| !s.is_empty()),
            cursor: self.cursor.clone().filter(|c| !c.is_empty()),
            limit: Some(limit),
        }
    }

    /// The filter as a query string, for links to other pages and the export.
    fn filter_query(&self) -> String {
        let mut parts = Vec::new();
        for (key, value) in [("q", &self.q), ("status", &self.status), ("sort", &self.sort), ("agency", &self.agency)] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                parts.push(format!("{key}={}", urlencode(value)));
            }
        }
        parts.join("&")
    }
}

pub async fn list(State(state): State<AppState>, viewer: Viewer, Query(query): Query<ListQuery>) -> Response {
    let page = match people::list(&state.app, &viewer.actor, query.people_query(&viewer, 50)).await {
        Ok(page) => page,
        Err(error) => return error_page(&viewer, error),
    };
    let template = PeoplePage {
        layout: &viewer.layout,
        people: page.items,
        q: query.q.clone().unwrap_or_default(),
        status: query.status.clone().unwrap_or_default(),
        sort: query.sort.clone().unwrap_or_else(|| "name".into()),
        statuses: statuses(),
        filter_query: query.filter_query(),
        next: page.next,
        first_page: query.cursor.is_none(),
        can_create: viewer.may(Action::PersonWrite),
    };
    render(StatusCode::OK, &template)
}

/// Rows of one CSV page and the cursor of the next.
pub type CsvPage = (Vec<Vec<String>>, Option<String>);

fn csv_bytes(header: Option<&[&str]>, rows: &[Vec<String>]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    if let Some(header) = header {
        let _ = writer.write_record(header);
    }
    for row in rows {
        let _ = writer.write_record(row);
    }
    writer.into_inner().unwrap_or_default()
}

/// Streams every page `fetch` yields as one CSV download, a page at a time (bounded memory).
/// The first page is fetched before answering, so that a refusal shows as a page.
pub async fn csv_response<F, Fut>(filename: &str, header: &[&str], fetch: F, viewer: &Viewer) -> Response
where
    F: Fn(Option<String>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<CsvPage, AppError>> + Send + 'static,
{
    match fetch(None).await {
        Ok(first) => csv_stream(filename, header, first, fetch),
        Err(error) => error_page(viewer, error),
    }
}

/// Streams `first` and every further page `fetch` yields as one CSV download (the API's feeds
/// use it too).
pub fn csv_stream<F, Fut>(filename: &str, header: &[&str], first: CsvPage, fetch: F) -> Response
where
    F: Fn(Option<String>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<CsvPage, AppError>> + Send + 'static,
{
    let (rows, next) = first;
    let first_chunk = csv_bytes(Some(header), &rows);
    enum Step {
        First(Vec<u8>, Option<String>),
        Fetch(String),
        Done,
    }
    let stream = futures_util::stream::unfold((Step::First(first_chunk, next), fetch), |(step, fetch)| async move {
        match step {
            Step::Done => None,
            Step::First(bytes, next) => {
                let step = next.map_or(Step::Done, Step::Fetch);
                Some((Ok::<_, std::io::Error>(Bytes::from(bytes)), (step, fetch)))
            }
            Step::Fetch(cursor) => match fetch(Some(cursor)).await {
                Ok((rows, next)) => {
                    let step = next.map_or(Step::Done, Step::Fetch);
                    Some((Ok(Bytes::from(csv_bytes(None, &rows))), (step, fetch)))
                }
                Err(error) => Some((Err(std::io::Error::other(error.to_string())), (Step::Done, fetch))),
            },
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

pub async fn export(State(state): State<AppState>, viewer: Viewer, Query(query): Query<ListQuery>) -> Response {
    let app = state.app.clone();
    let actor = viewer.actor.clone();
    let base = query.people_query(&viewer, 500);
    let header =
        ["id", "agency", "family_name", "given_name", "email", "employee_id", "unit", "title", "phone", "status"];
    csv_response(
        "people.csv",
        &header,
        move |cursor| {
            let (app, actor) = (app.clone(), actor.clone());
            let query = PeopleQuery { cursor, ..base.clone() };
            async move {
                let page = people::list(&app, &actor, query).await?;
                let rows = page
                    .items
                    .into_iter()
                    .map(|p| {
                        let d = p.details;
                        vec![
                            p.id,
                            p.agency_code,
                            d.family_name,
                            d.given_name,
                            d.email.map(|e| e.to_string()).unwrap_or_default(),
                            d.employee_id.unwrap_or_default(),
                            d.unit.unwrap_or_default(),
                            d.title.unwrap_or_default(),
                            d.phone.unwrap_or_default(),
                            d.status.as_str().to_string(),
                        ]
                    })
                    .collect();
                Ok((rows, page.next))
            }
        },
        &viewer,
    )
    .await
}

#[derive(Template)]
#[template(path = "person.html")]
struct PersonPage<'a> {
    layout: &'a Layout,
    person: PersonRow,
    can_edit: bool,
    saved: bool,
}

#[derive(Deserialize)]
pub struct ShowQuery {
    saved: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Response {
    match people::get(&state.app, &viewer.actor, &id).await {
        Ok(person) => {
            let page = PersonPage {
                layout: &viewer.layout,
                person,
                can_edit: viewer.may(Action::PersonWrite),
                saved: query.saved.is_some(),
            };
            render(StatusCode::OK, &page)
        }
        Err(error) => error_page(&viewer, error),
    }
}

/// One input of the person form.
struct FormField {
    name: &'static str,
    label: &'static str,
    kind: &'static str,
    value: String,
    error: Option<String>,
    required: bool,
}

/// The values the form shows.
#[derive(Default)]
struct FormValues {
    agency: String,
}

#[derive(Template)]
#[template(path = "person_form.html")]
struct PersonForm<'a> {
    layout: &'a Layout,
    heading: String,
    action: String,
    cancel: String,
    agency_choices: Vec<String>,
    values: FormValues,
    fields: Vec<FormField>,
    statuses: Vec<&'static str>,
    errors: HashMap<String, String>,
}

const FIELDS: [(&str, &str, &str, bool); 8] = [
    ("given_name", "Given name", "text", true),
    ("family_name", "Family name", "text", true),
    ("email", "E-mail", "email", false),
    ("employee_id", "Employee id", "text", false),
    ("unit", "Unit", "text", false),
    ("title", "Title", "text", false),
    ("phone", "Phone", "tel", false),
    ("status", "Employment status", "select", true),
];

fn form_page<'a>(
    viewer: &'a Viewer,
    heading: String,
    action: String,
    cancel: String,
    values: &HashMap<String, String>,
    errors: HashMap<String, String>,
    with_agency: bool,
) -> PersonForm<'a> {
    let fields = FIELDS
        .iter()
        .map(|(name, label, kind, required)| FormField {
            name,
            label,
            kind,
            value: values.get(*name).cloned().unwrap_or_default(),
            error: errors.get(*name).cloned(),
            required: *required,
        })
        .collect();
    let agency_choices =
        if with_agency && viewer.principal().is_central() { viewer.layout.agency_choices.clone() } else { Vec::new() };
    let agency = values.get("agency").cloned().or_else(|| viewer.agency()).unwrap_or_default();
    PersonForm {
        layout: &viewer.layout,
        heading,
        action,
        cancel,
        agency_choices,
        values: FormValues { agency },
        fields,
        statuses: statuses(),
        errors,
    }
}

fn input_from(form: &HashMap<String, String>) -> PersonInput {
    let get = |key: &str| form.get(key).cloned();
    PersonInput {
        given_name: get("given_name"),
        family_name: get("family_name"),
        email: get("email"),
        employee_id: get("employee_id"),
        unit: get("unit"),
        title: get("title"),
        phone: get("phone"),
        status: get("status"),
    }
}

fn field_errors(error: AppError) -> Result<HashMap<String, String>, AppError> {
    match error {
        AppError::Validation(errors) => Ok(errors.0.into_iter().map(|e| (e.field, e.message)).collect()),
        AppError::Conflict { field, message } => Ok(HashMap::from([(field, message)])),
        other => Err(other),
    }
}

pub async fn new_form(viewer: Viewer) -> Response {
    if !viewer.may(Action::PersonWrite) {
        return error_page(&viewer, AppError::Forbidden);
    }
    let values = HashMap::from([("status".to_string(), "active".to_string())]);
    let page =
        form_page(&viewer, "Add a person".into(), "/people".into(), "/people".into(), &values, HashMap::new(), true);
    render(StatusCode::OK, &page)
}

pub async fn create(State(state): State<AppState>, viewer: Viewer, body: Bytes) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return super::csrf_refused();
    }
    let agency = form.get("agency").cloned().filter(|a| !a.is_empty()).or_else(|| viewer.agency());
    match people::create(&state.app, &viewer.actor, agency.as_deref(), input_from(&form)).await {
        Ok(person) => Redirect::to(&format!("/people/{}?saved=1", person.id)).into_response(),
        Err(error) => match field_errors(error) {
            Ok(errors) => {
                let page =
                    form_page(&viewer, "Add a person".into(), "/people".into(), "/people".into(), &form, errors, true);
                render(StatusCode::UNPROCESSABLE_ENTITY, &page)
            }
            Err(other) => error_page(&viewer, other),
        },
    }
}

fn values_of(person: &PersonRow) -> HashMap<String, String> {
    let d = &person.details;
    let mut values = HashMap::new();
    values.insert("agency".into(), person.agency_code.clone());
    values.insert("given_name".into(), d.given_name.clone());
    values.insert("family_name".into(), d.family_name.clone());
    values.insert("email".into(), d.email.as_ref().map(|e| e.to_string()).unwrap_or_default());
    values.insert("employee_id".into(), d.employee_id.clone().unwrap_or_default());
    values.insert("unit".into(), d.unit.clone().unwrap_or_default());
    values.insert("title".into(), d.title.clone().unwrap_or_default());
    values.insert("phone".into(), d.phone.clone().unwrap_or_default());
    values.insert("status".into(), d.status.as_str().to_string());
    values
}

pub async fn edit_form(State(state): State<AppState>, viewer: Viewer, Path(id): Path<String>) -> Response {
    let person = match people::get(&state.app, &viewer.actor, &id).await {
        Ok(person) => person,
        Err(error) => return error_page(&viewer, error),
    };
    if !viewer.may(Action::PersonWrite) {
        return error_page(&viewer, AppError::Forbidden);
    }
    let heading = format!("Edit {} {}", person.details.given_name, person.details.family_name);
    let (action, cancel) = (format!("/people/{id}"), format!("/people/{id}"));
    let page = form_page(&viewer, heading, action, cancel, &values_of(&person), HashMap::new(), false);
    render(StatusCode::OK, &page)
}

pub async fn update(State(state): State<AppState>, viewer: Viewer, Path(id): Path<String>, body: Bytes) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return super::csrf_refused();
    }
    match people::update(&state.app, &viewer.actor, &id, input_from(&form)).await {
        Ok(_) => Redirect::to(&format!("/people/{id}?saved=1")).into_response(),
        Err(error) => match field_errors(error) {
            Ok(errors) => {
                let (action, cancel) = (format!("/people/{id}"), format!("/people/{id}"));
                let page = form_page(&viewer, "Edit a person".into(), action, cancel, &form, errors, false);
                render(StatusCode::UNPROCESSABLE_ENTITY, &page)
            }
            Err(other) => error_page(&viewer, other),
        },
    }
}
