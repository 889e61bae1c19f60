//! UpdateImageSetMetadata's changes to a metadata document.
//!
//! A change arrives as two documents of the metadata's own shape
//! (`{"SchemaVersion":"1.1","Patient":{"DICOM":{…}},"Study":{"DICOM":{…},
//! "Series":{"<uid>":{"DICOM":{…},"Instances":{"<sop>":{"DICOM":{…}}}}}}}`):
//! `removableAttributes`, applied first, and `updatableAttributes`, merged in
//! after. The shape is checked when the request arrives ([`parse`], a
//! ValidationException); the DICOM constraints of the service's developer
//! guide ("DICOM metadata constraints") are checked against the image set's
//! document when the change is applied ([`remove`], [`update`]), and a
//! violation fails the write: the version is consumed, `UPDATE_FAILED`, with
//! the reason as its `message`.

use dicom_core::Tag;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_dictionary_std::StandardDataDictionary;
use serde_json::{Map, Value as Json};

use super::levels::{Level, level};
use super::vr;

/// Why a change cannot be applied: the failed version's `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

/// What the change may touch.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rules {
    /// `force`: UIDs, StudyID, private attributes, sequences, multi-valued
    /// attributes and values the VR does not fit.
    pub force: bool,
    /// The image set is primary: Patient and Series levels are fixed, and
    /// UIDs cannot change even with `force`.
    pub primary: bool,
    /// `includeStudyImageSets`: the change is applied to every primary image
    /// set of the study, which keeps them consistent, so Patient-level
    /// changes are allowed on primary image sets.
    pub study_wide: bool,
}

/// Attributes HealthImaging generates; never updatable.
const GENERATED: &[&str] = &[
    "SchemaVersion",
    "DatastoreID",
    "ImageSetID",
    "PixelData",
    "Checksum",
    "Width",
    "Height",
    "MinPixelValue",
    "MaxPixelValue",
    "FrameSizeInBytes",
];

/// Attributes only `force` changes.
const IDENTIFYING: &[&str] = &[
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "StudyID",
];

/// Parses one decoded `updatableAttributes` or `removableAttributes` blob and
/// checks its shape. The error is the ValidationException's message.
pub fn parse(field: &str, bytes: &[u8]) -> Result<Json, String> {
    let document: Json = serde_json::from_slice(bytes)
        .map_err(|e| format!("{field} is not a JSON document: {e}"))?;
    let top = document
        .as_object()
        .ok_or_else(|| format!("{field} must be a JSON object"))?;
    match top.get("SchemaVersion") {
        Some(Json::String(v)) if v == "1.1" => {}
        Some(Json::Number(n)) if n.as_f64() == Some(1.1) => {}
        _ => return Err(format!("{field} must carry \"SchemaVersion\": \"1.1\"")),
    }
    let at = |path: &str| format!("{field}: {path}");
    for (key, value) in top {
        match key.as_str() {
            "SchemaVersion" => {}
            "Patient" => dicom_holder(value, &["DICOM"], &at("Patient"))?,
            "Study" => {
                dicom_holder(value, &["DICOM", "Series"], &at("Study"))?;
                for (uid, series) in object(&value["Series"], &at("Study.Series"))? {
                    let path = at(&format!("Study.Series.{uid}"));
                    dicom_holder(series, &["DICOM", "Instances"], &path)?;
                    for (sop, instance) in object(&series["Instances"], &path)? {
                        dicom_holder(instance, &["DICOM"], &format!("{path}.Instances.{sop}"))?;
                    }
                }
            }
            other => return Err(format!("{field} has an unknown member \"{other}\"")),
        }
    }
    Ok(document)
}

/// An object whose members are among `allowed`, `DICOM` being an object.
fn dicom_holder(value: &Json, allowed: &[&str], path: &str) -> Result<(), String> {
    let members = value
        .as_object()
        .ok_or_else(|| format!("{path} must be an object"))?;
    for (key, member) in members {
        if !allowed.contains(&key.as_str()) {
            return Err(format!("{path} has an unknown member \"{key}\""));
        }
        if !member.is_object() {
            return Err(format!("{path}.{key} must be an object"));
        }
    }
    Ok(())
}

/// The members of an optional object (absent is empty).
fn object<'a>(value: &'a Json, path: &str) -> Result<Vec<(&'a String, &'a Json)>, String> {
    match value {
        Json::Null => Ok(Vec::new()),
        Json::Object(members) => Ok(members.iter().collect()),
        _ => Err(format!("{path} must be an object")),
    }
}

/// One level's `DICOM` attributes in a change, with where they go.
struct Part<'a> {
    level: Level,
    series: Option<&'a str>,
    instance: Option<&'a str>,
    attributes: &'a Map<String, Json>,
}

