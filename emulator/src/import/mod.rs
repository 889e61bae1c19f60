//! The DICOM import pipeline behind StartDICOMImportJob.
//!
//! A job runs on the import worker thread:
//! 1. list every object under the input prefix and read each file's header
//!    on every core, to group the files into image sets ([`grouping`])
//!    without holding their pixels; a file that cannot be read becomes a
//!    line of `failure.ndjson`;
//! 2. read the files whole, in group order, on every core, store their
//!    frames losslessly and verify them ([`frames`]), writing each frame as
//!    a blob as soon as it is encoded; as each group's files are all done
//!    (in group order, a few groups ahead at most: [`pipeline`]), write the
//!    group's image set in one transaction (new, or a new version of the
//!    series' primary image set), record its output lines, and note the
//!    job's progress;
//! 3. write the job's outputs from the recorded lines and mark it ended.
//!
//! Memory follows the largest group, not the job. Each image set appears
//! whole or not at all; a crash leaves the job `IN_PROGRESS` with its
//! progress, and the next start resumes it after its last committed group
//! (frames written for an uncommitted group are swept away at start).

pub(crate) mod decode;
pub mod frames;
mod grouping;
mod instance;
mod outputs;
mod overrides;
mod parallel;
mod pipeline;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value as Json, json};

use crate::metadata::{self, FrameRecord};
use crate::s3::{Listed, S3Uri};
use crate::service::Service;
use crate::store::{
    BlobId, DicomTags, FrameEntry, ImageSet, ImageSetVersion, ImportJob, JobStatus,
    LosslessStorageFormat, Pinned, StoreError,
};

use crate::metadata::combine::{GroupingKey, grouping_key};
use grouping::{Group, Target};
use instance::{Failure, ReadInstance};
use outputs::{Imported, Line};
pub(crate) use overrides::Overrides;

/// Totals over the imports an emulator ran: what `/_emulator/health`
/// reports and the import benchmark reads.
#[derive(Debug, Default)]
pub struct Counters {
    imported: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
    encode_nanos: AtomicU64,
}

impl Counters {
    fn add(&self, stats: &Stats) {
        self.imported
            .fetch_add(stats.imported as u64, Ordering::Relaxed);
        self.failed
            .fetch_add(stats.failed as u64, Ordering::Relaxed);
        self.bytes.fetch_add(stats.bytes, Ordering::Relaxed);
        let nanos = u64::try_from(stats.encode_time.as_nanos()).unwrap_or(u64::MAX);
        self.encode_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The totals so far.
    pub fn totals(&self) -> Stats {
        Stats {
            imported: self.imported.load(Ordering::Relaxed) as usize,
            failed: self.failed.load(Ordering::Relaxed) as usize,
            bytes: self.bytes.load(Ordering::Relaxed),
            encode_time: Duration::from_nanos(self.encode_nanos.load(Ordering::Relaxed)),
        }
    }
}

/// How a job went, for logs and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Files imported.
    pub imported: usize,
    /// Files rejected.
    pub failed: usize,
    /// Bytes read.
    pub bytes: u64,
    /// Time spent encoding and verifying frames, summed over threads.
    pub encode_time: Duration,
}

/// Why a job (or a write of stored instances) stopped before its end.
pub(crate) enum Stop {
    /// The job could not run; it ends `FAILED` with this message.
    Failed(String),
    /// The store could not be written (a full or failing disk): the job
    /// resumes once it can.
    Store(StoreError),
    /// The job no longer exists (the emulator was reset): nothing to record.
    Gone,
}

impl From<StoreError> for Stop {
    fn from(error: StoreError) -> Self {
        Stop::Store(error)
    }
}

/// How long a job waits for a store that cannot be written before it
/// gives up.
const STORE_PATIENCE: Duration = Duration::from_secs(3600);

