//! The simulator's shared state: per-protocol faults, bookings and stats behind one mutex
//! (never held across an await), and the request gate every partner endpoint passes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use actix_web::HttpResponse;
use base64::Engine;
use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use super::faults::{Fault, Faults};
use super::{Confirmation, JsonrestPartner, OtaPartner, Protocol, ProtocolStats, SimConfig, Stats};

/// An amount in a currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub amount: Decimal,
    pub currency: String,
}

impl Money {
    /// Minor-unit digits of the currency.
    pub fn decimals(currency: &str) -> u32 {
        match currency {
            "JPY" | "KRW" | "ISK" | "CLP" => 0,
            _ => 2,
        }
    }

    /// The amount as the wire wants it: a decimal string with the currency's decimals.
    pub fn amount_string(&self) -> String {
        let dp = Self::decimals(&self.currency);
        let mut amount = self.amount.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
        amount.rescale(dp);
        amount.to_string()
    }

    /// Parses a wire amount: a non-negative decimal with at most the currency's decimals.
    pub(crate) fn parse(amount: &str, currency: &str) -> Result<Money, String> {
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err("currency must be an ISO 4217 code".into());
        }
        let value: Decimal = amount.parse().map_err(|_| "amount must be a decimal string".to_owned())?;
        if value.is_sign_negative() || value.scale() > Self::decimals(currency) {
            return Err(format!("amount must be positive with at most {} decimals", Self::decimals(currency)));
        }
        Ok(Money { amount: value, currency: currency.to_owned() })
    }

    /// The same money 10 % dearer, as a price change quotes it.
    pub(crate) fn raised(&self) -> Money {
        Money { amount: self.amount * Decimal::new(110, 2), currency: self.currency.clone() }
    }
}

/// A booking as a test sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimBooking {
    /// The supplier's reference (`JR-000001`, `OTA-000001`).
    pub reference: String,
    pub client_reference: String,
    /// The protocol's status code: `PND`/`CNF`/`CXL` or `Pending`/`Reserved`/`Cancelled`.
    pub status: String,
    pub total: Money,
}

/// Where a simulated booking stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Pending,
    Confirmed,
    Cancelled,
}

impl Status {
    /// The protocol's status code.
    pub(crate) fn code(self, protocol: Protocol) -> &'static str {
        let codes = match protocol {
            Protocol::Jsonrest => ["PND", "CNF", "CXL"],
            Protocol::Ota => ["Pending", "Reserved", "Cancelled"],
        };
        codes[self as usize]
    }
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Pax {
    pub name: String,
    pub surname: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age: Option<u64>,
}

/// One room in the supplier's own codes.
#[derive(Clone, Debug)]
pub(crate) struct Room {
    pub room_type: String,
    pub board: String,
    /// jsonrest's guests; empty for ota.
    pub paxes: Vec<Pax>,
    /// ota's per-room total; `None` for jsonrest.
    pub total: Option<Money>,
}

#[derive(Clone, Debug)]
pub(crate) struct Holder {
    pub name: String,
    pub surname: String,
    pub email: Option<String>,
}

/// A validated booking request, before the supplier gives it a reference.
#[derive(Clone, Debug)]
pub(crate) struct NewBooking {
    pub client_reference: String,
    pub hotel_code: String,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub rooms: Vec<Room>,
    pub holder: Holder,
    pub total: Money,
}

#[derive(Clone, Debug)]
pub(crate) struct Booking {
    pub reference: String,
    pub status: Status,
    pub request: NewBooking,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
}

impl Booking {
    pub(crate) fn public(&self, protocol: Protocol) -> SimBooking {
        SimBooking {
            reference: self.reference.clone(),
            client_reference: self.request.client_reference.clone(),
            status: self.status.code(protocol).to_owned(),
            total: self.request.total.clone(),
        }
    }
}

