//! `Idempotency-Key` (IETF httpapi draft): a retried create gets the first answer back.
//!
//! - missing on a create → 400; same key, same body → the first response, replayed with
//!   `Idempotent-Replayed: true`; same key, other body → 422; same key while the first is still
//!   being written → 409. Keys are scoped per agency and kept `idempotency.ttl`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest};
use adapters::store::Database;
use adapters::store::idempotency;
use domain::AgencyId;
use futures::future::{Ready, ready};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

pub const HEADER: &str = "Idempotency-Key";
pub const REPLAYED: &str = "Idempotent-Replayed";

/// The request's key: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub String);

impl FromRequest for IdempotencyKey {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(value) = req.headers().get(HEADER) else {
            return ready(Err(ApiError::MissingIdempotencyKey));
        };
        let key = value
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()));
        ready(match key {
            Some(k) => Ok(IdempotencyKey(k.to_owned())),
            None => Err(ApiError::bad_request(
                "idempotency_key_invalid",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )),
        })
    }
}

/// SHA-256 of the body's canonical JSON (keys sorted), so formatting does not change it.
pub fn request_hash(body: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(body.to_string().as_bytes()))
}

/// Keys whose first request this process is still writing.
#[derive(Debug, Default, Clone)]
pub struct InFlight(Arc<Mutex<HashSet<(AgencyId, String)>>>);

/// Holds a key in flight until dropped.
#[derive(Debug)]
pub struct InFlightGuard {
    set: InFlight,
    entry: (AgencyId, String),
}

impl InFlight {
    /// Claims the key, or 409 while another request holds it.
    pub fn claim(&self, agency: &AgencyId, key: &IdempotencyKey) -> Result<InFlightGuard, ApiError> {
        let entry = (agency.clone(), key.0.clone());
        if !self.0.lock().expect("in-flight lock").insert(entry.clone()) {
            return Err(ApiError::IdempotencyKeyInFlight);
        }
        Ok(InFlightGuard { set: self.clone(), entry })
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.set.0.lock().expect("in-flight lock").remove(&self.entry);
    }
}

/// The first response to a request, as stored.
#[derive(Debug)]
pub struct FirstResponse {
    pub status: StatusCode,
    pub body: String,
}

/// The stored first response for a taken key, or 422 when this request's body differs.
pub async fn first_response(
    db: &Database,
    agency: &AgencyId,
    key: &IdempotencyKey,
    request_hash: &str,
) -> Result<FirstResponse, ApiError> {
    // Purged between the conflict and this read (it had expired): the key is free again, so
    // the client's retry will book afresh.
    let record = idempotency::find(db, agency, &key.0).await?.ok_or(ApiError::IdempotencyKeyInFlight)?;
    if record.request_hash != request_hash {
        return Err(ApiError::IdempotencyKeyReused);
    }
    Ok(FirstResponse {
        status: StatusCode::from_u16(record.response_status).unwrap_or(StatusCode::OK),
        body: record.response_body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_in_flight_until_its_request_finishes() {
        let in_flight = InFlight::default();
        let (sol, luna) = (AgencyId::generate(), AgencyId::generate());
        let key = IdempotencyKey("k".into());

        let first = in_flight.claim(&sol, &key).unwrap();
        assert!(matches!(in_flight.claim(&sol, &key), Err(ApiError::IdempotencyKeyInFlight)));
        assert!(in_flight.claim(&luna, &key).is_ok(), "keys are per agency");
        drop(first);
        assert!(in_flight.claim(&sol, &key).is_ok());
    }

    #[test]
    fn the_hash_ignores_formatting_and_key_order() {
        let a: serde_json::Value = serde_json::from_str(r#"{"a": 1, "b": [1, 2]}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{ "b":[1,2],"a":1 }"#).unwrap();
        let c: serde_json::Value = serde_json::from_str(r#"{"a": 2, "b": [1, 2]}"#).unwrap();
        assert_eq!(request_hash(&a), request_hash(&b));
        assert_ne!(request_hash(&a), request_hash(&c));
    }
}
