//! The OTA messages as quick-xml's serde sees them. Requests are written from borrowed
//! fields; answers and notifications are read into all-optional fields, so a missing part is
//! reported by name (see `answer`) instead of failing the whole parse.

use serde::{Deserialize, Serialize};

/// An element holding one child (or, as `Wrap<Vec<T>>`, a list of children); the child's tag is
/// its own type's serde name.
#[derive(Serialize, Deserialize)]
pub(super) struct Wrap<T> {
    #[serde(rename = "$value", default)]
    pub(super) inner: T,
}

#[derive(Serialize)]
#[serde(rename = "OTA_HotelResRQ")]
pub(super) struct HotelResRq<'a> {
    #[serde(rename = "@xmlns")]
    pub(super) xmlns: &'static str,
    #[serde(rename = "@EchoToken")]
    pub(super) echo_token: &'a str,
    #[serde(rename = "@TimeStamp")]
    pub(super) time_stamp: String,
    #[serde(rename = "@Version")]
    pub(super) version: &'static str,
    #[serde(rename = "HotelReservations")]
    pub(super) reservations: Wrap<ReservationOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename = "HotelReservation")]
pub(super) struct ReservationOut<'a> {
    #[serde(rename = "UniqueID")]
    pub(super) unique_id: UniqueIdOut<'a>,
    #[serde(rename = "RoomStays")]
    pub(super) room_stays: Wrap<Vec<RoomStayOut<'a>>>,
    #[serde(rename = "ResGuests")]
    pub(super) res_guests: Wrap<ResGuestOut<'a>>,
}

#[derive(Serialize)]
pub(super) struct UniqueIdOut<'a> {
    #[serde(rename = "@Type")]
    pub(super) kind: &'static str,
    #[serde(rename = "@ID")]
    pub(super) id: &'a str,
}

#[derive(Serialize)]
#[serde(rename = "RoomStay")]
pub(super) struct RoomStayOut<'a> {
    #[serde(rename = "RoomTypes")]
    pub(super) room_types: Wrap<RoomTypeOut<'a>>,
    #[serde(rename = "RatePlans")]
    pub(super) rate_plans: Wrap<RatePlanOut<'a>>,
    #[serde(rename = "GuestCounts")]
    pub(super) guest_counts: Wrap<GuestCountOut>,
    #[serde(rename = "TimeSpan")]
    pub(super) time_span: TimeSpanOut,
    #[serde(rename = "Total")]
    pub(super) total: TotalOut,
    #[serde(rename = "BasicPropertyInfo")]
    pub(super) property: PropertyOut<'a>,
}

#[derive(Serialize)]
#[serde(rename = "RoomType")]
pub(super) struct RoomTypeOut<'a> {
    #[serde(rename = "@RoomTypeCode")]
    pub(super) code: &'a str,
}

#[derive(Serialize)]
#[serde(rename = "RatePlan")]
pub(super) struct RatePlanOut<'a> {
    #[serde(rename = "@MealPlanCodes")]
    pub(super) meal_plan_codes: &'a str,
}

#[derive(Serialize)]
#[serde(rename = "GuestCount")]
pub(super) struct GuestCountOut {
    #[serde(rename = "@AgeQualifyingCode")]
    pub(super) age_qualifying_code: &'static str,
    #[serde(rename = "@Count")]
    pub(super) count: usize,
}

#[derive(Serialize)]
pub(super) struct TimeSpanOut {
    #[serde(rename = "@Start")]
    pub(super) start: String,
    #[serde(rename = "@End")]
    pub(super) end: String,
}

#[derive(Serialize)]
pub(super) struct TotalOut {
    #[serde(rename = "@AmountAfterTax")]
    pub(super) amount_after_tax: String,
    #[serde(rename = "@CurrencyCode")]
    pub(super) currency: &'static str,
}

