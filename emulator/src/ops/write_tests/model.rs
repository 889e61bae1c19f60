//! Model-based test: random sequences of update, remove, copy, merge, revert
//! and delete against a small reference model of image sets and versions.
//! After every step each image set's version list and latest content equal
//! the model's; at the end every version's content does.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::{A, B, World, removals, study_description};
use crate::testing::{send, series_document};

/// What the model tracks of a version's document.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Content {
    description: String,
    instances: BTreeSet<String>,
}

#[derive(Debug, Clone)]
struct ModelSet {
    id: String,
    /// Workflow status and content of each version, oldest first.
    versions: Vec<(&'static str, Content)>,
    deleted: bool,
}

impl ModelSet {
    fn latest(&self) -> &Content {
        &self.versions.last().expect("never empty").1
    }

    fn latest_id(&self) -> String {
        self.versions.len().to_string()
    }
}

#[derive(Debug, Clone)]
enum Step {
    Describe(usize, u8),
    Remove(usize, usize),
    Copy(usize, u8),
    Merge(usize, usize),
    Revert(usize, usize),
    Delete(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (any::<usize>(), 0u8..4).prop_map(|(s, d)| Step::Describe(s, d)),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(s, i)| Step::Remove(s, i)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(s, m)| Step::Copy(s, m)),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(s, d)| Step::Merge(s, d)),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(s, v)| Step::Revert(s, v)),
        1 => any::<usize>().prop_map(Step::Delete),
    ]
}

