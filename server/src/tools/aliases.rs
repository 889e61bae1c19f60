//! The reference server's argument names, accepted where they mean the same.
//!
//! Prompts and agents written for the AWS Labs Python server pass
//! `max_results`, `search_criteria`, `metadata_updates`,
//! `image_frame_information` and the like. Before a call is dispatched its
//! arguments are rewritten into this server's names (and, where the
//! reference passes an API structure, into this server's fields), so the
//! tool itself sees one contract. Passing both spellings of one argument is
//! refused rather than guessed at. The published schemas name only this
//! server's arguments.

use rmcp::model::JsonObject;
use serde_json::{Map, Value};

/// Tools whose `max_results` is this server's `limit`: the most results returned.
const LIMITED: &[&str] = &[
    "list_datastores",
    "list_dicom_import_jobs",
    "list_image_set_versions",
    "search_image_sets",
    "search_by_patient_id",
    "search_by_study_uid",
    "search_by_series_uid",
];

/// Plain renames: (tool, reference name, our name).
const RENAMES: &[(&str, &str, &str)] = &[
    (
        "bulk_update_patient_metadata",
        "metadata_updates",
        "patient_attributes",
    ),
    (
        "update_patient_study_metadata",
        "patient_updates",
        "patient_attributes",
    ),
    (
        "update_patient_study_metadata",
        "study_updates",
        "study_attributes",
    ),
    ("bulk_delete_by_criteria", "max_deletions", "max_image_sets"),
];

