//! `/v1/reconciliations` and `/v1/reconciliation/mismatches`: finance and staff start a
//! reconciliation run with a supplier over a window (it runs in the background), follow it,
//! list the mismatches runs found, and resolve one with a note; finance uploads the suppliers'
//! statements, which runs compare too.

use actix_web::{HttpRequest, HttpResponse, web};
use adapters::store::reconciliation::{self, MismatchRecord, MismatchStatus, Resolved, Run, StatementLine, Upload};
use chrono::{DateTime, Utc};
use domain::{FieldError, Money, ReconciliationRunId};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::auth::{FinanceCaller, FinanceOrStaffCaller};
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, RawBody};
use crate::pagination;
use crate::routes::mapping_files::is_csv;
use crate::routes::mappings::supplier;
use crate::routes::{Endpoint, Method, Page, given};
use mappings::csv::{CsvRejected, RowError};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    /// A configured supplier's code.
    #[schema(example = "jsonrest")]
    pub supplier: String,
    /// Bookings modified from (RFC 3339).
    pub from: DateTime<Utc>,
    /// … to (RFC 3339); at most 31 days after `from`.
    pub to: DateTime<Utc>,
}

/// A run and, once done, what it found.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    #[schema(example = "rcn_0193a5b2c4d27e8f9a0b1c2d3e4f5a6b")]
    pub id: String,
    pub supplier: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// `running`, `done` or `failed`.
    #[schema(example = "done")]
    pub status: &'static str,
    /// Per reason code (`amount_differs`, `missing_at_supplier`, …), plus `healed` (bookings
    /// brought to the supplier's status through the state machine) and `unmapped` (supplier
    /// bookings whose codes no mapping translates).
    #[schema(value_type = Object)]
    pub counts: std::collections::BTreeMap<String, u64>,
    /// Why a failed run failed.
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<Run> for RunView {
    fn from(r: Run) -> Self {
        RunView {
            id: r.id.to_string(),
            supplier: r.supplier.to_string(),
            from: r.window_from,
            to: r.window_to,
            status: r.status.as_str(),
            counts: r.counts,
            error: r.error,
            started_at: r.started_at,
            finished_at: r.finished_at,
        }
    }
}

/// Start a reconciliation run (finance or staff).
///
/// The run fetches the supplier's bookings modified in the window, compares them with
/// bookhub's, heals what the supplier owns (a confirmation, rejection or cancellation whose
/// webhook never came) and records every other difference as a mismatch. It runs in the
/// background: follow it at `GET /v1/reconciliations/{id}`.
#[utoipa::path(post, path = "/v1/reconciliations", tag = "reconciliation", request_body = StartRun,
    responses(
        (status = 202, description = "Started", body = RunView),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than the limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown supplier, or a window that is empty or longer than 31 days", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn start(
    state: web::Data<AppState>,
    _caller: FinanceOrStaffCaller,
    body: JsonBody<StartRun, 4096>,
) -> Result<HttpResponse, ApiError> {
    let StartRun { supplier: code, from, to } = body.parsed;
    let invalid = |field: &str, message: &str| {
        ApiError::Validation(FieldError { field: field.into(), code: "invalid", message: message.into() }.into())
    };
    let supplier = supplier(&state, &code).map_err(|_| invalid("supplier", "not a configured supplier"))?;
    if !jobs::reconcile::is_window(from, to) {
        return Err(invalid("to", "must be after `from`, at most 31 days after it"));
    }
    let run = jobs::reconcile::start_queued(&state.db, &supplier, from, to).await?;
    Ok(HttpResponse::Accepted()
        .insert_header(("location", format!("/v1/reconciliations/{}", run.id)))
        .json(RunView::from(run)))
}

