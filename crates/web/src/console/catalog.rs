//! The catalog page: device types, models, service codes with rate history; `admin` adds models
//! and changes rates from here.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use custody_app::catalog;
use custody_domain::authz::Action;
use custody_domain::catalog::{DeviceType, ModelInput, effective_to};
use custody_store::catalog::ModelRow;

use super::{Layout, Viewer, csrf_refused, error_page, form_fields, problems, render};
use crate::AppState;

struct CodeView {
    code: String,
    name: String,
    billing_unit: String,
    proration: &'static str,
    /// (device type, amount, from, until)
    rates: Vec<(String, String, String, String)>,
}

#[derive(Template)]
#[template(path = "catalog.html")]
struct CatalogPage<'a> {
    layout: &'a Layout,
    /// (name, description, standard accessories, optional accessories)
    types: Vec<(&'static str, &'static str, String, String)>,
    models: Vec<ModelRow>,
    codes: Vec<CodeView>,
    can_edit: bool,
    message: Option<String>,
    errors: Vec<String>,
}

async fn page(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    message: Option<String>,
    errors: Vec<String>,
) -> Response {
    let models = match catalog::list_models(&state.app, &viewer.actor, None).await {
        Ok(models) => models,
        Err(error) => return error_page(viewer, error),
    };
    let codes = match catalog::list_service_codes(&state.app, &viewer.actor).await {
        Ok(codes) => codes,
        Err(error) => return error_page(viewer, error),
    };
    let codes = codes
        .into_iter()
        .map(|c| CodeView {
            rates: c
                .rates
                .iter()
                .map(|r| {
                    (
                        r.device_type.map_or("every type".to_string(), |t| t.as_str().to_string()),
                        r.amount.dollars(),
                        r.effective_from.clone(),
                        effective_to(&c.rates, r).unwrap_or_else(|| "—".into()),
                    )
                })
                .collect(),
            code: c.code,
            name: c.name,
            billing_unit: c.billing_unit,
            proration: c.proration.as_str(),
        })
        .collect();
    let types = DeviceType::ALL
        .into_iter()
        .map(|t| (t.as_str(), t.describe(), t.standard_accessories().join(", "), t.optional_accessories().join(", ")))
        .collect();
    let can_edit = viewer.may(Action::CatalogWrite);
    render(status, &CatalogPage { layout: &viewer.layout, types, models, codes, can_edit, message, errors })
}

pub async fn show(State(state): State<AppState>, viewer: Viewer) -> Response {
    page(&state, &viewer, StatusCode::OK, None, Vec::new()).await
}

pub async fn add_model(State(state): State<AppState>, viewer: Viewer, body: Bytes) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    let get = |k: &str| form.get(k).cloned();
    let input = ModelInput {
        device_type: get("device_type"),
        platform: get("platform"),
        maker: get("maker"),
        model: get("model"),
        standard: get("standard").map(|s| s != "false"),
        quote_price: get("quote_price"),
        active: Some(true),
    };
    match catalog::create_model(&state.app, &viewer.actor, input).await {
        Ok(model) => {
            let message = format!("{} {} is in the catalog.", model.details.maker, model.details.model);
            page(&state, &viewer, StatusCode::CREATED, Some(message), Vec::new()).await
        }
        Err(error) => match problems(error) {
            Ok(errors) => page(&state, &viewer, StatusCode::UNPROCESSABLE_ENTITY, None, errors).await,
            Err(other) => error_page(&viewer, other),
        },
    }
}

pub async fn add_rate(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(code): Path<String>,
    body: Bytes,
) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    let get = |k: &str| form.get(k).map(String::as_str);
    match catalog::add_rate(&state.app, &viewer.actor, &code, get("amount"), get("effective_from"), get("device_type"))
        .await
    {
        Ok(_) => {
            page(&state, &viewer, StatusCode::CREATED, Some(format!("The {code} rate is changed.")), Vec::new()).await
        }
        Err(error) => match problems(error) {
            Ok(errors) => page(&state, &viewer, StatusCode::UNPROCESSABLE_ENTITY, None, errors).await,
            Err(other) => error_page(&viewer, other),
        },
    }
}
