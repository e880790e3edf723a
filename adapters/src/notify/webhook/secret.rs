//! An agency's webhook signing secret: `whsec_` + base64, as Standard Webhooks writes it. The
//! signing itself is [`StandardKey`]'s, the same code that verifies suppliers' webhooks.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::suppliers::signing::{InvalidSecret, StandardKey};

/// Random bytes in a generated secret (Standard Webhooks asks for 24 to 64).
const SECRET_BYTES: usize = 32;

/// An agency's `whsec_…` secret: its text (stored, and shown to the agency once) and the key
/// it decodes to. `Debug` prints neither.
#[derive(Clone)]
pub struct WebhookSecret {
    text: String,
    key: StandardKey,
}

impl WebhookSecret {
    /// A new secret of 32 random bytes from the thread's CSPRNG.
    pub fn generate() -> Self {
        let bytes: [u8; SECRET_BYTES] = rand::random();
        let text = format!("whsec_{}", BASE64.encode(bytes));
        let key = StandardKey::parse(&text).expect("a generated secret is whsec_ and valid base64");
        WebhookSecret { text, key }
    }

    /// A stored secret.
    pub fn parse(text: &str) -> Result<Self, InvalidSecret> {
        let key = StandardKey::parse(text)?;
        Ok(WebhookSecret { text: text.to_owned(), key })
    }

    /// The `whsec_…` text, for the one place that stores it or shows it to its agency.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// `v1,<base64>` for one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        self.key.sign(id, timestamp, body)
    }

    pub fn key(&self) -> &StandardKey {
        &self.key
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

impl std::str::FromStr for WebhookSecret {
    type Err = InvalidSecret;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        WebhookSecret::parse(text)
    }
}

/// The `webhook-signature` header for a message: one `v1,…` per secret, space-separated, so
/// during a rotation's grace period a receiver holding either secret can verify.
pub fn signature_header(secrets: &[&WebhookSecret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().map(|secret| secret.sign(id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_whsec_base64_of_32_random_bytes() {
        let secret = WebhookSecret::generate();
        let encoded = secret.expose().strip_prefix("whsec_").unwrap();
        assert_eq!(BASE64.decode(encoded).unwrap().len(), 32);
        assert_ne!(secret.expose(), WebhookSecret::generate().expose());
        let again = WebhookSecret::parse(secret.expose()).unwrap();
        assert_eq!(again.sign("msg_1", 1, b"{}"), secret.sign("msg_1", 1, b"{}"));
        assert!(WebhookSecret::parse("not-a-secret").is_err());
    }

    #[test]
    fn secrets_never_print() {
        let secret = WebhookSecret::generate();
        assert_eq!(format!("{secret:?}"), "WebhookSecret(…)");
        assert!(!format!("{:?}", secret.key()).contains(secret.expose()));
    }

    #[test]
    fn two_secrets_give_two_signatures() {
        // The Standard Webhooks reference vector, signed by the shared key code.
        let known = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let other = WebhookSecret::generate();
        let body = br#"{"test": 2432232314}"#;
        let header = signature_header(&[&known, &other], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(parts[1], other.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body));
    }
}
