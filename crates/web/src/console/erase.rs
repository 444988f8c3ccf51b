//! The erase requests page: remote erases waiting for a second person, who approves or rejects
//! them here (the two-person rule of `custody_app::erase`), and the ones already decided.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use custody_app::erase;
use custody_domain::authz::Action;
use custody_store::mdm::EraseRequestRow;

use super::{Layout, Viewer, csrf_refused, error_page, form_fields, problems_with_status, render, when};
use crate::AppState;

#[derive(Template)]
#[template(path = "mdm_erase_requests.html")]
struct Page<'a> {
    layout: &'a Layout,
    pending: Vec<EraseRequestRow>,
    decided: Vec<EraseRequestRow>,
    /// The viewer may decide others' requests.
    can_decide: bool,
    /// The viewer's user id: their own requests are not theirs to decide.
    me: String,
    message: Option<String>,
    errors: Vec<String>,
}

impl Page<'_> {
    fn at(&self, ms: &i64) -> String {
        when(*ms)
    }

    fn at_opt(&self, ms: &Option<i64>) -> String {
        ms.map(when).unwrap_or_default()
    }
}

async fn page(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    message: Option<String>,
    errors: Vec<String>,
) -> Response {
    let all = match erase::list(&state.app, &viewer.actor, None).await {
        Ok(all) => all,
        Err(error) => return error_page(viewer, error),
    };
    let (pending, decided) = all.into_iter().partition(|r| r.status == "pending");
    let page = Page {
        layout: &viewer.layout,
        pending,
        decided,
        can_decide: viewer.may(Action::MdmEraseDecide),
        me: viewer.actor.principal.as_ref().map(|p| p.user_id.clone()).unwrap_or_default(),
        message,
        errors,
    };
    render(status, &page)
}

pub async fn list(State(state): State<AppState>, viewer: Viewer, Query(q): Query<HashMap<String, String>>) -> Response {
    let message = match q.get("done").map(String::as_str) {
        Some("approved") => Some("The erase is approved: the devices are told to erase themselves.".to_string()),
        Some("rejected") => Some("The erase is rejected: nothing is erased.".to_string()),
        _ => None,
    };
    page(&state, &viewer, StatusCode::OK, message, Vec::new()).await
}

/// Approves (`approve`) or rejects (`reject`) a request.
pub async fn decide(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, verb)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    let note = form.get("note").map(String::as_str);
    let outcome = match verb.as_str() {
        "approve" => erase::approve(&state.app, &viewer.actor, &id, note).await.map(|_| "approved"),
        "reject" => erase::reject(&state.app, &viewer.actor, &id, note.unwrap_or("")).await.map(|_| "rejected"),
        _ => return super::not_found(&viewer),
    };
    match outcome {
        Ok(done) => Redirect::to(&format!("/mdm/erase-requests?done={done}")).into_response(),
        Err(error) => match problems_with_status(error) {
            Ok((status, lines)) => page(&state, &viewer, status, None, lines).await,
            Err(other) => error_page(&viewer, other),
        },
    }
}
