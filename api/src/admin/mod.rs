//! The web admin UI at `/admin`: server-rendered pages (maud) with plain forms and no script,
//! every asset served by bookhub itself. Staff sign in with their API key ([`session`]); each
//! page reads and acts through the same store, job and edit functions as the API, so the UI
//! adds no second way of changing anything. These pages are HTML for people, not API
//! operations: they stay out of the route table and the OpenAPI document.

use actix_web::{HttpResponse, web};

mod mapping_pages;
mod ops;
mod page;
pub mod session;

const STYLESHEET: &str = include_str!("assets/admin.css");

/// Registers every page and form of the admin UI.
pub fn register(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin")
            .route("", web::get().to(ops::dashboard))
            .route("/", web::get().to(ops::dashboard))
            .route("/assets/admin.css", web::get().to(stylesheet))
            .route("/login", web::get().to(session::login_page))
            .route("/login", web::post().to(session::login))
            .route("/logout", web::post().to(session::logout))
            .route("/mappings", web::get().to(mapping_pages::tables))
            .route("/mappings/{supplier}/{kind}", web::get().to(mapping_pages::rows))
            .route("/mappings/{supplier}/{kind}/rows", web::post().to(mapping_pages::save))
            .route("/mappings/{supplier}/{kind}/delete", web::post().to(mapping_pages::delete))
            .route("/mappings/{supplier}/{kind}/export.csv", web::get().to(mapping_pages::export))
            .route("/mappings/{supplier}/{kind}/import", web::post().to(mapping_pages::check_import))
            .route("/mappings/{supplier}/{kind}/import/apply", web::post().to(mapping_pages::apply_import))
            .route("/mappings/{supplier}/{kind}/audit", web::get().to(mapping_pages::audit))
            .route("/unmapped", web::get().to(mapping_pages::unmapped))
            .route("/unmapped/{supplier}/reprocess", web::post().to(mapping_pages::reprocess))
            .route("/webhooks", web::get().to(ops::webhook_log))
            .route("/webhooks/{id}", web::get().to(ops::webhook))
            .route("/webhooks/{id}/replay", web::post().to(ops::replay))
            .route("/jobs", web::get().to(ops::dead_jobs))
            .route("/jobs/{id}/retry", web::post().to(ops::retry_job))
            .route("/bookings", web::get().to(ops::bookings))
            .route("/bookings/{id}", web::get().to(ops::booking))
            .route("/deliveries", web::get().to(ops::deliveries))
            .route("/deliveries/{id}", web::get().to(ops::delivery))
            .route("/deliveries/{id}/resend", web::post().to(ops::resend))
            .route("/agencies/{id}/recover", web::post().to(ops::recover))
            .route("/finance", web::get().to(ops::finance))
            .route("/finance/report", web::get().to(ops::finance_report)),
    );
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=3600"))
        .body(STYLESHEET)
}
