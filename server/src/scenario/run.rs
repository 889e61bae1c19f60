//! Running scenarios through the MCP protocol: against this server on the
//! embedded emulator (the default), on a standalone emulator
//! (`--endpoint-url`), or against any MCP server on stdio
//! (`--server-command`), printing a transcript as it goes.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

use super::{Context, Expectation, Level, Scenario, json_of};
use crate::audit::AuditLog;
use crate::dicomweb::DicomWeb;
use crate::permissions::Grant;
use crate::sdk::Tuning;
use crate::server::{HealthImagingServer, ServerOptions};

/// Where scenarios run.
#[derive(Debug, Clone)]
pub enum Backend {
    /// This server, in this process, on a fresh embedded emulator per
    /// scenario holding the scenario's fixture set.
    Embedded,
    /// This server, in this process, on a standalone emulator (or any
    /// compatible endpoint) holding the fixture set in a datastore named
    /// after it.
    Endpoint(String),
    /// Any MCP server on stdio, started with this command line.
    Command(Vec<String>),
}

/// How scenarios run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where.
    pub backend: Backend,
    /// Let write and delete scenarios run on data that is not synthetic.
    pub allow_writes_on_real_data: bool,
    /// Print the transcript on stdout while running.
    pub print: bool,
    /// On the embedded emulator, restore the imported fixture set from the
    /// user's cache folder (kept by the first run, as `serve` does) instead
    /// of importing it for every scenario.
    pub fixture_cache: bool,
}

/// The embedded emulator's seed for scenarios: the same IDs every run.
const EMULATOR_SEED: u64 = 7;

/// What one step did.
#[derive(Debug, Clone)]
pub struct StepRecord {
    /// The narration.
    pub narration: String,
    /// The tool called, or `fault` for an injected fault.
    pub tool: String,
    /// The arguments sent, resolved.
    pub arguments: Value,
    /// Whether the call was a tool error.
    pub is_error: bool,
    /// The answer's text.
    pub text: String,
    /// The structured answer.
    pub structured: Option<Value>,
    /// PNG images of the answer, base64.
    pub images: Vec<String>,
    /// How long the call took.
    pub duration: Duration,
    /// Expectations that failed, with why.
    pub failures: Vec<String>,
    /// Expectations that held.
    pub passed: Vec<String>,
}

/// What one scenario did.
#[derive(Debug, Clone)]
pub struct ScenarioRecord {
    /// The file name without `.toml`.
    pub name: String,
    /// The title.
    pub title: String,
    /// The story.
    pub story: String,
    /// The level.
    pub level: Level,
    /// The fixture set.
    pub fixtures: String,
    /// The steps run (up to the first that could not run).
    pub steps: Vec<StepRecord>,
    /// Why the scenario could not run to its end, if it could not.
    pub error: Option<String>,
    /// How long it took, set-up included.
    pub duration: Duration,
}

impl ScenarioRecord {
    /// Whether every step ran and every expectation held.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.steps.iter().all(|s| s.failures.is_empty())
    }
}

/// A connected MCP session and what belongs to it.
struct Session {
    client: RunningService<RoleClient, ()>,
    /// The emulator's control API, where there is one.
    control: Option<(DicomWeb, String)>,
    fixtures: Value,
    datastore: String,
    synthetic: bool,
    /// How the embedded emulator got its fixture set, to tell the reader.
    loaded: Option<String>,
    /// Kept alive as long as the session: the emulator, the state folder,
    /// the child process.
    _hold: Vec<Box<dyn std::any::Any + Send>>,
}

