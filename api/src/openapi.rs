//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations.
//! `bookhub openapi > openapi/openapi.json` regenerates the committed copy; a test fails when
//! it is stale, and another when it and the route table (`routes::endpoints`) disagree.
//!
//! The answers every authenticated operation can give (401, 403, 429) and every operation's
//! 500 are declared once, under `components/responses`, and referenced from each operation by
//! [`SharedResponses`].

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, schema};
use utoipa::{Modify, OpenApi};

use crate::error::{PROBLEM_JSON, Problem, ProblemFieldError, ProblemRowError};
use crate::routes::{
    agency_webhook, bookings, crm, events, finance, health, jobs, keys, mapping_files, mappings, reconciliation,
    suppliers, vouchers, webhook_events, webhooks,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "bookhub", description = "B2B booking-integration hub: agencies book hotel stays; bookhub books them with suppliers."),
    paths(
        bookings::create, bookings::list, bookings::get, bookings::cancel,
        suppliers::list, suppliers::health, webhooks::receive,
        webhook_events::list, webhook_events::get, webhook_events::replay,
        mappings::tables, mappings::rows, mappings::get, mappings::put, mappings::delete,
        mapping_files::export, mapping_files::import, mapping_files::audit, mapping_files::unmapped,
        jobs::list, jobs::retry,
        health::healthz, health::readyz,
        keys::list, keys::create, keys::revoke, keys::rotate_self,
        events::list, events::attempts, events::resend,
        agency_webhook::get_own, agency_webhook::put_own, agency_webhook::rotate_own, agency_webhook::recover_own,
        agency_webhook::get_any, agency_webhook::put_any, agency_webhook::rotate_any, agency_webhook::recover_any,
        vouchers::download, vouchers::verify, crm::mapping,
        reconciliation::start, reconciliation::get, reconciliation::mismatches, reconciliation::resolve,
        reconciliation::upload_statement, finance::list, finance::report,
    ),
    // Schemas only query parameters name are not collected from the paths.
    components(schemas(Problem, ProblemFieldError, ProblemRowError, jobs::JobListStatus, webhook_events::WebhookEventStatus, bookings::BookingStatusCode, events::EventTypeCode, reconciliation::MismatchStatusCode, finance::ReportFormat)),
    modifiers(&BearerAuth, &SharedResponses),
    tags(
        (name = "bookings", description = "Agencies' bookings"),
        (name = "suppliers", description = "Suppliers and their health (staff)"),
        (name = "webhooks", description = "Suppliers' signed event notifications, and their log (staff)"),
        (name = "mappings", description = "Supplier-code translation (staff)"),
        (name = "operations", description = "Health and readiness"),
        (name = "keys", description = "API keys: create, list, revoke (admin); rotate (an agency's own)"),
        (name = "events", description = "Each booking change as its agency is told of it: the feed, webhook attempts, resends"),
        (name = "agency webhooks", description = "An agency's callback URL and signing secret (the agency's own; admins for any)"),
        (name = "vouchers", description = "The PDF voucher of a confirmed booking, and its public check"),
        (name = "reconciliation", description = "Runs comparing bookhub with a supplier, and the mismatches they find (finance and staff)"),
        (name = "finance", description = "Invoice lines and credit notes issued to agencies, and the finance report (finance)"),
    ),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key: `Authorization: Bearer bkh_…`. Answers to a key that expires within \
                         14 days carry `X-Key-Expires-At` (RFC 3339).",
                    ))
                    .build(),
            ),
        );
    }
}

/// The shared error answers: (status, component name, description, whether only authenticated
/// operations give it).
const SHARED: &[(&str, &str, &str, bool)] = &[
    (
        "401",
        "Unauthorized",
        "No API key, not a valid one (`WWW-Authenticate: Bearer`), or an expired one (`key_expired`)",
        true,
    ),
    ("403", "Forbidden", "This key's role may not do this", true),
    (
        "429",
        "TooManyRequests",
        "Too many requests for this API key, or too many failed authentications from this address; see `Retry-After`",
        true,
    ),
    ("500", "InternalError", "Something failed inside bookhub; the details are logged, not answered", false),
];

/// Declares the shared answers once and references them from every operation they apply to.
struct SharedResponses;

impl Modify for SharedResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (status, name, description, _) in SHARED {
            components.responses.insert((*name).to_owned(), RefOr::T(problem_response(status, description)));
        }
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                apply_shared(operation);
            }
        }
    }
}

fn apply_shared(operation: &mut Operation) {
    let authenticated = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    for (status, name, _, only_authenticated) in SHARED {
        if authenticated || !only_authenticated {
            operation
                .responses
                .responses
                .entry((*status).to_owned())
                .or_insert_with(|| RefOr::Ref(Ref::from_response_name(*name)));
        }
    }
}

fn problem_response(status: &str, description: &str) -> utoipa::openapi::Response {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
    let mut response = ResponseBuilder::new().description(description).content(PROBLEM_JSON, content);
    if status == "429" {
        let seconds = schema::ObjectBuilder::new().schema_type(schema::Type::Integer).minimum(Some(0)).build();
        let header = HeaderBuilder::new().schema(Some(seconds)).description(Some("Seconds until a request is allowed"));
        response = response.header("Retry-After", header.build());
    }
    response.build()
}

/// The document as committed: pretty JSON with a final newline.
pub fn document() -> String {
    let mut json = ApiDoc::openapi().to_pretty_json().expect("the OpenAPI document serialises");
    json.push('\n');
    json
}
