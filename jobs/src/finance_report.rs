//! The finance report for a period: per agency, supplier and currency, the bookings made by
//! status, what was sold, what the suppliers' statements bill for it and the margin
//! ([`domain::finance`]), what was invoiced and credited, and the open mismatches. As CSV (the
//! totals, amounts as exact decimal text) or XLSX (sheets Totals, Bookings and Mismatches,
//! amounts `#,##0.00` with the currency's places, header rows frozen). Emailed to finance after each scheduled
//! reconciliation run by its own job, so a mail server that is down delays it, never loses it.

use std::collections::{BTreeMap, HashMap};

use adapters::notify::email::ReportFile;
use adapters::store::invoices::{self, InvoiceQuery};
use adapters::store::queue::{self, EnqueuedJob};
use adapters::store::reconciliation::{self, MismatchRecord, MismatchStatus, RunStatus};
use adapters::store::{Database, StoreError, agencies, bookings};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use domain::billing::DocumentKind;
use domain::finance::{GroupKey, Line, Totals, totals};
use domain::{AgencyId, Booking, BookingId, BookingStatus, Currency, Money, SupplierCode};
use rust_decimal::Decimal;
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};
use serde::{Deserialize, Serialize};

use crate::reconcile::Reconcile;
use crate::supplier::{JobError, SupplierJobs};

/// The most open mismatches one report lists.
const MISMATCH_ROWS: u64 = 10_000;

/// A report's period: the bookings made from `from` to `to`, both days included (UTC), and
/// the documents issued on those days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// One row of the totals.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub agency_name: String,
    pub totals: Totals,
    pub invoiced: Decimal,
    pub credited: Decimal,
    pub open_mismatches: u64,
}

/// One booking of the period, as the Bookings sheet shows it.
#[derive(Debug, Clone)]
pub struct BookingRow {
    pub booking: Booking,
    pub agency_name: String,
    pub cost: Option<Money>,
    pub margin: Option<Decimal>,
    /// The numbers of its invoice line and credit note, when issued.
    pub documents: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct FinanceReport {
    pub period: Period,
    pub rows: BTreeMap<GroupKey, Row>,
    pub bookings: Vec<BookingRow>,
    /// Open now, newest first.
    pub mismatches: Vec<MismatchRecord>,
}

/// What the Totals sheet and the CSV hold, in order.
const TOTAL_COLUMNS: [&str; 17] = [
    "agency_id",
    "agency",
    "supplier",
    "currency",
    "pending",
    "confirmed",
    "rejected",
    "failed",
    "cancellation_pending",
    "cancelled",
    "sell_total",
    "costed_bookings",
    "supplier_cost",
    "margin",
    "invoiced",
    "credited",
    "open_mismatches",
];

impl FinanceReport {
    /// Gathers the report for `period`.
    pub async fn build(db: &Database, period: Period) -> Result<FinanceReport, StoreError> {
        let from = period.from.and_time(NaiveTime::MIN).and_utc();
        let to = (period.to + chrono::Days::new(1)).and_time(NaiveTime::MIN).and_utc();
        let made = bookings::made_between(db, from, to).await?;
        let names = agencies::names(db).await?;
        let name = |id: &AgencyId| names.get(id).cloned().unwrap_or_default();
        let costs = costs(db, &made).await?;
        let lines: Vec<Line> = made.iter().map(|b| Line { booking: b, cost: costs.get(&b.id).copied() }).collect();
        let mut rows: BTreeMap<GroupKey, Row> = totals(&lines)
            .into_iter()
            .map(|(key, totals)| (key.clone(), Row { agency_name: name(&key.agency), totals, ..Row::default() }))
            .collect();
        let query = InvoiceQuery { from: Some(period.from), to: Some(period.to), ..InvoiceQuery::default() };
        let mut documents: HashMap<BookingId, Vec<String>> = HashMap::new();
        for (_, invoice) in invoices::list(db, &query, u64::MAX >> 1).await? {
            let key = GroupKey {
                agency: invoice.agency_id.clone(),
                supplier: invoice.supplier.clone(),
                currency: invoice.amount.currency(),
            };
            let row =
                rows.entry(key).or_insert_with(|| Row { agency_name: name(&invoice.agency_id), ..Row::default() });
            match invoice.kind {
                DocumentKind::Invoice => row.invoiced += invoice.amount.amount(),
                DocumentKind::CreditNote => row.credited += invoice.amount.amount(),
            }
            documents.entry(invoice.booking_id).or_default().push(invoice.number);
        }
        let mismatches = reconciliation::mismatches(db, Some(MismatchStatus::Open), None, None, MISMATCH_ROWS).await?;
        let by_id: HashMap<&str, &Booking> = made.iter().map(|b| (b.id.as_str(), b)).collect();
        for m in &mismatches {
            if let Some(b) = m.booking_id.as_deref().and_then(|id| by_id.get(id)) {
                let key = GroupKey {
                    agency: b.agency_id.clone(),
                    supplier: b.details.supplier.clone(),
                    currency: b.details.total.currency(),
                };
                rows.entry(key).or_default().open_mismatches += 1;
            }
        }
        let bookings = lines
            .iter()
            .map(|line| BookingRow {
                agency_name: name(&line.booking.agency_id),
                cost: line.cost,
                margin: line.margin(),
                documents: documents.remove(&line.booking.id).unwrap_or_default(),
                booking: line.booking.clone(),
            })
            .collect();
        Ok(FinanceReport { period, rows, bookings, mismatches })
    }

