//! `/v1/invoices` and `/v1/reports/finance`: finance lists the invoice lines and credit notes
//! issued to agencies, and downloads the finance report for a period as CSV or XLSX.

use actix_web::{HttpResponse, web};
use adapters::store::invoices::{self, Invoice, InvoiceQuery};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use jobs::finance_report::{FinanceReport, Period, XLSX};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::auth::FinanceCaller;
use crate::error::{ApiError, Problem};
use crate::pagination;
use crate::routes::vouchers::BinaryFile;
use crate::routes::{Endpoint, Method, Page, given};

/// The longest period one report covers.
const MAX_PERIOD_DAYS: i64 = 366;

/// The most bookings the XLSX's Bookings sheet holds (a sheet's 1,048,576 rows, less its header).
const MAX_SHEET_ROWS: usize = 1_048_575;

/// An invoice line or a credit note.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceView {
    #[schema(example = "INV-2027-000123")]
    pub number: String,
    /// `invoice` or `credit_note` (which credits the booking's invoice line).
    #[schema(example = "invoice")]
    pub kind: &'static str,
    pub booking_id: String,
    pub agency_id: String,
    pub supplier: String,
    /// What the agency is billed (or credited), exact decimal.
    #[schema(example = "450.00")]
    pub amount: String,
    #[schema(example = "EUR")]
    pub currency: &'static str,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub issued_at: DateTime<Utc>,
}

