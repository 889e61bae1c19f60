//! Properties of the control plane on arbitrary input: no request ever gets a
//! 5xx or kills the server, and an invalid one gets a `ValidationException`
//! that names the offending member.
//!
//! The validity oracle below is written from the model's constraints with
//! plain character checks, independent of the emulator's own validation.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use healthimaging_emulator::{EmulatorConfig, Service, router};
use http_body_util::BodyExt;
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn emulator() -> Arc<Service> {
    let config = EmulatorConfig::default()
        .with_seed(5)
        .with_datastore_quota(usize::MAX);
    Service::start(config).expect("emulator starts")
}

async fn send(
    service: &Arc<Service>,
    method: Method,
    uri: &str,
    body: String,
) -> (StatusCode, Option<String>, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(body))
        .unwrap();
    let response = router(service.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let code = response
        .headers()
        .get("x-amzn-ErrorType")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        code,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn message(reply: &Value) -> &str {
    reply["message"].as_str().unwrap_or_default()
}

fn name_ok(name: &str) -> bool {
    let n = name.chars().count();
    (1..=256).contains(&n)
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/#-".contains(c))
}

fn token_ok(token: &str) -> bool {
    let n = token.chars().count();
    (1..=64).contains(&n)
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

fn tag_key_ok(key: &str) -> bool {
    let n = key.chars().count();
    (1..=128).contains(&n)
        && !key.starts_with("aws:")
        && key
            .chars()
            .all(|c| c.is_ascii_alphabetic() || ('+'..='=').contains(&c) || "._:/".contains(c))
}

fn tag_value_ok(value: &str) -> bool {
    value.chars().count() <= 256
}

fn tags_ok(tags: &BTreeMap<String, String>) -> bool {
    tags.iter().all(|(k, v)| tag_key_ok(k) && tag_value_ok(v))
}

/// The model's `Arn` pattern, by hand: partition, service, region, account, resource.
fn arn_ok(arn: &str) -> bool {
    let fields: Vec<&str> = arn.splitn(6, ':').collect();
    if fields.len() != 6 || fields[0] != "arn" || fields[2] != "medical-imaging" {
        return false;
    }
    let partition_ok = ["aws", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-cn"].contains(&fields[1]);
    let region_ok = !fields[3].is_empty()
        && fields[3]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let account_ok = fields[4].len() == 12 && fields[4].chars().all(|c| c.is_ascii_digit());
    let id_ok = |id: &str| {
        id.len() == 32
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    let parts: Vec<&str> = fields[5].split('/').collect();
    let resource_ok = match parts.as_slice() {
        ["datastore", ds] => id_ok(ds),
        ["datastore", ds, "imageset", set] => id_ok(ds) && id_ok(set),
        _ => false,
    };
    partition_ok && region_ok && account_ok && resource_ok
}

/// Strings that are valid for a pattern most of the time, and arbitrary otherwise.
fn mostly(valid: &'static str, max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::string::string_regex(valid).unwrap(),
        1 => proptest::collection::vec(any::<char>(), 0..max)
            .prop_map(|c| c.into_iter().collect()),
    ]
}

fn tags() -> impl Strategy<Value = BTreeMap<String, String>> {
    let key = prop_oneof![
        4 => mostly("[a-zA-Z0-9:/._=+-]{1,20}", 140),
        1 => "aws:[a-z]{0,8}",
    ];
    proptest::collection::btree_map(key, mostly("[ -~]{0,20}", 300), 0..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    #[test]
    fn create_datastore_validates_every_member(
        name in proptest::option::of(mostly("[A-Za-z0-9._/#-]{1,40}", 300)),
        token in mostly("[A-Za-z0-9._-]{1,64}", 80),
        tags in tags(),
    ) {
        runtime().block_on(async {
            let service = emulator();
            let mut body = json!({ "clientToken": token, "tags": tags });
            if let Some(name) = &name {
                body["datastoreName"] = json!(name);
            }
            let (status, code, reply) =
                send(&service, Method::POST, "/datastore", body.to_string()).await;
            let mut invalid = Vec::new();
            if name.as_deref().is_some_and(|n| !name_ok(n)) {
                invalid.push("datastoreName");
            }
            if !token_ok(&token) {
                invalid.push("clientToken");
            }
            if !tags_ok(&tags) {
                invalid.push("tags");
            }
            if invalid.is_empty() {
                prop_assert_eq!(status, StatusCode::OK, "{}", reply);
                prop_assert_eq!(reply["datastoreId"].as_str().map(str::len), Some(32));
            } else {
                prop_assert_eq!(status, StatusCode::BAD_REQUEST, "{}", reply);
                prop_assert_eq!(code.as_deref(), Some("ValidationException"));
                let text = message(&reply);
                prop_assert!(
                    invalid.iter().any(|field| text.contains(&format!("'{field}"))),
                    "message {:?} names none of {:?}", text, invalid
                );
            }
            Ok(())
        })?;
    }

    #[test]
    fn list_datastores_validates_page_size_token_and_status(
        max_results in prop_oneof![
            Just(None),
            (-5i64..60).prop_map(Some),
            any::<i64>().prop_map(Some),
        ],
        token in proptest::option::of(mostly("[0-9a-f]{2,40}", 40)),
        status in proptest::option::of(prop_oneof![
            Just("ACTIVE".to_owned()),
            Just("DELETED".to_owned()),
            "[A-Z_]{1,12}",
        ]),
    ) {
        runtime().block_on(async {
            let service = emulator();
            let mut query = Vec::new();
            if let Some(n) = max_results {
                query.push(format!("maxResults={n}"));
            }
            if let Some(t) = &token {
                query.push(format!("nextToken={}", encode(t)));
            }
            if let Some(s) = &status {
                query.push(format!("datastoreStatus={}", encode(s)));
            }
            let uri = format!("/datastore?{}", query.join("&"));
            let (http, code, reply) = send(&service, Method::GET, &uri, String::new()).await;
            prop_assert!(http.as_u16() < 500, "{} for {}", http, uri);
            let statuses = ["CREATING", "CREATE_FAILED", "ACTIVE", "DELETING", "DELETED"];
            let size_bad = max_results.is_some_and(|n| !(1..=50).contains(&n));
            let status_bad = status.as_deref().is_some_and(|s| !statuses.contains(&s));
            // The emulator issued no token, so every token given is foreign and
            // must be refused, naming nextToken.
            let token_bad = token.is_some();
            if !(size_bad || status_bad || token_bad) {
                prop_assert_eq!(http, StatusCode::OK);
                prop_assert!(reply["datastoreSummaries"].is_array());
            } else {
                prop_assert_eq!(code.as_deref(), Some("ValidationException"));
                let text = message(&reply);
                let named = (size_bad && text.contains("'maxResults'"))
                    || (status_bad && text.contains("'datastoreStatus'"))
                    || (token_bad && text.contains("'nextToken'"));
                prop_assert!(named, "message {:?} for {}", text, uri);
            }
            Ok(())
        })?;
    }

    #[test]
    fn tag_operations_validate_arns_keys_and_values(
        arn in prop_oneof![
            "arn:aws:medical-imaging:us-east-1:[0-9]{12}:datastore/[0-9a-z]{32}",
            "arn:aws:medical-imaging:us-east-1:[0-9]{12}:datastore/[0-9a-z]{32}/imageset/[0-9a-z]{32}",
            "arn:aws:medical-imaging:[a-z0-9-]{0,12}:[0-9]{10,13}:datastore/[0-9a-zA-Z]{30,33}",
            mostly("[ -~]{1,60}", 60),
        ],
        tags in tags(),
        method in prop_oneof![Just(Method::POST), Just(Method::GET), Just(Method::DELETE)],
    ) {
        runtime().block_on(async {
            let service = emulator();
            let keys: Vec<String> =
                tags.keys().map(|k| format!("tagKeys={}", encode(k))).collect();
            let uri = if method == Method::DELETE {
                format!("/tags/{}?{}", encode(&arn), keys.join("&"))
            } else {
                format!("/tags/{}", encode(&arn))
            };
            let body = if method == Method::POST {
                json!({ "tags": tags }).to_string()
            } else {
                String::new()
            };
            let (http, code, reply) = send(&service, method.clone(), &uri, body).await;
            prop_assert!(http.as_u16() < 500, "{} for {}", http, uri);
            let tags_bad = match method {
                Method::POST => !tags_ok(&tags),
                Method::DELETE => tags.is_empty() || tags.keys().any(|k| !tag_key_ok(k)),
                _ => false,
            };
            if arn.is_empty() {
                // `/tags/` has no label at all: it names no operation (the
                // SDKs refuse to send an empty label).
                prop_assert_eq!(code.as_deref(), Some("UnknownOperationException"), "{}", reply);
            } else if !arn_ok(&arn) {
                prop_assert_eq!(code.as_deref(), Some("ValidationException"), "{}", reply);
                prop_assert!(message(&reply).contains("'resourceArn'"), "{}", reply);
            } else if tags_bad {
                prop_assert_eq!(code.as_deref(), Some("ValidationException"), "{}", reply);
                let text = message(&reply);
                prop_assert!(text.contains("'tags") || text.contains("'tagKeys'"), "{}", text);
            } else {
                // A well-formed ARN naming nothing in a fresh emulator.
                prop_assert_eq!(http, StatusCode::NOT_FOUND);
                prop_assert_eq!(code.as_deref(), Some("ResourceNotFoundException"));
            }
            Ok(())
        })?;
    }

    #[test]
    fn arbitrary_paths_and_methods_never_fail_the_server(
        path in "/[!-~]{0,40}",
        method in prop_oneof![
            Just(Method::GET),
            Just(Method::POST),
            Just(Method::PUT),
            Just(Method::DELETE),
            Just(Method::PATCH),
        ],
        body in "[ -~]{0,40}",
    ) {
        runtime().block_on(async {
            let service = emulator();
            let Ok(uri) = path.parse::<axum::http::Uri>() else {
                return Ok(());
            };
            let (http, code, reply) = send(&service, method, &uri.to_string(), body).await;
            prop_assert!(http.as_u16() < 500, "{} for {}", http, uri);
            if !http.is_success() {
                prop_assert!(code.is_some(), "every error names its type");
                prop_assert!(reply["message"].is_string(), "every error has a message: {}", reply);
            }
            Ok(())
        })?;
    }
}