#[derive(Serialize)]
pub(super) struct PropertyOut<'a> {
    #[serde(rename = "@HotelCode")]
    pub(super) hotel_code: &'a str,
}

#[derive(Serialize)]
#[serde(rename = "ResGuest")]
pub(super) struct ResGuestOut<'a> {
    #[serde(rename = "Profiles")]
    pub(super) profiles: Wrap<ProfileInfoOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename = "ProfileInfo")]
pub(super) struct ProfileInfoOut<'a> {
    #[serde(rename = "Profile")]
    pub(super) profile: Wrap<CustomerOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename = "Customer")]
pub(super) struct CustomerOut<'a> {
    #[serde(rename = "PersonName")]
    pub(super) person_name: PersonNameOut<'a>,
    #[serde(rename = "Email", skip_serializing_if = "Option::is_none")]
    pub(super) email: Option<&'a str>,
}

#[derive(Serialize)]
pub(super) struct PersonNameOut<'a> {
    #[serde(rename = "GivenName")]
    pub(super) given_name: &'a str,
    #[serde(rename = "Surname")]
    pub(super) surname: &'a str,
}

#[derive(Serialize)]
#[serde(rename = "OTA_CancelRQ")]
pub(super) struct CancelRq<'a> {
    #[serde(rename = "@xmlns")]
    pub(super) xmlns: &'static str,
    #[serde(rename = "@CancelType")]
    pub(super) cancel_type: &'static str,
    #[serde(rename = "@Version")]
    pub(super) version: &'static str,
    #[serde(rename = "UniqueID")]
    pub(super) unique_id: UniqueIdOut<'a>,
}

#[derive(Serialize)]
#[serde(rename = "OTA_ReadRQ")]
pub(super) struct ReadRq {
    #[serde(rename = "@xmlns")]
    pub(super) xmlns: &'static str,
    #[serde(rename = "@Version")]
    pub(super) version: &'static str,
    #[serde(rename = "ReadRequests")]
    pub(super) read_requests: Wrap<HotelReadRequestOut>,
}

#[derive(Serialize)]
#[serde(rename = "HotelReadRequest")]
pub(super) struct HotelReadRequestOut {
    #[serde(rename = "SelectionCriteria")]
    pub(super) selection_criteria: SelectionCriteriaOut,
}

#[derive(Serialize)]
pub(super) struct SelectionCriteriaOut {
    #[serde(rename = "@DateType")]
    pub(super) date_type: &'static str,
    #[serde(rename = "@Start")]
    pub(super) start: String,
    #[serde(rename = "@End")]
    pub(super) end: String,
}

#[derive(Serialize)]
#[serde(rename = "OTA_HotelResNotifRS")]
pub(super) struct HotelResNotifRs<'a> {
    #[serde(rename = "@xmlns")]
    pub(super) xmlns: &'static str,
    #[serde(rename = "@EchoToken", skip_serializing_if = "Option::is_none")]
    pub(super) echo_token: Option<&'a str>,
    #[serde(rename = "@Version")]
    pub(super) version: &'static str,
    #[serde(rename = "Success")]
    pub(super) success: (),
}

// Answers and notifications: everything optional, so a missing part is reported by name.

#[derive(Deserialize)]
pub(super) struct Empty {}

