//! The fan-out's three peers on loopback, each noting when each booking's delivery arrived: a
//! CRM (wiremock, 200 to every record upsert, the booking id read from the record's path), an
//! agency endpoint (wiremock, 204 to every webhook, the booking id read from the event's
//! `data.id`) and an SMTP server ([`SmtpSink`], the booking id read from the subject).
//!
//! The instants are taken as each request reaches its peer, before it is answered; wiremock's own
//! request log is off, so a long run does not keep every body.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use adapters::notify::email::SmtpTls;
use adapters::settings::Secret;
use api::Settings;
use api::config::CrmSettings;
use serde_json::{Value, json};
use test_support::SmtpSink;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Each booking's deliveries at one peer, with when each arrived, in arrival order.
#[derive(Debug, Clone, Default)]
struct Arrivals(Arc<Mutex<Vec<(String, Instant)>>>);

impl Arrivals {
    fn record(&self, booking: &str, at: Instant) {
        self.lock().push((booking.to_owned(), at));
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn all(&self) -> Vec<(String, Instant)> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, Instant)>> {
        // A poisoned lock means a responder panicked: the run is broken anyway.
        self.0.lock().expect("an arrival log is never poisoned")
    }
}

/// The CRM's answer to `PUT /api/v1/objects/reservas/records/{booking id}`.
struct CrmRecord(Arrivals);

impl Respond for CrmRecord {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let at = Instant::now();
        if let Some(booking) = request.url.path().rsplit('/').next() {
            self.0.record(booking, at);
        }
        ResponseTemplate::new(200).set_body_json(json!({"id": "crm-record"}))
    }
}

/// The agency endpoint's answer to a webhook; only `booking.confirmed` events are noted.
struct AgencyHook(Arrivals);

impl Respond for AgencyHook {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let at = Instant::now();
        if let Ok(event) = serde_json::from_slice::<Value>(&request.body)
            && event["type"] == "booking.confirmed"
            && let Some(booking) = event["data"]["id"].as_str()
        {
            self.0.record(booking, at);
        }
        ResponseTemplate::new(204)
    }
}

/// When each booking's delivery reached each peer.
#[derive(Debug, Default)]
pub(super) struct Delivered {
    pub crm: Vec<(String, Instant)>,
    pub agency: Vec<(String, Instant)>,
    pub email: Vec<(String, Instant)>,
}

/// The CRM, the agency endpoint and the SMTP server, on loopback.
pub(super) struct Peers {
    crm: MockServer,
    agency: MockServer,
    smtp: SmtpSink,
    crm_arrivals: Arrivals,
    agency_arrivals: Arrivals,
}

impl Peers {
    pub async fn start() -> Peers {
        let quiet = || MockServer::builder().disable_request_recording().start();
        let (crm, agency) = (quiet().await, quiet().await);
        let (crm_arrivals, agency_arrivals) = (Arrivals::default(), Arrivals::default());
        Mock::given(method("PUT"))
            .and(path_regex(r"^/api/v1/objects/reservas/records/bk_[0-9a-f]{32}$"))
            .respond_with(CrmRecord(crm_arrivals.clone()))
            .mount(&crm)
            .await;
        Mock::given(method("POST"))
            .and(path("/hooks/bookhub"))
            .respond_with(AgencyHook(agency_arrivals.clone()))
            .mount(&agency)
            .await;
        Peers { crm, agency, smtp: SmtpSink::start().await, crm_arrivals, agency_arrivals }
    }