    /// `finance-2027-01-01-2027-01-31.xlsx` (or `.csv`).
    pub fn filename(&self, extension: &str) -> String {
        format!("finance-{}-{}.{extension}", self.period.from, self.period.to)
    }

    /// The totals as CSV, amounts in exact decimal text with the currency's decimals.
    pub fn csv(&self) -> Vec<u8> {
        let mut out = csv::Writer::from_writer(Vec::new());
        out.write_record(TOTAL_COLUMNS).expect("writing to memory");
        for (key, row) in &self.rows {
            let exact = |d: Decimal| amount_text(d, key.currency.minor_units());
            let mut record = vec![key.agency.to_string(), row.agency_name.clone(), key.supplier.to_string()];
            record.push(key.currency.code().to_owned());
            record.extend(status_counts(&row.totals).map(|n| n.to_string()));
            record.extend([exact(row.totals.sell), row.totals.costed.to_string(), exact(row.totals.cost)]);
            record.extend([exact(row.totals.margin()), exact(row.invoiced), exact(row.credited)]);
            record.push(row.open_mismatches.to_string());
            out.write_record(&record).expect("writing to memory");
        }
        out.into_inner().expect("writing to memory")
    }

    /// The three sheets as an XLSX workbook. Amounts are summed as decimals; a cell holds the
    /// nearest double (what the file format stores), which shows the same decimal back.
    pub fn xlsx(&self) -> Result<Vec<u8>, XlsxError> {
        let mut book = Workbook::new();
        let header = Format::new().set_bold();
        let totals = sheet(book.add_worksheet(), "Totals", &TOTAL_COLUMNS, &header)?;
        for (r, (key, row)) in (1u32..).zip(&self.rows) {
            let texts = [key.agency.as_str(), &row.agency_name, key.supplier.as_str(), key.currency.code()];
            for (c, text) in (0u16..).zip(texts) {
                totals.write_string(r, c, text)?;
            }
            for (c, n) in (4u16..).zip(status_counts(&row.totals)) {
                totals.write_number(r, c, n as f64)?;
            }
            let money = money_format(key.currency);
            totals.write_with_format(r, 10, row.totals.sell, &money)?;
            totals.write_number(r, 11, row.totals.costed as f64)?;
            let amounts = [row.totals.cost, row.totals.margin(), row.invoiced, row.credited];
            for (c, amount) in (12u16..).zip(amounts) {
                totals.write_with_format(r, c, amount, &money)?;
            }
            totals.write_number(r, 16, row.open_mismatches as f64)?;
        }
        self.bookings_sheet(book.add_worksheet(), &header)?;
        self.mismatches_sheet(book.add_worksheet(), &header)?;
        book.save_to_buffer()
    }

