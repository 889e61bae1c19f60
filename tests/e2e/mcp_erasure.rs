//! The destructive image set tools through MCP: GDPR erasure across search
//! pages, confirmation tokens, and the search criteria bulk deletion takes.

use std::time::Duration;

use aws_sdk_medicalimaging::Client;
use aws_sdk_medicalimaging::types::{
    CopyImageSetInformation, CopySourceImageSetInformation, SearchByAttributeValue, SearchCriteria,
    SearchFilter,
};
use healthimaging_e2e::{Mcp, all_image_sets, ci_emulator, structured, text};
use healthimaging_mcp::permissions::Grant;
use serde_json::{Value, json};

const TTL: Duration = Duration::from_secs(300);

/// How many image sets an EQUAL search on `value` finds, through every page.
async fn found(sdk: &Client, ds: &str, value: SearchByAttributeValue) -> usize {
    let filter = SearchFilter::builder()
        .values(value)
        .operator(aws_sdk_medicalimaging::types::Operator::Equal)
        .build()
        .unwrap();
    let criteria = SearchCriteria::builder().filters(filter).build();
    let mut count = 0;
    let mut token = None;
    loop {
        let page = sdk
            .search_image_sets()
            .datastore_id(ds)
            .search_criteria(criteria.clone())
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        count += page.image_sets_metadata_summaries().len();
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return count;
        }
    }
}

