//! Billing and the finance report: jsonrest bookings in three currencies and two agencies,
//! confirmed by the simulator, one cancelled; a supplier statement bills two of them. Each
//! confirmation issues one invoice line and the cancellation one credit note, however often
//! the job runs; the report's CSV and XLSX totals equal sums the test makes from the bookings
//! themselves; and a scheduled run emails the XLSX to finance.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::str::FromStr;
use std::time::Duration;

use adapters::store::api_keys::Role;
use adapters::store::{invoices, operator_events, reconciliation};
use bookhub_tests::{TestApp, booking_body, eventually, problem, with_simulator};
use calamine::{Data, Reader, Xlsx};
use domain::{BookingId, SupplierCode};
use jobs::billing::Bill;
use mail_parser::MimeHeaders;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use test_support::SmtpSink;

/// A booking made by `agency` with jsonrest for `amount currency`, confirmed at once: its id.
async fn confirmed(app: &TestApp, agency: &str, reference: &str, amount: &str, currency: &str) -> String {
    let mut body = booking_body();
    body["supplier"] = json!("jsonrest");
    body["client_reference"] = json!(reference);
    body["total"] = json!({"amount": amount, "currency": currency});
    let id = app.booked(agency, &body).await["id"].as_str().unwrap().to_owned();
    app.run_due_jobs().await;
    id
}

