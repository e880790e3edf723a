//! Signing in to the admin UI with a staff or admin API key, the session that follows, and the
//! CSRF check every form passes.
//!
//! - The session cookie `bookhub_session` holds 256 random bits; the database holds only their
//!   SHA-256 ([`adapters::store::admin_sessions`]). It is `HttpOnly`, `SameSite=Strict`,
//!   `Path=/admin`, and `Secure` when the page was served over https.
//! - Each session has its own CSRF token, a hidden field of every form; [`AdminForm`] refuses a
//!   post without it (403) before reading the form. The sign-in form, which has no session yet,
//!   pairs its hidden field with the cookie `bookhub_login_csrf` (double submit).
//! - The key is checked on every request, not only at sign-in: revoking it, or its expiry, ends
//!   its sessions at once.
//! - Failed sign-ins count against the client address like failed API authentications.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use adapters::store::admin_sessions::{self, AdminSessionRecord};
use adapters::store::api_keys::{self, ApiKeyRecord, Role};
use futures::future::LocalBoxFuture;
use maud::html;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use super::page::{AdminError, frame, html_response, redirect};
use crate::app::AppState;
use crate::auth::{authenticate, generate_key, hash_key};
use crate::error::ApiError;
use crate::extract::read_limited;

const SESSION_COOKIE: &str = "bookhub_session";
const LOGIN_CSRF_COOKIE: &str = "bookhub_login_csrf";

/// A signed-in staff or admin key, and the CSRF token its forms carry.
#[derive(Debug, Clone)]
pub struct AdminSession {
    pub key: ApiKeyRecord,
    pub csrf: String,
    token_hash: String,
}

impl AdminSession {
    /// Who made a change through the UI, for the mapping audit.
    pub fn actor(&self, via: mappings::Via) -> mappings::Actor {
        crate::routes::mappings::actor_of(&self.key, via)
    }
}

fn state(req: &HttpRequest) -> web::Data<AppState> {
    req.app_data::<web::Data<AppState>>().cloned().expect("the app state is registered")
}

impl FromRequest for AdminSession {
    type Error = AdminError;
    type Future = LocalBoxFuture<'static, Result<Self, AdminError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
        let next = if req.method() == actix_web::http::Method::GET {
            req.uri().path_and_query().map_or("/admin", |p| p.as_str()).to_owned()
        } else {
            "/admin".to_owned()
        };
        let state = state(req);
        Box::pin(async move {
            let sign_in = || AdminError::SignIn { next: next.clone() };
            let token_hash = hash_key(&token.ok_or_else(sign_in)?);
            let now = adapters::store::now();
            let session = admin_sessions::find(&state.db, &token_hash, now).await?.ok_or_else(sign_in)?;
            let key = api_keys::find(&state.db, &session.key_id).await?.ok_or_else(sign_in)?;
            if refusal(&key, now).is_some() {
                return Err(sign_in());
            }
            Ok(AdminSession { key, csrf: session.csrf_token, token_hash })
        })
    }
}

/// Why `key` may not use the admin UI, if it may not.
fn refusal(key: &ApiKeyRecord, now: chrono::DateTime<chrono::Utc>) -> Option<&'static str> {
    if key.revoked_at.is_some() {
        Some("That key is not valid.")
    } else if key.is_expired(now) {
        Some("That key has expired; ask an admin for a new one.")
    } else if !matches!(key.role, Role::Staff | Role::Admin) {
        Some("Only staff and admin keys can sign in here.")
    } else {
        None
    }
}

/// A posted form (`application/x-www-form-urlencoded`) of a signed-in session, read only once
/// its `csrf` field matched the session's token.
#[derive(Debug)]
pub struct AdminForm<T> {
    pub session: AdminSession,
    pub form: T,
}

#[derive(Deserialize)]
struct CsrfField {
    csrf: Option<String>,
}

impl<T: DeserializeOwned + 'static> FromRequest for AdminForm<T> {
    type Error = AdminError;
    type Future = LocalBoxFuture<'static, Result<Self, AdminError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let session = AdminSession::from_request(req, payload);
        let body = read_limited(req, payload, usize::MAX);
        Box::pin(async move {
            let session = session.await?;
            let body = body.await?;
            let sent: CsrfField = serde_urlencoded::from_bytes(&body).map_err(|_| AdminError::Csrf)?;
            if !same(sent.csrf.as_deref(), &session.csrf) {
                return Err(AdminError::Csrf);
            }
            Ok(AdminForm { form: parse_form(&body)?, session })
        })
    }
}

/// Whether `sent` is `expected`, in constant time.
pub fn same(sent: Option<&str>, expected: &str) -> bool {
    sent.is_some_and(|sent| bool::from(sent.as_bytes().ct_eq(expected.as_bytes())))
}

pub fn parse_form<T: DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    serde_urlencoded::from_bytes(body).map_err(|e| ApiError::bad_request("invalid_form", e.to_string()).into())
}

