//! The mapping tables in the admin UI: browse, edit a row in place, add, delete, CSV export and
//! import (the dry run shown before anything is applied), the audit trail, and the codes
//! messages wait for. Every change goes through [`crate::routes::mappings::apply`], as the
//! API's do, so the UI's edits are planned, audited (`via` `ui` / `ui_csv_import`) and requeue
//! waiting messages the same way.

use actix_multipart::Multipart;
use actix_web::{HttpRequest, HttpResponse, web};
use adapters::store::webhooks;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::StreamExt;
use mappings::{CodeKind, Edit, Mapping, Table, Via};
use maud::{Markup, html};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::page::{AdminError, button_form, csrf_field, page, redirect, row_errors, url_escape, when};
use super::session::{AdminForm, AdminSession, same};
use crate::app::AppState;
use crate::error::ApiError;
use crate::routes::mapping_files::{ImportReport, csv_file, import_csv, table_csv};
use crate::routes::mappings::{MappingRequest, apply, parse_entry, requeue_waiting, summaries, supplier, table};

fn table_url(table: &Table) -> String {
    format!("/admin/mappings/{}/{}", table.supplier, table.kind)
}

/// Every table with its row and unmapped counts.
pub async fn tables(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: AdminSession,
) -> Result<HttpResponse, AdminError> {
    let tables = summaries(&state).await?;
    let body = html! {
        table.rows {
            caption { "One table per supplier and kind" }
            thead { tr {
                th scope="col" { "Supplier" } th scope="col" { "Kind" } th scope="col" { "Rows" }
                th scope="col" { "Active" } th scope="col" { "Unmapped codes" } th scope="col" { "Waiting messages" }
            } }
            tbody {
                @for t in &tables {
                    tr {
                        td { a href={ "/admin/mappings/" (t.supplier) "/" (t.kind) } { (t.supplier) } }
                        td { (t.kind) } td { (t.rows) } td { (t.active_rows) }
                        td { @if t.unmapped_codes > 0 { a href="/admin/unmapped" { (t.unmapped_codes) } } @else { "0" } }
                        td { (t.waiting_messages) }
                    }
                }
            }
        }
    };
    Ok(page(&req, &session, "Mapping tables", body))
}

#[derive(Debug, Deserialize)]
pub struct TablePath {
    supplier: String,
    kind: String,
}

impl TablePath {
    fn table(&self, state: &AppState) -> Result<Table, ApiError> {
        table(state, &self.supplier, &self.kind)
    }
}

/// One table: a form per row, one to add a row, and the CSV forms.
pub async fn rows(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: AdminSession,
    path: web::Path<TablePath>,
) -> Result<HttpResponse, AdminError> {
    let table = path.table(&state)?;
    let rows = state.mappings.rows(&table).await.map_err(ApiError::from)?;
    let url = table_url(&table);
    let outbound = table.kind != CodeKind::Status;
    let body = html! {
        p.links {
            a href={ (url) "/audit" } { "Audit trail" } " · "
            a href={ (url) "/export.csv" } download { "Export CSV" } " · "
            a href="/admin/mappings" { "All tables" }
        }
        section aria-labelledby="rows-title" {
            h2 #rows-title { (rows.len()) " rows" }
            @for (i, row) in rows.iter().enumerate() {
                (row_form(&session, &url, i, &row.supplier_code, Some(&row.mapping), outbound))
            }
        }
        section aria-labelledby="add-title" {
            h2 #add-title { "Add a row" }
            (row_form(&session, &url, rows.len(), "", None, outbound))
        }
        section aria-labelledby="import-title" {
            h2 #import-title { "Import a CSV file" }
            p { "The file replaces the table: rows it lacks are removed. Columns "
                code { "supplier_code,bookhub_code,description,active" } " and, optionally, " code { "outbound" } ". "
                "You see what would change before anything is applied." }
            form method="post" action={ (url) "/import" } enctype="multipart/form-data" {
                (csrf_field(&session))
                label for="csv-file" { "CSV file" }
                input #csv-file type="file" name="file" accept=".csv,text/csv" required;
                button type="submit" { "Check the file" }
            }
        }
    };
    Ok(page(&req, &session, &format!("{} · {}", table.supplier, table.kind), body))
}

