//! Parsed metadata documents, kept for the DICOMweb reads.
//!
//! A stored document is content-addressed, so its parse never goes stale:
//! the cache is keyed by blob and bounded by the size of the documents'
//! text. An erased image set's document is never asked for again (its
//! image set is not found before its blob is named) and ages out.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

use serde_json::Value as Json;

use crate::store::{BlobId, Blobs};

/// How much document text the cache holds.
const BUDGET: usize = 256 * 1024 * 1024;

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<BlobId, (Arc<Json>, usize, u64)>,
    used: usize,
    tick: u64,
}

/// The cache.
#[derive(Debug, Default)]
pub struct Documents {
    inner: Mutex<Inner>,
}

impl Documents {
    /// The document stored as `blob`, parsed; `None` when the blob is
    /// missing or does not hold a document.
    pub fn get(&self, blobs: &Blobs, blob: &BlobId) -> Option<Arc<Json>> {
        {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            inner.tick += 1;
            let tick = inner.tick;
            if let Some(entry) = inner.entries.get_mut(blob) {
                entry.2 = tick;
                return Some(entry.0.clone());
            }
        }
        let bytes = blobs.get(blob).ok()??;
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut text)
            .ok()?;
        let document: Arc<Json> = Arc::new(serde_json::from_slice(&text).ok()?);
        let size = text.len();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while inner.used + size > BUDGET && !inner.entries.is_empty() {
            let oldest = inner
                .entries
                .iter()
                .min_by_key(|(_, (_, _, tick))| *tick)
                .map(|(id, _)| id.clone());
            if let Some(id) = oldest
                && let Some((_, freed, _)) = inner.entries.remove(&id)
            {
                inner.used -= freed;
            }
        }
        if size <= BUDGET {
            let tick = inner.tick;
            inner.used += size;
            if let Some((_, replaced, _)) = inner
                .entries
                .insert(blob.clone(), (document.clone(), size, tick))
            {
                inner.used -= replaced;
            }
        }
        Some(document)
    }

    /// Forgets every document (the store was reset or restored).
    pub fn clear(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.entries.clear();
        inner.used = 0;
    }
}
