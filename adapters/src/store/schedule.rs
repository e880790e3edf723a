//! Scheduled slots claimed across processes. Every process sharing the database evaluates the
//! same schedule; each tries to claim a slot with one insert on the `(job, supplier, slot)`
//! primary key, and only the process whose insert lands runs it. A scheduler such as
//! apalis-cron fires in every process, so without the claim each slot would run once per process.

use chrono::{DateTime, SubsecRound, Utc};
use domain::SupplierCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, TryInsertResult};

use super::entities::schedule_claim as claim;
use super::{Database, StoreError};

/// Claims `slot` of `job` for `supplier`: `true` for the one caller that got it, `false` for
/// every other (in this process or another), whenever they ask.
pub async fn claim(db: &Database, job: &str, supplier: &SupplierCode, slot: DateTime<Utc>) -> Result<bool, StoreError> {
    let row = claim::ActiveModel {
        job: Set(job.to_owned()),
        supplier: Set(supplier.to_string()),
        // Slots fall on whole seconds; the key must not depend on how a clock rounds.
        slot: Set(slot.trunc_subsecs(0)),
        claimed_at: Set(super::now()),
    };
    let inserted = claim::Entity::insert(row).on_conflict_do_nothing().exec_without_returning(db.orm()).await?;
    Ok(matches!(inserted, TryInsertResult::Inserted(n) if n > 0))
}

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