/// Runs the job `job_id` to its end. Never panics out: an unexpected failure
/// ends the job `FAILED`. While the store cannot be written (a full disk),
/// the job waits and resumes after its last committed image set.
pub fn run(service: &Arc<Service>, job_id: &str) -> Stats {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(100);
    let mut wait = |error: &dyn std::fmt::Display| -> bool {
        if started.elapsed() >= STORE_PATIENCE {
            return false;
        }
        tracing::warn!(%error, "an import cannot write to the store; it resumes when it can");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(2));
        true
    };
    loop {
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| try_run(service, job_id)));
        let message = match outcome {
            Ok(Ok(stats)) => return stats,
            Ok(Err(Stop::Gone)) => return Stats::default(),
            Ok(Err(Stop::Store(error))) => {
                if wait(&error) {
                    continue;
                }
                format!("The import could not write to the store: {error}")
            }
            Ok(Err(Stop::Failed(message))) => message,
            Err(_) => {
                tracing::error!("import worker panicked");
                "The import failed unexpectedly".to_owned()
            }
        };
        while let Err(error) = end_failed(service, job_id, &message) {
            if !wait(&error) {
                tracing::error!(%error, "could not record a failed import");
                break;
            }
        }
        return Stats::default();
    }
}

fn end_failed(service: &Service, job_id: &str, message: &str) -> Result<(), StoreError> {
    let now = service.now();
    service.store().write(|w| {
        if w.job(job_id)?.is_some() {
            w.update_job(job_id, JobStatus::Failed, Some(now), Some(message))?;
            w.clear_job_outcomes(job_id)?;
            w.set_job_progress(job_id, None)?;
        }
        Ok(())
    })
}

/// The job, its datastore's storage format, and how many groups an earlier
/// run committed; `None` when there is nothing to run.
fn begin(
    service: &Service,
    job_id: &str,
) -> Result<Option<(ImportJob, LosslessStorageFormat, usize)>, StoreError> {
    service.store().write(|w| {
        let Some(job) = w.job(job_id)? else {
            return Ok(None);
        };
        if job.status.is_terminal() {
            return Ok(None);
        }
        let format = w
            .datastore(&job.datastore_id)?
            .map_or(LosslessStorageFormat::Htj2k, |ds| {
                ds.lossless_storage_format
            });
        w.update_job(job_id, JobStatus::InProgress, None, None)?;
        let done = w
            .job_progress(job_id)?
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        Ok(Some((job, format, done)))
    })
}

fn try_run(service: &Arc<Service>, job_id: &str) -> Result<Stats, Stop> {
    let Some((job, format, done)) = begin(service, job_id)? else {
        return Ok(Stats::default());
    };
    let input = S3Uri::parse(&job.input_s3_uri)
        .map_err(|e| Stop::Failed(format!("The inputS3Uri is not usable: {e}")))?;
    let output = S3Uri::parse(&job.output_s3_uri)
        .map_err(|e| Stop::Failed(format!("The outputS3Uri is not usable: {e}")))?;
    if !service.s3.bucket_exists(&input.bucket) {
        return Err(Stop::Failed(format!(
            "The input bucket {} does not exist",
            input.bucket
        )));
    }
    service.s3.prepare_folder(&output).map_err(|e| {
        Stop::Failed(format!(
            "The output location {} cannot be written: {e}",
            job.output_s3_uri
        ))
    })?;
    let overrides = match &job.import_configuration {
        Some(configuration) => {
            Overrides::load(&service.s3, &input, configuration).map_err(Stop::Failed)?
        }
        None => Overrides::default(),
    };
    let mut listed = service
        .s3
        .list(&input)
        .map_err(|e| Stop::Failed(format!("Could not list {}: {e}", job.input_s3_uri)))?;
    // The metadata files are applied, not imported.
    listed.retain(|object| !overrides.files.contains(&object.key));
    if listed.is_empty() {
        return Err(Stop::Failed(format!(
            "No objects were found under {}",
            job.input_s3_uri
        )));
    }
    let mut stats = Stats::default();
    let (groups, early) = scan(service, &input.bucket, &listed, &overrides);
    pipeline::run(
        &groups,
        done,
        |key| process_file(service, &input.bucket, key, format, &overrides),
        |ready| commit_groups(service, &job, &groups, ready, &mut stats),
    )?;
    stats.failed += early.len();
    // Counted before the job shows COMPLETED, so a reader who saw it complete sees its totals.
    service.imports.add(&stats);
    finish(service, &job, listed.len(), early)?;
    tracing::info!(
        imported = stats.imported,
        failed = stats.failed,
        "import job ended"
    );
    Ok(stats)
}

