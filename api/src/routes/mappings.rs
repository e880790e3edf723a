//! `/v1/mappings`: staff read and edit the mapping tables, one row at a time. CSV, the audit and
//! the unmapped codes are in [`super::mapping_files`]. Every edit goes through [`apply`], which
//! the admin UI uses too: the plan, its audit, and the requeue of messages that waited.

use actix_web::{HttpResponse, web};
use adapters::store::{Database, queue, webhooks};
use chrono::{DateTime, Utc};
use domain::{SupplierCode, Violations};
use jobs::RequeueWaiting;
use mappings::table::{Changed, RawEntry};
use mappings::{Actor, CodeKind, Edit, Entry, Mapping, MappingRow, Mappings, Plan, Table, Via};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::auth::StaffCaller;
use crate::error::{ApiError, Problem};
use crate::extract::JsonBody;
use crate::routes::{Endpoint, Method};

/// A configured supplier, as a path names it (404 otherwise).
pub fn supplier(state: &AppState, code: &str) -> Result<SupplierCode, ApiError> {
    let supplier: SupplierCode = code.parse().map_err(|_| ApiError::NotFound("supplier"))?;
    if !state.suppliers.contains(&supplier) {
        return Err(ApiError::NotFound("supplier"));
    }
    Ok(supplier)
}

/// A mapping table, as its path names it: a configured supplier and a kind (404 otherwise).
pub fn table(state: &AppState, supplier: &str, kind: &str) -> Result<Table, ApiError> {
    let supplier = self::supplier(state, supplier)?;
    let kind = kind.parse::<CodeKind>().map_err(|_| ApiError::NotFound("mapping table kind"))?;
    Ok(Table { supplier, kind })
}

/// The staff key behind a change, for the rows and the audit.
pub fn actor(caller: &StaffCaller, via: Via) -> Actor {
    actor_of(&caller.0.0, via)
}

/// The key behind a change (the API's caller, the admin UI's session).
pub fn actor_of(key: &adapters::store::api_keys::ApiKeyRecord, via: Via) -> Actor {
    Actor { key_id: Some(key.id.to_string()), label: key.label.clone(), via }
}

/// Makes (or with `dry_run` plans) an edit: the API's, the admin UI's and the CLI's. When it
/// maps more codes, the supplier's messages waiting for a mapping are queued again by a
/// background job, in batches; how many waited.
pub async fn apply(
    mappings: &Mappings,
    db: &Database,
    table: &Table,
    edit: Edit,
    actor: &Actor,
    dry_run: bool,
) -> Result<(Plan, u64), ApiError> {
    let plan = mappings.edit(table, edit, actor, dry_run).await?;
    if dry_run || !plan.maps_more() {
        return Ok((plan, 0));
    }
    Ok((plan, requeue_waiting(db, &table.supplier).await?))
}

/// Queues the job that processes `supplier`'s messages waiting for a mapping again, when some
/// wait; how many.
pub async fn requeue_waiting(db: &Database, supplier: &SupplierCode) -> Result<u64, ApiError> {
    let waiting = webhooks::count_needing_mapping(db, supplier).await?;
    if waiting > 0 {
        let request = uuid::Uuid::new_v4().to_string();
        queue::push(db.pool(), &[RequeueWaiting::for_supplier(supplier, &request)]).await?;
    }
    Ok(waiting)
}

/// A row of a table.
#[derive(Debug, Serialize, ToSchema)]
pub struct MappingView {
    pub supplier_code: String,
    /// bookhub's code of the table's kind.
    #[schema(example = "DBL")]
    pub bookhub_code: String,
    pub description: String,
    /// An inactive row translates nothing (its code counts as unmapped).
    pub active: bool,
    /// The row a booking's request uses for its bookhub code (one per code; status rows never).
    pub outbound: bool,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Option<UpdatedBy>,
}

/// The staff key that changed a row last (none for the seeds and the CLI).
#[derive(Debug, Serialize, ToSchema)]
pub struct UpdatedBy {
    pub key_id: String,
    pub label: Option<String>,
}

impl From<&MappingRow> for MappingView {
    fn from(r: &MappingRow) -> Self {
        let m = &r.mapping;
        MappingView {
            supplier_code: r.supplier_code.clone(),
            bookhub_code: m.bookhub_code.clone(),
            description: m.description.clone(),
            active: m.active,
            outbound: m.outbound,
            updated_at: r.updated_at,
            updated_by: r.updated_by_key.clone().map(|key_id| UpdatedBy { key_id, label: r.updated_by_label.clone() }),
        }
    }
}

