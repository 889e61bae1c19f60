//! The emulator's state: datastores, image sets, idempotency tokens.
//!
//! The store is plain data behind one mutex in [`crate::service::Service`].
//! Every operation takes the lock once, checks and changes what it needs, and
//! releases it before the response is written, so each operation is atomic
//! with respect to every other.

mod datastore;

use std::collections::{BTreeMap, HashMap};

pub use datastore::{Datastore, DatastoreStatus, LosslessStorageFormat};

/// What a `clientToken` of CreateDatastore was first used for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTokenUse {
    /// The request parameters, to tell a retry from a reuse with other values.
    pub fingerprint: String,
    /// The datastore the first request created.
    pub datastore_id: String,
}

/// An image set, as far as the control plane sees it: its datastore and tags.
#[derive(Debug, Clone, Default)]
pub struct ImageSet {
    /// The datastore holding the image set.
    pub datastore_id: String,
    /// The resource tags.
    pub tags: BTreeMap<String, String>,
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
    /// The creation sequence number the next datastore gets.
    pub next_seq: u64,
}

impl Store {
    /// Datastores in creation order.
    pub fn datastores_in_creation_order(&self) -> Vec<&Datastore> {
        let mut all: Vec<&Datastore> = self.datastores.values().collect();
        all.sort_by_key(|ds| ds.seq);
        all
    }

    /// How many image sets `datastore_id` holds.
    pub fn image_set_count(&self, datastore_id: &str) -> usize {
        self.image_sets
            .values()
            .filter(|set| set.datastore_id == datastore_id)
            .count()
    }
}