/// The answer to a booking request that passed validation.
pub(crate) enum Booked {
    /// A new booking, to be confirmed after the delay when there is one.
    Created(Booking, Option<Duration>),
    /// The booking already made for this client reference.
    Existing(Booking),
}

/// One protocol's faults, settings, bookings and stats.
#[derive(Default)]
pub(crate) struct Partner {
    pub faults: Faults,
    pub confirmation: Confirmation,
    pub hub_url: Option<String>,
    pub stats: ProtocolStats,
    bookings: Vec<Booking>,
    by_reference: HashMap<String, usize>,
    by_client_reference: HashMap<String, usize>,
    /// Sequence of references and notification tokens; never reset, so references stay unique.
    sequence: u64,
}

impl Partner {
    /// Books unless the client reference already has a booking (checked and made atomically).
    pub(crate) fn book(&mut self, protocol: Protocol, new: NewBooking) -> Booked {
        if let Some(existing) = self.by_client_reference(&new.client_reference) {
            return Booked::Existing(existing.clone());
        }
        let (status, delay) = match self.confirmation {
            Confirmation::Instant => (Status::Confirmed, None),
            Confirmation::Later { delay } => (Status::Pending, Some(delay)),
        };
        let prefix = if protocol == Protocol::Jsonrest { "JR" } else { "OTA" };
        let reference = format!("{prefix}-{:06}", self.next_sequence());
        let now = now();
        let booking = Booking { reference: reference.clone(), status, request: new, created_at: now, modified_at: now };
        let client_reference = booking.request.client_reference.clone();
        *self.stats.bookings_created.entry(client_reference.clone()).or_default() += 1;
        self.by_reference.insert(reference, self.bookings.len());
        self.by_client_reference.insert(client_reference, self.bookings.len());
        self.bookings.push(booking.clone());
        Booked::Created(booking, delay)
    }

    pub(crate) fn next_sequence(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence
    }

    pub(crate) fn find(&mut self, reference: &str) -> Option<&mut Booking> {
        self.by_reference.get(reference).and_then(|&i| self.bookings.get_mut(i))
    }

    pub(crate) fn by_client_reference(&self, client_reference: &str) -> Option<&Booking> {
        self.by_client_reference.get(client_reference).and_then(|&i| self.bookings.get(i))
    }

    /// Cancels (idempotently) and returns the booking, `None` when unknown.
    pub(crate) fn cancel(&mut self, reference: &str) -> Option<Booking> {
        let booking = self.find(reference)?;
        if booking.status != Status::Cancelled {
            booking.status = Status::Cancelled;
            booking.modified_at = now();
        }
        let booking = booking.clone();
        self.stats.cancels += 1;
        Some(booking)
    }