/// Runs one scenario.
pub async fn run(scenario: &Scenario, options: &Options) -> ScenarioRecord {
    let started = Instant::now();
    let mut record = ScenarioRecord {
        name: scenario.name(),
        title: scenario.title.clone(),
        story: scenario
            .story
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
        level: scenario.level,
        fixtures: scenario.fixtures.clone(),
        steps: Vec::new(),
        error: None,
        duration: Duration::ZERO,
    };
    if options.print {
        println!(
            "\n━━ {} · {} ({}, {} set)",
            record.name,
            record.title,
            record.level.name(),
            record.fixtures
        );
        for line in textwrap(&record.story, 96) {
            println!("   {line}");
        }
    }
    let session = match connect(scenario, options).await {
        Ok(session) => {
            if let (true, Some(loaded)) = (options.print, &session.loaded) {
                println!("   ({loaded})");
            }
            session
        }
        Err(error) => {
            if options.print {
                println!("   ✗ could not start: {error}");
            }
            record.error = Some(error);
            record.duration = started.elapsed();
            return record;
        }
    };
    if !session.synthetic && scenario.level > Level::Read && !options.allow_writes_on_real_data {
        let error = format!(
            "this scenario {}s, and the backend is not known to hold synthetic data only; pass --allow-writes-on-real-data to run it anyway",
            scenario.level.name()
        );
        if options.print {
            println!("   ✗ refused: {error}");
        }
        record.error = Some(error);
        record.duration = started.elapsed();
        return record;
    }
    let mut context = Context {
        fixtures: session.fixtures.clone(),
        datastore: session.datastore.clone(),
        ..Context::default()
    };
    for (n, step) in scenario.steps.iter().enumerate() {
        if options.print {
            println!(" {:>2}. {}", n + 1, step.narration.trim());
        }
        let mut outcome = run_step(&session, step, &context).await;
        if let Some(seconds) = step.retry_for_secs {
            let deadline = Instant::now() + Duration::from_secs(seconds);
            while outcome.as_ref().is_ok_and(|r| !r.failures.is_empty())
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
                outcome = run_step(&session, step, &context).await;
            }
        }
        let step_record = match outcome {
            Ok(step_record) => step_record,
            Err(error) => {
                if options.print {
                    println!("    ✗ {error}");
                }
                record.error = Some(format!("step {}: {error}", n + 1));
                break;
            }
        };
        if options.print {
            print_step(&step_record);
        }
        if let (Some(id), Some(structured)) = (&step.id, &step_record.structured) {
            context.steps.insert(id.clone(), structured.clone());
        } else if let Some(id) = &step.id {
            context
                .steps
                .insert(id.clone(), json!({"text": step_record.text}));
        }
        record.steps.push(step_record);
    }
    let _ = session.client.cancel().await;
    record.duration = started.elapsed();
    if options.print {
        let failed: usize = record.steps.iter().map(|s| s.failures.len()).sum();
        println!(
            "   {} {} in {:.1} s",
            if record.passed() {
                "✓ passed"
            } else {
                "✗ FAILED"
            },
            if failed > 0 {
                format!("({failed} expectation(s) failed)")
            } else {
                format!("({} steps)", record.steps.len())
            },
            record.duration.as_secs_f64()
        );
    }
    record
}

async fn run_step(
    session: &Session,
    step: &super::Step,
    context: &Context,
) -> Result<StepRecord, String> {
    let narration = step.narration.trim().to_owned();
    if let Some(fault) = &step.fault {
        let Some((control, base)) = &session.control else {
            return Err(
                "fault steps need the emulator's control API (the embedded emulator or --endpoint-url)"
                    .to_owned(),
            );
        };
        let body = json_of(&toml::Value::Table(fault.clone()));
        // `{ clear = true }` removes every rule; anything else adds one.
        let clear = body.get("clear") == Some(&Value::Bool(true));
        let started = Instant::now();
        let response = control
            .send(
                if clear { "DELETE" } else { "POST" },
                &format!("{base}/_emulator/faults"),
                &[("content-type", "application/json")],
                if clear {
                    Bytes::new()
                } else {
                    Bytes::from(body.to_string())
                },
                false,
            )
            .await
            .map_err(|e| format!("the fault could not be changed: {e}"))?;
        return Ok(StepRecord {
            narration,
            tool: "fault".to_owned(),
            arguments: body,
            is_error: false,
            text: String::from_utf8_lossy(&response.body).into_owned(),
            structured: serde_json::from_slice(&response.body).ok(),
            images: Vec::new(),
            duration: started.elapsed(),
            failures: Vec::new(),
            passed: Vec::new(),
        });
    }
    let tool = step.tool.clone().unwrap_or_default();
    let arguments = context.resolve(&json_of(&toml::Value::Table(step.arguments.clone())))?;
    let Value::Object(map) = arguments.clone() else {
        return Err("arguments must be a table".to_owned());
    };
    let started = Instant::now();
    let result: CallToolResult = session
        .client
        .call_tool(CallToolRequestParams::new(tool.clone()).with_arguments(map))
        .await
        .map_err(|e| format!("the call of {tool} failed at the protocol level: {e}"))?;
    let duration = started.elapsed();
    let text = result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n");
    let images: Vec<String> = result
        .content
        .iter()
        .filter_map(|block| block.as_image())
        .filter(|image| image.mime_type == "image/png")
        .map(|image| image.data.clone())
        .collect();
    let is_error = result.is_error == Some(true);
    let structured = result.structured_content.clone();
    let mut record = StepRecord {
        narration,
        tool,
        arguments,
        is_error,
        text,
        structured,
        images,
        duration,
        failures: Vec::new(),
        passed: Vec::new(),
    };
    for expectation in &step.expect {
        match check(expectation, &record, context) {
            Ok(said) => record.passed.push(said),
            Err(why) => record.failures.push(why),
        }
    }
    if step.expect.iter().all(|e| e.is_error.is_none()) && record.is_error {
        record.failures.push(format!(
            "the call failed unexpectedly: {}",
            first_line(&record.text)
        ));
    }
    Ok(record)
}

