//! Supplier-code translation: the tables that turn each supplier's room, board and status codes
//! into bookhub's own and back. No adapter ever translates a code itself; a job takes a
//! [`Translator`] for the supplier and uses it on the way out and on the way in.
//!
//! Rows are per supplier code. A configured supplier with no rows yet is seeded with its
//! protocol's published codes ([`seeds`]); after that the rows are data, not code.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use domain::booking::Booking;
use domain::supplier::{SupplierBookingRequest, SupplierGuest, SupplierRoom};
use domain::{Board, BookingStatus, RoomType, SupplierCode};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter, Set};

pub mod entity;
pub mod seeds;

domain::code_enum! {
    /// What a code is.
    pub enum CodeKind ("code kind") {
        RoomType = "room_type",
        Board = "board",
        Status = "status",
    }
}

/// Codes with no mapping row, each with its kind: the message staff act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unmapped codes for {supplier}: {}", missing.iter().map(|(k, c)| format!("{}:{c}", k.as_str())).collect::<Vec<_>>().join(", "))]
pub struct Unmapped {
    pub supplier: SupplierCode,
    pub missing: Vec<(CodeKind, String)>,
}

/// Why a mapping could not be set.
#[derive(Debug, thiserror::Error)]
pub enum UpsertError {
    #[error("not one of bookhub's codes of that kind")]
    UnknownBookhubCode,
    #[error(transparent)]
    Store(#[from] MappingError),
}

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

/// Each supplier's translator and when it was read.
type Cache = HashMap<SupplierCode, (Instant, Arc<Translator>)>;

/// The mapping rows of every supplier, read through a short-lived cache.
#[derive(Debug, Clone)]
pub struct Mappings {
    db: DatabaseConnection,
    ttl: Duration,
    cache: Arc<RwLock<Cache>>,
}

impl Mappings {
    /// `ttl` bounds how long an edit by another process takes to be seen here.
    pub fn new(db: DatabaseConnection, ttl: Duration) -> Self {
        Mappings { db, ttl, cache: Arc::default() }
    }

    /// Seeds a supplier's rows from its protocol's published codes, once: a supplier that has
    /// any rows is left alone, so staff edits survive restarts. Returns the rows written.
    pub async fn seed_if_empty(&self, supplier: &SupplierCode, protocol: &str) -> Result<u64, MappingError> {
        let existing =
            entity::Entity::find().filter(entity::Column::Supplier.eq(supplier.as_str())).count(&self.db).await?;
        let rows = seeds::for_protocol(protocol);
        if existing > 0 || rows.is_empty() {
            return Ok(0);
        }
        let now = chrono::Utc::now();
        let models = rows.iter().map(|(kind, supplier_code, bookhub_code)| entity::ActiveModel {
            supplier: Set(supplier.as_str().to_owned()),
            kind: Set(kind.as_str().to_owned()),
            supplier_code: Set((*supplier_code).to_owned()),
            bookhub_code: Set((*bookhub_code).to_owned()),
            updated_at: Set(now),
        });
        // Processes starting together may both seed: the second one's rows are ignored.
        let conflict =
            OnConflict::columns([entity::Column::Supplier, entity::Column::Kind, entity::Column::SupplierCode])
                .do_nothing()
                .to_owned();
        entity::Entity::insert_many(models).on_conflict(conflict).exec_without_returning(&self.db).await?;
        self.invalidate();
        Ok(rows.len() as u64)
    }

    /// The supplier's current rows as a translator (cached for the TTL).
    pub async fn translator(&self, supplier: &SupplierCode) -> Result<Arc<Translator>, MappingError> {
        if let Some((at, t)) = self.cache.read().expect("never poisoned").get(supplier)
            && at.elapsed() < self.ttl
        {
            return Ok(t.clone());
        }
        self.fresh_translator(supplier).await
    }

    /// The supplier's rows read now, bypassing the cache: before concluding a code has no
    /// mapping, since another process may have just added it.
    pub async fn fresh_translator(&self, supplier: &SupplierCode) -> Result<Arc<Translator>, MappingError> {
        let rows = entity::Entity::find().filter(entity::Column::Supplier.eq(supplier.as_str())).all(&self.db).await?;
        let translator = Arc::new(Translator::from_rows(
            supplier.clone(),
            rows.into_iter().filter_map(|r| Some((r.kind.parse::<CodeKind>().ok()?, r.supplier_code, r.bookhub_code))),
        ));
        self.cache.write().expect("never poisoned").insert(supplier.clone(), (Instant::now(), translator.clone()));
        Ok(translator)
    }