    /// Bookings modified within `[from, to]` (either end open), oldest change first.
    pub(crate) fn modified_between(&self, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Vec<&Booking> {
        let mut found: Vec<&Booking> = self
            .bookings
            .iter()
            .filter(|b| from.is_none_or(|f| b.modified_at >= f) && to.is_none_or(|t| b.modified_at <= t))
            .collect();
        found.sort_by(|a, b| (a.modified_at, &a.reference).cmp(&(b.modified_at, &b.reference)));
        found
    }

    /// Changes the booking of `client_reference` as `edit` says, as of now; `false` when there
    /// is none. For tests that make the supplier disagree with the hub.
    pub(crate) fn edit(&mut self, client_reference: &str, edit: &super::SimEdit) -> bool {
        let Some(&i) = self.by_client_reference.get(client_reference) else { return false };
        let booking = &mut self.bookings[i];
        if let Some(status) = edit.status {
            booking.status = status;
        }
        if let Some(total) = &edit.total {
            booking.request.total = total.clone();
            // ota prices each room: the first carries the new total, the others nothing.
            for (i, room) in booking.request.rooms.iter_mut().enumerate().filter(|(_, r)| r.total.is_some()) {
                let amount = if i == 0 { total.amount } else { Decimal::ZERO };
                room.total = Some(Money { amount, currency: total.currency.clone() });
            }
        }
        if let Some(check_out) = edit.check_out {
            booking.request.check_out = check_out;
        }
        if let (Some(room_type), Some(room)) = (&edit.room_type, booking.request.rooms.first_mut()) {
            room.room_type = room_type.clone();
        }
        booking.modified_at = now();
        true
    }

    /// Forgets the booking of `client_reference`, as a supplier that lost it; `false` when
    /// there is none.
    pub(crate) fn forget(&mut self, client_reference: &str) -> bool {
        let Some(i) = self.by_client_reference.get(client_reference).copied() else { return false };
        self.bookings.remove(i);
        self.by_reference = self.bookings.iter().enumerate().map(|(i, b)| (b.reference.clone(), i)).collect();
        self.by_client_reference =
            self.bookings.iter().enumerate().map(|(i, b)| (b.request.client_reference.clone(), i)).collect();
        true
    }

    /// A booking like the one of `like`, under `client_reference`, that the hub never made:
    /// its new reference, `None` when `like` is unknown.
    pub(crate) fn copy(&mut self, protocol: Protocol, like: &str, client_reference: &str) -> Option<String> {
        let mut request = self.by_client_reference(like)?.request.clone();
        request.client_reference = client_reference.to_owned();
        let confirmation = std::mem::replace(&mut self.confirmation, Confirmation::Instant);
        let booked = self.book(protocol, request);
        self.confirmation = confirmation;
        match booked {
            Booked::Created(booking, _) | Booked::Existing(booking) => Some(booking.reference),
        }
    }

    /// Holds `seed` as a booking made now with the seed's status (nothing confirms it later);
    /// its reference. A client reference already booked keeps its booking as it is.
    pub(crate) fn seed(&mut self, protocol: Protocol, seed: &super::SimSeed) -> String {
        let confirmation = std::mem::replace(&mut self.confirmation, Confirmation::Instant);
        let booked = self.book(protocol, seed_request(protocol, seed));
        self.confirmation = confirmation;
        match booked {
            Booked::Created(booking, _) => {
                let reference = booking.reference;
                if let Some(held) = self.find(&reference) {
                    held.status = seed.status;
                }
                reference
            }
            Booked::Existing(booking) => booking.reference,
        }
    }

    /// Clears faults, bookings and stats; keeps settings and the sequence.
    fn reset(&mut self) {
        let (confirmation, hub_url, sequence) = (self.confirmation, self.hub_url.take(), self.sequence);
        *self = Partner { confirmation, hub_url, sequence, ..Partner::default() };
    }
}

/// The booking request a seed stands for: one room; jsonrest's with one adult, ota's with its
/// total.
fn seed_request(protocol: Protocol, seed: &super::SimSeed) -> NewBooking {
    let jsonrest = protocol == Protocol::Jsonrest;
    let guest = || Pax { name: "Ana".into(), surname: "Pérez".into(), kind: "AD".into(), age: None };
    let room = Room {
        room_type: seed.room_type.clone(),
        board: seed.board.clone(),
        paxes: if jsonrest { vec![guest()] } else { Vec::new() },
        total: (!jsonrest).then(|| seed.total.clone()),
    };
    NewBooking {
        client_reference: seed.client_reference.clone(),
        hotel_code: seed.hotel_code.clone(),
        check_in: seed.check_in,
        check_out: seed.check_out,
        rooms: vec![room],
        holder: Holder { name: "Ana".into(), surname: "Pérez".into(), email: None },
        total: seed.total.clone(),
    }
}

struct State {
    /// Bumped by reset and stop: webhook tasks of an older epoch give up.
    epoch: u64,
    /// Indexed by [`Protocol`].
    partners: [Partner; 2],
}

/// Everything the handlers and background tasks share.
pub(crate) struct Shared {
    pub jsonrest: JsonrestPartner,
    pub ota: OtaPartner,
    /// The HMAC key of jsonrest's webhooks (the decoded `whsec_` secret).
    pub jsonrest_webhook_key: Vec<u8>,
    pub client: reqwest::Client,
    /// The runtime that started the simulator: webhook tasks run there, not on a server worker.
    pub runtime: tokio::runtime::Handle,
    state: Mutex<State>,
}

impl Shared {
    pub(crate) fn new(config: SimConfig) -> std::io::Result<Shared> {
        let invalid = |message: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, message.to_owned());
        let key = config
            .jsonrest
            .webhook_secret
            .strip_prefix("whsec_")
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
            .ok_or_else(|| invalid("the jsonrest webhook secret must be whsec_<base64>"))?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| invalid(&format!("HTTP client: {e}")))?;
        let partners = [&config.jsonrest.hub_webhook_url, &config.ota.hub_webhook_url]
            .map(|hub_url| Partner { hub_url: hub_url.clone(), ..Partner::default() });
        let state = State { epoch: 0, partners };
        Ok(Shared {
            jsonrest: config.jsonrest,
            ota: config.ota,
            jsonrest_webhook_key: key,
            client,
            runtime: tokio::runtime::Handle::current(),
            state: Mutex::new(state),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on one protocol's state under the lock.
    pub(crate) fn with<R>(&self, protocol: Protocol, f: impl FnOnce(&mut Partner) -> R) -> R {
        f(&mut self.lock().partners[protocol as usize])
    }

    /// Like [`Shared::with`], but only while `epoch` is current.
    pub(crate) fn with_epoch<R>(&self, epoch: u64, protocol: Protocol, f: impl FnOnce(&mut Partner) -> R) -> Option<R> {
        let mut state = self.lock();
        (state.epoch == epoch).then(|| f(&mut state.partners[protocol as usize]))
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// Ends the epoch: pending confirmations and deliveries give up.
    pub(crate) fn abandon_pending(&self) {
        self.lock().epoch += 1;
    }

    pub(crate) fn reset(&self) {
        let mut state = self.lock();
        state.epoch += 1;
        state.partners.iter_mut().for_each(Partner::reset);
    }

    pub(crate) fn stats(&self) -> Stats {
        let [jsonrest, ota] = &self.lock().partners;
        Stats { jsonrest: jsonrest.stats.clone(), ota: ota.stats.clone() }
    }

    /// The gate of every partner endpoint: counts the request (and the booking attempt for
    /// `client_reference`), waits the latency, and returns the fault it suffers, if any.
    pub(crate) async fn admit(&self, protocol: Protocol, client_reference: Option<&str>) -> Option<Fault> {
        let latency = self.with(protocol, |p| {
            p.stats.requests += 1;
            if let Some(reference) = client_reference {
                *p.stats.book_requests.entry(reference.to_owned()).or_default() += 1;
            }
            p.faults.latency_ms
        });
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        let fault = self.with(protocol, |p| p.faults.take(protocol));
        if fault == Some(Fault::Timeout) {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        fault
    }
}

/// Now, to the second: the wire shows whole seconds and filters compare what it shows.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

/// RFC 3339 UTC with whole seconds, as both protocols write timestamps.
pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Equality that takes as long for any mismatch, for secrets and signatures.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `405` with the `Allow` header, for a method a resource does not serve.
pub(crate) fn method_not_allowed(allow: &'static str) -> HttpResponse {
    HttpResponse::MethodNotAllowed().insert_header(("Allow", allow)).finish()
}

/// The share of the booking logic both protocols run after validation, under one lock.
pub(crate) fn book(shared: &Arc<Shared>, protocol: Protocol, new: NewBooking) -> Booked {
    let booked = shared.with(protocol, |p| p.book(protocol, new));
    if let Booked::Created(booking, Some(delay)) = &booked {
        super::webhooks::confirm_later(shared.clone(), protocol, booking.reference.clone(), *delay);
    }
    booked
}