/// One run: where it stands and, when done, its counts (finance or staff).
#[utoipa::path(get, path = "/v1/reconciliations/{id}", tag = "reconciliation",
    params(("id" = String, Path, description = "`rcn_…`")),
    responses(
        (status = 200, body = RunView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    _caller: FinanceOrStaffCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: ReconciliationRunId = id.parse().map_err(|_| ApiError::NotFound("reconciliation run"))?;
    let run = reconciliation::find(&state.db, &id).await?.ok_or(ApiError::NotFound("reconciliation run"))?;
    Ok(HttpResponse::Ok().json(RunView::from(run)))
}

/// A difference a run found.
#[derive(Debug, Serialize, ToSchema)]
pub struct MismatchView {
    pub id: i64,
    pub supplier: String,
    /// `missing_at_supplier`, `missing_in_bookhub`, `status_differs`, `amount_differs`,
    /// `currency_differs`, `dates_differs` or `rooms_differs`.
    #[schema(example = "amount_differs")]
    pub reason: &'static str,
    pub booking_id: Option<String>,
    pub supplier_reference: Option<String>,
    /// bookhub's value, e.g. `450.00 EUR`.
    pub ours: Option<String>,
    /// The supplier's value.
    pub theirs: Option<String>,
    /// `open`, `resolved` (by staff, with a note) or `closed` (a later run no longer found it).
    #[schema(value_type = MismatchStatusCode)]
    pub status: &'static str,
    /// The run that first found it, and the last one that did.
    pub first_run: String,
    pub last_run: String,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Where a mismatch stands.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MismatchStatusCode {
    Open,
    Resolved,
    Closed,
}

impl From<MismatchRecord> for MismatchView {
    fn from(m: MismatchRecord) -> Self {
        MismatchView {
            id: m.id,
            supplier: m.supplier,
            reason: m.reason.as_str(),
            booking_id: m.booking_id,
            supplier_reference: m.supplier_reference,
            ours: m.ours,
            theirs: m.theirs,
            status: m.status.as_str(),
            first_run: m.first_run,
            last_run: m.last_run,
            note: m.note,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct MismatchParams {
    /// Only mismatches in this status; empty means any.
    #[param(value_type = Option<MismatchStatusCode>)]
    pub status: Option<String>,
    /// A supplier's code; empty means any.
    #[param(max_length = 64, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub supplier: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// List mismatches, newest first (finance or staff).
#[utoipa::path(get, path = "/v1/reconciliation/mismatches", tag = "reconciliation", params(MismatchParams),
    responses(
        (status = 200, body = Page<MismatchView>),
        (status = 400, description = "A bad status, supplier, limit or cursor", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn mismatches(
    state: web::Data<AppState>,
    _caller: FinanceOrStaffCaller,
    params: web::Query<MismatchParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = pagination::limit(params.limit)?;
    let status = given(&params.status)
        .map(|s| {
            s.parse::<MismatchStatus>().map_err(|e| ApiError::bad_request("invalid_status", format!("status: {e}")))
        })
        .transpose()?;
    let supplier = given(&params.supplier);
    if supplier.is_some_and(|s| s.len() > 64 || s.chars().any(char::is_control)) {
        return Err(ApiError::bad_request("invalid_supplier", "supplier: not a supplier code"));
    }
    let before: Option<i64> = given(&params.cursor).map(pagination::decode_cursor).transpose()?;
    let mut rows = reconciliation::mismatches(&state.db, status, supplier, before, limit + 1).await?;
    let next_cursor = adapters::store::next_page(&mut rows, limit, |m| pagination::encode_cursor(&m.id.to_string()));
    Ok(HttpResponse::Ok().json(Page { data: rows.into_iter().map(MismatchView::from).collect(), next_cursor }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    /// What was done about it, for whoever reads it next (1 to 1,000 characters).
    #[schema(example = "Supplier corrected the amount on their side")]
    pub note: String,
}

/// Resolve an open mismatch with a note (finance or staff).
#[utoipa::path(post, path = "/v1/reconciliation/mismatches/{id}/resolve", tag = "reconciliation",
    params(("id" = i64, Path, description = "The mismatch's id")),
    request_body = Resolve,
    responses(
        (status = 200, description = "Resolved", body = MismatchView),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not open (resolved, or closed by a later run)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than the limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An empty or overlong note", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn resolve(
    state: web::Data<AppState>,
    _caller: FinanceOrStaffCaller,
    id: web::Path<String>,
    body: JsonBody<Resolve, 8192>,
) -> Result<HttpResponse, ApiError> {
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound("mismatch"))?;
    let note = body.parsed.note.trim();
    if note.is_empty() || note.chars().count() > 1000 {
        let error = FieldError { field: "note".into(), code: "invalid", message: "1 to 1,000 characters".into() };
        return Err(ApiError::Validation(error.into()));
    }
    match reconciliation::resolve(&state.db, id, note).await? {
        Resolved::Done(m) => Ok(HttpResponse::Ok().json(MismatchView::from(m))),
        Resolved::NotOpen(m) => {
            Err(ApiError::Conflict { code: "not_open", detail: format!("this mismatch is {}, not open", m.status) })
        }
        Resolved::NotFound => Err(ApiError::NotFound("mismatch")),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct StatementParams {
    /// The configured supplier whose statement this is.
    pub supplier: String,
}

/// An uploaded statement.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatementStored {
    #[schema(example = "stm_0193a5b2c4d27e8f9a0b1c2d3e4f5a6b")]
    pub statement_id: String,
    pub supplier: String,
    pub lines: usize,
    /// The same file was uploaded before: this is that statement, and nothing more was stored.
    pub again: bool,
}

/// The columns of a statement, all required.
const STATEMENT_COLUMNS: [&str; 6] =
    ["supplier_reference", "client_reference", "amount", "currency", "status", "billed_at"];

/// Upload a supplier's statement as CSV (finance).
///
/// Columns `supplier_reference,client_reference,amount,currency,status,billed_at` (any order;
/// `client_reference` may be empty; `billed_at` is a date, `YYYY-MM-DD`). Lines whose `status`
/// is `billed` bill their booking; runs then compare them with bookhub (`billed_but_cancelled`,
/// `billed_twice`, `billed_other_amount`, `billed_unknown`, `not_billed`). One bad row and
/// nothing is stored: 422 lists each problem with its row and column. The same file uploaded
/// again is the same statement (200), so its lines never bill twice.
#[utoipa::path(post, path = "/v1/reconciliation/statements", tag = "reconciliation", params(StatementParams),
    request_body(content = String, content_type = "text/csv"),
    responses(
        (status = 200, description = "The same file was uploaded before: that statement, nothing more stored", body = StatementStored),
        (status = 201, description = "Stored", body = StatementStored),
        (status = 400, description = "No `supplier`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than the limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `text/csv`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown supplier, or row errors (`row_errors`); nothing was stored", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn upload_statement(
    state: web::Data<AppState>,
    _caller: FinanceCaller,
    request: HttpRequest,
    params: web::Query<StatementParams>,
    body: RawBody,
) -> Result<HttpResponse, ApiError> {
    let supplier = supplier(&state, &params.supplier).map_err(|_| {
        let message = "name a configured supplier: ?supplier=…";
        ApiError::Validation(FieldError { field: "supplier".into(), code: "invalid", message: message.into() }.into())
    })?;
    if !is_csv(&request) {
        return Err(ApiError::NotCsv);
    }
    let lines = parse_statement(&body.0).map_err(ApiError::CsvRejected)?;
    let digest = hex::encode(sha2::Sha256::digest(&body.0));
    let (id, upload) = reconciliation::store_statement(&state.db, &supplier, &digest, &lines).await?;
    let again = upload == Upload::Again;
    let stored =
        StatementStored { statement_id: id.to_string(), supplier: supplier.to_string(), lines: lines.len(), again };
    Ok(if again { HttpResponse::Ok() } else { HttpResponse::Created() }.json(stored))
}

/// A statement's lines, or every problem in the file.
fn parse_statement(bytes: &[u8]) -> Result<Vec<StatementLine>, CsvRejected> {
    let mut lines = Vec::new();
    mappings::csv::read(bytes, &STATEMENT_COLUMNS, STATEMENT_COLUMNS.len(), |row, fields, rejected| {
        let text = |i: usize| fields[i].map(str::trim).unwrap_or_default();
        let mut problem = |column: usize, code: &'static str, reason: String| {
            rejected.push(RowError { row, column: Some(STATEMENT_COLUMNS[column].into()), code, reason })
        };
        let reference = text(0);
        if reference.is_empty() || reference.len() > 100 {
            problem(0, "invalid", "must be the supplier's reference (1 to 100 characters)".into());
        }
        let amount = Money::parse(text(2), text(3)).map_err(|e| problem(2, "invalid_amount", e.to_string())).ok();
        let status = text(4);
        if status.is_empty() || status.len() > 32 {
            problem(4, "invalid", "must say what the line is, e.g. `billed` (1 to 32 characters)".into());
        }
        let billed_at = chrono::NaiveDate::parse_from_str(text(5), "%Y-%m-%d")
            .map_err(|_| problem(5, "invalid_date", format!("{:?} is not a date (YYYY-MM-DD)", text(5))))
            .ok();
        let client = text(1);
        if let (Some(amount), Some(billed_at), false) = (amount, billed_at, reference.is_empty() || status.is_empty()) {
            lines.push(StatementLine {
                supplier_reference: reference.to_owned(),
                client_reference: (!client.is_empty()).then(|| client.to_owned()),
                amount,
                status: status.to_ascii_lowercase(),
                billed_at,
            });
        }
    })?;
    Ok(lines)
}

pub const ROUTES: &[Endpoint] = &[
    Endpoint { method: Method::Post, path: "/v1/reconciliation/statements", handler: || web::to(upload_statement) },
    Endpoint { method: Method::Post, path: "/v1/reconciliations", handler: || web::to(start) },
    Endpoint { method: Method::Get, path: "/v1/reconciliations/{id}", handler: || web::to(get) },
    Endpoint { method: Method::Get, path: "/v1/reconciliation/mismatches", handler: || web::to(mismatches) },
    Endpoint { method: Method::Post, path: "/v1/reconciliation/mismatches/{id}/resolve", handler: || web::to(resolve) },
];
