//! The CRM client: [`HttpCrm`] speaks the wholesaler's records API as its vendor documents it
//! (`PUT {base}/api/v1/objects/reservas/records/{external_id}`, a Bearer token, a
//! `{"fields": {...}}` body), with the booking id as the external id, so a retried call
//! replaces the record it already wrote and never makes a second one.
//!
//! 401 and other 4xx answers are final; 429 (honouring `Retry-After`) and 5xx are retried in
//! the call with full-jitter backoff, then reported as transient for the job to come back to.
//! Redirects are never followed: the token would travel to whatever host `Location` names.

use std::path::PathBuf;
use std::time::Duration;

use domain::{BookingId, Crm, CrmError, CrmRecord};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Response, StatusCode};
use serde::{Deserialize, Serialize};

use crate::settings::{Secret, SettingError};
use crate::suppliers::resilience::FullJitter;
use crate::suppliers::{http_client, retry_after};

/// The `[crm]` block: where the CRM is, its token, how hard each call tries, and where the field
/// mapping is. Durations are humantime strings in files (`"10s"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrmSettings {
    /// The CRM's base URL, without `/api/v1/…`.
    pub base_url: String,
    pub token: Secret,
    /// Each call's timeout, connecting included.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Plain http, for tests and the demo only.
    pub allow_http: bool,
    /// Retries after the first attempt (0: try once).
    pub max_retries: u32,
    /// The first backoff ceiling; each retry doubles it, up to `retry_cap`. A `Retry-After`
    /// longer than `retry_cap` ends the call's retries.
    #[serde(with = "humantime_serde")]
    pub retry_base: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_cap: Duration,
    /// The field mapping file ([`super::mapping`]), relative to the working directory unless
    /// absolute. When it does not exist, the built-in default (the shipped file) is used.
    pub mapping_file: PathBuf,
}

impl Default for CrmSettings {
    fn default() -> Self {
        CrmSettings {
            base_url: String::new(),
            token: Secret::default(),
            timeout: Duration::from_secs(10),
            allow_http: false,
            max_retries: 3,
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(30),
            mapping_file: PathBuf::from(super::mapping::DEFAULT_FILE),
        }
    }
}

impl CrmSettings {
    /// Checks the block; the error names the key within it.
    pub fn validate(&self) -> Result<(), SettingError> {
        crate::settings::check_base_url(&self.base_url, self.allow_http)?;
        if self.token.is_blank() {
            return Err(SettingError::new("token", "must not be empty"));
        }
        if self.timeout.is_zero() {
            return Err(SettingError::new("timeout", "must be more than 0"));
        }
        if self.retry_base.is_zero() || self.retry_cap < self.retry_base {
            return Err(SettingError::new("retry_cap", "must be at least retry_base, which must be more than 0"));
        }
        if self.mapping_file.as_os_str().is_empty() || self.mapping_file.file_name().is_none() {
            return Err(SettingError::new("mapping_file", "must name a file"));
        }
        Ok(())
    }
}

/// The most of an error answer read for its text: the CRM's error bodies are one-line JSON.
const MAX_ERROR_BYTES: usize = 16 * 1024;

/// The CRM's records API over HTTP.
#[derive(Debug, Clone)]
pub struct HttpCrm {
    settings: CrmSettings,
    http: reqwest::Client,
}

impl HttpCrm {
    /// A client for validated `settings`.
    pub fn new(settings: CrmSettings) -> Result<Self, SettingError> {
        settings.validate()?;
        let http = http_client(settings.timeout);
        Ok(HttpCrm { settings, http })
    }

    /// The record's URL, exactly as crm.md gives it. Booking ids are `bk_` plus lowercase
    /// alphanumerics, so they need no escaping in a path segment.
    fn record_url(&self, booking: &BookingId) -> String {
        let base = self.settings.base_url.trim_end_matches('/');
        format!("{base}/api/v1/objects/reservas/records/{}", booking.as_str())
    }

    /// One PUT, its answer classified.
    async fn attempt(&self, url: &str, body: &[u8]) -> Result<(), CrmError> {
        let response = self
            .http
            .put(url)
            .header(AUTHORIZATION, format!("Bearer {}", self.settings.token.expose()))
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_vec())
            .send()
            .await
            .map_err(unreachable)?;
        classify(response).await
    }
}