/// Rewrites `arguments` of `tool` from the reference server's names into
/// ours. The error says which argument could not be taken, and why.
pub(crate) fn translate(tool: &str, arguments: &mut JsonObject) -> Result<(), String> {
    if LIMITED.contains(&tool) {
        rename(arguments, "max_results", "limit")?;
    }
    for &(_, alias, ours) in RENAMES.iter().filter(|(name, ..)| *name == tool) {
        rename(arguments, alias, ours)?;
    }
    match tool {
        "search_image_sets" => {
            if let Some(criteria) = take(arguments, "search_criteria", &["filters", "sort_field"])?
            {
                search_criteria(criteria, arguments)?;
            }
        }
        "bulk_delete_by_criteria" => {
            if let Some(criteria) = take(arguments, "criteria", &["filters"])? {
                delete_criteria(criteria, arguments)?;
            }
        }
        "get_image_frame" => {
            if let Some(information) =
                take(arguments, "image_frame_information", &["image_frame_id"])?
            {
                let mut information = object("image_frame_information", information)?;
                let id = information
                    .remove("imageFrameId")
                    .ok_or("image_frame_information needs imageFrameId (or pass image_frame_id)")?;
                no_more("image_frame_information", &information)?;
                arguments.insert("image_frame_id".into(), id);
            }
        }
        "update_image_set_metadata" => {
            if let Some(updates) = take(
                arguments,
                "update_image_set_metadata_updates",
                &[
                    "updatable_attributes",
                    "removable_attributes",
                    "revert_to_version_id",
                ],
            )? {
                metadata_updates(updates, arguments)?;
            }
        }
        "copy_image_set" => {
            if let Some(source) = arguments.remove("source_datastore_id")
                && arguments.get("datastore_id") != Some(&source)
            {
                return Err(
                    "source_datastore_id must be datastore_id: HealthImaging copies \
                            within one datastore"
                        .into(),
                );
            }
            if let Some(information) = take(
                arguments,
                "copy_image_set_information",
                &[
                    "source_version_id",
                    "copiable_attributes",
                    "destination_image_set_id",
                    "destination_version_id",
                ],
            )? {
                copy_information(information, arguments)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Moves `alias` to `ours`, refusing both at once.
fn rename(arguments: &mut JsonObject, alias: &str, ours: &str) -> Result<(), String> {
    if let Some(value) = arguments.remove(alias) {
        if arguments.contains_key(ours) {
            return Err(format!("pass {ours} or {alias}, not both"));
        }
        arguments.insert(ours.into(), value);
    }
    Ok(())
}

/// Removes `alias`, refusing it beside any of the arguments it stands for.
fn take(arguments: &mut JsonObject, alias: &str, ours: &[&str]) -> Result<Option<Value>, String> {
    let Some(value) = arguments.remove(alias) else {
        return Ok(None);
    };
    if let Some(clash) = ours.iter().find(|name| arguments.contains_key(**name)) {
        return Err(format!("pass {alias} or {clash}, not both"));
    }
    Ok(Some(value))
}

fn object(name: &str, value: Value) -> Result<Map<String, Value>, String> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(format!("{name} must be a JSON object")),
    }
}

fn no_more(name: &str, rest: &Map<String, Value>) -> Result<(), String> {
    match rest.keys().next() {
        Some(key) => Err(format!("{name} has no field {key}")),
        None => Ok(()),
    }
}

/// The API's SearchCriteria: `{"filters":[{"values":[{"DICOMPatientId":"X"}],
/// "operator":"EQUAL"}],"sort":{"sortField":"updatedAt","sortOrder":"DESC"}}`.
fn search_criteria(criteria: Value, arguments: &mut JsonObject) -> Result<(), String> {
    let mut criteria = object("search_criteria", criteria)?;
    if let Some(filters) = criteria.remove("filters") {
        arguments.insert("filters".into(), api_filters("search_criteria", filters)?);
    }
    if let Some(sort) = criteria.remove("sort") {
        let mut sort = object("search_criteria.sort", sort)?;
        if let Some(field) = sort.remove("sortField") {
            arguments.insert("sort_field".into(), field);
        }
        if let Some(order) = sort.remove("sortOrder") {
            if arguments.contains_key("sort_order") {
                return Err("pass sort_order or search_criteria.sort.sortOrder, not both".into());
            }
            arguments.insert("sort_order".into(), order);
        }
        no_more("search_criteria.sort", &sort)?;
    }
    no_more("search_criteria", &criteria)
}

/// The reference's deletion criteria: either attribute-value pairs, each an
/// EQUAL filter (`{"DICOMPatientId":"X"}`), or the API's `{"filters":[…]}`.
fn delete_criteria(criteria: Value, arguments: &mut JsonObject) -> Result<(), String> {
    let mut criteria = object("criteria", criteria)?;
    let filters = match criteria.remove("filters") {
        Some(filters) => {
            no_more("criteria", &criteria)?;
            api_filters("criteria", filters)?
        }
        None => Value::Array(
            criteria
                .into_iter()
                .map(|(attribute, value)| {
                    serde_json::json!({
                        "attribute": attribute,
                        "operator": "EQUAL",
                        "values": [value],
                    })
                })
                .collect(),
        ),
    };
    arguments.insert("filters".into(), filters);
    Ok(())
}

/// API filters (`values` a list of one-key objects) as this server's
/// (`attribute`, `operator`, `values` a list of plain values).
fn api_filters(name: &str, filters: Value) -> Result<Value, String> {
    let Value::Array(filters) = filters else {
        return Err(format!("{name}.filters must be a list"));
    };
    let mut ours = Vec::with_capacity(filters.len());
    for filter in filters {
        let mut filter = object(&format!("{name}.filters[]"), filter)?;
        let operator = filter
            .remove("operator")
            .ok_or_else(|| format!("each of {name}.filters needs operator"))?;
        let Some(Value::Array(values)) = filter.remove("values") else {
            return Err(format!("each of {name}.filters needs a values list"));
        };
        no_more(&format!("{name}.filters[]"), &filter)?;
        let mut attribute = None;
        let mut plain = Vec::with_capacity(values.len());
        for value in values {
            let value = object(&format!("{name}.filters[].values[]"), value)?;
            let mut entries = value.into_iter();
            let (Some((key, value)), None) = (entries.next(), entries.next()) else {
                return Err(format!(
                    "each of {name}.filters[].values is one attribute, e.g. {{\"DICOMPatientId\":\"X\"}}"
                ));
            };
            if attribute.as_ref().is_some_and(|seen| *seen != key) {
                return Err(format!(
                    "the values of one filter in {name} name one attribute"
                ));
            }
            plain.push(if key == "DICOMStudyDateAndTime" {
                study_date_and_time(value)?
            } else {
                value
            });
            attribute = Some(key);
        }
        let attribute =
            attribute.ok_or_else(|| format!("each of {name}.filters needs at least one value"))?;
        ours.push(serde_json::json!({
            "attribute": attribute,
            "operator": operator,
            "values": plain,
        }));
    }
    Ok(Value::Array(ours))
}

/// `{"DICOMStudyDate":"20240131","DICOMStudyTime":"101500"}` as "20240131 101500".
fn study_date_and_time(value: Value) -> Result<Value, String> {
    let mut value = object("DICOMStudyDateAndTime", value)?;
    let date = match value.remove("DICOMStudyDate") {
        Some(Value::String(date)) => date,
        _ => return Err("DICOMStudyDateAndTime needs DICOMStudyDate (YYYYMMDD)".into()),
    };
    let joined = match value.remove("DICOMStudyTime") {
        Some(Value::String(time)) if !time.is_empty() => format!("{date} {time}"),
        None | Some(Value::String(_)) => date,
        Some(_) => return Err("DICOMStudyDateAndTime.DICOMStudyTime is a string".into()),
    };
    no_more("DICOMStudyDateAndTime", &value)?;
    Ok(Value::String(joined))
}

/// The API's MetadataUpdates: `{"DICOMUpdates":{"updatableAttributes":…,
/// "removableAttributes":…}}` or `{"revertToVersionId":"3"}`; the attribute
/// documents as JSON text (the API's blob) or as objects.
fn metadata_updates(updates: Value, arguments: &mut JsonObject) -> Result<(), String> {
    let mut updates = object("update_image_set_metadata_updates", updates)?;
    if let Some(version) = updates.remove("revertToVersionId") {
        arguments.insert("revert_to_version_id".into(), version);
    }
    if let Some(dicom) = updates.remove("DICOMUpdates") {
        let mut dicom = object("DICOMUpdates", dicom)?;
        for (api, ours) in [
            ("updatableAttributes", "updatable_attributes"),
            ("removableAttributes", "removable_attributes"),
        ] {
            if let Some(document) = dicom.remove(api) {
                arguments.insert(ours.into(), document_value(api, document)?);
            }
        }
        no_more("DICOMUpdates", &dicom)?;
    }
    no_more("update_image_set_metadata_updates", &updates)
}

/// The API's CopyImageSetInformation: `{"sourceImageSet":{"latestVersionId":"1",
/// "DICOMCopies":{"copiableAttributes":…}},"destinationImageSet":{"imageSetId":…,
/// "latestVersionId":…}}`.
fn copy_information(information: Value, arguments: &mut JsonObject) -> Result<(), String> {
    let mut information = object("copy_image_set_information", information)?;
    if let Some(source) = information.remove("sourceImageSet") {
        let mut source = object("sourceImageSet", source)?;
        if let Some(version) = source.remove("latestVersionId") {
            arguments.insert("source_version_id".into(), version);
        }
        if let Some(copies) = source.remove("DICOMCopies") {
            let mut copies = object("DICOMCopies", copies)?;
            if let Some(document) = copies.remove("copiableAttributes") {
                arguments.insert(
                    "copiable_attributes".into(),
                    document_value("copiableAttributes", document)?,
                );
            }
            no_more("DICOMCopies", &copies)?;
        }
        no_more("sourceImageSet", &source)?;
    }
    if let Some(destination) = information.remove("destinationImageSet") {
        let mut destination = object("destinationImageSet", destination)?;
        if let Some(id) = destination.remove("imageSetId") {
            arguments.insert("destination_image_set_id".into(), id);
        }
        if let Some(version) = destination.remove("latestVersionId") {
            arguments.insert("destination_version_id".into(), version);
        }
        no_more("destinationImageSet", &destination)?;
    }
    no_more("copy_image_set_information", &information)
}

/// An attribute document given as the API's JSON text, or already as JSON.
fn document_value(name: &str, document: Value) -> Result<Value, String> {
    match document {
        Value::String(text) => serde_json::from_str(&text)
            .map_err(|error| format!("{name} is not a JSON document: {error}")),
        Value::Object(_) => Ok(document),
        _ => Err(format!("{name} must be a JSON object or its text")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn translated(tool: &str, arguments: Value) -> Result<Value, String> {
        let Value::Object(mut map) = arguments else {
            panic!("arguments are an object");
        };
        translate(tool, &mut map).map(|()| Value::Object(map))
    }

    #[test]
    fn max_results_is_limit_where_the_reference_has_it() {
        assert_eq!(
            translated("search_by_patient_id", json!({"max_results": 7})).unwrap(),
            json!({"limit": 7})
        );
        // get_image_set has no max_results in either server: left for the tool to refuse.
        assert_eq!(
            translated("get_image_set", json!({"max_results": 7})).unwrap(),
            json!({"max_results": 7})
        );
        assert_eq!(
            translated("list_datastores", json!({"max_results": 7, "limit": 3})).unwrap_err(),
            "pass limit or max_results, not both"
        );
    }

    #[test]
    fn search_criteria_become_filters_and_sort() {
        let arguments = json!({
            "datastore_id": "d",
            "search_criteria": {
                "filters": [
                    {"values": [{"DICOMPatientId": "P1"}], "operator": "EQUAL"},
                    {"values": [
                        {"DICOMStudyDateAndTime": {"DICOMStudyDate": "20200101"}},
                        {"DICOMStudyDateAndTime": {"DICOMStudyDate": "20201231", "DICOMStudyTime": "235959"}}
                    ], "operator": "BETWEEN"}
                ],
                "sort": {"sortField": "createdAt", "sortOrder": "ASC"}
            }
        });
        assert_eq!(
            translated("search_image_sets", arguments).unwrap(),
            json!({
                "datastore_id": "d",
                "filters": [
                    {"attribute": "DICOMPatientId", "operator": "EQUAL", "values": ["P1"]},
                    {"attribute": "DICOMStudyDateAndTime", "operator": "BETWEEN",
                     "values": ["20200101", "20201231 235959"]}
                ],
                "sort_field": "createdAt",
                "sort_order": "ASC"
            })
        );
    }

    #[test]
    fn malformed_criteria_are_refused_by_name() {
        let mixed = json!({"search_criteria": {"filters": [{"values": [
            {"DICOMPatientId": "A"}, {"DICOMStudyId": "B"}], "operator": "EQUAL"}]}});
        assert_eq!(
            translated("search_image_sets", mixed).unwrap_err(),
            "the values of one filter in search_criteria name one attribute"
        );
        let both = json!({"search_criteria": {}, "filters": []});
        assert_eq!(
            translated("search_image_sets", both).unwrap_err(),
            "pass search_criteria or filters, not both"
        );
        let extra = json!({"search_criteria": {"filter": []}});
        assert_eq!(
            translated("search_image_sets", extra).unwrap_err(),
            "search_criteria has no field filter"
        );
    }

    #[test]
    fn deletion_criteria_pairs_are_equal_filters() {
        let arguments = json!({"criteria": {"DICOMPatientId": "P1"}, "max_deletions": 5});
        assert_eq!(
            translated("bulk_delete_by_criteria", arguments).unwrap(),
            json!({
                "filters": [{"attribute": "DICOMPatientId", "operator": "EQUAL", "values": ["P1"]}],
                "max_image_sets": 5
            })
        );
    }

    #[test]
    fn frame_information_names_the_frame() {
        assert_eq!(
            translated(
                "get_image_frame",
                json!({"image_frame_information": {"imageFrameId": "f"}})
            )
            .unwrap(),
            json!({"image_frame_id": "f"})
        );
        assert_eq!(
            translated("get_image_frame", json!({"image_frame_information": {}})).unwrap_err(),
            "image_frame_information needs imageFrameId (or pass image_frame_id)"
        );
    }

    #[test]
    fn metadata_updates_unpack_the_api_structure_and_its_json_text() {
        let arguments = json!({"update_image_set_metadata_updates": {"DICOMUpdates": {
            "updatableAttributes": "{\"Patient\":{\"DICOM\":{\"PatientName\":\"DOE^J\"}}}"
        }}});
        assert_eq!(
            translated("update_image_set_metadata", arguments).unwrap(),
            json!({"updatable_attributes": {"Patient": {"DICOM": {"PatientName": "DOE^J"}}}})
        );
        let revert = json!({"update_image_set_metadata_updates": {"revertToVersionId": "2"}});
        assert_eq!(
            translated("update_image_set_metadata", revert).unwrap(),
            json!({"revert_to_version_id": "2"})
        );
        let broken = json!({"update_image_set_metadata_updates": {"DICOMUpdates": {
            "updatableAttributes": "{not json"}}});
        assert!(
            translated("update_image_set_metadata", broken)
                .unwrap_err()
                .starts_with("updatableAttributes is not a JSON document")
        );
    }

    #[test]
    fn copy_information_and_a_second_datastore() {
        let arguments = json!({
            "datastore_id": "d",
            "source_datastore_id": "d",
            "copy_image_set_information": {
                "sourceImageSet": {"latestVersionId": "1", "DICOMCopies": {
                    "copiableAttributes": "{\"Study\":{}}"}},
                "destinationImageSet": {"imageSetId": "x", "latestVersionId": "4"}
            }
        });
        assert_eq!(
            translated("copy_image_set", arguments).unwrap(),
            json!({
                "datastore_id": "d",
                "source_version_id": "1",
                "copiable_attributes": {"Study": {}},
                "destination_image_set_id": "x",
                "destination_version_id": "4"
            })
        );
        let elsewhere = json!({"datastore_id": "d", "source_datastore_id": "e"});
        assert!(
            translated("copy_image_set", elsewhere)
                .unwrap_err()
                .starts_with("source_datastore_id must be datastore_id")
        );
    }

    #[test]
    fn renamed_attribute_documents() {
        assert_eq!(
            translated(
                "update_patient_study_metadata",
                json!({"patient_updates": {"PatientName": "A"}, "study_updates": {}})
            )
            .unwrap(),
            json!({"patient_attributes": {"PatientName": "A"}, "study_attributes": {}})
        );
        assert_eq!(
            translated(
                "bulk_update_patient_metadata",
                json!({"metadata_updates": {}})
            )
            .unwrap(),
            json!({"patient_attributes": {}})
        );
    }
}
