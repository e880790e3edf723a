//! Reconciliation with a supplier (the simulator's jsonrest), seeded with one booking per way
//! the two can disagree: each is found with its reason and nothing else is; what the supplier
//! owns is healed through the state machine and fans out; a second run adds no duplicate, and
//! a difference that went away is closed.

use std::collections::BTreeMap;
use std::str::FromStr;

use adapters::store::agency_events;
use adapters::store::api_keys::Role;
use adapters::store::reconciliation::{self, MismatchStatus};
use bookhub_tests::sim::{Confirmation, Money, Protocol, SimEdit, SimStatus, SupplierSim};
use bookhub_tests::{TestApp, booking_body, with_simulator};
use domain::{BookingId, SupplierCode};
use rust_decimal::Decimal;
use serde_json::json;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A jsonrest booking by `agency`, submitted (the due jobs run): its id.
pub(crate) async fn book(app: &TestApp, agency: &str, client_reference: &str) -> String {
    let mut body = booking_body();
    body["supplier"] = json!("jsonrest");
    body["client_reference"] = json!(client_reference);
    let id = app.booked(agency, &body).await["id"].as_str().unwrap().to_owned();
    app.run_due_jobs().await;
    id
}

pub(crate) async fn status(app: &TestApp, agency: &str, id: &str) -> String {
    app.get_json(agency, &format!("/v1/bookings/{id}")).await["status"].as_str().unwrap().to_owned()
}

fn eur(amount: &str, currency: &str) -> Money {
    Money { amount: Decimal::from_str(amount).unwrap(), currency: currency.into() }
}

struct Seeded {
    agreeing: String,
    amount: String,
    currency: String,
    dates: String,
    rooms: String,
    cancelled_there: String,
    confirmed_there: String,
    lost_there: String,
    cancelled_here: String,
    unknown_reference: String,
}

/// One booking per kind of disagreement, and one that agrees.
async fn seed(sim: &SupplierSim, app: &TestApp, agency: &str) -> Seeded {
    let agreeing = book(app, agency, "AG-ok").await;
    let amount = book(app, agency, "AG-amount").await;
    let currency = book(app, agency, "AG-currency").await;
    let dates = book(app, agency, "AG-dates").await;
    let rooms = book(app, agency, "AG-rooms").await;
    let cancelled_there = book(app, agency, "AG-cxl").await;
    let lost_there = book(app, agency, "AG-lost").await;
    let cancelled_here = book(app, agency, "AG-cxl-here").await;
    app.post(agency, &format!("/v1/bookings/{cancelled_here}/cancel")).send().await.unwrap();
    app.run_due_jobs().await;
    // The supplier confirms this one later, by a webhook that never comes.
    sim.set_confirmation(Protocol::Jsonrest, Confirmation::Later { delay: std::time::Duration::from_secs(3600) });
    let confirmed_there = book(app, agency, "AG-late").await;
    sim.set_confirmation(Protocol::Jsonrest, Confirmation::Instant);
    for (id, expected) in [(&agreeing, "confirmed"), (&confirmed_there, "pending"), (&cancelled_here, "cancelled")] {
        assert_eq!(status(app, agency, id).await, expected, "{id} before the run");
    }

    let edit = |id: &str, edit: SimEdit| sim.edit(Protocol::Jsonrest, id, edit);
    edit(&amount, SimEdit { total: Some(eur("450.01", "EUR")), ..SimEdit::default() });
    edit(&currency, SimEdit { total: Some(eur("450.00", "USD")), ..SimEdit::default() });
    edit(&dates, SimEdit { check_out: chrono::NaiveDate::from_ymd_opt(2027, 3, 19), ..SimEdit::default() });
    edit(&rooms, SimEdit { room_type: Some("TWN.ST".into()), ..SimEdit::default() });
    edit(&cancelled_there, SimEdit { status: Some(SimStatus::Cancelled), ..SimEdit::default() });
    edit(&confirmed_there, SimEdit { status: Some(SimStatus::Confirmed), ..SimEdit::default() });
    edit(&cancelled_here, SimEdit { status: Some(SimStatus::Confirmed), ..SimEdit::default() });
    sim.forget(Protocol::Jsonrest, &lost_there);
    let unknown_reference = sim.copy(Protocol::Jsonrest, &agreeing, "bk_never_made_here");
    Seeded {
        agreeing,
        amount,
        currency,
        dates,
        rooms,
        cancelled_there,
        confirmed_there,
        lost_there,
        cancelled_here,
        unknown_reference,
    }
}

