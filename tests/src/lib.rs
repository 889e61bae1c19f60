//! The harness of the workspace-level end-to-end tests.
//!
//! The tests in `e2e/` talk to a real emulator over HTTP through the real AWS
//! SDK, and to the real MCP server through an rmcp client over an in-memory
//! pipe: nothing calls into emulator internals. Tests that spawn the
//! `healthimaging-mcp` binary live beside it in `server/tests/`, because
//! Cargo gives a binary's path only to its own package's tests.

pub mod schema;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_medicalimaging::Client;
use healthimaging_emulator::{Emulator, EmulatorConfig, ManualClock, Timestamp};
use healthimaging_mcp::audit::{AuditLog, SharedBuffer};
use healthimaging_mcp::backend::emulator_client;
use healthimaging_mcp::permissions::Grant;
use healthimaging_mcp::sdk::Tuning;
use healthimaging_mcp::{HealthImagingServer, ServerOptions};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The emulator's transition delay in these tests.
pub const DELAY: Duration = Duration::from_millis(100);

/// An emulator on a manual clock, and an SDK client for it.
#[derive(Debug)]
pub struct Fixture {
    /// The running emulator.
    pub emulator: Emulator,
    /// Its clock: transitions happen only when the test moves it.
    pub clock: ManualClock,
    /// An SDK client with quick retries.
    pub sdk: Client,
}

impl Fixture {
    /// An emulator allowing `quota` datastores.
    pub async fn start(quota: usize) -> Self {
        Self::start_with(quota, |config| config).await
    }

    /// An emulator allowing `quota` datastores, configured further by `more`
    /// (a data directory, an S3 folder).
    pub async fn start_with(
        quota: usize,
        more: impl FnOnce(EmulatorConfig) -> EmulatorConfig,
    ) -> Self {
        let clock = ManualClock::new(Timestamp::from_millis(1_767_225_600_000));
        let config = more(
            EmulatorConfig::default()
                .with_seed(7)
                .with_clock(std::sync::Arc::new(clock.clone()))
                .with_transition_delay(DELAY)
                .with_datastore_quota(quota),
        );
        let emulator = Emulator::start(config).await.expect("emulator starts");
        let sdk = emulator_client(emulator.url(), fast_tuning());
        Self {
            emulator,
            clock,
            sdk,
        }
    }

    /// Moves the clock past every pending transition.
    pub fn settle(&self) {
        self.clock.advance(DELAY * 2);
    }

    /// Creates a datastore named `name` and lets it become ACTIVE.
    pub async fn active_datastore(&self, name: &str) -> String {
        let created = self
            .sdk
            .create_datastore()
            .datastore_name(name)
            .send()
            .await
            .expect("datastore created");
        self.settle();
        created.datastore_id().to_owned()
    }

    /// Starts an import of `input` into `datastore_id` and waits for its end.
    pub async fn import(
        &self,
        datastore_id: &str,
        input: &str,
        output: &str,
    ) -> aws_sdk_medicalimaging::types::DicomImportJobProperties {
        let started = self
            .sdk
            .start_dicom_import_job()
            .datastore_id(datastore_id)
            .data_access_role_arn("arn:aws:iam::123456789012:role/ImportRole")
            .input_s3_uri(input)
            .output_s3_uri(output)
            .send()
            .await
            .expect("import job started");
        wait_for_job(&self.sdk, datastore_id, started.job_id()).await
    }

    /// Sends one request to the control API and returns status and JSON.
    pub async fn control(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, _, text) = raw_http(self.emulator.url(), method, path, &[], &body).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// Polls an import job until it ends (at most two minutes).
pub async fn wait_for_job(
    sdk: &Client,
    datastore_id: &str,
    job_id: &str,
) -> aws_sdk_medicalimaging::types::DicomImportJobProperties {
    use aws_sdk_medicalimaging::types::JobStatus;
    for _ in 0..4800 {
        let job = sdk
            .get_dicom_import_job()
            .datastore_id(datastore_id)
            .job_id(job_id)
            .send()
            .await
            .expect("job readable")
            .job_properties
            .expect("job properties");
        if matches!(job.job_status(), JobStatus::Completed | JobStatus::Failed) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("import job {job_id} did not end within two minutes");
}

/// Writes the fixture set `set` under `<s3_root>/<bucket>/<prefix>` and
/// returns its manifest; the DICOM files are at
/// `s3://<bucket>/<prefix>/dicom/`.
pub fn write_fixtures(
    set: healthimaging_fixtures::FixtureSet,
    s3_root: &std::path::Path,
    bucket: &str,
    prefix: &str,
) -> healthimaging_fixtures::Manifest {
    let spec = healthimaging_fixtures::Spec {
        set,
        seed: 3,
        patients: None,
    };
    healthimaging_fixtures::write(&spec, &s3_root.join(bucket).join(prefix))
        .expect("fixtures written")
}

/// Every image set of a datastore, through every search page.
pub async fn all_image_sets(
    sdk: &Client,
    datastore_id: &str,
) -> Vec<aws_sdk_medicalimaging::types::ImageSetsMetadataSummary> {
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = sdk
            .search_image_sets()
            .datastore_id(datastore_id)
            .max_results(7)
            .set_next_token(token)
            .send()
            .await
            .expect("search");
        all.extend(page.image_sets_metadata_summaries().iter().cloned());
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return all;
        }
    }
}