/// Reads every file's header and groups the files; the files that cannot
/// be read are failures, in input order.
fn scan(
    service: &Service,
    bucket: &str,
    listed: &[Listed],
    overrides: &Overrides,
) -> (Vec<Group>, Vec<Line>) {
    let headers = parallel::map(listed, |object| {
        if let Some(why) = &object.unreadable {
            return Err(Failure::customer("InvalidDicomFileException", why.clone()));
        }
        let uri = S3Uri {
            bucket: bucket.to_owned(),
            key: object.key.clone(),
        };
        let (file, _) = service.s3.open(&uri).map_err(object_failure)?;
        instance::read_header(file, overrides)
    });
    let mut failures = Vec::new();
    let mut readable = Vec::new();
    for (object, header) in listed.iter().zip(headers) {
        match header {
            Ok(header) => readable.push((object.key.clone(), header.series_uid, header.key)),
            Err(failure) => failures.push(Line::failure(&object.key, &failure)),
        }
    }
    (grouping::plan(readable), failures)
}

/// The failure of an object the S3 folder would not give.
fn object_failure(error: std::io::Error) -> Failure {
    match error.kind() {
        std::io::ErrorKind::InvalidInput
        | std::io::ErrorKind::InvalidData
        | std::io::ErrorKind::PermissionDenied => Failure::customer(
            "InvalidDicomFileException",
            format!("The object cannot be imported: {error}"),
        ),
        _ => Failure {
            exception_type: "InternalServerException",
            message: format!("Could not read the object: {error}"),
            server_error: true,
        },
    }
}

/// An instance read, its frames stored as pinned blobs.
pub(crate) struct Stored {
    instance: ReadInstance,
    frames: Vec<(Pinned, FrameRecord)>,
    bytes: u64,
}

impl Stored {
    /// The instance read.
    pub(crate) fn instance(&self) -> &ReadInstance {
        &self.instance
    }
}

/// Reads one file whole, stores its frames losslessly (verified) as pinned
/// blobs, and describes it. The outer error is the store's (its disk), the
/// inner one the file's.
fn process_file(
    service: &Service,
    bucket: &str,
    key: &str,
    format: LosslessStorageFormat,
    overrides: &Overrides,
) -> std::io::Result<Result<Stored, Failure>> {
    let uri = S3Uri {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
    };
    match service.s3.read(&uri) {
        Ok(bytes) => store_instance(service, key, &bytes, format, overrides),
        Err(error) => Ok(Err(object_failure(error))),
    }
}

/// Stores the frames of the Part 10 file `bytes` (named `key`) losslessly
/// (verified) as pinned blobs, and describes it. The outer error is the
/// store's (its disk), the inner one the file's.
pub(crate) fn store_instance(
    service: &Service,
    key: &str,
    bytes: &[u8],
    format: LosslessStorageFormat,
    overrides: &Overrides,
) -> std::io::Result<Result<Stored, Failure>> {
    let mut instance = match instance::read(key, bytes, format, overrides) {
        Ok(instance) => instance,
        Err(failure) => return Ok(Err(failure)),
    };
    let mut frames = Vec::with_capacity(instance.frames.len());
    for frame in std::mem::take(&mut instance.frames) {
        let pinned = service.store().blobs().put(&frame.bytes)?;
        frames.push((
            pinned,
            FrameRecord {
                id: String::new(),
                width: frame.width,
                height: frame.height,
                checksum: frame.checksum,
                min: frame.min,
                max: frame.max,
                size_in_bytes: frame.bytes.len() as u64,
            },
        ));
    }
    Ok(Ok(Stored {
        instance,
        frames,
        bytes: bytes.len() as u64,
    }))
}

/// Instances ready to be written into one image set: their documents, the
/// frames they list and the blobs holding those frames.
#[derive(Default)]
pub(crate) struct Batch {
    /// The instances, their documents listing their frames.
    pub(crate) instances: Vec<ReadInstance>,
    entries: Vec<FrameEntry>,
    pins: Vec<Pinned>,
}

