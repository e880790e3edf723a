//! The `[email]` block: whether agencies get email, how it leaves (an SMTP server, or `.eml`
//! files in a folder for the demo), and who it is from.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};

use crate::settings::{Secret, SettingError, in_duration_range, in_range};

/// How messages leave bookhub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// To the SMTP server at `host:port`.
    #[default]
    Smtp,
    /// Each message written as a `.eml` file in `outbox_dir`; nothing crosses the network.
    Outbox,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain TCP: only for a relay on the same machine.
    None,
    /// Plain TCP upgraded with STARTTLS, which the server must offer (no silent fallback to
    /// plain text). Usually port 587.
    #[default]
    Starttls,
    /// TLS from the first byte ("implicit TLS", SMTPS). Usually port 465.
    Tls,
}

/// The `[email]` block. The server's certificate is checked against the system's trust store
/// and must name `host`. Durations are humantime strings in files (`"10s"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailSettings {
    /// Send agency email at all. Off by default: no email is composed or sent, and the rest of
    /// the block is not checked.
    pub enabled: bool,
    /// `smtp` (default) or `outbox`.
    pub transport: Transport,
    /// The SMTP server's host name, which its TLS certificate must carry.
    pub host: String,
    /// The SMTP server's port: 587 (default) with `starttls`, 465 with `tls`.
    pub port: u16,
    /// SMTP AUTH (PLAIN or LOGIN, whichever the server offers); set with `password` or not at all.
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// `none`, `starttls` (default) or `tls`.
    pub tls: SmtpTls,
    /// The `From:` of every message: `bookhub <bookings@example.com>` or a bare address.
    pub from: String,
    /// The longest one email may take to send, connecting included.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Where the `outbox` transport writes its `.eml` files; made when missing.
    pub outbox_dir: PathBuf,
}

impl Default for EmailSettings {
    fn default() -> Self {
        EmailSettings {
            enabled: false,
            transport: Transport::Smtp,
            host: String::new(),
            port: 587,
            username: None,
            password: None,
            tls: SmtpTls::Starttls,
            from: String::new(),
            timeout: Duration::from_secs(10),
            outbox_dir: PathBuf::from("outbox"),
        }
    }
}

impl EmailSettings {
    /// Checks the block when `enabled` (a disabled block is never used); the error names the
    /// key within it.
    pub fn validate(&self) -> Result<(), SettingError> {
        if self.enabled { self.check() } else { Ok(()) }
    }

    /// Checks every key, enabled or not: what [`super::Mailer::new`] needs.
    pub(super) fn check(&self) -> Result<(), SettingError> {
        self.sender()?;
        in_duration_range("timeout", self.timeout, Duration::from_secs(1)..=Duration::from_secs(300))?;
        match self.transport {
            Transport::Outbox if self.outbox_dir.as_os_str().is_empty() => {
                Err(SettingError::new("outbox_dir", "must name a folder"))
            }
            Transport::Outbox => Ok(()),
            Transport::Smtp => self.check_smtp(),
        }
    }

    fn check_smtp(&self) -> Result<(), SettingError> {
        let host = self.host.trim();
        if host.is_empty() {
            return Err(SettingError::new("host", "must name the SMTP server"));
        }
        if host.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/' || c == '@') {
            return Err(SettingError::new("host", "must be a host name or an IP address"));
        }
        in_range("port", self.port, 1..=u16::MAX)?;
        let credentials = match (&self.username, &self.password) {
            (None, None) => false,
            (Some(user), _) if user.trim().is_empty() => {
                return Err(SettingError::new("username", "must not be empty"));
            }
            (_, Some(password)) if password.is_blank() => {
                return Err(SettingError::new("password", "must not be empty"));
            }
            (Some(_), Some(_)) => true,
            (Some(_), None) => return Err(SettingError::new("password", "must be set with username")),
            (None, Some(_)) => return Err(SettingError::new("username", "must be set with password")),
        };
        if credentials && self.tls == SmtpTls::None && !is_loopback(host) {
            return Err(SettingError::new(
                "tls",
                "must be starttls or tls when username and password are set: without TLS the password \
                 and every guest's name would cross the network in clear text (tls = \"none\" is for a \
                 relay on this machine: localhost, 127.0.0.1 or ::1)",
            ));
        }
        Ok(())
    }

    /// `from` as a mailbox.
    pub(super) fn sender(&self) -> Result<Mailbox, SettingError> {
        self.from.trim().parse::<Mailbox>().map_err(|_| {
            SettingError::new(
                "from",
                "must be an email address, optionally with a name: bookhub <bookings@example.com>",
            )
        })
    }
}

