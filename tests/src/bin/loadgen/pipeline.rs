//! The pipeline benchmark: how long a supplier's confirmation takes to reach everyone it fans
//! out to, at steady rates.
//!
//! Each round, on a fresh database: bookhub with its job workers on; the CRM, the agency's
//! endpoint and an SMTP server on loopback, each noting when each booking's delivery arrives
//! ([`peers`]); an agency with its callback URL set. First `rate × duration` bookings are made
//! and submitted (the sandbox holds them `pending`: its own confirmation is an hour away). Then
//! the loadgen plays the supplier: it sends each booking's signed `booking.confirmed` webhook —
//! the body and headers the sandbox sends — one every `1/rate` s, each from its own task,
//! noting when it sent it. A booking is done when the CRM has its upsert, the agency's endpoint
//! its webhook and the SMTP server its email (with the voucher); its latency is the last of the
//! three arrivals less the send. The rates are tried lowest first; the highest sustained one is
//! the highest whose median p95 is within [`TARGET_P95`] with every fan-out done in every round.
//!
//! There is no raw baseline: the fan-out is HTTP and SMTP to peers, not a write that could be
//! done by hand, so the figure is bookhub's own.

mod peers;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use adapters::suppliers::signing::StandardKey;
use anyhow::{Context, bail};
use api::config::SupplierSettings;
use bookhub_tests::{SANDBOX_SECRET, TestApp, booking_body};
use chrono::{SecondsFormat, Utc};
use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;

use self::peers::{Peers, first_after};
use super::{Args, Run, SignedEvent, median, ms, postgres_settings, spawn};

/// The target: p95 from the webhook to the last fan-out, at 100 confirmations/s.
const TARGET_P95: Duration = Duration::from_secs(1);
/// Confirmations sent and awaited before each round is measured: connections, caches, the
/// first PDF.
const WARM_UP: usize = 20;
/// How long the bookings of one round may take to be made and submitted.
const PREPARE_LIMIT: Duration = Duration::from_secs(300);
/// Clients making the bookings.
const PREPARE_CLIENTS: usize = 32;

/// One booking the sandbox holds, pending.
struct Prepared {
    id: String,
    reference: String,
}

/// One confirmation as sent: the booking, when, and whether bookhub took it (200).
struct Sent {
    booking: String,
    at: Instant,
    taken: bool,
}

/// One round at one rate.
struct Round {
    expected: usize,
    refused: usize,
    /// Confirmations sent per second, as achieved.
    send_rate: f64,
    /// Bookings with all three fan-outs; `elapsed` runs from the first send to the last
    /// completion, so its throughput is completions per second.
    done: Run,
    crm: Run,
    agency: Run,
    email: Run,
}

impl Round {
    fn complete(&self) -> bool {
        self.refused == 0 && self.done.ops == self.expected
    }

    fn line(&self) -> String {
        format!(
            "sent {} at {:.1}/s ({} refused); done {}/{} at {:.1}/s; p50 {:.0} p95 {:.0} p99 {:.0} ms; p95 by leg: crm {:.0} agency {:.0} email {:.0} ms",
            self.expected,
            self.send_rate,
            self.refused,
            self.done.ops,
            self.expected,
            self.done.throughput(),
            ms(self.done.percentile(0.50)),
            ms(self.done.percentile(0.95)),
            ms(self.done.percentile(0.99)),
            ms(self.crm.percentile(0.95)),
            ms(self.agency.percentile(0.95)),
            ms(self.email.percentile(0.95)),
        )
    }
}