/// Checks one expectation; says what held, or why it did not.
fn check(
    expectation: &Expectation,
    step: &StepRecord,
    context: &Context,
) -> Result<String, String> {
    if let Some(wanted) = expectation.is_error {
        if step.is_error != wanted {
            return Err(if wanted {
                "the call was expected to fail, and succeeded".to_owned()
            } else {
                format!("the call failed: {}", first_line(&step.text))
            });
        }
        if expectation.path.is_none() && expectation.text_contains.is_none() {
            return Ok(if wanted {
                "refused, as expected".to_owned()
            } else {
                "succeeded".to_owned()
            });
        }
    }
    if let Some(needle) = &expectation.text_contains {
        let needle = text_of(&context.resolve(&Value::String(needle.clone()))?);
        if !step.text.contains(&needle) {
            return Err(format!("the text does not contain {needle:?}"));
        }
        if expectation.path.is_none() {
            return Ok(format!("text contains {needle:?}"));
        }
    }
    if let Some(wanted) = expectation.images {
        if step.images.len() != wanted {
            return Err(format!("{} image(s), not {wanted}", step.images.len()));
        }
        if expectation.path.is_none() {
            return Ok(format!("{wanted} image(s)"));
        }
    }
    let Some(path) = &expectation.path else {
        return Ok("checked".to_owned());
    };
    let empty = Value::Null;
    let answer = step.structured.as_ref().unwrap_or(&empty);
    let Some(found) = answer.pointer(path) else {
        return Err(format!("the answer has nothing at {path}"));
    };
    if let Some(wanted) = &expectation.equals {
        let wanted = context.resolve(&json_of(wanted))?;
        let same = match (found, &wanted) {
            (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
            (a, b) => a == b,
        };
        if !same {
            return Err(format!("{path} is {found}, not {wanted}"));
        }
        return Ok(format!("{path} = {wanted}"));
    }
    if let Some(needle) = &expectation.contains {
        let needle = text_of(&context.resolve(&Value::String(needle.clone()))?);
        if !text_of(found).contains(&needle) {
            return Err(format!(
                "{path} ({}) does not contain {needle:?}",
                clip(&text_of(found), 120)
            ));
        }
        return Ok(format!("{path} contains {needle:?}"));
    }
    let size = match found {
        Value::Array(items) => Some(items.len()),
        Value::Object(map) => Some(map.len()),
        _ => None,
    };
    if let Some(wanted) = expectation.count {
        return match size {
            Some(n) if n == wanted => Ok(format!("{path} has {wanted}")),
            Some(n) => Err(format!("{path} has {n}, not {wanted}")),
            None => Err(format!("{path} is not a list")),
        };
    }
    if let Some(least) = expectation.min_count {
        return match size {
            Some(n) if n >= least => Ok(format!("{path} has {n} (at least {least})")),
            Some(n) => Err(format!("{path} has {n}, fewer than {least}")),
            None => Err(format!("{path} is not a list")),
        };
    }
    if let Some(fields) = &expectation.each {
        let Some(items) = found.as_array() else {
            return Err(format!("{path} is not a list"));
        };
        if items.is_empty() {
            return Err(format!("{path} is empty"));
        }
        for (key, wanted) in fields {
            let wanted = context.resolve(&json_of(wanted))?;
            if let Some((n, item)) = items
                .iter()
                .enumerate()
                .find(|(_, item)| item.get(key) != Some(&wanted))
            {
                return Err(format!(
                    "{path}/{n}/{key} is {}, not {wanted}",
                    item.get(key).unwrap_or(&Value::Null)
                ));
            }
        }
        return Ok(format!(
            "each of the {} in {path} has {}",
            items.len(),
            json_of(&toml::Value::Table(fields.clone()))
        ));
    }
    if let Some(pattern) = &expectation.matches {
        let regex = regex::Regex::new(pattern).map_err(|e| e.to_string())?;
        let text = text_of(found);
        if !regex.is_match(&text) {
            return Err(format!(
                "{path} ({}) does not match {pattern:?}",
                clip(&text, 120)
            ));
        }
        return Ok(format!("{path} matches {pattern:?}"));
    }
    Ok("checked".to_owned())
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn first_line(text: &str) -> String {
    clip(text.lines().next().unwrap_or(""), 300)
}

fn clip(text: &str, most: usize) -> String {
    if text.chars().count() <= most {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(most).collect();
        format!("{cut}…")
    }
}

fn print_step(step: &StepRecord) {
    let arguments = clip(&step.arguments.to_string(), 160);
    println!("    → {} {arguments}", step.tool);
    let answer = step
        .structured
        .as_ref()
        .and_then(|s| s.get("summary"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| first_line(&step.text));
    println!(
        "    ← {}{} [{} ms]{}",
        if step.is_error { "error: " } else { "" },
        clip(&answer, 200),
        step.duration.as_millis(),
        if step.images.is_empty() {
            String::new()
        } else {
            format!(" ({} image(s))", step.images.len())
        }
    );
    for said in &step.passed {
        println!("    ✓ {said}");
    }
    for why in &step.failures {
        println!("    ✗ {why}");
    }
}

fn textwrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

fn grant_for(level: Level) -> Grant {
    Grant {
        write: level >= Level::Write,
        delete: level >= Level::Delete,
    }
}

fn set_of(name: &str) -> healthimaging_fixtures::FixtureSet {
    match name {
        "ci" => healthimaging_fixtures::FixtureSet::Ci,
        _ => healthimaging_fixtures::FixtureSet::Demo,
    }
}

/// The manifest the fixture set has when generated with the seed the
/// server's seeding uses, generated here (the files are thrown away).
fn generated_manifest(set: healthimaging_fixtures::FixtureSet) -> Result<Value, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let manifest = healthimaging_fixtures::write(
        &healthimaging_fixtures::Spec {
            set,
            seed: crate::seed::FIXTURE_SEED,
            patients: None,
        },
        dir.path(),
    )
    .map_err(|e| e.to_string())?;
    serde_json::to_value(&manifest).map_err(|e| e.to_string())
}

async fn connect(scenario: &Scenario, options: &Options) -> Result<Session, String> {
    let set = set_of(&scenario.fixtures);
    match &options.backend {
        Backend::Embedded => {
            let cache = options
                .fixture_cache
                .then(|| crate::seed::cache_dir(set, Some(EMULATOR_SEED)))
                .flatten();
            let restore = cache.clone().filter(|dir| crate::seed::cached(dir));
            let mut config = healthimaging_emulator::EmulatorConfig::default()
                .with_seed(EMULATOR_SEED)
                .with_transition_delay(Duration::ZERO);
            config.restore_snapshot = restore.as_ref().map(|dir| dir.join("store"));
            let service = healthimaging_emulator::Service::start(config)
                .map_err(|e| format!("the embedded emulator did not start: {e}"))?;
            if let Some(dir) = &restore {
                crate::seed::restore_s3(dir, service.s3.path())
                    .map_err(|e| format!("the cached fixture files could not be restored: {e}"))?;
            }
            let tuning = Tuning {
                initial_backoff: Duration::from_millis(50),
                ..Tuning::default()
            };
            let sdk = crate::backend::embedded_client(&service, tuning);
            let imported = Instant::now();
            let seeded = crate::seed::seed(&sdk, service.s3.path(), set, crate::seed::FIXTURE_SEED)
                .await
                .map_err(|e| format!("the fixtures could not be loaded: {e}"))?;
            let loaded = if restore.is_some() && seeded.reused {
                format!("the {} set restored from the cache", set.name())
            } else {
                format!(
                    "the {} set imported in {:.1} s",
                    set.name(),
                    imported.elapsed().as_secs_f64()
                )
            };
            if let Some(dir) = cache.filter(|_| !seeded.reused) {
                let service = service.clone();
                let saved =
                    tokio::task::spawn_blocking(move || crate::seed::save_cache(&service, &dir))
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|saved| saved);
                if let Err(error) = saved {
                    tracing::warn!(%error, "the fixture cache could not be written");
                }
            }
            let manifest_path = service.s3.path().join(format!(
                "healthimaging-fixtures/{}/manifest.json",
                set.name()
            ));
            let fixtures: Value = std::fs::read(&manifest_path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or("the fixture manifest could not be read")?;
            let state = tempfile::tempdir().map_err(|e| e.to_string())?;
            let dicomweb = crate::backend::embedded_dicomweb(&service, tuning);
            let control = (dicomweb.clone(), crate::in_process::ENDPOINT.to_owned());
            let server = HealthImagingServer::new(
                sdk,
                ServerOptions {
                    grant: grant_for(scenario.level),
                    confirmation_ttl: Duration::from_secs(300),
                    bulk_ceiling: crate::config::DEFAULT_BULK_CEILING,
                    audit: AuditLog::to_writer(std::io::sink()),
                    backend_description:
                        "the embedded HealthImaging emulator (synthetic data only)".to_owned(),
                    synthetic: true,
                    local_s3_root: Some(service.s3.path().to_owned()),
                    dicomweb: Some(dicomweb),
                    state_dir: Some(state.path().to_owned()),
                    export: Default::default(),
                    s3: None,
                    confirmation_key: None,
                    loading: None,
                    loading_wait: std::time::Duration::ZERO,
                },
            );
            let client = in_process(server).await?;
            Ok(Session {
                client,
                control: Some(control),
                fixtures,
                datastore: seeded.datastore_id,
                synthetic: true,
                loaded: Some(loaded),
                _hold: vec![Box::new(service), Box::new(state)],
            })
        }
        Backend::Endpoint(url) => {
            let tuning = Tuning::default();
            let sdk = crate::backend::emulator_client(url, tuning);
            let control = DicomWeb::for_endpoint(
                Some(url),
                "us-east-1",
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new(
                        "emulator",
                        "emulator",
                        None,
                        None,
                        "scenarios",
                    ),
                ),
                tuning,
            );
            let synthetic = control
                .get(&format!("{url}/_emulator/health"), "application/json")
                .await
                .is_ok_and(|r| r.status == 200);
            let state = tempfile::tempdir().map_err(|e| e.to_string())?;
            let server = HealthImagingServer::new(
                sdk,
                ServerOptions {
                    grant: grant_for(scenario.level),
                    confirmation_ttl: Duration::from_secs(300),
                    bulk_ceiling: crate::config::DEFAULT_BULK_CEILING,
                    audit: AuditLog::to_writer(std::io::sink()),
                    backend_description: format!("the endpoint {url}"),
                    synthetic,
                    local_s3_root: None,
                    dicomweb: Some(control.clone()),
                    state_dir: Some(state.path().to_owned()),
                    export: Default::default(),
                    s3: None,
                    confirmation_key: None,
                    loading: None,
                    loading_wait: std::time::Duration::ZERO,
                },
            );
            let client = in_process(server).await?;
            let datastore = datastore_named(&client, set.name()).await?;
            Ok(Session {
                client,
                control: synthetic.then(|| (control, url.trim_end_matches('/').to_owned())),
                fixtures: generated_manifest(set)?,
                datastore,
                synthetic,
                loaded: None,
                _hold: vec![Box::new(state)],
            })
        }
        Backend::Command(command) => {
            let (program, args) = command.split_first().ok_or("an empty --server-command")?;
            let mut child = tokio::process::Command::new(program)
                .args(args)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("{program} could not be started: {e}"))?;
            let stdin = child.stdin.take().ok_or("no stdin")?;
            let stdout = child.stdout.take().ok_or("no stdout")?;
            let client = tokio::time::timeout(Duration::from_secs(120), ().serve((stdout, stdin)))
                .await
                .map_err(|_| "the server did not answer initialize within 120 s".to_owned())?
                .map_err(|e| format!("the MCP session did not start: {e}"))?;
            let synthetic = client
                .peer_info()
                .and_then(|info| info.instructions.clone())
                .is_some_and(|i| i.contains("synthetic test data"));
            let datastore = datastore_named(&client, set.name()).await?;
            Ok(Session {
                client,
                control: None,
                fixtures: generated_manifest(set)?,
                datastore,
                synthetic,
                loaded: None,
                _hold: vec![Box::new(child)],
            })
        }
    }
}