/// What the test seeds: each booking's (agency name, currency, amount, status at the end).
struct Seeded {
    bookings: BTreeMap<String, (String, String, Decimal, &'static str)>,
    cancelled: String,
    billed: Vec<(String, Decimal)>,
}

async fn seed(app: &TestApp) -> Seeded {
    let (_, sol) = app.agency("Viajes Sol").await;
    let (_, mar) = app.agency("Mar Azul").await;
    let mut bookings = BTreeMap::new();
    for (agency, name, reference, amount, currency) in [
        (&sol, "Viajes Sol", "S-1", "450.10", "EUR"),
        (&sol, "Viajes Sol", "S-2", "0.20", "EUR"),
        (&sol, "Viajes Sol", "S-3", "1200.00", "USD"),
        (&sol, "Viajes Sol", "S-4", "35000", "JPY"),
        (&mar, "Mar Azul", "M-1", "99.99", "EUR"),
        (&mar, "Mar Azul", "M-2", "10.00", "EUR"),
    ] {
        let id = confirmed(app, agency, reference, amount, currency).await;
        let status = app.get_json(agency, &format!("/v1/bookings/{id}")).await["status"].clone();
        assert_eq!(status, "confirmed", "{reference}");
        bookings.insert(id, (name.to_owned(), currency.to_owned(), Decimal::from_str(amount).unwrap(), "confirmed"));
    }
    // Mar Azul cancels M-2 after its confirmation.
    let cancelled = bookings.iter().find(|(_, (n, _, a, _))| n == "Mar Azul" && a.to_string() == "10.00").unwrap();
    let cancelled = cancelled.0.clone();
    let answer = app.post(&mar, &format!("/v1/bookings/{cancelled}/cancel")).send().await.unwrap();
    assert_eq!(answer.status(), 202);
    app.run_due_jobs().await;
    assert_eq!(app.get_json(&mar, &format!("/v1/bookings/{cancelled}")).await["status"], "cancelled");
    bookings.get_mut(&cancelled).unwrap().3 = "cancelled";
    Seeded { bookings, cancelled, billed: Vec::new() }
}

/// The supplier reference the simulator gave `booking`.
async fn reference(app: &TestApp, booking: &str) -> String {
    let staff = app.key(Role::Staff).await;
    app.get_json(&staff, &format!("/v1/bookings/{booking}")).await["supplier_reference"].as_str().unwrap().to_owned()
}

/// Finance uploads a jsonrest statement billing the first two EUR bookings of Viajes Sol,
/// the first for less than it sold.
async fn bill(app: &TestApp, finance: &str, seeded: &mut Seeded) -> String {
    let mut csv = String::from("supplier_reference,client_reference,amount,currency,status,billed_at\n");
    let sol_eur: Vec<(String, Decimal)> = seeded
        .bookings
        .iter()
        .filter(|(_, (n, c, _, _))| n == "Viajes Sol" && c == "EUR")
        .map(|(id, (_, _, a, _))| (id.clone(), *a))
        .collect();
    for ((id, sold), cost) in sol_eur.iter().zip(["400.05", "0.20"]) {
        csv.push_str(&format!("{},,{cost},EUR,billed,2027-03-18\n", reference(app, id).await));
        let cost = Decimal::from_str(cost).unwrap();
        assert!(cost <= *sold);
        seeded.billed.push((id.clone(), cost));
    }
    let answer = upload(app, finance, &csv).await;
    assert_eq!(answer.status(), 201);
    csv
}

async fn upload(app: &TestApp, finance: &str, csv: &str) -> reqwest::Response {
    let path = "/v1/reconciliation/statements?supplier=jsonrest";
    app.post(finance, path).header("content-type", "text/csv").body(csv.to_owned()).send().await.unwrap()
}

/// Sums by (agency, currency) of the confirmed bookings' totals, made by the test itself.
fn sold(seeded: &Seeded) -> BTreeMap<(String, String), Decimal> {
    let mut sums = BTreeMap::new();
    for (name, currency, amount, status) in seeded.bookings.values() {
        if *status == "confirmed" {
            *sums.entry((name.clone(), currency.clone())).or_insert(Decimal::ZERO) += amount;
        }
    }
    sums
}

fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_is_invoiced_once_and_its_cancellation_credited_once() {
    let (_sim, app) = with_simulator(bookhub_tests::no_workers).await;
    let finance = app.key(Role::Finance).await;
    let seeded = seed(&app).await;

    // The job again, twice, for every booking: still one document of each kind.
    for id in seeded.bookings.keys() {
        let job = Bill { booking_id: id.parse().unwrap() };
        app.jobs().bill(&job).await.unwrap();
        app.jobs().bill(&job).await.unwrap();
    }
    for (id, (_, _, amount, status)) in &seeded.bookings {
        let documents = invoices::for_booking(&app.db, &id.parse::<BookingId>().unwrap()).await.unwrap();
        let kinds: Vec<&str> = documents.iter().map(|d| d.kind.as_str()).collect();
        let expected = if *status == "cancelled" { vec!["invoice", "credit_note"] } else { vec!["invoice"] };
        assert_eq!(kinds, expected, "{id}");
        assert!(documents.iter().all(|d| d.amount.amount() == *amount));
        let invoice = &documents[0];
        assert!(invoice.number.starts_with("INV-"), "{}", invoice.number);
        assert_eq!((invoice.due_date - invoice.issue_date).num_days(), 30, "the default terms");
    }
    let events = operator_events::of_type(&app.db, "invoice.issued").await.unwrap();
    assert_eq!(events.len(), seeded.bookings.len() + 1, "one event per document");
    let credit = events.iter().find(|e| e["kind"] == "credit_note").unwrap();
    assert_eq!(credit["booking_id"], seeded.cancelled.as_str());

    // Finance lists them; per currency, the invoices less the credit notes equal what the
    // confirmed bookings sold.
    let mut listed: Vec<Value> = Vec::new();
    let mut path = format!("/v1/invoices?from={}&to={}&limit=3", today(), today());
    loop {
        let page = app.get_json(&finance, &path).await;
        listed.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/invoices?from={}&to={}&limit=3&cursor={cursor}", today(), today()),
            None => break,
        }
    }
    assert_eq!(listed.len(), seeded.bookings.len() + 1);
    // One series without gaps, whatever the repeats above tried: 1, 2, … in issue order.
    let serials: Vec<u64> =
        listed.iter().map(|d| d["number"].as_str().unwrap().rsplit('-').next().unwrap().parse().unwrap()).collect();
    assert_eq!(serials, (1..=listed.len() as u64).collect::<Vec<_>>());
    let mut net: BTreeMap<String, Decimal> = BTreeMap::new();
    for doc in &listed {
        let amount = Decimal::from_str(doc["amount"].as_str().unwrap()).unwrap();
        let sign = if doc["kind"] == "credit_note" { -Decimal::ONE } else { Decimal::ONE };
        *net.entry(doc["currency"].as_str().unwrap().to_owned()).or_default() += sign * amount;
    }
    let mut expected: BTreeMap<String, Decimal> = BTreeMap::new();
    for ((_, currency), sum) in sold(&seeded) {
        *expected.entry(currency).or_default() += sum;
    }
    assert_eq!(net, expected);

