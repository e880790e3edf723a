//! Turning an agency event into a message: the subject, a plain-text part and an HTML part
//! with the same summary, and the voucher PDF when there is one.
//!
//! The HTML is written with `format!` and one escaping helper rather than a template crate: it
//! is one short table, and every value reaches it through [`Summary`], whose fields are already
//! escaped for the HTML side — a value cannot be interpolated unescaped by forgetting a filter.
//! Header values (the subject, the agency's name, the file name) lose their control characters
//! first, so a CR/LF in a hotel code or a name cannot start a header of its own; lettre then
//! encodes what is not plain ASCII.

use std::fmt::Write as _;

use domain::BookingStatus;
use lettre::Address;
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart};

use super::{AgencyEmail, EmailError, ReportFile};

/// The message for `email`, from `from`: `multipart/mixed` holding a `multipart/alternative`
/// (text/plain, text/html) and, when there is a voucher, the PDF. Its `Message-ID` is
/// `<{event_id}@bookhub>`, so a resent event is the same message to the receiver.
pub fn compose(email: &AgencyEmail<'_>, from: &Mailbox) -> Result<Message, EmailError> {
    let to = recipient(email.to, email.agency_name)?;
    let summary = Summary::of(email);
    let alternative = MultiPart::alternative_plain_html(summary.text(), summary.html());
    let mut body = MultiPart::mixed().multipart(alternative);
    if let Some(voucher) = &email.voucher {
        let pdf = ContentType::parse("application/pdf").expect("a valid MIME type");
        let attachment = lettre::message::Attachment::new(one_line(voucher.filename)).body(voucher.pdf.to_vec(), pdf);
        body = body.singlepart(attachment);
    }
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(one_line(&summary.subject))
        .message_id(Some(message_id(email.event_id)?))
        .date_now()
        .multipart(body)
        .map_err(|e| EmailError::Permanent(format!("the message could not be built: {e}")))
}

/// The agency as a recipient: its address, named by the agency (on one line).
fn recipient(to: &str, agency_name: &str) -> Result<Mailbox, EmailError> {
    let address: Address = to
        .trim()
        .parse()
        .map_err(|e: lettre::address::AddressError| EmailError::Address { field: "to", reason: e.to_string() })?;
    let name = one_line(agency_name);
    Ok(Mailbox::new(Some(name.trim().to_owned()).filter(|n| !n.is_empty()), address))
}

/// The notice that the agency's webhook endpoint was disabled: why, and how to turn it back on.
/// Plain text; it names no booking.
pub fn compose_endpoint_disabled(
    to: &str,
    agency_name: &str,
    reason: &str,
    from: &Mailbox,
) -> Result<Message, EmailError> {
    let name = one_line(agency_name);
    let to = recipient(to, agency_name)?;
    let text = format!(
        "Hello {name},\n\n\
         bookhub stopped sending booking events to your webhook endpoint: {reason}.\n\n\
         Nothing is lost: every event stays in GET /v1/events. Once the endpoint works again,\n\
         POST /v1/agency/webhook/recover with {{\"since\": \"<when it stopped>\"}} turns it back on\n\
         and delivers what it missed.\n",
        reason = one_line(reason)
    );
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject("bookhub: your webhook endpoint was disabled")
        .date_now()
        .singlepart(lettre::message::SinglePart::plain(text))
        .map_err(|e| EmailError::Permanent(format!("the message could not be built: {e}")))
}

/// A report for finance: `text` as the body and `file` attached, to every address of `to`
/// (each a mailbox: `Finance <finance@example.com>` or a bare address).
pub fn compose_report(
    to: &[String],
    subject: &str,
    text: &str,
    file: &ReportFile<'_>,
    from: &Mailbox,
) -> Result<Message, EmailError> {
    let mut message = Message::builder().from(from.clone()).subject(one_line(subject)).date_now();
    for address in to {
        let mailbox: Mailbox = address
            .trim()
            .parse()
            .map_err(|e: lettre::address::AddressError| EmailError::Address { field: "to", reason: e.to_string() })?;
        message = message.to(mailbox);
    }
    let content_type = ContentType::parse(file.content_type)
        .map_err(|e| EmailError::Permanent(format!("the attachment's type: {e}")))?;
    let attachment = lettre::message::Attachment::new(one_line(file.filename)).body(file.bytes.to_vec(), content_type);
    let body =
        MultiPart::mixed().singlepart(lettre::message::SinglePart::plain(text.to_owned())).singlepart(attachment);
    message.multipart(body).map_err(|e| EmailError::Permanent(format!("the message could not be built: {e}")))
}

/// `<{event_id}@bookhub>`. Event ids are bookhub's own (`ev_…`): letters, digits, `-`, `_`
/// and `.` are all a Message-ID may need, and anything else is refused rather than mangled.
fn message_id(event_id: &str) -> Result<String, EmailError> {
    let fits = !event_id.is_empty()
        && event_id.len() <= 200
        && !event_id.starts_with('.')
        && !event_id.ends_with('.')
        && event_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if fits {
        Ok(format!("<{event_id}@bookhub>"))
    } else {
        Err(EmailError::Permanent("the event id cannot make a Message-ID".into()))
    }
}

