//! The control API under `/_sim`, for tests and demos driving a simulator in another process.
//! It is never faulted and never counted.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::state::{Partner, Shared, method_not_allowed};
use super::{Confirmation, Faults, Protocol};

/// `{"mode":"instant"}` or `{"mode":"later","delay_ms":500}`.
#[derive(Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase", deny_unknown_fields)]
enum ConfirmationBody {
    Instant,
    Later { delay_ms: u64 },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HubBody {
    url: String,
}

fn unknown_protocol() -> HttpResponse {
    HttpResponse::NotFound().json(json!({"error": "unknown protocol, use jsonrest or ota"}))
}

/// Applies the JSON body to the path's protocol: 204, or 404 / 400 for a bad protocol or body.
fn update<T: DeserializeOwned>(
    sim: &Shared,
    protocol: &str,
    body: &[u8],
    apply: impl FnOnce(&mut Partner, T),
) -> HttpResponse {
    let Some(protocol) = Protocol::parse(protocol) else { return unknown_protocol() };
    match serde_json::from_slice(body) {
        Ok(value) => {
            sim.with(protocol, |p| apply(p, value));
            HttpResponse::NoContent().finish()
        }
        Err(e) => HttpResponse::BadRequest().json(json!({"error": "invalid_body", "message": e.to_string()})),
    }
}

/// `GET /_sim/stats`.
async fn stats(sim: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(sim.stats())
}

/// `PUT /_sim/{protocol}/faults` with a [`Faults`] document: replaces that protocol's faults.
async fn faults(sim: web::Data<Shared>, protocol: web::Path<String>, body: web::Bytes) -> HttpResponse {
    update(&sim, &protocol, &body, |p, faults: Faults| {
        tracing::info!(?faults, "faults set");
        p.faults = faults;
    })
}

/// `PUT /_sim/{protocol}/confirmation`.
async fn confirmation(sim: web::Data<Shared>, protocol: web::Path<String>, body: web::Bytes) -> HttpResponse {
    update(&sim, &protocol, &body, |p, mode: ConfirmationBody| {
        p.confirmation = match mode {
            ConfirmationBody::Instant => Confirmation::Instant,
            ConfirmationBody::Later { delay_ms } => Confirmation::Later { delay: Duration::from_millis(delay_ms) },
        }
    })
}

/// `PUT /_sim/{protocol}/hub` `{"url": "..."}`: where that protocol's webhooks go.
async fn hub(sim: web::Data<Shared>, protocol: web::Path<String>, body: web::Bytes) -> HttpResponse {
    update(&sim, &protocol, &body, |p, HubBody { url }| p.hub_url = Some(url))
}

/// `GET /_sim/{protocol}/bookings/{client_reference}`: the booking as a test sees it.
async fn booking(sim: web::Data<Shared>, path: web::Path<(String, String)>) -> HttpResponse {
    let (protocol, client_reference) = path.into_inner();
    let Some(protocol) = Protocol::parse(&protocol) else { return unknown_protocol() };
    match sim.with(protocol, |p| p.by_client_reference(&client_reference).map(|b| b.public(protocol))) {
        Some(booking) => HttpResponse::Ok().json(booking),
        None => HttpResponse::NotFound().json(json!({"error": "booking_not_found"})),
    }
}

/// `POST /_sim/reset`: clears faults, bookings and stats (settings and hub URLs stay).
async fn reset(sim: web::Data<Shared>) -> HttpResponse {
    sim.reset();
    HttpResponse::NoContent().finish()
}

/// The control routes, under `/_sim`.
pub(crate) fn scope() -> actix_web::Scope {
    let only = |allow: &'static str| web::to(move || async move { method_not_allowed(allow) });
    web::scope("/_sim")
        .service(web::resource("/stats").route(web::get().to(stats)).default_service(only("GET")))
        .service(web::resource("/reset").route(web::post().to(reset)).default_service(only("POST")))
        .service(web::resource("/{protocol}/faults").route(web::put().to(faults)).default_service(only("PUT")))
        .service(
            web::resource("/{protocol}/confirmation").route(web::put().to(confirmation)).default_service(only("PUT")),
        )
        .service(web::resource("/{protocol}/hub").route(web::put().to(hub)).default_service(only("PUT")))
        .service(
            web::resource("/{protocol}/bookings/{client_reference}")
                .route(web::get().to(booking))
                .default_service(only("GET")),
        )
}
