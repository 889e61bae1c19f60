//! The emulator's state: datastores, image sets and their versions, import
//! jobs, idempotency tokens, and the search index.
//!
//! The store is plain data behind one mutex in [`crate::service::Service`].
//! Every operation takes the lock once, checks what it needs, and changes the
//! state only through [`Store::commit`]: the [`Change`] is appended to the
//! journal (with `--data-dir`) and synced, then applied. Replaying the journal
//! at start applies the same changes in the same order, so a restart restores
//! exactly what was acknowledged. Frames and metadata documents are blobs
//! ([`crate::blobs`]) written and synced before the change that names them,
//! so no committed image set ever points at a missing file.

mod datastore;
mod image_set;
mod index;
mod job;
mod journal;

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::{ApiError, ApiResult, ErrorCode};

pub use datastore::{Datastore, DatastoreStatus, LosslessStorageFormat};
pub use image_set::{
    DicomTags, ImageSet, ImageSetState, ImageSetVersion, Lock, WorkflowStatus,
    normalized_date_time, wire_name,
};
pub use index::{Attribute, Condition, Cursor, Query, SearchIndex, SortField, SortKey};
pub use job::{ImportJob, JobStatus};
pub use journal::Journal;

/// What a `clientToken` was first used for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientTokenUse {
    /// The request parameters, to tell a retry from a reuse with other values.
    pub fingerprint: String,
    /// The datastore or job the first request created.
    pub resource_id: String,
}

/// One change to the store: the unit of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "camelCase")]
pub enum Change {
    /// CreateDatastore.
    #[serde(rename_all = "camelCase")]
    DatastoreCreated {
        /// The new datastore.
        datastore: Datastore,
        /// Its `clientToken`.
        client_token: String,
        /// The parameters it was created with.
        fingerprint: String,
    },
    /// DeleteDatastore.
    #[serde(rename_all = "camelCase")]
    DatastoreDeleteRequested {
        /// The datastore.
        datastore_id: String,
        /// When.
        at: Timestamp,
    },
    /// TagResource or UntagResource on a datastore: the new tag set.
    #[serde(rename_all = "camelCase")]
    DatastoreTagged {
        /// The datastore.
        datastore_id: String,
        /// Every tag it now has.
        tags: BTreeMap<String, String>,
    },
    /// TagResource or UntagResource on an image set: the new tag set.
    #[serde(rename_all = "camelCase")]
    ImageSetTagged {
        /// The image set.
        image_set_id: String,
        /// Every tag it now has.
        tags: BTreeMap<String, String>,
    },
    /// StartDICOMImportJob.
    #[serde(rename_all = "camelCase")]
    JobSubmitted {
        /// The new job.
        job: ImportJob,
        /// Its `clientToken`.
        client_token: String,
        /// The parameters it was started with.
        fingerprint: String,
    },
    /// An import job began to run.
    #[serde(rename_all = "camelCase")]
    JobStarted {
        /// The job.
        job_id: String,
    },
    /// An import job ended, with every image set it wrote, atomically.
    #[serde(rename_all = "camelCase")]
    JobEnded {
        /// The job.
        job_id: String,
        /// `COMPLETED` or `FAILED`.
        status: JobStatus,
        /// When.
        at: Timestamp,
        /// Why it failed.
        message: Option<String>,
        /// New image sets, and merged ones in full with their new version.
        image_sets: Vec<ImageSet>,
    },
    /// UpdateImageSetMetadata, CopyImageSet or DeleteImageSet: every image
    /// set the write touched, in full, atomically (an update with
    /// `includeStudyImageSets` touches every primary image set of a study;
    /// a copy touches its source's lock and its destination).
    #[serde(rename_all = "camelCase")]
    ImageSetsWritten {
        /// The image sets in their new state.
        image_sets: Vec<ImageSet>,
    },
}

/// All state of one emulator instance.
#[derive(Debug, Default)]
pub struct Store {
    /// Datastores by ID, including `DELETED` ones.
    pub datastores: BTreeMap<String, Datastore>,
    /// CreateDatastore idempotency tokens.
    pub client_tokens: HashMap<String, ClientTokenUse>,
    /// Image sets by ID.
    pub image_sets: BTreeMap<String, ImageSet>,
    /// Import jobs by ID.
    pub jobs: BTreeMap<String, ImportJob>,
    /// StartDICOMImportJob idempotency tokens.
    pub job_tokens: HashMap<String, ClientTokenUse>,
    /// The search index over the image sets.
    pub index: SearchIndex,
    /// The sequence number the next datastore or job gets.
    pub next_seq: u64,
    /// How many changes the store holds: the journal's length.
    pub changes: u64,
    journal: Option<Journal>,
}

