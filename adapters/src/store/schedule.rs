//! Scheduled slots claimed across processes. Every process sharing the database evaluates the
//! same schedule; each tries to claim a slot with one insert on the `(job, supplier, slot)`
//! primary key, and only the process whose insert lands runs it (the insert commits with what
//! the slot starts: [`super::reconciliation::start_with_job`]). A scheduler such as apalis-cron
//! fires in every process, so without the claim each slot would run once per process.

use chrono::{DateTime, Utc};
use domain::SupplierCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::entities::schedule_claim as claim;
use super::{Database, StoreError};

/// The slots of `job` claimed for `supplier`, oldest first.
pub async fn claimed(db: &Database, job: &str, supplier: &SupplierCode) -> Result<Vec<DateTime<Utc>>, StoreError> {
    Ok(claim::Entity::find()
        .filter(claim::Column::Job.eq(job))
        .filter(claim::Column::Supplier.eq(supplier.as_str()))
        .order_by_asc(claim::Column::Slot)
        .all(db.orm())
        .await?
        .into_iter()
        .map(|c| c.slot)
        .collect())
}
