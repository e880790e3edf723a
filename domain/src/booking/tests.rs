use super::*;
use proptest::prelude::*;

pub(crate) fn draft() -> BookingDraft {
    BookingDraft {
        supplier: "sandbox".into(),
        hotel_code: "PMI-00042".into(),
        check_in: "2027-03-15".into(),
        check_out: "2027-03-18".into(),
        rooms: vec![RoomDraft {
            room_type: "DBL".into(),
            board: "BB".into(),
            guests: vec![GuestDraft {
                first_name: "Ana".into(),
                last_name: "Pérez".into(),
                email: Some("ana@example.com".into()),
            }],
        }],
        total_amount: "450.00".into(),
        total_currency: "EUR".into(),
        client_reference: Some("AG-123".into()),
    }
}

/// An accepted booking of [`draft`], brought to `status`.
pub(crate) fn booking_in(status: BookingStatus) -> Booking {
    let details = NewBooking::parse(&draft(), |_| true).unwrap();
    let mut booking = Booking::accept(crate::ids::AgencyId::generate(), details, chrono::Utc::now());
    booking.status = status;
    booking
}

fn known(code: &SupplierCode) -> bool {
    code.as_str() == "sandbox"
}

#[test]
fn debug_output_names_no_guest() {
    let booking = NewBooking::parse(&draft(), known).unwrap();
    let printed = format!("{booking:?} {:?}", draft());
    for personal in ["Ana", "Pérez", "ana@example.com"] {
        assert!(!printed.contains(personal), "{personal} in {printed}");
    }
    assert!(printed.contains("PMI-00042"), "the rest is still there: {printed}");
}

fn fields(result: Result<NewBooking, FieldErrors>) -> Vec<(String, &'static str)> {
    result.unwrap_err().errors.into_iter().map(|e| (e.field, e.code)).collect()
}

#[test]
fn an_unknown_currency_and_a_negative_amount_are_both_listed() {
    let mut d = draft();
    d.total_currency = "XXZ".into();
    d.total_amount = "-5".into();
    assert_eq!(
        fields(NewBooking::parse(&d, known)),
        [("total.currency".to_owned(), "unknown_currency"), ("total.amount".to_owned(), "invalid_amount")]
    );
}

#[test]
fn too_many_rooms_is_one_error_however_many_there_are() {
    let mut d = draft();
    d.rooms = vec![RoomDraft::default(); 350_000];
    assert_eq!(fields(NewBooking::parse(&d, known)), [("rooms".to_owned(), "too_many")]);
    d.rooms =
        vec![RoomDraft { room_type: "DBL".into(), board: "BB".into(), guests: vec![GuestDraft::default(); 10_000] }];
    assert_eq!(fields(NewBooking::parse(&d, known)), [("rooms[0].guests".to_owned(), "too_many")]);
}

#[test]
fn at_most_fifty_errors_are_listed_and_the_answer_says_it_is_cut() {
    let mut d = draft();
    d.rooms = vec![RoomDraft { guests: vec![GuestDraft::default(); 8], ..RoomDraft::default() }; 9];
    let errors = NewBooking::parse(&d, known).unwrap_err();
    assert_eq!(errors.errors.len(), crate::validation::MAX_REPORTED);
    assert!(errors.truncated);
}

#[test]
fn names_and_references_are_capped_at_200_characters() {
    let mut d = draft();
    d.rooms[0].guests[0].first_name = "ñ".repeat(200);
    assert!(NewBooking::parse(&d, known).is_ok(), "200 characters, 400 bytes, is allowed");
    d.rooms[0].guests[0].first_name = "a".repeat(201);
    d.rooms[0].guests[0].last_name = "b".repeat(10_000);
    d.client_reference = Some("r".repeat(201));
    let mut listed = fields(NewBooking::parse(&d, known));
    listed.sort();
    assert_eq!(
        listed,
        [
            ("client_reference".to_owned(), "too_long"),
            ("rooms[0].guests[0].first_name".to_owned(), "too_long"),
            ("rooms[0].guests[0].last_name".to_owned(), "too_long"),
        ]
    );
}

#[test]
fn a_good_draft_parses() {
    let b = NewBooking::parse(&draft(), known).unwrap();
    assert_eq!(b.total.minor_units(), 45_000);
    assert_eq!(b.lead_guest().email.as_ref().unwrap().as_str(), "ana@example.com");
}

#[test]
fn every_violation_is_listed_with_its_path() {
    let mut d = draft();
    d.supplier = "nowhere".into();
    d.check_out = "2027-03-15".into();
    d.rooms[0].room_type = "PENTHOUSE".into();
    d.rooms[0].guests[0].email = None;
    d.rooms.push(RoomDraft { room_type: "SGL".into(), board: "XX".into(), guests: vec![] });
    d.total_currency = "EURO".into();
    assert_eq!(
        fields(NewBooking::parse(&d, known)),
        [
            ("supplier".to_owned(), "unknown_supplier"),
            ("check_out".to_owned(), "stay_dates"),
            ("rooms[0].room_type".to_owned(), "unknown_code"),
            ("rooms[0].guests[0].email".to_owned(), "required"),
            ("rooms[1].board".to_owned(), "unknown_code"),
            ("rooms[1].guests".to_owned(), "required"),
            ("total.currency".to_owned(), "unknown_currency"),
        ]
    );
}