/// The open mismatches as (subject, reason).
async fn open(app: &TestApp) -> BTreeMap<(String, String), (Option<String>, Option<String>, String)> {
    let rows =
        reconciliation::mismatches(&app.db, Some(MismatchStatus::Open), Some("jsonrest"), None, 100).await.unwrap();
    rows.into_iter()
        .map(|m| {
            let subject =
                m.booking_id.clone().unwrap_or_else(|| format!("ref:{}", m.supplier_reference.clone().unwrap()));
            ((subject, m.reason.to_string()), (m.ours, m.theirs, m.first_run))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_disagreement_is_found_once_what_the_supplier_owns_is_healed_and_what_went_away_is_closed() {
    let (sim, app) = with_simulator(bookhub_tests::no_workers).await;
    let (_, agency) = app.agency("Viajes Sol").await;
    let from = chrono::Utc::now() - chrono::Duration::minutes(1);
    let s = seed(&sim, &app, &agency).await;
    let jsonrest: SupplierCode = "jsonrest".parse().unwrap();
    let to = chrono::Utc::now() + chrono::Duration::minutes(1);

    let first = jobs::reconcile::run(app.jobs(), &jsonrest, from, to).await.unwrap();
    let expected: BTreeMap<String, u64> = [
        ("amount_differs", 1),
        ("currency_differs", 1),
        ("dates_differs", 1),
        ("rooms_differs", 1),
        ("status_differs", 1),
        ("missing_at_supplier", 1),
        ("missing_in_bookhub", 1),
        ("healed", 2),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(first.counts, expected, "every difference once, nothing else");

    let found = open(&app).await;
    let key = |subject: &str, reason: &str| (subject.to_owned(), reason.to_owned());
    let values = |subject: &str, reason: &str| {
        let (ours, theirs, _) =
            found.get(&key(subject, reason)).unwrap_or_else(|| panic!("{reason} of {subject}: {found:?}"));
        (ours.clone().unwrap_or_default(), theirs.clone().unwrap_or_default())
    };
    assert_eq!(values(&s.amount, "amount_differs"), ("450.00 EUR".into(), "450.01 EUR".into()));
    assert_eq!(values(&s.currency, "currency_differs"), ("450.00 EUR".into(), "450.00 USD".into()));
    assert_eq!(values(&s.dates, "dates_differs"), ("2027-03-15/2027-03-18".into(), "2027-03-15/2027-03-19".into()));
    assert_eq!(values(&s.rooms, "rooms_differs"), ("DBL+BB".into(), "TWN+BB".into()));
    assert_eq!(values(&s.cancelled_here, "status_differs"), ("cancelled".into(), "confirmed".into()));
    assert_eq!(values(&s.lost_there, "missing_at_supplier").0, "confirmed");
    assert_eq!(values(&format!("ref:{}", s.unknown_reference), "missing_in_bookhub").1, "confirmed");
    assert_eq!(found.len(), 7, "{found:?}");
    assert!(!found.keys().any(|(subject, _)| *subject == s.agreeing), "the agreeing booking is not flagged");

    // Healed through the state machine, and the change fanned out as a webhook's would.
    assert_eq!(status(&app, &agency, &s.confirmed_there).await, "confirmed");
    assert_eq!(status(&app, &agency, &s.cancelled_there).await, "cancelled");
    for (id, event) in [(&s.confirmed_there, "booking.confirmed"), (&s.cancelled_there, "booking.cancelled")] {
        let latest = agency_events::latest_for_booking(&app.db, &BookingId::from_str(id).unwrap()).await.unwrap();
        assert_eq!(latest.map(|e| e.event_type.to_string()), Some(event.to_owned()), "{id}");
    }
    assert!(app.run_due_jobs().await > 0, "the healed bookings' fan-out jobs were queued");

    // A second run finds the same mismatches: the same rows, not new ones.
    let second = jobs::reconcile::run(app.jobs(), &jsonrest, from, chrono::Utc::now() + chrono::Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(second.counts.get("healed"), None, "nothing left to heal");
    let again = open(&app).await;
    assert_eq!(again.keys().collect::<Vec<_>>(), found.keys().collect::<Vec<_>>());
    assert!(again.values().all(|(_, _, first_run)| *first_run == first.id.to_string()), "first seen in the first run");

    // The supplier corrects the amount: the next run closes that mismatch, keeps the rest.
    sim.edit(Protocol::Jsonrest, &s.amount, SimEdit { total: Some(eur("450.00", "EUR")), ..SimEdit::default() });
    jobs::reconcile::run(app.jobs(), &jsonrest, from, chrono::Utc::now() + chrono::Duration::minutes(1)).await.unwrap();
    let third = open(&app).await;
    assert_eq!(third.len(), 6);
    assert!(!third.contains_key(&key(&s.amount, "amount_differs")), "closed once it went away");
}

/// The API: finance starts a run and follows it to `done`, lists what it found, resolves a
/// mismatch with a note (once: again is 409), and a later run does not raise it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finance_runs_a_reconciliation_through_the_api_and_resolves_what_it_found() {
    let (sim, app) = with_simulator(bookhub_tests::no_workers).await;
    let (_, agency) = app.agency("Viajes Sol").await;
    let finance = app.key(Role::Finance).await;
    let from = chrono::Utc::now() - chrono::Duration::minutes(1);
    let booking = book(&app, &agency, "AG-amount").await;
    sim.edit(Protocol::Jsonrest, &booking, SimEdit { total: Some(eur("399.99", "EUR")), ..SimEdit::default() });
    let window = json!({"supplier": "jsonrest", "from": from, "to": chrono::Utc::now() + chrono::Duration::minutes(1)});

    let started = app.post(&finance, "/v1/reconciliations").json(&window).send().await.unwrap();
    assert_eq!(started.status(), 202);
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    let run: serde_json::Value = started.json().await.unwrap();
    assert_eq!(
        (run["status"].clone(), location),
        (json!("running"), format!("/v1/reconciliations/{}", run["id"].as_str().unwrap()))
    );
    assert!(app.run_due_jobs().await > 0, "the run is a background job");
    let done = app.get_json(&finance, &format!("/v1/reconciliations/{}", run["id"].as_str().unwrap())).await;
    assert_eq!((done["status"].clone(), done["counts"].clone()), (json!("done"), json!({"amount_differs": 1})));

    let open = app.get_json(&finance, "/v1/reconciliation/mismatches?status=open&supplier=jsonrest").await;
    let [mismatch] = open["data"].as_array().unwrap().as_slice() else { panic!("one mismatch: {open}") };
    assert_eq!(
        (
            mismatch["reason"].clone(),
            mismatch["booking_id"].clone(),
            mismatch["ours"].clone(),
            mismatch["theirs"].clone()
        ),
        (json!("amount_differs"), json!(booking), json!("450.00 EUR"), json!("399.99 EUR"))
    );
    let resolve = format!("/v1/reconciliation/mismatches/{}/resolve", mismatch["id"]);
    let empty = app.post(&finance, &resolve).json(&json!({"note": "  "})).send().await.unwrap();
    assert_eq!(empty.status(), 422);
    let resolved =
        app.post(&finance, &resolve).json(&json!({"note": "Supplier's promotion; agreed"})).send().await.unwrap();
    assert_eq!(resolved.status(), 200);
    let resolved: serde_json::Value = resolved.json().await.unwrap();
    assert_eq!(
        (resolved["status"].clone(), resolved["note"].clone()),
        (json!("resolved"), json!("Supplier's promotion; agreed"))
    );
    assert_eq!(app.post(&finance, &resolve).json(&json!({"note": "again"})).send().await.unwrap().status(), 409);

    let again = app.post(&finance, "/v1/reconciliations").json(&window).send().await.unwrap();
    assert_eq!(again.status(), 202);
    app.run_due_jobs().await;
    let open = app.get_json(&finance, "/v1/reconciliation/mismatches?status=open").await;
    assert_eq!(open["data"], json!([]), "a resolved difference is not raised again while it stands");

    let (_, agency_key) = app.agency("Viajes Luna").await;
    assert_eq!(app.post(&agency_key, "/v1/reconciliations").json(&window).send().await.unwrap().status(), 403);
    let unknown = json!({"supplier": "nope", "from": from, "to": chrono::Utc::now()});
    assert_eq!(app.post(&finance, "/v1/reconciliations").json(&unknown).send().await.unwrap().status(), 422);
    let backwards = json!({"supplier": "jsonrest", "from": chrono::Utc::now(), "to": from});
    assert_eq!(app.post(&finance, "/v1/reconciliations").json(&backwards).send().await.unwrap().status(), 422);
}

/// A stay that has ended: the statement should bill it.
async fn past_stay(app: &TestApp, agency: &str, client_reference: &str) -> String {
    let mut body = booking_body();
    body["supplier"] = json!("jsonrest");
    body["client_reference"] = json!(client_reference);
    body["check_in"] = json!("2026-11-01");
    body["check_out"] = json!("2026-11-03");
    let id = app.booked(agency, &body).await["id"].as_str().unwrap().to_owned();
    app.run_due_jobs().await;
    assert_eq!(status(app, agency, &id).await, "confirmed", "{client_reference}");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_is_checked_line_by_line_and_a_bad_one_stores_nothing() {
    let (sim, app) = with_simulator(bookhub_tests::no_workers).await;
    let (_, agency) = app.agency("Viajes Sol").await;
    let finance = app.key(Role::Finance).await;
    let from = chrono::Utc::now() - chrono::Duration::minutes(1);
    let right = past_stay(&app, &agency, "AG-right").await;
    let cancelled = past_stay(&app, &agency, "AG-cancelled").await;
    let twice = past_stay(&app, &agency, "AG-twice").await;
    let other = past_stay(&app, &agency, "AG-other").await;
    let forgotten = past_stay(&app, &agency, "AG-forgotten").await;
    app.post(&agency, &format!("/v1/bookings/{cancelled}/cancel")).send().await.unwrap();
    app.run_due_jobs().await;
    assert_eq!(status(&app, &agency, &cancelled).await, "cancelled");
    let reference = |id: &str| sim.booking(Protocol::Jsonrest, id).unwrap().reference;
    let line = |id: &str, amount: &str| format!("{},{id},{amount},EUR,billed,2026-11-30\n", reference(id));
    let mut statement = String::from("supplier_reference,client_reference,amount,currency,status,billed_at\n");
    for (id, amount) in
        [(&right, "450.00"), (&cancelled, "450.00"), (&twice, "450.00"), (&twice, "450.00"), (&other, "460.00")]
    {
        statement += &line(id, amount);
    }
    statement += "JR-999999,,99.00,EUR,billed,2026-11-30\n";
    // A credit line bills nothing.
    statement += &format!("{},{forgotten},450.00,EUR,credited,2026-11-30\n", reference(&forgotten));
    let upload = |csv: String| {
        app.post(&finance, "/v1/reconciliation/statements?supplier=jsonrest")
            .header("content-type", "text/csv")
            .body(csv)
            .send()
    };

    let bad = "supplier_reference,client_reference,amount,currency,status,billed_at\nJR-1,,4x0,EUR,billed,2026-11-30\n,,1.00,EUR,billed,30/11/2026\n";
    let refused = bookhub_tests::problem(upload(bad.into()).await.unwrap(), 422).await;
    let errors: Vec<(u64, String)> = refused["row_errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["row"].as_u64().unwrap(), e["column"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(errors, [(2, "amount".into()), (3, "supplier_reference".into()), (3, "billed_at".into())]);
    let missing_column = "supplier_reference,amount,currency,status,billed_at\nJR-1,1.00,EUR,billed,2026-11-30\n";
    bookhub_tests::problem(upload(missing_column.into()).await.unwrap(), 422).await;
    let jsonrest: SupplierCode = "jsonrest".parse().unwrap();
    assert_eq!(reconciliation::billed(&app.db, &jsonrest).await.unwrap(), vec![], "nothing was stored");

    let stored = upload(statement).await.unwrap();
    assert_eq!(stored.status(), 201);
    assert_eq!(stored.json::<serde_json::Value>().await.unwrap()["lines"], 7);
    let run = jobs::reconcile::run(app.jobs(), &jsonrest, from, chrono::Utc::now() + chrono::Duration::minutes(1))
        .await
        .unwrap();
    let expected: BTreeMap<String, u64> = [
        ("billed_but_cancelled", 1),
        ("billed_twice", 1),
        ("billed_other_amount", 1),
        ("billed_unknown", 1),
        ("not_billed", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(run.counts, expected, "each statement case once, nothing else");
    let found = open(&app).await;
    for (subject, reason) in [
        (cancelled.as_str(), "billed_but_cancelled"),
        (twice.as_str(), "billed_twice"),
        (other.as_str(), "billed_other_amount"),
        ("ref:JR-999999", "billed_unknown"),
        (forgotten.as_str(), "not_billed"),
    ] {
        assert!(found.contains_key(&(subject.to_owned(), reason.to_owned())), "{reason} of {subject}: {found:?}");
    }
    assert!(!found.keys().any(|(subject, _)| *subject == right), "the booking billed right is not flagged");
}

/// The lost confirmation, healed, reaches the CRM and the agency's webhook endpoint (both
/// mocks on loopback) as a webhook's confirmation would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healed_confirmation_fans_out_to_the_crm_and_the_agency() {
    let crm = MockServer::start().await;
    let endpoint = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path_regex(r"^/api/v1/objects/reservas/records/bk_[0-9a-f]{32}$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "crm-1"})))
        .mount(&crm)
        .await;
    Mock::given(method("POST"))
        .and(path("/hooks/bookhub"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&endpoint)
        .await;
    let crm_url = crm.uri();
    let (sim, app) = with_simulator(|settings| {
        bookhub_tests::no_workers(settings);
        settings.crm = Some(api::config::CrmSettings {
            base_url: crm_url,
            token: api::config::Secret::from("crm-test-token".to_owned()),
            allow_http: true,
            ..api::config::CrmSettings::default()
        });
        settings.agency_webhooks.allow_private_networks = true;
        settings.agency_webhooks.allow_http = true;
    })
    .await;
    let (_, agency) = app.agency("Viajes Sol").await;
    let callback = json!({"url": format!("{}/hooks/bookhub", endpoint.uri())});
    let set = app.client.put(app.url("/v1/agency/webhook")).bearer_auth(&agency).json(&callback).send().await.unwrap();
    assert_eq!(set.status(), 200);
    let from = chrono::Utc::now() - chrono::Duration::minutes(1);
    sim.set_confirmation(Protocol::Jsonrest, Confirmation::Later { delay: std::time::Duration::from_secs(3600) });
    let booking = book(&app, &agency, "AG-lost-webhook").await;
    assert_eq!(status(&app, &agency, &booking).await, "pending");
    app.run_due_jobs().await;
    let before = (crm.received_requests().await.unwrap().len(), endpoint.received_requests().await.unwrap().len());
    sim.edit(Protocol::Jsonrest, &booking, SimEdit { status: Some(SimStatus::Confirmed), ..SimEdit::default() });

    let jsonrest: SupplierCode = "jsonrest".parse().unwrap();
    let run = jobs::reconcile::run(app.jobs(), &jsonrest, from, chrono::Utc::now() + chrono::Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(run.counts.get("healed"), Some(&1), "{:?}", run.counts);
    app.run_due_jobs().await;

    let records = crm.received_requests().await.unwrap();
    let record = records[before.0..]
        .iter()
        .find(|r| r.url.path().ends_with(&booking))
        .unwrap_or_else(|| panic!("the CRM got no upsert of {booking}"));
    let record: serde_json::Value = record.body_json().unwrap();
    assert_eq!(record["fields"]["EstadoReserva"], "Confirmada", "{record}");
    let deliveries = endpoint.received_requests().await.unwrap();
    let delivered: Vec<serde_json::Value> = deliveries[before.1..].iter().map(|r| r.body_json().unwrap()).collect();
    assert!(
        delivered.iter().any(|e| e["type"] == "booking.confirmed" && e.to_string().contains(&booking)),
        "the agency was told of the confirmation: {delivered:?}"
    );
}

/// The same seeded disagreement found through OTA's `OTA_ReadRQ`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ota_supplier_is_reconciled_through_ota_read() {
    let (sim, app) = with_simulator(bookhub_tests::no_workers).await;
    let (_, agency) = app.agency("Viajes Sol").await;
    let from = chrono::Utc::now() - chrono::Duration::minutes(1);
    let mut ids = Vec::new();
    for reference in ["OTA-ok", "OTA-amount", "OTA-cxl"] {
        let mut body = booking_body();
        body["supplier"] = json!("ota");
        body["client_reference"] = json!(reference);
        ids.push(app.booked(&agency, &body).await["id"].as_str().unwrap().to_owned());
    }
    app.run_due_jobs().await;
    for id in &ids {
        assert_eq!(status(&app, &agency, id).await, "confirmed", "{id}");
    }
    sim.edit(Protocol::Ota, &ids[1], SimEdit { total: Some(eur("450.50", "EUR")), ..SimEdit::default() });
    sim.edit(Protocol::Ota, &ids[2], SimEdit { status: Some(SimStatus::Cancelled), ..SimEdit::default() });

    let ota: SupplierCode = "ota".parse().unwrap();
    let run =
        jobs::reconcile::run(app.jobs(), &ota, from, chrono::Utc::now() + chrono::Duration::minutes(1)).await.unwrap();
    let expected: BTreeMap<String, u64> = [("amount_differs".to_owned(), 1), ("healed".to_owned(), 1)].into();
    assert_eq!(run.counts, expected);
    assert_eq!(status(&app, &agency, &ids[2]).await, "cancelled", "the supplier's cancellation healed");
    let open = reconciliation::mismatches(&app.db, Some(MismatchStatus::Open), Some("ota"), None, 10).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!((open[0].booking_id.as_deref(), open[0].theirs.as_deref()), (Some(ids[1].as_str()), Some("450.50 EUR")));
}
