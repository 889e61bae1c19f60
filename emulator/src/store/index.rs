//! The search index over image sets: what SearchImageSets reads instead of
//! scanning every image set.
//!
//! Two structures, both kept current by [`crate::store::Store::apply`]:
//! - equality postings: (datastore, attribute, value) to the image sets
//!   holding that value, for the EQUAL filters on patient, accession, study
//!   and series identifiers;
//! - one ordered set per sort field, (datastore, key, image set), walked from
//!   the page cursor in the requested direction.
//!
//! A query with an EQUAL filter on an identifier reads only its postings; any
//! other query walks the ordered set of its sort field and stops once the page
//! is full. Either way the cost follows the page and the matches, not the
//! number of image sets in the store.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

use crate::store::image_set::ImageSet;

/// An attribute an EQUAL filter matches exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attribute {
    /// `DICOMPatientId`.
    PatientId,
    /// `DICOMAccessionNumber`.
    AccessionNumber,
    /// `DICOMStudyId`.
    StudyId,
    /// `DICOMStudyInstanceUID`.
    StudyInstanceUid,
    /// `DICOMSeriesInstanceUID`.
    SeriesInstanceUid,
}

/// A field results can be ordered by, and BETWEEN can bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortField {
    /// `updatedAt`.
    UpdatedAt,
    /// `createdAt`.
    CreatedAt,
    /// `DICOMStudyDateAndTime`.
    StudyDateAndTime,
}

impl SortField {
    fn slot(self) -> usize {
        match self {
            SortField::UpdatedAt => 0,
            SortField::CreatedAt => 1,
            SortField::StudyDateAndTime => 2,
        }
    }
}

/// A value of a sort field. Times are milliseconds; study date and time is
/// the normalized `YYYYMMDDHHMMSS.FFFFFF` (empty when the study has no date).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SortKey {
    /// `createdAt` or `updatedAt`.
    Millis(u64),
    /// `DICOMStudyDateAndTime`.
    Text(String),
}

/// One condition of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The attribute equals the value.
    Equal(Attribute, String),
    /// `isPrimary` equals the flag.
    IsPrimary(bool),
    /// The field lies within the bounds, both inclusive.
    Between(SortField, SortKey, SortKey),
}

/// A position in an ordering: the last key and image set of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The sort key of the last image set returned.
    pub key: SortKey,
    /// The last image set returned.
    pub image_set_id: String,
}

/// One page of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The datastore searched.
    pub datastore_id: String,
    /// Every condition must hold.
    pub conditions: Vec<Condition>,
    /// The ordering.
    pub sort: SortField,
    /// Descending order.
    pub descending: bool,
    /// Continue after this position.
    pub after: Option<Cursor>,
    /// At most this many results.
    pub limit: usize,
}

/// What the index holds of one image set.
#[derive(Debug, Clone)]
struct Entry {
    datastore_id: String,
    keys: [SortKey; 3],
    equal: Vec<(Attribute, String)>,
    is_primary: bool,
}

impl Entry {
    fn of(set: &ImageSet) -> Self {
        let tags = &set.latest().tags;
        let mut equal = Vec::new();
        for (attribute, value) in [
            (Attribute::PatientId, &tags.patient_id),
            (Attribute::AccessionNumber, &tags.accession_number),
            (Attribute::StudyId, &tags.study_id),
            (Attribute::StudyInstanceUid, &tags.study_instance_uid),
            (Attribute::SeriesInstanceUid, &tags.series_instance_uid),
        ] {
            if let Some(value) = value {
                equal.push((attribute, value.clone()));
            }
        }
        Self {
            datastore_id: set.datastore_id.clone(),
            keys: [
                SortKey::Millis(set.updated_at().as_millis()),
                SortKey::Millis(set.created_at.as_millis()),
                SortKey::Text(tags.study_date_and_time().unwrap_or_default()),
            ],
            equal,
            is_primary: set.is_primary,
        }
    }

    fn satisfies(&self, condition: &Condition) -> bool {
        match condition {
            Condition::Equal(attribute, value) => {
                self.equal.iter().any(|(a, v)| a == attribute && v == value)
            }
            Condition::IsPrimary(flag) => self.is_primary == *flag,
            Condition::Between(field, low, high) => {
                let key = &self.keys[field.slot()];
                // A study without a date is outside every date range.
                key != &SortKey::Text(String::new()) && low <= key && key <= high
            }
        }
    }
}

/// (datastore, sort key, image set): one entry of an ordered set.
type Position = (String, SortKey, String);
type Ordered = BTreeSet<Position>;

/// The index.
#[derive(Debug, Default)]
pub struct SearchIndex {
    entries: HashMap<String, Entry>,
    postings: HashMap<(String, Attribute, String), BTreeSet<String>>,
    ordered: [Ordered; 3],
}

impl SearchIndex {
    /// Indexes `set` as it is now, replacing what was indexed of it; a
    /// deleted image set leaves the index.
    pub fn update(&mut self, set: &ImageSet, searchable: bool) {
        self.remove(&set.id);
        if !searchable {
            return;
        }
        let entry = Entry::of(set);
        for (attribute, value) in &entry.equal {
            self.postings
                .entry((entry.datastore_id.clone(), *attribute, value.clone()))
                .or_default()
                .insert(set.id.clone());
        }
        for (ordered, key) in self.ordered.iter_mut().zip(&entry.keys) {
            ordered.insert((entry.datastore_id.clone(), key.clone(), set.id.clone()));
        }
        self.entries.insert(set.id.clone(), entry);
    }

