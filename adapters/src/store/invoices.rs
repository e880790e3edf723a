//! Invoice lines and credit notes issued to agencies. One of each kind per booking at most
//! (a unique index), numbered without gaps from the `billing` series row; issuing writes the document and its
//! `invoice.issued` operator event in one transaction, so the event is there exactly when the
//! document is, and issuing again writes neither.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use domain::billing::DocumentKind;
use domain::{AgencyId, Booking, BookingId, Money, OperatorEventId, SupplierCode};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::json;

use super::entities::invoice;
use super::{Database, StoreError, Stored, with_pool};

/// An issued invoice line or credit note. A credit note's `amount` is what it credits
/// (positive): the report subtracts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    /// `INV-2027-000123`, `CRN-2027-000124`.
    pub number: String,
    pub kind: DocumentKind,
    pub booking_id: BookingId,
    pub agency_id: AgencyId,
    pub supplier: SupplierCode,
    pub amount: Money,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub issued_at: DateTime<Utc>,
}

fn from_model(m: invoice::Model) -> Result<Invoice, StoreError> {
    let row = || format!("invoices/{}", m.number);
    Ok(Invoice {
        kind: m.kind.parse().stored(&row)?,
        booking_id: m.booking_id.parse().stored(&row)?,
        agency_id: m.agency_id.parse().stored(&row)?,
        supplier: m.supplier.parse().stored(&row)?,
        amount: Money::parse(&m.amount, &m.currency).stored(&row)?,
        issue_date: m.issue_date,
        due_date: m.due_date,
        issued_at: m.issued_at,
        number: m.number,
    })
}

/// The event an accounting system receives for `invoice`.
pub fn issued_event(invoice: &Invoice) -> serde_json::Value {
    json!({
        "number": invoice.number,
        "kind": invoice.kind.as_str(),
        "booking_id": invoice.booking_id.as_str(),
        "agency_id": invoice.agency_id.as_str(),
        "supplier": invoice.supplier.as_str(),
        "amount": invoice.amount.amount().to_string(),
        "currency": invoice.amount.currency().code(),
        "issue_date": invoice.issue_date,
        "due_date": invoice.due_date,
    })
}

/// Issues `booking`'s document of `kind`, for its total, dated today and due `terms_days`
/// later, with its `invoice.issued` event; `None` when it was issued before (by this job's
/// earlier run or a concurrent one). The booking is read as it is now: its total is final
/// once confirmed.
pub async fn issue(
    db: &Database,
    booking: &Booking,
    kind: DocumentKind,
    terms_days: u32,
) -> Result<Option<Invoice>, StoreError> {
    let now = super::now();
    let issue_date = now.date_naive();
    let total = &booking.details.total;
    let mut invoice = Invoice {
        number: String::new(),
        kind,
        booking_id: booking.id.clone(),
        agency_id: booking.agency_id.clone(),
        supplier: booking.details.supplier.clone(),
        amount: *total,
        issue_date,
        due_date: domain::billing::due_date(issue_date, terms_days),
        issued_at: now,
    };
    with_pool!(db.pool(), p => {
        let mut tx = p.begin().await?;
        // The series' next number, in this transaction: a repeat rolls it back with the
        // insert it did not make, so numbers have no gaps.
        let serial: i64 =
            sqlx::query_scalar("UPDATE document_series SET last = last + 1 WHERE series = 'billing' RETURNING last")
                .fetch_one(&mut *tx)
                .await?;
        invoice.number = kind.number(now.year(), serial);
        let mut insert = sqlx::QueryBuilder::new(
            "INSERT INTO invoices (number, kind, booking_id, agency_id, supplier, amount, currency, issue_date, \
             due_date, issued_at) VALUES (",
        );
        let mut values = insert.separated(", ");
        values.push_bind(&invoice.number).push_bind(kind.as_str()).push_bind(booking.id.as_str());
        values.push_bind(booking.agency_id.as_str()).push_bind(booking.details.supplier.as_str());
        values.push_bind(total.amount().to_string()).push_bind(total.currency().code());
        values.push_bind(invoice.issue_date).push_bind(invoice.due_date).push_bind(now);
        insert.push(") ON CONFLICT (booking_id, kind) DO NOTHING");
        if insert.build().execute(&mut *tx).await?.rows_affected() == 0 {
            return Ok(None);
        }
        sqlx::QueryBuilder::new("INSERT INTO operator_events (id, event_type, payload, created_at) VALUES (")
            .push_bind(OperatorEventId::generate().to_string())
            .push(", 'invoice.issued', ")
            .push_bind(sqlx::types::Json(issued_event(&invoice)))
            .push(", ")
            .push_bind(now)
            .push(")")
            .build()
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    });
    Ok(Some(invoice))
}

/// What finance lists: documents issued from `from` to `to` (inclusive), of one agency or all,
/// in number order, from after the serial `after`.
#[derive(Debug, Clone, Default)]
pub struct InvoiceQuery {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub agency: Option<AgencyId>,
    pub after: Option<i64>,
}

/// The documents `query` names, at most `limit`, each with its serial (the page cursor).
pub async fn list(db: &Database, query: &InvoiceQuery, limit: u64) -> Result<Vec<(i64, Invoice)>, StoreError> {
    let mut select = invoice::Entity::find();
    if let Some(from) = query.from {
        select = select.filter(invoice::Column::IssueDate.gte(from));
    }
    if let Some(to) = query.to {
        select = select.filter(invoice::Column::IssueDate.lte(to));
    }
    if let Some(agency) = &query.agency {
        select = select.filter(invoice::Column::AgencyId.eq(agency.as_str()));
    }
    if let Some(after) = query.after {
        select = select.filter(invoice::Column::Seq.gt(after));
    }
    select
        .order_by_asc(invoice::Column::Seq)
        .limit(limit)
        .all(db.orm())
        .await?
        .into_iter()
        .map(|m| Ok((m.seq, from_model(m)?)))
        .collect()
}

/// The documents issued for `booking`, oldest first.
pub async fn for_booking(db: &Database, booking: &BookingId) -> Result<Vec<Invoice>, StoreError> {
    invoice::Entity::find()
        .filter(invoice::Column::BookingId.eq(booking.as_str()))
        .order_by_asc(invoice::Column::Seq)
        .all(db.orm())
        .await?
        .into_iter()
        .map(from_model)
        .collect()
}
