//! The agency email: each booking change becomes one message to the agency's address, with a
//! plain-text part and an HTML summary (status, hotel, dates, rooms, guests, supplier reference,
//! total) and, on confirmation, the voucher PDF attached.
//!
//! [`compose`] builds the message and does no IO; a [`Mailer`] sends it through the transport
//! the `[email]` block names: an SMTP server (lettre, with STARTTLS or TLS over rustls on ring)
//! or the demo's outbox folder of `.eml` files. Each send opens its own SMTP connection: agency
//! email is a few messages a minute, not worth a pool that holds connections the server drops.
//!
//! Failures say whether another attempt can succeed ([`EmailError::is_retryable`]), after
//! lettre's reading of the server's answer: a 4xx reply, a timeout or a connection that fails
//! is worth retrying; a 5xx reply or an address that does not parse is not. Two refinements:
//! problems of bookhub's own configuration or the server's setup — no STARTTLS where it is
//! required, a certificate that does not verify, no AUTH mechanism in common, and the 5xx
//! replies that refuse bookhub's *login* (530, 534, 535, 538) rather than the message — hold
//! every email alike, so they are retried: each one goes out once the setting or the server is
//! fixed, within the job's attempt limit, instead of every notification being dropped.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::settings::SettingError;

mod compose;
mod settings;

pub use compose::{compose, compose_endpoint_disabled, compose_report};
pub use settings::{EmailSettings, SmtpTls, Transport};

/// One agency event to tell by email.
#[derive(Debug, Clone)]
pub struct AgencyEmail<'a> {
    /// The agency's address: `bookings@agency.example`.
    pub to: &'a str,
    pub agency_name: &'a str,
    /// The agency event's id; the message's `Message-ID` is `<{event_id}@bookhub>`, so a
    /// receiver can tell a resend from a new message.
    pub event_id: &'a str,
    /// `booking.confirmed`, `booking.cancelled`, …
    pub event_type: &'a str,
    pub booking: &'a domain::Booking,
    /// The voucher, attached as `application/pdf`; on confirmation.
    pub voucher: Option<Attachment<'a>>,
}

/// A PDF to attach. Its `Debug` shows the size, not the bytes.
#[derive(Clone, Copy)]
pub struct Attachment<'a> {
    /// `VCH-2027-000123.pdf`
    pub filename: &'a str,
    pub pdf: &'a [u8],
}

impl std::fmt::Debug for Attachment<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachment").field("filename", &self.filename).field("bytes", &self.pdf.len()).finish()
    }
}

/// A file attached to a report. Its `Debug` shows the size, not the bytes.
#[derive(Clone, Copy)]
pub struct ReportFile<'a> {
    /// `finance-2027-01-01-2027-01-31.xlsx`
    pub filename: &'a str,
    pub content_type: &'a str,
    pub bytes: &'a [u8],
}

impl std::fmt::Debug for ReportFile<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportFile").field("filename", &self.filename).field("bytes", &self.bytes.len()).finish()
    }
}

/// Why an email was not sent. The texts carry no guest data and no credentials.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// Another attempt may succeed: the server was unreachable or slow, answered 4xx, or its
    /// setup (TLS, AUTH) does not fit bookhub's settings yet.
    #[error("email not sent, worth another try: {0}")]
    Transient(String),
    /// The server refused this message for good (a 5xx reply), or the message cannot be built.
    #[error("email refused: {0}")]
    Permanent(String),
    /// An address that does not parse; `field` is `to` or `from`.
    #[error("the {field} address is not an email address: {reason}")]
    Address { field: &'static str, reason: String },
    /// The `[email]` block cannot make a mailer.
    #[error("email settings: {0}")]
    Settings(#[from] SettingError),
}

impl EmailError {
    /// Whether sending the same email again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, EmailError::Transient(_))
    }

    fn from_smtp(error: lettre::transport::smtp::Error) -> EmailError {
        // 530 authentication required, 534 mechanism too weak, 535 credentials invalid, 538
        // encryption required: the server refuses bookhub's login, not this message.
        const LOGIN_REFUSED: [u16; 4] = [530, 534, 535, 538];
        let code = error.status().map(u16::from);
        if error.is_permanent() && !code.is_some_and(|c| LOGIN_REFUSED.contains(&c)) {
            EmailError::Permanent(format!("the SMTP server refused the message: {}", describe(&error)))
        } else {
            EmailError::Transient(format!("SMTP: {}", describe(&error)))
        }
    }
}

/// An error and its causes on one line (lettre's own text names the kind, the causes say why).
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let words = cause.to_string();
        if !text.contains(&words) {
            text.push_str(": ");
            text.push_str(&words);
        }
        source = cause.source();
    }
    text
}

/// Whether `address` is an email address a message can be sent to (a name may come with it:
/// `Finance <finance@example.com>`); why not when it is not.
pub fn check_address(address: &str) -> Result<(), String> {
    address.trim().parse::<Mailbox>().map(|_| ()).map_err(|_| "must be an email address".to_owned())
}

