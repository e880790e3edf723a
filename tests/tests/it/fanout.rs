//! The fan-out end to end, against real peers on loopback: a wiremock CRM and agency endpoint,
//! an SMTP sink. A booking is made and the sandbox confirms it by signed webhook; then the CRM,
//! the agency (webhook, email, feed) and the voucher each get exactly what they should, once.

use std::time::Duration;

use adapters::notify::email::SmtpTls;
use adapters::settings::Secret;
use api::Settings;
use api::config::{CrmSettings, SupplierSettings};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bookhub_tests::{Backend, TestApp, booking_body, eventually, fast_jobs, no_workers, problem};
use hmac::{Hmac, KeyInit, Mac};
use mail_parser::MimeHeaders;
use serde_json::{Value, json};
use sha2::Sha256;
use test_support::SmtpSink;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SETTLE: Duration = Duration::from_secs(20);
const CRM_TOKEN: &str = "crm-test-token";

/// The CRM, the agency's endpoint and the SMTP server, each on loopback.
struct Peers {
    crm: MockServer,
    agency: MockServer,
    smtp: SmtpSink,
}

impl Peers {
    async fn start() -> Peers {
        Peers { crm: MockServer::start().await, agency: MockServer::start().await, smtp: SmtpSink::start().await }
    }

    /// The CRM answers `status` to every record.
    async fn crm_answers(&self, status: u16) {
        Mock::given(method("PUT"))
            .and(path_regex(r"^/api/v1/objects/reservas/records/bk_[0-9a-f]{32}$"))
            .respond_with(ResponseTemplate::new(status).set_body_json(json!({"id": "crm-1"})))
            .mount(&self.crm)
            .await;
    }

    async fn agency_answers(&self, status: u16) {
        Mock::given(method("POST"))
            .and(path("/hooks/bookhub"))
            .respond_with(ResponseTemplate::new(status))
            .mount(&self.agency)
            .await;
    }

    async fn crm_requests(&self) -> Vec<Request> {
        self.crm.received_requests().await.unwrap_or_default()
    }

    async fn agency_requests(&self) -> Vec<Request> {
        self.agency.received_requests().await.unwrap_or_default()
    }

    fn callback_url(&self) -> String {
        format!("{}/hooks/bookhub", self.agency.uri())
    }
}

/// An app whose fan-out reaches `peers`, with the sandbox confirming by webhook.
fn reach(settings: &mut Settings, peers: &Peers) {
    fast_jobs(settings);
    if let Some(SupplierSettings::Sandbox(sandbox)) = settings.suppliers.get_mut(&"sandbox".parse().unwrap()) {
        sandbox.confirm_delay = Duration::from_millis(50);
    }
    settings.crm = Some(CrmSettings {
        base_url: peers.crm.uri(),
        token: Secret::from(CRM_TOKEN.to_owned()),
        allow_http: true,
        max_retries: 3,
        retry_base: Duration::from_millis(10),
        retry_cap: Duration::from_millis(50),
        ..CrmSettings::default()
    });
    settings.email.enabled = true;
    settings.email.host = "127.0.0.1".into();
    settings.email.port = peers.smtp.port();
    settings.email.tls = SmtpTls::None;
    settings.email.from = "bookhub <bookings@bookhub.example>".into();
    settings.agency_webhooks.allow_private_networks = true;
    settings.agency_webhooks.allow_http = true;
    settings.agency_webhooks.retry_schedule = vec![Duration::from_secs(1); 3];
    settings.agency_webhooks.jitter = 0.0;
}

/// A booking with accented guest names, in USD (so the CRM gets `MontoTotalUSD`).
fn usd_booking() -> Value {
    let mut body = booking_body();
    body["rooms"] = json!([{"room_type": "DBL", "board": "BB", "guests": [
        {"first_name": "José", "last_name": "Pérez", "email": "jose.perez@example.com"},
        {"first_name": "María", "last_name": "Gómez"}
    ]}, {"room_type": "SGL", "board": "BB", "guests": [{"first_name": "Åse", "last_name": "Øster"}]}]);
    body["total"] = json!({"amount": "450", "currency": "USD"});
    body
}

/// Sets the agency's callback URL; the signing secret the answer shows once.
async fn set_callback(app: &TestApp, key: &str, url: &str) -> String {
    let answer =
        app.client.put(app.url("/v1/agency/webhook")).bearer_auth(key).json(&json!({"url": url})).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let view: Value = answer.json().await.unwrap();
    assert_eq!(view["enabled"], true, "{view}");
    view["secret"].as_str().expect("the first PUT shows the secret").to_owned()
}