/// A non-primary copy of `source` (at `version`).
async fn copy(sdk: &Client, ds: &str, source: &str, version: i32) -> String {
    sdk.copy_image_set()
        .datastore_id(ds)
        .source_image_set_id(source)
        .copy_image_set_information(
            CopyImageSetInformation::builder()
                .source_image_set(
                    CopySourceImageSetInformation::builder()
                        .latest_version_id(version.to_string())
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap()
        .destination_image_set_properties
        .unwrap()
        .image_set_id
}

#[tokio::test]
async fn gdpr_erasure_of_a_patient_across_search_pages() {
    let dir = tempfile::tempdir().unwrap();
    let (_emulator, sdk, ds) = ci_emulator(dir.path()).await;
    let sets = all_image_sets(&sdk, &ds).await;
    let patient = sets
        .iter()
        .find(|s| s.is_primary() == Some(false))
        .and_then(|s| s.dicom_tags()?.dicom_patient_id())
        .expect("the ci set has a patient with a non-primary image set")
        .to_owned();
    let of_patient: Vec<_> = sets
        .iter()
        .filter(|s| s.dicom_tags().and_then(|t| t.dicom_patient_id()) == Some(patient.as_str()))
        .collect();
    let primary = of_patient
        .iter()
        .find(|s| s.is_primary() == Some(true))
        .expect("and a primary one");
    // Enough copies that the patient's image sets span two search pages.
    for _ in 0..55 {
        copy(
            &sdk,
            &ds,
            primary.image_set_id(),
            primary.version().unwrap(),
        )
        .await;
    }
    let total = of_patient.len() + 55;
    let studies: Vec<String> = of_patient
        .iter()
        .filter_map(|s| {
            s.dicom_tags()?
                .dicom_study_instance_uid()
                .map(str::to_owned)
        })
        .collect();
    let series: Vec<String> = of_patient
        .iter()
        .filter_map(|s| {
            s.dicom_tags()?
                .dicom_series_instance_uid()
                .map(str::to_owned)
        })
        .collect();
    let others = sets.len() - of_patient.len();

    let mcp = Mcp::connect(sdk.clone(), Grant::ALL, TTL).await;
    let args = json!({"datastore_id": ds, "patient_id": patient, "max_image_sets": 100});
    let preview = structured(&mcp.call("delete_patient_studies", args.clone()).await);
    assert_eq!(preview["phase"], "preview");
    let changes = preview["changes"].as_array().unwrap();
    assert_eq!(
        changes.len(),
        total,
        "every image set of the patient, through every page"
    );
    assert!(changes.iter().any(|c| c["is_primary"] == true));
    assert!(changes.iter().any(|c| c["is_primary"] == false));
    assert!(
        changes
            .iter()
            .all(|c| c["action"] == "delete_image_set" && c["version_id"].is_string())
    );
    assert_eq!(preview["more_remain"], false);
    assert_eq!(
        found(
            &sdk,
            &ds,
            SearchByAttributeValue::DicomPatientId(patient.clone())
        )
        .await,
        total,
        "a preview deletes nothing"
    );

    let mut confirm = args.clone();
    confirm["confirmation_token"] = preview["confirmation_token"].clone();
    let done = structured(&mcp.call("delete_patient_studies", confirm).await);
    assert_eq!(done["phase"], "executed", "{}", done["summary"]);
    let results = done["results"].as_array().unwrap();
    assert_eq!(results.len(), total);
    assert!(
        results
            .iter()
            .all(|r| r["outcome"] == "done" && r["image_set_state"] == "DELETED")
    );

    assert_eq!(
        found(
            &sdk,
            &ds,
            SearchByAttributeValue::DicomPatientId(patient.clone())
        )
        .await,
        0
    );
    for study in &studies {
        assert_eq!(
            found(
                &sdk,
                &ds,
                SearchByAttributeValue::DicomStudyInstanceUid(study.clone())
            )
            .await,
            0,
            "study {study}"
        );
    }
    for uid in &series {
        assert_eq!(
            found(
                &sdk,
                &ds,
                SearchByAttributeValue::DicomSeriesInstanceUid(uid.clone())
            )
            .await,
            0,
            "series {uid}"
        );
    }
    assert_eq!(
        all_image_sets(&sdk, &ds).await.len(),
        others,
        "no other patient lost anything"
    );
    let audit = mcp.audit.records();
    let last = audit.last().unwrap();
    assert_eq!(last["tool"], "delete_patient_studies");
    let listed: Vec<&str> = last["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for change in changes {
        assert!(
            listed.contains(&change["image_set_id"].as_str().unwrap()),
            "the audit record lists every deleted image set"
        );
    }
    let logged = serde_json::to_string(&audit).unwrap();
    assert!(
        !logged.contains(&patient),
        "the audit log carries no patient ID"
    );
}

#[tokio::test]
async fn confirmation_tokens_are_single_use_bound_and_refused_after_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let (_emulator, sdk, ds) = ci_emulator(dir.path()).await;
    let sets = all_image_sets(&sdk, &ds).await;
    let (x, y) = (
        sets[0].image_set_id().to_owned(),
        sets[1].image_set_id().to_owned(),
    );
    let mcp = Mcp::connect(sdk.clone(), Grant::ALL, TTL).await;
    let call = |id: &str, token: Option<&Value>| {
        let mut args = json!({"datastore_id": ds, "image_set_id": id});
        if let Some(token) = token {
            args["confirmation_token"] = token.clone();
        }
        args
    };
    let preview = structured(&mcp.call("delete_image_set", call(&x, None)).await);
    let token = preview["confirmation_token"].clone();
    let other = structured(&mcp.call("delete_image_set", call(&y, Some(&token))).await);
    assert_eq!(
        other["phase"], "refused",
        "a token is bound to its arguments"
    );
    assert!(
        other["summary"]
            .as_str()
            .unwrap()
            .contains("different tool or different arguments")
    );
    let reused = structured(&mcp.call("delete_image_set", call(&x, Some(&token))).await);
    assert_eq!(
        reused["phase"], "refused",
        "a refused redemption spends the token"
    );

    let fresh = reused["confirmation_token"].clone();
    let change = r#"{"SchemaVersion":"1.1","Study":{"DICOM":{"StudyDescription":"CHANGED"}}}"#;
    sdk.update_image_set_metadata()
        .datastore_id(&ds)
        .image_set_id(&x)
        .latest_version_id(sets[0].version().unwrap().to_string())
        .update_image_set_metadata_updates(
            aws_sdk_medicalimaging::types::MetadataUpdates::DicomUpdates(
                aws_sdk_medicalimaging::types::DicomUpdates::builder()
                    .updatable_attributes(aws_sdk_medicalimaging::primitives::Blob::new(change))
                    .build(),
            ),
        )
        .send()
        .await
        .unwrap();
    let stale = structured(&mcp.call("delete_image_set", call(&x, Some(&fresh))).await);
    assert_eq!(stale["phase"], "refused");
    assert!(
        stale["summary"]
            .as_str()
            .unwrap()
            .contains("changed since the preview")
    );
    assert_eq!(
        stale["changes"][0]["version_id"],
        (sets[0].version().unwrap() + 1).to_string(),
        "the fresh preview shows the new version"
    );
    let done = structured(
        &mcp.call(
            "delete_image_set",
            call(&x, Some(&stale["confirmation_token"])),
        )
        .await,
    );
    assert_eq!(done["phase"], "executed");
    assert_eq!(done["results"][0]["image_set_state"], "DELETED");
    let again = mcp
        .call(
            "delete_image_set",
            call(&x, Some(&stale["confirmation_token"])),
        )
        .await;
    assert_eq!(
        again.is_error,
        Some(true),
        "a deleted image set is not previewed again"
    );

    let expiring = Mcp::connect(sdk.clone(), Grant::ALL, Duration::ZERO).await;
    let preview = structured(&expiring.call("delete_image_set", call(&y, None)).await);
    let expired = structured(
        &expiring
            .call(
                "delete_image_set",
                call(&y, Some(&preview["confirmation_token"])),
            )
            .await,
    );
    assert_eq!(expired["phase"], "refused");
    assert!(expired["summary"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn bulk_deletion_takes_only_the_apis_search_criteria() {
    let dir = tempfile::tempdir().unwrap();
    let (_emulator, sdk, ds) = ci_emulator(dir.path()).await;
    let mcp = Mcp::connect(sdk.clone(), Grant::ALL, TTL).await;
    let refused = |result: Result<rmcp::model::CallToolResult, _>| match result {
        Err(_) => true,
        Ok(result) => result.is_error == Some(true),
    };
    let raw = |args: Value| healthimaging_e2e::request("bulk_delete_by_criteria", args);
    let modality = json!({"datastore_id": ds, "filters": [{"attribute": "DICOMModality", "operator": "EQUAL", "values": ["CT"]}]});
    assert!(
        refused(mcp.client.call_tool(raw(modality)).await),
        "Modality is not a search attribute"
    );
    let patient =
        |p: &str| json!({"attribute": "DICOMPatientId", "operator": "EQUAL", "values": [p]});
    let three = json!({"datastore_id": ds, "filters": [patient("a"), patient("b"), patient("c")]});
    let result = mcp.client.call_tool(raw(three)).await.unwrap();
    assert_eq!(result.is_error, Some(true));
    assert!(text(&result).contains("at most two"), "{}", text(&result));

    let sets = all_image_sets(&sdk, &ds).await;
    let non_primary = sets
        .iter()
        .filter(|s| s.is_primary() == Some(false))
        .count();
    assert!(non_primary > 0);
    let args = json!({"datastore_id": ds, "filters": [{"attribute": "isPrimary", "operator": "EQUAL", "values": [false]}], "max_image_sets": 1});
    let preview = structured(&mcp.call("bulk_delete_by_criteria", args.clone()).await);
    assert_eq!(
        preview["changes"].as_array().unwrap().len(),
        1,
        "the cap holds"
    );
    assert_eq!(preview["more_remain"], non_primary > 1);
    assert!(
        preview["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["is_primary"] == false)
    );
    let too_many = mcp
        .call(
            "bulk_delete_by_criteria",
            json!({"datastore_id": ds, "filters": [patient("a")], "max_image_sets": 100_000}),
        )
        .await;
    assert_eq!(too_many.is_error, Some(true));
    assert!(text(&too_many).contains("--bulk-ceiling"));
}

#[tokio::test]
async fn previews_name_what_a_person_recognises_and_an_empty_plan_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (_emulator, sdk, ds) = ci_emulator(dir.path()).await;
    let sets = all_image_sets(&sdk, &ds).await;
    let set = sets
        .iter()
        .find(|s| s.is_primary() == Some(true))
        .expect("a primary image set");
    let id = set.image_set_id().to_owned();
    let mcp = Mcp::connect(sdk.clone(), Grant::ALL, TTL).await;
    let metadata = structured(
        &mcp.call(
            "get_image_set_metadata",
            json!({"datastore_id": ds, "image_set_id": id}),
        )
        .await,
    );
    let document = &metadata["metadata"];
    let (series_uid, series) = document["Study"]["Series"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    let instances = series["Instances"].as_object().unwrap();
    let first = |value: &Value| match value {
        Value::Array(values) => values[0].clone(),
        other => other.clone(),
    };
    let patient_name = first(&document["Patient"]["DICOM"]["PatientName"]);
    let patient_name = patient_name
        .as_str()
        .or_else(|| patient_name["Alphabetic"].as_str())
        .unwrap()
        .to_owned();
    let patient_id = document["Patient"]["DICOM"]["PatientID"].as_str().unwrap();
    let study_date = document["Study"]["DICOM"]["StudyDate"].as_str().unwrap();
    let modality = series["DICOM"]["Modality"].as_str().unwrap();

    let preview = structured(
        &mcp.call(
            "delete_image_set",
            json!({"datastore_id": ds, "image_set_id": id}),
        )
        .await,
    );
    let label = preview["changes"][0]["label"].as_str().unwrap().to_owned();
    let day = format!(
        "{}-{}-{}",
        &study_date[..4],
        &study_date[4..6],
        &study_date[6..]
    );
    for expected in [
        patient_name.as_str(),
        patient_id,
        day.as_str(),
        &format!("{modality} series"),
        &format!("{} instance", instances.len()),
        "; primary",
    ] {
        assert!(label.contains(expected), "{expected:?} in {label:?}");
    }
    if let Some(description) = series["DICOM"]["SeriesDescription"].as_str() {
        assert!(label.contains(description.trim()), "{label}");
    }
    let summary = preview["summary"].as_str().unwrap();
    assert!(
        summary.contains(&label),
        "the preview's text lists it: {summary}"
    );

    let (sop, instance) = instances.iter().next().unwrap();
    let number = first(&instance["DICOM"]["InstanceNumber"]);
    let number = number
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| number.to_string());
    let removal = structured(
        &mcp.call(
            "remove_instance_from_image_set",
            json!({"datastore_id": ds, "image_set_id": id,
                   "series_instance_uid": series_uid, "sop_instance_uid": sop}),
        )
        .await,
    );
    let label = removal["changes"][0]["label"].as_str().unwrap();
    assert!(
        label.contains(&format!("instance {} of {modality} series", number.trim())),
        "{label}"
    );

    // Executed, the result says what was removed and what remains.
    let removed = structured(
        &mcp.call(
            "remove_instance_from_image_set",
            json!({"datastore_id": ds, "image_set_id": id,
                   "series_instance_uid": series_uid, "sop_instance_uid": sop,
                   "confirmation_token": removal["confirmation_token"]}),
        )
        .await,
    );
    let summary = removed["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!(
            "removed the instance from image set {id} ({label}): its version 2 no longer holds it; versions 1 to 1 still do"
        )),
        "{summary}"
    );
    let preview = structured(
        &mcp.call(
            "delete_image_set",
            json!({"datastore_id": ds, "image_set_id": id}),
        )
        .await,
    );
    let deleted = structured(
        &mcp.call(
            "delete_image_set",
            json!({"datastore_id": ds, "image_set_id": id,
                   "confirmation_token": preview["confirmation_token"]}),
        )
        .await,
    );
    let summary = deleted["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!("deleted image set {id} with every version (")),
        "{summary}"
    );
    assert!(summary.contains("nothing of it remains"), "{summary}");
    assert!(
        summary.ends_with("No other image set matched when the plan was made."),
        "{summary}"
    );

    let nothing = structured(
        &mcp.call(
            "delete_patient_studies",
            json!({"datastore_id": ds, "patient_id": "NO-SUCH-PATIENT"}),
        )
        .await,
    );
    assert_eq!(
        nothing["summary"],
        "Nothing to do: no image set matches patient NO-SUCH-PATIENT."
    );
    assert!(nothing.get("confirmation_token").is_none(), "{nothing}");
    assert_eq!(nothing["changes"], json!([]));
}

#[tokio::test]
async fn a_deleted_image_set_is_never_read_from_the_servers_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (_emulator, sdk, ds) = ci_emulator(dir.path()).await;
    let sets = all_image_sets(&sdk, &ds).await;
    let id = sets[0].image_set_id().to_owned();
    let mcp = Mcp::connect(sdk.clone(), Grant::ALL, TTL).await;
    let args = json!({"datastore_id": ds, "image_set_id": id});
    let read = mcp.call("get_image_set_metadata", args.clone()).await;
    assert_ne!(read.is_error, Some(true));
    // Deleted behind the server's back: its parsed document is still held.
    sdk.delete_image_set()
        .datastore_id(&ds)
        .image_set_id(&id)
        .send()
        .await
        .unwrap();
    let again = mcp.call("get_image_set_metadata", args).await;
    assert_eq!(again.is_error, Some(true), "{again:?}");
    assert!(
        text(&again).starts_with("ResourceNotFoundException")
            && text(&again).contains(&format!("Image set {id} was deleted")),
        "{}",
        text(&again)
    );
    // The metadata resource says the same.
    let uri = format!("healthimaging://datastore/{ds}/imageset/{id}/metadata");
    let resource = mcp
        .client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(uri))
        .await
        .expect_err("a deleted image set's metadata is not a resource");
    assert!(resource.to_string().contains("was deleted"), "{resource}");
}