    fn bookings_sheet(&self, ws: &mut Worksheet, header: &Format) -> Result<(), XlsxError> {
        const COLUMNS: [&str; 14] = [
            "booking_id",
            "agency",
            "supplier",
            "supplier_reference",
            "client_reference",
            "status",
            "made_at",
            "check_in",
            "check_out",
            "currency",
            "sell",
            "supplier_cost",
            "margin",
            "documents",
        ];
        let ws = sheet(ws, "Bookings", &COLUMNS, header)?;
        for (r, row) in (1u32..).zip(&self.bookings) {
            let b = &row.booking;
            let d = &b.details;
            let texts = [
                b.id.to_string(),
                row.agency_name.clone(),
                d.supplier.to_string(),
                b.supplier_reference.clone().unwrap_or_default(),
                d.client_reference.clone().unwrap_or_default(),
                b.status.as_str().to_owned(),
                b.created_at.to_rfc3339(),
                d.check_in.to_string(),
                d.check_out.to_string(),
                d.total.currency().code().to_owned(),
            ];
            for (c, text) in (0u16..).zip(&texts) {
                ws.write_string(r, c, text)?;
            }
            let money = &money_format(d.total.currency());
            ws.write_with_format(r, 10, d.total.amount(), money)?;
            if let Some(cost) = row.cost {
                ws.write_with_format(r, 11, cost.amount(), money)?;
            }
            if let Some(margin) = row.margin {
                ws.write_with_format(r, 12, margin, money)?;
            }
            ws.write_string(r, 13, row.documents.join(" "))?;
        }
        Ok(())
    }

    fn mismatches_sheet(&self, ws: &mut Worksheet, header: &Format) -> Result<(), XlsxError> {
        const COLUMNS: [&str; 9] =
            ["id", "supplier", "reason", "booking_id", "supplier_reference", "ours", "theirs", "last_run", "since"];
        let ws = sheet(ws, "Mismatches", &COLUMNS, header)?;
        for (r, m) in (1u32..).zip(&self.mismatches) {
            ws.write_number(r, 0, m.id as f64)?;
            let texts = [
                Some(m.supplier.as_str()),
                Some(m.reason.as_str()),
                m.booking_id.as_deref(),
                m.supplier_reference.as_deref(),
                m.ours.as_deref(),
                m.theirs.as_deref(),
                Some(m.last_run.as_str()),
            ];
            for (c, text) in (1u16..).zip(texts) {
                ws.write_string(r, c, text.unwrap_or_default())?;
            }
            ws.write_string(r, 8, m.created_at.to_rfc3339())?;
        }
        Ok(())
    }
}

/// Amounts of `currency`: `#,##0.00` for the euro and the dollar, as many places as the
/// currency has (none for the yen, three for the dinar).
fn money_format(currency: Currency) -> Format {
    let places = currency.minor_units() as usize;
    let decimals = if places == 0 { String::new() } else { format!(".{}", "0".repeat(places)) };
    Format::new().set_num_format(format!("#,##0{decimals}"))
}

/// Names `ws`, writes its header row in `header` and freezes it.
fn sheet<'a>(
    ws: &'a mut Worksheet,
    name: &str,
    columns: &[&str],
    header: &Format,
) -> Result<&'a mut Worksheet, XlsxError> {
    ws.set_name(name)?;
    for (c, title) in (0u16..).zip(columns) {
        ws.write_string_with_format(0, c, *title, header)?;
        ws.set_column_width(c, 14)?;
    }
    ws.set_freeze_panes(1, 0)?;
    Ok(ws)
}

/// The booking counts in [`TOTAL_COLUMNS`]' order.
fn status_counts(totals: &Totals) -> impl Iterator<Item = u64> + '_ {
    use BookingStatus as S;
    [S::Pending, S::Confirmed, S::Rejected, S::Failed, S::CancellationPending, S::Cancelled]
        .into_iter()
        .map(|s| totals.by_status.get(&s).copied().unwrap_or(0))
}

/// `d` with `decimals` places: exact, as sums of amounts never have more.
fn amount_text(d: Decimal, decimals: u32) -> String {
    let mut d = d;
    d.rescale(decimals.max(d.scale()));
    d.to_string()
}