/// `localhost` or a loopback address: a connection that never leaves the machine.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp() -> EmailSettings {
        EmailSettings {
            enabled: true,
            host: "smtp.example.com".into(),
            from: "bookhub <bookings@example.com>".into(),
            ..EmailSettings::default()
        }
    }

    fn key(settings: &EmailSettings) -> String {
        settings.validate().expect_err("refused").key
    }

    #[test]
    fn reads_a_full_block_and_never_prints_the_password() {
        let settings: EmailSettings = from_json(
            r#"{"enabled": true, "transport": "smtp", "host": "smtp.example.com", "port": 465,
                "username": "bookhub", "password": "hunter2", "tls": "tls",
                "from": "bookhub <bookings@example.com>", "timeout": "30s", "outbox_dir": "mail"}"#,
        );
        assert_eq!(settings.port, 465);
        assert_eq!(settings.tls, SmtpTls::Tls);
        assert_eq!(settings.timeout, Duration::from_secs(30));
        assert_eq!(settings.password.as_ref().map(Secret::expose), Some("hunter2"));
        settings.validate().unwrap();
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    fn from_json(json: &str) -> EmailSettings {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn defaults_send_nothing_and_need_nothing() {
        let settings = EmailSettings::default();
        assert!(!settings.enabled);
        assert_eq!((settings.port, settings.tls, settings.timeout), (587, SmtpTls::Starttls, Duration::from_secs(10)));
        settings.validate().unwrap();
        assert_eq!(from_json("{}"), settings);
    }

    #[test]
    fn refuses_unknown_keys_and_unknown_modes() {
        assert!(serde_json::from_str::<EmailSettings>(r#"{"hots": "x"}"#).is_err());
        assert!(serde_json::from_str::<EmailSettings>(r#"{"tls": "ssl"}"#).is_err());
        assert!(serde_json::from_str::<EmailSettings>(r#"{"transport": "sendmail"}"#).is_err());
    }

    #[test]
    fn the_from_address_must_parse_as_a_mailbox() {
        smtp().validate().unwrap();
        EmailSettings { from: "bookings@example.com".into(), ..smtp() }.validate().unwrap();
        for from in ["", "bookhub", "bookhub <bookings>", "a@b@c"] {
            assert_eq!(key(&EmailSettings { from: from.into(), ..smtp() }), "from", "{from:?}");
        }
    }

    #[test]
    fn smtp_needs_a_host_and_a_port() {
        assert_eq!(key(&EmailSettings { host: " ".into(), ..smtp() }), "host");
        assert_eq!(key(&EmailSettings { host: "smtp://x".into(), ..smtp() }), "host");
        assert_eq!(key(&EmailSettings { port: 0, ..smtp() }), "port");
        let outbox = EmailSettings { transport: Transport::Outbox, host: String::new(), ..smtp() };
        outbox.validate().unwrap();
        assert_eq!(key(&EmailSettings { outbox_dir: PathBuf::new(), ..outbox }), "outbox_dir");
    }

    #[test]
    fn username_and_password_come_together() {
        let user = Some("bookhub".to_owned());
        let password = Some(Secret::from("hunter2"));
        EmailSettings { username: user.clone(), password: password.clone(), ..smtp() }.validate().unwrap();
        assert_eq!(key(&EmailSettings { username: user.clone(), ..smtp() }), "password");
        assert_eq!(key(&EmailSettings { password: password.clone(), ..smtp() }), "username");
        assert_eq!(key(&EmailSettings { username: Some(" ".into()), password, ..smtp() }), "username");
        assert_eq!(key(&EmailSettings { username: user, password: Some("".into()), ..smtp() }), "password");
    }

    #[test]
    fn credentials_without_tls_only_to_a_relay_on_this_machine() {
        let plain = |host: &str| EmailSettings {
            host: host.into(),
            tls: SmtpTls::None,
            username: Some("bookhub".into()),
            password: Some("hunter2".into()),
            ..smtp()
        };
        let error = plain("smtp.example.com").validate().unwrap_err();
        assert_eq!(error.key, "tls");
        assert!(error.message.contains("clear text"), "{error}");
        for host in ["localhost", "127.0.0.1", "::1", "[::1]"] {
            plain(host).validate().unwrap();
        }
        EmailSettings { tls: SmtpTls::None, ..smtp() }.validate().unwrap();
    }

    #[test]
    fn timeouts_stay_sensible() {
        assert_eq!(key(&EmailSettings { timeout: Duration::ZERO, ..smtp() }), "timeout");
        assert_eq!(key(&EmailSettings { timeout: Duration::from_secs(3600), ..smtp() }), "timeout");
    }

    #[test]
    fn a_disabled_block_is_not_checked_but_a_mailer_checks_it() {
        let disabled = EmailSettings { enabled: false, from: "nobody".into(), ..smtp() };
        disabled.validate().unwrap();
        assert_eq!(disabled.check().unwrap_err().key, "from");
    }
}