impl Batch {
    /// Adds a stored instance, minting its frames' IDs.
    pub(crate) fn add(&mut self, service: &Service, stored: Stored) {
        // IDs in input order, so the same seed gives the same IDs.
        let mut described = Vec::with_capacity(stored.frames.len());
        for (pinned, mut record) in stored.frames {
            record.id = service.resource_ids.resource_id();
            self.entries.push(FrameEntry {
                frame_id: record.id.clone(),
                transfer_syntax: stored.instance.stored_transfer_syntax.clone(),
                blob: pinned.id().clone(),
            });
            described.push(metadata::frame(&record));
            self.pins.push(pinned);
        }
        let mut instance = stored.instance;
        instance.document["Study"]["Series"][&instance.series_uid]["Instances"]
            [&instance.sop_uid]["ImageFrames"] = Json::Array(described);
        self.instances.push(instance);
    }
}

/// Writes `batch` (instances of series `series_uid` agreeing on `key`) into
/// datastore `ds` as the service does: a new version of the series' primary
/// image set when they agree with it, a new primary image set when the
/// series has none, a new non-primary image set otherwise. Answers the
/// image set and the version written.
pub(crate) fn write_batch(
    w: &mut crate::store::Writer<'_>,
    service: &Service,
    ds: &str,
    (series_uid, key): (&str, &GroupingKey),
    batch: Batch,
) -> Result<(ImageSet, u32), Stop> {
    for pinned in batch.pins {
        w.hold(pinned);
    }
    let existing = match w.primary_image_set(ds, series_uid)? {
        Some(set) => {
            let document = set
                .latest()
                .metadata
                .as_ref()
                .and_then(|blob| load_document(service, blob))
                .ok_or_else(|| {
                    Stop::Failed("Could not read the metadata of an image set".into())
                })?;
            Some((set, document))
        }
        None => None,
    };
    let target = grouping::target(
        key,
        existing
            .as_ref()
            .map(|(set, document)| (set.id.clone(), grouping_key(document, series_uid))),
    );
    let new_primary = target == Target::NewPrimary;
    let (merge_into, mut document) = match (target, existing) {
        (Target::Merge(_), Some((set, document))) => (Some(set), document),
        _ => (
            None,
            json!({ "Patient": {"DICOM": {}}, "Study": {"DICOM": {}, "Series": {}} }),
        ),
    };
    for instance in batch.instances {
        metadata::combine::merge(&mut document, instance.document);
    }
    let id = match &merge_into {
        Some(set) => set.id.clone(),
        None => loop {
            let id = service.resource_ids.resource_id();
            if !w.image_set_exists(&id)? {
                break id;
            }
        },
    };
    let document = metadata::with_identity(document, ds, &id);
    let version_id = merge_into
        .as_ref()
        .map_or(1, |set| set.latest().version_id + 1);
    let now = service.now();
    let blob = w.put_blob(&metadata::stored::gzip(&document))?;
    let version = ImageSetVersion::imported(
        version_id,
        now,
        DicomTags::of_document(&document),
        Some(blob),
    );
    let set = match merge_into {
        Some(mut set) => {
            w.append_version(&mut set, version)?;
            set
        }
        None => w.create_image_set(&id, ds, new_primary, now, version, None)?,
    };
    let mut set = set;
    // An import into an image set is a touch of its storage tier.
    w.touch(&mut set, now)?;
    w.add_frames(&set, &batch.entries)?;
    Ok((set, version_id))
}

/// What processing one file gave: the store's error (its disk), or the
/// file's own failure, or the instance stored.
type FileResult = std::io::Result<Result<Stored, Failure>>;

/// Writes the image sets of the groups `ready` (their files' results, the
/// groups consecutive and in order) in one transaction, with their output
/// lines and the job's progress: one durable commit for all of them.
fn commit_groups(
    service: &Service,
    job: &ImportJob,
    groups: &[Group],
    ready: Vec<(usize, Vec<FileResult>)>,
    stats: &mut Stats,
) -> Result<(), Stop> {
    let mut prepared = Vec::with_capacity(ready.len());
    let mut last = 0;
    for (n, results) in ready {
        let group = &groups[n];
        let mut lines = Vec::new();
        let mut batch = Batch::default();
        for (key, result) in group.files.iter().zip(results) {
            let stored = match result.map_err(StoreError::from)? {
                Ok(stored) => stored,
                Err(failure) => {
                    stats.failed += 1;
                    lines.push(Line::failure(key, &failure));
                    continue;
                }
            };
            stats.bytes += stored.bytes;
            stats.encode_time += stored.instance.encode_time;
            batch.add(service, stored);
        }
        stats.imported += batch.instances.len();
        prepared.push((group, batch, lines));
        last = n;
    }
    service.store().write(|w| {
        match w.job(&job.id)? {
            Some(current) if current.status == JobStatus::InProgress => {}
            _ => return Err(Stop::Gone),
        }
        for (group, batch, lines) in prepared {
            commit_group(w, service, job, group, batch, &lines)?;
        }
        w.set_job_progress(&job.id, Some(&(last + 1).to_string()))?;
        Ok(())
    })
}