fn content_of(document: &Value) -> Content {
    Content {
        description: document["Study"]["DICOM"]["StudyDescription"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        instances: document["Study"]["Series"]["1.2.3"]["Instances"]
            .as_object()
            .map(|i| i.keys().cloned().collect())
            .unwrap_or_default(),
    }
}

/// Runs `step` against the emulator and the model, checking the status.
async fn run(w: &World, model: &mut Vec<ModelSet>, step: &Step) {
    let n = model.len();
    let conflict = StatusCode::CONFLICT;
    match *step {
        Step::Describe(s, d) => {
            let set = &mut model[s % n];
            let text = format!("DESCRIPTION {d}");
            let query = format!("latestVersion={}", set.latest_id());
            let (status, _, body) = w.update(&set.id, &query, study_description(&text)).await;
            if set.deleted {
                assert_eq!(status, conflict, "{body}");
                return;
            }
            assert_eq!(status, StatusCode::OK, "{body}");
            let mut content = set.latest().clone();
            content.description = text;
            set.versions.push(("UPDATED", content));
        }
        Step::Remove(s, i) => {
            let set = &mut model[s % n];
            let present: Vec<String> = set.latest().instances.iter().cloned().collect();
            let sop = present
                .get(i % (present.len() + 1))
                .cloned()
                .unwrap_or("9.9.9".into());
            let change = json!({"SchemaVersion": "1.1", "Study": {"Series": {"1.2.3": {"Instances": {&sop: {}}}}}});
            let query = format!("latestVersion={}", set.latest_id());
            let (status, _, body) = w.update(&set.id, &query, removals(change)).await;
            if set.deleted {
                assert_eq!(status, conflict, "{body}");
                return;
            }
            assert_eq!(status, StatusCode::OK, "{body}");
            let mut content = set.latest().clone();
            let outcome = if content.instances.remove(&sop) {
                "UPDATED"
            } else {
                "UPDATE_FAILED"
            };
            set.versions.push((outcome, content));
        }
        Step::Copy(s, mask) => {
            let source = model[s % n].clone();
            let present: Vec<&String> = source.latest().instances.iter().collect();
            let picked: BTreeSet<String> = present
                .iter()
                .enumerate()
                .filter(|(k, _)| mask & (1 << (k % 8)) != 0)
                .map(|(_, sop)| (*sop).clone())
                .collect();
            let mut information =
                json!({"sourceImageSet": {"latestVersionId": source.latest_id()}});
            if !picked.is_empty() {
                let instances: serde_json::Map<String, Value> =
                    picked.iter().map(|sop| (sop.clone(), json!({}))).collect();
                let selection = json!({"SchemaVersion": "1.1", "Study": {"Series": {"1.2.3": {"Instances": instances}}}});
                information["sourceImageSet"]["DICOMCopies"] =
                    json!({"copiableAttributes": selection.to_string()});
            }
            let (status, _, body) = w.copy(&source.id, "", information).await;
            if source.deleted {
                assert_eq!(status, conflict, "{body}");
                return;
            }
            assert_eq!(status, StatusCode::OK, "{body}");
            let mut content = source.latest().clone();
            if !picked.is_empty() {
                content.instances = picked;
            }
            model.push(ModelSet {
                id: body["destinationImageSetProperties"]["imageSetId"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                versions: vec![("COPIED", content)],
                deleted: false,
            });
        }
        Step::Merge(s, d) => {
            let (source, destination) = (model[s % n].clone(), model[d % n].clone());
            let information = json!({
                "sourceImageSet": {"latestVersionId": source.latest_id()},
                "destinationImageSet": {"imageSetId": destination.id, "latestVersionId": destination.latest_id()}});
            let (status, _, body) = w.copy(&source.id, "", information).await;
            if source.id == destination.id {
                assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
                return;
            }
            if source.deleted || destination.deleted {
                assert_eq!(status, conflict, "{body}");
                return;
            }
            assert_eq!(status, StatusCode::OK, "{body}");
            let mut content = destination.latest().clone();
            let overlap = !content.instances.is_disjoint(&source.latest().instances);
            let outcome = if overlap {
                "COPY_FAILED"
            } else {
                content
                    .instances
                    .extend(source.latest().instances.iter().cloned());
                "COPIED"
            };
            model[d % n].versions.push((outcome, content));
        }
        Step::Revert(s, v) => {
            let set = &mut model[s % n];
            let target = v % set.versions.len() + 1;
            let query = format!("latestVersion={}", set.latest_id());
            let body = json!({"revertToVersionId": target.to_string()});
            let (status, _, answer) = w.update(&set.id, &query, body).await;
            if set.deleted {
                assert_eq!(status, conflict, "{answer}");
            } else if target == set.versions.len() {
                assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
            } else {
                assert_eq!(status, StatusCode::OK, "{answer}");
                let content = set.versions[target - 1].1.clone();
                set.versions.push(("UPDATED", content));
            }
        }
        Step::Delete(s) => {
            let set = &mut model[s % n];
            let uri = w.uri(&set.id, "deleteImageSet");
            let (status, _, body) = send(&w.service, Method::POST, &uri, "").await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if !set.deleted {
                set.deleted = true;
                set.versions.last_mut().expect("never empty").0 = "DELETED";
            }
        }
    }
}

/// Checks every image set against the model: versions and statuses, and the
/// content of the latest version (of every version when `all`); a deleted
/// image set's documents are gone.
async fn check(w: &World, model: &[ModelSet], all: bool) {
    for set in model {
        let versions = w.versions(&set.id).await;
        let expected: Vec<(String, String, String)> = set
            .versions
            .iter()
            .enumerate()
            .rev()
            .map(|(k, (status, _))| {
                let state = if set.deleted && k + 1 == set.versions.len() {
                    "DELETED"
                } else {
                    "ACTIVE"
                };
                ((k + 1).to_string(), state.to_owned(), (*status).to_owned())
            })
            .collect();
        assert_eq!(versions, expected, "versions of {}", set.id);
        let from = if all { 0 } else { set.versions.len() - 1 };
        for (k, (_, content)) in set.versions.iter().enumerate().skip(from) {
            if set.deleted {
                assert_eq!(
                    w.metadata_status(&set.id, k as u32 + 1).await,
                    StatusCode::NOT_FOUND,
                    "version {} of the deleted {} is erased",
                    k + 1,
                    set.id
                );
                continue;
            }
            let document = w.metadata(&set.id, k as u32 + 1).await;
            assert_eq!(
                &content_of(&document),
                content,
                "version {} of {}",
                k + 1,
                set.id
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn writes_follow_the_reference_model(steps in proptest::collection::vec(step(), 1..14)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let w = World::new().await;
            w.plant(A, true, series_document("SYN-1", "1.2", "1.2.3", &["1.2.3.1", "1.2.3.2", "1.2.3.3"]));
            w.plant(B, false, series_document("SYN-1", "1.2", "1.2.3", &["1.2.3.4", "1.2.3.5"]));
            let start = |sops: &[&str]| Content {
                description: "CT HEAD".into(),
                instances: sops.iter().map(|s| (*s).to_owned()).collect(),
            };
            let mut model = vec![
                ModelSet { id: A.into(), versions: vec![("IMPORTED", start(&["1.2.3.1", "1.2.3.2", "1.2.3.3"]))], deleted: false },
                ModelSet { id: B.into(), versions: vec![("IMPORTED", start(&["1.2.3.4", "1.2.3.5"]))], deleted: false },
            ];
            for step in &steps {
                run(&w, &mut model, step).await;
                w.settle();
                check(&w, &model, false).await;
            }
            check(&w, &model, true).await;
        });
    }
}
