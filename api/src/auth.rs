//! API keys: `Authorization: Bearer <key>`. Keys carry 256 random bits and are shown once;
//! only their SHA-256 is stored (a slow hash adds nothing against keys this random).
//!
//! Authentication order, cheapest first: the cache of known keys (no database, no limiter);
//! then the per-address limiter of failed authentications
//! ([`crate::rate_limit::AuthAttempts`]), refusing an address past it; then the cache of
//! unknown hashes; then the database. Each failure counts against the address. A known key stays cached at most
//! `rate_limit.key_cache_ttl` (≤ 5 s), which bounds how long another process may still accept
//! a key after it is revoked; this process forgets it at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use adapters::store::api_keys::{self, ApiKeyRecord, NewKey, Role};
use adapters::store::bookings::{self, Scope};
use adapters::store::{Database, StoreError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use domain::{AgencyId, ApiKeyId};
use futures::future::LocalBoxFuture;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

const KEY_PREFIX: &str = "bkh_";

/// Unknown hashes remembered at most; past it, the oldest half is dropped.
const UNKNOWN_KEYS: usize = 10_000;

/// How soon before a key's expiry its answers carry [`KEY_EXPIRES_AT`].
pub const EXPIRY_WARNING: chrono::Duration = chrono::Duration::days(14);

/// The header naming a key's expiry, on answers to a key that expires within [`EXPIRY_WARNING`].
pub const KEY_EXPIRES_AT: HeaderName = HeaderName::from_static("x-key-expires-at");

/// A new secret key, `bkh_` and 43 URL-safe characters.
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Creates a key for `role` (and its agency, for agency keys); returns the secret, shown once.
pub async fn issue_key(db: &Database, role: Role, agency_id: Option<&AgencyId>) -> Result<String, StoreError> {
    Ok(issue(db, &NewKey::new(role, agency_id)).await?.0)
}

/// Creates `new`; returns the secret (shown once) and the stored key.
pub async fn issue(db: &Database, new: &NewKey<'_>) -> Result<(String, ApiKeyRecord), StoreError> {
    let key = generate_key();
    let record = api_keys::create(db, new, &hash_key(&key)).await?;
    Ok((key, record))
}

/// The longest a key may live: its expiry is at most this far from its creation.
pub const MAX_KEY_LIFETIME: chrono::Duration = chrono::Duration::days(3650);

/// Why a key could not be rotated.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// A key has one successor: a leaked key cannot mint keys its owner does not know about.
    #[error("this key was already rotated; use its successor")]
    AlreadyRotated,
    #[error("this key is revoked or expired; create a new one instead")]
    NotLive,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Issues the one successor of `old` (same role, agency and label) and lets `old` expire after
/// `grace` (or its own expiry, when sooner). The successor lives as long as `old` was meant to
/// (no expiry if `old` had none), at most [`MAX_KEY_LIFETIME`].
pub async fn rotate(
    db: &Database,
    old: &ApiKeyRecord,
    grace: chrono::Duration,
) -> Result<(String, ApiKeyRecord), RotateError> {
    let now = adapters::store::now();
    if old.revoked_at.is_some() || old.is_expired(now) {
        return Err(RotateError::NotLive);
    }
    if old.rotated_at.is_some() {
        return Err(RotateError::AlreadyRotated);
    }
    let lifetime = old.expires_at.map(|at| (at - old.created_at).min(MAX_KEY_LIFETIME));
    let until = now.checked_add_signed(grace.min(MAX_KEY_LIFETIME)).unwrap_or(now);
    // Claim the rotation first: of two at once, one wins and the other issues nothing.
    if !api_keys::retire(db, &old.id, until, now).await? {
        return Err(RotateError::AlreadyRotated);
    }
    let new = NewKey {
        role: old.role,
        agency_id: old.agency_id.as_ref(),
        label: old.label.as_deref(),
        expires_at: lifetime.and_then(|l| now.checked_add_signed(l)),
    };
    Ok(issue(db, &new).await?)
}

/// Recently seen keys, known and unknown, so most requests need no database round trip to
/// authenticate.
#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    known: RwLock<HashMap<String, (ApiKeyRecord, Instant)>>,
    unknown: RwLock<HashMap<String, Instant>>,
    /// When this process last recorded each key's use.
    touched: RwLock<HashMap<ApiKeyId, Instant>>,
}

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        KeyCache { ttl, known: RwLock::default(), unknown: RwLock::default(), touched: RwLock::default() }
    }

    /// Forgets `id` in this process at once (after a revocation or rotation).
    pub fn forget(&self, id: &ApiKeyId) {
        self.known.write().expect("key cache lock").retain(|_, (record, _)| &record.id != id);
    }

    fn cached(&self, hash: &str) -> Option<ApiKeyRecord> {
        let known = self.known.read().expect("key cache lock");
        known.get(hash).filter(|(_, at)| at.elapsed() < self.ttl).map(|(record, _)| record.clone())
    }

    fn known_unknown(&self, hash: &str) -> bool {
        self.unknown.read().expect("key cache lock").get(hash).is_some_and(|at| at.elapsed() < self.ttl)
    }

    /// The key behind `hash` from the database, remembering the answer either way.
    async fn fetch(&self, db: &Database, hash: String) -> Result<Option<ApiKeyRecord>, StoreError> {
        let found = api_keys::find_by_hash(db, &hash).await?;
        match &found {
            Some(record) => {
                self.known.write().expect("key cache lock").insert(hash, (record.clone(), Instant::now()));
            }
            None => self.remember_unknown(hash),
        }
        Ok(found)
    }

    fn remember_unknown(&self, hash: String) {
        let mut unknown = self.unknown.write().expect("key cache lock");
        if unknown.len() >= UNKNOWN_KEYS {
            unknown.retain(|_, at| at.elapsed() < self.ttl);
        }
        if unknown.len() >= UNKNOWN_KEYS {
            let mut ages: Vec<Instant> = unknown.values().copied().collect();
            ages.sort_unstable();
            let cutoff = ages[ages.len() / 2];
            unknown.retain(|_, at| *at > cutoff);
        }
        unknown.insert(hash, Instant::now());
    }

    /// Whether this process should record a use of `record` now: at most once a minute a key.
    fn due_for_touch(&self, record: &ApiKeyRecord, now: DateTime<Utc>) -> bool {
        if record.last_used_at.is_some_and(|at| now - at < chrono::Duration::minutes(1)) {
            return false;
        }
        let minute = Duration::from_secs(60);
        if self.touched.read().expect("key cache lock").get(&record.id).is_some_and(|at| at.elapsed() < minute) {
            return false;
        }
        let mut touched = self.touched.write().expect("key cache lock");
        match touched.get(&record.id) {
            Some(at) if at.elapsed() < minute => false,
            _ => {
                touched.insert(record.id.clone(), Instant::now());
                true
            }
        }
    }
}