/// The metadata document of an image set (latest version when `version` is
/// `None`), gunzipped and parsed.
pub async fn metadata(
    sdk: &Client,
    datastore_id: &str,
    image_set_id: &str,
    version: Option<&str>,
) -> Value {
    use std::io::Read;
    let output = sdk
        .get_image_set_metadata()
        .datastore_id(datastore_id)
        .image_set_id(image_set_id)
        .set_version_id(version.map(str::to_owned))
        .send()
        .await
        .expect("metadata");
    assert_eq!(output.content_encoding(), Some("gzip"));
    assert_eq!(output.content_type(), Some("application/json"));
    let gz = output
        .image_set_metadata_blob
        .collect()
        .await
        .expect("body")
        .into_bytes();
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut json)
        .expect("gzip");
    serde_json::from_slice(&json).expect("JSON")
}

/// How a test server is set up.
pub struct Setup {
    /// The tools offered.
    pub grant: Grant,
    /// Confirmation token lifetime.
    pub confirmation_ttl: Duration,
    /// The emulator's S3 folder.
    pub local_s3_root: Option<std::path::PathBuf>,
    /// DICOMweb.
    pub dicomweb: Option<healthimaging_mcp::dicomweb::DicomWeb>,
    /// Where export jobs are kept.
    pub state_dir: Option<std::path::PathBuf>,
    /// Allowed export destinations.
    pub export: healthimaging_mcp::config::ExportPolicy,
    /// An S3 client for s3:// destinations without a local folder.
    pub s3: Option<aws_sdk_s3::Client>,
    /// The key confirmation tokens are sealed with.
    pub confirmation_key: Option<Vec<u8>>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            grant: Grant::ALL,
            confirmation_ttl: Duration::from_secs(300),
            local_s3_root: None,
            dicomweb: None,
            state_dir: None,
            export: Default::default(),
            s3: None,
            confirmation_key: None,
        }
    }
}

/// A client `handler` (one that answers elicitations or collects progress,
/// say) connected in-process to `server`.
pub async fn serve_with<H: rmcp::ClientHandler>(
    server: HealthImagingServer,
    handler: H,
) -> RunningService<RoleClient, H> {
    let (server_end, client_end) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_end).await {
            let _ = running.waiting().await;
        }
    });
    handler.serve(client_end).await.expect("MCP session starts")
}

impl Setup {
    /// The server this set-up describes, over `sdk`, auditing to `audit`.
    pub fn server(self, sdk: Client, audit: AuditLog) -> HealthImagingServer {
        HealthImagingServer::new(
            sdk,
            ServerOptions {
                grant: self.grant,
                confirmation_ttl: self.confirmation_ttl,
                audit,
                backend_description: "the test emulator".to_owned(),
                synthetic: true,
                local_s3_root: self.local_s3_root,
                dicomweb: self.dicomweb,
                state_dir: self.state_dir,
                export: self.export,
                s3: self.s3,
                confirmation_key: self.confirmation_key,
                loading: None,
                loading_wait: std::time::Duration::ZERO,
                bulk_ceiling: healthimaging_mcp::config::DEFAULT_BULK_CEILING,
            },
        )
    }

    /// Everything of a standalone emulator: its S3 folder and DICOMweb.
    pub fn for_emulator(emulator: &Emulator) -> Self {
        Self {
            local_s3_root: Some(emulator.s3_root().to_owned()),
            dicomweb: Some(dicomweb_for(emulator.url())),
            ..Self::default()
        }
    }
}

/// A DICOMweb client for an emulator at `url`, signing with placeholder
/// credentials as `serve --endpoint-url` does without any.
pub fn dicomweb_for(url: &str) -> healthimaging_mcp::dicomweb::DicomWeb {
    healthimaging_mcp::dicomweb::DicomWeb::for_endpoint(
        Some(url),
        "us-east-1",
        aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new("emulator", "emulator", None, None, "tests"),
        ),
        fast_tuning(),
    )
}

