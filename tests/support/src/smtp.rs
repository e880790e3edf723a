//! An SMTP server on loopback that keeps what it receives: the peer for tests of bookhub's
//! agency email. mailin's SMTP state machine (the protocol: commands, replies, AUTH, dot
//! unstuffing) behind a tokio listener; this module only moves lines between the socket and
//! the session and records each message.
//!
//! mailin-embedded, the same author's ready-made server, was not used: it serves forever with
//! no way to stop, offers AUTH only after STARTTLS (so a plain loopback test cannot log in), and
//! its TLS dependency brings rustls with aws-lc-rs, where bookhub runs on ring alone.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailin::{Action, AuthMechanism, Handler, Response, SessionBuilder, response};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How the sink answers.
#[derive(Debug, Clone, Default)]
pub struct SinkOptions {
    /// Require AUTH (PLAIN or LOGIN) with this user name and password before MAIL. Offered
    /// over plain TCP: the sink only listens on loopback.
    pub credentials: Option<(String, String)>,
    /// Answer every `RCPT TO` with this reply (a 4xx or 5xx code and its text) instead of 250.
    pub refuse_recipients: Option<(u16, String)>,
}

/// One message as the sink received it: the envelope and the raw message (headers and body,
/// dot-unstuffed, CRLF line ends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    /// The user name the session logged in with, if it did.
    pub authenticated_as: Option<String>,
    pub data: Vec<u8>,
    /// When the message's DATA ended (the sink then takes it): when the email arrived, for
    /// the load generator's latencies.
    pub received_at: Instant,
}

/// An SMTP server on `127.0.0.1:{port}`; stops when dropped.
#[derive(Debug)]
pub struct SmtpSink {
    port: u16,
    mails: Arc<Mutex<Vec<ReceivedMail>>>,
    count: watch::Receiver<usize>,
    server: tokio::task::JoinHandle<()>,
}

/// How long [`SmtpSink::wait_for`] waits before it fails the test.
const WAIT: Duration = Duration::from_secs(10);

impl SmtpSink {
    /// A sink that takes every message, without AUTH.
    pub async fn start() -> SmtpSink {
        SmtpSink::start_with(SinkOptions::default()).await
    }

    pub async fn start_with(options: SinkOptions) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let port = listener.local_addr().expect("a bound address").port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let (count_tx, count) = watch::channel(0);
        let shared = Shared { options: Arc::new(options), mails: Arc::clone(&mails), count: Arc::new(count_tx) };
        let server = tokio::spawn(async move {
            // Sessions live in the set, so stopping the server ends them too.
            let mut sessions = JoinSet::new();
            while let Ok((stream, peer)) = listener.accept().await {
                sessions.spawn(serve(stream, peer.ip(), shared.clone()));
            }
        });
        SmtpSink { port, mails, count, server }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The raw messages received so far, in order.
    pub fn received(&self) -> Vec<Vec<u8>> {
        self.mails().into_iter().map(|m| m.data).collect()
    }

    /// The messages received so far with their envelopes.
    pub fn mails(&self) -> Vec<ReceivedMail> {
        self.mails.lock().expect("the sink's lock is never poisoned").clone()
    }

    /// How many messages have arrived so far (without copying them).
    pub fn count(&self) -> usize {
        *self.count.borrow()
    }

    /// Waits until at least `n` messages have arrived and returns them raw; panics after 10 s.
    pub async fn wait_for(&self, n: usize) -> Vec<Vec<u8>> {
        let mut count = self.count.clone();
        let arrived = tokio::time::timeout(WAIT, count.wait_for(|c| *c >= n)).await;
        match arrived {
            Ok(Ok(_)) => self.received(),
            _ => panic!("the SMTP sink got {} of {n} messages in {WAIT:?}", self.mails().len()),
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Clone)]
struct Shared {
    options: Arc<SinkOptions>,
    mails: Arc<Mutex<Vec<ReceivedMail>>>,
    count: Arc<watch::Sender<usize>>,
}

async fn serve(stream: TcpStream, peer: IpAddr, shared: Shared) {
    let mut builder = SessionBuilder::new("bookhub-test-sink");
    if shared.options.credentials.is_some() {
        builder.enable_auth(AuthMechanism::Plain).enable_auth(AuthMechanism::Login).insecure_enable_plaintext_auth();
    }
    let mut session = builder.build(peer, Session { shared, authenticated_as: None, current: None });
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    if reply(&mut write, &session.greeting()).await.is_err() {
        return;
    }
    let mut line = Vec::with_capacity(128);
    loop {
        line.clear();
        match read.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let answer = session.process(&line);
        match answer.action {
            Action::NoReply => {}
            Action::Reply => {
                if reply(&mut write, &answer).await.is_err() {
                    return;
                }
            }
            // The sink speaks no TLS: it never offers STARTTLS, so this only ends a session.
            Action::Close | Action::UpgradeTls => {
                let _ = reply(&mut write, &answer).await;
                return;
            }
        }
    }
}

async fn reply(write: &mut tokio::net::tcp::OwnedWriteHalf, answer: &Response) -> std::io::Result<()> {
    write.write_all(&answer.buffer()?).await?;
    write.flush().await
}

/// One connection's view: who logged in and the message being received.
struct Session {
    shared: Shared,
    authenticated_as: Option<String>,
    current: Option<ReceivedMail>,
}

impl Session {
    fn check_login(&mut self, user: &str, password: &str) -> Response {
        match &self.shared.options.credentials {
            Some((u, p)) if u == user && p == password => {
                self.authenticated_as = Some(user.to_owned());
                response::AUTH_OK
            }
            _ => response::INVALID_CREDENTIALS,
        }
    }
}

impl Handler for Session {
    fn rcpt(&mut self, _to: &str) -> Response {
        match &self.shared.options.refuse_recipients {
            Some((code, text)) => Response::custom(*code, text.clone()),
            None => response::OK,
        }
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Some(ReceivedMail {
            from: from.to_owned(),
            to: to.to_vec(),
            authenticated_as: self.authenticated_as.clone(),
            data: Vec::new(),
            // Set again when the DATA ends.
            received_at: Instant::now(),
        });
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if let Some(mail) = &mut self.current {
            mail.data.extend_from_slice(buf);
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if let Some(mut mail) = self.current.take() {
            mail.received_at = Instant::now();
            let mut mails = self.shared.mails.lock().expect("the sink's lock is never poisoned");
            mails.push(mail);
            self.shared.count.send_replace(mails.len());
        }
        response::OK
    }

    fn auth_plain(&mut self, _authorization_id: &str, authentication_id: &str, password: &str) -> Response {
        self.check_login(authentication_id, password)
    }

    fn auth_login(&mut self, username: &str, password: &str) -> Response {
        self.check_login(username, password)
    }
}
