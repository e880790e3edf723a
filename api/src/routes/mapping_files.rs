//! A mapping table as a file and as a history: CSV export and all-or-nothing import (with a
//! dry run), the audit of every change, and the codes messages wait for (staff).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use adapters::store::{Database, webhooks};
use chrono::{DateTime, Utc};
use mappings::{AuditEntry, Edit, Mapping, Mappings, Plan, Table, Via};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::auth::StaffCaller;
use crate::error::{ApiError, Problem};
use crate::extract::RawBody;
use crate::pagination;
use crate::routes::mappings::{actor, apply, table};
use crate::routes::{Endpoint, Method, Page, given};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TablePath {
    /// A configured supplier's code.
    pub supplier: String,
    /// `room_type`, `board` or `status`.
    pub kind: String,
}

/// Export a table as CSV (staff).
///
/// Columns `supplier_code,bookhub_code,description,active,outbound`, rows in supplier-code
/// order; importing the file back changes nothing.
#[utoipa::path(get, path = "/v1/mappings/{supplier}/{kind}.csv", tag = "mappings", params(TablePath),
    responses(
        (status = 200, description = "The table", body = String, content_type = "text/csv"),
        (status = 404, description = "Unknown supplier or kind", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn export(
    state: web::Data<AppState>,
    _caller: StaffCaller,
    path: web::Path<TablePath>,
) -> Result<HttpResponse, ApiError> {
    csv_file(&state.mappings, &table(&state, &path.supplier, &path.kind)?).await
}

/// The table as CSV, rows in supplier-code order.
pub async fn table_csv(mappings: &Mappings, table: &Table) -> Result<Vec<u8>, ApiError> {
    let rows = mappings.rows(table).await?;
    Ok(mappings::csv::export(rows.iter().map(|r| (r.supplier_code.as_str(), &r.mapping))))
}

/// The table as a CSV download: the API's export and the admin UI's.
pub async fn csv_file(mappings: &Mappings, table: &Table) -> Result<HttpResponse, ApiError> {
    let csv = table_csv(mappings, table).await?;
    let filename = format!("attachment; filename=\"{}-{}.csv\"", table.supplier, table.kind);
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((header::CONTENT_DISPOSITION, filename))
        .body(csv))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ImportParams {
    /// `true`: report what the import would add, change and remove, and write nothing.
    /// Absent, empty or `false`: import.
    #[param(value_type = Option<bool>)]
    pub dry_run: Option<String>,
}

impl ImportParams {
    fn dry_run(&self) -> Result<bool, ApiError> {
        match given(&self.dry_run) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(ApiError::bad_request("invalid_dry_run", "dry_run must be `true` or `false`")),
        }
    }
}

/// What an import did (or, in a dry run, would do).
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportReport {
    pub dry_run: bool,
    pub added: Vec<RowValues>,
    pub changed: Vec<RowChange>,
    pub removed: Vec<RowValues>,
    pub unchanged: usize,
    /// Messages waiting for a mapping that a background job queues again (0 in a dry run).
    pub requeued_events: u64,
}

/// A row's values.
#[derive(Debug, Serialize, ToSchema)]
pub struct RowValues {
    pub supplier_code: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub mapping: Mapping,
}

/// A row whose values change, before and after.
#[derive(Debug, Serialize, ToSchema)]
pub struct RowChange {
    pub supplier_code: String,
    #[schema(value_type = Object)]
    pub before: Mapping,
    #[schema(value_type = Object)]
    pub after: Mapping,
}

impl ImportReport {
    pub fn new(plan: Plan, dry_run: bool, requeued_events: u64) -> Self {
        let values = |(supplier_code, mapping)| RowValues { supplier_code, mapping };
        ImportReport {
            dry_run,
            added: plan.added.into_iter().map(values).collect(),
            changed: plan
                .changed
                .into_iter()
                .map(|c| RowChange { supplier_code: c.supplier_code, before: c.before, after: c.after })
                .collect(),
            removed: plan.removed.into_iter().map(values).collect(),
            unchanged: plan.unchanged,
            requeued_events,
        }
    }
}

/// Replace a table with a CSV file, all or nothing (staff).
///
/// The file becomes the table: rows it lacks are removed. Columns `supplier_code`,
/// `bookhub_code`, `description`, `active` (required, any order) and `outbound` (optional: a
/// row that does not say keeps its choice). One bad row and nothing changes: 422 lists each
/// problem with its row (the header is row 1) and column. `?dry_run=true` reports the same
/// and writes nothing.
#[utoipa::path(put, path = "/v1/mappings/{supplier}/{kind}.csv", tag = "mappings", params(TablePath, ImportParams),
    request_body(content = String, content_type = "text/csv"),
    responses(
        (status = 400, description = "`dry_run` is not `true` or `false`", body = Problem, content_type = "application/problem+json"),
        (status = 200, body = ImportReport),
        (status = 404, description = "Unknown supplier or kind", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The outbound direction would be ambiguous", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than the limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `text/csv`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Row errors (`row_errors`); nothing was changed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn import(
    state: web::Data<AppState>,
    caller: StaffCaller,
    request: HttpRequest,
    path: web::Path<TablePath>,
    params: web::Query<ImportParams>,
    body: RawBody,
) -> Result<HttpResponse, ApiError> {
    let table = table(&state, &path.supplier, &path.kind)?;
    if !is_csv(&request) {
        return Err(ApiError::NotCsv);
    }
    let dry_run = params.dry_run()?;
    let report = import_csv(&state.mappings, &state.db, &table, &body.0, &actor(&caller, Via::ApiCsv), dry_run).await?;
    Ok(HttpResponse::Ok().json(report))
}

/// Parses and applies (or plans) a CSV import: the API's, the admin UI's and the CLI's.
pub async fn import_csv(
    mappings: &Mappings,
    db: &Database,
    table: &Table,
    csv: &[u8],
    actor: &mappings::Actor,
    dry_run: bool,
) -> Result<ImportReport, ApiError> {
    let entries = mappings::csv::parse(table.kind, csv).map_err(ApiError::CsvRejected)?;
    let (plan, requeued) = apply(mappings, db, table, Edit::Replace(entries), actor, dry_run).await?;
    Ok(ImportReport::new(plan, dry_run, requeued))
}

pub(crate) fn is_csv(request: &HttpRequest) -> bool {
    let mime = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    mime.and_then(|v| v.parse::<mime::Mime>().ok()).is_some_and(|m| m.essence_str() == "text/csv")
}

/// A change to a row.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub supplier_code: String,
    /// `created`, `updated` or `deleted`.
    pub action: String,
    /// The row before (absent for `created`).
    #[schema(value_type = Option<Object>)]
    pub before: Option<Mapping>,
    /// The row after (absent for `deleted`).
    #[schema(value_type = Option<Object>)]
    pub after: Option<Mapping>,
    /// The staff key's id (absent for seeds and the CLI).
    pub key_id: Option<String>,
    pub key_label: Option<String>,
    /// `api`, `api_csv_import`, `ui`, `ui_csv_import`, `cli_csv_import` or `seed`.
    pub via: String,
    pub at: DateTime<Utc>,
}

impl From<AuditEntry> for AuditView {
    fn from(e: AuditEntry) -> Self {
        AuditView {
            supplier_code: e.supplier_code,
            action: e.action,
            before: e.before,
            after: e.after,
            key_id: e.actor_key,
            key_label: e.actor_label,
            via: e.via,
            at: e.at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditParams {
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// A table's change history, newest first (staff).
#[utoipa::path(get, path = "/v1/mappings/{supplier}/{kind}/audit", tag = "mappings", params(TablePath, AuditParams),
    responses(
        (status = 200, body = Page<AuditView>),
        (status = 400, description = "A bad limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown supplier or kind", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn audit(
    state: web::Data<AppState>,
    _caller: StaffCaller,
    path: web::Path<TablePath>,
    params: web::Query<AuditParams>,
) -> Result<HttpResponse, ApiError> {
    let table = table(&state, &path.supplier, &path.kind)?;
    let limit = pagination::limit(params.limit)?;
    let before: Option<i64> = given(&params.cursor).map(pagination::decode_cursor).transpose()?;
    let mut rows = state.mappings.audit(&table, before, limit + 1).await?;
    let next_cursor = adapters::store::next_page(&mut rows, limit, |e| pagination::encode_cursor(&e.id.to_string()));
    Ok(HttpResponse::Ok().json(Page { data: rows.into_iter().map(AuditView::from).collect(), next_cursor }))
}

/// A code that messages wait for.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnmappedView {
    pub supplier: String,
    /// `room_type`, `board` or `status`.
    pub kind: String,
    /// The supplier's code no active row maps.
    pub code: String,
    /// Messages waiting for it (`needs_mapping`).
    pub waiting: u64,
    pub oldest_received_at: DateTime<Utc>,
    /// The oldest waiting message (`GET /v1/webhook-events/{id}`).
    pub oldest_event_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnmappedList {
    pub data: Vec<UnmappedView>,
}

/// The codes messages wait for, per supplier and kind (staff).
///
/// Adding the mapping (`PUT` a row or import a CSV) processes those messages again in a
/// background job, in batches.
#[utoipa::path(get, path = "/v1/mappings/unmapped", tag = "mappings",
    responses((status = 200, body = UnmappedList)),
    security(("api_key" = [])))]
pub async fn unmapped(state: web::Data<AppState>, _caller: StaffCaller) -> Result<HttpResponse, ApiError> {
    let codes = webhooks::unmapped_codes(&state.db).await?;
    let data = codes
        .into_iter()
        .map(|u| UnmappedView {
            supplier: u.supplier,
            kind: u.kind,
            code: u.code,
            waiting: u.waiting,
            oldest_received_at: u.oldest_received_at,
            oldest_event_id: u.oldest_event.to_string(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(UnmappedList { data }))
}

/// Registered before [`super::mappings::ROUTES`]: `{kind}.csv`, `audit` and `unmapped` win over
/// the row paths they also match (a supplier code `audit` is managed by CSV).
pub const ROUTES: &[Endpoint] = &[
    Endpoint { method: Method::Get, path: "/v1/mappings/unmapped", handler: || web::to(unmapped) },
    Endpoint { method: Method::Get, path: "/v1/mappings/{supplier}/{kind}.csv", handler: || web::to(export) },
    Endpoint { method: Method::Put, path: "/v1/mappings/{supplier}/{kind}.csv", handler: || web::to(import) },
    Endpoint { method: Method::Get, path: "/v1/mappings/{supplier}/{kind}/audit", handler: || web::to(audit) },
];
