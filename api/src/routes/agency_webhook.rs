//! An agency's webhook endpoint: `/v1/agency/webhook` for the agency's own key, and
//! `/v1/agencies/{id}/webhook` for admins acting for any agency (staff may read it). Setting a URL checks it
//! (https, public addresses only, unless configuration allows private networks) and, the first
//! time, returns the signing secret once; rotating returns a new one once, and the old one keeps
//! signing beside it for the grace period.

use actix_web::{HttpResponse, web};
use adapters::notify::webhook::{WebhookSecret, check_callback_url};
use adapters::store::agency_webhooks::{self, Endpoint as Stored};
use adapters::store::{agencies, agency_events, queue};
use chrono::{DateTime, Utc};
use domain::{AgencyId, FieldError};
use jobs::fanout::DeliverWebhook;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::auth::{AdminCaller, AgencyCaller, StaffCaller};
use crate::error::{ApiError, Problem};
use crate::extract::JsonBody;
use crate::routes::{Endpoint, Method};

/// An agency's webhook endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    /// Where events are POSTed; `null` when none is set.
    pub url: Option<String>,
    /// Whether deliveries go out (a URL is set and not disabled).
    pub enabled: bool,
    /// Set when deliveries stopped: a 410 answer, or failures for the whole disable period.
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    /// The first failure since the last success, while the endpoint keeps failing.
    pub failing_since: Option<DateTime<Utc>>,
    /// Until when the previous secret still signs beside the current one.
    pub previous_secret_until: Option<DateTime<Utc>>,
    /// The signing secret, `whsec_…`: shown once, when it is made; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl WebhookView {
    fn of(endpoint: Option<&Stored>, secret: Option<String>) -> Self {
        let now = Utc::now();
        WebhookView {
            url: endpoint.and_then(|e| e.url.clone()),
            enabled: endpoint.is_some_and(|e| e.target().is_some()),
            disabled_at: endpoint.and_then(|e| e.disabled_at),
            disabled_reason: endpoint.and_then(|e| e.disabled_reason.clone()),
            failing_since: endpoint.and_then(|e| e.failing_since),
            previous_secret_until: endpoint.and_then(|e| e.previous_until).filter(|until| *until > now),
            secret,
        }
    }
}

/// The callback URL to set; `null` removes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetWebhook {
    #[schema(example = "https://agency.example/hooks/bookhub")]
    pub url: Option<String>,
}

/// A new signing secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
    /// The previous secret signs beside this one until then.
    pub previous_secret_until: DateTime<Utc>,
}

/// Which events to deliver again.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recover {
    /// Every event since then that was not delivered is sent again.
    pub since: DateTime<Utc>,
}

/// What a recover did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Recovered {
    /// Events queued for delivery again.
    pub events: usize,
    /// More may wait past this call's limit (10,000 events): call again with the same `since`.
    pub more: bool,
}

async fn show(state: &AppState, agency: &AgencyId) -> Result<HttpResponse, ApiError> {
    let endpoint = agency_webhooks::find(&state.db, agency).await?;
    Ok(HttpResponse::Ok().json(WebhookView::of(endpoint.as_ref(), None)))
}

async fn set(state: &AppState, agency: &AgencyId, body: SetWebhook) -> Result<HttpResponse, ApiError> {
    let url = match body.url.as_deref() {
        None => None,
        Some(url) => Some(
            check_callback_url(url, &state.jobs.fanout.webhook_settings.network_policy())
                .await
                .map_err(|e| {
                    ApiError::Validation(
                        FieldError { field: "url".into(), code: "invalid_url", message: e.to_string() }.into(),
                    )
                })?
                .to_string(),
        ),
    };
    let fresh = WebhookSecret::generate();
    let (endpoint, shown) =
        agency_webhooks::set_url(&state.db, agency, url.as_deref(), fresh.expose().to_owned()).await?;
    Ok(HttpResponse::Ok().json(WebhookView::of(Some(&endpoint), shown)))
}

async fn rotate(state: &AppState, agency: &AgencyId) -> Result<HttpResponse, ApiError> {
    let fresh = WebhookSecret::generate();
    let grace = chrono::Duration::from_std(state.jobs.fanout.webhook_settings.secret_grace)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let until = adapters::store::now() + grace;
    agency_webhooks::rotate(&state.db, agency, fresh.expose(), until).await?.ok_or(ApiError::NotFound("webhook"))?;
    Ok(HttpResponse::Ok().json(RotatedSecret { secret: fresh.expose().to_owned(), previous_secret_until: until }))
}

