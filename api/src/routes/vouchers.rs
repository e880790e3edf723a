//! Vouchers: the PDF of a confirmed booking for its agency and staff, and a public check of a
//! voucher's number (what its QR code opens) that shows no personal data.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use adapters::store::bookings::{self, Scope};
use adapters::store::{agencies, vouchers};
use chrono::NaiveDate;
use domain::{BookingId, BookingStatus};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::auth::BookingAccess;
use crate::error::{ApiError, Problem};
use crate::routes::{Endpoint, Method};

/// Download a booking's voucher (PDF).
///
/// Issued once the booking is confirmed; a cancelled booking's voucher still downloads, and
/// `verify` answers `void` for it.
#[utoipa::path(get, path = "/v1/bookings/{id}/voucher", tag = "vouchers",
    params(("id" = String, Path, description = "The booking id, `bk_…`")),
    responses(
        (status = 200, description = "The voucher", content_type = "application/pdf", body = BinaryFile),
        (status = 404, description = "No such booking for this caller, or no voucher issued yet", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn download(
    state: web::Data<AppState>,
    access: BookingAccess,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: BookingId = id.parse().map_err(|_| ApiError::NotFound("booking"))?;
    let booking = bookings::find(&state.db, &access.scope, &id).await?.ok_or(ApiError::NotFound("booking"))?;
    let voucher = vouchers::for_booking(&state.db, &booking.id).await?.ok_or(ApiError::NotFound("voucher"))?;
    let agency = agencies::find(&state.db, &booking.agency_id).await?.map(|a| a.name).unwrap_or_default();
    let pdf = state.jobs.voucher_pdf(&booking, &voucher, &agency).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header((header::CONTENT_DISPOSITION, format!("inline; filename=\"{}.pdf\"", voucher.number)))
        .insert_header((header::CACHE_CONTROL, "private, no-cache"))
        .body(pdf))
}

/// A file (a PDF, a workbook), for the OpenAPI document: a binary string.
pub struct BinaryFile;

impl utoipa::PartialSchema for BinaryFile {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .description(Some("A PDF document"))
            .into()
    }
}

impl ToSchema for BinaryFile {}

/// What a voucher's check shows: whether it holds, and the stay — no names, no prices.
#[derive(Debug, Serialize, ToSchema)]
pub struct VoucherCheck {
    #[schema(example = "VCH-2027-000123")]
    pub number: String,
    /// `valid` while the booking is confirmed; `void` once it is cancelled (or being cancelled).
    #[schema(example = "valid")]
    pub status: &'static str,
    pub hotel_code: String,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
}

/// Check a voucher (public).
///
/// What the voucher's QR code opens: anyone holding the number learns whether it is valid and
/// for which stay, and nothing about the guests.
#[utoipa::path(get, path = "/v1/vouchers/{number}/verify", tag = "vouchers",
    params(("number" = String, Path, description = "The voucher number, `VCH-…`")),
    responses(
        (status = 200, body = VoucherCheck),
        (status = 404, description = "No voucher with this number", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn verify(state: web::Data<AppState>, number: web::Path<String>) -> Result<HttpResponse, ApiError> {
    // `VCH-2027-000123`: anything else is no voucher, without asking the database.
    let shaped = number.len() <= 40
        && number.strip_prefix("VCH-").is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit() || b == b'-'));
    if !shaped {
        return Err(ApiError::NotFound("voucher"));
    }
    let voucher = vouchers::by_number(&state.db, &number).await?.ok_or(ApiError::NotFound("voucher"))?;
    let booking =
        bookings::find(&state.db, &Scope::All, &voucher.booking_id).await?.ok_or(ApiError::NotFound("voucher"))?;
    let status = if booking.status == BookingStatus::Confirmed { "valid" } else { "void" };
    let d = &booking.details;
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(VoucherCheck {
        number: voucher.number,
        status,
        hotel_code: d.hotel_code.clone(),
        check_in: d.check_in,
        check_out: d.check_out,
    }))
}

pub const ROUTES: &[Endpoint] = &[
    Endpoint { method: Method::Get, path: "/v1/bookings/{id}/voucher", handler: || web::to(download) },
    Endpoint { method: Method::Get, path: "/v1/vouchers/{number}/verify", handler: || web::to(verify) },
];
