//! A fixture set loading behind a server that already answers.
//!
//! On a first start `serve` generates and imports its fixture set, seconds of
//! work; the server answers `initialize` and `tools/list` at once and the load
//! runs beside it. The datastore and its import job are visible from the
//! start. A tool call that concerns the loading datastore waits for the load
//! (at most the configured time) and, if it is still not done, says so and
//! about how long it will take, instead of answering from half a datastore.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use healthimaging_emulator::Service;
use healthimaging_fixtures::FixtureSet;
use tokio::sync::watch;

use crate::errors::ToolError;
use crate::seed::{Observer, SeedError, Seeded};

/// Shares of a first load's time: generating the files, then importing them
/// (measured on the demo set: 1.1 s and 0.7 s in a release build).
const GENERATION_SHARE: f64 = 0.6;

/// Tools that answer about datastores and jobs, never from the image sets a
/// load is still writing: they run at once.
const UNGATED: &[&str] = &[
    "list_datastores",
    "get_datastore",
    "create_datastore",
    "list_dicom_import_jobs",
    "get_dicom_import_job",
    "list_dicom_export_jobs",
    "get_dicom_export_job",
    "cancel_dicom_export_job",
];

/// Where a load is.
#[derive(Debug, Clone)]
enum Phase {
    /// Looking for, or creating, the datastore.
    Starting,
    /// Writing the set's files.
    Generating { done: usize, patients: usize },
    /// The import job runs.
    Importing {
        job_id: String,
        image_sets: usize,
        since: Instant,
    },
    /// The datastore holds the set.
    Ready(Seeded),
    /// The load failed.
    Failed(String),
}

#[derive(Debug)]
struct State {
    phase: Phase,
    datastore_id: Option<String>,
    /// When the load ended.
    ended: Option<Instant>,
}

/// One fixture set's load, shared by the server and the task doing it.
#[derive(Debug)]
pub struct Loading {
    set: FixtureSet,
    started: Instant,
    state: Mutex<State>,
    /// Bumped at every step of the load, to wake waiting calls.
    steps: watch::Sender<u64>,
    /// The emulator the set goes into, asked how far its import job got.
    service: Arc<Service>,
}

/// What a tool call must wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing: call the tool.
    Nothing,
    /// The datastore to exist (a few milliseconds after the start).
    Datastore,
    /// The whole load.
    Load,
}

/// How a gated call goes on.
#[derive(Debug)]
pub enum Gate {
    /// The load is over (or the call does not concern it): call the tool.
    Proceed,
    /// The load is still running, or failed: answer this instead.
    Refuse(ToolError),
}