impl From<Invoice> for InvoiceView {
    fn from(i: Invoice) -> Self {
        InvoiceView {
            kind: i.kind.as_str(),
            booking_id: i.booking_id.to_string(),
            agency_id: i.agency_id.to_string(),
            supplier: i.supplier.to_string(),
            amount: i.amount.amount().to_string(),
            currency: i.amount.currency().code(),
            issue_date: i.issue_date,
            due_date: i.due_date,
            issued_at: i.issued_at,
            number: i.number,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct InvoiceParams {
    /// Issued on or after this day (YYYY-MM-DD).
    #[param(value_type = Option<NaiveDate>)]
    pub from: Option<String>,
    /// Issued on or before this day (YYYY-MM-DD).
    #[param(value_type = Option<NaiveDate>)]
    pub to: Option<String>,
    /// One agency's documents only.
    #[param(pattern = r"^ag_[0-9a-z]{26,32}$", example = "ag_0193a5b2c4d27e8f9a0b1c2d3e4f5a6b")]
    pub agency: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// List invoice lines and credit notes, in number order (finance).
///
/// Each confirmed booking is invoiced once, to its agency, for its total; a confirmed booking
/// cancelled later gets one credit note. Each document's `invoice.issued` event is kept for
/// the accounting system.
#[utoipa::path(get, path = "/v1/invoices", tag = "finance", params(InvoiceParams),
    responses(
        (status = 200, body = Page<InvoiceView>),
        (status = 400, description = "A bad date, agency, limit or cursor", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn list(
    state: web::Data<AppState>,
    _caller: FinanceCaller,
    params: web::Query<InvoiceParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = pagination::limit(params.limit)?;
    let agency = given(&params.agency)
        .map(|a| a.parse().map_err(|_| ApiError::bad_request("invalid_agency", "agency: not an agency id")))
        .transpose()?;
    let query = InvoiceQuery {
        from: params.from.as_deref().map(|d| day("from", d)).transpose()?,
        to: params.to.as_deref().map(|d| day("to", d)).transpose()?,
        agency,
        after: given(&params.cursor).map(pagination::decode_cursor).transpose()?,
    };
    let mut rows = invoices::list(&state.db, &query, limit + 1).await?;
    let next_cursor =
        adapters::store::next_page(&mut rows, limit, |(seq, _)| pagination::encode_cursor(&seq.to_string()));
    Ok(HttpResponse::Ok()
        .json(Page { data: rows.into_iter().map(|(_, i)| InvoiceView::from(i)).collect(), next_cursor }))
}

/// The report's file format.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportFormat {
    /// The totals, amounts as exact decimal text.
    #[default]
    Csv,
    /// Three sheets: Totals, Bookings and Mismatches.
    Xlsx,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ReportParams {
    /// The first day (YYYY-MM-DD, UTC) of bookings made and documents issued.
    #[param(value_type = NaiveDate)]
    pub from: String,
    /// The last day, included; at most 366 days after `from`.
    #[param(value_type = NaiveDate)]
    pub to: String,
    /// `csv` (default) or `xlsx`.
    #[param(value_type = Option<ReportFormat>)]
    pub format: Option<String>,
}

/// The finance report for a period, as CSV or XLSX (finance).
///
/// Per agency, supplier and currency: the bookings made by status, the sell total of those
/// confirmed, the supplier cost where a statement bills it, the margin over those, what was
/// invoiced and credited, and the open mismatches. Amounts of different currencies are never
/// added together.
#[utoipa::path(get, path = "/v1/reports/finance", tag = "finance", params(ReportParams),
    responses(
        (status = 200, description = "The report", content((String = "text/csv"), (BinaryFile = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
        (status = 400, description = "A bad date or format, a period that is reversed or longer than 366 days, or too many bookings for one XLSX sheet", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn report(
    state: web::Data<AppState>,
    _caller: FinanceCaller,
    params: web::Query<ReportParams>,
) -> Result<HttpResponse, ApiError> {
    report_file(&state, &params).await
}

/// The report `params` ask for, as a download: the API's answer, and the admin UI's.
pub async fn report_file(state: &AppState, params: &ReportParams) -> Result<HttpResponse, ApiError> {
    let period = Period { from: day("from", &params.from)?, to: day("to", &params.to)? };
    if period.to < period.from || (period.to - period.from).num_days() > MAX_PERIOD_DAYS {
        return Err(ApiError::bad_request("invalid_period", "to: on or after `from`, at most 366 days after it"));
    }
    let format = match given(&params.format) {
        None | Some("csv") => ReportFormat::Csv,
        Some("xlsx") => ReportFormat::Xlsx,
        Some(_) => return Err(ApiError::bad_request("invalid_format", "format: csv or xlsx")),
    };
    let report = FinanceReport::build(&state.db, period).await?;
    let filename = report.filename(match format {
        ReportFormat::Csv => "csv",
        ReportFormat::Xlsx => "xlsx",
    });
    let (bytes, content_type) = match format {
        ReportFormat::Csv => (report.csv(), "text/csv; charset=utf-8"),
        ReportFormat::Xlsx if report.bookings.len() >= MAX_SHEET_ROWS => {
            let message = "the period holds more bookings than one sheet takes: ask for a shorter one, or for CSV";
            return Err(ApiError::bad_request("period_too_large", message));
        }
        ReportFormat::Xlsx => {
            // Writing the workbook is CPU work: off the HTTP worker.
            let xlsx = web::block(move || report.xlsx())
                .await
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("writing the XLSX: {e}")))?
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("writing the XLSX: {e}")))?;
            (xlsx, XLSX)
        }
    };
    let disposition = format!("attachment; filename=\"{filename}\"");
    Ok(HttpResponse::Ok().content_type(content_type).insert_header(("content-disposition", disposition)).body(bytes))
}

/// A query's day, `YYYY-MM-DD`, in the years both databases and the report's arithmetic take.
fn day(name: &'static str, text: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|d| (1900..=9999).contains(&d.year()))
        .ok_or_else(|| ApiError::bad_request("invalid_date", format!("{name}: a day, YYYY-MM-DD, from 1900 to 9999")))
}

pub const ROUTES: &[Endpoint] = &[
    Endpoint { method: Method::Get, path: "/v1/invoices", handler: || web::to(list) },
    Endpoint { method: Method::Get, path: "/v1/reports/finance", handler: || web::to(report) },
];
