//! Seeding an emulator with a fixture set, through the API like any client.
//!
//! `serve` on the embedded emulator, and `emulator --fixtures SET`, make sure
//! a datastore named after the set exists and holds the set's image sets: the
//! set is generated into the emulator's S3 folder and imported with
//! StartDICOMImportJob, the same path every user's import takes. With a data
//! directory a later start finds the datastore full and does nothing.

use std::path::Path;
use std::time::Duration;

use aws_sdk_medicalimaging::Client;
use aws_sdk_medicalimaging::types::{DatastoreStatus, JobStatus};
use healthimaging_fixtures::{FixtureSet, Spec};

/// The bucket the fixture sets are written to.
pub const BUCKET: &str = "healthimaging-fixtures";
/// The fixture seed `serve` and `emulator --fixtures` load their sets with.
pub const FIXTURE_SEED: u64 = 1;

/// What seeding found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seeded {
    /// The datastore holding the set.
    pub datastore_id: String,
    /// Whether it was already there (nothing imported).
    pub reused: bool,
    /// Image sets in the datastore now.
    pub image_sets: usize,
}

/// Why seeding failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeedError {
    /// A call to the emulator failed.
    #[error("The emulator refused {operation}: {message}")]
    Call {
        /// The operation.
        operation: &'static str,
        /// What it said.
        message: String,
    },
    /// The fixtures could not be written.
    #[error(transparent)]
    Fixtures(#[from] healthimaging_fixtures::Error),
    /// The import ended FAILED or took too long.
    #[error("The import of the {set} fixture set did not complete: {message}")]
    Import {
        /// The set.
        set: &'static str,
        /// Why.
        message: String,
    },
}

fn call<E: std::fmt::Display>(operation: &'static str) -> impl FnOnce(E) -> SeedError {
    move |error| SeedError::Call {
        operation,
        message: error.to_string(),
    }
}

/// What a seeding reports as it goes (for a server that answers while its
/// fixture set loads).
pub trait Observer: Send + Sync {
    /// The datastore the set goes into exists.
    fn datastore(&self, _datastore_id: &str) {}
    /// `done` of `patients` patients' files are generated.
    fn generated(&self, _done: usize, _patients: usize) {}
    /// The import job started; it will commit `image_sets` image sets.
    fn importing(&self, _job_id: &str, _image_sets: usize) {}
}

/// An observer that does nothing with what it hears.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Observer for Quiet {}

/// Makes sure the datastore named after `set` holds the set.
pub async fn seed(
    client: &Client,
    s3_root: &Path,
    set: FixtureSet,
    seed: u64,
) -> Result<Seeded, SeedError> {
    seed_observed(client, s3_root, set, seed, std::sync::Arc::new(Quiet)).await
}

/// [`seed`], telling `observer` how far it got.
pub async fn seed_observed(
    client: &Client,
    s3_root: &Path,
    set: FixtureSet,
    seed: u64,
    observer: std::sync::Arc<dyn Observer>,
) -> Result<Seeded, SeedError> {
    let name = set.name();
    let existing = find_datastore(client, name).await?;
    let folder = s3_root.join(BUCKET).join(name);
    let manifest = folder.join("manifest.json");
    if let Some(id) = &existing {
        observer.datastore(id);
        // A data directory whose first import was cut short: the emulator
        // resumed the job at start; follow it to the end.
        if let Some(job_id) = running_fixture_job(client, id, name).await? {
            observer.importing(&job_id, expected_image_sets(&manifest));
            return follow(client, id.clone(), &job_id, name).await;
        }
        let count = count_image_sets(client, id).await?;
        if count > 0 {
            return Ok(Seeded {
                datastore_id: id.clone(),
                reused: true,
                image_sets: count,
            });
        }
    }
    // The datastore first, so that it is listed while the files are made.
    let datastore_id = match existing {
        Some(id) => id,
        None => {
            let id = client
                .create_datastore()
                .datastore_name(name)
                .client_token(format!("fixtures-{name}"))
                .send()
                .await
                .map_err(call("CreateDatastore"))?
                .datastore_id;
            observer.datastore(&id);
            id
        }
    };
    let image_sets = if manifest.exists() {
        expected_image_sets(&manifest)
    } else {
        let spec = Spec {
            set,
            seed,
            patients: None,
        };
        let observer = observer.clone();
        let generate = move || {
            let patients = healthimaging_fixtures::planned_patients(&spec);
            observer.generated(0, patients);
            let mut seen = std::collections::HashSet::new();
            let mut report = |relative: &str| {
                // Files come patient by patient, under dicom/PATIENT_ID/.
                if let Some(patient) = relative
                    .strip_prefix("dicom/")
                    .and_then(|rest| rest.split_once('/'))
                    .map(|(patient, _)| patient)
                    && seen.insert(patient.to_owned())
                {
                    observer.generated((seen.len() - 1).min(patients), patients);
                }
            };
            let manifest = healthimaging_fixtures::write_observed(&spec, &folder, &mut report)?;
            observer.generated(patients, patients);
            Ok::<_, healthimaging_fixtures::Error>(manifest.expected_import.image_sets.len())
        };
        tokio::task::spawn_blocking(generate)
            .await
            .map_err(call("fixture generation"))??
    };
    wait_until_active(client, &datastore_id).await?;
    let job = client
        .start_dicom_import_job()
        .datastore_id(&datastore_id)
        .job_name(format!("fixtures-{name}"))
        .data_access_role_arn("arn:aws:iam::123456789012:role/FixtureImport")
        .client_token(format!("fixtures-{name}-{datastore_id}"))
        .input_s3_uri(format!("s3://{BUCKET}/{name}/dicom/"))
        .output_s3_uri(format!("s3://{BUCKET}/{name}-import-output/"))
        .send()
        .await
        .map_err(call("StartDICOMImportJob"))?;
    observer.importing(&job.job_id, image_sets);
    follow(client, datastore_id, &job.job_id, name).await
}