#[test]
fn amounts_must_be_positive_and_fit_the_currency() {
    let mut d = draft();
    d.total_amount = "0.00".into();
    assert_eq!(fields(NewBooking::parse(&d, known)), [("total.amount".to_owned(), "invalid_amount")]);
    d.total_amount = "10.5".into();
    d.total_currency = "JPY".into();
    assert_eq!(fields(NewBooking::parse(&d, known)), [("total.amount".to_owned(), "minor_units")]);
}

fn any_event() -> impl Strategy<Value = BookingEvent> {
    prop_oneof![
        "[A-Z]{2}-[0-9]{3}".prop_map(|r| BookingEvent::SupplierConfirmed { supplier_reference: r }),
        "[A-Z]{2}-[0-9]{3}".prop_map(|r| BookingEvent::SupplierAcknowledged { supplier_reference: r }),
        Just(BookingEvent::SupplierRejected { reason: "no_availability".into() }),
        Just(BookingEvent::SubmissionFailed { reason: "timeout".into() }),
        Just(BookingEvent::CancellationRequested),
        Just(BookingEvent::SupplierCancelled),
    ]
}

fn any_status() -> impl Strategy<Value = BookingStatus> {
    proptest::sample::select(BookingStatus::ALL)
}

fn run(mut status: BookingStatus, events: &[BookingEvent]) -> BookingStatus {
    for e in events {
        if let Ok(Transition::Changed(next)) = status.apply(e) {
            status = next;
        }
    }
    status
}

proptest! {
    #[test]
    fn applying_an_event_twice_is_applying_it_once(status in any_status(), events in prop::collection::vec(any_event(), 0..12)) {
        let doubled: Vec<_> = events.iter().flat_map(|e| [e.clone(), e.clone()]).collect();
        prop_assert_eq!(run(status, &events), run(status, &doubled));
    }

    #[test]
    fn final_statuses_are_never_left(status in any_status(), events in prop::collection::vec(any_event(), 0..12)) {
        if status.is_final() {
            prop_assert_eq!(run(status, &events), status);
        }
    }

    #[test]
    fn a_changed_status_is_a_different_one(status in any_status(), event in any_event()) {
        if let Ok(Transition::Changed(next)) = status.apply(&event) {
            prop_assert_ne!(next, status);
        }
    }
}

#[test]
fn illegal_transitions_are_typed_errors() {
    let err = BookingStatus::Rejected.apply(&BookingEvent::CancellationRequested).unwrap_err();
    assert_eq!(err, TransitionError { from: BookingStatus::Rejected, event: "cancellation_requested" });
    assert!(BookingStatus::Confirmed.apply(&BookingEvent::SupplierRejected { reason: "x".into() }).is_err());
}

#[test]
fn a_booking_cancelled_before_it_could_be_submitted_ends_cancelled() {
    let failed = BookingEvent::SubmissionFailed { reason: "unmapped".into() };
    assert_eq!(BookingStatus::CancellationPending.apply(&failed), Ok(Transition::Changed(BookingStatus::Cancelled)));
}

#[test]
fn a_confirmation_after_cancellation_stays_cancelled_and_cancels_at_the_supplier() {
    for event in [
        BookingEvent::SupplierConfirmed { supplier_reference: "JR-1".into() },
        BookingEvent::SupplierAcknowledged { supplier_reference: "JR-1".into() },
    ] {
        assert_eq!(BookingStatus::Cancelled.apply(&event), Ok(Transition::CancelAtSupplier), "{event:?}");
    }
    // Only a cancelled booking asks for it; the supplier cancelling is no news to it.
    assert_eq!(BookingStatus::Cancelled.apply(&BookingEvent::SupplierCancelled), Ok(Transition::Unchanged));
    for status in BookingStatus::ALL.iter().filter(|s| **s != BookingStatus::Cancelled) {
        let confirmed = BookingEvent::SupplierConfirmed { supplier_reference: "JR-1".into() };
        assert_ne!(status.apply(&confirmed), Ok(Transition::CancelAtSupplier), "{status}");
    }
}

#[test]
fn a_late_confirmation_cancels_at_the_supplier_only_when_it_brings_a_new_reference() {
    let mut booking = Booking {
        id: BookingId::generate(),
        agency_id: AgencyId::generate(),
        status: BookingStatus::Cancelled,
        details: NewBooking::parse(&draft(), known).unwrap(),
        supplier_reference: None,
        status_reason: None,
        cancelled_by: None,
        created_at: Utc::now(),
        updated_at: Utc::now(),
    };
    let confirmed = BookingEvent::SupplierConfirmed { supplier_reference: "JR-1".into() };
    let taken = booking.take(&confirmed).unwrap();
    assert_eq!(
        taken,
        Taken { transition: Transition::CancelAtSupplier, new_reference: Some("JR-1".into()), other_reference: false }
    );

    booking.supplier_reference = Some("JR-1".into());
    let again = booking.take(&confirmed).unwrap();
    assert_eq!(
        again,
        Taken { transition: Transition::Unchanged, new_reference: None, other_reference: false },
        "already cancelled with it"
    );
    let other = booking.take(&BookingEvent::SupplierConfirmed { supplier_reference: "JR-2".into() }).unwrap();
    assert_eq!(
        other,
        Taken { transition: Transition::Unchanged, new_reference: None, other_reference: true },
        "the first reference is kept"
    );
}