/// A table and how much of it is in use.
#[derive(Debug, Serialize, ToSchema)]
pub struct TableSummary {
    pub supplier: String,
    /// `room_type`, `board` or `status`.
    pub kind: String,
    pub rows: u64,
    pub active_rows: u64,
    /// Distinct codes of this kind that waiting messages name and no active row maps.
    pub unmapped_codes: u64,
    /// Messages waiting for a mapping of this kind (`needs_mapping`).
    pub waiting_messages: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TableList {
    pub data: Vec<TableSummary>,
}

/// List the mapping tables: every configured supplier's, with row and unmapped counts (staff).
#[utoipa::path(get, path = "/v1/mappings", tag = "mappings",
    responses((status = 200, body = TableList)),
    security(("api_key" = [])))]
pub async fn tables(state: web::Data<AppState>, _caller: StaffCaller) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(TableList { data: summaries(&state).await? }))
}

/// Every configured supplier's tables with their counts: the API's list and the admin UI's.
pub async fn summaries(state: &AppState) -> Result<Vec<TableSummary>, ApiError> {
    let counts = state.mappings.counts().await?;
    let unmapped = webhooks::unmapped_codes(&state.db).await?;
    let mut data = Vec::new();
    for supplier in state.suppliers.codes() {
        for kind in CodeKind::ALL {
            let (rows, active_rows) =
                counts.get(&(supplier.to_string(), kind.to_string())).copied().unwrap_or_default();
            let waiting = unmapped.iter().filter(|u| u.supplier == supplier.as_str() && u.kind == kind.as_str());
            let (unmapped_codes, waiting_messages) = waiting.fold((0, 0), |(codes, n), u| (codes + 1, n + u.waiting));
            let (supplier, kind) = (supplier.to_string(), kind.to_string());
            data.push(TableSummary { supplier, kind, rows, active_rows, unmapped_codes, waiting_messages });
        }
    }
    Ok(data)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RowList {
    pub data: Vec<MappingView>,
}

/// A table's rows in supplier-code order (staff).
#[utoipa::path(get, path = "/v1/mappings/{supplier}/{kind}", tag = "mappings",
    params(
        ("supplier" = String, Path, description = "A configured supplier's code"),
        ("kind" = String, Path, description = "`room_type`, `board` or `status`"),
    ),
    responses(
        (status = 200, body = RowList),
        (status = 404, description = "Unknown supplier or kind", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn rows(
    state: web::Data<AppState>,
    _caller: StaffCaller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let table = table(&state, &path.0, &path.1)?;
    let rows = state.mappings.rows(&table).await?;
    Ok(HttpResponse::Ok().json(RowList { data: rows.iter().map(MappingView::from).collect() }))
}

/// One row of a table (staff).
#[utoipa::path(get, path = "/v1/mappings/{supplier}/{kind}/{supplier_code}", tag = "mappings",
    params(RowPath),
    responses(
        (status = 200, body = MappingView),
        (status = 404, description = "Unknown supplier, kind or code", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    _caller: StaffCaller,
    path: web::Path<RowPath>,
) -> Result<HttpResponse, ApiError> {
    let table = table(&state, &path.supplier, &path.kind)?;
    let row = state.mappings.row(&table, &path.supplier_code).await?;
    Ok(HttpResponse::Ok().json(MappingView::from(&row.ok_or(ApiError::NotFound("mapping"))?)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct RowPath {
    /// A configured supplier's code.
    pub supplier: String,
    /// `room_type`, `board` or `status`.
    pub kind: String,
    /// The supplier's own code.
    pub supplier_code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MappingRequest {
    /// bookhub's code of that kind, e.g. `DBL` (room type), `BB` (board), `confirmed` (status).
    #[schema(example = "DBL")]
    pub bookhub_code: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: String,
    /// Default `true`.
    #[serde(default = "yes")]
    pub active: bool,
    /// Make this the row bookings send for its bookhub code. Absent: a new row is outbound when
    /// it is the only active one for its code, an existing row keeps its choice.
    pub outbound: Option<bool>,
}

fn yes() -> bool {
    true
}

/// What an edit of one row did.
#[derive(Debug, Serialize, ToSchema)]
pub struct MappingWritten {
    #[serde(flatten)]
    pub mapping: MappingView,
    /// Other rows whose outbound choice the edit moved (a sole remaining row takes it over).
    pub also_changed: Vec<String>,
    /// Messages of this supplier that were waiting for a mapping: a background job queues
    /// them to be processed again.
    pub requeued_events: u64,
}

/// Create or change a row (staff).
///
/// Answers 201 for a new row, 200 for a changed one; then every message of this supplier
/// waiting for a mapping is processed again, queued by a background job in batches (the answer
/// does not wait for it). 409 when the outbound direction would be ambiguous: two rows marked
/// outbound for one bookhub code, or several and none marked.
#[utoipa::path(put, path = "/v1/mappings/{supplier}/{kind}/{supplier_code}", tag = "mappings",
    params(RowPath),
    request_body = MappingRequest,
    responses(
        (status = 200, description = "Changed", body = MappingWritten),
        (status = 201, description = "Created", body = MappingWritten),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown supplier or kind", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The outbound direction would be ambiguous", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than the limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Field errors: not one of bookhub's codes, a bad supplier code or description", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn put(
    state: web::Data<AppState>,
    caller: StaffCaller,
    path: web::Path<RowPath>,
    body: JsonBody<MappingRequest>,
) -> Result<HttpResponse, ApiError> {
    let table = table(&state, &path.supplier, &path.kind)?;
    let entry = parse_entry(table.kind, &path.supplier_code, &body.parsed)?;
    let (plan, requeued_events) =
        apply(&state.mappings, &state.db, &table, Edit::Put(entry), &actor(&caller, Via::Api), false).await?;
    let created = plan.added.iter().any(|(code, _)| *code == path.supplier_code);
    let row = state.mappings.row(&table, &path.supplier_code).await?;
    let row = row.ok_or(ApiError::ConcurrentUpdate { resource: "mapping" })?;
    let also_changed = others(&plan, &path.supplier_code);
    let written = MappingWritten { mapping: MappingView::from(&row), also_changed, requeued_events };
    Ok(if created { HttpResponse::Created() } else { HttpResponse::Ok() }.json(written))
}

/// The row a `PUT` asks for, or its field errors (422).
pub fn parse_entry(kind: CodeKind, supplier_code: &str, request: &MappingRequest) -> Result<Entry, ApiError> {
    let raw = RawEntry {
        supplier_code,
        bookhub_code: &request.bookhub_code,
        description: &request.description,
        active: request.active,
        outbound: request.outbound,
    };
    let mut v = Violations::default();
    let entry = Entry::parse(kind, &raw, &mut v);
    v.finish(|| entry.expect("parsed when nothing was recorded")).map_err(ApiError::Validation)
}

/// Codes other than `code` the plan touched.
fn others(plan: &Plan, code: &str) -> Vec<String> {
    let changed = plan.changed.iter().map(|Changed { supplier_code, .. }| supplier_code);
    changed.chain(plan.removed.iter().map(|(c, _)| c)).filter(|c| *c != code).cloned().collect()
}

/// What a delete did.
#[derive(Debug, Serialize, ToSchema)]
pub struct MappingDeleted {
    pub supplier_code: String,
    /// The row as it was.
    #[schema(value_type = Object)]
    pub deleted: Mapping,
    /// Other rows whose outbound choice moved (a sole remaining row takes it over).
    pub also_changed: Vec<String>,
}

/// Delete a row (staff): its code is unmapped from now on.
///
/// 409 when the row is the outbound choice of a bookhub code that other rows still mean, and
/// more than one: mark the one to use first.
#[utoipa::path(delete, path = "/v1/mappings/{supplier}/{kind}/{supplier_code}", tag = "mappings",
    params(RowPath),
    responses(
        (status = 200, body = MappingDeleted),
        (status = 404, description = "Unknown supplier, kind or code", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The outbound direction would be ambiguous", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: StaffCaller,
    path: web::Path<RowPath>,
) -> Result<HttpResponse, ApiError> {
    let table = table(&state, &path.supplier, &path.kind)?;
    let edit = Edit::Delete(path.supplier_code.clone());
    let (plan, _) = apply(&state.mappings, &state.db, &table, edit, &actor(&caller, Via::Api), false).await?;
    let (_, deleted) =
        plan.removed.iter().find(|(c, _)| *c == path.supplier_code).ok_or(ApiError::NotFound("mapping"))?;
    let also_changed = others(&plan, &path.supplier_code);
    Ok(HttpResponse::Ok().json(MappingDeleted {
        supplier_code: path.supplier_code.clone(),
        deleted: deleted.clone(),
        also_changed,
    }))
}

pub const ROUTES: &[Endpoint] = &[
    Endpoint { method: Method::Get, path: "/v1/mappings", handler: || web::to(tables) },
    Endpoint { method: Method::Get, path: "/v1/mappings/{supplier}/{kind}", handler: || web::to(rows) },
    Endpoint { method: Method::Get, path: "/v1/mappings/{supplier}/{kind}/{supplier_code}", handler: || web::to(get) },
    Endpoint { method: Method::Put, path: "/v1/mappings/{supplier}/{kind}/{supplier_code}", handler: || web::to(put) },
    Endpoint {
        method: Method::Delete,
        path: "/v1/mappings/{supplier}/{kind}/{supplier_code}",
        handler: || web::to(delete),
    },
];
