//! The DICOM import pipeline behind StartDICOMImportJob.
//!
//! A job runs on the import worker thread, in three steps:
//! 1. read every object under the input prefix, in key order, a batch at a
//!    time on every core: parse, store the frames losslessly, verify them
//!    ([`frames`]); each file that fails becomes a line of `failure.ndjson`;
//! 2. give the frames their IDs and write them as blobs, in input order, so
//!    the same seed gives the same IDs;
//! 3. under the store lock, group the instances into image sets
//!    ([`grouping`]), write each new metadata document, write the job's
//!    outputs, and commit the job's end with every image set in one change.
//!
//! Nothing of a job is visible before step 3 commits, and all of it is after:
//! a crash mid-import leaves no half-imported image set, and the job, still
//! `IN_PROGRESS` in the journal, runs again from the start when the emulator
//! restarts.

mod decode;
pub mod frames;
mod grouping;
mod instance;
mod outputs;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value as Json, json};

use crate::blobs;
use crate::metadata::{self, FrameRecord};
use crate::s3::S3Uri;
use crate::service::Service;
use crate::store::{
    Change, DicomTags, ImageSet, ImageSetState, ImageSetVersion, ImportJob, JobStatus,
    LosslessStorageFormat, WorkflowStatus,
};

use crate::metadata::combine::grouping_key;
use grouping::Target;
use instance::{Failure, ReadInstance};
use outputs::{Imported, Outcome};

/// Files read and encoded at once.
const BATCH: usize = 32;

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

/// Runs the job `job_id` to its end. Never panics out: an unexpected failure
/// ends the job `FAILED`.
pub fn run(service: &Arc<Service>, job_id: &str) -> Stats {
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| try_run(service, job_id)));
    match outcome {
        Ok(Ok(stats)) => stats,
        Ok(Err(message)) => {
            end_failed(service, job_id, message);
            Stats::default()
        }
        Err(_) => {
            tracing::error!("import worker panicked");
            end_failed(service, job_id, "The import failed unexpectedly".into());
            Stats::default()
        }
    }
}

fn end_failed(service: &Service, job_id: &str, message: String) {
    let change = Change::JobEnded {
        job_id: job_id.to_owned(),
        status: JobStatus::Failed,
        at: service.now(),
        message: Some(message),
        image_sets: Vec::new(),
    };
    if let Err(error) = service.store().commit(change) {
        tracing::error!(error = %error.message, "could not record a failed import");
    }
}

fn try_run(service: &Arc<Service>, job_id: &str) -> Result<Stats, String> {
    let (job, format) = {
        let mut store = service.store();
        let Some(job) = store.jobs.get(job_id).cloned() else {
            return Ok(Stats::default());
        };
        if job.status.is_terminal() {
            return Ok(Stats::default());
        }
        let format = store
            .datastores
            .get(&job.datastore_id)
            .map_or(LosslessStorageFormat::Htj2k, |ds| {
                ds.lossless_storage_format
            });
        store
            .commit(Change::JobStarted {
                job_id: job_id.to_owned(),
            })
            .map_err(|e| e.message)?;
        (job, format)
    };
    let input = S3Uri::parse(&job.input_s3_uri).ok_or("The inputS3Uri is not an S3 URI")?;
    if !service.s3.bucket_exists(&input.bucket) {
        return Err(format!(
            "The input bucket {} does not exist in the emulator's S3 folder",
            input.bucket
        ));
    }
    let keys = service
        .s3
        .list(&input)
        .map_err(|e| format!("Could not list {}: {e}", job.input_s3_uri))?;
    if keys.is_empty() {
        return Err(format!("No objects were found under {}", job.input_s3_uri));
    }
    let mut outcome = Outcome {
        scanned: keys.len(),
        ..Outcome::default()
    };
    let mut stats = Stats::default();
    let mut instances = Vec::new();
    for batch in keys.chunks(BATCH) {
        for (key, result) in read_batch(service, &input.bucket, batch, format, &mut stats) {
            match result {
                Ok(instance) => instances.push(store_frames(service, instance)?),
                Err(failure) => outcome.failed.push((key, failure)),
            }
        }
    }
    service
        .blobs
        .sync()
        .map_err(|e| format!("Could not store frames: {e}"))?;
    stats.imported = instances.len();
    stats.failed = outcome.failed.len();
    // Counted before the job shows COMPLETED, so a reader who saw it complete sees its totals.
    service.imports.add(&stats);
    commit(service, &job, instances, outcome)?;
    tracing::info!(
        imported = stats.imported,
        failed = stats.failed,
        "import job ended"
    );
    Ok(stats)
}

