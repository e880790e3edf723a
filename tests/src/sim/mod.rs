//! The supplier simulator: a real HTTP server speaking the partner protocols of two hotel
//! suppliers, `jsonrest` (`../shared/partners/jsonrest.md`) and `ota` (`../shared/partners/ota.md`),
//! from the supplier's side. bookhub's end-to-end tests, the demo and the benchmarks book
//! against it; faults (latency, failures, rate limits, timeouts, malformed answers, price
//! changes, lost webhooks) are switched on per protocol, in-process or over the control API.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use bookhub_tests::sim::{Faults, Protocol, SimConfig, SupplierSim};
//! let sim = SupplierSim::start(SimConfig::default()).await?;
//! sim.set_faults(Protocol::Jsonrest, Faults { fail_next: 2, ..Faults::default() });
//! // ... point bookhub's jsonrest adapter at sim.jsonrest_url() ...
//! sim.stop().await;
//! # Ok(()) }
//! ```

mod control;
mod faults;
mod jsonrest;
mod ota;
mod state;
mod webhooks;
mod xml;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use base64::Engine;
use serde::{Deserialize, Serialize};

pub use faults::Faults;
use state::Shared;
pub use state::{Money, SimBooking, Status as SimStatus};

/// Where the simulator listens and the credentials its two partners use.
#[derive(Clone)]
pub struct SimConfig {
    /// Listening address; port 0 picks a free port.
    pub listen: SocketAddr,
    pub jsonrest: JsonrestPartner,
    pub ota: OtaPartner,
}

/// bookhub's credentials with the `jsonrest` supplier.
#[derive(Clone)]
pub struct JsonrestPartner {
    pub api_key: String,
    pub api_secret: String,
    /// The Standard Webhooks secret, `whsec_<base64>`.
    pub webhook_secret: String,
    /// Where confirmations are posted; settable later with [`SupplierSim::set_hub_webhook_url`].
    pub hub_webhook_url: Option<String>,
}

/// bookhub's credentials with the `ota` supplier.
#[derive(Clone)]
pub struct OtaPartner {
    pub username: String,
    pub password: String,
    /// The raw shared secret of the legacy `X-OTA-Signature` scheme.
    pub webhook_secret: String,
    pub hub_webhook_url: Option<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        let jsonrest_secret = base64::engine::general_purpose::STANDARD.encode("jsonrest-webhook-secret-0123456789");
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            jsonrest: JsonrestPartner {
                api_key: "jr-key".into(),
                api_secret: "jr-secret".into(),
                webhook_secret: format!("whsec_{jsonrest_secret}"),
                hub_webhook_url: None,
            },
            ota: OtaPartner {
                username: "bookhub".into(),
                password: "ota-password".into(),
                webhook_secret: "ota-webhook-secret".into(),
                hub_webhook_url: None,
            },
        }
    }
}

/// One of the simulated suppliers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Jsonrest,
    Ota,
}

impl Protocol {
    /// Parses the path segment of the control API.
    pub fn parse(segment: &str) -> Option<Protocol> {
        match segment {
            "jsonrest" => Some(Protocol::Jsonrest),
            "ota" => Some(Protocol::Ota),
            _ => None,
        }
    }
}

/// How a new booking is confirmed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Confirmation {
    /// Confirmed in the booking answer (`CNF` / `Reserved`).
    #[default]
    Instant,
    /// Answered `PND` / `Pending`; confirmed by a signed webhook `delay` after the booking.
    Later { delay: Duration },
}

/// A change a test makes to a simulated booking, so that the supplier disagrees with the hub.
/// `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct SimEdit {
    pub status: Option<SimStatus>,
    pub total: Option<Money>,
    pub check_out: Option<chrono::NaiveDate>,
    /// The first room's room type, in the protocol's code.
    pub room_type: Option<String>,
}

/// A booking the simulator holds from the start, as if bookhub had made it (its client
/// reference is bookhub's booking id): for benchmarks that need thousands of bookings without
/// booking each over HTTP. One room, one adult guest (jsonrest) or the room's total (ota).
#[derive(Clone, Debug)]
pub struct SimSeed {
    pub client_reference: String,
    pub hotel_code: String,
    pub check_in: chrono::NaiveDate,
    pub check_out: chrono::NaiveDate,
    /// The room's type and board, in the protocol's codes (`DBL.ST` and `BB` for jsonrest).
    pub room_type: String,
    pub board: String,
    pub total: Money,
    pub status: SimStatus,
}

