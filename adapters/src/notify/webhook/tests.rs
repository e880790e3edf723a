//! The sender against real HTTP peers on loopback (wiremock).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

const BODY: &[u8] = br#"{"type":"booking.confirmed","data":{"booking_id":"bk_01"}}"#;

/// Loopback and http allowed: wiremock listens on http://127.0.0.1.
fn demo_settings() -> AgencyWebhookSettings {
    AgencyWebhookSettings { allow_private_networks: true, allow_http: true, ..AgencyWebhookSettings::default() }
}

fn sender(settings: &AgencyWebhookSettings) -> WebhookSender {
    WebhookSender::new(settings).unwrap()
}

fn message() -> OutboundMessage<'static> {
    OutboundMessage { id: "ev_01jq5z6k8s", timestamp: 1_760_000_000, body: BODY }
}

async fn server_answering(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/hook")).respond_with(template).mount(&server).await;
    server
}

fn hook_url(server: &MockServer) -> url::Url {
    format!("{}/hook", server.uri()).parse().unwrap()
}

/// The Standard Webhooks signature of the exact bytes received, computed here from the
/// secret's text with hmac and base64, not with the code under test.
fn expected_signature(secret: &WebhookSecret, id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = BASE64.decode(secret.expose().strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

fn header<'r>(request: &'r wiremock::Request, name: &str) -> &'r str {
    request.headers.get(name).unwrap_or_else(|| panic!("no {name} header")).to_str().unwrap()
}

#[tokio::test]
async fn a_delivery_is_signed_per_standard_webhooks_and_verifies_with_the_secret() {
    let server = server_answering(ResponseTemplate::new(204)).await;
    let secret = WebhookSecret::generate();

    let attempt = sender(&demo_settings()).send(&hook_url(&server), &message(), &[&secret]).await;

    assert_eq!(attempt.outcome(), AttemptOutcome::Delivered, "{attempt:?}");
    assert_eq!((attempt.status, attempt.error.as_deref()), (Some(204), None));
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.body, BODY);
    assert_eq!(header(request, "webhook-id"), "ev_01jq5z6k8s");
    assert_eq!(header(request, "webhook-timestamp"), "1760000000");
    assert_eq!(header(request, "content-type"), "application/json");
    assert!(header(request, "user-agent").starts_with("bookhub-webhooks/"));
    let expected = expected_signature(&secret, "ev_01jq5z6k8s", "1760000000", &request.body);
    assert_eq!(header(request, "webhook-signature"), expected);
}

#[tokio::test]
async fn during_a_rotation_both_secrets_sign_and_each_verifies() {
    let server = server_answering(ResponseTemplate::new(200)).await;
    let (old, new) = (WebhookSecret::generate(), WebhookSecret::generate());

    let attempt = sender(&demo_settings()).send(&hook_url(&server), &message(), &[&new, &old]).await;

    assert_eq!(attempt.outcome(), AttemptOutcome::Delivered);
    let requests = server.received_requests().await.unwrap();
    let request = &requests[0];
    let signatures: Vec<&str> = header(request, "webhook-signature").split(' ').collect();
    let (id, timestamp) = (header(request, "webhook-id"), header(request, "webhook-timestamp"));
    assert_eq!(
        signatures,
        [
            expected_signature(&new, id, timestamp, &request.body),
            expected_signature(&old, id, timestamp, &request.body)
        ]
    );
}

#[tokio::test]
async fn gone_disables_and_other_errors_fail() {
    let server = server_answering(ResponseTemplate::new(410).set_body_string("endpoint removed")).await;
    let attempt = sender(&demo_settings()).send(&hook_url(&server), &message(), &[&WebhookSecret::generate()]).await;
    assert_eq!(attempt.outcome(), AttemptOutcome::Gone);
    assert_eq!(attempt.status, Some(410));
    assert_eq!(attempt.response_head, "endpoint removed");
    assert!(attempt.error.is_some());

    let server = server_answering(ResponseTemplate::new(400)).await;
    let attempt = sender(&demo_settings()).send(&hook_url(&server), &message(), &[&WebhookSecret::generate()]).await;
    assert_eq!(attempt.outcome(), AttemptOutcome::Failed);
    assert_eq!(attempt.error.as_deref(), Some("the endpoint answered HTTP 400"));
}

#[tokio::test]
async fn unavailable_with_retry_after_fails_and_names_the_wait() {
    let server = server_answering(ResponseTemplate::new(503).insert_header("Retry-After", "30")).await;

    let attempt = sender(&demo_settings()).send(&hook_url(&server), &message(), &[&WebhookSecret::generate()]).await;

    assert_eq!(attempt.outcome(), AttemptOutcome::Failed);
    assert_eq!(attempt.status, Some(503));
    assert_eq!(attempt.retry_after, Some(Duration::from_secs(30)));
}

