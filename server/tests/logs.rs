//! No log line, at any level, carries patient data: the binary runs a
//! session full of patient names, IDs, birth dates and accession numbers in
//! arguments, results and errors, at every level from `error` to `trace`
//! (through `HEALTHIMAGING_MCP_LOG` and `RUST_LOG`), and its stderr is
//! searched for every one of them.

// Only `command` of the shared support is used here.
mod support;

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ReadResourceRequestParams};
use serde_json::{Value, json};
use support::command;
use tokio::io::AsyncReadExt;

/// What the ci set holds of each patient that must never be logged.
fn patient_data() -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let spec = healthimaging_fixtures::Spec {
        set: healthimaging_fixtures::FixtureSet::Ci,
        seed: 1,
        patients: None,
    };
    let manifest = healthimaging_fixtures::write(&spec, dir.path()).unwrap();
    let mut needles = Vec::new();
    for patient in &manifest.patients {
        needles.push(patient.patient_id.clone());
        needles.push(patient.name.clone());
        needles.push(patient.birth_date.clone());
        for study in &patient.studies {
            needles.push(study.accession_number.clone());
        }
    }
    needles
}

async fn call(
    client: &rmcp::service::RunningService<rmcp::RoleClient, ()>,
    tool: &str,
    arguments: Value,
) -> Value {
    let result = client
        .call_tool(
            CallToolRequestParams::new(tool.to_owned())
                .with_arguments(arguments.as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    result.structured_content.unwrap_or(Value::Null)
}

#[tokio::test]
async fn no_level_logs_patient_data() {
    let needles = patient_data();
    let sentinel_name = "Sentinel-Synthetic^Logged";
    let sentinel_id = "SYN-SENTINEL-4711";
    for (variable, level) in [
        ("HEALTHIMAGING_MCP_LOG", "error"),
        ("HEALTHIMAGING_MCP_LOG", "warn"),
        ("HEALTHIMAGING_MCP_LOG", "info"),
        ("HEALTHIMAGING_MCP_LOG", "debug"),
        ("HEALTHIMAGING_MCP_LOG", "trace"),
        ("RUST_LOG", "trace"),
    ] {
        let home = tempfile::tempdir().unwrap();
        let mut child = command(&["serve", "--fixtures", "ci"], home.path())
            .env(variable, level)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        // Drained as it comes, so a chatty level never blocks the server.
        let mut errors = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = errors.read_to_string(&mut text).await;
            text
        });
        let client = ().serve((stdout, stdin)).await.expect("a session");
        let listed = call(&client, "list_datastores", json!({})).await;
        let ds = listed["datastores"][0]["datastore_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let patient = &needles[0];
        let found = call(
            &client,
            "search_by_patient_id",
            json!({"datastore_id": ds, "patient_id": patient}),
        )
        .await;
        let set = found["image_sets"][0]["image_set_id"]
            .as_str()
            .unwrap()
            .to_owned();
        call(
            &client,
            "get_patient_studies",
            json!({"datastore_id": ds, "patient_id": patient}),
        )
        .await;
        call(
            &client,
            "get_image_set_metadata",
            json!({"datastore_id": ds, "image_set_id": set}),
        )
        .await;
        call(
            &client,
            "search_by_patient_id",
            json!({"datastore_id": ds, "patient_id": sentinel_id}),
        )
        .await;
        call(
            &client,
            "bulk_update_patient_metadata",
            json!({"datastore_id": ds, "patient_id": patient,
                   "patient_attributes": {"PatientName": sentinel_name}, "max_image_sets": 1}),
        )
        .await;
        call(
            &client,
            "bulk_update_patient_metadata",
            json!({"datastore_id": ds, "patient_id": patient,
                   "patient_attributes": {"PatientBirthDate": "1984-09-13"}, "max_image_sets": 1}),
        )
        .await;
        let _ = client
            .read_resource(ReadResourceRequestParams::new(format!(
                "healthimaging://datastore/{ds}/imageset/{set}/metadata"
            )))
            .await;
        // A failed read whose URI holds a patient's name and ID.
        let _ = client
            .read_resource(ReadResourceRequestParams::new(format!(
                "healthimaging://datastore/{ds}/imageset/{sentinel_id}{sentinel_name}/metadata"
            )))
            .await;
        client.cancel().await.unwrap();
        let _ = child.wait().await;
        let stderr = stderr.await.unwrap();
        assert!(
            stderr.contains("audit"),
            "{variable}={level}: the session ran"
        );
        for needle in needles.iter().map(String::as_str).chain([
            sentinel_name,
            sentinel_id,
            "Sentinel-Synthetic",
            "19840913",
        ]) {
            assert!(
                !stderr.contains(needle),
                "{variable}={level}: stderr holds {needle:?}:\n{stderr}"
            );
        }
    }
}