pub(super) async fn run(args: &Args, server: &str) -> anyhow::Result<()> {
    if args.rates.is_empty() || args.rates.contains(&0) || args.rounds == 0 {
        bail!("--rates needs rates above 0 and --rounds at least 1");
    }
    let pool = PgPoolOptions::new().max_connections(1).connect(server).await.context("connecting to Postgres")?;
    let defaults = api::Settings::default();
    println!(
        "loadgen pipeline: rates {:?}/s, {} s per round, {} rounds per rate, {} http workers, jobs.concurrency {}, \
         jobs.poll_interval {:?}, database_max_connections {}; postgres {}",
        args.rates,
        args.duration.as_secs_f64(),
        args.rounds,
        args.http_workers,
        args.job_concurrency.unwrap_or(defaults.jobs.concurrency),
        args.poll_interval.unwrap_or(defaults.jobs.poll_interval),
        args.db_connections.unwrap_or(defaults.database_max_connections),
        postgres_settings(&pool).await?
    );
    pool.close().await;
    println!(
        "no raw baseline for this mode: bookhub's own time from a confirmation webhook sent to the CRM upsert, the \
         agency webhook and the agency email all received (target: p95 <= {} ms)",
        TARGET_P95.as_millis()
    );

    let mut sustained = None;
    for &rate in &args.rates {
        let mut rounds = Vec::with_capacity(args.rounds);
        for round in 1..=args.rounds {
            let measured = round_at(args, server, rate).await?;
            println!("rate {rate}/s round {round}: {}", measured.line());
            rounds.push(measured);
        }
        let p = |q: f64, leg: fn(&Round) -> &Run| median(rounds.iter().map(|r| ms(leg(r).percentile(q))).collect());
        let p95 = p(0.95, |r| &r.done);
        let complete = rounds.iter().filter(|r| r.complete()).count();
        println!(
            "rate {rate}/s median: done at {:.1}/s; p50 {:.0} p95 {p95:.0} p99 {:.0} ms; p95 by leg: crm {:.0} agency {:.0} \
             email {:.0} ms; every fan-out done in {complete} of {} rounds",
            median(rounds.iter().map(|r| r.done.throughput()).collect()),
            p(0.50, |r| &r.done),
            p(0.99, |r| &r.done),
            p(0.95, |r| &r.crm),
            p(0.95, |r| &r.agency),
            p(0.95, |r| &r.email),
            rounds.len()
        );
        if complete == rounds.len() && p95 <= ms(TARGET_P95) {
            sustained = Some(rate);
        } else {
            println!("rate {rate}/s is not sustained; higher rates are not tried");
            break;
        }
    }
    match sustained {
        Some(rate) => {
            println!("highest sustained rate (median p95 <= {} ms, every fan-out done): {rate}/s", ms(TARGET_P95))
        }
        None => println!("no rate sustained (median p95 <= {} ms, every fan-out done)", ms(TARGET_P95)),
    }
    Ok(())
}

/// One measured round at `rate` on a fresh bookhub and fresh peers.
async fn round_at(args: &Args, server: &str, rate: u32) -> anyhow::Result<Round> {
    let expected = (f64::from(rate) * args.duration.as_secs_f64()).round().max(1.0) as usize;
    let peers = Peers::start().await;
    let app = spawn(args, server, |s| {
        peers.reach(s);
        if let Some(SupplierSettings::Sandbox(sandbox)) = s.suppliers.get_mut(&"sandbox".parse().expect("a valid code"))
        {
            // The loadgen sends the confirmations itself, when it chooses.
            sandbox.confirm_delay = Duration::from_secs(3600);
        }
    })
    .await;
    let result = async {
        let (_, key) = app.agency("Load Agency").await;
        set_callback(&app, &key, &peers.callback_url()).await?;
        let pool = PgPoolOptions::new().max_connections(2).connect(&app.database_url).await?;
        let signing = StandardKey::parse(SANDBOX_SECRET).context("the sandbox's test secret")?;

        let warm = prepare(&app, &key, &pool, WARM_UP).await?;
        let warm_sent = confirm(&app, &signing, &warm, rate).await;
        settle(&peers, warm_sent.len(), args.settle).await;

        let bookings = prepare(&app, &key, &pool, expected).await?;
        let sent = confirm(&app, &signing, &bookings, rate).await;
        settle(&peers, warm_sent.len() + sent.len(), args.settle).await;
        pool.close().await;
        Ok(measure(&sent, &peers))
    }
    .await;
    app.stop().await;
    result
}

/// Sets the agency's callback URL.
async fn set_callback(app: &TestApp, key: &str, url: &str) -> anyhow::Result<()> {
    let answer =
        app.client.put(app.url("/v1/agency/webhook")).bearer_auth(key).json(&json!({"url": url})).send().await?;
    if answer.status() != 200 {
        bail!("PUT /v1/agency/webhook answered {}: {}", answer.status(), answer.text().await.unwrap_or_default());
    }
    Ok(())
}

/// Makes `n` bookings and waits until each is submitted: the sandbox answered `pending` and
/// bookhub keeps its reference.
async fn prepare(app: &TestApp, key: &str, pool: &sqlx::PgPool, n: usize) -> anyhow::Result<Vec<Prepared>> {
    let body = booking_body();
    let ids: Vec<String> = futures::stream::iter(0..n)
        .map(|_| {
            let request =
                app.post(key, "/v1/bookings").header("Idempotency-Key", uuid::Uuid::new_v4().to_string()).json(&body);
            async move {
                let answer = request.send().await?;
                if answer.status() != 202 {
                    bail!("POST /v1/bookings answered {}", answer.status());
                }
                let booking: Value = answer.json().await?;
                booking["id"].as_str().map(str::to_owned).context("a booking id in the answer")
            }
        })
        .buffer_unordered(PREPARE_CLIENTS)
        .try_collect()
        .await?;
    let deadline = Instant::now() + PREPARE_LIMIT;
    let mut poll = tokio::time::interval(Duration::from_millis(100));
    loop {
        poll.tick().await;
        let submitted: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM bookings WHERE id = ANY($1) AND supplier_reference IS NOT NULL AND status = 'pending'",
        )
        .bind(&ids)
        .fetch_one(pool)
        .await?;
        if usize::try_from(submitted).is_ok_and(|s| s == n) {
            break;
        }
        if Instant::now() > deadline {
            bail!("{submitted} of {n} bookings submitted after {PREPARE_LIMIT:?}");
        }
    }
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, supplier_reference FROM bookings WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|(id, reference)| Prepared { id, reference }).collect())
}

