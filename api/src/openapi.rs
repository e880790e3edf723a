//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations.
//! `bookhub openapi > openapi/openapi.json` regenerates the committed copy; a test fails when
//! it is stale.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{Problem, ProblemFieldError};
use crate::routes::{bookings, health, jobs, mappings, suppliers, webhook_events, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(title = "bookhub", description = "B2B booking-integration hub: agencies book hotel stays; bookhub books them with suppliers."),
    paths(
        bookings::create, bookings::list, bookings::get, bookings::cancel,
        suppliers::list, suppliers::health, webhooks::receive,
        webhook_events::list, webhook_events::get, webhook_events::replay,
        mappings::put, jobs::list, jobs::retry,
        health::healthz, health::readyz,
    ),
    components(schemas(Problem, ProblemFieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "bookings", description = "Agencies' bookings"),
        (name = "suppliers", description = "Suppliers and their health (staff)"),
        (name = "webhooks", description = "Suppliers' signed event notifications, and their log (staff)"),
        (name = "mappings", description = "Supplier-code translation (staff)"),
        (name = "operations", description = "Health and readiness"),
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
                    .description(Some("An API key: `Authorization: Bearer bkh_…`"))
                    .build(),
            ),
        );
    }
}

/// The document as committed: pretty JSON with a final newline.
pub fn document() -> String {
    let mut json = ApiDoc::openapi().to_pretty_json().expect("the OpenAPI document serialises");
    json.push('\n');
    json
}
