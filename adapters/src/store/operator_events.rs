//! Events for bookhub's own systems (an accounting system, automations): `invoice.issued`
//! today. Each is written in the transaction of what it tells; the operational webhooks
//! deliver them.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::entities::operator_event;
use super::{Database, StoreError};

/// The payloads of the events of `event_type`, oldest first.
pub async fn of_type(db: &Database, event_type: &str) -> Result<Vec<serde_json::Value>, StoreError> {
    Ok(operator_event::Entity::find()
        .filter(operator_event::Column::EventType.eq(event_type))
        .order_by_asc(operator_event::Column::Seq)
        .all(db.orm())
        .await?
        .into_iter()
        .map(|m| m.payload)
        .collect())
}
