//! Vouchers: issued once per booking. The number's serial is the row's own sequence, and the
//! booking id is unique, so a job that issues again finds the first voucher and never makes a
//! second number.

use chrono::{DateTime, Datelike, Utc};
use domain::BookingId;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::entities::voucher;
use super::{Database, StoreError, Stored, with_pool};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voucher {
    /// `VCH-2027-000123`.
    pub number: String,
    pub booking_id: BookingId,
    pub issued_at: DateTime<Utc>,
}

fn from_model(m: voucher::Model) -> Result<Voucher, StoreError> {
    let row = || format!("vouchers/{}", m.number);
    Ok(Voucher { booking_id: m.booking_id.parse().stored(&row)?, number: m.number, issued_at: m.issued_at })
}

/// The booking's voucher, issued now if it has none yet. Safe to run concurrently: the second
/// writer finds the first one's voucher.
pub async fn issue(db: &Database, booking: &BookingId) -> Result<Voucher, StoreError> {
    if let Some(issued) = for_booking(db, booking).await? {
        return Ok(issued);
    }
    let now = super::now();
    with_pool!(db.pool(), p => {
        let mut tx = p.begin().await?;
        // The number needs the serial: a placeholder unique to the booking, replaced below.
        let serial: Option<i64> = sqlx::QueryBuilder::new("INSERT INTO vouchers (number, booking_id, issued_at) VALUES (")
            .push_bind(format!("pending:{booking}"))
            .push(", ")
            .push_bind(booking.as_str())
            .push(", ")
            .push_bind(now)
            .push(") ON CONFLICT (booking_id) DO NOTHING RETURNING seq")
            .build_query_scalar()
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(serial) = serial {
            sqlx::QueryBuilder::new("UPDATE vouchers SET number = ")
                .push_bind(domain::agency_event::voucher_number(now.year(), serial))
                .push(" WHERE seq = ")
                .push_bind(serial)
                .build()
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    });
    for_booking(db, booking).await?.ok_or(StoreError::NoOutcome)
}

pub async fn for_booking(db: &Database, booking: &BookingId) -> Result<Option<Voucher>, StoreError> {
    voucher::Entity::find()
        .filter(voucher::Column::BookingId.eq(booking.as_str()))
        .one(db.orm())
        .await?
        .map(from_model)
        .transpose()
}

pub async fn by_number(db: &Database, number: &str) -> Result<Option<Voucher>, StoreError> {
    voucher::Entity::find().filter(voucher::Column::Number.eq(number)).one(db.orm()).await?.map(from_model).transpose()
}