    /// Sets what a supplier code means (a new row or a changed one). The bookhub code must be
    /// one of bookhub's codes of that kind.
    pub async fn upsert(
        &self,
        supplier: &SupplierCode,
        kind: CodeKind,
        supplier_code: &str,
        bookhub_code: &str,
    ) -> Result<(), UpsertError> {
        let valid = match kind {
            CodeKind::RoomType => bookhub_code.parse::<RoomType>().is_ok(),
            CodeKind::Board => bookhub_code.parse::<Board>().is_ok(),
            CodeKind::Status => bookhub_code.parse::<BookingStatus>().is_ok(),
        };
        if !valid {
            return Err(UpsertError::UnknownBookhubCode);
        }
        let row = entity::ActiveModel {
            supplier: Set(supplier.as_str().to_owned()),
            kind: Set(kind.as_str().to_owned()),
            supplier_code: Set(supplier_code.to_owned()),
            bookhub_code: Set(bookhub_code.to_owned()),
            updated_at: Set(chrono::Utc::now()),
        };
        let conflict =
            OnConflict::columns([entity::Column::Supplier, entity::Column::Kind, entity::Column::SupplierCode])
                .update_columns([entity::Column::BookhubCode, entity::Column::UpdatedAt])
                .to_owned();
        entity::Entity::insert(row)
            .on_conflict(conflict)
            .exec_without_returning(&self.db)
            .await
            .map_err(MappingError::Db)?;
        self.invalidate();
        Ok(())
    }

    /// Forgets cached rows (after an edit in this process).
    pub fn invalidate(&self) {
        self.cache.write().expect("never poisoned").clear();
    }
}

/// One supplier's mapping rows, both ways.
#[derive(Debug, Clone)]
pub struct Translator {
    supplier: SupplierCode,
    inbound: HashMap<(CodeKind, String), String>,
    outbound: HashMap<(CodeKind, String), String>,
}

impl Translator {
    pub fn from_rows(supplier: SupplierCode, rows: impl IntoIterator<Item = (CodeKind, String, String)>) -> Self {
        let mut t = Translator { supplier, inbound: HashMap::new(), outbound: HashMap::new() };
        let mut rows: Vec<_> = rows.into_iter().collect();
        // When several supplier codes mean one bookhub code, the request uses the first in
        // code order: stable whatever order the database returns.
        rows.sort();
        for (kind, supplier_code, bookhub_code) in rows {
            t.outbound.entry((kind, bookhub_code.clone())).or_insert_with(|| supplier_code.clone());
            t.inbound.insert((kind, supplier_code), bookhub_code);
        }
        t
    }

    fn unmapped(&self, missing: Vec<(CodeKind, String)>) -> Unmapped {
        Unmapped { supplier: self.supplier.clone(), missing }
    }

    fn out(&self, kind: CodeKind, bookhub_code: &str, missing: &mut Vec<(CodeKind, String)>) -> String {
        self.outbound.get(&(kind, bookhub_code.to_owned())).cloned().unwrap_or_else(|| {
            missing.push((kind, bookhub_code.to_owned()));
            String::new()
        })
    }

    /// The booking as the supplier's request, in the supplier's codes.
    pub fn request(&self, booking: &Booking) -> Result<SupplierBookingRequest, Unmapped> {
        let d = &booking.details;
        let mut missing = Vec::new();
        let guest = |g: &domain::booking::Guest| SupplierGuest {
            first_name: g.first_name.clone(),
            last_name: g.last_name.clone(),
            email: g.email.as_ref().map(|e| e.as_str().to_owned()),
        };
        let rooms = d
            .rooms
            .iter()
            .map(|r| SupplierRoom {
                room_type_code: self.out(CodeKind::RoomType, r.room_type.as_str(), &mut missing),
                board_code: self.out(CodeKind::Board, r.board.as_str(), &mut missing),
                guests: r.guests.iter().map(guest).collect(),
            })
            .collect();
        if !missing.is_empty() {
            return Err(self.unmapped(missing));
        }
        Ok(SupplierBookingRequest {
            client_reference: booking.id.to_string(),
            hotel_code: d.hotel_code.clone(),
            check_in: d.check_in,
            check_out: d.check_out,
            holder: guest(d.lead_guest()),
            rooms,
            expected_total: d.total,
        })
    }

    /// The bookhub status a supplier status code means.
    pub fn status(&self, supplier_code: &str) -> Result<BookingStatus, Unmapped> {
        let status = self.inbound.get(&(CodeKind::Status, supplier_code.to_owned())).and_then(|code| code.parse().ok());
        status.ok_or_else(|| self.unmapped(vec![(CodeKind::Status, supplier_code.to_owned())]))
    }

    /// A supplier's (room type, board) pair in bookhub's codes.
    pub fn room(&self, room_type: &str, board: &str) -> Result<(RoomType, Board), Unmapped> {
        let room = self.inbound.get(&(CodeKind::RoomType, room_type.to_owned())).and_then(|c| c.parse().ok());
        let meal = self.inbound.get(&(CodeKind::Board, board.to_owned())).and_then(|c| c.parse().ok());
        match (room, meal) {
            (Some(r), Some(b)) => Ok((r, b)),
            (r, b) => {
                let mut missing = Vec::new();
                if r.is_none() {
                    missing.push((CodeKind::RoomType, room_type.to_owned()));
                }
                if b.is_none() {
                    missing.push((CodeKind::Board, board.to_owned()));
                }
                Err(self.unmapped(missing))
            }
        }
    }
}