/// `text` on one line: every control character (CR, LF, tab, …) becomes a space.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// `&`, `<`, `>`, `"` and `'` as HTML entities.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Text shown in both parts, each value once as plain text and once escaped for HTML.
#[derive(Debug, Clone)]
struct Value {
    text: String,
    html: String,
}

impl Value {
    fn new(text: impl AsRef<str>) -> Value {
        let text = one_line(text.as_ref());
        let html = escape(&text);
        Value { text, html }
    }
}

struct RoomSummary {
    heading: Value,
    guests: Vec<Value>,
}

/// What a message says, taken from the event and the booking once.
struct Summary {
    subject: String,
    greeting: Value,
    headline: Value,
    rows: Vec<(&'static str, Value)>,
    rooms: Vec<RoomSummary>,
    voucher: Option<Value>,
    footer: Value,
}

/// How a status reads in a sentence.
fn in_words(status: BookingStatus) -> &'static str {
    match status {
        BookingStatus::Pending => "pending",
        BookingStatus::Confirmed => "confirmed",
        BookingStatus::Rejected => "rejected",
        BookingStatus::Failed => "failed",
        BookingStatus::CancellationPending => "being cancelled",
        BookingStatus::Cancelled => "cancelled",
    }
}

impl Summary {
    fn of(email: &AgencyEmail<'_>) -> Summary {
        let booking = email.booking;
        let details = &booking.details;
        let nights = (details.check_out - details.check_in).num_days();
        let status = in_words(booking.status);
        let subject = format!(
            "Booking {} {status} — {}, {} → {}",
            booking.id, details.hotel_code, details.check_in, details.check_out
        );
        let mut rows = vec![("Status", Value::new(booking.status.as_str()))];
        if let Some(reason) = &booking.status_reason {
            rows.push(("Reason", Value::new(reason)));
        }
        rows.extend([
            ("Booking", Value::new(booking.id.to_string())),
            ("Hotel", Value::new(&details.hotel_code)),
            ("Check-in", Value::new(details.check_in.to_string())),
            ("Check-out", Value::new(format!("{} ({nights} night{})", details.check_out, plural(nights)))),
            ("Rooms", Value::new(details.rooms.len().to_string())),
            ("Supplier reference", Value::new(booking.supplier_reference.as_deref().unwrap_or("not yet given"))),
        ]);
        if let Some(reference) = &details.client_reference {
            rows.push(("Your reference", Value::new(reference)));
        }
        rows.push(("Total", Value::new(details.total.to_string())));
        let rooms = details
            .rooms
            .iter()
            .enumerate()
            .map(|(i, room)| RoomSummary {
                heading: Value::new(format!("Room {}: {}, {}", i + 1, room.room_type, room.board)),
                guests: room
                    .guests
                    .iter()
                    .enumerate()
                    .map(|(j, g)| {
                        let lead = if i == 0 && j == 0 { " (lead guest)" } else { "" };
                        Value::new(format!("{} {}{lead}", g.first_name, g.last_name))
                    })
                    .collect(),
            })
            .collect();
        Summary {
            greeting: Value::new(format!("Hello {},", email.agency_name.trim())),
            headline: Value::new(format!("Booking {} is {status}.", booking.id)),
            rows,
            rooms,
            voucher: email.voucher.as_ref().map(|v| Value::new(format!("The voucher is attached: {}", v.filename))),
            footer: Value::new(format!(
                "Sent by bookhub for event {} ({}). GET /v1/bookings/{} always has the booking as it stands.",
                email.event_type, email.event_id, booking.id
            )),
            subject,
        }
    }

    fn text(&self) -> String {
        let mut out = format!("{}\n\n{}\n\n", self.greeting.text, self.headline.text);
        let width = self.rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0) + 1;
        for (label, value) in &self.rows {
            let _ = writeln!(out, "{:width$} {}", format!("{label}:"), value.text, width = width);
        }
        for room in &self.rooms {
            let _ = writeln!(out, "\n{}", room.heading.text);
            for guest in &room.guests {
                let _ = writeln!(out, "  - {}", guest.text);
            }
        }
        if let Some(voucher) = &self.voucher {
            let _ = writeln!(out, "\n{}", voucher.text);
        }
        let _ = writeln!(out, "\n-- \n{}", self.footer.text);
        out
    }

    fn html(&self) -> String {
        let mut out = format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n\
             <body style=\"font-family: sans-serif\">\n<p>{}</p>\n<p><strong>{}</strong></p>\n\
             <table cellpadding=\"4\" style=\"border-collapse: collapse\">\n",
            escape(&one_line(&self.subject)),
            self.greeting.html,
            self.headline.html
        );
        for (label, value) in &self.rows {
            let _ = writeln!(out, "<tr><th align=\"left\">{label}</th><td>{}</td></tr>", value.html);
        }
        out.push_str("</table>\n");
        for room in &self.rooms {
            let _ = writeln!(out, "<h3>{}</h3>\n<ul>", room.heading.html);
            for guest in &room.guests {
                let _ = writeln!(out, "<li>{}</li>", guest.html);
            }
            out.push_str("</ul>\n");
        }
        if let Some(voucher) = &self.voucher {
            let _ = writeln!(out, "<p>{}</p>", voucher.html);
        }
        let _ = write!(out, "<p style=\"color: #666\">{}</p>\n</body></html>\n", self.footer.html);
        out
    }
}

fn plural(n: i64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests;