/// SDK settings for tests: three attempts, 10 ms back-off.
pub fn fast_tuning() -> Tuning {
    Tuning {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        attempt_timeout: Duration::from_secs(10),
    }
}

/// One HTTP/1.1 request over a fresh connection; returns status, headers
/// (lowercased names) and body.
pub async fn raw_http(
    base_url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let authority = base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .expect("emulator reachable");
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        request.push_str(&format!("Host: {authority}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .expect("response read");
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

/// An MCP client connected in-process to a server, and the server's audit trail.
pub struct Mcp {
    /// The client side of the session.
    pub client: RunningService<RoleClient, ()>,
    /// Every audit record the server wrote.
    pub audit: SharedBuffer,
    /// Each tool's published output schema, read at the first call.
    output_schemas: Mutex<Option<HashMap<String, Value>>>,
}

impl Mcp {
    /// Starts a server over `sdk` with `grant` and connects a client to it.
    pub async fn connect(sdk: Client, grant: Grant, confirmation_ttl: Duration) -> Self {
        Self::connect_with_s3(sdk, grant, confirmation_ttl, None).await
    }

    /// As [`Mcp::connect`], with the emulator's S3 folder known to the server
    /// (as `serve` knows the embedded emulator's).
    pub async fn connect_with_s3(
        sdk: Client,
        grant: Grant,
        confirmation_ttl: Duration,
        local_s3_root: Option<std::path::PathBuf>,
    ) -> Self {
        Self::connect_full(
            sdk,
            Setup {
                grant,
                confirmation_ttl,
                local_s3_root,
                ..Setup::default()
            },
        )
        .await
    }

    /// A server over the standalone `emulator` as `serve --endpoint-url`
    /// configures one: its S3 folder known, DICOMweb to the same endpoint,
    /// export jobs kept in `state_dir`.
    pub async fn connect_to(
        emulator: &Emulator,
        sdk: Client,
        grant: Grant,
        state_dir: Option<std::path::PathBuf>,
    ) -> Self {
        Self::connect_full(
            sdk,
            Setup {
                grant,
                state_dir,
                ..Setup::for_emulator(emulator)
            },
        )
        .await
    }

    /// As [`Mcp::connect_to`], with export destinations allowed.
    pub async fn connect_exporting(
        emulator: &Emulator,
        sdk: Client,
        state_dir: &std::path::Path,
        export: healthimaging_mcp::config::ExportPolicy,
    ) -> Self {
        Self::connect_full(
            sdk,
            Setup {
                state_dir: Some(state_dir.to_owned()),
                export,
                ..Setup::for_emulator(emulator)
            },
        )
        .await
    }

    /// A server set up as `setup` says.
    pub async fn connect_full(sdk: Client, setup: Setup) -> Self {
        let audit = SharedBuffer::default();
        let server = setup.server(sdk, AuditLog::to_writer(audit.clone()));
        let client = serve_with(server, ()).await;
        Self {
            client,
            audit,
            output_schemas: Mutex::new(None),
        }
    }

    /// Calls `tool` with `arguments` (a JSON object).
    pub async fn call(&self, tool: &'static str, arguments: Value) -> CallToolResult {
        let result = self
            .client
            .call_tool(request(tool, arguments))
            .await
            .expect("the call reaches the server");
        if let Some(structured) = &result.structured_content
            && result.is_error != Some(true)
        {
            let schema = self.output_schema(tool).await;
            if let Err(mismatch) = schema::check(&schema, structured) {
                panic!("{tool} answered outside its published output schema: {mismatch}");
            }
        }
        result
    }

    /// `tool`'s published output schema.
    async fn output_schema(&self, tool: &str) -> Value {
        let cached = self
            .output_schemas
            .lock()
            .expect("not poisoned")
            .as_ref()
            .map(|schemas| schemas.get(tool).cloned());
        let schema = match cached {
            Some(schema) => schema,
            None => {
                let schemas: HashMap<String, Value> = self
                    .client
                    .list_all_tools()
                    .await
                    .expect("tools/list")
                    .into_iter()
                    .filter_map(|tool| {
                        let schema = tool.output_schema?;
                        Some((tool.name.to_string(), Value::Object((*schema).clone())))
                    })
                    .collect();
                let schema = schemas.get(tool).cloned();
                *self.output_schemas.lock().expect("not poisoned") = Some(schemas);
                schema
            }
        };
        schema.unwrap_or_else(|| panic!("{tool} sent structured content without an output schema"))
    }

    /// The names of the tools offered, sorted.
    pub async fn tool_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .client
            .list_all_tools()
            .await
            .expect("tools/list")
            .into_iter()
            .map(|tool| tool.name.to_string())
            .collect();
        names.sort();
        names
    }
}

/// An emulator on the system clock holding the `demo` fixture set, imported
/// the way `serve` imports it; returns the emulator, a client and the
/// datastore ID. The S3 folder lives in `dir`.
/// Creates a datastore named `name` and waits until it is ACTIVE.
pub async fn create_active_datastore(sdk: &Client, name: &str) -> String {
    let id = sdk
        .create_datastore()
        .datastore_name(name)
        .send()
        .await
        .expect("datastore created")
        .datastore_id()
        .to_owned();
    for _ in 0..200 {
        let got = sdk
            .get_datastore()
            .datastore_id(&id)
            .send()
            .await
            .expect("datastore read");
        let status = got
            .datastore_properties()
            .map(|p| p.datastore_status().clone());
        if status == Some(aws_sdk_medicalimaging::types::DatastoreStatus::Active) {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("datastore {name} did not become ACTIVE in 10 s");
}

/// The manifest of the demo set [`demo_emulator`] imported.
pub fn demo_manifest(emulator: &Emulator) -> serde_json::Value {
    let path = emulator
        .s3_root()
        .join(healthimaging_mcp::seed::BUCKET)
        .join("demo/manifest.json");
    serde_json::from_slice(&std::fs::read(&path).expect("the demo manifest"))
        .expect("the demo manifest is JSON")
}

pub async fn demo_emulator(dir: &std::path::Path) -> (Emulator, Client, String) {
    let config = EmulatorConfig::default()
        .with_seed(7)
        .with_transition_delay(Duration::ZERO)
        .with_s3_root(dir.join("s3"));
    let emulator = Emulator::start(config).await.expect("emulator starts");
    let sdk = emulator_client(emulator.url(), fast_tuning());
    let seeded = healthimaging_mcp::seed::seed(
        &sdk,
        emulator.s3_root(),
        healthimaging_fixtures::FixtureSet::Demo,
        1,
    )
    .await
    .expect("the demo set imports");
    (emulator, sdk, seeded.datastore_id)
}

/// An emulator on the system clock (writes settle at once) holding the `ci`
/// fixture set imported into one datastore; returns the emulator, a client
/// and the datastore ID. The S3 folder lives in `dir`.
pub async fn ci_emulator(dir: &std::path::Path) -> (Emulator, Client, String) {
    let config = EmulatorConfig::default()
        .with_seed(9)
        .with_transition_delay(Duration::ZERO)
        .with_s3_root(dir.join("s3"));
    let emulator = Emulator::start(config).await.expect("emulator starts");
    write_fixtures(
        healthimaging_fixtures::FixtureSet::Ci,
        emulator.s3_root(),
        "fixtures",
        "ci",
    );
    let sdk = emulator_client(emulator.url(), fast_tuning());
    let ds = sdk
        .create_datastore()
        .datastore_name("ci")
        .send()
        .await
        .expect("datastore created")
        .datastore_id;
    let job = sdk
        .start_dicom_import_job()
        .datastore_id(&ds)
        .data_access_role_arn("arn:aws:iam::123456789012:role/ImportRole")
        .input_s3_uri("s3://fixtures/ci/dicom/")
        .output_s3_uri("s3://fixtures/out/")
        .send()
        .await
        .expect("import started");
    wait_for_job(&sdk, &ds, &job.job_id).await;
    (emulator, sdk, ds)
}

/// `value` with every resource ID (32 lowercase letters and digits) and
/// every time replaced by a placeholder, for snapshots.
pub fn redacted(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(redact_text(s)),
        Value::Array(items) => Value::Array(items.iter().map(redacted).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if k.ends_with("_at") || k == "confirmation_token" {
                        Value::String("[redacted]".into())
                    } else {
                        redacted(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn redact_text(text: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() == 32 {
            out.push_str("[id]");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() || c.is_ascii_lowercase() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// A `tools/call` request for `tool` with `arguments` (a JSON object), for
/// calls made straight through a client.
pub fn request(tool: &'static str, arguments: Value) -> CallToolRequestParams {
    match arguments {
        Value::Object(map) => CallToolRequestParams::new(tool).with_arguments(map),
        other => panic!("tool arguments must be an object, not {other}"),
    }
}

/// The structured content of a successful tool result.
pub fn structured(result: &CallToolResult) -> Value {
    assert_ne!(
        result.is_error,
        Some(true),
        "the tool failed: {}",
        text(result)
    );
    result
        .structured_content
        .clone()
        .expect("structured content")
}

/// The text of a tool result's first content block.
pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .first()
        .and_then(|block| block.as_text())
        .map(|t| t.text.clone())
        .unwrap_or_default()
}