#[derive(Deserialize)]
pub(super) struct ErrorIn {
    #[serde(rename = "@Type")]
    pub(super) kind: Option<String>,
    #[serde(rename = "@Code")]
    pub(super) code: Option<String>,
    #[serde(rename = "@ShortText")]
    pub(super) short_text: Option<String>,
    #[serde(rename = "$text")]
    pub(super) text: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct HotelResRs {
    #[serde(rename = "Success")]
    pub(super) success: Option<Empty>,
    #[serde(rename = "Errors")]
    pub(super) errors: Option<Wrap<Vec<ErrorIn>>>,
    #[serde(rename = "HotelReservations")]
    pub(super) reservations: Option<Reservations>,
}

#[derive(Deserialize)]
pub(super) struct CancelRs {
    #[serde(rename = "@Status")]
    pub(super) status: Option<String>,
    #[serde(rename = "Success")]
    pub(super) success: Option<Empty>,
    #[serde(rename = "Errors")]
    pub(super) errors: Option<Wrap<Vec<ErrorIn>>>,
}

#[derive(Deserialize)]
pub(super) struct ResRetrieveRs {
    #[serde(rename = "Success")]
    pub(super) success: Option<Empty>,
    #[serde(rename = "Errors")]
    pub(super) errors: Option<Wrap<Vec<ErrorIn>>>,
    #[serde(rename = "ReservationsList")]
    pub(super) reservations: Option<Reservations>,
}

#[derive(Deserialize)]
pub(super) struct HotelResNotifRq {
    #[serde(rename = "@EchoToken")]
    pub(super) echo_token: Option<String>,
    #[serde(rename = "@TimeStamp")]
    pub(super) time_stamp: Option<String>,
    #[serde(rename = "HotelReservations")]
    pub(super) reservations: Option<Reservations>,
}

#[derive(Deserialize)]
pub(super) struct Reservations {
    #[serde(rename = "HotelReservation", default)]
    pub(super) items: Vec<ReservationIn>,
}

#[derive(Deserialize)]
pub(super) struct ReservationIn {
    #[serde(rename = "@ResStatus")]
    pub(super) status: Option<String>,
    #[serde(rename = "@LastModifyDateTime")]
    pub(super) last_modified: Option<String>,
    #[serde(rename = "UniqueID", default)]
    pub(super) unique_ids: Vec<UniqueIdIn>,
    #[serde(rename = "RoomStays")]
    pub(super) room_stays: Option<Wrap<Vec<RoomStayIn>>>,
    #[serde(rename = "ResGlobalInfo")]
    pub(super) global_info: Option<GlobalInfoIn>,
}

#[derive(Deserialize)]
pub(super) struct UniqueIdIn {
    #[serde(rename = "@Type")]
    pub(super) kind: Option<String>,
    #[serde(rename = "@ID")]
    pub(super) id: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct RoomStayIn {
    #[serde(rename = "RoomTypes")]
    pub(super) room_types: Option<Wrap<Vec<RoomTypeIn>>>,
    #[serde(rename = "RatePlans")]
    pub(super) rate_plans: Option<Wrap<Vec<RatePlanIn>>>,
    #[serde(rename = "TimeSpan")]
    pub(super) time_span: Option<TimeSpanIn>,
    #[serde(rename = "Total")]
    pub(super) total: Option<TotalIn>,
    #[serde(rename = "BasicPropertyInfo")]
    pub(super) property: Option<PropertyIn>,
}

#[derive(Deserialize)]
pub(super) struct RoomTypeIn {
    #[serde(rename = "@RoomTypeCode")]
    pub(super) code: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct RatePlanIn {
    #[serde(rename = "@MealPlanCodes")]
    pub(super) meal_plan_codes: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct TimeSpanIn {
    #[serde(rename = "@Start")]
    pub(super) start: Option<String>,
    #[serde(rename = "@End")]
    pub(super) end: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct TotalIn {
    #[serde(rename = "@AmountAfterTax")]
    pub(super) amount: Option<String>,
    #[serde(rename = "@CurrencyCode")]
    pub(super) currency: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct PropertyIn {
    #[serde(rename = "@HotelCode")]
    pub(super) hotel_code: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct GlobalInfoIn {
    #[serde(rename = "HotelReservationIDs")]
    pub(super) ids: Option<Wrap<Vec<ReservationIdIn>>>,
}

#[derive(Deserialize)]
pub(super) struct ReservationIdIn {
    #[serde(rename = "@ResID_Type")]
    pub(super) kind: Option<String>,
    #[serde(rename = "@ResID_Value")]
    pub(super) value: Option<String>,
}
