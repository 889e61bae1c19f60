//! Converting a data directory written by an earlier emulator, which kept
//! its state in `journal.ndjson` (one JSON change per line, whole image sets
//! rewritten on every write) and its blobs under `frames/` and `metadata/`.
//!
//! The journal is folded into its final state and written into the database
//! in one transaction, every blob re-stored under its content name. Image
//! sets the journal shows deleted are converted erased. Once the transaction
//! has committed, the journal and the old blob folders are deleted: they
//! hold every version ever written, erased patients included. A crash
//! before the commit leaves the old directory as it was, and the next start
//! converts again.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::Path;

use serde::Deserialize;

use crate::clock::Timestamp;

use super::blobs::BlobId;
use super::datastore::{Datastore, LosslessStorageFormat};
use super::image_set::{DicomTags, ImageSetState, ImageSetVersion, Lock, WorkflowStatus};
use super::job::{ImportJob, JobStatus};
use super::reader::{FrameEntry, TokenKind};
use super::{Store, StoreError};

const JOURNAL: &str = "journal.ndjson";
const OLD_FOLDERS: [&str; 2] = ["frames", "metadata"];

#[derive(Debug, Deserialize)]
struct OldDatastore {
    id: String,
    name: String,
    seq: u64,
    kms_key_arn: Option<String>,
    lambda_authorizer_arn: Option<String>,
    lossless_storage_format: LosslessStorageFormat,
    created_at: Timestamp,
    delete_requested_at: Option<Timestamp>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OldJob {
    id: String,
    name: String,
    datastore_id: String,
    seq: u64,
    status: JobStatus,
    data_access_role_arn: String,
    input_s3_uri: String,
    output_s3_uri: String,
    input_owner_account_id: Option<String>,
    import_configuration: Option<serde_json::Value>,
    submitted_at: Timestamp,
    ended_at: Option<Timestamp>,
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OldVersion {
    version_id: u32,
    state: ImageSetState,
    workflow_status: WorkflowStatus,
    created_at: Timestamp,
    updated_at: Timestamp,
    message: Option<String>,
    forced: bool,
    tags: DicomTags,
    metadata_key: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OldImageSet {
    id: String,
    datastore_id: String,
    is_primary: bool,
    created_at: Timestamp,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    versions: Vec<OldVersion>,
    #[serde(default)]
    frames: BTreeMap<String, String>,
    lock: Option<Lock>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "change", rename_all = "camelCase")]
enum Change {
    #[serde(rename_all = "camelCase")]
    DatastoreCreated {
        datastore: OldDatastore,
        client_token: String,
        fingerprint: String,
    },
    #[serde(rename_all = "camelCase")]
    DatastoreDeleteRequested { datastore_id: String, at: Timestamp },
    #[serde(rename_all = "camelCase")]
    DatastoreTagged {
        datastore_id: String,
        tags: BTreeMap<String, String>,
    },
    #[serde(rename_all = "camelCase")]
    ImageSetTagged {
        image_set_id: String,
        tags: BTreeMap<String, String>,
    },
    #[serde(rename_all = "camelCase")]
    JobSubmitted {
        job: OldJob,
        client_token: String,
        fingerprint: String,
    },
    #[serde(rename_all = "camelCase")]
    JobStarted { job_id: String },
    #[serde(rename_all = "camelCase")]
    JobEnded {
        job_id: String,
        status: JobStatus,
        at: Timestamp,
        message: Option<String>,
        image_sets: Vec<OldImageSet>,
    },
    #[serde(rename_all = "camelCase")]
    ImageSetsWritten { image_sets: Vec<OldImageSet> },
}

/// The journal folded into its final state.
#[derive(Debug, Default)]
struct Folded {
    datastores: BTreeMap<u64, OldDatastore>,
    tokens: Vec<(TokenKind, String, String, String)>,
    jobs: BTreeMap<String, OldJob>,
    image_sets: BTreeMap<String, OldImageSet>,
    order: Vec<String>,
}

impl Folded {
    fn apply(&mut self, change: Change) {
        match change {
            Change::DatastoreCreated {
                datastore,
                client_token,
                fingerprint,
            } => {
                self.tokens.push((
                    TokenKind::Datastore,
                    client_token,
                    fingerprint,
                    datastore.id.clone(),
                ));
                self.datastores.insert(datastore.seq, datastore);
            }
            Change::DatastoreDeleteRequested { datastore_id, at } => {
                for datastore in self.datastores.values_mut() {
                    if datastore.id == datastore_id {
                        datastore.delete_requested_at = Some(at);
                    }
                }
            }
            Change::DatastoreTagged { datastore_id, tags } => {
                for datastore in self.datastores.values_mut() {
                    if datastore.id == datastore_id {
                        datastore.tags = tags.clone();
                    }
                }
            }
            Change::ImageSetTagged { image_set_id, tags } => {
                if let Some(set) = self.image_sets.get_mut(&image_set_id) {
                    set.tags = tags;
                }
            }
            Change::JobSubmitted {
                job,
                client_token,
                fingerprint,
            } => {
                self.tokens
                    .push((TokenKind::Job, client_token, fingerprint, job.id.clone()));
                self.jobs.insert(job.id.clone(), job);
            }
            Change::JobStarted { job_id } => {
                if let Some(job) = self.jobs.get_mut(&job_id) {
                    job.status = JobStatus::InProgress;
                }
            }
            Change::JobEnded {
                job_id,
                status,
                at,
                message,
                image_sets,
            } => {
                if let Some(job) = self.jobs.get_mut(&job_id) {
                    job.status = status;
                    job.ended_at = Some(at);
                    job.message = message;
                }
                self.put(image_sets);
            }
            Change::ImageSetsWritten { image_sets } => self.put(image_sets),
        }
    }

    fn put(&mut self, image_sets: Vec<OldImageSet>) {
        for set in image_sets {
            if !self.image_sets.contains_key(&set.id) {
                self.order.push(set.id.clone());
            }
            self.image_sets.insert(set.id.clone(), set);
        }
    }
}

/// Reads every change of the journal; a torn last line (a write that was
/// never acknowledged) is dropped, damage anywhere else refuses.
fn read_journal(path: &Path) -> Result<Vec<Change>, StoreError> {
    let file = std::fs::File::open(path)?;
    let mut changes = Vec::new();
    let mut damaged: Option<(usize, String)> = None;
    for (number, line) in std::io::BufReader::new(file).split(b'\n').enumerate() {
        let line = line?;
        if let Some((at, problem)) = damaged.take() {
            return Err(StoreError::Damaged(format!(
                "the journal {} is damaged at line {at} ({problem}); move the data directory away to start afresh",
                path.display()
            )));
        }
        match serde_json::from_slice::<Change>(&line) {
            Ok(change) => changes.push(change),
            Err(error) => damaged = Some((number + 1, error.to_string())),
        }
    }
    if let Some((at, _)) = damaged {
        tracing::warn!(
            line = at,
            "the journal's last line was never completed; it is dropped"
        );
    }
    Ok(changes)
}

/// Converts `dir` if it holds a journal, then removes what the conversion
/// made obsolete.
pub(super) fn convert_if_present(store: &Store, dir: &Path) -> Result<(), StoreError> {
    let journal = dir.join(JOURNAL);
    if !journal.exists() {
        return Ok(());
    }
    let mut folded = Folded::default();
    for change in read_journal(&journal)? {
        folded.apply(change);
    }
    let image_sets = folded.image_sets.len();
    store.write(|w| write_folded(w, dir, &mut folded))?;
    std::fs::remove_file(&journal)?;
    for folder in OLD_FOLDERS {
        let path = dir.join(folder);
        if path.exists() {
            std::fs::remove_dir_all(path)?;
        }
    }
    tracing::info!(
        image_sets,
        "converted a journal data directory into the database"
    );
    Ok(())
}

fn write_folded(
    w: &mut super::Writer<'_>,
    dir: &Path,
    folded: &mut Folded,
) -> Result<(), StoreError> {
    for datastore in folded.datastores.values() {
        w.insert_datastore(&Datastore {
            id: datastore.id.clone(),
            name: datastore.name.clone(),
            seq: datastore.seq,
            kms_key_arn: datastore.kms_key_arn.clone(),
            lambda_authorizer_arn: datastore.lambda_authorizer_arn.clone(),
            lossless_storage_format: datastore.lossless_storage_format,
            created_at: datastore.created_at,
            delete_requested_at: datastore.delete_requested_at,
            tags: datastore.tags.clone(),
        })?;
    }
    for (kind, token, fingerprint, resource) in &folded.tokens {
        w.insert_client_token(*kind, token, fingerprint, resource)?;
    }
    for job in folded.jobs.values() {
        w.insert_job(&ImportJob {
            id: job.id.clone(),
            name: job.name.clone(),
            datastore_id: job.datastore_id.clone(),
            seq: job.seq,
            status: job.status,
            data_access_role_arn: job.data_access_role_arn.clone(),
            input_s3_uri: job.input_s3_uri.clone(),
            output_s3_uri: job.output_s3_uri.clone(),
            input_owner_account_id: job.input_owner_account_id.clone(),
            import_configuration: job.import_configuration.clone(),
            submitted_at: job.submitted_at,
            ended_at: job.ended_at,
            message: job.message.clone(),
        })?;
    }
    let mut documents: HashMap<String, BlobId> = HashMap::new();
    for id in &folded.order {
        let Some(old) = folded.image_sets.get(id) else {
            continue;
        };
        let deleted = old
            .versions
            .last()
            .is_some_and(|v| v.state == ImageSetState::Deleted);
        let mut versions = Vec::with_capacity(old.versions.len());
        for version in &old.versions {
            let metadata = if deleted {
                None
            } else if let Some(blob) = documents.get(&version.metadata_key) {
                Some(blob.clone())
            } else {
                let bytes = std::fs::read(dir.join(&version.metadata_key))?;
                let blob = w.put_blob(&bytes)?;
                documents.insert(version.metadata_key.clone(), blob.clone());
                Some(blob)
            };
            versions.push(ImageSetVersion {
                version_id: version.version_id,
                state: version.state,
                workflow_status: version.workflow_status,
                created_at: version.created_at,
                updated_at: version.updated_at,
                message: version.message.clone(),
                forced: version.forced,
                tags: version.tags.clone(),
                metadata,
            });
        }
        let mut versions = versions.into_iter();
        let Some(first) = versions.next() else {
            continue;
        };
        let mut set = w.create_image_set(
            &old.id,
            &old.datastore_id,
            old.is_primary,
            old.created_at,
            first,
            old.lock,
        )?;
        for version in versions {
            w.append_version(&mut set, version)?;
        }
        if deleted {
            let at = set.latest.updated_at;
            w.erase(&mut set, at)?;
            continue;
        }
        w.set_image_set_tags(&mut set, old.tags.clone())?;
        let mut frames = Vec::with_capacity(old.frames.len());
        for (frame_id, syntax) in &old.frames {
            let bytes = std::fs::read(dir.join("frames").join(frame_id))?;
            frames.push(FrameEntry {
                frame_id: frame_id.clone(),
                transfer_syntax: syntax.clone(),
                blob: w.put_blob(&bytes)?,
            });
        }
        w.add_frames(&set, &frames)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::Location;

    fn line(value: serde_json::Value) -> String {
        format!("{value}\n")
    }

    #[test]
    fn a_journal_directory_is_converted_once_and_its_old_files_removed() {
        let dir = tempfile::tempdir().unwrap();
        let ds = "d".repeat(32);
        let (kept, gone) = ("a".repeat(32), "b".repeat(32));
        std::fs::create_dir_all(dir.path().join("frames")).unwrap();
        std::fs::create_dir_all(dir.path().join("metadata")).unwrap();
        std::fs::write(dir.path().join("frames").join("f".repeat(32)), b"frame").unwrap();
        for key in [
            format!("{kept}-1"),
            format!("{kept}-2"),
            format!("{gone}-1"),
        ] {
            std::fs::write(
                dir.path().join("metadata").join(format!("{key}.json.gz")),
                key.as_bytes(),
            )
            .unwrap();
        }
        let version = |n: u32, set: &str, state: &str, patient: &str| {
            json!({"versionId": n, "state": state, "workflowStatus": if state == "DELETED" { "DELETED" } else { "IMPORTED" },
                "createdAt": 1.0, "updatedAt": 2.0 + f64::from(n), "message": null, "forced": false,
                "tags": {"patientId": patient, "numberOfStudyRelatedSeries": 1, "numberOfStudyRelatedInstances": 1},
                "metadataKey": format!("metadata/{set}-{n}.json.gz")})
        };
        let mut journal = String::new();
        journal += &line(
            json!({"change": "datastoreCreated", "datastore": {"id": ds, "name": "old", "seq": 0,
            "kms_key_arn": null, "lambda_authorizer_arn": null, "lossless_storage_format": "Htj2k",
            "created_at": 1.0, "delete_requested_at": null, "tags": {}}, "clientToken": "t", "fingerprint": "fp"}),
        );
        journal += &line(json!({"change": "imageSetsWritten", "imageSets": [
            {"id": kept, "datastoreId": ds, "isPrimary": true, "createdAt": 1.0, "tags": {},
             "versions": [version(1, &kept, "ACTIVE", "SYN-KEPT"), version(2, &kept, "ACTIVE", "SYN-KEPT")],
             "frames": {"f".repeat(32): "1.2.840.10008.1.2.4.202"}},
            {"id": gone, "datastoreId": ds, "isPrimary": true, "createdAt": 1.0, "tags": {},
             "versions": [version(1, &gone, "DELETED", "SYN-ERASED")], "frames": {}}]}));
        journal +=
            &line(json!({"change": "imageSetTagged", "imageSetId": kept, "tags": {"k": "v"}}));
        journal += "{\"change\":\"datastoreTag"; // a torn last line
        std::fs::write(dir.path().join(JOURNAL), journal).unwrap();

        let store = Store::open(&Location::Dir(dir.path().to_owned())).unwrap();
        for old in [JOURNAL, "frames", "metadata"] {
            assert!(!dir.path().join(old).exists(), "{old} is removed");
        }
        store
            .read(|r| {
                let set = r.image_set(&ds, &kept)?.expect("converted");
                assert_eq!(set.latest.version_id, 2);
                assert_eq!(set.tags.get("k").map(String::as_str), Some("v"));
                assert_eq!(set.latest.tags.patient_id.as_deref(), Some("SYN-KEPT"));
                let first = r.version(&set, 1)?.expect("version 1");
                let document = store
                    .blobs()
                    .get(first.metadata.as_ref().unwrap())?
                    .unwrap();
                assert_eq!(document.as_ref(), format!("{kept}-1").as_bytes());
                let frame = r.frame(&set, &"f".repeat(32))?.expect("frame listed");
                assert_eq!(store.blobs().get(&frame.blob)?.unwrap().as_ref(), b"frame");
                let erased = r.image_set(&ds, &gone)?.expect("still known");
                assert!(erased.is_deleted());
                assert_eq!(erased.latest.metadata, None);
                assert_eq!(erased.latest.tags, DicomTags::default());
                assert_eq!(
                    r.client_token(TokenKind::Datastore, "t")?
                        .unwrap()
                        .resource_id,
                    ds
                );
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let database = std::fs::read(store.database_path().unwrap()).unwrap();
        drop(store);
        let reopened = Store::open(&Location::Dir(dir.path().to_owned())).unwrap();
        let count = reopened.read(|r| r.totals()).unwrap();
        assert_eq!(count, (1, 2), "opened again without converting twice");
        assert!(
            !database.windows(10).any(|w| w == b"SYN-ERASED"),
            "the erased patient is not in the database"
        );
    }
}