/// The key's expiry, kept in the request's extensions when it is near, for the answer's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyExpiry(pub DateTime<Utc>);

impl KeyExpiry {
    pub fn write_header(&self, headers: &mut HeaderMap) {
        let at = self.0.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        if let Ok(value) = HeaderValue::from_str(&at) {
            headers.insert(KEY_EXPIRES_AT, value);
        }
    }
}

/// Who is calling, from their API key.
#[derive(Debug, Clone)]
pub struct Caller(pub ApiKeyRecord);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let key = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            // The scheme is case-insensitive (RFC 9110 §11.1).
            .and_then(|v| v.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")))
            .map(|(_, key)| key)
            .map(|k| k.trim().to_owned())
            .filter(|k| k.starts_with(KEY_PREFIX));
        let state = req.app_data::<web::Data<crate::app::AppState>>().cloned();
        let address = crate::rate_limit::client_address(req);
        let req = req.clone();
        Box::pin(async move {
            let (Some(key), Some(state)) = (key, state) else {
                return Err(ApiError::Unauthorized);
            };
            let record = authenticate(&state, &key, address).await?;
            let now = Utc::now();
            if record.is_expired(now) {
                return Err(ApiError::KeyExpired);
            }
            if let Some(at) = record.expires_at.filter(|at| *at - now <= EXPIRY_WARNING) {
                req.extensions_mut().insert(KeyExpiry(at));
            }
            if state.keys.due_for_touch(&record, now) {
                let (db, id) = (state.db.clone(), record.id.clone());
                actix_web::rt::spawn(async move {
                    if let Err(e) = api_keys::touch(&db, &id, adapters::store::now()).await {
                        tracing::warn!(error = %e, "recording a key's use failed");
                    }
                });
            }
            // Counted once the key is known to be real; the headers go on the response.
            let status = state.rate_limits.check(&record.id)?;
            req.extensions_mut().insert(status);
            Ok(Caller(record))
        })
    }
}

