//! The operator's pages: the dashboard, the webhook log (with replay), dead jobs (with retry),
//! bookings with their timeline, and agency deliveries (attempts, resend, recover). Each action
//! is the API's own operation, reached through the same store and job functions.

use actix_web::{HttpRequest, HttpResponse, web};
use adapters::store::agency_events::{self, EventScope};
use adapters::store::api_keys::Role;
use adapters::store::bookings::{self, Scope};
use adapters::store::webhooks::{self, EventStatus, Filter, REPLAYABLE, Replay};
use adapters::store::{queue, reconciliation};
use adapters::suppliers::resilience::BreakerState;
use chrono::Datelike;
use domain::{AgencyEventId, BookingId, Delivery, WebhookEventId};
use jobs::ProcessWebhook;
use maud::{Markup, html};
use serde::Deserialize;

use super::page::{AdminError, button_form, page, redirect, url_escape, when};
use super::session::{AdminForm, AdminSession};
use crate::app::AppState;
use crate::error::ApiError;
use crate::routes::given;

/// Per supplier: breaker, the last hour's calls and failures, unmapped codes; and dead jobs.
pub async fn dashboard(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: AdminSession,
) -> Result<HttpResponse, AdminError> {
    let unmapped = webhooks::unmapped_codes(&state.db).await?;
    let dead = queue::dead_counts(state.db.pool()).await?;
    let body = html! {
        table.rows {
            caption { "Suppliers, as this process has called them" }
            thead { tr {
                th scope="col" { "Supplier" } th scope="col" { "Breaker" } th scope="col" { "Calls, last hour" }
                th scope="col" { "Failures, last hour" } th scope="col" { "Unmapped codes" } th scope="col" { "Last failure" }
            } }
            tbody {
                @for (code, kind, health) in state.suppliers.health() {
                    @let codes = unmapped.iter().filter(|u| u.supplier == code.as_str()).count();
                    tr {
                        td { (code) " " small { "(" (kind.as_str()) ")" } }
                        td { @match health.breaker {
                            BreakerState::Closed => span.ok { "closed" },
                            BreakerState::Open => span.bad { "open" },
                            BreakerState::HalfOpen => span.warn { "half open" },
                        } }
                        td { (health.calls_last_hour) }
                        td { (health.failures_last_hour) }
                        td { @if codes > 0 { a href="/admin/unmapped" { (codes) } } @else { "0" } }
                        td { (health.last_failure.as_deref().unwrap_or("—")) }
                    }
                }
            }
        }
        h2 { "Dead jobs" }
        @if dead.is_empty() {
            p { "None." }
        } @else {
            p { a href="/admin/jobs" { (dead.iter().map(|(_, n)| n).sum::<i64>()) " dead jobs" } }
            ul { @for (queue, n) in &dead { li { code { (queue) } ": " (n) } } }
        }
    };
    Ok(page(&req, &session, "Dashboard", body))
}

#[derive(Debug, Deserialize)]
pub struct WebhookQuery {
    supplier: Option<String>,
    status: Option<String>,
}