    /// bookhub's fan-out pointed at these peers: the CRM over plain HTTP, email over plain SMTP,
    /// agency webhooks allowed to a loopback `http://` address. Retries and timeouts stay at
    /// bookhub's defaults: nothing here fails.
    pub fn reach(&self, settings: &mut Settings) {
        settings.crm = Some(CrmSettings {
            base_url: self.crm.uri(),
            token: Secret::from("loadgen-crm-token".to_owned()),
            allow_http: true,
            ..CrmSettings::default()
        });
        settings.email.enabled = true;
        settings.email.host = "127.0.0.1".into();
        settings.email.port = self.smtp.port();
        settings.email.tls = SmtpTls::None;
        settings.email.from = "bookhub <bookings@bookhub.example>".into();
        settings.agency_webhooks.allow_private_networks = true;
        settings.agency_webhooks.allow_http = true;
    }

    /// The agency's callback URL.
    pub fn callback_url(&self) -> String {
        format!("{}/hooks/bookhub", self.agency.uri())
    }

    /// How many deliveries each peer has taken so far: (CRM, agency webhooks, emails).
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.crm_arrivals.len(), self.agency_arrivals.len(), self.smtp.count())
    }

    /// Every delivery so far; emails are read for the booking id of their subject
    /// (`Booking bk_… confirmed — …`), and only confirmations are kept.
    pub fn delivered(&self) -> Delivered {
        let parser = mail_parser::MessageParser::default();
        let email = self
            .smtp
            .mails()
            .into_iter()
            .filter_map(|mail| {
                let message = parser.parse_headers(&mail.data)?;
                let mut words = message.subject()?.split_whitespace();
                match (words.next(), words.next(), words.next()) {
                    (Some("Booking"), Some(booking), Some("confirmed")) => Some((booking.to_owned(), mail.received_at)),
                    _ => None,
                }
            })
            .collect();
        Delivered { crm: self.crm_arrivals.all(), agency: self.agency_arrivals.all(), email }
    }
}

/// For each booking that has one, its first delivery no earlier than its confirmation was sent.
pub(super) fn first_after(arrivals: &[(String, Instant)], sent: &HashMap<String, Instant>) -> HashMap<String, Instant> {
    let mut first: HashMap<String, Instant> = HashMap::new();
    for (booking, at) in arrivals {
        if sent.get(booking).is_some_and(|t0| at >= t0) {
            first.entry(booking.clone()).and_modify(|f| *f = (*f).min(*at)).or_insert(*at);
        }
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_delivery_after_the_send_counts_and_earlier_ones_do_not() {
        let t0 = Instant::now();
        let (late, later) = (t0 + std::time::Duration::from_millis(5), t0 + std::time::Duration::from_millis(9));
        let before = t0.checked_sub(std::time::Duration::from_millis(1)).unwrap();
        let sent = HashMap::from([("bk_a".to_owned(), t0), ("bk_b".to_owned(), t0)]);
        let arrivals = vec![
            ("bk_a".to_owned(), later),
            ("bk_a".to_owned(), late),
            ("bk_b".to_owned(), before),
            ("bk_unknown".to_owned(), late),
        ];
        let first = first_after(&arrivals, &sent);
        assert_eq!(first, HashMap::from([("bk_a".to_owned(), late)]));
    }

    #[tokio::test]
    async fn the_peers_note_each_confirmed_booking_as_it_arrives() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let peers = Peers::start().await;
        let client = reqwest::Client::new();
        let booking = format!("bk_{:032x}", 7);
        let record = format!("{}/api/v1/objects/reservas/records/{booking}", peers.crm.uri());
        let crm = client.put(record).json(&json!({"fields": {}})).send().await.unwrap();
        assert_eq!(crm.status(), 200);
        for type_ in ["booking.confirmed", "booking.cancelled"] {
            let event = json!({"id": "evt_1", "type": type_, "data": {"id": booking}});
            let hook = client.post(peers.callback_url()).json(&event).send().await.unwrap();
            assert_eq!(hook.status(), 204);
        }
        assert_eq!(peers.counts(), (1, 1, 0), "a cancellation is not a confirmation's delivery");
        let delivered = peers.delivered();
        assert_eq!(delivered.crm[0].0, booking);
        assert_eq!(delivered.agency[0].0, booking);
    }
}