#[async_trait::async_trait]
impl Crm for HttpCrm {
    #[tracing::instrument(skip_all, fields(booking.id = %booking))]
    async fn upsert(&self, booking: &BookingId, record: &CrmRecord) -> Result<(), CrmError> {
        let url = self.record_url(booking);
        let body = serde_json::json!({ "fields": record.fields() }).to_string().into_bytes();
        let backoff = FullJitter::new(self.settings.retry_base, self.settings.retry_cap);
        let mut retry = 0;
        loop {
            let error = match self.attempt(&url, &body).await {
                Err(error @ CrmError::Transient { .. }) if retry < self.settings.max_retries => error,
                outcome => return outcome,
            };
            let wait = match &error {
                CrmError::Transient { retry_after: Some(wait), .. } if *wait > self.settings.retry_cap => {
                    return Err(error);
                }
                CrmError::Transient { retry_after: Some(wait), .. } => *wait,
                _ => backoff.wait(retry),
            };
            tracing::info!(error = %error, wait_ms = wait.as_millis() as u64, "retrying CRM upsert");
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }
}

/// A failure to get an answer at all: always transient.
fn unreachable(error: reqwest::Error) -> CrmError {
    CrmError::transient(crate::suppliers::no_answer(&error))
}

/// 200/201 (and any 2xx) is done; 429 and 5xx are transient; anything else is final, with the
/// CRM's own error text.
async fn classify(response: Response) -> Result<(), CrmError> {
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    if status.is_redirection() {
        let detail = "the CRM answered a redirect, which is not followed".to_owned();
        return Err(CrmError::Rejected { status: status.as_u16(), detail });
    }
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        let retry_after = retry_after(response.headers());
        return Err(CrmError::Transient { reason: format!("HTTP {}", status.as_u16()), retry_after });
    }
    let detail = error_text(status, response).await;
    Err(CrmError::Rejected { status: status.as_u16(), detail })
}

