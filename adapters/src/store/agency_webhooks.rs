//! Each agency's webhook endpoint: its callback URL, its signing secrets (the current one and,
//! for a grace period after a rotation, the previous one), and whether it is disabled.

use chrono::{DateTime, Utc};
use domain::AgencyId;
use domain::agency_event::EndpointVerdict;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};

use super::entities::agency_webhook;
use super::{Database, StoreError, Stored};

/// An agency's endpoint. `Debug` names the agency only: it holds the signing secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub agency_id: AgencyId,
    pub url: Option<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_until: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").field("agency_id", &self.agency_id).finish_non_exhaustive()
    }
}

impl Endpoint {
    /// The secrets that sign a delivery made at `now`: the current one, and the previous one
    /// while its grace period lasts.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let (Some(previous), Some(until)) = (&self.previous_secret, self.previous_until)
            && now < until
        {
            secrets.push(previous);
        }
        secrets
    }

    /// Where deliveries go: the URL, unless the endpoint is disabled.
    pub fn target(&self) -> Option<&str> {
        self.url.as_deref().filter(|_| self.disabled_at.is_none())
    }
}

fn from_model(m: agency_webhook::Model) -> Result<Endpoint, StoreError> {
    let row = || format!("agency_webhooks/{}", m.agency_id);
    Ok(Endpoint {
        agency_id: m.agency_id.parse().stored(&row)?,
        url: m.url,
        secret: m.secret,
        previous_secret: m.previous_secret,
        previous_until: m.previous_until,
        disabled_at: m.disabled_at,
        disabled_reason: m.disabled_reason,
        failing_since: m.failing_since,
        updated_at: m.updated_at,
    })
}

pub async fn find(db: &Database, agency: &AgencyId) -> Result<Option<Endpoint>, StoreError> {
    agency_webhook::Entity::find_by_id(agency.as_str()).one(db.orm()).await?.map(from_model).transpose()
}

/// Sets (or clears) the agency's callback URL and enables it. An agency without an endpoint
/// gets `fresh_secret` as its signing secret, returned once as the second value.
pub async fn set_url(
    db: &Database,
    agency: &AgencyId,
    url: Option<&str>,
    fresh_secret: String,
) -> Result<(Endpoint, Option<String>), StoreError> {
    let now = super::now();
    let row = agency_webhook::ActiveModel {
        agency_id: Set(agency.to_string()),
        url: Set(url.map(str::to_owned)),
        secret: Set(fresh_secret.clone()),
        previous_secret: Set(None),
        previous_until: Set(None),
        disabled_at: Set(None),
        disabled_reason: Set(None),
        failing_since: Set(None),
        updated_at: Set(now),
    };
    let existed = find(db, agency).await?.is_some();
    agency_webhook::Entity::insert(row)
        .on_conflict(
            OnConflict::column(agency_webhook::Column::AgencyId)
                .update_columns([
                    agency_webhook::Column::Url,
                    agency_webhook::Column::DisabledAt,
                    agency_webhook::Column::DisabledReason,
                    agency_webhook::Column::FailingSince,
                    agency_webhook::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db.orm())
        .await?;
    let endpoint = find(db, agency).await?.ok_or(StoreError::NoOutcome)?;
    let shown = (!existed && endpoint.secret == fresh_secret).then_some(fresh_secret);
    Ok((endpoint, shown))
}

/// Makes `new_secret` the signing secret; the current one keeps signing beside it until
/// `grace_until`. `None` when the agency has no endpoint.
pub async fn rotate(
    db: &Database,
    agency: &AgencyId,
    new_secret: &str,
    grace_until: DateTime<Utc>,
) -> Result<Option<Endpoint>, StoreError> {
    let updated = agency_webhook::Entity::update_many()
        .col_expr(agency_webhook::Column::PreviousSecret, Expr::col(agency_webhook::Column::Secret))
        .col_expr(agency_webhook::Column::PreviousUntil, Expr::value(grace_until))
        .col_expr(agency_webhook::Column::Secret, Expr::value(new_secret))
        .col_expr(agency_webhook::Column::UpdatedAt, Expr::value(super::now()))
        .filter(agency_webhook::Column::AgencyId.eq(agency.as_str()))
        .exec(db.orm())
        .await?;
    if updated.rows_affected == 0 {
        return Ok(None);
    }
    find(db, agency).await
}

/// Records what an attempt said about the endpoint. `true` when this disabled it (it was
/// enabled before), so the caller tells the agency once.
pub async fn record_verdict(db: &Database, agency: &AgencyId, verdict: EndpointVerdict) -> Result<bool, StoreError> {
    let now = super::now();
    let update = agency_webhook::Entity::update_many().filter(agency_webhook::Column::AgencyId.eq(agency.as_str()));
    let update = match verdict {
        EndpointVerdict::Healthy => {
            update.col_expr(agency_webhook::Column::FailingSince, Expr::value(None::<DateTime<Utc>>))
        }
        EndpointVerdict::Failing => update
            .col_expr(agency_webhook::Column::FailingSince, Expr::value(now))
            .filter(agency_webhook::Column::FailingSince.is_null()),
        EndpointVerdict::Disable(reason) => update
            .col_expr(agency_webhook::Column::DisabledAt, Expr::value(now))
            .col_expr(agency_webhook::Column::DisabledReason, Expr::value(reason))
            .filter(agency_webhook::Column::DisabledAt.is_null()),
    };
    let affected = update.exec(db.orm()).await?.rows_affected;
    Ok(matches!(verdict, EndpointVerdict::Disable(_)) && affected == 1)
}

/// Enables the endpoint again (and forgets its failure streak). `false` when there is none.
pub async fn enable(db: &Database, agency: &AgencyId) -> Result<bool, StoreError> {
    let updated = agency_webhook::Entity::update_many()
        .col_expr(agency_webhook::Column::DisabledAt, Expr::value(None::<DateTime<Utc>>))
        .col_expr(agency_webhook::Column::DisabledReason, Expr::value(None::<String>))
        .col_expr(agency_webhook::Column::FailingSince, Expr::value(None::<DateTime<Utc>>))
        .filter(agency_webhook::Column::AgencyId.eq(agency.as_str()))
        .exec(db.orm())
        .await?;
    Ok(updated.rows_affected == 1)
}