    fn remove(&mut self, id: &str) {
        let Some(entry) = self.entries.remove(id) else {
            return;
        };
        for (attribute, value) in entry.equal {
            let key = (entry.datastore_id.clone(), attribute, value);
            if let Some(ids) = self.postings.get_mut(&key) {
                ids.remove(id);
                if ids.is_empty() {
                    self.postings.remove(&key);
                }
            }
        }
        for (ordered, key) in self.ordered.iter_mut().zip(entry.keys) {
            ordered.remove(&(entry.datastore_id.clone(), key, id.to_owned()));
        }
    }

    /// How many image sets of `datastore_id` are searchable.
    pub fn count(&self, datastore_id: &str) -> usize {
        self.ordered[0].range(datastore_range(datastore_id)).count()
    }

    /// One page of `query`: the image sets with their sort keys, in order.
    /// One more than `limit` is returned when more follow.
    pub fn search(&self, query: &Query) -> Vec<(SortKey, String)> {
        let slot = query.sort.slot();
        let passes = |entry: &Entry| query.conditions.iter().all(|c| entry.satisfies(c));
        let narrowest = query
            .conditions
            .iter()
            .filter_map(|condition| match condition {
                Condition::Equal(attribute, value) => Some(self.postings.get(&(
                    query.datastore_id.clone(),
                    *attribute,
                    value.clone(),
                ))),
                _ => None,
            })
            .min_by_key(|postings| postings.map_or(0, BTreeSet::len));
        if let Some(postings) = narrowest {
            let mut hits: Vec<(SortKey, String)> = postings
                .into_iter()
                .flatten()
                .filter_map(|id| self.entries.get(id).map(|entry| (id, entry)))
                .filter(|(_, entry)| passes(entry))
                .map(|(id, entry)| (entry.keys[slot].clone(), id.clone()))
                .filter(|hit| is_after(hit, query))
                .collect();
            hits.sort();
            if query.descending {
                hits.reverse();
            }
            hits.truncate(query.limit + 1);
            return hits;
        }
        let ordered = &self.ordered[slot];
        let ds = &query.datastore_id;
        let bound = query.conditions.iter().find_map(|c| match c {
            Condition::Between(field, low, high) if field.slot() == slot => Some((low, high)),
            _ => None,
        });
        let (mut low, mut high) = datastore_range(ds);
        // A BETWEEN on the sort field starts the walk at its near end.
        if let Some((from, to)) = bound {
            if query.descending {
                high = Bound::Excluded((ds.clone(), to.clone(), "~".to_owned()));
            } else {
                low = Bound::Included((ds.clone(), from.clone(), String::new()));
            }
        }
        if let Some(cursor) = &query.after {
            let at = (ds.clone(), cursor.key.clone(), cursor.image_set_id.clone());
            if query.descending {
                high = tighter(high, Bound::Excluded(at), true);
            } else {
                low = tighter(low, Bound::Excluded(at), false);
            }
        }
        let range = ordered.range((low, high));
        let walk: Box<dyn Iterator<Item = &Position>> = if query.descending {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        let mut hits = Vec::new();
        for (_, key, id) in walk {
            if let Some((low, high)) = bound {
                // Past the far end of the range in walking order: nothing more can match.
                if (query.descending && key < low) || (!query.descending && key > high) {
                    break;
                }
            }
            if self.entries.get(id).is_some_and(passes) {
                hits.push((key.clone(), id.clone()));
                if hits.len() > query.limit {
                    break;
                }
            }
        }
        hits
    }
}

/// The narrower of two lower bounds (`upper` false) or two upper bounds.
fn tighter(a: Bound<Position>, b: Bound<Position>, upper: bool) -> Bound<Position> {
    let key = |bound: &Bound<Position>| match bound {
        Bound::Included(p) | Bound::Excluded(p) => Some(p.clone()),
        Bound::Unbounded => None,
    };
    match (key(&a), key(&b)) {
        (Some(x), Some(y)) if (upper && x <= y) || (!upper && x >= y) => a,
        (Some(_), Some(_)) => b,
        (None, _) => b,
        (_, None) => a,
    }
}

/// Whether `hit` lies after the query's cursor in its order.
fn is_after(hit: &(SortKey, String), query: &Query) -> bool {
    let Some(cursor) = &query.after else {
        return true;
    };
    let at = (cursor.key.clone(), cursor.image_set_id.clone());
    if query.descending {
        *hit < at
    } else {
        *hit > at
    }
}

/// Every entry of `datastore_id` in an ordered set. IDs all have 32
/// characters, so `~` (above every ID character) ends the datastore's span.
fn datastore_range(datastore_id: &str) -> (Bound<Position>, Bound<Position>) {
    (
        Bound::Included((datastore_id.to_owned(), SortKey::Millis(0), String::new())),
        Bound::Excluded((
            format!("{datastore_id}~"),
            SortKey::Millis(0),
            String::new(),
        )),
    )
}
