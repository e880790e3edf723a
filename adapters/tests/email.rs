//! The agency email against a real SMTP server on loopback (test-support's `SmtpSink`): what
//! arrives, logging in, which failures are worth another try, and the outbox transport.

use std::time::{Duration, Instant};

use bookhub_adapters::notify::email::{AgencyEmail, Attachment, EmailSettings, Mailer, SmtpTls, Transport};
use chrono::{NaiveDate, Utc};
use domain::booking::{Guest, Room};
use domain::{AgencyId, Board, Booking, BookingStatus, Money, NewBooking, RoomType};
use mail_parser::{MessageParser, MimeHeaders};
use test_support::{SinkOptions, SmtpSink, free_port};

fn guest(first: &str, last: &str) -> Guest {
    Guest { first_name: first.into(), last_name: last.into(), email: None }
}

fn booking(status: BookingStatus) -> Booking {
    let details = NewBooking {
        supplier: "jsonrest".parse().unwrap(),
        hotel_code: "HTL-LIS-001".into(),
        check_in: NaiveDate::from_ymd_opt(2027, 3, 10).unwrap(),
        check_out: NaiveDate::from_ymd_opt(2027, 3, 13).unwrap(),
        rooms: vec![
            Room {
                room_type: RoomType::Double,
                board: Board::BedAndBreakfast,
                guests: vec![guest("Ana", "Pérez"), guest("Luis", "Pérez")],
            },
            Room { room_type: RoomType::Single, board: Board::RoomOnly, guests: vec![guest("Zoë", "Ångström")] },
        ],
        total: Money::parse("450.00", "USD").unwrap(),
        client_reference: None,
    };
    let mut booking = Booking::accept(AgencyId::generate(), details, Utc::now());
    booking.status = status;
    booking.supplier_reference = Some("SUP-98765".into());
    booking
}

fn email<'a>(booking: &'a Booking, event_type: &'a str, voucher: Option<Attachment<'a>>) -> AgencyEmail<'a> {
    AgencyEmail {
        to: "bookings@agency.example",
        agency_name: "Viajes Olé",
        event_id: "ev_0190f7a1b2c3",
        event_type,
        booking,
        voucher,
    }
}

fn smtp(port: u16) -> EmailSettings {
    EmailSettings {
        enabled: true,
        transport: Transport::Smtp,
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        from: "bookhub <bookings@bookhub.example>".into(),
        timeout: Duration::from_secs(5),
        ..EmailSettings::default()
    }
}

const PDF: &[u8] = b"%PDF-1.7\n\x00\x01\xff a voucher\n%%EOF";

#[tokio::test]
async fn a_confirmation_arrives_with_both_parts_and_the_voucher() {
    let sink = SmtpSink::start().await;
    let mailer = Mailer::new(&smtp(sink.port())).unwrap();
    let booking = booking(BookingStatus::Confirmed);
    let voucher = Attachment { filename: "VCH-2027-000123.pdf", pdf: PDF };

    mailer.send(&email(&booking, "booking.confirmed", Some(voucher))).await.unwrap();

    let raw = sink.wait_for(1).await.remove(0);
    let envelope = &sink.mails()[0];
    assert_eq!(
        (envelope.from.as_str(), envelope.to.as_slice()),
        ("bookings@bookhub.example", &["bookings@agency.example".to_owned()][..])
    );
    let message = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(
        message.subject(),
        Some(format!("Booking {} confirmed — HTL-LIS-001, 2027-03-10 → 2027-03-13", booking.id).as_str())
    );
    assert_eq!(message.message_id(), Some("ev_0190f7a1b2c3@bookhub"));
    assert_eq!(message.content_type().map(|c| c.subtype()), Some(Some("mixed")));
    let alternative = message.part(1).expect("the first part of multipart/mixed");
    assert_eq!(alternative.content_type().map(|c| c.subtype()), Some(Some("alternative")));
    assert_eq!((message.text_body.len(), message.html_body.len()), (1, 1));
    let text = message.body_text(0).unwrap();
    for needle in ["HTL-LIS-001", "2027-03-10", "2027-03-13", "Ana Pérez", "Luis Pérez", "Zoë Ångström", "SUP-98765"]
    {
        assert!(text.contains(needle), "{needle:?} missing from\n{text}");
    }
    assert!(text.contains("Total:") && text.contains("450.00 USD"), "{text}");
    let html = message.body_html(0).unwrap();
    assert!(html.contains("Ana Pérez") && html.contains("450.00 USD"), "{html}");
    assert_eq!(message.attachment_count(), 1);
    let pdf = message.attachment(0).unwrap();
    assert_eq!(pdf.content_type().map(|c| (c.ctype(), c.subtype())), Some(("application", Some("pdf"))));
    assert_eq!(pdf.attachment_name(), Some("VCH-2027-000123.pdf"));
    assert_eq!(pdf.contents(), PDF);
}

#[tokio::test]
async fn a_cancellation_arrives_without_an_attachment() {
    let sink = SmtpSink::start().await;
    let mailer = Mailer::new(&smtp(sink.port())).unwrap();
    let booking = booking(BookingStatus::Cancelled);

    mailer.send(&email(&booking, "booking.cancelled", None)).await.unwrap();

    let raw = sink.wait_for(1).await.remove(0);
    let message = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(message.attachment_count(), 0);
    assert!(message.subject().unwrap().contains(" cancelled — HTL-LIS-001"));
    assert_eq!((message.text_body.len(), message.html_body.len()), (1, 1));
}

