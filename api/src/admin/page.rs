//! The admin UI's frame: the layout every page shares, its errors as HTML pages, and the
//! one-shot notice a form's redirect carries to the next page.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::{DOCTYPE, Markup, html};

use super::session::AdminSession;
use crate::error::ApiError;

/// The cookie carrying a form's outcome to the page it redirects to, read once.
const NOTICE_COOKIE: &str = "bookhub_notice";

/// The sections of the navigation, in order: (path, label).
const NAV: &[(&str, &str)] = &[
    ("/admin", "Dashboard"),
    ("/admin/mappings", "Mappings"),
    ("/admin/unmapped", "Unmapped codes"),
    ("/admin/webhooks", "Webhook log"),
    ("/admin/jobs", "Dead jobs"),
    ("/admin/bookings", "Bookings"),
    ("/admin/deliveries", "Deliveries"),
    ("/admin/finance", "Finance"),
];

/// A whole page for a signed-in user: navigation, the notice left by the last form, `body`.
pub fn page(req: &HttpRequest, session: &AdminSession, title: &str, body: Markup) -> HttpResponse {
    let notice = req.cookie(NOTICE_COOKIE).and_then(|c| URL_SAFE_NO_PAD.decode(c.value()).ok());
    let notice = notice.and_then(|bytes| String::from_utf8(bytes).ok());
    let path = req.path();
    let current = NAV.iter().rfind(|(href, _)| path == *href || path.starts_with(&format!("{href}/")));
    let who = session.key.label.clone().unwrap_or_else(|| session.key.id.to_string());
    let markup = frame(
        title,
        html! {
            header.top {
                a.brand href="/admin" { "bookhub" }
                nav aria-label="Sections" {
                    ul {
                        @for (href, label) in NAV {
                            li { a href=(href) aria-current=[current.filter(|c| c.0 == *href).map(|_| "page")] { (label) } }
                        }
                    }
                }
                form.signout method="post" action="/admin/logout" {
                    (csrf_field(session))
                    span.who { (who) " · " (session.key.role.as_str()) }
                    button type="submit" { "Sign out" }
                }
            }
            main #main {
                h1 { (title) }
                @if let Some(notice) = &notice {
                    p.notice role="status" { (notice) }
                }
                (body)
            }
        },
    );
    let mut response = html_response(StatusCode::OK, markup);
    if notice.is_some() {
        let mut gone = notice_cookie(String::new());
        gone.make_removal();
        response.add_cookie(&gone).expect("a valid cookie");
    }
    response
}

/// The document around `main`: a skip link, the stylesheet, no script.
pub fn frame(title: &str, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · bookhub admin" }
                link rel="stylesheet" href="/admin/assets/admin.css";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                (main)
            }
        }
    }
}

pub fn html_response(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(ContentType::html())
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("content-security-policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'"))
        .insert_header(("x-frame-options", "DENY"))
        .body(markup.into_string())
}

/// The hidden field every form carries.
pub fn csrf_field(session: &AdminSession) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A form of one button posting to `action`.
pub fn button_form(session: &AdminSession, action: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf_field(session))
            button type="submit" { (label) }
        }
    }
}

/// 303 to `to` (after a form), with `notice` shown there once.
pub fn redirect(to: &str, notice: impl Into<String>) -> HttpResponse {
    let mut response = HttpResponse::SeeOther().insert_header((header::LOCATION, to)).finish();
    response.add_cookie(&notice_cookie(URL_SAFE_NO_PAD.encode(notice.into()))).expect("a valid cookie");
    response
}

fn notice_cookie(value: String) -> Cookie<'static> {
    Cookie::build(NOTICE_COOKIE, value).path("/admin").http_only(true).same_site(SameSite::Strict).finish()
}

/// A page that could not be shown or a form that did nothing: a sign-in redirect, or the API's
/// own error as a page with its status.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No live session: sign in, then come back to `next`.
    #[error("sign in first")]
    SignIn { next: String },
    /// The form did not carry this session's CSRF token.
    #[error("this form was not sent from this session's pages; reload the page and try again")]
    Csrf,
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<adapters::store::StoreError> for AdminError {
    fn from(e: adapters::store::StoreError) -> Self {
        AdminError::Api(e.into())
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            AdminError::SignIn { .. } => StatusCode::SEE_OTHER,
            AdminError::Csrf => StatusCode::FORBIDDEN,
            AdminError::Api(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        let api = match self {
            AdminError::SignIn { next } => {
                let to = format!("/admin/login?next={}", url_escape(next));
                return HttpResponse::SeeOther().insert_header((header::LOCATION, to)).finish();
            }
            AdminError::Csrf => None,
            AdminError::Api(e) => Some(e),
        };
        if let Some(ApiError::Internal(cause) | ApiError::Unavailable(cause)) = api {
            tracing::error!(error.cause = format!("{cause:#}"), "admin page failed");
        }
        let status = self.status_code();
        let markup = frame(
            "Not done",
            html! {
                main #main.narrow {
                    h1 { (status.canonical_reason().unwrap_or("Error")) }
                    p.error role="alert" { (self.to_string()) }
                    @if let Some(ApiError::Validation(errors)) = api {
                        ul { @for e in &errors.errors { li { code { (e.field) } ": " (e.message) } } }
                    }
                    @if let Some(ApiError::CsvRejected(rejected)) = api {
                        (row_errors(rejected))
                    }
                    p { a href="/admin" { "Back to the dashboard" } }
                }
            },
        );
        html_response(status, markup)
    }
}

/// A refused CSV's problems, one table row each.
pub fn row_errors(rejected: &mappings::csv::CsvRejected) -> Markup {
    html! {
        table.rows {
            caption { "Problems in the file" @if rejected.truncated { " (the first ones)" } }
            thead { tr { th scope="col" { "Row" } th scope="col" { "Column" } th scope="col" { "Problem" } } }
            tbody {
                @for e in &rejected.errors {
                    tr { td { (e.row) } td { (e.column.as_deref().unwrap_or("—")) } td { (e.reason) } }
                }
            }
        }
    }
}

/// `value` for a query string.
pub fn url_escape(value: &str) -> String {
    serde_urlencoded::to_string([("", value)]).map(|s| s[1..].to_owned()).unwrap_or_default()
}

/// A timestamp as staff read it.
pub fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}
