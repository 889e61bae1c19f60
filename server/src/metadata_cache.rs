//! Parsed metadata documents, kept while they are in use.
//!
//! HealthImaging never changes the document of an image set version: a
//! change makes a new version. So a document fetched, gunzipped and parsed
//! once serves every later read of that version, with an index from frame
//! IDs and SOP instance UIDs to where they sit, and a frame or an instance
//! costs the same in a 10-instance image set as in a 3,000-instance one.
//!
//! Each read still asks HealthImaging which version is current (and whether
//! the image set still exists) with a GetImageSet: an erased or deleted
//! image set is never served from memory, and the server drops its
//! documents as soon as it deletes one itself. The cache is bounded by the
//! size of the documents' JSON text, least recently used first out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// The budget of JSON text held (parsed, a document takes a few times more).
pub const DEFAULT_BUDGET_BYTES: usize = 64 << 20;

/// Where a frame is listed.
#[derive(Debug, Clone)]
pub struct FrameLocation {
    /// Its series.
    pub series_instance_uid: String,
    /// Its instance.
    pub sop_instance_uid: String,
    /// Its 0-based position in the instance's ImageFrames.
    pub index: usize,
}

/// One version's metadata document, parsed and indexed.
#[derive(Debug)]
pub struct ParsedMetadata {
    /// The document.
    pub document: Value,
    /// The size of its JSON text.
    pub text_bytes: usize,
    frames: HashMap<String, FrameLocation>,
    series_of_instance: HashMap<String, String>,
    instance_count: usize,
}

impl ParsedMetadata {
    /// Indexes `document`, whose JSON text was `text_bytes` long.
    pub fn new(document: Value, text_bytes: usize) -> Self {
        let mut frames = HashMap::new();
        let mut series_of_instance = HashMap::new();
        for (series_uid, series) in document["Study"]["Series"]
            .as_object()
            .into_iter()
            .flatten()
        {
            for (sop, instance) in series["Instances"].as_object().into_iter().flatten() {
                series_of_instance.insert(sop.clone(), series_uid.clone());
                for (index, frame) in instance["ImageFrames"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    if let Some(id) = frame["ID"].as_str() {
                        frames.insert(
                            id.to_owned(),
                            FrameLocation {
                                series_instance_uid: series_uid.clone(),
                                sop_instance_uid: sop.clone(),
                                index,
                            },
                        );
                    }
                }
            }
        }
        let instance_count = series_of_instance.len();
        Self {
            document,
            text_bytes,
            frames,
            series_of_instance,
            instance_count,
        }
    }

    /// Where `frame_id` is listed.
    pub fn frame(&self, frame_id: &str) -> Option<&FrameLocation> {
        self.frames.get(frame_id)
    }

    /// The series holding instance `sop`.
    pub fn series_of(&self, sop: &str) -> Option<&str> {
        self.series_of_instance.get(sop).map(String::as_str)
    }

    /// The series' documents by SeriesInstanceUID.
    pub fn series(&self) -> Option<&serde_json::Map<String, Value>> {
        self.document["Study"]["Series"].as_object()
    }

    /// How many series the document holds.
    pub fn series_count(&self) -> usize {
        self.series().map_or(0, serde_json::Map::len)
    }

    /// How many instances the document holds.
    pub fn instance_count(&self) -> usize {
        self.instance_count
    }
}

/// (datastore, image set, version).
type Key = (String, String, String);

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<Key, (Arc<ParsedMetadata>, u64)>,
    bytes: usize,
    tick: u64,
}

/// Parsed documents by image set version, bounded by their text size.
#[derive(Debug)]
pub struct MetadataCache {
    budget: usize,
    entries: Mutex<Entries>,
}

impl Default for MetadataCache {
    fn default() -> Self {
        Self::new(DEFAULT_BUDGET_BYTES)
    }
}

impl MetadataCache {
    /// A cache holding at most `budget` bytes of document text.
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            entries: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves consistent entries behind.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The document of this version, if held.
    pub fn get(
        &self,
        datastore: &str,
        image_set: &str,
        version: &str,
    ) -> Option<Arc<ParsedMetadata>> {
        let mut entries = self.lock();
        entries.tick += 1;
        let tick = entries.tick;
        let key = (
            datastore.to_owned(),
            image_set.to_owned(),
            version.to_owned(),
        );
        let (parsed, used) = entries.map.get_mut(&key)?;
        *used = tick;
        Some(parsed.clone())
    }