async fn recover(state: &AppState, agency: &AgencyId, body: Recover) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Accepted().json(recover_since(state, agency, body.since).await?))
}

/// Queues again every event of `agency` since `since` that was not delivered, re-enabling its
/// endpoint: the API's recover and the admin UI's.
pub async fn recover_since(state: &AppState, agency: &AgencyId, since: DateTime<Utc>) -> Result<Recovered, ApiError> {
    let endpoint = agency_webhooks::find(&state.db, agency).await?;
    if endpoint.as_ref().and_then(|e| e.url.as_deref()).is_none() {
        return Err(no_endpoint());
    }
    agency_webhooks::enable(&state.db, agency).await?;
    let (mut events, mut after) = (0, 0);
    for _ in 0..RECOVER_BATCHES {
        let batch = agency_events::undelivered(&state.db, agency, since, after).await?;
        let Some((last, _, _)) = batch.last() else { break };
        after = *last;
        // Queued before the events are marked: a crash in between leaves them failed, and a
        // second recover queues each once (its key names the event and its attempts).
        let jobs: Vec<_> = batch.iter().map(|(_, id, attempts)| DeliverWebhook::recover(id, *attempts)).collect();
        queue::push_once(state.db.pool(), &jobs).await?;
        let ids: Vec<_> = batch.iter().map(|(_, id, _)| id.clone()).collect();
        agency_events::reopen(&state.db, &ids).await?;
        events += batch.len();
        if (batch.len() as u64) < agency_events::RECOVER_BATCH {
            return Ok(Recovered { events, more: false });
        }
    }
    Ok(Recovered { events, more: events > 0 })
}

/// The most batches of events one recover call queues ([`agency_events::RECOVER_BATCH`] each).
const RECOVER_BATCHES: usize = 20;

/// The agency has no callback URL to deliver to.
pub fn no_endpoint() -> ApiError {
    ApiError::Conflict {
        code: "no_endpoint",
        detail: "the agency has no callback URL; set one with PUT /v1/agency/webhook first".into(),
    }
}

/// An agency an admin names: 404 when there is none.
pub async fn agency(state: &AppState, id: &str) -> Result<AgencyId, ApiError> {
    let id: AgencyId = id.parse().map_err(|_| ApiError::NotFound("agency"))?;
    agencies::find(&state.db, &id).await?.map(|a| a.id).ok_or(ApiError::NotFound("agency"))
}

/// Read the agency's webhook endpoint.
#[utoipa::path(get, path = "/v1/agency/webhook", tag = "agency webhooks",
    responses((status = 200, body = WebhookView)),
    security(("api_key" = [])))]
pub async fn get_own(state: web::Data<AppState>, caller: AgencyCaller) -> Result<HttpResponse, ApiError> {
    show(&state, &caller.agency).await
}