/// The sandbox's confirmation of `booking`, as its `confirm_later` sends it.
fn confirmation(key: &StandardKey, booking: &Prepared) -> SignedEvent {
    let id = format!("evt_{:032x}", rand::random::<u128>());
    let made = booking_body();
    let rooms: Vec<Value> = made["rooms"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| json!({"room_type_code": r["room_type"], "board_code": r["board"]}))
        .collect();
    let body = json!({
        "id": id,
        "type": "booking.confirmed",
        "occurred_at": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        "data": {
            "reference": booking.reference,
            "client_reference": booking.id,
            "status": adapters::suppliers::sandbox::CONFIRMED,
            "hotel_code": made["hotel_code"],
            "check_in": made["check_in"],
            "check_out": made["check_out"],
            "rooms": rooms,
            "total": made["total"],
        }
    });
    SignedEvent::sign(key, id, &body)
}

/// Sends each booking's confirmation, one every `1/rate` s, each from its own task.
async fn confirm(app: &TestApp, key: &StandardKey, bookings: &[Prepared], rate: u32) -> Vec<Sent> {
    let url = app.url("/v1/webhooks/suppliers/sandbox");
    // A tick missed while the machine was busy is caught up at once: the average rate holds.
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    let mut tasks = Vec::with_capacity(bookings.len());
    for booking in bookings {
        tick.tick().await;
        let request = confirmation(key, booking).post(&app.client, &url);
        let id = booking.id.clone();
        tasks.push(tokio::spawn(async move {
            let at = Instant::now();
            let taken = request.send().await.is_ok_and(|r| r.status() == 200);
            Sent { booking: id, at, taken }
        }));
    }
    let mut sent = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok(s) => sent.push(s),
            Err(e) => eprintln!("a confirmation task failed: {e}"),
        }
    }
    sent
}

/// Waits until every peer has `n` deliveries, or `limit` has passed.
async fn settle(peers: &Peers, n: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut poll = tokio::time::interval(Duration::from_millis(50));
    loop {
        poll.tick().await;
        let (crm, agency, email) = peers.counts();
        if crm >= n && agency >= n && email >= n {
            return;
        }
        if Instant::now() > deadline {
            eprintln!("after {limit:?}: {crm} CRM upserts, {agency} agency webhooks, {email} emails of {n}");
            return;
        }
    }
}

/// The round's figures from what was sent and what each peer received.
fn measure(sent: &[Sent], peers: &Peers) -> Round {
    let taken: HashMap<String, Instant> = sent.iter().filter(|s| s.taken).map(|s| (s.booking.clone(), s.at)).collect();
    let delivered = peers.delivered();
    let (crm, agency, email) = (
        first_after(&delivered.crm, &taken),
        first_after(&delivered.agency, &taken),
        first_after(&delivered.email, &taken),
    );
    let first_send = sent.iter().map(|s| s.at).min();
    let last_send = sent.iter().map(|s| s.at).max();
    let send_rate = match (first_send, last_send) {
        (Some(first), Some(last)) if last > first => (sent.len() - 1) as f64 / (last - first).as_secs_f64(),
        _ => 0.0,
    };
    let leg = |arrived: &HashMap<String, Instant>| {
        let latencies = arrived.iter().map(|(booking, at)| at.duration_since(taken[booking])).collect();
        runs(latencies, sent.len(), first_send, arrived.values().max().copied())
    };
    let mut done_at = Vec::new();
    let mut latencies = Vec::new();
    for (booking, t0) in &taken {
        if let (Some(c), Some(a), Some(e)) = (crm.get(booking), agency.get(booking), email.get(booking)) {
            let last = *c.max(a).max(e);
            done_at.push(last);
            latencies.push(last.duration_since(*t0));
        }
    }
    Round {
        expected: sent.len(),
        refused: sent.len() - taken.len(),
        send_rate,
        done: runs(latencies, sent.len(), first_send, done_at.into_iter().max()),
        crm: leg(&crm),
        agency: leg(&agency),
        email: leg(&email),
    }
}

/// `latencies` of `expected` operations as a [`Run`] over the time from `first` to `last`.
fn runs(mut latencies: Vec<Duration>, expected: usize, first: Option<Instant>, last: Option<Instant>) -> Run {
    latencies.sort_unstable();
    let elapsed = match (first, last) {
        (Some(first), Some(last)) => last.saturating_duration_since(first),
        _ => Duration::ZERO,
    };
    Run { ops: latencies.len(), errors: expected - latencies.len(), elapsed, latencies }
}