/// A row as a form: its code (fixed for an existing row), bookhub code, description, flags,
/// and for an existing row a delete button.
fn row_form(session: &AdminSession, url: &str, i: usize, code: &str, row: Option<&Mapping>, outbound: bool) -> Markup {
    let id = |field: &str| format!("r{i}-{field}");
    html! {
        div.row {
            form.edit method="post" action={ (url) "/rows" } {
                (csrf_field(session))
                div.field {
                    label for=(id("code")) { "Supplier code" }
                    @if row.is_some() {
                        input id=(id("code")) name="supplier_code" value=(code) readonly;
                    } @else {
                        input id=(id("code")) name="supplier_code" required;
                    }
                }
                div.field {
                    label for=(id("bookhub")) { "bookhub code" }
                    input id=(id("bookhub")) name="bookhub_code" required value=[row.map(|r| &r.bookhub_code)];
                }
                div.field.wide {
                    label for=(id("description")) { "Description" }
                    input id=(id("description")) name="description" value=[row.map(|r| &r.description)];
                }
                div.check {
                    input id=(id("active")) type="checkbox" name="active" value="true" checked[row.is_none_or(|r| r.active)];
                    label for=(id("active")) { "Active" }
                }
                @if outbound {
                    div.check {
                        input id=(id("outbound")) type="checkbox" name="outbound" value="true" checked[row.is_some_and(|r| r.outbound)];
                        label for=(id("outbound")) { "Outbound" }
                    }
                    @if let Some(row) = row {
                        input type="hidden" name="outbound_was" value=(row.outbound);
                    }
                }
                button type="submit" { @if row.is_some() { "Save" } @else { "Add" } }
            }
            @if row.is_some() {
                form.delete method="post" action={ (url) "/delete" } {
                    (csrf_field(session))
                    input type="hidden" name="supplier_code" value=(code);
                    button.danger type="submit" aria-label={ "Delete " (code) } { "Delete" }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct RowForm {
    supplier_code: String,
    bookhub_code: String,
    /// Absent (the unmapped page's form): an existing row keeps its own.
    description: Option<String>,
    active: Option<String>,
    /// The outbound box, and for an existing row whether it was ticked: only a change of the
    /// box is sent, so a row keeps its choice (or hands it over) as through the API.
    outbound: Option<String>,
    outbound_was: Option<String>,
    /// Where to go afterwards (a page of the admin UI); the table by default.
    back: Option<String>,
}

/// Saves a row (a new one or a change), then back to the table.
pub async fn save(
    state: web::Data<AppState>,
    path: web::Path<TablePath>,
    posted: AdminForm<RowForm>,
) -> Result<HttpResponse, AdminError> {
    let table = path.table(&state)?;
    let f = posted.form;
    let code = f.supplier_code.trim();
    let description = match f.description {
        Some(description) => description.trim().to_owned(),
        None => state
            .mappings
            .row(&table, code)
            .await
            .map_err(ApiError::from)?
            .map(|r| r.mapping.description)
            .unwrap_or_default(),
    };
    let ticked = f.outbound.is_some();
    let outbound = match f.outbound_was.as_deref() {
        Some(was) => (ticked != (was == "true")).then_some(ticked),
        None => ticked.then_some(true),
    };
    let request = MappingRequest {
        bookhub_code: f.bookhub_code.trim().to_owned(),
        description,
        active: f.active.is_some(),
        outbound,
    };
    let entry = parse_entry(table.kind, code, &request)?;
    let actor = posted.session.actor(Via::Ui);
    let (plan, requeued) = apply(&state.mappings, &state.db, &table, Edit::Put(entry), &actor, false).await?;
    let verb = if plan.added.is_empty() { "Saved" } else { "Added" };
    let mut notice = format!("{verb} {code} → {}.", request.bookhub_code);
    notice += &requeued_notice(requeued);
    let back = f.back.as_deref().filter(|b| *b == "/admin/unmapped").map_or_else(|| table_url(&table), str::to_owned);
    Ok(redirect(&back, notice))
}

#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    supplier_code: String,
}

pub async fn delete(
    state: web::Data<AppState>,
    path: web::Path<TablePath>,
    posted: AdminForm<DeleteForm>,
) -> Result<HttpResponse, AdminError> {
    let table = path.table(&state)?;
    let code = posted.form.supplier_code;
    let actor = posted.session.actor(Via::Ui);
    let (plan, _) = apply(&state.mappings, &state.db, &table, Edit::Delete(code.clone()), &actor, false).await?;
    if plan.removed.is_empty() {
        return Err(ApiError::NotFound("mapping").into());
    }
    Ok(redirect(&table_url(&table), format!("Deleted {code}.")))
}

/// The table as CSV, as the API exports it.
pub async fn export(
    state: web::Data<AppState>,
    _session: AdminSession,
    path: web::Path<TablePath>,
) -> Result<HttpResponse, AdminError> {
    Ok(csv_file(&state.mappings, &path.table(&state)?).await?)
}

/// The uploaded file, checked as a dry run: what it would add, change and remove, and a form to
/// apply it. Nothing is written.
pub async fn check_import(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: AdminSession,
    path: web::Path<TablePath>,
    multipart: Multipart,
) -> Result<HttpResponse, AdminError> {
    let table = path.table(&state)?;
    let limit = req.app_data::<crate::extract::BodyLimit>().map_or(1024 * 1024, |l| l.0);
    let file = uploaded_file(multipart, &session, limit).await?;
    let url = table_url(&table);
    let title = format!("Import into {} · {}", table.supplier, table.kind);
    // The apply form carries the file as base64: it must fit the body limit too.
    if file.len().div_ceil(3) * 4 + 1024 > limit {
        let body = html! {
            p.error role="alert" { "This file (" (file.len()) " bytes) is too large to apply from the console. "
                "Import it with " code { "PUT /v1/mappings/" (table.supplier) "/" (table.kind) ".csv" } " or "
                code { "bookhub mappings import" } "." }
            p { a href=(url) { "Back to the table" } }
        };
        return Ok(page(&req, &session, &title, body));
    }
    let actor = session.actor(Via::UiCsv);
    let report = match import_csv(&state.mappings, &state.db, &table, &file, &actor, true).await {
        Ok(report) => report,
        Err(ApiError::CsvRejected(rejected)) => {
            let body = html! {
                p.error role="alert" { "The file was refused: nothing was changed. " (rejected.to_string()) "." }
                (row_errors(&rejected))
                p { a href=(url) { "Back to the table" } }
            };
            return Ok(page(&req, &session, &title, body));
        }
        Err(e) => return Err(e.into()),
    };
    let digest = table_digest(&state, &table).await?;
    let body = html! {
        p role="status" #dry-run { "Dry run: nothing has changed yet. "
            (report.added.len()) " to add, " (report.changed.len()) " to change, "
            (report.removed.len()) " to remove, " (report.unchanged) " unchanged." }
        (plan_tables(&report))
        form method="post" action={ (url) "/import/apply" } {
            (csrf_field(&session))
            input type="hidden" name="csv" value=(URL_SAFE_NO_PAD.encode(&file));
            input type="hidden" name="table_digest" value=(digest);
            button type="submit" { "Apply this import" }
            " " a href=(url) { "Cancel" }
        }
    };
    Ok(page(&req, &session, &title, body))
}

/// The `file` field of the import form, once its `csrf` field (which comes first) matched:
/// nothing else is read before that, and at most `limit` bytes in all.
async fn uploaded_file(mut multipart: Multipart, session: &AdminSession, limit: usize) -> Result<Vec<u8>, AdminError> {
    let (mut checked, mut read) = (false, 0);
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|e| ApiError::bad_request("invalid_form", e.to_string()))?;
        let name = field.name().unwrap_or_default().to_owned();
        if name != "csrf" && !checked {
            return Err(AdminError::Csrf);
        }
        let mut value = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| ApiError::bad_request("invalid_form", e.to_string()))?;
            read += chunk.len();
            if read > limit {
                return Err(ApiError::PayloadTooLarge(limit).into());
            }
            value.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "csrf" if !same(std::str::from_utf8(&value).ok(), &session.csrf) => return Err(AdminError::Csrf),
            "csrf" => checked = true,
            "file" => return Ok(value),
            _ => {}
        }
    }
    Err(ApiError::bad_request("invalid_form", "choose a CSV file to import").into())
}