/// Reads and encodes one batch on every core; results in input order.
fn read_batch(
    service: &Service,
    bucket: &str,
    keys: &[String],
    format: LosslessStorageFormat,
    stats: &mut Stats,
) -> Vec<(String, Result<ReadInstance, Failure>)> {
    let files: Vec<(String, std::io::Result<Vec<u8>>)> = keys
        .iter()
        .map(|key| {
            let uri = S3Uri {
                bucket: bucket.to_owned(),
                key: key.clone(),
            };
            (key.clone(), service.s3.read(&uri))
        })
        .collect();
    stats.bytes += files
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .map(|b| b.len() as u64)
        .sum::<u64>();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = files.len().div_ceil(workers).max(1);
    let results: Vec<(String, Result<ReadInstance, Failure>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(key, bytes)| {
                            let result = match bytes {
                                Ok(bytes) => instance::read(key, bytes, format),
                                Err(e) => Err(Failure {
                                    exception_type: "InternalServerException",
                                    message: format!("Could not read the object: {e}"),
                                    server_error: true,
                                }),
                            };
                            (key.clone(), result)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    stats.encode_time += results
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .map(|i| i.encode_time)
        .sum::<Duration>();
    results
}

/// Gives the instance's frames their IDs, stores them, and completes the
/// instance's document with its `ImageFrames`.
fn store_frames(service: &Service, mut instance: ReadInstance) -> Result<ReadInstance, String> {
    let mut described = Vec::with_capacity(instance.frames.len());
    for frame in std::mem::take(&mut instance.frames) {
        let id = service.resource_ids.resource_id();
        service
            .blobs
            .put(&blobs::frame_key(&id), &frame.bytes)
            .map_err(|e| format!("Could not store a frame: {e}"))?;
        described.push(metadata::frame(&FrameRecord {
            id,
            width: frame.width,
            height: frame.height,
            checksum: frame.checksum,
            min: frame.min,
            max: frame.max,
            size_in_bytes: frame.bytes.len() as u64,
        }));
    }
    instance.document["Study"]["Series"][&instance.series_uid]["Instances"][&instance.sop_uid]["ImageFrames"] =
        Json::Array(described);
    Ok(instance)
}

/// Groups, writes documents and outputs, and commits the job's end.
fn commit(
    service: &Service,
    job: &ImportJob,
    instances: Vec<ReadInstance>,
    mut outcome: Outcome,
) -> Result<(), String> {
    let mut store = service.store();
    let now = service.now();
    let ds = &job.datastore_id;
    let existing = |series: &str| {
        let set = store.primary_image_set(ds, series)?;
        let document = load_document(service, &set.latest().metadata_key)?;
        Some((set.id.clone(), grouping_key(&document, series)))
    };
    let groups = grouping::group(instances, existing);
    for group in groups {
        let (mut set, mut document) = match &group.target {
            Target::Merge(id) => {
                let set = store
                    .image_sets
                    .get(id)
                    .cloned()
                    .ok_or("A merged image set disappeared")?;
                let document = load_document(service, &set.latest().metadata_key)
                    .ok_or("Could not read the metadata of a merged image set")?;
                (set, document)
            }
            Target::NewPrimary | Target::NewNonPrimary => {
                let id = loop {
                    let id = service.resource_ids.resource_id();
                    if !store.image_sets.contains_key(&id) {
                        break id;
                    }
                };
                let set = ImageSet {
                    id,
                    datastore_id: ds.clone(),
                    is_primary: group.target == Target::NewPrimary,
                    created_at: now,
                    tags: Default::default(),
                    versions: Vec::new(),
                    frames: Default::default(),
                    lock: None,
                };
                (
                    set,
                    json!({ "Patient": {"DICOM": {}}, "Study": {"DICOM": {}, "Series": {}} }),
                )
            }
        };
        let version_id = set.versions.last().map_or(1, |v| v.version_id + 1);
        for instance in &group.instances {
            crate::metadata::combine::merge(&mut document, &instance.document);
            for frame in instance.document["Study"]["Series"][&instance.series_uid]["Instances"]
                [&instance.sop_uid]["ImageFrames"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if let Some(id) = frame["ID"].as_str() {
                    set.frames
                        .insert(id.to_owned(), instance.stored_transfer_syntax.clone());
                }
            }
            outcome.imported.push(Imported {
                key: instance.key.clone(),
                sop_uid: instance.sop_uid.clone(),
                series_uid: instance.series_uid.clone(),
                study_uid: instance.study_uid.clone(),
                image_set_id: set.id.clone(),
                version: version_id,
                is_primary: set.is_primary,
            });
        }
        let document = metadata::with_identity(document, ds, &set.id);
        let key = blobs::metadata_key(&set.id, version_id);
        service
            .blobs
            .put(&key, &metadata::stored::gzip(&document))
            .map_err(|e| format!("Could not store metadata: {e}"))?;
        set.versions.push(ImageSetVersion {
            version_id,
            state: ImageSetState::Active,
            workflow_status: WorkflowStatus::Imported,
            created_at: now,
            updated_at: now,
            message: None,
            forced: false,
            tags: DicomTags::of_document(&document),
            metadata_key: key,
        });
        outcome.image_sets.push((set, group.instances.len()));
    }
    service
        .blobs
        .sync()
        .map_err(|e| format!("Could not store metadata: {e}"))?;
    outputs::write(&service.s3, job, &outcome)
        .map_err(|e| format!("Could not write the job's output files: {e}"))?;
    store
        .commit(Change::JobEnded {
            job_id: job.id.clone(),
            status: JobStatus::Completed,
            at: now,
            message: None,
            image_sets: outcome.image_sets.into_iter().map(|(set, _)| set).collect(),
        })
        .map_err(|e| e.message)
}

/// The stored document `key`, parsed.
pub fn load_document(service: &Service, key: &str) -> Option<Json> {
    let bytes = service.blobs.get(key).ok()??;
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
        let (frame_id, syntax) = service.store().image_sets[&set]
            .frames
            .iter()
            .next()
            .map(|(k, v)| (k.clone(), v.clone()))
            .unwrap();
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