/// How many image sets the set's manifest says its import makes (0 if it
/// cannot be read: the count only measures progress).
fn expected_image_sets(manifest: &Path) -> usize {
    std::fs::read(manifest)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|m| Some(m["expected_import"]["image_sets"].as_array()?.len()))
        .unwrap_or(0)
}

/// The fixture import job still running in `datastore_id`, if there is one.
async fn running_fixture_job(
    client: &Client,
    datastore_id: &str,
    name: &str,
) -> Result<Option<String>, SeedError> {
    let mut pages = client
        .list_dicom_import_jobs()
        .datastore_id(datastore_id)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for job in page.map_err(call("ListDICOMImportJobs"))?.job_summaries() {
            let running = matches!(
                job.job_status(),
                JobStatus::Submitted | JobStatus::InProgress
            );
            if running && job.job_name() == format!("fixtures-{name}") {
                return Ok(Some(job.job_id().to_owned()));
            }
        }
    }
    Ok(None)
}

/// Waits for the import job `job_id` to end.
async fn follow(
    client: &Client,
    datastore_id: String,
    job_id: &str,
    name: &'static str,
) -> Result<Seeded, SeedError> {
    // Generous: the demo set imports in seconds, a slow debug build in a minute.
    for _ in 0..6000 {
        let properties = client
            .get_dicom_import_job()
            .datastore_id(&datastore_id)
            .job_id(job_id)
            .send()
            .await
            .map_err(call("GetDICOMImportJob"))?
            .job_properties;
        match properties.as_ref().map(|p| p.job_status()) {
            Some(JobStatus::Completed) => {
                return Ok(Seeded {
                    image_sets: count_image_sets(client, &datastore_id).await?,
                    datastore_id,
                    reused: false,
                });
            }
            Some(JobStatus::Failed) => {
                return Err(SeedError::Import {
                    set: name,
                    message: properties
                        .and_then(|p| p.message)
                        .unwrap_or_else(|| "no message".into()),
                });
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    Err(SeedError::Import {
        set: name,
        message: "it was still running after five minutes".into(),
    })
}

async fn find_datastore(client: &Client, name: &str) -> Result<Option<String>, SeedError> {
    let mut pages = client.list_datastores().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(call("ListDatastores"))?;
        for summary in page.datastore_summaries() {
            let usable = matches!(
                summary.datastore_status(),
                DatastoreStatus::Active | DatastoreStatus::Creating
            );
            if usable && summary.datastore_name() == name {
                return Ok(Some(summary.datastore_id().to_owned()));
            }
        }
    }
    Ok(None)
}

async fn wait_until_active(client: &Client, datastore_id: &str) -> Result<(), SeedError> {
    for _ in 0..600 {
        let status = client
            .get_datastore()
            .datastore_id(datastore_id)
            .send()
            .await
            .map_err(call("GetDatastore"))?
            .datastore_properties
            .map(|p| p.datastore_status);
        if status == Some(DatastoreStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(SeedError::Call {
        operation: "GetDatastore",
        message: "the datastore did not become ACTIVE within 30 seconds".into(),
    })
}

async fn count_image_sets(client: &Client, datastore_id: &str) -> Result<usize, SeedError> {
    let mut pages = client
        .search_image_sets()
        .datastore_id(datastore_id)
        .into_paginator()
        .send();
    let mut count = 0;
    while let Some(page) = pages.next().await {
        count += page
            .map_err(call("SearchImageSets"))?
            .image_sets_metadata_summaries()
            .len();
    }
    Ok(count)
}

/// Where an imported fixture set is kept for instant starts: the user's
/// cache folder (`$XDG_CACHE_HOME`, else `~/.cache`), per build of this
/// binary, fixture set and emulator seed. A new build starts a new cache.
pub fn cache_dir(set: FixtureSet, emulator_seed: Option<u64>) -> Option<std::path::PathBuf> {
    let from = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
    };
    let base = from("XDG_CACHE_HOME").or_else(|| from("HOME").map(|h| h.join(".cache")))?;
    let build = std::env::current_exe()
        .and_then(std::fs::metadata)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    Some(base.join("healthimaging-mcp").join(format!(
        "{}-{build}-{}-fixtures{FIXTURE_SEED}-emulator{}",
        env!("CARGO_PKG_VERSION"),
        set.name(),
        emulator_seed.map_or_else(|| "any".to_owned(), |s| s.to_string())
    )))
}

/// Whether `dir` holds a complete cache.
pub fn cached(dir: &Path) -> bool {
    dir.join("store").join("snapshot.json").exists() && dir.join("s3").join(BUCKET).is_dir()
}

/// Puts the cached fixture files back into the emulator's S3 folder, and
/// marks the cache used (the most recently used other build's caches are
/// kept when a build saves its own).
pub fn restore_s3(dir: &Path, s3_root: &Path) -> std::io::Result<()> {
    let _ = std::fs::File::open(dir).and_then(|d| d.set_modified(std::time::SystemTime::now()));
    copy_tree(&dir.join("s3").join(BUCKET), &s3_root.join(BUCKET))
}

/// Keeps the emulator's store and fixture files in `dir`, written aside
/// and renamed into place, so a cache is whole or absent.
pub fn save_cache(service: &healthimaging_emulator::Service, dir: &Path) -> Result<(), String> {
    let partial = dir.with_extension(format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).map_err(|e| e.to_string())?;
    service
        .store()
        .snapshot(&partial.join("store"))
        .map_err(|e| e.to_string())?;
    copy_tree(
        &service.s3.path().join(BUCKET),
        &partial.join("s3").join(BUCKET),
    )
    .map_err(|e| e.to_string())?;
    if std::fs::rename(&partial, dir).is_err() {
        // Another process cached it first.
        let _ = std::fs::remove_dir_all(&partial);
    }
    forget_other_builds(dir);
    Ok(())
}

/// Removes what other builds and other processes left beside `dir` (each
/// cache is tens of MB): the caches of builds other than this one and the
/// most recently used other one (a debug and a release build of the same
/// source take turns without evicting each other), and half-written caches
/// of processes no longer running.
fn forget_other_builds(dir: &Path) {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name().and_then(|n| n.to_str()))
    else {
        return;
    };
    let build = |name: &str| name.split('-').nth(1).map(str::to_owned);
    let ours = build(name);
    let mut others: Vec<(std::time::SystemTime, Option<String>, std::path::PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        let other = entry.file_name().to_string_lossy().into_owned();
        if let Some((_, pid)) = other.rsplit_once(".partial-") {
            let running = pid
                .parse::<u32>()
                .is_ok_and(|pid| Path::new("/proc").join(pid.to_string()).exists());
            if !running {
                let _ = std::fs::remove_dir_all(entry.path());
            }
            continue;
        }
        if other == name || build(&other) == ours {
            continue;
        }
        let used = entry
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(std::time::UNIX_EPOCH);
        others.push((used, build(&other), entry.path()));
    }
    // The most recently used other build keeps its caches.
    let kept = others
        .iter()
        .max_by_key(|(used, ..)| *used)
        .map(|(_, build, _)| build.clone());
    for (_, build, path) in others {
        if Some(build) != kept {
            let _ = std::fs::remove_dir_all(path);
        }
    }
}

/// Copies a folder tree, hard-linking files where it can.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::hard_link(entry.path(), &target)
                .or_else(|_| std::fs::copy(entry.path(), &target).map(|_| ()))?;
        }
    }
    Ok(())
}