/// What each booking's supplier bills for it on its statements: the sum of its billed lines by
/// the supplier's reference, when they share one currency.
async fn costs(db: &Database, made: &[Booking]) -> Result<HashMap<BookingId, Money>, StoreError> {
    let mut suppliers: Vec<&SupplierCode> = made.iter().map(|b| &b.details.supplier).collect();
    suppliers.sort();
    suppliers.dedup();
    let mut costs = HashMap::new();
    for supplier in suppliers {
        // Per reference: the sum and its currency, or `None` once two currencies meet.
        let mut billed: HashMap<&str, Option<(Decimal, Currency)>> = HashMap::new();
        let lines = reconciliation::billed(db, supplier).await?;
        for line in &lines {
            let (amount, currency) = (line.amount.amount(), line.amount.currency());
            let sum = billed.entry(line.supplier_reference.as_str()).or_insert(Some((Decimal::ZERO, currency)));
            *sum = sum.filter(|(_, c)| *c == currency).map(|(s, c)| (s + amount, c));
        }
        for b in made.iter().filter(|b| &b.details.supplier == supplier) {
            let sum = b.supplier_reference.as_deref().and_then(|r| billed.get(r)).copied().flatten();
            if let Some(cost) = sum.and_then(|(amount, currency)| Money::new(amount, currency).ok()) {
                costs.insert(b.id.clone(), cost);
            }
        }
    }
    Ok(costs)
}

/// Emails the finance report after a scheduled slot's runs (one per supplier) are all done:
/// one email per slot, over the days of the runs' window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendFinanceReport {
    pub slot: DateTime<Utc>,
}

impl SendFinanceReport {
    pub const QUEUE: &'static str = "bookhub.finance_report";

    /// One email per slot, whichever of its runs asks first.
    pub fn after(slot: DateTime<Utc>) -> EnqueuedJob {
        crate::enqueued(Self::QUEUE, &SendFinanceReport { slot }, slot.timestamp().to_string())
    }
}

impl SupplierJobs {
    /// Runs a queued reconciliation; once a scheduled one is done, its slot's report email is
    /// queued (once: a repeat, or another supplier's run of the slot, finds it queued).
    pub async fn reconcile_and_report(&self, job: &Reconcile) -> Result<(), JobError> {
        self.reconcile(job).await?;
        if job.scheduled
            && !self.fanout.report_recipients.is_empty()
            && let Some(run) = reconciliation::find(&self.db, &job.run).await?
        {
            queue::push_once(self.db.pool(), &[SendFinanceReport::after(run.window_to)]).await?;
        }
        Ok(())
    }

    /// Sends the slot's report once none of its runs is running (until then the job is tried
    /// again later), naming each run and how it ended.
    #[tracing::instrument(skip_all, fields(slot = %job.slot))]
    pub async fn send_finance_report(&self, job: &SendFinanceReport) -> Result<(), JobError> {
        let recipients = &self.fanout.report_recipients;
        let (Some(mailer), false) = (&self.fanout.mailer, recipients.is_empty()) else {
            tracing::info!("no finance recipients or no email: the report is not sent");
            return Ok(());
        };
        let runs = reconciliation::runs_ending_at(&self.db, job.slot).await?;
        if runs.iter().any(|r| r.status == RunStatus::Running) {
            return Err(JobError::NotYet("a reconciliation run of the slot is still running"));
        }
        let Some(from) = runs.iter().map(|r| r.window_from).min() else { return Ok(()) };
        let period = Period { from: from.date_naive(), to: job.slot.date_naive() };
        let report = FinanceReport::build(&self.db, period).await?;
        let xlsx = report.xlsx().map_err(|e| JobError::Report(e.to_string()))?;
        let filename = report.filename("xlsx");
        let file = ReportFile { filename: &filename, content_type: XLSX, bytes: &xlsx };
        let subject = format!("bookhub finance report {} to {}", period.from, period.to);
        let mut text = format!(
            "The finance report from {} to {}, after the reconciliation runs of {}:\n\n",
            period.from, period.to, job.slot
        );
        for run in &runs {
            text.push_str(&format!("- {}: {} ({})\n", run.supplier, run.status.as_str(), run.id));
        }
        text.push_str(
            "\nTotals per agency, supplier and currency, the bookings and the open mismatches are in the \
             attached workbook.\n",
        );
        mailer.send_report(recipients, &subject, &text, &file).await.map_err(JobError::Email)
    }
}

/// The XLSX media type.
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
