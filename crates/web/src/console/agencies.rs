//! Agency pages.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use custody_app::agencies;
use custody_domain::authz::Action;
use custody_store::agencies::AgencyRow;
use serde::Deserialize;

use super::{Layout, Viewer, error_page, render};
use crate::AppState;

#[derive(Template)]
#[template(path = "agencies.html")]
struct AgenciesPage<'a> {
    layout: &'a Layout,
    agencies: Vec<AgencyRow>,
    q: String,
    sort: String,
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
}

pub async fn list(State(state): State<AppState>, viewer: Viewer, Query(query): Query<ListQuery>) -> Response {
    let q = query.q.unwrap_or_default();
    let filter = (!q.trim().is_empty()).then_some(q.trim());
    let sort = query.sort.clone().unwrap_or_else(|| "code".into());
    match agencies::list(&state.app, &viewer.actor, filter, Some(&sort), query.cursor.as_deref(), Some(50)).await {
        Ok(page) => render(
            StatusCode::OK,
            &AgenciesPage { layout: &viewer.layout, agencies: page.items, q: q.clone(), sort, next: page.next },
        ),
        Err(error) => error_page(&viewer, error),
    }
}

pub async fn export(State(state): State<AppState>, viewer: Viewer, Query(query): Query<ListQuery>) -> Response {
    let q = query.q.unwrap_or_default();
    let filter = (!q.trim().is_empty()).then_some(q.trim().to_string());
    let sort = query.sort.clone();
    let app = state.app.clone();
    let actor = viewer.actor.clone();
    super::people::csv_response(
        "agencies.csv",
        &["code", "name", "billing_account", "fund_code", "relationship_manager", "legal_contact", "shipping_address"],
        move |cursor| {
            let (app, actor, filter, sort) = (app.clone(), actor.clone(), filter.clone(), sort.clone());
            async move {
                let page =
                    agencies::list(&app, &actor, filter.as_deref(), sort.as_deref(), cursor.as_deref(), Some(500))
                        .await?;
                let rows = page
                    .items
                    .into_iter()
                    .map(|a| {
                        let d = a.details;
                        vec![
                            a.code,
                            d.name,
                            d.billing_account.unwrap_or_default(),
                            d.fund_code.unwrap_or_default(),
                            d.relationship_manager.unwrap_or_default(),
                            d.legal_contact.unwrap_or_default(),
                            d.shipping_address.unwrap_or_default(),
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
#[template(path = "agency.html")]
struct AgencyPage<'a> {
    layout: &'a Layout,
    agency: AgencyRow,
    people: Option<i64>,
}

pub async fn show(State(state): State<AppState>, viewer: Viewer, Path(code): Path<String>) -> Response {
    let agency = match agencies::get(&state.app, &viewer.actor, &code).await {
        Ok(agency) => agency,
        Err(error) => return error_page(&viewer, error),
    };
    let people = if viewer.may(Action::PersonRead) {
        match state.app.store.conn().await {
            Ok(mut conn) => custody_store::people::count(&mut conn, Some(&agency.code)).await.ok(),
            Err(_) => None,
        }
    } else {
        None
    };
    render(StatusCode::OK, &AgencyPage { layout: &viewer.layout, agency, people })
}