#[tokio::test]
async fn a_redirect_is_a_failed_attempt_and_is_not_followed() {
    let target = server_answering(ResponseTemplate::new(200)).await;
    let redirecting =
        server_answering(ResponseTemplate::new(302).insert_header("Location", hook_url(&target).as_str())).await;

    let attempt =
        sender(&demo_settings()).send(&hook_url(&redirecting), &message(), &[&WebhookSecret::generate()]).await;

    assert_eq!(attempt.outcome(), AttemptOutcome::Failed);
    assert_eq!(attempt.status, Some(302));
    assert!(attempt.error.as_deref().unwrap().contains("redirect"), "{attempt:?}");
    assert_eq!(redirecting.received_requests().await.unwrap().len(), 1);
    assert!(target.received_requests().await.unwrap().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn only_the_first_4_kib_of_an_answer_is_kept() {
    let server = server_answering(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; 1024 * 1024])).await;

    let attempt = sender(&demo_settings()).send(&hook_url(&server), &message(), &[&WebhookSecret::generate()]).await;

    assert_eq!(attempt.outcome(), AttemptOutcome::Delivered);
    assert_eq!(attempt.response_head.len(), RESPONSE_HEAD_BYTES);
    assert!(attempt.response_head.bytes().all(|b| b == b'x'));
}

#[tokio::test]
async fn a_server_slower_than_the_timeout_is_a_failed_attempt() {
    let server = server_answering(ResponseTemplate::new(200).set_delay(Duration::from_secs(30))).await;
    let settings = AgencyWebhookSettings { timeout: Duration::from_millis(300), ..demo_settings() };

    let started = Instant::now();
    let attempt = sender(&settings).send(&hook_url(&server), &message(), &[&WebhookSecret::generate()]).await;

    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(attempt.outcome(), AttemptOutcome::Failed);
    assert_eq!((attempt.status, attempt.error.as_deref()), (None, Some("timed out")));
}

#[tokio::test]
async fn without_private_networks_loopback_is_refused_at_connect_time() {
    let server = server_answering(ResponseTemplate::new(200)).await;
    let settings = AgencyWebhookSettings { allow_http: true, ..AgencyWebhookSettings::default() };
    let sender = sender(&settings);
    let secret = WebhookSecret::generate();
    let port = server.address().port();

    // An IP literal: reqwest would connect without asking the resolver.
    let literal = sender.send(&hook_url(&server), &message(), &[&secret]).await;
    // A name: the guarded resolver drops its loopback answers.
    let by_name: url::Url = format!("http://localhost:{port}/hook").parse().unwrap();
    let named = sender.send(&by_name, &message(), &[&secret]).await;

    for attempt in [&literal, &named] {
        assert_eq!(attempt.outcome(), AttemptOutcome::Failed);
        assert_eq!(attempt.status, None);
        assert_eq!(attempt.error.as_deref(), Some("refused: resolves to a non-public address"), "{attempt:?}");
        assert!(!attempt.error.as_deref().unwrap().contains(secret.expose()));
    }
    assert!(server.received_requests().await.unwrap().is_empty(), "the guard let a request through");
}

#[tokio::test]
async fn plain_http_is_refused_unless_allowed_and_unsigned_events_are_not_sent() {
    let server = server_answering(ResponseTemplate::new(200)).await;
    let private_only = AgencyWebhookSettings { allow_private_networks: true, ..AgencyWebhookSettings::default() };

    let http = sender(&private_only).send(&hook_url(&server), &message(), &[&WebhookSecret::generate()]).await;
    let unsigned = sender(&demo_settings()).send(&hook_url(&server), &message(), &[]).await;

    assert_eq!(http.error.as_deref(), Some("refused: the callback URL must use https"));
    assert_eq!(unsigned.outcome(), AttemptOutcome::Failed);
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unknown_host_does_not_resolve() {
    let settings = AgencyWebhookSettings { allow_http: true, ..AgencyWebhookSettings::default() };
    let url: url::Url = "http://does-not-exist.invalid/hook".parse().unwrap();
    let attempt = sender(&settings).send(&url, &message(), &[&WebhookSecret::generate()]).await;
    assert_eq!(attempt.error.as_deref(), Some("does not resolve"));
}

#[test]
fn retry_after_is_seconds_or_an_http_date_capped_at_a_day() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
    let with = |value: &str| {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, value.parse().unwrap());
        retry_after(&headers, now)
    };
    assert_eq!(with("30"), Some(Duration::from_secs(30)));
    assert_eq!(with(" 120 "), Some(Duration::from_secs(120)));
    assert_eq!(with("Wed, 21 Oct 2015 07:30:00 GMT"), Some(Duration::from_secs(120)));
    assert_eq!(with("Wed, 21 Oct 2015 07:00:00 GMT"), Some(Duration::ZERO));
    assert_eq!(with("999999999"), Some(MAX_RETRY_AFTER));
    assert_eq!(with("soon"), None);
    assert_eq!(retry_after(&HeaderMap::new(), now), None);
}
