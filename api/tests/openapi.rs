//! The committed `openapi/openapi.json` must be what the code generates, and it must document
//! exactly the operations the server registers (`routes::endpoints`, the one route table).
//! Regenerate with `cargo run -p bookhub-api -- openapi > openapi/openapi.json`.

use std::collections::BTreeSet;

use serde_json::Value;

fn document() -> Value {
    serde_json::from_str(&bookhub_api::openapi::document()).expect("the document is JSON")
}

#[test]
fn the_committed_openapi_document_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == bookhub_api::openapi::document(),
        "openapi/openapi.json is stale: run `cargo run -p bookhub-api -- openapi > openapi/openapi.json` and commit it"
    );
}

#[test]
fn every_route_is_documented() {
    let served: BTreeSet<(String, String)> =
        bookhub_api::routes::endpoints().map(|e| (e.method.as_str().to_ascii_lowercase(), e.path.to_owned())).collect();
    let doc = document();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            let item = item.as_object().expect("a path item");
            ["get", "put", "post", "delete", "patch", "head", "options"]
                .into_iter()
                .filter(|m| item.contains_key(*m))
                .map(|m| (m.to_owned(), path.clone()))
        })
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(undocumented.is_empty(), "served but not documented: {undocumented:?}");
    assert!(unserved.is_empty(), "documented but not served: {unserved:?}");
    assert_eq!(served.len(), 48, "the route table lost or gained an operation");
}

#[test]
fn every_authenticated_operation_documents_the_shared_errors() {
    let doc = document();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            let responses = op["responses"].as_object().expect("responses");
            assert!(responses.contains_key("500"), "{method} {path}: no 500");
            if op.get("security").is_some_and(|s| s.as_array().is_some_and(|s| !s.is_empty())) {
                for status in ["401", "403", "429"] {
                    assert_eq!(
                        responses[status]["$ref"],
                        format!(
                            "#/components/responses/{}",
                            match status {
                                "401" => "Unauthorized",
                                "403" => "Forbidden",
                                _ => "TooManyRequests",
                            }
                        ),
                        "{method} {path}: {status}"
                    );
                }
            }
        }
    }
}

/// The documented enums are the domain's code lists, in full.
#[test]
fn documented_codes_are_the_domain_codes() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    let listed = |name: &str| -> Vec<String> {
        schemas[name]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} is an enum"))
            .iter()
            .map(|v| v.as_str().expect("a code").to_owned())
            .collect()
    };
    let domain = |codes: Vec<&str>| codes.into_iter().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(listed("RoomTypeCode"), domain(domain::RoomType::ALL.iter().map(|c| c.as_str()).collect()));
    assert_eq!(listed("BoardCode"), domain(domain::Board::ALL.iter().map(|c| c.as_str()).collect()));
    assert_eq!(listed("BookingStatusCode"), domain(domain::BookingStatus::ALL.iter().map(|c| c.as_str()).collect()));
    let statuses = adapters::store::webhooks::EventStatus::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(listed("WebhookEventStatus"), domain(statuses));
    let currencies = schemas["MoneyDto"]["properties"]["currency"]["enum"].as_array().expect("currencies").len();
    assert!(currencies > 150, "only {currencies} currencies documented");
}

#[test]
fn every_operation_has_a_summary() {
    let doc = document();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let summary = operation["summary"].as_str().unwrap_or_default();
            assert!(!summary.trim().is_empty(), "{method} {path} has no summary");
        }
    }
}