/// The CRM's error body, `{"error": "...", "field": "..."}`, as one line naming the field; a body
/// of another shape is quoted as text, up to [`MAX_ERROR_BYTES`].
async fn error_text(status: StatusCode, mut response: Response) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_ERROR_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_ERROR_BYTES {
            break;
        }
    }
    #[derive(Deserialize)]
    struct ErrorBody {
        error: String,
        field: Option<String>,
    }
    match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(ErrorBody { error, field: Some(field) }) => format!("{field}: {error}"),
        Ok(ErrorBody { error, field: None }) => error,
        Err(_) if status == StatusCode::UNAUTHORIZED => "the CRM refused the token".into(),
        Err(_) => {
            let text = String::from_utf8_lossy(&body).trim().to_owned();
            if text.is_empty() { status.canonical_reason().unwrap_or("error").to_owned() } else { text }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use serde_json::json;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    const TOKEN: &str = "crm-t0ken";

    fn settings(base_url: &str) -> CrmSettings {
        CrmSettings {
            base_url: base_url.to_owned(),
            token: Secret::from(TOKEN),
            timeout: Duration::from_secs(5),
            allow_http: true,
            max_retries: 3,
            retry_base: Duration::from_millis(1),
            retry_cap: Duration::from_secs(5),
            ..CrmSettings::default()
        }
    }

    fn crm(server: &MockServer) -> HttpCrm {
        HttpCrm::new(settings(&server.uri())).unwrap()
    }

    fn record_path(booking: &BookingId) -> String {
        format!("/api/v1/objects/reservas/records/{booking}")
    }

    fn record() -> CrmRecord {
        let fields =
            [("ContactEmail", "ana.perez@example.com"), ("MontoTotalUSD", "450.00"), ("EstadoReserva", "Confirmada")];
        fields.into_iter().map(|(field, value)| (field.to_owned(), value.to_owned())).collect()
    }

    fn stored(booking: &BookingId) -> ResponseTemplate {
        ResponseTemplate::new(201).set_body_json(json!({"id": "crm_1", "external_id": booking.as_str(), "fields": {}}))
    }

    /// An upsert of a new booking's record to `server`.
    async fn upsert_to(server: &MockServer) -> Result<(), CrmError> {
        crm(server).upsert(&BookingId::generate(), &record()).await
    }

    /// A peer answering every PUT with `answer`.
    async fn peer(answer: ResponseTemplate) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("PUT")).respond_with(answer).mount(&server).await;
        server
    }

    async fn requests(server: &MockServer) -> usize {
        server.received_requests().await.unwrap().len()
    }

    #[tokio::test]
    async fn an_upsert_puts_the_fields_to_the_bookings_record_with_the_bearer_token() {
        let server = MockServer::start().await;
        let id = BookingId::generate();
        Mock::given(method("PUT"))
            .and(path(record_path(&id)))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(header("content-type", "application/json"))
            .and(body_json(json!({"fields": {
                "ContactEmail": "ana.perez@example.com",
                "MontoTotalUSD": "450.00",
                "EstadoReserva": "Confirmada",
            }})))
            .respond_with(stored(&id))
            .expect(1)
            .mount(&server)
            .await;
        crm(&server).upsert(&id, &record()).await.unwrap();
    }

    #[tokio::test]
    async fn a_503_twice_then_200_is_retried_to_the_same_record() {
        let server = MockServer::start().await;
        let id = BookingId::generate();
        let unavailable = ResponseTemplate::new(503);
        Mock::given(path(record_path(&id))).respond_with(unavailable).up_to_n_times(2).mount(&server).await;
        Mock::given(path(record_path(&id))).respond_with(ResponseTemplate::new(200)).mount(&server).await;
        crm(&server).upsert(&id, &record()).await.unwrap();
        let received = server.received_requests().await.unwrap();
        assert_eq!(received.len(), 3);
        assert!(received.iter().all(|r| r.method.as_str() == "PUT" && r.url.path() == record_path(&id)));
    }

    #[tokio::test]
    async fn a_429_is_retried_after_its_retry_after() {
        let server = MockServer::start().await;
        let id = BookingId::generate();
        Mock::given(path(record_path(&id)))
            .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(path(record_path(&id))).respond_with(stored(&id)).mount(&server).await;
        let started = Instant::now();
        crm(&server).upsert(&id, &record()).await.unwrap();
        assert!(started.elapsed() >= Duration::from_secs(1), "retried after {:?}", started.elapsed());
        assert_eq!(requests(&server).await, 2);
    }

    #[tokio::test]
    async fn a_retry_after_beyond_the_cap_is_left_to_the_caller() {
        let server = peer(ResponseTemplate::new(429).insert_header("retry-after", "60")).await;
        let error = upsert_to(&server).await.unwrap_err();
        let retry_after = Some(Duration::from_secs(60));
        assert_eq!(error, CrmError::Transient { reason: "HTTP 429".into(), retry_after });
        assert_eq!(requests(&server).await, 1);
    }

    #[tokio::test]
    async fn a_lasting_5xx_ends_as_transient_after_the_retries() {
        let server = peer(ResponseTemplate::new(502)).await;
        let error = upsert_to(&server).await.unwrap_err();
        assert!(error.is_retryable(), "{error:?}");
        assert_eq!(requests(&server).await, 4, "the first try and max_retries = 3");
    }

    #[tokio::test]
    async fn a_422_is_final_and_names_the_field() {
        let body = json!({"error": "is not a valid email address", "field": "ContactEmail"});
        let server = peer(ResponseTemplate::new(422).set_body_json(body)).await;
        let error = upsert_to(&server).await.unwrap_err();
        let detail = "ContactEmail: is not a valid email address".to_owned();
        assert_eq!(error, CrmError::Rejected { status: 422, detail });
        assert_eq!(requests(&server).await, 1);
    }

    #[tokio::test]
    async fn a_401_is_final() {
        let server = peer(ResponseTemplate::new(401)).await;
        let error = upsert_to(&server).await.unwrap_err();
        assert!(matches!(error, CrmError::Rejected { status: 401, .. }), "{error:?}");
        assert_eq!(requests(&server).await, 1);
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed() {
        let server = MockServer::start().await;
        let id = BookingId::generate();
        let elsewhere = format!("{}/elsewhere", server.uri());
        Mock::given(path(record_path(&id)))
            .respond_with(ResponseTemplate::new(307).insert_header("location", elsewhere.as_str()))
            .mount(&server)
            .await;
        Mock::given(path("/elsewhere")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
        let error = crm(&server).upsert(&id, &record()).await.unwrap_err();
        assert!(matches!(error, CrmError::Rejected { status: 307, .. }), "{error:?}");
        assert_eq!(requests(&server).await, 1);
    }

    #[tokio::test]
    async fn a_call_past_its_timeout_is_transient() {
        let server = peer(ResponseTemplate::new(200).set_delay(Duration::from_secs(3))).await;
        let quick = CrmSettings { timeout: Duration::from_millis(200), max_retries: 0, ..settings(&server.uri()) };
        let error = HttpCrm::new(quick).unwrap().upsert(&BookingId::generate(), &record()).await.unwrap_err();
        assert_eq!(error, CrmError::transient("timed out"));
    }

    #[test]
    fn http_is_refused_unless_allowed_and_a_token_is_required() {
        let http = CrmSettings { allow_http: false, ..settings("http://crm.example") };
        assert_eq!(http.validate().unwrap_err().key, "base_url");
        assert!(HttpCrm::new(http).is_err());
        assert!(settings("http://crm.example").validate().is_ok());
        assert!(CrmSettings { allow_http: false, ..settings("https://crm.example") }.validate().is_ok());
        assert_eq!(settings("ftp://crm.example").validate().unwrap_err().key, "base_url");
        let no_token = CrmSettings { token: Secret::from(" "), ..settings("https://crm.example") };
        assert_eq!(no_token.validate().unwrap_err().key, "token");
        let no_file = CrmSettings { mapping_file: PathBuf::from("mappings/.."), ..settings("https://crm.example") };
        assert_eq!(no_file.validate().unwrap_err().key, "mapping_file");
    }

    #[test]
    fn settings_read_humantime_durations_and_refuse_unknown_keys() {
        let file = json!({"base_url": "https://crm.example", "token": "s3cret", "timeout": "3s"});
        let read: CrmSettings = serde_json::from_value(file).unwrap();
        assert_eq!(read.timeout, Duration::from_secs(3));
        assert_eq!(read.max_retries, 3);
        assert_eq!(read.mapping_file, PathBuf::from("crm-mapping.toml"));
        assert!(serde_json::from_value::<CrmSettings>(json!({"base_url": "https://x", "tokn": "t"})).is_err());
        assert!(!format!("{read:?}").contains("s3cret"), "the token never prints");
    }
}