/// Every `DICOM` map of a (parsed) change.
fn parts(change: &Json) -> Vec<Part<'_>> {
    fn part<'a>(
        level: Level,
        series: Option<&'a str>,
        instance: Option<&'a str>,
        value: &'a Json,
    ) -> Option<Part<'a>> {
        value.as_object().map(|attributes| Part {
            level,
            series,
            instance,
            attributes,
        })
    }
    let mut out = Vec::new();
    out.extend(part(
        Level::Patient,
        None,
        None,
        &change["Patient"]["DICOM"],
    ));
    out.extend(part(Level::Study, None, None, &change["Study"]["DICOM"]));
    for (uid, series) in change["Study"]["Series"].as_object().into_iter().flatten() {
        out.extend(part(Level::Series, Some(uid), None, &series["DICOM"]));
        for (sop, instance) in series["Instances"].as_object().into_iter().flatten() {
            out.extend(part(
                Level::Instance,
                Some(uid),
                Some(sop),
                &instance["DICOM"],
            ));
        }
    }
    out
}

/// The `DICOM` map `part` addresses in `document`.
fn target<'d>(
    document: &'d mut Json,
    part: &Part<'_>,
) -> Result<&'d mut Map<String, Json>, Refusal> {
    let node = match (part.series, part.instance) {
        (None, _) => match part.level {
            Level::Patient => &mut document["Patient"],
            _ => &mut document["Study"],
        },
        (Some(uid), instance) => {
            let series = document["Study"]["Series"]
                .get_mut(uid)
                .ok_or_else(|| Refusal(format!("Series {uid} is not in the image set")))?;
            match instance {
                None => series,
                Some(sop) => series["Instances"].get_mut(sop).ok_or_else(|| {
                    Refusal(format!(
                        "SOP instance {sop} is not in series {uid} of the image set"
                    ))
                })?,
            }
        }
    };
    if !node["DICOM"].is_object() {
        node["DICOM"] = Json::Object(Map::new());
    }
    Ok(node["DICOM"].as_object_mut().expect("made an object above"))
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Patient => "Patient",
        Level::Study => "Study",
        Level::Series => "Series",
        Level::Instance => "Instance",
    }
}

/// Checks that `rules` allow changing `key` (to `value`, for an update) at
/// `part`'s level.
fn check(key: &str, value: Option<&Json>, part: &Part<'_>, rules: Rules) -> Result<(), Refusal> {
    let at = level_name(part.level);
    let refuse = |why: String| Err(Refusal(why));
    if GENERATED.contains(&key) {
        return refuse(format!(
            "{key} is generated by HealthImaging and cannot be changed"
        ));
    }
    if rules.primary && !rules.study_wide && matches!(part.level, Level::Patient | Level::Series) {
        return refuse(format!(
            "{at} level attributes of a primary image set cannot be changed alone: change Patient and Study level attributes of every primary image set of the study with includeStudyImageSets"
        ));
    }
    if rules.primary && rules.study_wide && part.level == Level::Series {
        return refuse("Series level attributes of a primary image set cannot be changed".into());
    }
    if IDENTIFYING.contains(&key) {
        if rules.primary && key != "StudyID" {
            return refuse(format!(
                "{key} of a primary image set cannot be changed, even with force"
            ));
        }
        if !rules.force {
            return refuse(format!("{key} can only be changed with force"));
        }
    }
    let private = key.len() == 8 && key.chars().all(|c| c.is_ascii_hexdigit());
    let entry = if private {
        let tag = u32::from_str_radix(key, 16)
            .ok()
            .map(|n| Tag((n >> 16) as u16, n as u16));
        if tag.is_some_and(|t| t.group() % 2 == 1) {
            if part.level != Level::Instance || !rules.force {
                return refuse(format!(
                    "Private attribute {key} can only be changed on a single SOP instance, with force"
                ));
            }
            return Ok(());
        }
        tag.and_then(|t| StandardDataDictionary.by_tag(t))
    } else {
        StandardDataDictionary.by_name(key)
    };
    let Some(entry) = entry else {
        return if rules.force {
            Ok(())
        } else {
            refuse(format!(
                "{key} is not a DICOM attribute, and only force accepts it"
            ))
        };
    };
    let home = level(entry.tag());
    if home != part.level {
        return refuse(format!(
            "{key} belongs to the {} level, not the {at} level",
            level_name(home)
        ));
    }
    let Some(value) = value else {
        return Ok(());
    };
    if rules.force {
        return Ok(());
    }
    match value {
        Json::Array(items) if items.iter().any(Json::is_object) => refuse(format!(
            "{key} is a sequence, and only force changes sequences"
        )),
        Json::Array(_) => refuse(format!(
            "{key} is given several values, and only force changes multi-valued attributes"
        )),
        Json::Object(_) | Json::Bool(_) => {
            refuse(format!("{key} has a value its VR does not allow"))
        }
        Json::Null => Ok(()),
        other => match entry.vr() {
            VirtualVr::Exact(vr) => vr::check(vr, other).map_err(|misfit| {
                let example = if vr::message_safe(misfit.example) {
                    format!(", for example {}", misfit.example)
                } else {
                    String::new()
                };
                Refusal(format!(
                    "{key} does not fit its VR {vr}: {}{example}",
                    misfit.rule
                ))
            }),
            _ => Ok(()),
        },
    }
}

