//! Reading requests and writing responses in the service's rest-json form.
//!
//! Bodies are read as JSON objects member by member rather than deserialized
//! into structs, so that a wrong type is reported as a `ValidationException`
//! naming the member (as the service does), never as a generic parse error.
//! Operations without body members may send an empty body with no
//! `Content-Type`, even on POST: an empty body reads as `{}`.

use std::collections::BTreeMap;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::validate;

/// The query string of a request, in wire order; names may repeat
/// (`?tagKeys=a&tagKeys=b`).
#[derive(Debug, Default, Clone)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses a raw (still percent-encoded) query string.
    pub fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .map(|raw| {
                form_urlencoded::parse(raw.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        Self { pairs }
    }

    /// Every name and value, in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of `name`, in order; `None` when the name is absent.
    pub fn all(&self, name: &str) -> Option<Vec<&str>> {
        let values: Vec<&str> = self
            .pairs
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect();
        (!values.is_empty()).then_some(values)
    }

    /// An integer parameter within `min..=max`.
    pub fn integer(&self, name: &str, min: i64, max: i64) -> ApiResult<Option<i64>> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        let value: i64 = raw
            .parse()
            .map_err(|_| ApiError::validation(name, "Member must be an integer"))?;
        validate::range(name, value, min, max)?;
        Ok(Some(value))
    }

    /// A boolean parameter (`true` or `false`, as the SDKs send them).
    pub fn boolean(&self, name: &str) -> ApiResult<Option<bool>> {
        match self.get(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(ApiError::validation(name, "Member must be a boolean")),
        }
    }

    /// A `nextToken` parameter checked against the model.
    pub fn next_token(&self) -> ApiResult<Option<&str>> {
        let Some(token) = self.get("nextToken") else {
            return Ok(None);
        };
        validate::string("nextToken", token, 1, 8192, &validate::NEXT_TOKEN)?;
        Ok(Some(token))
    }
}

/// A JSON request body, read member by member.
#[derive(Debug, Default)]
pub struct JsonBody {
    members: Map<String, Value>,
}

impl JsonBody {
    /// Parses `bytes` as a JSON object; an empty body is `{}`.
    pub fn parse(bytes: &[u8]) -> ApiResult<Self> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(members)) => Ok(Self { members }),
            Ok(_) => Err(ApiError::new(
                crate::error::ErrorCode::Validation,
                "The request body must be a JSON object",
            )),
            Err(error) => Err(ApiError::new(
                crate::error::ErrorCode::Validation,
                format!("Could not parse the request body as JSON: {error}"),
            )),
        }
    }

    /// An optional string member; JSON `null` counts as absent.
    pub fn string(&self, name: &str) -> ApiResult<Option<String>> {
        match self.members.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::validation(name, "Member must be a string")),
        }
    }

    /// A member of any type; JSON `null` counts as absent.
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.members.get(name).filter(|v| !v.is_null())
    }

    /// A required string member.
    pub fn required_string(&self, name: &str) -> ApiResult<String> {
        self.string(name)?
            .ok_or_else(|| ApiError::validation(name, "Member must not be null"))
    }

    /// An optional non-negative integer member.
    pub fn unsigned(&self, name: &str) -> ApiResult<Option<u64>> {
        match self.members.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_u64()
                .map(Some)
                .ok_or_else(|| ApiError::validation(name, "Member must be a non-negative integer")),
        }
    }

    /// An optional number member.
    pub fn number(&self, name: &str) -> ApiResult<Option<f64>> {
        match self.members.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_f64()
                .map(Some)
                .ok_or_else(|| ApiError::validation(name, "Member must be a number")),
        }
    }

    /// An optional map of strings to strings (a `TagMap`).
    pub fn string_map(&self, name: &str) -> ApiResult<Option<BTreeMap<String, String>>> {
        match self.members.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(key, value)| match value {
                    Value::String(s) => Ok((key.clone(), s.clone())),
                    _ => Err(ApiError::validation(
                        &format!("{name}.{key}"),
                        "Member must be a string",
                    )),
                })
                .collect::<ApiResult<_>>()
                .map(Some),
            Some(_) => Err(ApiError::validation(
                name,
                "Member must be a map of strings",
            )),
        }
    }
}

/// A successful JSON response (HTTP 200).
pub fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => with_json_type(Response::new(Body::from(body))),
        Err(error) => ApiError::new(
            crate::error::ErrorCode::InternalServer,
            format!("Could not encode the response: {error}"),
        )
        .into_response(),
    }
}

/// A successful response whose body is `bytes` (an `@httpPayload` blob).
pub fn payload(content_type: &str, content_encoding: Option<&str>, bytes: Bytes) -> Response {
    let mut response = Response::new(Body::from(bytes));
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    if let Some(encoding) = content_encoding.and_then(|e| HeaderValue::from_str(e).ok()) {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, encoding);
    }
    response
}

fn with_json_type(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "message": self.message });
        let mut response = with_json_type(Response::new(Body::from(body.to_string())));
        *response.status_mut() = self.code.status();
        response.headers_mut().insert(
            "x-amzn-ErrorType",
            HeaderValue::from_static(self.code.as_str()),
        );
        response
    }
}

/// An answer to a request that names no known operation.
///
/// The real service answers such requests with `UnknownOperationException`;
/// it is outside the model's error set, so the SDKs surface it as an
/// unmodelled error with that code.
pub fn unknown_operation(status: StatusCode, method: &str, path: &str) -> Response {
    let body = serde_json::json!({
        "message": format!("No HealthImaging operation matches {method} {path}")
    });
    let mut response = with_json_type(Response::new(Body::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        "x-amzn-ErrorType",
        HeaderValue::from_static("UnknownOperationException"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_keeps_repeated_names_and_decodes_values() {
        let query = Query::parse(Some("tagKeys=a&tagKeys=b%20c&maxResults=5"));
        assert_eq!(query.all("tagKeys").unwrap(), vec!["a", "b c"]);
        assert_eq!(query.integer("maxResults", 1, 50).unwrap(), Some(5));
        assert!(query.all("missing").is_none());
    }

    #[test]
    fn out_of_range_and_non_numeric_integers_are_validation_errors() {
        let query = Query::parse(Some("maxResults=51"));
        assert!(
            query
                .integer("maxResults", 1, 50)
                .unwrap_err()
                .message
                .contains("maxResults")
        );
        let query = Query::parse(Some("maxResults=ten"));
        assert!(query.integer("maxResults", 1, 50).is_err());
    }

    #[test]
    fn empty_body_reads_as_empty_object_and_wrong_types_name_the_member() {
        assert!(JsonBody::parse(b"").unwrap().string("x").unwrap().is_none());
        let body = JsonBody::parse(br#"{"datastoreName": 5, "tags": {"a": 1}}"#).unwrap();
        assert!(
            body.string("datastoreName")
                .unwrap_err()
                .message
                .contains("datastoreName")
        );
        assert!(
            body.string_map("tags")
                .unwrap_err()
                .message
                .contains("tags.a")
        );
        assert!(JsonBody::parse(b"[1]").is_err());
        assert!(JsonBody::parse(b"{not json").is_err());
    }
}
