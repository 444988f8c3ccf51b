//! Reading and verifying the audit log (`auditor`, `admin`).

use custody_domain::audit::ChainedEvent;
use custody_domain::authz::{Action, Scope};
use custody_store::audit::{self, AuditFilter, Verification};

use crate::paging::{self, Page};
use crate::{Actor, App, AppError};

pub async fn list(
    app: &App,
    actor: &Actor,
    filter: AuditFilter,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> Result<Page<ChainedEvent>, AppError> {
    actor.authorize(Action::AuditRead, Scope::Global)?;
    let limit = paging::limit(limit)?;
    let before = match cursor {
        Some(c) => {
            Some(paging::decode(c, 1)?[0].parse::<i64>().map_err(|_| AppError::invalid("cursor", "is not valid"))?)
        }
        None => None,
    };
    let mut filter = filter;
    if let Some(own) = actor.agency_filter() {
        filter.agency = Some(own);
    }
    let mut conn = app.store.conn().await?;
    let rows = audit::list(&mut conn, &filter, before, limit + 1).await?;
    Ok(paging::page(rows, limit, |e| paging::encode(&[&e.content.seq.to_string()]), |e| e))
}

pub async fn verify(app: &App) -> Result<Verification, AppError> {
    Ok(audit::verify(&app.store, 1000).await?)
}