async fn in_process(server: HealthImagingServer) -> Result<RunningService<RoleClient, ()>, String> {
    let (server_end, client_end) = tokio::io::duplex(1 << 22);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_end).await {
            let _ = running.waiting().await;
        }
    });
    ().serve(client_end)
        .await
        .map_err(|e| format!("the MCP session did not start: {e}"))
}

/// The ID of the datastore named `name`, found through `list_datastores`.
async fn datastore_named(
    client: &RunningService<RoleClient, ()>,
    name: &str,
) -> Result<String, String> {
    let listed = client
        .call_tool(CallToolRequestParams::new("list_datastores").with_arguments(Default::default()))
        .await
        .map_err(|e| format!("list_datastores failed: {e}"))?;
    let text = listed
        .structured_content
        .clone()
        .or_else(|| {
            listed
                .content
                .first()
                .and_then(|b| b.as_text())
                .and_then(|t| serde_json::from_str(&t.text).ok())
        })
        .unwrap_or(Value::Null);
    let found = find_datastore(&text, name);
    found.ok_or_else(|| {
        let said = listed
            .content
            .first()
            .and_then(|b| b.as_text())
            .map(|t| clip(&t.text, 300))
            .unwrap_or_default();
        format!("no datastore named {name:?} in list_datastores' answer ({said}): start the backend with the {name} fixture set (e.g. `healthimaging-mcp emulator --fixtures {name}`)")
    })
}

