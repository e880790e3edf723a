//! Webhook signature schemes: Standard Webhooks (jsonrest, sandbox, and bookhub's own outbound
//! webhooks) and the OTA supplier's legacy `X-OTA-Signature`. Every comparison is constant-time
//! (`subtle`, `Mac::verify_slice`), and several secrets can be active at once so a rotated-out secret keeps
//! working through its grace period.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use domain::supplier::{InboundWebhook, WebhookError};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// A `whsec_<base64>` secret that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a Standard Webhooks secret is `whsec_` followed by base64")]
pub struct InvalidSecret;

/// A Standard Webhooks signing key: the decoded bytes of a `whsec_…` secret.
#[derive(Clone)]
pub struct StandardKey(Vec<u8>);

impl std::fmt::Debug for StandardKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StandardKey(…)")
    }
}

impl StandardKey {
    pub fn parse(secret: &str) -> Result<Self, InvalidSecret> {
        let encoded = secret.strip_prefix("whsec_").ok_or(InvalidSecret)?;
        let bytes = BASE64.decode(encoded).map_err(|_| InvalidSecret)?;
        if bytes.is_empty() {
            return Err(InvalidSecret);
        }
        Ok(StandardKey(bytes))
    }

    fn mac(&self, id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` value for a message: `v1,<base64>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(id, &timestamp.to_string(), body).finalize().into_bytes();
        format!("v1,{}", BASE64.encode(tag))
    }
}

/// Verifies a Standard Webhooks request: `webhook-id`, `webhook-timestamp` within `tolerance`
/// of `now`, and at least one `v1,` signature in `webhook-signature` made with one of `keys`.
pub fn verify_standard(
    keys: &[StandardKey],
    webhook: &InboundWebhook,
    now: DateTime<Utc>,
    tolerance: chrono::Duration,
) -> Result<(), WebhookError> {
    let id = webhook.header("webhook-id").ok_or(WebhookError::MissingHeader("webhook-id"))?;
    let timestamp = webhook.header("webhook-timestamp").ok_or(WebhookError::MissingHeader("webhook-timestamp"))?;
    let signatures = webhook.header("webhook-signature").ok_or(WebhookError::MissingHeader("webhook-signature"))?;
    check_timestamp(timestamp, now, tolerance)?;
    // Each key's tag is computed once and compared, in constant time, with at most a few
    // offered signatures of the right length: a header stuffed with signatures costs nothing.
    let offered: Vec<Vec<u8>> = signatures
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .take(MAX_SIGNATURES)
        .filter_map(|b64| BASE64.decode(b64).ok())
        .filter(|tag| tag.len() == TAG_LEN)
        .collect();
    let matches = keys.iter().any(|key| {
        let expected = key.mac(id, timestamp, &webhook.body).finalize().into_bytes();
        offered.iter().any(|tag| bool::from(expected.as_slice().ct_eq(tag)))
    });
    if matches { Ok(()) } else { Err(WebhookError::BadSignature) }
}

/// Signatures looked at in one `webhook-signature` header (a supplier rotating sends two).
const MAX_SIGNATURES: usize = 8;
/// HMAC-SHA256 tags are 32 bytes.
const TAG_LEN: usize = 32;

/// The OTA supplier's scheme: `X-OTA-Signature` is the hex HMAC-SHA256 of
/// `"{X-OTA-Timestamp}.{raw body}"`, keyed with the shared secret's UTF-8 bytes.
pub fn sign_ota(secret: &str, timestamp: i64, body: &[u8]) -> String {
    hex::encode(ota_mac(secret, &timestamp.to_string(), body).finalize().into_bytes())
}

fn ota_mac(secret: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Verifies an `X-OTA-Signature` request against any of `secrets`.
pub fn verify_ota(
    secrets: &[crate::settings::Secret],
    webhook: &InboundWebhook,
    now: DateTime<Utc>,
    tolerance: chrono::Duration,
) -> Result<(), WebhookError> {
    let timestamp = webhook.header("x-ota-timestamp").ok_or(WebhookError::MissingHeader("x-ota-timestamp"))?;
    let signature = webhook.header("x-ota-signature").ok_or(WebhookError::MissingHeader("x-ota-signature"))?;
    check_timestamp(timestamp, now, tolerance)?;
    let tag = hex::decode(signature.trim()).map_err(|_| WebhookError::BadSignature)?;
    if tag.len() != TAG_LEN {
        return Err(WebhookError::BadSignature);
    }
    let matches =
        secrets.iter().any(|secret| ota_mac(secret.expose(), timestamp, &webhook.body).verify_slice(&tag).is_ok());
    if matches { Ok(()) } else { Err(WebhookError::BadSignature) }
}

fn check_timestamp(timestamp: &str, now: DateTime<Utc>, tolerance: chrono::Duration) -> Result<(), WebhookError> {
    let seconds: i64 = timestamp.trim().parse().map_err(|_| WebhookError::StaleTimestamp)?;
    let sent = DateTime::from_timestamp(seconds, 0).ok_or(WebhookError::StaleTimestamp)?;
    if (now - sent).abs() > tolerance {
        return Err(WebhookError::StaleTimestamp);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn webhook(headers: &[(&str, String)], body: &str) -> InboundWebhook {
        InboundWebhook {
            headers: headers.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn tolerance() -> chrono::Duration {
        chrono::Duration::minutes(5)
    }

    #[test]
    fn the_standard_webhooks_reference_vector_verifies() {
        // The example from the Standard Webhooks specification's reference libraries.
        let key = StandardKey::parse(SECRET).unwrap();
        let body = r#"{"test": 2432232314}"#;
        let signature = key.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body.as_bytes());
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let now = DateTime::from_timestamp(1614265330 + 60, 0).unwrap();
        let request = webhook(
            &[
                ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek".into()),
                ("webhook-timestamp", "1614265330".into()),
                ("webhook-signature", format!("v1,bm90LXRoaXMtb25l {signature}")),
            ],
            body,
        );
        assert_eq!(verify_standard(std::slice::from_ref(&key), &request, now, tolerance()), Ok(()));
        let late = now + chrono::Duration::minutes(6);
        assert_eq!(verify_standard(&[key], &request, late, tolerance()), Err(WebhookError::StaleTimestamp));
    }

    #[test]
    fn ota_signatures_verify_with_any_active_secret() {
        let now = Utc::now();
        let ts = now.timestamp();
        let body = "<OTA_HotelResNotifRQ/>";
        let request = webhook(
            &[("x-ota-timestamp", ts.to_string()), ("x-ota-signature", sign_ota("new", ts, body.as_bytes()))],
            body,
        );
        assert_eq!(verify_ota(&["old".into(), "new".into()], &request, now, tolerance()), Ok(()));
        assert_eq!(verify_ota(&["old".into()], &request, now, tolerance()), Err(WebhookError::BadSignature));
    }

    #[test]
    fn secrets_must_be_whsec_base64() {
        assert!(StandardKey::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(StandardKey::parse("whsec_not base64!").is_err());
    }
}