/// Writes the image set of `group` from `batch`, and its output lines,
/// inside the caller's transaction.
fn commit_group(
    w: &mut crate::store::Writer<'_>,
    service: &Service,
    job: &ImportJob,
    group: &Group,
    batch: Batch,
    lines: &[Line],
) -> Result<(), Stop> {
    if !batch.instances.is_empty() {
        let instances: Vec<(String, String, String, String)> = batch
            .instances
            .iter()
            .map(|i| {
                (
                    i.key.clone(),
                    i.sop_uid.clone(),
                    i.series_uid.clone(),
                    i.study_uid.clone(),
                )
            })
            .collect();
        let (set, version_id) = write_batch(
            w,
            service,
            &job.datastore_id,
            (&group.series_uid, &group.key),
            batch,
        )?;
        for (key, sop_uid, series_uid, study_uid) in &instances {
            let line = Line::success(&Imported {
                key,
                sop_uid,
                series_uid,
                study_uid,
                image_set_id: &set.id,
                version: version_id,
                is_primary: set.is_primary,
            });
            record(w, &job.id, &line)?;
        }
        record(
            w,
            &job.id,
            &Line::image_set(&set.id, version_id, set.is_primary, instances.len()),
        )?;
    }
    for line in lines {
        record(w, &job.id, line)?;
    }
    Ok(())
}

fn record(w: &mut crate::store::Writer<'_>, job_id: &str, line: &Line) -> Result<(), Stop> {
    let (kind, text) = line.to_record();
    w.record_job_outcome(job_id, kind, &text)?;
    Ok(())
}

/// Writes the job's outputs: the files that could not be read first, then
/// what each group recorded; then marks the job `COMPLETED`.
fn finish(
    service: &Service,
    job: &ImportJob,
    scanned: usize,
    early: Vec<Line>,
) -> Result<(), Stop> {
    let recorded = service.store().read(|r| r.job_outcomes(&job.id))?;
    let mut lines = early;
    lines.extend(
        recorded
            .iter()
            .filter_map(|(kind, text)| Line::from_record(kind, text)),
    );
    outputs::write(&service.s3, job, scanned, &lines)
        .map_err(|e| Stop::Failed(format!("Could not write the job's output files: {e}")))?;
    let now = service.now();
    service.store().write(|w| {
        if w.job(&job.id)?.is_none() {
            return Err(Stop::Gone);
        }
        w.update_job(&job.id, JobStatus::Completed, Some(now), None)?;
        w.clear_job_outcomes(&job.id)?;
        w.set_job_progress(&job.id, None)?;
        Ok(())
    })
}

