//! Every error is problem+json, with the status HTTP expects; bad input never gets a 5xx.

use bookhub_tests::{Backend, TestApp, booking_body, problem};

#[tokio::test]
async fn authentication_is_required() {
    let app = TestApp::spawn().await;

    let none = app.client.get(app.url("/v1/bookings")).send().await.unwrap();
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    assert_eq!(problem(none, 401).await["code"], "unauthorized");
    problem(app.get("bkh_not-a-real-key", "/v1/bookings").send().await.unwrap(), 401).await;

    // The scheme is case-insensitive.
    let (_, key) = app.agency("Viajes Sol").await;
    let lower =
        app.client.get(app.url("/v1/bookings")).header("Authorization", format!("bearer {key}")).send().await.unwrap();
    assert_eq!(lower.status(), 200);
}

#[tokio::test]
async fn unknown_routes_and_ids_are_404() {
    let app = TestApp::spawn().await;
    let (_, key) = app.agency("Viajes Sol").await;

    problem(app.get(&key, "/v1/nothing-here").send().await.unwrap(), 404).await;
    problem(app.get(&key, "/v1/bookings/bk_00000000000000000000000000000000").send().await.unwrap(), 404).await;
    problem(app.get(&key, "/v1/bookings/not-an-id").send().await.unwrap(), 404).await;
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow() {
    let app = TestApp::spawn().await;
    let (_, key) = app.agency("Viajes Sol").await;
    let booking = app.booked(&key, &booking_body()).await;
    let one = format!("/v1/bookings/{}", booking["id"].as_str().unwrap());

    for (method, path, allow) in [
        (reqwest::Method::DELETE, "/v1/bookings".to_owned(), "GET, POST"),
        (reqwest::Method::PUT, one.clone(), "GET"),
        (reqwest::Method::GET, format!("{one}/cancel"), "POST"),
        (reqwest::Method::POST, "/healthz".to_owned(), "GET"),
    ] {
        let response = app.client.request(method, app.url(&path)).bearer_auth(&key).send().await.unwrap();
        assert_eq!(response.headers()["allow"], allow, "{path}");
        problem(response, 405).await;
    }
}

#[tokio::test]
async fn bodies_must_be_json_and_within_the_limit() {
    let app = TestApp::spawn_with(Backend::from_env(), |s| s.body_limit_bytes = 2048).await;
    let (_, key) = app.agency("Viajes Sol").await;
    let post = || app.post(&key, "/v1/bookings").header("Idempotency-Key", "k");

    let text = post().header("content-type", "text/plain").body(booking_body().to_string()).send().await.unwrap();
    assert_eq!(problem(text, 415).await["code"], "unsupported_media_type");

    let broken = post().header("content-type", "application/json").body("{\"supplier\": ").send().await.unwrap();
    assert_eq!(problem(broken, 400).await["code"], "malformed_json");

    // An array is JSON, but not a booking: serde alone would read it into the fields in order.
    let values: Vec<serde_json::Value> = booking_body().as_object().unwrap().values().cloned().collect();
    let array = post().header("content-type", "application/json").json(&values).send().await.unwrap();
    assert_eq!(problem(array, 422).await["errors"][0]["message"], "the body must be a JSON object");

    let mut huge = booking_body();
    huge["client_reference"] = serde_json::Value::String("x".repeat(4096));
    let too_large = post().json(&huge).send().await.unwrap();
    assert_eq!(problem(too_large, 413).await["code"], "payload_too_large");

    // Chunked, with no Content-Length to trust: the limit still holds.
    let stream = futures::stream::iter((0..8).map(|_| Ok::<_, std::io::Error>(vec![b' '; 512])));
    let chunked = post()
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    problem(chunked, 413).await;
}

#[tokio::test]
async fn request_ids_are_echoed_or_made_up() {
    let app = TestApp::spawn().await;

    let echoed = app.client.get(app.url("/healthz")).header("X-Request-Id", "trace-123").send().await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-123");
    let made = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(made.headers()["x-request-id"].len(), 36);
}

#[tokio::test]
async fn health_readiness_and_docs_are_served() {
    let app = TestApp::spawn().await;

    assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(app.client.get(app.url("/readyz")).send().await.unwrap().status(), 200);

    let spec: serde_json::Value =
        app.client.get(app.url("/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(spec, serde_json::from_str::<serde_json::Value>(&api::openapi::document()).unwrap());
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));

    // The docs viewer and its assets come from bookhub itself, not a CDN.
    let page = app.client.get(app.url("/docs/")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("swagger-ui"), "{page}");
    assert!(!page.contains("https://"), "the docs page must not load anything from the internet");
    let css = app.client.get(app.url("/docs/swagger-ui.css")).send().await.unwrap();
    assert_eq!(css.status(), 200);
}