/// Set the agency's callback URL.
///
/// The URL must be https and resolve only to public addresses. Setting it enables deliveries.
/// The first time, the answer carries the signing secret (`whsec_…`), shown only then.
#[utoipa::path(put, path = "/v1/agency/webhook", tag = "agency webhooks", request_body = SetWebhook,
    responses(
        (status = 200, body = WebhookView),
        (status = 422, description = "A URL that is not https or resolves to a private address", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than the limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn put_own(
    state: web::Data<AppState>,
    caller: AgencyCaller,
    body: JsonBody<SetWebhook>,
) -> Result<HttpResponse, ApiError> {
    set(&state, &caller.agency, body.parsed).await
}

/// Rotate the agency's signing secret.
///
/// Answers the new secret, once. Until `previous_secret_until` (24 h by default) each delivery
/// carries both signatures, so the receiver can switch at its own pace.
#[utoipa::path(post, path = "/v1/agency/webhook/rotate-secret", tag = "agency webhooks",
    responses(
        (status = 200, body = RotatedSecret),
        (status = 404, description = "No webhook endpoint set yet", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn rotate_own(state: web::Data<AppState>, caller: AgencyCaller) -> Result<HttpResponse, ApiError> {
    rotate(&state, &caller.agency).await
}

/// Re-enable the endpoint and deliver again every event not delivered since a time.
///
/// Events that failed (or found no endpoint) since `since` and are still their booking's
/// newest are queued again, each with the retry schedule behind it; an event a newer change
/// overtook stays undelivered, as its newer event carries the booking as it is now.
#[utoipa::path(post, path = "/v1/agency/webhook/recover", tag = "agency webhooks", request_body = Recover,
    responses(
        (status = 202, body = Recovered),
        (status = 409, description = "No callback URL set yet", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`since` is not an RFC 3339 time", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than the limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn recover_own(
    state: web::Data<AppState>,
    caller: AgencyCaller,
    body: JsonBody<Recover>,
) -> Result<HttpResponse, ApiError> {
    recover(&state, &caller.agency, body.parsed).await
}

/// Read an agency's webhook endpoint (staff and admins): whether it is enabled, and why not.
#[utoipa::path(get, path = "/v1/agencies/{id}/webhook", tag = "agency webhooks",
    params(("id" = String, Path, description = "The agency id, `ag_…`")),
    responses(
        (status = 200, body = WebhookView),
        (status = 404, description = "No such agency", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn get_any(
    state: web::Data<AppState>,
    _: StaffCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    show(&state, &agency(&state, &id).await?).await
}

/// Set an agency's callback URL (admins).
#[utoipa::path(put, path = "/v1/agencies/{id}/webhook", tag = "agency webhooks", request_body = SetWebhook,
    params(("id" = String, Path, description = "The agency id, `ag_…`")),
    responses(
        (status = 200, body = WebhookView),
        (status = 404, description = "No such agency", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A URL that is not https or resolves to a private address", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than the limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn put_any(
    state: web::Data<AppState>,
    _: AdminCaller,
    id: web::Path<String>,
    body: JsonBody<SetWebhook>,
) -> Result<HttpResponse, ApiError> {
    set(&state, &agency(&state, &id).await?, body.parsed).await
}

/// Rotate an agency's signing secret (admins).
#[utoipa::path(post, path = "/v1/agencies/{id}/webhook/rotate-secret", tag = "agency webhooks",
    params(("id" = String, Path, description = "The agency id, `ag_…`")),
    responses(
        (status = 200, body = RotatedSecret),
        (status = 404, description = "No such agency, or no endpoint set", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn rotate_any(
    state: web::Data<AppState>,
    _: AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    rotate(&state, &agency(&state, &id).await?).await
}

/// Re-enable an agency's endpoint and deliver again what was not delivered (admins).
#[utoipa::path(post, path = "/v1/agencies/{id}/webhook/recover", tag = "agency webhooks", request_body = Recover,
    params(("id" = String, Path, description = "The agency id, `ag_…`")),
    responses(
        (status = 202, body = Recovered),
        (status = 404, description = "No such agency", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No callback URL set yet", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`since` is not an RFC 3339 time", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than the limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn recover_any(
    state: web::Data<AppState>,
    _: AdminCaller,
    id: web::Path<String>,
    body: JsonBody<Recover>,
) -> Result<HttpResponse, ApiError> {
    recover(&state, &agency(&state, &id).await?, body.parsed).await
}

pub const ROUTES: &[Endpoint] = &[
    Endpoint { method: Method::Get, path: "/v1/agency/webhook", handler: || web::to(get_own) },
    Endpoint { method: Method::Put, path: "/v1/agency/webhook", handler: || web::to(put_own) },
    Endpoint { method: Method::Post, path: "/v1/agency/webhook/rotate-secret", handler: || web::to(rotate_own) },
    Endpoint { method: Method::Post, path: "/v1/agency/webhook/recover", handler: || web::to(recover_own) },
    Endpoint { method: Method::Get, path: "/v1/agencies/{id}/webhook", handler: || web::to(get_any) },
    Endpoint { method: Method::Put, path: "/v1/agencies/{id}/webhook", handler: || web::to(put_any) },
    Endpoint { method: Method::Post, path: "/v1/agencies/{id}/webhook/rotate-secret", handler: || web::to(rotate_any) },
    Endpoint { method: Method::Post, path: "/v1/agencies/{id}/webhook/recover", handler: || web::to(recover_any) },
];