/// The stored document `blob`, parsed.
pub fn load_document(service: &Service, blob: &BlobId) -> Option<Json> {
    let bytes = service.store().blobs().get(blob).ok()??;
    metadata::stored::gunzip(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::{Method, StatusCode};
    use dicom_core::value::{PixelFragmentSequence, PrimitiveValue, Value};
    use dicom_core::{DataElement, VR};
    use dicom_dictionary_std::tags;
    use dicom_object::InMemDicomObject;
    use dicom_object::meta::FileMetaTableBuilder;

    use crate::testing::{active_datastore, send, service};

    /// A one-frame 8-bit JPEG baseline Part 10 file.
    fn jpeg_file() -> Vec<u8> {
        let pixels: Vec<u8> = (0..256u32).map(|i| (i * 3) as u8).collect();
        let mut jpeg = Vec::new();
        jpeg_encoder::Encoder::new(&mut jpeg, 85)
            .encode(&pixels, 16, 16, jpeg_encoder::ColorType::Luma)
            .unwrap();
        if jpeg.len() % 2 == 1 {
            jpeg.push(0);
        }
        let mut object = InMemDicomObject::new_empty();
        let text = [
            (tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.7"),
            (tags::SOP_INSTANCE_UID, VR::UI, "2.25.1.1.1"),
            (tags::STUDY_INSTANCE_UID, VR::UI, "2.25.1"),
            (tags::SERIES_INSTANCE_UID, VR::UI, "2.25.1.1"),
            (tags::PATIENT_ID, VR::LO, "SYN-JPEG"),
            (tags::MODALITY, VR::CS, "OT"),
            (tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        ];
        for (tag, vr, value) in text {
            object.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
        }
        for (tag, value) in [
            (tags::ROWS, 16u16),
            (tags::COLUMNS, 16),
            (tags::SAMPLES_PER_PIXEL, 1),
            (tags::BITS_ALLOCATED, 8),
            (tags::BITS_STORED, 8),
            (tags::HIGH_BIT, 7),
            (tags::PIXEL_REPRESENTATION, 0),
        ] {
            object.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
        }
        object.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OB,
            Value::PixelSequence(PixelFragmentSequence::new(vec![0], vec![jpeg])),
        ));
        let meta = FileMetaTableBuilder::new()
            .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.7")
            .media_storage_sop_instance_uid("2.25.1.1.1")
            .transfer_syntax(super::frames::JPEG_BASELINE)
            .build()
            .unwrap();
        let mut bytes = Vec::new();
        object.with_exact_meta(meta).write_all(&mut bytes).unwrap();
        bytes
    }

    #[tokio::test]
    async fn a_jpeg_baseline_instance_is_imported_as_is_and_served_as_image_jpeg() {
        let (service, clock) = service();
        let ds = active_datastore(&service, &clock).await;
        let file = jpeg_file();
        let uri = crate::s3::S3Uri::parse("s3://lossy/in/one.dcm").unwrap();
        service.s3.write(&uri, &file).unwrap();
        let (status, _, job) = send(
            &service,
            Method::POST,
            &format!("/startDICOMImportJob/datastore/{ds}"),
            r#"{"clientToken":"j","dataAccessRoleArn":"arn:aws:iam::123456789012:role/R","inputS3Uri":"s3://lossy/in/","outputS3Uri":"s3://lossy/out/"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{job}");
        let job_uri = format!(
            "/getDICOMImportJob/datastore/{ds}/job/{}",
            job["jobId"].as_str().unwrap()
        );
        let mut properties = serde_json::Value::Null;
        for _ in 0..400 {
            properties = send(&service, Method::GET, &job_uri, "").await.2["jobProperties"].clone();
            if properties["jobStatus"] == "COMPLETED" || properties["jobStatus"] == "FAILED" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(properties["jobStatus"], "COMPLETED", "{properties}");
        let (_, _, found) = send(
            &service,
            Method::POST,
            &format!("/datastore/{ds}/searchImageSets"),
            "{}",
        )
        .await;
        let set = found["imageSetsMetadataSummaries"][0]["imageSetId"]
            .as_str()
            .unwrap()
            .to_owned();
        let frame = service
            .store()
            .read(|r| {
                let set = r.image_set(&ds, &set)?.unwrap();
                r.all_frames(&set)
            })
            .unwrap()
            .remove(0);
        let (frame_id, syntax) = (frame.frame_id, frame.transfer_syntax);
        assert_eq!(syntax, super::frames::JPEG_BASELINE);
        let request = axum::http::Request::builder()
            .method("POST")
            .uri(format!("/datastore/{ds}/imageSet/{set}/getImageFrame"))
            .body(axum::body::Body::from(format!(
                r#"{{"imageFrameId":"{frame_id}"}}"#
            )))
            .unwrap();
        let response = tower::ServiceExt::oneshot(crate::router(service.clone()), request)
            .await
            .unwrap();
        assert_eq!(response.headers()["content-type"], "image/jpeg");
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(&body[..2], &[0xff, 0xd8], "the JPEG as imported");
    }
}
