//! `/v1/crm/mapping`: the CRM field mapping in use, where it came from, and — when the file was
//! changed into something that does not validate — why it was refused (the mapping in use
//! stays the earlier one).

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::auth::StaffCaller;
use crate::error::ApiError;
use crate::routes::{Endpoint, Method};

/// The mapping in use. (The answer is the store's own `MappingStatus`; this type documents it.)
#[derive(Debug, Serialize, ToSchema)]
pub struct CrmMappingView {
    /// The file read, as configured (`crm.mapping_file`).
    #[schema(example = "crm-mapping.toml")]
    pub path: String,
    /// `file`, or `builtin` when the file does not exist (the shipped defaults).
    #[schema(example = "file")]
    pub origin: String,
    /// When the mapping in use was read.
    pub loaded_at: DateTime<Utc>,
    #[schema(example = "America/Caracas")]
    pub time_zone: String,
    pub fields: Vec<CrmFieldView>,
    /// Set when the file was refused after `loaded_at`: why, and when.
    pub last_error: Option<CrmMappingError>,
}

/// One CRM field and its rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct CrmFieldView {
    #[schema(example = "FechaReserva")]
    pub name: String,
    #[schema(example = "created_at")]
    pub source: String,
    /// `copy`, `email`, `date`, `decimal2`, `lookup` or `status`.
    #[schema(example = "date")]
    pub rule: String,
    #[schema(example = "%d/%m/%Y")]
    pub format: Option<String>,
    pub time_zone: Option<String>,
    pub when_currency: Option<String>,
    pub unless_currency: Option<String>,
    pub table: Option<BTreeMap<String, String>>,
    /// `omit`, `empty` or `refuse`, for the sources a booking may lack.
    pub if_absent: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CrmMappingError {
    pub message: String,
    pub at: DateTime<Utc>,
}

/// Show the CRM field mapping in use (staff).
#[utoipa::path(get, path = "/v1/crm/mapping", tag = "operations",
    responses((status = 200, body = CrmMappingView)),
    security(("api_key" = [])))]
pub async fn mapping(state: web::Data<AppState>, _caller: StaffCaller) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.jobs.fanout.crm_mapping.status()))
}

pub const ROUTES: &[Endpoint] =
    &[Endpoint { method: Method::Get, path: "/v1/crm/mapping", handler: || web::to(mapping) }];