impl Loading {
    /// A load of `set` into `service`, starting now.
    pub fn new(set: FixtureSet, service: Arc<Service>) -> Arc<Self> {
        Arc::new(Self {
            set,
            started: Instant::now(),
            state: Mutex::new(State {
                phase: Phase::Starting,
                datastore_id: None,
                ended: None,
            }),
            steps: watch::Sender::new(0),
            service,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the load's outcome and wakes every waiting call.
    pub fn finish(&self, outcome: &Result<Seeded, SeedError>) {
        {
            let mut state = self.state();
            state.phase = match outcome {
                Ok(seeded) => {
                    state.datastore_id = Some(seeded.datastore_id.clone());
                    Phase::Ready(seeded.clone())
                }
                Err(error) => Phase::Failed(error.to_string()),
            };
            state.ended = Some(Instant::now());
        }
        self.step();
    }

    fn step(&self) {
        self.steps.send_modify(|n| *n += 1);
    }

    /// The set being loaded.
    pub fn set(&self) -> FixtureSet {
        self.set
    }

    /// Whether the load has ended, either way.
    pub fn settled(&self) -> bool {
        self.state().ended.is_some()
    }

    /// How much of the load is done, 0 to 1, when that can be told.
    fn fraction(&self, phase: &Phase) -> Option<f64> {
        match phase {
            Phase::Starting => Some(0.0),
            Phase::Generating { done, patients } => {
                Some(GENERATION_SHARE * ratio(*done, *patients))
            }
            Phase::Importing {
                job_id, image_sets, ..
            } => {
                let committed = self
                    .service
                    .store()
                    .read(|r| r.job_progress(job_id))
                    .ok()
                    .flatten()
                    .and_then(|p| p.parse::<usize>().ok())
                    .unwrap_or(0);
                Some(GENERATION_SHARE + (1.0 - GENERATION_SHARE) * ratio(committed, *image_sets))
            }
            Phase::Ready(_) | Phase::Failed(_) => None,
        }
    }

    /// The load's state in words, with what is left, for a person or a model.
    fn progress(&self) -> (String, Option<f64>, Option<Duration>) {
        let phase = self.state().phase.clone();
        let fraction = self.fraction(&phase);
        let elapsed = self.started.elapsed();
        // What is left, from the pace so far; unknown until some is done.
        let left = fraction
            .filter(|f| *f >= 0.05)
            .map(|f| Duration::from_secs_f64(elapsed.as_secs_f64() * (1.0 - f) / f));
        let words = match &phase {
            Phase::Starting => "creating the datastore".to_owned(),
            Phase::Generating { done, patients } => {
                format!("generating the synthetic patients' files ({done} of {patients} patients)")
            }
            Phase::Importing {
                job_id,
                image_sets,
                since,
            } => format!(
                "importing them with import job {job_id} ({image_sets} image sets; running for {:.1} s)",
                since.elapsed().as_secs_f64()
            ),
            Phase::Ready(seeded) => format!("loaded: {} image sets", seeded.image_sets),
            Phase::Failed(message) => format!("failed: {message}"),
        };
        (words, fraction, left)
    }

    /// One sentence for the server's instructions and the start message.
    pub fn describe(&self) -> String {
        let name = self.set.name();
        let (id, phase) = {
            let state = self.state();
            (state.datastore_id.clone(), state.phase.clone())
        };
        let id = id.map_or_else(String::new, |id| format!(" ({id})"));
        match phase {
            Phase::Ready(seeded) => format!(
                "datastore `{name}`{id} holds {} image sets of synthetic patients",
                seeded.image_sets
            ),
            Phase::Failed(message) => format!(
                "datastore `{name}`{id} was to hold the {name} set of synthetic patients, but loading it failed: {message}"
            ),
            _ => {
                let (words, _, left) = self.progress();
                format!(
                    "datastore `{name}`{id} is loading the {name} set of synthetic patients ({words}{}); calls that read it wait for it",
                    left.map_or_else(String::new, |l| format!(", about {} s left", secs(l)))
                )
            }
        }
    }

    /// What the tool `tool` called with `arguments` must wait for: every call
    /// for the datastore to exist (ask again after), then calls that name it
    /// for the load, except the datastore and job tools, which answer from
    /// what exists. A failed load is said to the calls that name it.
    pub fn need(
        &self,
        tool: &str,
        arguments: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Need {
        let state = self.state();
        if matches!(state.phase, Phase::Ready(_)) {
            return Need::Nothing;
        }
        let failed = matches!(state.phase, Phase::Failed(_));
        match &state.datastore_id {
            // A few milliseconds after the start; then ask again.
            None if !failed => Need::Datastore,
            None => Need::Nothing,
            Some(_) if UNGATED.contains(&tool) => Need::Nothing,
            Some(id) => {
                if arguments.is_some_and(|arguments| arguments.values().any(|v| mentions(v, id))) {
                    Need::Load
                } else {
                    Need::Nothing
                }
            }
        }
    }

    /// Waits, at most `limit`, until the datastore exists or the load ended.
    pub async fn wait_for_datastore(&self, limit: Duration) {
        let mut steps = self.steps.subscribe();
        let _ = tokio::time::timeout(limit, async {
            loop {
                {
                    let state = self.state();
                    if state.datastore_id.is_some() || state.ended.is_some() {
                        return;
                    }
                }
                if steps.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
    }

    /// Waits for the load, at most `limit`, calling `tick` about once a
    /// second with the progress (0 to 1) and a sentence.
    pub async fn wait<F, Fut>(&self, limit: Duration, mut tick: F) -> Gate
    where
        F: FnMut(f64, String) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let deadline = tokio::time::Instant::now() + limit;
        let mut steps = self.steps.subscribe();
        loop {
            steps.borrow_and_update();
            if self.settled() {
                break;
            }
            let (words, fraction, _) = self.progress();
            tick(
                fraction.unwrap_or(0.0),
                format!("The {} set is loading: {words}", self.set.name()),
            )
            .await;
            let next = (tokio::time::Instant::now() + Duration::from_secs(1)).min(deadline);
            if tokio::time::timeout_at(next, steps.changed())
                .await
                .is_err()
                && tokio::time::Instant::now() >= deadline
            {
                break;
            }
        }
        let phase = self.state().phase.clone();
        let name = self.set.name();
        match phase {
            Phase::Ready(_) => Gate::Proceed,
            Phase::Failed(message) => Gate::Refuse(ToolError::new(
                "FixturesFailed",
                format!("Loading the {name} set of synthetic patients failed: {message}"),
                "Other datastores work; restart the server to load the set again, and report the message if it repeats.",
            )),
            _ => {
                let (words, _, left) = self.progress();
                let left = left.map_or_else(
                    || "a few seconds".to_owned(),
                    |l| format!("about {} s", secs(l)),
                );
                Gate::Refuse(ToolError::new(
                    "FixturesLoading",
                    format!(
                        "The {name} set of synthetic patients is still loading into datastore `{name}`: {words}; {left} left, {:.0} s since the server started",
                        self.started.elapsed().as_secs_f64()
                    ),
                    format!(
                        "Call again in {left}. list_datastores and get_dicom_import_job answer meanwhile."
                    ),
                ))
            }
        }
    }

    /// How long the load took, once it ended.
    pub fn took(&self) -> Option<Duration> {
        self.state().ended.map(|end| end - self.started)
    }
}

impl Observer for Loading {
    fn datastore(&self, datastore_id: &str) {
        self.state().datastore_id = Some(datastore_id.to_owned());
        self.step();
    }

    fn generated(&self, done: usize, patients: usize) {
        self.state().phase = Phase::Generating { done, patients };
        self.step();
    }

    fn importing(&self, job_id: &str, image_sets: usize) {
        self.state().phase = Phase::Importing {
            job_id: job_id.to_owned(),
            image_sets,
            since: Instant::now(),
        };
        self.step();
    }
}

fn ratio(done: usize, total: usize) -> f64 {
    if total == 0 {
        0.0
    } else {
        (done as f64 / total as f64).clamp(0.0, 1.0)
    }
}

/// Whole seconds, at least one.
fn secs(duration: Duration) -> u64 {
    duration.as_secs_f64().ceil().max(1.0) as u64
}

/// Whether `value` names `id` anywhere (an argument or an ARN inside one).
fn mentions(value: &serde_json::Value, id: &str) -> bool {
    match value {
        serde_json::Value::String(text) => text.contains(id),
        serde_json::Value::Array(items) => items.iter().any(|v| mentions(v, id)),
        serde_json::Value::Object(map) => map.values().any(|v| mentions(v, id)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> Arc<Service> {
        Service::start(healthimaging_emulator::EmulatorConfig::default()).unwrap()
    }

    fn arguments(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        value.as_object().unwrap().clone()
    }

    #[tokio::test]
    async fn calls_naming_the_loading_datastore_wait_and_others_do_not() {
        let loading = Loading::new(FixtureSet::Demo, service());
        // Before the datastore's ID is known, every call waits for it.
        assert_eq!(loading.need("search_image_sets", None), Need::Datastore);
        assert_eq!(loading.need("list_datastores", None), Need::Datastore);
        let waiting = {
            let loading = loading.clone();
            tokio::spawn(async move { loading.wait_for_datastore(Duration::from_secs(60)).await })
        };
        loading.datastore("a".repeat(32).as_str());
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the datastore's creation ends the wait")
            .unwrap();
        let named = arguments(serde_json::json!({"datastore_id": "a".repeat(32)}));
        let other = arguments(serde_json::json!({"datastore_id": "b".repeat(32)}));
        let arn = arguments(serde_json::json!({
            "resource_arn": format!("arn:aws:medical-imaging:us-east-1:123456789012:datastore/{}", "a".repeat(32))
        }));
        assert_eq!(loading.need("search_image_sets", Some(&named)), Need::Load);
        assert_eq!(
            loading.need("list_tags_for_resource", Some(&arn)),
            Need::Load
        );
        assert_eq!(
            loading.need("search_image_sets", Some(&other)),
            Need::Nothing
        );
        assert_eq!(
            loading.need("get_dicom_import_job", Some(&named)),
            Need::Nothing
        );
        loading.finish(&Ok(Seeded {
            datastore_id: "a".repeat(32),
            reused: false,
            image_sets: 3,
        }));
        assert_eq!(
            loading.need("search_image_sets", Some(&named)),
            Need::Nothing
        );
        assert!(
            loading.describe().contains("holds 3 image sets"),
            "{}",
            loading.describe()
        );
    }

    #[tokio::test]
    async fn a_wait_ends_with_the_load_or_says_what_is_left() {
        let loading = Loading::new(FixtureSet::Demo, service());
        loading.datastore("a".repeat(32).as_str());
        loading.generated(6, 12);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let described = loading.describe();
        assert!(
            described.contains("is loading the demo set")
                && described.contains("6 of 12 patients")
                && described.contains(" s left"),
            "{described}"
        );
        let mut ticks = Vec::new();
        let gate = loading
            .wait(Duration::from_millis(30), |fraction, words| {
                ticks.push((fraction, words));
                async {}
            })
            .await;
        let Gate::Refuse(error) = gate else {
            panic!("a load still running must refuse");
        };
        assert_eq!(error.code, "FixturesLoading");
        assert!(
            error.message.contains("6 of 12 patients"),
            "{}",
            error.message
        );
        assert!(error.message.contains(" s left"), "{}", error.message);
        assert!(
            error.advice.starts_with("Call again in about"),
            "{}",
            error.advice
        );
        assert!((ticks[0].0 - 0.3).abs() < 1e-9, "{ticks:?}");

        let waiting = {
            let loading = loading.clone();
            tokio::spawn(
                async move { loading.wait(Duration::from_secs(60), |_, _| async {}).await },
            )
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        loading.finish(&Ok(Seeded {
            datastore_id: "a".repeat(32),
            reused: false,
            image_sets: 3,
        }));
        let gate = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the wait ends when the load does")
            .unwrap();
        assert!(matches!(gate, Gate::Proceed));
        assert!(loading.took().is_some());
    }

    #[tokio::test]
    async fn a_failed_load_is_said_to_every_call_that_concerns_it() {
        let loading = Loading::new(FixtureSet::Ci, service());
        loading.datastore("c".repeat(32).as_str());
        loading.finish(&Err(SeedError::Import {
            set: "ci",
            message: "disk full".into(),
        }));
        let Gate::Refuse(error) = loading.wait(Duration::ZERO, |_, _| async {}).await else {
            panic!("a failed load must refuse");
        };
        assert_eq!(error.code, "FixturesFailed");
        assert!(error.message.contains("disk full"));
        assert!(loading.describe().contains("loading it failed: "));
        // Calls that name it keep hearing it; others and datastore tools answer.
        let named = arguments(serde_json::json!({"datastore_id": "c".repeat(32)}));
        assert_eq!(loading.need("search_image_sets", Some(&named)), Need::Load);
        assert_eq!(loading.need("search_image_sets", None), Need::Nothing);
        assert_eq!(loading.need("list_datastores", Some(&named)), Need::Nothing);
    }
}
