//! The tool contract as a client receives it: the bytes of the binary's own
//! `initialize` and `tools/list` answers over stdio, measured against what
//! clients can afford (their context, their schema validators, their
//! instruction limits).

// Only `command` of the shared support is used here.
mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::command;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The whole `tools/list` result. 60,000 bytes held 36 tools (1.64 KB
/// each); the 44 tools of the reference's 39 names, DICOMweb, reports,
/// exports and de-identification get 66,000 (1.50 KB each), paid for by
/// leaner published schemas (see `tools::contract`).
const WHOLE_LIMIT: usize = 66_000;
/// Every input schema plus every tool description (25,000 for 36 tools).
const INPUTS_LIMIT: usize = 26_000;
const TOOL_DESCRIPTION_LIMIT: usize = 1_000;
const FIELD_DESCRIPTION_LIMIT: usize = 300;
/// Clients cut server instructions here.
const INSTRUCTIONS_LIMIT: usize = 2_048;
/// Formats JSON Schema defines; validators warn on any other.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "uuid",
    "regex",
];

/// Sends each request as one line and returns the answers to those with an id.
async fn exchange(requests: &[Value]) -> Vec<Value> {
    let home = tempfile::tempdir().unwrap();
    let mut child = command(&["serve", "--seed", "9"], home.path())
        .spawn()
        .expect("the binary starts");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut answers = Vec::new();
    for request in requests {
        let mut line = serde_json::to_vec(request).unwrap();
        line.push(b'\n');
        stdin.write_all(&line).await.unwrap();
        if request.get("id").is_none() {
            continue;
        }
        let answer = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("the server answers within 60 s")
            .unwrap()
            .expect("an answer line");
        answers.push(serde_json::from_str(&answer).expect("the answer is JSON"));
    }
    drop(stdin);
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    answers
}

fn compact_len(value: &Value) -> usize {
    serde_json::to_string(value).unwrap().len()
}

/// Every schema object inside `schema`, with its path, skipping property names.
fn schemas<'a>(schema: &'a Value, path: String, out: &mut Vec<(String, &'a Value)>) {
    let Some(object) = schema.as_object() else {
        return;
    };
    out.push((path.clone(), schema));
    for (key, value) in object {
        match key.as_str() {
            "properties" | "$defs" | "patternProperties" => {
                for (name, sub) in value.as_object().into_iter().flatten() {
                    schemas(sub, format!("{path}.{name}"), out);
                }
            }
            "items" | "additionalProperties" | "not" | "contains" | "propertyNames" => {
                schemas(value, format!("{path}[]"), out);
            }
            "anyOf" | "oneOf" | "allOf" | "prefixItems" => {
                for (i, sub) in value.as_array().into_iter().flatten().enumerate() {
                    schemas(sub, format!("{path}/{key}{i}"), out);
                }
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn the_published_contract_fits_what_clients_can_afford() {
    let answers = exchange(&[
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "contract-test", "version": "1"}
        }}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    ])
    .await;
    let instructions = answers[0]["result"]["instructions"]
        .as_str()
        .expect("the server gives instructions");
    assert!(
        instructions.chars().count() < INSTRUCTIONS_LIMIT,
        "instructions are {} characters",
        instructions.chars().count()
    );

    let result = &answers[1]["result"];
    let tools = result["tools"].as_array().expect("a list of tools");
    assert_eq!(tools.len(), 44, "every tool is listed");
    let whole = compact_len(result);
    let mut inputs = 0;
    let mut problems = Vec::new();
    for tool in tools {
        let name = tool["name"].as_str().unwrap();
        let description = tool["description"].as_str().unwrap_or_default();
        inputs += compact_len(&tool["inputSchema"]) + description.len();
        if description.chars().count() >= TOOL_DESCRIPTION_LIMIT {
            problems.push(format!(
                "{name}: description of {} characters",
                description.len()
            ));
        }
        assert!(
            tool.get("outputSchema").is_some(),
            "{name} keeps its output schema"
        );
        for (side, schema) in [
            ("input", &tool["inputSchema"]),
            ("output", &tool["outputSchema"]),
        ] {
            assert!(schema.get("$schema").is_none(), "{name}: no $schema");
            let mut all = Vec::new();
            schemas(schema, format!("{name} {side}"), &mut all);
            for (path, sub) in all {
                if let Some(format) = sub.get("format").and_then(Value::as_str)
                    && !STANDARD_FORMATS.contains(&format)
                {
                    problems.push(format!("{path}: format {format}"));
                }
                if let Some(description) = sub.get("description").and_then(Value::as_str)
                    && description.chars().count() >= FIELD_DESCRIPTION_LIMIT
                {
                    problems.push(format!("{path}: description of {}", description.len()));
                }
                let nullable_type = sub["type"]
                    .as_array()
                    .is_some_and(|types| types.iter().any(|t| t == "null"));
                let nullable_branch = ["anyOf", "oneOf"].iter().any(|keyword| {
                    sub[*keyword]
                        .as_array()
                        .is_some_and(|branches| branches.iter().any(|b| b["type"] == "null"))
                });
                if side == "input" && (nullable_type || nullable_branch) {
                    problems.push(format!("{path}: an optional argument typed with null"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "contract problems:\n{}",
        problems.join("\n")
    );
    assert!(
        inputs <= INPUTS_LIMIT,
        "input schemas and descriptions are {inputs} bytes (at most {INPUTS_LIMIT})"
    );
    assert!(
        whole <= WHOLE_LIMIT,
        "tools/list is {whole} bytes (at most {WHOLE_LIMIT})"
    );
    eprintln!(
        "tools/list: {whole} bytes, inputs and descriptions {inputs}, instructions {} characters",
        instructions.chars().count()
    );
}

#[tokio::test]
async fn reference_server_argument_names_work_on_the_binary() {
    // max_results is the reference server's name for limit; search_criteria its
    // name for the API's SearchCriteria.
    let answers = exchange(&[
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "contract-test", "version": "1"}
        }}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "list_datastores", "arguments": {"max_results": 1}
        }}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "list_datastores", "arguments": {"max_results": 1, "limit": 1}
        }}),
    ])
    .await;
    let listed = &answers[1]["result"];
    assert_ne!(listed["isError"], true, "{listed}");
    assert_eq!(
        listed["structuredContent"]["datastores"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let both = &answers[2]["error"];
    assert_eq!(both["code"], -32602, "{}", answers[2]);
    assert_eq!(both["message"], "pass limit or max_results, not both");
}

#[tokio::test]
async fn the_2026_07_28_revision_discovers_and_calls_without_initialize() {
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let answers = exchange(&[
        json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta}}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "list_datastores", "arguments": {}, "_meta": meta
        }}),
        // A request without the revision's metadata, and no initialize, is refused.
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {}}),
    ])
    .await;
    let discovered = &answers[0]["result"];
    let versions = discovered["supportedVersions"].as_array().unwrap();
    assert!(versions.contains(&json!("2026-07-28")), "{discovered}");
    assert!(versions.contains(&json!("2025-11-25")), "{discovered}");
    // The same instructions as initialize gives.
    let initialized = exchange(&[
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "contract-test", "version": "1"}
        }}),
    ])
    .await;
    assert_eq!(
        discovered["instructions"],
        initialized[0]["result"]["instructions"]
    );
    assert_eq!(initialized[0]["result"]["protocolVersion"], "2025-11-25");
    let called = &answers[1]["result"];
    assert_eq!(called["isError"], false, "{called}");
    assert_eq!(called["structuredContent"]["count"], 1);
    assert!(answers[2].get("error").is_some(), "{}", answers[2]);
}
