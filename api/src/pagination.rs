//! Cursor pages: `limit` (1 to 100, default 20) and an opaque `cursor` that encodes the last id
//! of the previous page (ids sort by creation time, so pages are keyset pages).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::ApiError;

/// The page size asked for, checked.
pub fn limit(asked: Option<u64>) -> Result<u64, ApiError> {
    let limit = asked.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("invalid_limit", "limit must be between 1 and 100"));
    }
    Ok(limit)
}

/// The cursor for the page after the one ending at `last_id`.
pub fn encode_cursor(last_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(last_id)
}

/// The last id a cursor names; 400 for anything this API did not hand out.
pub fn decode_cursor<T: std::str::FromStr>(cursor: &str) -> Result<T, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ApiError::bad_request("invalid_cursor", "cursor is not one this API returned"))
}
