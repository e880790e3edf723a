//! Confirmations sent later: the timer, the signed request of each protocol, and delivery
//! with growing delays (50 ms doubling to 2 s, given up after 5 minutes). Requests never wait
//! on any of it: everything runs in tasks on the runtime that started the simulator.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};

use super::Protocol;
use super::state::{Partner, Shared, Status, now};
use super::{jsonrest, ota};

type HmacSha256 = Hmac<sha2::Sha256>;

const FIRST_RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_secs(2);
const GIVE_UP_AFTER: Duration = Duration::from_secs(300);

/// A signed-to-be webhook: the same id and body on every attempt.
struct Outbound {
    protocol: Protocol,
    url: String,
    id: String,
    body: String,
}

/// Confirms the booking `delay` from now and delivers the webhook, unless reset or stopped first.
pub(crate) fn confirm_later(sim: Arc<Shared>, protocol: Protocol, reference: String, delay: Duration) {
    let epoch = sim.epoch();
    let runtime = sim.runtime.clone();
    runtime.spawn(async move {
        tokio::time::sleep(delay).await;
        if let Some(Some(outbound)) = sim.with_epoch(epoch, protocol, |p| confirm(p, protocol, &reference)) {
            deliver(&sim, epoch, outbound).await;
        }
    });
}

/// Confirms a still-pending booking and builds its webhook; `None` when none is to be sent.
fn confirm(partner: &mut Partner, protocol: Protocol, reference: &str) -> Option<Outbound> {
    let booking = partner.find(reference).filter(|b| b.status == Status::Pending)?;
    booking.status = Status::Confirmed;
    booking.modified_at = now();
    let booking = booking.clone();
    let url = match (&partner.hub_url, partner.faults.drop_webhooks) {
        (Some(url), false) => url.clone(),
        (url, _) => {
            partner.stats.webhooks_dropped += 1;
            tracing::info!(sim.protocol = ?protocol, sim.reference = reference, hub.url = ?url, "confirmation dropped");
            return None;
        }
    };
    let (id, body) = match protocol {
        Protocol::Jsonrest => jsonrest::confirmed_event(&booking),
        Protocol::Ota => {
            let sequence = partner.next_sequence();
            (format!("ntf-{sequence}"), ota::notification(&booking, sequence))
        }
    };
    Some(Outbound { protocol, url, id, body })
}

/// Attempts until the hub acknowledges, the retry budget is spent, or the epoch ends.
async fn deliver(sim: &Shared, epoch: u64, outbound: Outbound) {
    let protocol = outbound.protocol;
    let started = tokio::time::Instant::now();
    let mut delay = FIRST_RETRY;
    loop {
        if sim.with_epoch(epoch, protocol, |p| p.stats.webhooks_sent += 1).is_none() {
            return;
        }
        match attempt(sim, &outbound).await {
            Ok(()) => {
                sim.with_epoch(epoch, protocol, |p| p.stats.webhooks_delivered += 1);
                tracing::info!(sim.protocol = ?protocol, webhook.id = %outbound.id, "webhook delivered");
                return;
            }
            Err(reason) => tracing::debug!(sim.protocol = ?protocol, webhook.id = %outbound.id, %reason, "retrying"),
        }
        if started.elapsed() + delay > GIVE_UP_AFTER {
            sim.with_epoch(epoch, protocol, |p| p.stats.webhooks_dropped += 1);
            tracing::warn!(sim.protocol = ?protocol, webhook.id = %outbound.id, "webhook given up");
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RETRY);
    }
}

/// One signed POST; `Ok` when the hub acknowledged it as the protocol requires.
async fn attempt(sim: &Shared, outbound: &Outbound) -> Result<(), String> {
    let timestamp = Utc::now().timestamp().to_string();
    let request = sim.client.post(&outbound.url).body(outbound.body.clone());
    let request = match outbound.protocol {
        Protocol::Jsonrest => {
            let signature = standard_signature(&sim.jsonrest_webhook_key, &outbound.id, &timestamp, &outbound.body);
            request
                .header("Content-Type", "application/json")
                .header("webhook-id", &outbound.id)
                .header("webhook-timestamp", &timestamp)
                .header("webhook-signature", signature)
        }
        Protocol::Ota => {
            let signature = ota_signature(sim.ota.webhook_secret.as_bytes(), &timestamp, &outbound.body);
            request
                .header("Content-Type", "application/xml")
                .header("X-OTA-Timestamp", &timestamp)
                .header("X-OTA-Signature", signature)
        }
    };
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    match outbound.protocol {
        Protocol::Jsonrest if status.is_success() => Ok(()),
        Protocol::Ota if status == 200 => {
            let body = response.text().await.map_err(|e| e.to_string())?;
            if ota::acknowledged(&body) { Ok(()) } else { Err(format!("no <Success/> in {body:.200}")) }
        }
        _ => Err(format!("answered {status}")),
    }
}

fn hmac_sha256(key: &[u8], message: &str) -> Vec<u8> {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Standard Webhooks: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
fn standard_signature(key: &[u8], id: &str, timestamp: &str, body: &str) -> String {
    let mac = hmac_sha256(key, &format!("{id}.{timestamp}.{body}"));
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac))
}

/// ota's legacy scheme: lower-case hex HMAC-SHA256 of `"{timestamp}.{body}"` with the raw secret.
fn ota_signature(secret: &[u8], timestamp: &str, body: &str) -> String {
    hex::encode(hmac_sha256(secret, &format!("{timestamp}.{body}")))
}