/// Applies `removableAttributes`: an attribute is removed when its key and
/// value match the document's; an empty series or instance object removes
/// that series or instance.
pub fn remove(document: &mut Json, removals: &Json, rules: Rules) -> Result<(), Refusal> {
    for (uid, series) in removals["Study"]["Series"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let all = &mut document["Study"]["Series"];
        if all.get(uid).is_none() {
            return Err(Refusal(format!("Series {uid} is not in the image set")));
        }
        if is_empty(series) {
            all.as_object_mut().map(|m| m.remove(uid));
            continue;
        }
        for (sop, instance) in series["Instances"].as_object().into_iter().flatten() {
            if !is_empty(instance) {
                continue;
            }
            let instances = &mut all[uid]["Instances"];
            if instances.get(sop).is_none() {
                return Err(Refusal(format!(
                    "SOP instance {sop} is not in series {uid} of the image set"
                )));
            }
            instances.as_object_mut().map(|m| m.remove(sop));
        }
    }
    for part in parts(removals) {
        if part.attributes.is_empty() {
            continue;
        }
        for (key, value) in part.attributes {
            check(key, None, &part, rules)?;
            let attributes = target(document, &part)?;
            match attributes.get(key) {
                Some(existing) if same_value(existing, value) => {
                    attributes.remove(key);
                }
                Some(_) => {
                    return Err(Refusal(format!(
                        "{key} is not removed: the value given does not match the image set's"
                    )));
                }
                None => {
                    return Err(Refusal(format!(
                        "{key} is not removed: the image set has no such attribute at the {} level",
                        level_name(part.level)
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Applies `updatableAttributes`: each attribute is set, added or replaced.
/// A forced change of SeriesInstanceUID or SOPInstanceUID re-keys the series
/// or instance.
pub fn update(document: &mut Json, updates: &Json, rules: Rules) -> Result<(), Refusal> {
    let mut rekeys: Vec<(String, Option<String>, String)> = Vec::new();
    for part in parts(updates) {
        for (key, value) in part.attributes {
            check(key, Some(value), &part, rules)?;
            target(document, &part)?.insert(key.clone(), value.clone());
            if let (Some(uid), Json::String(new)) = (part.series, value) {
                match (part.level, key.as_str()) {
                    (Level::Series, "SeriesInstanceUID") => {
                        rekeys.push((uid.to_owned(), None, new.clone()))
                    }
                    (Level::Instance, "SOPInstanceUID") => rekeys.push((
                        uid.to_owned(),
                        part.instance.map(str::to_owned),
                        new.clone(),
                    )),
                    _ => {}
                }
            }
        }
    }
    // Instances first: their series may be re-keyed after.
    rekeys.sort_by_key(|(_, instance, _)| instance.is_none());
    for (uid, instance, new) in rekeys {
        let (map, old) = match &instance {
            Some(sop) => (
                &mut document["Study"]["Series"][&uid]["Instances"],
                sop.clone(),
            ),
            None => (&mut document["Study"]["Series"], uid.clone()),
        };
        if old == new {
            continue;
        }
        let Some(map) = map.as_object_mut() else {
            continue;
        };
        if map.contains_key(&new) {
            return Err(Refusal(format!("{new} is already in the image set")));
        }
        if let Some(node) = map.remove(&old) {
            map.insert(new, node);
        }
    }
    Ok(())
}

/// Whether `change` touches only the Patient and Study levels (what
/// `includeStudyImageSets` carries to the other image sets of a study).
pub fn study_level_only(change: &Json) -> bool {
    change["Study"]["Series"]
        .as_object()
        .is_none_or(|series| series.is_empty())
}

fn is_empty(node: &Json) -> bool {
    node.as_object().is_some_and(|m| m.is_empty())
}

/// Values are equal ignoring the padding of text.
fn same_value(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::String(a), Json::String(b)) => a.trim() == b.trim(),
        (Json::Array(a), Json::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_value(a, b))
        }
        (Json::Array(a), single) | (single, Json::Array(a)) => {
            a.len() == 1 && same_value(&a[0], single)
        }
        _ => a == b,
    }
}