/// Where to go after signing in: a page of the admin UI (visible ASCII, as a `Location` takes
/// it), nothing else.
fn next_page(next: Option<&str>) -> &str {
    let local = |n: &&str| n.starts_with("/admin") && !n.contains('\\') && n.bytes().all(|b| b.is_ascii_graphic());
    next.filter(local).unwrap_or("/admin")
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    signed_out: Option<String>,
}

/// The sign-in page.
pub async fn login_page(req: HttpRequest, query: web::Query<LoginQuery>) -> HttpResponse {
    let notice = query.signed_out.is_some().then_some("Signed out.");
    login_form(&req, query.next.as_deref(), notice, None, StatusCode::OK)
}

fn login_form(
    req: &HttpRequest,
    next: Option<&str>,
    notice: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> HttpResponse {
    let csrf = generate_key();
    let markup = frame(
        "Sign in",
        html! {
            main #main.narrow {
                h1 { "bookhub admin" }
                p { "Sign in with a staff or admin API key." }
                @if let Some(notice) = notice {
                    p.notice role="status" { (notice) }
                }
                @if let Some(error) = error {
                    p.error role="alert" #login-error { (error) }
                }
                form method="post" action="/admin/login" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="next" value=(next_page(next));
                    label for="key" { "API key" }
                    input #key type="password" name="key" required autocomplete="current-password"
                        aria-describedby=[error.map(|_| "login-error")] autofocus;
                    button type="submit" { "Sign in" }
                }
            }
        },
    );
    let mut response = html_response(status, markup);
    response.add_cookie(&cookie(req, LOGIN_CSRF_COOKIE, csrf, "/admin/login")).expect("a valid cookie");
    response
}

/// A cookie of the admin UI: `Secure` when bookhub's public URL is https, or this request came
/// over https (directly, or as a proxy's `X-Forwarded-Proto` says).
fn cookie(req: &HttpRequest, name: &'static str, value: String, path: &'static str) -> Cookie<'static> {
    let https = state(req).public_https || req.connection_info().scheme() == "https";
    Cookie::build(name, value).path(path).http_only(true).same_site(SameSite::Strict).secure(https).finish()
}

#[derive(Debug, Deserialize)]
struct Login {
    csrf: Option<String>,
    key: String,
    next: Option<String>,
}

/// Signs in: a live staff or admin key opens a session; anything else shows why not.
pub async fn login(req: HttpRequest, payload: web::Payload) -> Result<HttpResponse, AdminError> {
    let body = read_limited(&req, &mut payload.into_inner(), 4096).await?;
    let form: Login = parse_form(&body)?;
    let expected = req.cookie(LOGIN_CSRF_COOKIE).map(|c| c.value().to_owned());
    if !expected.is_some_and(|expected| same(form.csrf.as_deref(), &expected)) {
        return Err(AdminError::Csrf);
    }
    let state = state(&req);
    let next = next_page(form.next.as_deref()).to_owned();
    let address = crate::rate_limit::client_address(&req);
    let now = adapters::store::now();
    let key = match authenticate(&state, form.key.trim(), address).await {
        Ok(key) => key,
        Err(ApiError::Unauthorized) => {
            return Ok(login_form(&req, Some(&next), None, Some("That key is not valid."), StatusCode::UNAUTHORIZED));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(why) = refusal(&key, now) {
        return Ok(login_form(&req, Some(&next), None, Some(why), StatusCode::FORBIDDEN));
    }
    let token = generate_key();
    let ttl = state.admin_session_ttl;
    let expires_at = key.expires_at.map_or(now + ttl, |at| at.min(now + ttl));
    let session = AdminSessionRecord { key_id: key.id.clone(), csrf_token: generate_key(), expires_at };
    admin_sessions::create(&state.db, &hash_key(&token), &session, now).await?;
    let mut response = redirect(&next, "Signed in.");
    response.add_cookie(&cookie(&req, SESSION_COOKIE, token, "/admin")).expect("a valid cookie");
    let mut used = cookie(&req, LOGIN_CSRF_COOKIE, String::new(), "/admin/login");
    used.make_removal();
    response.add_cookie(&used).expect("a valid cookie");
    Ok(response)
}

/// Signs out: the session ends here and in every process.
pub async fn logout(req: HttpRequest, posted: AdminForm<serde::de::IgnoredAny>) -> Result<HttpResponse, AdminError> {
    admin_sessions::delete(&state(&req).db, &posted.session.token_hash).await?;
    let mut response = HttpResponse::SeeOther().insert_header((header::LOCATION, "/admin/login?signed_out")).finish();
    let mut gone = cookie(&req, SESSION_COOKIE, String::new(), "/admin");
    gone.make_removal();
    response.add_cookie(&gone).expect("a valid cookie");
    Ok(response)
}