/// The live (not revoked) key behind `key`, cheapest source first (see the module docs).
pub(crate) async fn authenticate(
    state: &crate::app::AppState,
    key: &str,
    address: IpAddr,
) -> Result<ApiKeyRecord, ApiError> {
    let hash = hash_key(key);
    let found = match state.keys.cached(&hash) {
        Some(record) => Some(record),
        None => {
            state.auth_attempts.check(address)?;
            if state.keys.known_unknown(&hash) { None } else { state.keys.fetch(&state.db, hash).await? }
        }
    };
    // A revoked key is refused like an unknown one: the caller learns nothing about it.
    match found.filter(|record| record.revoked_at.is_none()) {
        Some(record) => Ok(record),
        None => Err(state.auth_attempts.failed(address, ApiError::Unauthorized)),
    }
}

/// What a role may do, written once: each extractor below is one permission, so a handler
/// that takes it in its signature cannot run for a caller without it (401 without a valid key,
/// 403 for a key of another role).
pub trait Permission: Sized {
    /// Why a key of another role is refused (the 403's detail).
    const DENIED: &'static str;

    /// The permission, when `caller`'s role grants it.
    fn grant(caller: Caller) -> Option<Self>;
}

/// Authenticates, then checks `P`.
fn authorize<P: Permission + 'static>(
    req: &HttpRequest,
    payload: &mut Payload,
) -> LocalBoxFuture<'static, Result<P, ApiError>> {
    let caller = Caller::from_request(req, payload);
    Box::pin(async move { P::grant(caller.await?).ok_or(ApiError::Forbidden(P::DENIED)) })
}

macro_rules! permission_extractors {
    ($($name:ident),+ $(,)?) => {
        $(
            impl FromRequest for $name {
                type Error = ApiError;
                type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

                fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
                    authorize::<$name>(req, payload)
                }
            }
        )+
    };
}

permission_extractors!(AgencyCaller, StaffCaller, FinanceCaller, FinanceOrStaffCaller, AdminCaller, BookingAccess);

/// An agency's key: acts for that agency.
#[derive(Debug, Clone)]
pub struct AgencyCaller {
    pub agency: AgencyId,
    pub caller: Caller,
}

impl Permission for AgencyCaller {
    const DENIED: &'static str = "only an agency's API key can do this";

    fn grant(caller: Caller) -> Option<Self> {
        match (&caller.0.role, &caller.0.agency_id) {
            (Role::Agency, Some(agency)) => Some(AgencyCaller { agency: agency.clone(), caller }),
            _ => None,
        }
    }
}

/// Staff and admins.
#[derive(Debug, Clone)]
pub struct StaffCaller(pub Caller);

impl Permission for StaffCaller {
    const DENIED: &'static str = "only staff keys can do this";

    fn grant(caller: Caller) -> Option<Self> {
        matches!(caller.0.role, Role::Staff | Role::Admin).then_some(StaffCaller(caller))
    }
}

/// Finance and admins.
#[derive(Debug, Clone)]
pub struct FinanceCaller(pub Caller);

impl Permission for FinanceCaller {
    const DENIED: &'static str = "only finance keys can do this";

    fn grant(caller: Caller) -> Option<Self> {
        matches!(caller.0.role, Role::Finance | Role::Admin).then_some(FinanceCaller(caller))
    }
}

/// Finance, staff and admins: reconciliation, which both look after.
#[derive(Debug, Clone)]
pub struct FinanceOrStaffCaller(pub Caller);

impl Permission for FinanceOrStaffCaller {
    const DENIED: &'static str = "only finance and staff keys can do this";

    fn grant(caller: Caller) -> Option<Self> {
        matches!(caller.0.role, Role::Finance | Role::Staff | Role::Admin).then_some(FinanceOrStaffCaller(caller))
    }
}

/// Admins only.
#[derive(Debug, Clone)]
pub struct AdminCaller(pub Caller);

impl Permission for AdminCaller {
    const DENIED: &'static str = "only admin keys can do this";

    fn grant(caller: Caller) -> Option<Self> {
        matches!(caller.0.role, Role::Admin).then_some(AdminCaller(caller))
    }
}

/// Reads and cancels bookings: an agency its own, staff and admins all (finance none).
#[derive(Debug, Clone)]
pub struct BookingAccess {
    pub scope: Scope,
    pub caller: Caller,
}

impl Permission for BookingAccess {
    const DENIED: &'static str = "finance keys read reports, not bookings";

    fn grant(caller: Caller) -> Option<Self> {
        let scope = match (&caller.0.role, &caller.0.agency_id) {
            (Role::Agency, Some(agency)) => bookings::for_agency(agency),
            (Role::Staff | Role::Admin, _) => Scope::All,
            _ => return None,
        };
        Some(BookingAccess { scope, caller })
    }
}
