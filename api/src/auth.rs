//! API keys: `Authorization: Bearer <key>`. Keys carry 256 random bits and are shown once;
//! only their SHA-256 is stored (a slow hash adds nothing against keys this random).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use adapters::store::api_keys::{self, ApiKeyRecord, Role};
use adapters::store::bookings::{self, Scope};
use adapters::store::{Database, StoreError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::AgencyId;
use futures::future::LocalBoxFuture;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

const KEY_PREFIX: &str = "bkh_";

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
    let key = generate_key();
    api_keys::create(db, role, agency_id, &hash_key(&key)).await?;
    Ok(key)
}

/// Recently seen keys, so most requests need no database round trip to authenticate.
#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    known: RwLock<HashMap<String, (ApiKeyRecord, Instant)>>,
}

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        KeyCache { ttl, known: RwLock::new(HashMap::new()) }
    }

    async fn lookup(&self, db: &Database, key: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let hash = hash_key(key);
        if let Some((record, at)) = self.known.read().expect("key cache lock").get(&hash)
            && at.elapsed() < self.ttl
        {
            return Ok(Some(record.clone()));
        }
        let found = api_keys::find_by_hash(db, &hash).await?;
        let mut known = self.known.write().expect("key cache lock");
        match &found {
            Some(record) => {
                known.insert(hash, (record.clone(), Instant::now()));
            }
            None => {
                known.remove(&hash);
            }
        }
        Ok(found)
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
        let req = req.clone();
        Box::pin(async move {
            let (Some(key), Some(state)) = (key, state) else {
                return Err(ApiError::Unauthorized);
            };
            let record = state.keys.lookup(&state.db, &key).await?.ok_or(ApiError::Unauthorized)?;
            // Counted once the key is known to be real; the headers go on the response.
            let status = state.rate_limits.check(&record.id)?;
            req.extensions_mut().insert(status);
            Ok(Caller(record))
        })
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

permission_extractors!(AgencyCaller, StaffCaller, FinanceCaller, AdminCaller, BookingAccess);

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