/// A datastore named `name` in a listing of any shape (this server's
/// `datastores[].datastore_name`, or the API's `datastoreSummaries`).
fn find_datastore(listing: &Value, name: &str) -> Option<String> {
    match listing {
        Value::Object(map) => {
            let named = ["datastore_name", "datastoreName"]
                .iter()
                .any(|k| map.get(*k).and_then(Value::as_str) == Some(name));
            if named {
                for key in ["datastore_id", "datastoreId"] {
                    if let Some(id) = map.get(key).and_then(Value::as_str) {
                        return Some(id.to_owned());
                    }
                }
            }
            map.values().find_map(|v| find_datastore(v, name))
        }
        Value::Array(items) => items.iter().find_map(|v| find_datastore(v, name)),
        _ => None,
    }
}

/// Runs every scenario in order and returns their records.
pub async fn run_all(scenarios: &[Scenario], options: &Options) -> Vec<ScenarioRecord> {
    let mut records = Vec::with_capacity(scenarios.len());
    for scenario in scenarios {
        records.push(run(scenario, options).await);
    }
    records
}

/// Shared so that reports can name the backend.
pub fn describe(backend: &Backend) -> String {
    match backend {
        Backend::Embedded => "healthimaging-mcp on the embedded emulator".to_owned(),
        Backend::Endpoint(url) => format!("healthimaging-mcp on {url}"),
        Backend::Command(command) => command.join(" "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datastores_are_found_by_name_in_either_spelling() {
        let ours = json!({"datastores": [{"datastore_name": "demo", "datastore_id": "a"}]});
        let api = json!({"datastoreSummaries": [{"datastoreName": "demo", "datastoreId": "b"}]});
        assert_eq!(find_datastore(&ours, "demo").as_deref(), Some("a"));
        assert_eq!(find_datastore(&api, "demo").as_deref(), Some("b"));
        assert_eq!(find_datastore(&ours, "ci"), None);
    }
}