    /// Holds `parsed` as this version's document, evicting the least
    /// recently used ones over the budget. A document larger than the
    /// whole budget is not held.
    pub fn insert(
        &self,
        datastore: &str,
        image_set: &str,
        version: &str,
        parsed: Arc<ParsedMetadata>,
    ) {
        if parsed.text_bytes > self.budget {
            return;
        }
        let mut entries = self.lock();
        entries.tick += 1;
        let tick = entries.tick;
        let key = (
            datastore.to_owned(),
            image_set.to_owned(),
            version.to_owned(),
        );
        entries.bytes += parsed.text_bytes;
        if let Some((old, _)) = entries.map.insert(key, (parsed, tick)) {
            entries.bytes -= old.text_bytes;
        }
        while entries.bytes > self.budget {
            let Some(oldest) = entries
                .map
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(key, _)| key.clone())
            else {
                break;
            };
            if let Some((gone, _)) = entries.map.remove(&oldest) {
                entries.bytes -= gone.text_bytes;
            }
        }
    }

    /// Drops every version of `image_set` (it was deleted).
    pub fn forget(&self, image_set: &str) {
        let mut entries = self.lock();
        let mut freed = 0;
        entries.map.retain(|(_, id, _), (parsed, _)| {
            let keep = id != image_set;
            if !keep {
                freed += parsed.text_bytes;
            }
            keep
        });
        entries.bytes -= freed;
    }

    /// How many documents are held, and their text size.
    pub fn usage(&self) -> (usize, usize) {
        let entries = self.lock();
        (entries.map.len(), entries.bytes)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parsed(bytes: usize) -> Arc<ParsedMetadata> {
        Arc::new(ParsedMetadata::new(json!({}), bytes))
    }

    #[test]
    fn the_index_finds_frames_and_instances() {
        let document = json!({"Study": {"Series": {
            "1.1": {"Instances": {
                "1.1.1": {"ImageFrames": [{"ID": "a"}, {"ID": "b"}]},
                "1.1.2": {"ImageFrames": [{"ID": "c"}]}}},
            "1.2": {"Instances": {"1.2.1": {}}}}}});
        let parsed = ParsedMetadata::new(document, 100);
        let b = parsed.frame("b").unwrap();
        assert_eq!(
            (
                b.series_instance_uid.as_str(),
                b.sop_instance_uid.as_str(),
                b.index
            ),
            ("1.1", "1.1.1", 1)
        );
        assert!(parsed.frame("z").is_none());
        assert_eq!(parsed.series_of("1.2.1"), Some("1.2"));
        assert_eq!((parsed.series_count(), parsed.instance_count()), (2, 3));
    }

    #[test]
    fn the_least_recently_used_go_first_and_the_budget_holds() {
        let cache = MetadataCache::new(100);
        cache.insert("d", "a", "1", parsed(40));
        cache.insert("d", "b", "1", parsed(40));
        assert!(
            cache.get("d", "a", "1").is_some(),
            "a is now the most recent"
        );
        cache.insert("d", "c", "1", parsed(40));
        assert!(
            cache.get("d", "b", "1").is_none(),
            "b was the least recently used"
        );
        assert!(cache.get("d", "a", "1").is_some());
        assert_eq!(cache.usage(), (2, 80));
        cache.insert("d", "huge", "1", parsed(101));
        assert!(cache.get("d", "huge", "1").is_none());
        assert_eq!(cache.usage(), (2, 80));
    }

    #[test]
    fn forgetting_an_image_set_drops_every_version() {
        let cache = MetadataCache::new(1000);
        cache.insert("d", "a", "1", parsed(10));
        cache.insert("d", "a", "2", parsed(10));
        cache.insert("d", "b", "1", parsed(10));
        cache.forget("a");
        assert!(cache.get("d", "a", "1").is_none());
        assert!(cache.get("d", "a", "2").is_none());
        assert_eq!(cache.usage(), (1, 10));
    }
}