impl Store {
    /// A store kept in `journal`, rebuilt from the changes it holds.
    pub fn replayed(journal: Journal, changes: Vec<Change>) -> Self {
        let mut store = Store::default();
        for change in changes {
            store.apply(change);
        }
        store.journal = Some(journal);
        store
    }

    /// Records `change` durably (when the store has a journal), then applies it.
    pub fn commit(&mut self, change: Change) -> ApiResult<()> {
        if let Some(journal) = &mut self.journal {
            journal.append(&change).map_err(|error| {
                tracing::error!(journal = %journal.path().display(), %error, "journal write failed");
                ApiError::new(
                    ErrorCode::InternalServer,
                    "The emulator could not record the change durably",
                )
            })?;
        }
        self.apply(change);
        Ok(())
    }

    /// Forgets everything, including the journal's contents.
    pub fn clear(&mut self) -> std::io::Result<()> {
        let mut journal = self.journal.take();
        if let Some(journal) = &mut journal {
            journal.clear()?;
        }
        *self = Store {
            journal,
            ..Store::default()
        };
        Ok(())
    }

    fn apply(&mut self, change: Change) {
        self.changes += 1;
        match change {
            Change::DatastoreCreated {
                datastore,
                client_token,
                fingerprint,
            } => {
                self.next_seq = self.next_seq.max(datastore.seq + 1);
                self.client_tokens.insert(
                    client_token,
                    ClientTokenUse {
                        fingerprint,
                        resource_id: datastore.id.clone(),
                    },
                );
                self.datastores.insert(datastore.id.clone(), datastore);
            }
            Change::DatastoreDeleteRequested { datastore_id, at } => {
                if let Some(datastore) = self.datastores.get_mut(&datastore_id) {
                    datastore.delete_requested_at = Some(at);
                }
            }
            Change::DatastoreTagged { datastore_id, tags } => {
                if let Some(datastore) = self.datastores.get_mut(&datastore_id) {
                    datastore.tags = tags;
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
                self.next_seq = self.next_seq.max(job.seq + 1);
                self.job_tokens.insert(
                    client_token,
                    ClientTokenUse {
                        fingerprint,
                        resource_id: job.id.clone(),
                    },
                );
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
                for set in image_sets {
                    self.put_image_set(set);
                }
            }
            Change::ImageSetsWritten { image_sets } => {
                for set in image_sets {
                    self.put_image_set(set);
                }
            }
        }
    }

    /// Puts `set` in place of any earlier state of it, outside the journal:
    /// for replay, and for tests and benchmarks that need image sets without
    /// an import. Nothing put this way survives a restart.
    pub fn put_image_set(&mut self, set: ImageSet) {
        let searchable = !set.is_deleted();
        self.index.update(&set, searchable);
        self.image_sets.insert(set.id.clone(), set);
    }

    /// Datastores in creation order.
    pub fn datastores_in_creation_order(&self) -> Vec<&Datastore> {
        let mut all: Vec<&Datastore> = self.datastores.values().collect();
        all.sort_by_key(|ds| ds.seq);
        all
    }

    /// How many image sets `datastore_id` holds (deleted ones excluded).
    pub fn image_set_count(&self, datastore_id: &str) -> usize {
        self.index.count(datastore_id)
    }

    /// The image set `image_set_id` of `datastore_id`.
    pub fn image_set(&self, datastore_id: &str, image_set_id: &str) -> Option<&ImageSet> {
        self.image_sets
            .get(image_set_id)
            .filter(|set| set.datastore_id == datastore_id)
    }

    /// The primary image set of a series in a datastore, if there is one.
    pub fn primary_image_set(&self, datastore_id: &str, series_uid: &str) -> Option<&ImageSet> {
        let query = Query {
            datastore_id: datastore_id.to_owned(),
            conditions: vec![
                Condition::Equal(Attribute::SeriesInstanceUid, series_uid.to_owned()),
                Condition::IsPrimary(true),
            ],
            sort: SortField::CreatedAt,
            descending: false,
            after: None,
            limit: 1,
        };
        self.index
            .search(&query)
            .first()
            .and_then(|(_, id)| self.image_sets.get(id))
    }

    /// Jobs of `datastore_id`, oldest first.
    pub fn jobs_of(&self, datastore_id: &str) -> Vec<&ImportJob> {
        let mut jobs: Vec<&ImportJob> = self
            .jobs
            .values()
            .filter(|job| job.datastore_id == datastore_id)
            .collect();
        jobs.sort_by_key(|job| job.seq);
        jobs
    }
}