fn with_login(port: u16, password: &str) -> EmailSettings {
    EmailSettings { username: Some("bookhub".into()), password: Some(password.into()), ..smtp(port) }
}

#[tokio::test]
async fn logs_in_with_username_and_password() {
    let credentials = Some(("bookhub".to_owned(), "s3cret".to_owned()));
    let sink = SmtpSink::start_with(SinkOptions { credentials, ..SinkOptions::default() }).await;
    let booking = booking(BookingStatus::Confirmed);

    let mailer = Mailer::new(&with_login(sink.port(), "s3cret")).unwrap();
    assert!(!format!("{mailer:?}").contains("s3cret"));
    mailer.send(&email(&booking, "booking.confirmed", None)).await.unwrap();
    sink.wait_for(1).await;
    assert_eq!(sink.mails()[0].authenticated_as.as_deref(), Some("bookhub"));

    // A wrong password is bookhub's setting, not the message's fault: worth another try once fixed.
    let wrong = Mailer::new(&with_login(sink.port(), "wrong")).unwrap();
    let error = wrong.send(&email(&booking, "booking.confirmed", None)).await.unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert!(error.to_string().contains("535"), "{error}");
    assert_eq!(sink.mails().len(), 1);

    // Without credentials the sink refuses MAIL: no message goes out unauthenticated.
    let anonymous = Mailer::new(&smtp(sink.port())).unwrap();
    assert!(anonymous.send(&email(&booking, "booking.confirmed", None)).await.is_err());
    assert_eq!(sink.mails().len(), 1);
}

#[tokio::test]
async fn a_closed_port_is_worth_another_try() {
    let mailer = Mailer::new(&smtp(free_port())).unwrap();
    let booking = booking(BookingStatus::Confirmed);
    let error = mailer.send(&email(&booking, "booking.confirmed", None)).await.unwrap_err();
    assert!(error.is_retryable(), "{error}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_as_worth_another_try() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let (stream, _) = silent.accept().await.unwrap();
        std::future::pending::<()>().await;
        drop(stream);
    });
    let mailer = Mailer::new(&EmailSettings { timeout: Duration::from_secs(1), ..smtp(port) }).unwrap();
    let booking = booking(BookingStatus::Confirmed);

    let started = Instant::now();
    let error = mailer.send(&email(&booking, "booking.confirmed", None)).await.unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());
    held.abort();
}

async fn refused_with(code: u16) -> bookhub_adapters::notify::email::EmailError {
    let refuse = Some((code, "refused by the test".to_owned()));
    let sink = SmtpSink::start_with(SinkOptions { refuse_recipients: refuse, ..SinkOptions::default() }).await;
    let mailer = Mailer::new(&smtp(sink.port())).unwrap();
    let booking = booking(BookingStatus::Confirmed);
    let error = mailer.send(&email(&booking, "booking.confirmed", None)).await.unwrap_err();
    assert!(sink.mails().is_empty());
    error
}

#[tokio::test]
async fn a_4xx_reply_is_worth_another_try_and_a_5xx_is_not() {
    let transient = refused_with(451).await;
    assert!(transient.is_retryable(), "{transient}");
    let permanent = refused_with(550).await;
    assert!(!permanent.is_retryable(), "{permanent}");
    assert!(permanent.to_string().contains("550"), "{permanent}");
}

#[tokio::test]
async fn starttls_is_required_when_configured_never_skipped() {
    // The sink offers no STARTTLS: with tls = "starttls" nothing may go out in clear text.
    let sink = SmtpSink::start().await;
    let mailer = Mailer::new(&EmailSettings { tls: SmtpTls::Starttls, ..smtp(sink.port()) }).unwrap();
    let booking = booking(BookingStatus::Confirmed);
    let error = mailer.send(&email(&booking, "booking.confirmed", None)).await.unwrap_err();
    assert!(error.to_string().to_lowercase().contains("starttls"), "{error}");
    assert!(sink.mails().is_empty());
}

#[tokio::test]
async fn the_outbox_writes_one_eml_file_per_message() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let settings =
        EmailSettings { transport: Transport::Outbox, host: String::new(), outbox_dir: outbox.clone(), ..smtp(0) };
    let mailer = Mailer::new(&settings).unwrap();
    let booking = booking(BookingStatus::Confirmed);
    let voucher = Attachment { filename: "VCH-2027-000123.pdf", pdf: PDF };

    mailer.send(&email(&booking, "booking.confirmed", Some(voucher))).await.unwrap();

    let files: Vec<_> = std::fs::read_dir(&outbox).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().and_then(|e| e.to_str()), Some("eml"));
    let raw = std::fs::read(&files[0]).unwrap();
    let message = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(message.message_id(), Some("ev_0190f7a1b2c3@bookhub"));
    assert_eq!(message.attachment(0).map(|a| a.contents()), Some(PDF));
}

#[test]
fn disabled_settings_make_no_mailer() {
    assert!(Mailer::from_settings(&EmailSettings { enabled: false, ..smtp(25) }).unwrap().is_none());
    assert!(Mailer::from_settings(&smtp(25)).unwrap().is_some());
    let broken = EmailSettings { from: "nobody".into(), ..smtp(25) };
    assert!(Mailer::new(&broken).is_err());
}