/// The webhook log, newest first, filtered by supplier and status.
pub async fn webhook_log(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: AdminSession,
    query: web::Query<WebhookQuery>,
) -> Result<HttpResponse, AdminError> {
    let status = given(&query.status)
        .map(|s| s.parse::<EventStatus>().map_err(|e| ApiError::bad_request("invalid_status", format!("status: {e}"))))
        .transpose()?;
    let supplier = given(&query.supplier).map(str::to_owned);
    let filter = Filter { supplier: supplier.clone(), status, received_from: None, received_to: None };
    let (events, _) = webhooks::page(&state.db, &filter, None, 100).await?;
    let body = html! {
        form.filters method="get" action="/admin/webhooks" {
            div.field {
                label for="f-supplier" { "Supplier" }
                select #f-supplier name="supplier" {
                    option value="" { "any" }
                    @for code in state.suppliers.codes() {
                        option value=(code) selected[supplier.as_deref() == Some(code.as_str())] { (code) }
                    }
                }
            }
            div.field {
                label for="f-status" { "Status" }
                select #f-status name="status" {
                    option value="" { "any" }
                    @for s in EventStatus::ALL {
                        option value=(s.as_str()) selected[status == Some(*s)] { (s.as_str()) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
        table.rows {
            caption { "The newest " (events.len()) " requests" }
            thead { tr {
                th scope="col" { "Received" } th scope="col" { "Supplier" } th scope="col" { "Message" }
                th scope="col" { "Verification" } th scope="col" { "Status" } th scope="col" { "Booking" }
            } }
            tbody {
                @for e in &events {
                    tr {
                        td { a href={ "/admin/webhooks/" (e.id) } { (when(e.received_at)) } }
                        td { (e.supplier) } td { (e.event_id.as_deref().unwrap_or("—")) }
                        td { (e.verification.as_str()) } td { span.status { (e.status.as_str()) } }
                        td { (booking_link(e.booking_id.as_deref())) }
                    }
                }
            }
        }
    };
    Ok(page(&req, &session, "Webhook log", body))
}

fn booking_link(id: Option<&str>) -> Markup {
    html! { @if let Some(id) = id { a href={ "/admin/bookings/" (id) } { (id) } } @else { "—" } }
}

fn webhook_id(id: &str) -> Result<WebhookEventId, ApiError> {
    id.parse().map_err(|_| ApiError::NotFound("webhook event"))
}

/// One logged request: its outcome, headers and raw body, and the replay button.
pub async fn webhook(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: AdminSession,
    id: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let id = webhook_id(&id)?;
    let e = webhooks::find(&state.db, &id).await?.ok_or(ApiError::NotFound("webhook event"))?;
    let headers = serde_json::to_string_pretty(&e.headers).unwrap_or_default();
    let body = html! {
        dl.facts {
            dt { "Supplier" } dd { (e.supplier) }
            dt { "Message id" } dd { (e.event_id.as_deref().unwrap_or("—")) }
            dt { "Received" } dd { (when(e.received_at)) }
            dt { "Verification" } dd { (e.verification.as_str()) }
            dt { "Status" } dd #event-status { (e.status.as_str()) }
            dt { "Detail" } dd { (e.detail.as_deref().unwrap_or("—")) }
            dt { "Booking" } dd { (booking_link(e.booking_id.as_deref())) }
            dt { "Replays" } dd #event-replays { (e.replays) }
        }
        @if REPLAYABLE.contains(&e.status) {
            (button_form(&session, &format!("/admin/webhooks/{}/replay", e.id), "Replay"))
        }
        @if !e.previous_outcomes.is_empty() {
            h2 { "Before each replay" }
            ul { @for o in &e.previous_outcomes { li { (o.status.as_str()) ": " (o.detail.as_deref().unwrap_or("")) } } }
        }
        h2 { "Headers" }
        pre { (headers) }
        h2 { "Body" }
        pre { (String::from_utf8_lossy(&e.body)) }
    };
    Ok(page(&req, &session, &format!("Webhook {}", e.id), body))
}

/// Queues a logged message's processing again, as `POST /v1/webhook-events/{id}/replay` does.
pub async fn replay(
    state: web::Data<AppState>,
    id: web::Path<String>,
    _posted: AdminForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AdminError> {
    let id = webhook_id(&id)?;
    let back = format!("/admin/webhooks/{id}");
    match webhooks::replay(&state.db, &id, &REPLAYABLE, |n| ProcessWebhook::for_event(&id, n)).await? {
        Replay::NotFound => Err(ApiError::NotFound("webhook event").into()),
        Replay::NotReplayable(e) => Ok(redirect(&back, format!("A {} request cannot be replayed.", e.status))),
        Replay::Queued(_) => Ok(redirect(&back, "Replay queued: the message is processed again.")),
    }
}

/// Dead jobs, newest first, each with a retry button.
pub async fn dead_jobs(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: AdminSession,
) -> Result<HttpResponse, AdminError> {
    let dead = queue::dead(state.db.pool(), None, 100).await?;
    let body = html! {
        @if dead.is_empty() { p { "No dead jobs." } }
        @for job in &dead {
            div.row {
                p.what {
                    strong { code { (job.queue) } } " · " (job.status) " after " (job.attempts) " of " (job.max_attempts) " attempts"
                    br; small { (job.id) }
                    br; (job.last_result.as_deref().unwrap_or(""))
                }
                (button_form(&session, &format!("/admin/jobs/{}/retry", url_escape(&job.id)), "Retry"))
            }
        }
    };
    Ok(page(&req, &session, "Dead jobs", body))
}

pub async fn retry_job(
    state: web::Data<AppState>,
    id: web::Path<String>,
    _posted: AdminForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AdminError> {
    if !queue::retry_dead(state.db.pool(), &id).await? {
        return Err(ApiError::NotFound("dead job").into());
    }
    Ok(redirect("/admin/jobs", format!("Job {} queued again with fresh attempts.", id.as_str())))
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
}

/// Bookings by id, client reference or supplier reference.
pub async fn bookings(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: AdminSession,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, AdminError> {
    let term = given(&query.q).map(str::trim).filter(|t| !t.is_empty() && t.len() <= 200);
    let found = match term {
        Some(term) => bookings::search(&state.db, &Scope::All, term, 50).await?,
        None => bookings::page(&state.db, &Scope::All, None, None, 20).await?.items,
    };
    let body = html! {
        form.filters method="get" action="/admin/bookings" role="search" {
            div.field.wide {
                label for="q" { "Booking id, client reference or supplier reference" }
                input #q type="search" name="q" value=[term];
            }
            button type="submit" { "Search" }
        }
        table.rows {
            caption { @if term.is_some() { (found.len()) " found" } @else { "The newest bookings" } }
            thead { tr {
                th scope="col" { "Booking" } th scope="col" { "Status" } th scope="col" { "Supplier" }
                th scope="col" { "Client ref." } th scope="col" { "Supplier ref." } th scope="col" { "Stay" }
            } }
            tbody {
                @for b in &found {
                    tr {
                        td { (booking_link(Some(b.id.as_str()))) } td { (b.status.as_str()) } td { (b.details.supplier) }
                        td { (b.details.client_reference.as_deref().unwrap_or("—")) }
                        td { (b.supplier_reference.as_deref().unwrap_or("—")) }
                        td { (b.details.check_in) " → " (b.details.check_out) }
                    }
                }
            }
        }
    };
    Ok(page(&req, &session, "Bookings", body))
}

/// A booking and its timeline: every message in (supplier webhooks) and out (agency events and
/// each delivery attempt), in time order.
pub async fn booking(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: AdminSession,
    id: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let id: BookingId = id.parse().map_err(|_| ApiError::NotFound("booking"))?;
    let b = bookings::find(&state.db, &Scope::All, &id).await?.ok_or(ApiError::NotFound("booking"))?;
    // A booking changes a handful of times; the caps only bound a pathological one.
    let inbound = webhooks::for_booking(&state.db, &id, 100).await?;
    let events = agency_events::for_booking(&state.db, &id, 50).await?;
    let mut timeline: Vec<(chrono::DateTime<chrono::Utc>, Markup)> = vec![(
        b.created_at,
        html! { "Booking received from agency " code { (b.agency_id) } " for " (b.details.supplier) ", " (b.details.total) },
    )];
    for e in &inbound {
        let line = html! {
            "In: " (e.supplier) " webhook " a href={ "/admin/webhooks/" (e.id) } { (e.event_id.as_deref().unwrap_or(e.id.as_str())) }
            " → " (e.status.as_str()) @if let Some(d) = &e.detail { " (" (d) ")" }
        };
        timeline.push((e.received_at, line));
    }
    for event in &events {
        let line = html! {
            "Out: event " a href={ "/admin/deliveries/" (event.id) } { (event.event_type.as_str()) } " → delivery " (event.delivery.as_str())
        };
        timeline.push((event.created_at, line));
        for a in agency_events::attempts(&state.db, &event.id).await? {
            let line = html! {
                "Out: webhook attempt " (a.attempt) " (" (a.trigger.as_str()) ") to " (a.url) " → "
                @if let Some(status) = a.status { "HTTP " (status) } @else { (a.error.as_deref().unwrap_or("no answer")) }
            };
            timeline.push((a.created_at, line));
        }
    }
    timeline.sort_by_key(|(at, _)| *at);
    let body = html! {
        dl.facts {
            dt { "Status" } dd #booking-status { (b.status.as_str()) }
            dt { "Supplier" } dd { (b.details.supplier) }
            dt { "Hotel" } dd { (b.details.hotel_code) }
            dt { "Stay" } dd { (b.details.check_in) " → " (b.details.check_out) }
            dt { "Total" } dd { (b.details.total) }
            dt { "Client reference" } dd { (b.details.client_reference.as_deref().unwrap_or("—")) }
            dt { "Supplier reference" } dd { (b.supplier_reference.as_deref().unwrap_or("—")) }
        }
        h2 { "Timeline" }
        ol.timeline { @for (at, line) in &timeline { li { time { (when(*at)) } " " (line) } } }
    };
    Ok(page(&req, &session, &format!("Booking {id}"), body))
}

#[derive(Debug, Deserialize)]
pub struct DeliveryQuery {
    delivery: Option<String>,
}

/// Agency events and how their webhooks went, newest first; `failed` ones first to look at.
pub async fn deliveries(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: AdminSession,
    query: web::Query<DeliveryQuery>,
) -> Result<HttpResponse, AdminError> {
    let delivery = given(&query.delivery)
        .map(|d| d.parse::<Delivery>().map_err(|e| ApiError::bad_request("invalid_delivery", format!("delivery: {e}"))))
        .transpose()?;
    let events = agency_events::recent(&state.db, delivery, 100).await?;
    let mut agencies: Vec<&domain::AgencyId> =
        events.iter().filter(|e| e.delivery == Delivery::Failed).map(|e| &e.agency_id).collect();
    agencies.sort_by_key(|a| a.as_str());
    agencies.dedup();
    let body = html! {
        form.filters method="get" action="/admin/deliveries" {
            div.field {
                label for="f-delivery" { "Delivery" }
                select #f-delivery name="delivery" {
                    option value="" { "any" }
                    @for d in Delivery::ALL { option value=(d.as_str()) selected[delivery == Some(*d)] { (d.as_str()) } }
                }
            }
            button type="submit" { "Filter" }
        }
        table.rows {
            caption { "The newest " (events.len()) " events" }
            thead { tr {
                th scope="col" { "Created" } th scope="col" { "Event" } th scope="col" { "Agency" }
                th scope="col" { "Booking" } th scope="col" { "Delivery" } th scope="col" { "Attempts" }
            } }
            tbody {
                @for e in &events {
                    tr {
                        td { (when(e.created_at)) }
                        td { a href={ "/admin/deliveries/" (e.id) } { (e.event_type.as_str()) } }
                        td { code { (e.agency_id) } } td { (booking_link(Some(e.booking.id.as_str()))) }
                        td { (e.delivery.as_str()) } td { (e.attempts) }
                    }
                }
            }
        }
        @if !agencies.is_empty() && session.key.role == Role::Admin {
            h2 { "Recover failed deliveries" }
            p { "Re-enables the agency's endpoint and sends again every undelivered event of the last 7 days." }
            @for agency in &agencies {
                (button_form(&session, &format!("/admin/agencies/{agency}/recover"), &format!("Recover {agency}")))
            }
        }
    };
    Ok(page(&req, &session, "Agency deliveries", body))
}

fn event_id(id: &str) -> Result<AgencyEventId, ApiError> {
    id.parse().map_err(|_| ApiError::NotFound("event"))
}

/// One event's delivery attempts and a resend button.
pub async fn delivery(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: AdminSession,
    id: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let id = event_id(&id)?;
    let e = agency_events::find(&state.db, &EventScope::All, &id).await?.ok_or(ApiError::NotFound("event"))?;
    let attempts = agency_events::attempts(&state.db, &id).await?;
    let body = html! {
        dl.facts {
            dt { "Event" } dd { (e.event_type.as_str()) }
            dt { "Agency" } dd { code { (e.agency_id) } }
            dt { "Booking" } dd { (booking_link(Some(e.booking.id.as_str()))) }
            dt { "Delivery" } dd { (e.delivery.as_str()) }
        }
        (button_form(&session, &format!("/admin/deliveries/{id}/resend"), "Resend"))
        table.rows {
            caption { (attempts.len()) " attempts" }
            thead { tr {
                th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Trigger" } th scope="col" { "URL" }
                th scope="col" { "Answer" } th scope="col" { "Took" }
            } }
            tbody {
                @for a in &attempts {
                    tr {
                        td { (a.attempt) } td { (when(a.created_at)) } td { (a.trigger.as_str()) } td { (a.url) }
                        td { @if let Some(s) = a.status { "HTTP " (s) " " (a.response_head) } @else { (a.error.as_deref().unwrap_or("")) } }
                        td { (a.duration_ms) " ms" }
                    }
                }
            }
        }
    };
    Ok(page(&req, &session, &format!("Event {id}"), body))
}

pub async fn resend(
    state: web::Data<AppState>,
    id: web::Path<String>,
    _posted: AdminForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AdminError> {
    let id = event_id(&id)?;
    let e = agency_events::find(&state.db, &EventScope::All, &id).await?.ok_or(ApiError::NotFound("event"))?;
    crate::routes::events::queue_resend(&state, &e).await?;
    Ok(redirect(&format!("/admin/deliveries/{id}"), "Resend queued."))
}

/// Recovers an agency's failed deliveries (admins only, as `POST /v1/agencies/{id}/webhook/recover`).
pub async fn recover(
    state: web::Data<AppState>,
    agency: web::Path<String>,
    posted: AdminForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AdminError> {
    if posted.session.key.role != Role::Admin {
        return Err(ApiError::Forbidden("only admin keys can recover an agency's deliveries").into());
    }
    let agency = crate::routes::agency_webhook::agency(&state, &agency).await?;
    let since = adapters::store::now() - chrono::Duration::days(7);
    let recovered = crate::routes::agency_webhook::recover_since(&state, &agency, since).await?;
    Ok(redirect("/admin/deliveries", format!("{} event(s) of {agency} queued again.", recovered.events)))
}

/// The finance report's download (admins: finance data, as the API gives it to finance and
/// admin keys), and the last reconciliation run of each supplier.
pub async fn finance(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: AdminSession,
) -> Result<HttpResponse, AdminError> {
    let mut runs = Vec::new();
    for supplier in state.suppliers.codes() {
        runs.extend(reconciliation::runs(&state.db, supplier, 1).await?);
    }
    let today = chrono::Utc::now().date_naive();
    let month_start = today.with_day(1).unwrap_or(today);
    let body = html! {
        h2 { "Finance report" }
        @if session.key.role == Role::Admin {
            form method="get" action="/admin/finance/report" {
                label { "From " input type="date" name="from" value=(month_start) required; }
                label { " to " input type="date" name="to" value=(today) required; }
                label { " as " select name="format" { option value="xlsx" { "XLSX" } option value="csv" { "CSV" } } }
                " " button type="submit" { "Download" }
            }
            p { small { "Per agency, supplier and currency: bookings by status, sell, supplier cost, margin, invoiced, credited and open mismatches." } }
        } @else {
            p { "The finance report is for admin keys here, and for finance keys at " code { "GET /v1/reports/finance" } "." }
        }
        h2 { "Last reconciliation runs" }
        @if runs.is_empty() { p { "No runs yet." } }
        @for run in &runs {
            div.row {
                p.what {
                    strong { (run.supplier) } " · " (run.status.as_str()) " · " (run.window_from.format("%Y-%m-%d %H:%M")) " to " (run.window_to.format("%Y-%m-%d %H:%M"))
                    br; small { (run.id) }
                    @if let Some(error) = &run.error { br; (error) }
                    @for (reason, n) in &run.counts { br; code { (reason) } " " (n) }
                }
            }
        }
    };
    Ok(page(&req, &session, "Finance", body))
}

/// The report as a file (admins only).
pub async fn finance_report(
    state: web::Data<AppState>,
    session: AdminSession,
    params: web::Query<crate::routes::finance::ReportParams>,
) -> Result<HttpResponse, AdminError> {
    if session.key.role != Role::Admin {
        return Err(ApiError::Forbidden("only admin keys can download the finance report here").into());
    }
    Ok(crate::routes::finance::report_file(&state, &params).await?)
}