    // One agency's documents; an agency key is refused; a bad date is a 400.
    let mar = listed.iter().find(|d| d["booking_id"] == seeded.cancelled.as_str()).unwrap()["agency_id"].clone();
    let theirs = app.get_json(&finance, &format!("/v1/invoices?agency={}", mar.as_str().unwrap())).await;
    assert_eq!(theirs["data"].as_array().unwrap().len(), 3, "M-1, M-2 and M-2's credit note");
    let (_, agency) = app.agency("Curious").await;
    problem(app.get(&agency, "/v1/invoices").send().await.unwrap(), 403).await;
    problem(app.get(&finance, "/v1/invoices?from=yesterday").send().await.unwrap(), 400).await;
}

/// The CSV's rows by (agency, currency): the row as column → value.
fn csv_rows(text: &str) -> BTreeMap<(String, String), BTreeMap<String, String>> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|line| {
            let row: BTreeMap<String, String> =
                header.iter().zip(line.split(',')).map(|(h, v)| (h.to_string(), v.to_owned())).collect();
            ((row["agency"].clone(), row["currency"].clone()), row)
        })
        .collect()
}

fn sheet(workbook: &mut Xlsx<Cursor<Vec<u8>>>, name: &str) -> Vec<Vec<Data>> {
    workbook.worksheet_range(name).unwrap().rows().map(<[Data]>::to_vec).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_finance_report_totals_are_the_bookings_own_sums_per_currency_in_csv_and_xlsx() {
    let (_sim, app) = with_simulator(bookhub_tests::no_workers).await;
    let finance = app.key(Role::Finance).await;
    let mut seeded = seed(&app).await;
    let statement = bill(&app, &finance, &mut seeded).await;
    // The same file again (a second click, a retry) is the same statement: it bills once.
    let again = upload(&app, &finance, &statement).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["again"], true);
    let expected = sold(&seeded);
    let day = today();

    let csv = app.get(&finance, &format!("/v1/reports/finance?from={day}&to={day}")).send().await.unwrap();
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let rows = csv_rows(&csv.text().await.unwrap());
    let keys: Vec<_> = rows.keys().cloned().collect();
    let mut expected_keys: Vec<_> = expected.keys().cloned().collect();
    expected_keys.sort();
    assert_eq!(keys, expected_keys, "one row per agency and currency: EUR, USD and JPY apart");
    for (key, sum) in &expected {
        assert_eq!(Decimal::from_str(&rows[key]["sell_total"]).unwrap(), *sum, "{key:?}");
    }
    let sol_eur = &rows[&("Viajes Sol".to_owned(), "EUR".to_owned())];
    let cost: Decimal = seeded.billed.iter().map(|(_, c)| c).sum();
    let sold_billed: Decimal = seeded.billed.iter().map(|(id, _)| seeded.bookings[id].2).sum();
    assert_eq!(sol_eur["costed_bookings"], "2");
    assert_eq!(Decimal::from_str(&sol_eur["supplier_cost"]).unwrap(), cost);
    assert_eq!(Decimal::from_str(&sol_eur["margin"]).unwrap(), sold_billed - cost);
    assert_eq!(sol_eur["sell_total"], "450.30", "exact decimals, the currency's two places");
    let mar_eur = &rows[&("Mar Azul".to_owned(), "EUR".to_owned())];
    assert_eq!((mar_eur["confirmed"].as_str(), mar_eur["cancelled"].as_str()), ("1", "1"));
    assert_eq!(Decimal::from_str(&mar_eur["credited"]).unwrap(), Decimal::from_str("10.00").unwrap());
    assert_eq!(rows[&("Viajes Sol".to_owned(), "JPY".to_owned())]["sell_total"], "35000");

    let xlsx = app.get(&finance, &format!("/v1/reports/finance?from={day}&to={day}&format=xlsx")).send().await.unwrap();
    assert_eq!(xlsx.status(), 200);
    let disposition = xlsx.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert_eq!(disposition, format!("attachment; filename=\"finance-{day}-{day}.xlsx\""));
    let mut workbook = Xlsx::new(Cursor::new(xlsx.bytes().await.unwrap().to_vec())).unwrap();
    assert_eq!(workbook.sheet_names(), ["Totals", "Bookings", "Mismatches"]);
    let totals = sheet(&mut workbook, "Totals");
    let header: Vec<String> = totals[0].iter().map(|c| c.to_string()).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(totals.len() - 1, expected.len());
    for row in &totals[1..] {
        let key = (row[col("agency")].to_string(), row[col("currency")].to_string());
        let Data::Float(sell) = row[col("sell_total")] else { panic!("a number: {:?}", row[col("sell_total")]) };
        assert_eq!(Decimal::try_from(sell).unwrap().round_dp(2), expected[&key], "{key:?}");
    }
    let bookings = sheet(&mut workbook, "Bookings");
    assert_eq!(bookings.len() - 1, seeded.bookings.len());
    assert!(bookings[1..].iter().all(|r| seeded.bookings.contains_key(&r[0].to_string())));

    problem(app.get(&finance, &format!("/v1/reports/finance?from={day}&to=2020-01-01")).send().await.unwrap(), 400)
        .await;
    problem(
        app.get(&finance, &format!("/v1/reports/finance?from={day}&to={day}&format=pdf")).send().await.unwrap(),
        400,
    )
    .await;
    let staff = app.key(Role::Staff).await;
    problem(app.get(&staff, &format!("/v1/reports/finance?from={day}&to={day}")).send().await.unwrap(), 403).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_run_emails_the_report_to_finance() {
    let smtp = SmtpSink::start().await;
    let (_sim, app) = with_simulator(|settings| {
        bookhub_tests::no_workers(settings);
        settings.email.enabled = true;
        settings.email.host = "127.0.0.1".into();
        settings.email.port = smtp.port();
        settings.email.tls = adapters::notify::email::SmtpTls::None;
        settings.email.from = "bookhub <bookings@bookhub.example>".into();
        settings.finance.report_recipients = vec!["Finance <finance@wholesaler.example>".into()];
    })
    .await;
    let seeded = seed(&app).await;
    let jsonrest: SupplierCode = "jsonrest".parse().unwrap();
    // The scheduler, every minute, claims the current slot and queues its run.
    let config = jobs::schedule::ScheduleConfig {
        schedules: vec![(jsonrest.clone(), "0 * * * * *".parse().unwrap())],
        window: chrono::Duration::hours(1),
        tick: Duration::from_millis(10),
        clock: jobs::schedule::ScheduleConfig::system_clock(),
    };
    let scheduler = tokio::spawn(jobs::schedule::run(app.db.clone(), config));
    let run = eventually(Duration::from_secs(10), || async {
        let runs = reconciliation::runs(&app.db, &jsonrest, 1).await.unwrap();
        runs.into_iter().next().ok_or_else(|| "no scheduled run yet".to_owned())
    })
    .await;
    scheduler.abort();
    app.run_due_jobs().await;
    app.run_due_jobs().await;
    let to_finance = || smtp.mails().into_iter().filter(|m| m.to == ["finance@wholesaler.example"]).collect::<Vec<_>>();
    let mails = eventually(Duration::from_secs(10), || async {
        let mails = to_finance();
        if mails.is_empty() { Err("no report yet".to_owned()) } else { Ok(mails) }
    })
    .await;
    assert_eq!(mails.len(), 1);
    let message = mail_parser::MessageParser::default().parse(&mails[0].data).unwrap();
    assert!(message.subject().unwrap().starts_with("bookhub finance report"));
    let text = message.body_text(0).unwrap();
    assert!(text.contains(run.id.as_str()), "{text}");
    let attachment = message.attachments().next().expect("the XLSX");
    assert!(attachment.attachment_name().unwrap().ends_with(".xlsx"));
    let mut workbook = Xlsx::new(Cursor::new(attachment.contents().to_vec())).unwrap();
    assert_eq!(sheet(&mut workbook, "Bookings").len() - 1, seeded.bookings.len());

    // A run finance or staff started by hand sends nothing.
    let to = chrono::Utc::now();
    jobs::reconcile::start_queued(&app.db, &jsonrest, to - chrono::Duration::hours(1), to).await.unwrap();
    app.run_due_jobs().await;
    app.run_due_jobs().await;
    assert_eq!(to_finance().len(), 1);
}
