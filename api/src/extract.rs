//! Request extractors that fail with problem+json rather than actix's plain-text errors.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures::StreamExt;
use futures::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The largest body a request may carry (from `body_limit_bytes`).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// A JSON body: 415 unless the content type is JSON, 413 past the limit (`body_limit_bytes`,
/// or `MAX` when that is smaller: a route whose bodies are small says so), 400 when it is not
/// JSON at all, 422 (with the field's path) when a field has the wrong JSON type.
/// Keeps the parsed JSON value too, for hashing the request.
#[derive(Debug)]
pub struct JsonBody<T, const MAX: usize = { usize::MAX }> {
    pub value: serde_json::Value,
    pub parsed: T,
}

impl<T: DeserializeOwned + 'static, const MAX: usize> FromRequest for JsonBody<T, MAX> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<mime::Mime>().ok())
            .is_some_and(|m| {
                m.type_() == mime::APPLICATION && (m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON))
            });
        let body = read_limited(req, payload, MAX);
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::UnsupportedMediaType);
            }
            let body = body.await?;
            let value: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
            // Every body bookhub takes is an object; serde would read an array into a struct
            // field by field.
            if !value.is_object() {
                return Err(ApiError::Validation(
                    domain::FieldError {
                        field: String::new(),
                        code: "invalid_type",
                        message: "the body must be a JSON object".into(),
                    }
                    .into(),
                ));
            }
            let parsed = serde_path_to_error::deserialize(&value).map_err(|e| {
                let field = e.path().to_string();
                ApiError::Validation(
                    domain::FieldError {
                        field: if field == "." { String::new() } else { field },
                        code: "invalid_type",
                        message: e.into_inner().to_string(),
                    }
                    .into(),
                )
            })?;
            Ok(JsonBody { value, parsed })
        })
    }
}

/// A raw body of any media type, within the body limit (413 past it).
#[derive(Debug)]
pub struct RawBody(pub web::Bytes);

impl FromRequest for RawBody {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_limited(req, payload, usize::MAX);
        Box::pin(async move { Ok(RawBody(body.await?)) })
    }
}

/// Reads the whole body, refusing one larger than `BodyLimit` (or `max`, when smaller) as soon
/// as that is known.
pub(crate) fn read_limited(
    req: &HttpRequest,
    payload: &mut Payload,
    max: usize,
) -> LocalBoxFuture<'static, Result<web::Bytes, ApiError>> {
    let limit = req.app_data::<BodyLimit>().copied().unwrap_or(BodyLimit(1024 * 1024)).0.min(max);
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let mut payload = payload.take();
    Box::pin(async move {
        if declared.is_some_and(|n| n > limit) {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| ApiError::bad_request("unreadable_body", e.to_string()))?;
            if body.len() + chunk.len() > limit {
                return Err(ApiError::PayloadTooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    })
}

/// Query-string parse failures as problem+json (400).
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _| ApiError::bad_request("invalid_query", err.to_string()).into())
}

/// Path parse failures as problem+json (404: no such resource).
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|_, _| ApiError::NotFound("resource").into())
}