/// The table's rows as a digest: what a checked import was planned against.
async fn table_digest(state: &AppState, table: &Table) -> Result<String, AdminError> {
    Ok(hex::encode(Sha256::digest(table_csv(&state.mappings, table).await?)))
}

fn plan_tables(report: &ImportReport) -> Markup {
    let values = |m: &Mapping| {
        format!(
            "{} · {} · {}{}",
            m.bookhub_code,
            m.description,
            if m.active { "active" } else { "inactive" },
            if m.outbound { " · outbound" } else { "" }
        )
    };
    html! {
        @if !report.added.is_empty() {
            h2 { "To add" }
            ul.plan { @for r in &report.added { li { code { (r.supplier_code) } " → " (values(&r.mapping)) } } }
        }
        @if !report.changed.is_empty() {
            h2 { "To change" }
            ul.plan { @for c in &report.changed { li { code { (c.supplier_code) } ": " del { (values(&c.before)) } " → " ins { (values(&c.after)) } } } }
        }
        @if !report.removed.is_empty() {
            h2 { "To remove" }
            ul.plan { @for r in &report.removed { li { code { (r.supplier_code) } " (" (values(&r.mapping)) ")" } } }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ApplyForm {
    /// The checked file, base64url.
    csv: String,
    table_digest: String,
}

/// Applies a checked file, all or nothing, unless the table changed since it was checked (409:
/// the dry run shown would no longer be what happens).
pub async fn apply_import(
    state: web::Data<AppState>,
    path: web::Path<TablePath>,
    posted: AdminForm<ApplyForm>,
) -> Result<HttpResponse, AdminError> {
    let table = path.table(&state)?;
    let csv = URL_SAFE_NO_PAD
        .decode(posted.form.csv.as_bytes())
        .map_err(|_| ApiError::bad_request("invalid_form", "the file is not the one that was checked"))?;
    if table_digest(&state, &table).await? != posted.form.table_digest {
        return Err(ApiError::Conflict {
            code: "table_changed",
            detail: "the table changed since the file was checked; check the file again".into(),
        }
        .into());
    }
    let actor = posted.session.actor(Via::UiCsv);
    let report = import_csv(&state.mappings, &state.db, &table, &csv, &actor, false).await?;
    let mut notice = format!(
        "Imported: {} added, {} changed, {} removed, {} unchanged.",
        report.added.len(),
        report.changed.len(),
        report.removed.len(),
        report.unchanged
    );
    notice += &requeued_notice(report.requeued_events);
    Ok(redirect(&table_url(&table), notice))
}

/// What a change's notice says of the waiting messages it sent back to be processed.
fn requeued_notice(requeued: u64) -> String {
    if requeued > 0 { format!(" {requeued} waiting message(s) are being processed again.") } else { String::new() }
}

/// The table's change history, newest first.
pub async fn audit(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: AdminSession,
    path: web::Path<TablePath>,
) -> Result<HttpResponse, AdminError> {
    let table = path.table(&state)?;
    let entries = state.mappings.audit(&table, None, 200).await.map_err(ApiError::from)?;
    let show = |m: &Option<Mapping>| {
        m.as_ref().map_or_else(String::new, |m| {
            format!(
                "{} ({}{})",
                m.bookhub_code,
                if m.active { "active" } else { "inactive" },
                if m.outbound { ", outbound" } else { "" }
            )
        })
    };
    let body = html! {
        p.links { a href=(table_url(&table)) { "Back to the table" } }
        table.rows {
            caption { "The last " (entries.len()) " changes, newest first" }
            thead { tr {
                th scope="col" { "When" } th scope="col" { "Code" } th scope="col" { "Change" }
                th scope="col" { "Before" } th scope="col" { "After" } th scope="col" { "Who" } th scope="col" { "Through" }
            } }
            tbody {
                @for e in &entries {
                    tr {
                        td { (when(e.at)) } td { code { (e.supplier_code) } } td { (e.action) }
                        td { (show(&e.before)) } td { (show(&e.after)) }
                        td { (e.actor_label.as_deref().or(e.actor_key.as_deref()).unwrap_or("—")) }
                        td { (e.via) }
                    }
                }
            }
        }
    };
    Ok(page(&req, &session, &format!("Audit · {} · {}", table.supplier, table.kind), body))
}

/// The codes messages wait for, each with a form to map it, and per supplier a button that
/// processes its waiting messages again.
pub async fn unmapped(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: AdminSession,
) -> Result<HttpResponse, AdminError> {
    let codes = webhooks::unmapped_codes(&state.db).await?;
    let mut suppliers: Vec<&str> = codes.iter().map(|c| c.supplier.as_str()).collect();
    suppliers.dedup();
    let body = html! {
        @if codes.is_empty() {
            p { "No message waits for a mapping." }
        } @else {
            p { "Mapping a code processes the messages that wait for it again, in the background." }
            @for (i, c) in codes.iter().enumerate() {
                div.row {
                    form.edit method="post" action={ "/admin/mappings/" (c.supplier) "/" (c.kind) "/rows" } {
                        (csrf_field(&session))
                        input type="hidden" name="supplier_code" value=(c.code);
                        input type="hidden" name="back" value="/admin/unmapped";
                        input type="hidden" name="active" value="true";
                        p.what {
                            strong { (c.supplier) " · " (c.kind) " · " code { (c.code) } }
                            br; (c.waiting) " waiting since " (when(c.oldest_received_at)) " · "
                            a href={ "/admin/webhooks/" (c.oldest_event) } { "oldest message" }
                        }
                        div.field {
                            label for={ "u" (i) } { "bookhub code for " (c.code) }
                            input id={ "u" (i) } name="bookhub_code" required;
                        }
                        button type="submit" { "Map and reprocess" }
                    }
                }
            }
            h2 { "Reprocess without a change" }
            p { "For a mapping made elsewhere (the command line, another table)." }
            @for supplier in &suppliers {
                (button_form(&session, &format!("/admin/unmapped/{}/reprocess", url_escape(supplier)),
                    &format!("Reprocess {supplier}'s waiting messages")))
            }
        }
    };
    Ok(page(&req, &session, "Unmapped codes", body))
}

#[derive(Debug, Deserialize)]
pub struct SupplierPath {
    supplier: String,
}

/// Queues the supplier's waiting messages again, in a background job.
pub async fn reprocess(
    state: web::Data<AppState>,
    path: web::Path<SupplierPath>,
    _posted: AdminForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AdminError> {
    let supplier = supplier(&state, &path.supplier)?;
    let waiting = requeue_waiting(&state.db, &supplier).await?;
    Ok(redirect("/admin/unmapped", format!("{waiting} waiting message(s) of {supplier} queued again.")))
}