/// Counters of one protocol since start or the last reset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolStats {
    /// Every request to the partner endpoints, faulted or not.
    pub requests: u64,
    /// Booking requests per client reference, faulted or not (when the reference was readable).
    pub book_requests: BTreeMap<String, u64>,
    /// Distinct bookings created per client reference: at most 1 by the dedupe rule.
    pub bookings_created: BTreeMap<String, u64>,
    /// Cancel requests answered with a cancelled booking (repeats included).
    pub cancels: u64,
    /// Webhook delivery attempts.
    pub webhooks_sent: u64,
    /// Webhooks the hub acknowledged.
    pub webhooks_delivered: u64,
    /// Confirmations never delivered: `drop_webhooks`, no hub URL, or retries given up.
    pub webhooks_dropped: u64,
}

/// Counters of both protocols.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub jsonrest: ProtocolStats,
    pub ota: ProtocolStats,
}

impl Stats {
    pub fn get(&self, protocol: Protocol) -> &ProtocolStats {
        match protocol {
            Protocol::Jsonrest => &self.jsonrest,
            Protocol::Ota => &self.ota,
        }
    }
}

/// A running simulator; see the module documentation.
pub struct SupplierSim {
    shared: Arc<Shared>,
    address: SocketAddr,
    handle: ServerHandle,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl SupplierSim {
    /// Binds `config.listen` and serves in the background of the current tokio runtime.
    pub async fn start(config: SimConfig) -> std::io::Result<SupplierSim> {
        let listener = std::net::TcpListener::bind(config.listen)?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config)?);
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || {
            App::new().app_data(data.clone()).service(jsonrest::scope()).service(ota::scope()).service(control::scope())
        })
        .workers(2)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)?
        .run();
        let handle = server.handle();
        let server = tokio::spawn(server);
        tracing::info!(sim.address = %address, "supplier simulator listening");
        Ok(SupplierSim { shared, address, handle, server })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The jsonrest base URL: the adapter calls `{base}/v2/bookings`.
    pub fn jsonrest_url(&self) -> String {
        format!("{}/jsonrest", self.address())
    }

    /// The ota base URL: the adapter posts to `{base}/OTA_HotelResRQ`.
    pub fn ota_url(&self) -> String {
        format!("{}/ota", self.address())
    }

    /// Replaces the protocol's faults (counters such as `fail_next` start over).
    pub fn set_faults(&self, protocol: Protocol, faults: Faults) {
        self.shared.with(protocol, |p| p.faults = faults);
    }

    pub fn set_hub_webhook_url(&self, protocol: Protocol, url: &str) {
        self.shared.with(protocol, |p| p.hub_url = Some(url.to_owned()));
    }

    pub fn set_confirmation(&self, protocol: Protocol, mode: Confirmation) {
        self.shared.with(protocol, |p| p.confirmation = mode);
    }

    /// Clears faults, bookings and stats of both protocols; pending confirmations are abandoned.
    pub fn reset(&self) {
        self.shared.reset();
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// The booking made for `client_reference`, with the protocol's status code.
    pub fn booking(&self, protocol: Protocol, client_reference: &str) -> Option<SimBooking> {
        self.shared.with(protocol, |p| p.by_client_reference(client_reference).map(|b| b.public(protocol)))
    }

    /// Changes the booking of `client_reference` (its modification time too); panics when
    /// there is none.
    pub fn edit(&self, protocol: Protocol, client_reference: &str, edit: SimEdit) {
        assert!(self.shared.with(protocol, |p| p.edit(client_reference, &edit)), "no booking {client_reference}");
    }

    /// Loses the booking of `client_reference`; panics when there is none.
    pub fn forget(&self, protocol: Protocol, client_reference: &str) {
        assert!(self.shared.with(protocol, |p| p.forget(client_reference)), "no booking {client_reference}");
    }

    /// Makes a confirmed booking like that of `like` under `client_reference`, one the hub
    /// never made; its reference.
    pub fn copy(&self, protocol: Protocol, like: &str, client_reference: &str) -> String {
        self.shared.with(protocol, |p| p.copy(protocol, like, client_reference)).expect("the booking to copy")
    }

    /// Holds each of `seeds` as a booking modified now, with its status and no confirmation to
    /// come (see [`SimSeed`]); their references, in order. A client reference that already has
    /// a booking keeps it (its reference is returned).
    pub fn seed(&self, protocol: Protocol, seeds: impl IntoIterator<Item = SimSeed>) -> Vec<String> {
        self.shared.with(protocol, |p| seeds.into_iter().map(|seed| p.seed(protocol, &seed)).collect())
    }

    /// Polls the stats every 10 ms until `f` holds; panics with the stats after `timeout`.
    pub async fn wait_for<F: Fn(&Stats) -> bool>(&self, timeout: Duration, f: F) -> Stats {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let stats = self.stats();
            if f(&stats) {
                return stats;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("supplier simulator: condition not met within {timeout:?}; stats: {stats:#?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the server without waiting for hanging requests; pending webhooks are abandoned.
    pub async fn stop(self) {
        self.shared.abandon_pending();
        self.handle.stop(false).await;
        let _ = self.server.await;
    }
}