/// Whether `request`'s `webhook-signature` holds a v1 signature made with `secret`.
fn signed_with(request: &Request, secret: &str) -> bool {
    let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", header("webhook-id"), header("webhook-timestamp")).as_bytes());
    mac.update(&request.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    header("webhook-signature").split(' ').any(|s| s == expected)
}

/// Waits until `probe` is `Some`.
async fn until<T, F, Fut>(what: &str, probe: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually(SETTLE, || async { probe().await.ok_or_else(|| format!("waiting for {what}")) }).await
}

/// Books and waits until the sandbox's webhook confirmed it.
async fn confirmed_booking(app: &TestApp, key: &str, body: &Value) -> Value {
    let accepted = app.booked(key, body).await;
    app.wait_for_status(key, accepted["id"].as_str().unwrap(), "confirmed", SETTLE).await
}

fn pdf_text(pdf: &[u8]) -> String {
    let document = lopdf::Document::load_mem(pdf).expect("a PDF");
    let pages: Vec<u32> = document.get_pages().keys().copied().collect();
    document.extract_text(&pages).expect("text in the PDF")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_reaches_the_crm_the_agency_and_a_voucher_once_each() {
    let peers = Peers::start().await;
    peers.crm_answers(201).await;
    peers.agency_answers(204).await;
    let app = TestApp::spawn_with(Backend::from_env(), |s| reach(s, &peers)).await;
    let (_, key) = app.agency("Viajes Ñandú").await;
    let secret = set_callback(&app, &key, &peers.callback_url()).await;

    let booking = confirmed_booking(&app, &key, &usd_booking()).await;
    let id = booking["id"].as_str().unwrap();
    let reference = booking["supplier_reference"].as_str().unwrap();

    // The CRM: one upsert of this booking's record, every field as the mapping says.
    let crm = until("the CRM upsert", || async { Some(peers.crm_requests().await).filter(|r| !r.is_empty()) }).await;
    let [upsert] = &crm[..] else { panic!("one CRM call expected, got {}", crm.len()) };
    assert_eq!(upsert.url.path(), format!("/api/v1/objects/reservas/records/{id}"));
    assert_eq!(upsert.headers.get("authorization").unwrap(), &format!("Bearer {CRM_TOKEN}"));
    let fields: Value = serde_json::from_slice::<Value>(&upsert.body).unwrap()["fields"].clone();
    let created = chrono::DateTime::parse_from_rfc3339(booking["created_at"].as_str().unwrap()).unwrap();
    // Caracas keeps UTC−4 all year.
    let caracas =
        created.with_timezone(&chrono::FixedOffset::west_opt(4 * 3600).unwrap()).format("%d/%m/%Y").to_string();
    assert_eq!(
        fields,
        json!({
            "ContactEmail": "jose.perez@example.com",
            "FechaReserva": caracas,
            "MontoTotalUSD": "450.00",
            "TipoHabitacion": "Doble",
            "Regimen": "Desayuno",
            "EstadoReserva": "Confirmada",
            "LocalizadorProveedor": reference,
            "Agencia": "Viajes Ñandú",
            "FechaEntrada": "15/03/2027",
            "FechaSalida": "18/03/2027",
        })
    );

    // The agency's endpoint: one webhook, signed with the agency's secret, carrying the event.
    let hooks =
        until("the agency webhook", || async { Some(peers.agency_requests().await).filter(|r| !r.is_empty()) }).await;
    let [hook] = &hooks[..] else { panic!("one webhook expected, got {}", hooks.len()) };
    assert!(signed_with(hook, &secret), "the webhook verifies with the agency's secret");
    let delivered: Value = serde_json::from_slice(&hook.body).unwrap();
    assert_eq!((delivered["type"].as_str(), delivered["data"]["id"].as_str()), (Some("booking.confirmed"), Some(id)));
    assert_eq!(hook.headers.get("webhook-id").unwrap().to_str().unwrap(), delivered["id"].as_str().unwrap());

    // The feed lists the same event.
    let feed = app.get_json(&key, "/v1/events").await;
    let listed: Vec<&Value> = feed["data"].as_array().unwrap().iter().filter(|e| e["data"]["id"] == id).collect();
    assert_eq!(listed, vec![&delivered], "the feed and the webhook carry the same event");

    // The email: one, with the voucher attached.
    let mails = peers.smtp.wait_for(1).await;
    let [mail] = &mails[..] else { panic!("one email expected, got {}", mails.len()) };
    let message = mail_parser::MessageParser::default().parse(mail).unwrap();
    let attachment = message.attachments().next().expect("the voucher is attached");
    assert_eq!(attachment.content_type().map(|c| (c.ctype(), c.subtype())), Some(("application", Some("pdf"))));
    let text = message.body_text(0).unwrap();
    assert!(text.contains(reference) && text.contains("PMI-00042") && text.contains("Pérez"), "{text}");

    // The voucher: the same PDF to download, with the booking, the stay and the guests in it.
    let pdf = app.get(&key, &format!("/v1/bookings/{id}/voucher")).send().await.unwrap();
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.headers().get("content-type").unwrap(), "application/pdf");
    let text = pdf_text(&pdf.bytes().await.unwrap());
    for expected in [id, reference, "José Pérez", "María Gómez", "Åse Øster", "PMI-00042", "2027-03-15", "2027-03-18"]
    {
        assert!(text.contains(expected), "the voucher shows {expected:?}: {text}");
    }
    let number =
        regex::Regex::new(r"VCH-\d{4}-\d{6}").unwrap().find(&text).expect("a voucher number").as_str().to_owned();
    assert_eq!(attachment.attachment_name(), Some(format!("{number}.pdf").as_str()));

    assert_eq!(peers.crm_requests().await.len(), 1, "still one CRM call");
    assert_eq!(peers.agency_requests().await.len(), 1, "still one webhook");
    assert_eq!(peers.smtp.received().len(), 1, "still one email");

    // verify: valid, then void once the booking is cancelled. Public, and no personal data.
    let verify = |n: String| {
        let client = app.client.clone();
        let url = app.url(&format!("/v1/vouchers/{n}/verify"));
        async move { client.get(url).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let check = verify(number.clone()).await;
    assert_eq!((check["status"].as_str(), check["hotel_code"].as_str()), (Some("valid"), Some("PMI-00042")), "{check}");
    assert!(!check.to_string().contains("Pérez"), "{check}");
    let cancel = app.post(&key, &format!("/v1/bookings/{id}/cancel")).send().await.unwrap();
    assert_eq!(cancel.status(), 202);
    app.wait_for_status(&key, id, "cancelled", SETTLE).await;
    assert_eq!(verify(number).await["status"], "void");
}

/// The dead jobs of `queue`, as staff list them.
async fn dead_jobs(app: &TestApp, queue: &str) -> Vec<Value> {
    let staff = app.key(adapters::store::api_keys::Role::Staff).await;
    let page = app.get_json(&staff, "/v1/jobs?status=dead&limit=100").await;
    page["data"].as_array().unwrap().iter().filter(|j| j["queue"] == queue).cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crm_that_fails_twice_then_answers_gets_one_record() {
    let peers = Peers::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&peers.crm)
        .await;
    peers.crm_answers(200).await;
    let app = TestApp::spawn_with(Backend::from_env(), |s| reach(s, &peers)).await;
    let (_, key) = app.agency("Viajes Sol").await;
    let booking = confirmed_booking(&app, &key, &usd_booking()).await;

    let calls = until("the CRM's 200", || async { Some(peers.crm_requests().await).filter(|r| r.len() >= 3) }).await;
    let record = format!("/api/v1/objects/reservas/records/{}", booking["id"].as_str().unwrap());
    assert!(calls.iter().all(|c| c.url.path() == record), "every call writes the same record");
    assert_eq!(calls.len(), 3, "two 503s, then the 200");
    assert!(dead_jobs(&app, "bookhub.update_crm").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crm_that_refuses_a_field_leaves_a_dead_job_naming_it() {
    let peers = Peers::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({"error": "is not allowed", "field": "Regimen"})))
        .mount(&peers.crm)
        .await;
    let app = TestApp::spawn_with(Backend::from_env(), |s| reach(s, &peers)).await;
    let (_, key) = app.agency("Viajes Sol").await;
    confirmed_booking(&app, &key, &usd_booking()).await;

    let dead = until("the dead CRM job", || async { dead_jobs(&app, "bookhub.update_crm").await.pop() }).await;
    let reason = dead["last_result"].as_str().unwrap_or_default();
    assert!(reason.contains("422") && reason.contains("Regimen"), "{dead}");
    assert_eq!(peers.crm_requests().await.len(), 1, "a 422 is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_the_crm_mapping_refuses_is_never_sent_and_says_why() {
    let peers = Peers::start().await;
    peers.crm_answers(200).await;
    let app = TestApp::spawn_with(Backend::from_env(), |s| reach(s, &peers)).await;
    let (_, key) = app.agency("Viajes Sol").await;
    let mut body = usd_booking();
    // Intake takes it; the CRM's `email` rule (a dot-atom) does not.
    body["rooms"][0]["guests"][0]["email"] = json!("jose..perez@example.com");
    confirmed_booking(&app, &key, &body).await;

    let dead = until("the dead CRM job", || async { dead_jobs(&app, "bookhub.update_crm").await.pop() }).await;
    let reason = dead["last_result"].as_str().unwrap_or_default();
    assert!(reason.contains("ContactEmail: not a valid email address"), "{dead}");
    assert!(!reason.contains("perez"), "the reason names the field, not the address: {reason}");
    assert!(peers.crm_requests().await.is_empty(), "no half-filled record is sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agency_endpoint_down_for_a_while_gets_the_event_later_and_the_failures_are_logged() {
    let peers = Peers::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("down for maintenance\0"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&peers.agency)
        .await;
    peers.agency_answers(204).await;
    let app = TestApp::spawn_with(Backend::from_env(), |s| reach(s, &peers)).await;
    let (_, key) = app.agency("Viajes Sol").await;
    set_callback(&app, &key, &peers.callback_url()).await;
    confirmed_booking(&app, &key, &usd_booking()).await;

    let event = until("the event", || async {
        app.get_json(&key, "/v1/events").await["data"].as_array().unwrap().first().cloned()
    })
    .await;
    let attempts_path = format!("/v1/events/{}/attempts", event["id"].as_str().unwrap());
    let log = until("the delivery", || async {
        Some(app.get_json(&key, &attempts_path).await).filter(|log| log["delivery"] == "delivered")
    })
    .await;
    let attempts = log["data"].as_array().unwrap();
    let statuses: Vec<(i64, i64, &str)> = attempts
        .iter()
        .map(|a| (a["attempt"].as_i64().unwrap(), a["status"].as_i64().unwrap(), a["trigger"].as_str().unwrap()))
        .collect();
    assert_eq!(statuses, vec![(1, 503, "scheduled"), (2, 503, "scheduled"), (3, 204, "scheduled")]);
    // A NUL in an answer is kept as U+FFFD (Postgres text takes no NUL).
    assert_eq!(attempts[0]["response"], "down for maintenance\u{FFFD}");
    assert_eq!(peers.agency_requests().await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_answering_410_is_disabled_and_the_agency_is_told() {
    let peers = Peers::start().await;
    peers.agency_answers(410).await;
    let app = TestApp::spawn_with(Backend::from_env(), |s| reach(s, &peers)).await;
    let (_, key) = app.agency("Viajes Sol").await;
    set_callback(&app, &key, &peers.callback_url()).await;
    confirmed_booking(&app, &key, &usd_booking()).await;

    let view = until("the endpoint disabled", || async {
        Some(app.get_json(&key, "/v1/agency/webhook").await).filter(|v| v["enabled"] == false)
    })
    .await;
    assert!(view["disabled_reason"].as_str().unwrap().contains("410"), "{view}");
    let mails = peers.smtp.wait_for(2).await;
    let subjects: Vec<String> = mails
        .iter()
        .map(|m| mail_parser::MessageParser::default().parse(m).unwrap().subject().unwrap_or_default().to_owned())
        .collect();
    assert!(subjects.iter().any(|s| s.contains("disabled")), "{subjects:?}");
    assert_eq!(peers.agency_requests().await.len(), 1, "no retry after a 410");
    let event = app.get_json(&key, "/v1/events").await["data"][0]["id"].as_str().unwrap().to_owned();
    let log = app.get_json(&key, &format!("/v1/events/{event}/attempts")).await;
    assert_eq!(log["delivery"], "failed", "nothing is scheduled after a 410: {log}");

    // Recovering re-enables it and sends the event again.
    peers.agency.reset().await;
    peers.agency_answers(204).await;
    let recover = app
        .post(&key, "/v1/agency/webhook/recover")
        .json(&json!({"since": "2026-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(recover.status(), 202);
    assert_eq!(recover.json::<Value>().await.unwrap(), json!({"events": 1, "more": false}));
    until("the recovered delivery", || async { Some(peers.agency_requests().await).filter(|r| r.len() == 1) }).await;
    assert_eq!(app.get_json(&key, "/v1/agency/webhook").await["enabled"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_rotation_both_secrets_sign_and_after_it_only_the_new_one() {
    let peers = Peers::start().await;
    peers.agency_answers(204).await;
    let app = TestApp::spawn_with(Backend::from_env(), |s| {
        reach(s, &peers);
        s.agency_webhooks.secret_grace = Duration::from_secs(2);
    })
    .await;
    let (_, key) = app.agency("Viajes Sol").await;
    let old = set_callback(&app, &key, &peers.callback_url()).await;
    let rotated: Value = app.post(&key, "/v1/agency/webhook/rotate-secret").send().await.unwrap().json().await.unwrap();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(old, new);

    confirmed_booking(&app, &key, &usd_booking()).await;
    let hooks = until("the webhook", || async { Some(peers.agency_requests().await).filter(|r| !r.is_empty()) }).await;
    let signature = hooks[0].headers.get("webhook-signature").unwrap().to_str().unwrap().to_owned();
    assert_eq!(signature.split(' ').count(), 2, "{signature}");
    assert!(signed_with(&hooks[0], &old) && signed_with(&hooks[0], &new));

    // After the grace period, a resend is signed with the new secret alone.
    let until_then = chrono::DateTime::parse_from_rfc3339(rotated["previous_secret_until"].as_str().unwrap()).unwrap();
    let left = (until_then.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(100)).await; // a time limit, not a condition to poll
    let event = hooks[0].headers.get("webhook-id").unwrap().to_str().unwrap().to_owned();
    assert_eq!(app.post(&key, &format!("/v1/events/{event}/resend")).send().await.unwrap().status(), 202);
    let hooks = until("the resend", || async { Some(peers.agency_requests().await).filter(|r| r.len() == 2) }).await;
    assert!(signed_with(&hooks[1], &new) && !signed_with(&hooks[1], &old));
    assert_eq!(hooks[1].headers.get("webhook-signature").unwrap().to_str().unwrap().split(' ').count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_on_a_private_network_is_refused_unless_configuration_allows_it() {
    let app = TestApp::spawn_with(Backend::from_env(), no_workers).await;
    let (_, key) = app.agency("Viajes Sol").await;
    for url in ["https://127.0.0.1/hooks", "https://10.0.0.1/hooks", "https://[::1]/hooks", "http://example.com/hooks"]
    {
        let answer = app
            .client
            .put(app.url("/v1/agency/webhook"))
            .bearer_auth(&key)
            .json(&json!({"url": url}))
            .send()
            .await
            .unwrap();
        let problem = problem(answer, 422).await;
        assert_eq!(problem["errors"][0]["field"], "url", "{url}: {problem}");
    }
    assert_eq!(app.get_json(&key, "/v1/agency/webhook").await["url"], Value::Null, "nothing was stored");
}

/// The payloads queued on `queue`, read back from the queue's own table.
async fn queued_payloads(app: &TestApp, queue: &str) -> Vec<Vec<u8>> {
    match app.db.pool() {
        adapters::store::Pool::Postgres(p) => sqlx::query_scalar("SELECT job FROM apalis.jobs WHERE job_type = $1")
            .bind(queue)
            .fetch_all(p)
            .await
            .unwrap(),
        adapters::store::Pool::Sqlite(p) => {
            sqlx::query_scalar("SELECT job FROM Jobs WHERE job_type = ?1").bind(queue).fetch_all(p).await.unwrap()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fan_out_job_run_twice_has_the_effect_of_running_once() {
    let peers = Peers::start().await;
    peers.crm_answers(200).await;
    peers.agency_answers(204).await;
    let app = TestApp::spawn_with(Backend::from_env(), |s| {
        reach(s, &peers);
        no_workers(s);
    })
    .await;
    let (_, key) = app.agency("Viajes Sol").await;
    set_callback(&app, &key, &peers.callback_url()).await;
    let accepted = app.booked(&key, &usd_booking()).await;
    let id = accepted["id"].as_str().unwrap();
    // Submit; the sandbox's confirmation webhook arrives; apply it and fan out.
    let booking_path = format!("/v1/bookings/{id}");
    until("the confirmation", || async {
        app.run_due_jobs().await;
        (app.get_json(&key, &booking_path).await["status"] == "confirmed").then_some(())
    })
    .await;
    app.run_due_jobs().await;
    let once = (peers.crm_requests().await.len(), peers.smtp.received().len(), peers.agency_requests().await.len());
    assert_eq!(once, (1, 1, 1), "CRM calls, emails, webhooks after one run");
    let booking_id: domain::BookingId = id.parse().unwrap();
    let voucher = adapters::store::vouchers::for_booking(&app.db, &booking_id).await.unwrap().expect("a voucher");

    // Each fan-out job again, as a worker that died before acknowledging would run it.
    for queue in [jobs::fanout::UpdateCrm::QUEUE, jobs::fanout::NotifyAgency::QUEUE, jobs::fanout::IssueVoucher::QUEUE]
    {
        let payloads = queued_payloads(&app, queue).await;
        assert_eq!(payloads.len(), 1, "{queue}");
        let again = adapters::store::queue::EnqueuedJob::new(queue, payloads[0].clone(), "run-again".into());
        adapters::store::queue::push(app.db.pool(), &[again]).await.unwrap();
    }
    assert_eq!(app.run_due_jobs().await, 3);

    let crm = peers.crm_requests().await;
    assert_eq!(crm.len(), 2, "the CRM job ran twice");
    assert_eq!((crm[0].url.path(), &crm[0].body), (crm[1].url.path(), &crm[1].body), "and wrote the same record twice");
    assert_eq!(peers.smtp.received().len(), 1, "one email per event");
    assert_eq!(peers.agency_requests().await.len(), 1, "one webhook per event");
    let again = adapters::store::vouchers::for_booking(&app.db, &booking_id).await.unwrap().expect("a voucher");
    assert_eq!(again.number, voucher.number, "one voucher number");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_fan_out_tells_what_is_still_true_and_never_an_older_status_after_a_newer_one() {
    let peers = Peers::start().await;
    peers.crm_answers(200).await;
    peers.agency_answers(204).await;
    let app = TestApp::spawn_with(Backend::from_env(), |s| {
        reach(s, &peers);
        no_workers(s);
    })
    .await;
    let (_, key) = app.agency("Viajes Sol").await;
    set_callback(&app, &key, &peers.callback_url()).await;
    let accepted = app.booked(&key, &usd_booking()).await;
    let id: domain::BookingId = accepted["id"].as_str().unwrap().parse().unwrap();

    // Confirmed, then cancelled, before any fan-out job runs (a backlog, a worker outage).
    let confirmed = domain::BookingEvent::SupplierConfirmed { supplier_reference: "SBX-STALE".into() };
    let scope = adapters::store::bookings::Scope::All;
    adapters::store::bookings::apply_event(&app.db, &scope, &id, &confirmed, jobs::fanout::for_outcome).await.unwrap();
    let cancel = app.post(&key, &format!("/v1/bookings/{id}/cancel")).send().await.unwrap();
    assert_eq!(cancel.status(), 202);
    app.run_due_jobs().await;
    assert_eq!(app.get_json(&key, &format!("/v1/bookings/{id}")).await["status"], "cancelled");

    // Three changes, three events in the feed; only the newest was sent.
    let feed = app.get_json(&key, "/v1/events").await;
    let types: Vec<&str> = feed["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["booking.confirmed", "booking.cancellation_pending", "booking.cancelled"]);
    let hooks = peers.agency_requests().await;
    let sent: Vec<String> = hooks
        .iter()
        .map(|h| serde_json::from_slice::<Value>(&h.body).unwrap()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent, ["booking.cancelled"], "no older status after the newer one");
    let first = feed["data"][0]["id"].as_str().unwrap();
    assert_eq!(app.get_json(&key, &format!("/v1/events/{first}/attempts")).await["delivery"], "superseded");
    assert_eq!(peers.smtp.received().len(), 1, "one email, for the newest change");

    // The CRM got the booking as it is now from every job; no voucher for a cancelled booking.
    let crm = peers.crm_requests().await;
    assert!(!crm.is_empty());
    for call in &crm {
        let fields: Value = serde_json::from_slice::<Value>(&call.body).unwrap()["fields"].clone();
        assert_eq!(fields["EstadoReserva"], "Cancelada", "{fields}");
    }
    assert!(adapters::store::vouchers::for_booking(&app.db, &id).await.unwrap().is_none());
}