/// Sends agency email as the `[email]` block says. Cheap to clone: clones share the settings.
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    transport: Sender,
    timeout: Duration,
}

#[derive(Clone)]
enum Sender {
    Smtp { transport: AsyncSmtpTransport<Tokio1Executor>, server: String },
    Outbox { transport: AsyncFileTransport<Tokio1Executor>, dir: PathBuf },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let via = match &self.transport {
            Sender::Smtp { server, .. } => format!("smtp {server}"),
            Sender::Outbox { dir, .. } => format!("outbox {}", dir.display()),
        };
        f.debug_struct("Mailer").field("from", &self.from.email.to_string()).field("via", &via).finish()
    }
}

impl Mailer {
    /// A mailer for `settings`, which it checks first (whether `enabled` or not: the caller
    /// that builds a mailer means to send).
    pub fn new(settings: &EmailSettings) -> Result<Mailer, EmailError> {
        settings.check()?;
        let from = settings.sender()?;
        let transport = match settings.transport {
            Transport::Outbox => Sender::Outbox {
                transport: AsyncFileTransport::new(&settings.outbox_dir),
                dir: settings.outbox_dir.clone(),
            },
            Transport::Smtp => smtp(settings)?,
        };
        Ok(Mailer { from, transport, timeout: settings.timeout })
    }

    /// [`Mailer::new`] when `settings.enabled`, else `None`: no email.
    pub fn from_settings(settings: &EmailSettings) -> Result<Option<Mailer>, EmailError> {
        settings.enabled.then(|| Mailer::new(settings)).transpose()
    }

    /// The `From:` of every message.
    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    /// Composes `email` and sends it, within the settings' `timeout` for the whole exchange
    /// (lettre bounds only the connect: a server that accepts and then says nothing would
    /// otherwise hold the job for ever).
    #[tracing::instrument(skip_all, fields(booking.id = %email.booking.id, event.id = email.event_id, event.type = email.event_type))]
    pub async fn send(&self, email: &AgencyEmail<'_>) -> Result<(), EmailError> {
        self.deliver(compose(email, &self.from)?).await?;
        tracing::info!("agency email sent");
        Ok(())
    }

    /// Tells the agency at `to` that its webhook endpoint was disabled, and why.
    pub async fn send_endpoint_disabled(&self, to: &str, agency_name: &str, reason: &str) -> Result<(), EmailError> {
        self.deliver(compose_endpoint_disabled(to, agency_name, reason, &self.from)?).await?;
        tracing::info!("endpoint-disabled email sent");
        Ok(())
    }

    /// Sends a report to `to` with `file` attached.
    pub async fn send_report(
        &self,
        to: &[String],
        subject: &str,
        text: &str,
        file: &ReportFile<'_>,
    ) -> Result<(), EmailError> {
        self.deliver(compose_report(to, subject, text, file, &self.from)?).await?;
        tracing::info!(recipients = to.len(), "report email sent");
        Ok(())
    }

    /// Sends `message` within the settings' `timeout` for the whole exchange.
    async fn deliver(&self, message: lettre::Message) -> Result<(), EmailError> {
        tokio::time::timeout(self.timeout, self.transmit(message))
            .await
            .map_err(|_| EmailError::Transient(format!("the SMTP exchange took longer than {:?}", self.timeout)))?
    }

    async fn transmit(&self, message: lettre::Message) -> Result<(), EmailError> {
        match &self.transport {
            Sender::Smtp { transport, .. } => {
                transport.send(message).await.map_err(EmailError::from_smtp)?;
            }
            Sender::Outbox { transport, dir } => {
                let outbox = |e: &dyn std::error::Error| {
                    EmailError::Transient(format!("could not write to the outbox {}: {}", dir.display(), describe(e)))
                };
                tokio::fs::create_dir_all(dir).await.map_err(|e| outbox(&e))?;
                transport.send(message).await.map_err(|e| outbox(&e))?;
            }
        }
        Ok(())
    }
}

fn smtp(settings: &EmailSettings) -> Result<Sender, EmailError> {
    // One crypto provider for the process (ring, as the database driver and reqwest use);
    // installing it twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let host = settings.host.trim();
    let tls = |wrap: fn(TlsParameters) -> Tls| {
        TlsParameters::new(host.to_owned())
            .map(wrap)
            .map_err(|e| EmailError::Settings(SettingError::new("tls", format!("TLS: {}", describe(&e)))))
    };
    let tls = match settings.tls {
        SmtpTls::None => Tls::None,
        SmtpTls::Starttls => tls(Tls::Required)?,
        SmtpTls::Tls => tls(Tls::Wrapper)?,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(settings.port)
        .tls(tls)
        .timeout(Some(settings.timeout));
    if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
    }
    Ok(Sender::Smtp { transport: builder.build(), server: format!("{host}:{}", settings.port) })
}
