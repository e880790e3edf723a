//! The route table: every operation bookhub serves, in one list. `app.rs` registers exactly
//! these, and a test compares them with the OpenAPI document, so nothing is served undocumented.

use std::collections::HashMap;
use std::sync::OnceLock;

use actix_web::{Route, web};

use crate::error::method_not_allowed;

pub mod agency_webhook;
pub mod bookings;
pub mod crm;
pub mod events;
pub mod finance;
pub mod health;
pub mod jobs;
pub mod keys;
pub mod mapping_files;
pub mod mappings;
pub mod reconciliation;
pub mod suppliers;
pub mod vouchers;
pub mod webhook_events;
pub mod webhooks;

/// The HTTP methods bookhub's operations use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }

    fn http(self) -> actix_web::http::Method {
        match self {
            Method::Get => actix_web::http::Method::GET,
            Method::Post => actix_web::http::Method::POST,
            Method::Put => actix_web::http::Method::PUT,
            Method::Delete => actix_web::http::Method::DELETE,
        }
    }
}

/// One operation: its method, its full path (OpenAPI's `{param}` syntax, which actix shares)
/// and its handler, as an unguarded route (the method guard is added from `method`).
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    pub method: Method,
    pub path: &'static str,
    pub handler: fn() -> Route,
}

/// Every operation, in registration order.
pub fn endpoints() -> impl Iterator<Item = &'static Endpoint> {
    [
        health::ROUTES,
        bookings::ROUTES,
        suppliers::ROUTES,
        webhooks::ROUTES,
        webhook_events::ROUTES,
        jobs::ROUTES,
        mapping_files::ROUTES,
        mappings::ROUTES,
        keys::ROUTES,
        events::ROUTES,
        agency_webhook::ROUTES,
        vouchers::ROUTES,
        crm::ROUTES,
        reconciliation::ROUTES,
        finance::ROUTES,
    ]
    .into_iter()
    .flatten()
}

/// Registers every endpoint: one resource per path, answering 405 (with `Allow`) for the
/// methods it does not take.
pub fn register(cfg: &mut web::ServiceConfig) {
    let mut paths: Vec<&'static str> = Vec::new();
    for endpoint in endpoints() {
        if !paths.contains(&endpoint.path) {
            paths.push(endpoint.path);
        }
    }
    for path in paths {
        let mut resource = web::resource(path);
        for endpoint in endpoints().filter(|e| e.path == path) {
            resource = resource.route((endpoint.handler)().method(endpoint.method.http()));
        }
        cfg.service(resource.default_service(method_not_allowed(allow(path))));
    }
}

/// The `Allow` header of `path`: its methods in table order. Built once per process.
fn allow(path: &str) -> &'static str {
    static ALLOW: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    let table = ALLOW.get_or_init(|| {
        let mut methods: HashMap<&'static str, Vec<&'static str>> = HashMap::new();
        for endpoint in endpoints() {
            methods.entry(endpoint.path).or_default().push(endpoint.method.as_str());
        }
        methods.into_iter().map(|(path, m)| (path, &*Box::leak(m.join(", ").into_boxed_str()))).collect()
    });
    table.get(path).copied().unwrap_or("")
}

/// A page of a list, newest first.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// An optional query parameter, with an empty value meaning "not given" (`?status=`).
pub fn given(param: &Option<String>) -> Option<&str> {
    param.as_deref().filter(|v| !v.is_empty())
}
