//! Destructive confirmation through the client: a client that can ask its
//! user (form elicitation) is shown the preview, and the user's answer
//! completes the call; a client that cannot gets the preview and a token.

use std::sync::{Arc, Mutex};

use healthimaging_e2e::{all_image_sets, request, structured};
use healthimaging_mcp::audit::AuditLog;
use rmcp::model::{
    ClientCapabilities, ClientConfig, ElicitRequestParams, ElicitResult, ElicitationAction,
    ElicitationCapability, FormElicitationCapability, Implementation, ProtocolVersion,
};
use rmcp::service::RequestContext;
use rmcp::{ClientHandler, ErrorData, RoleClient};
use serde_json::json;

/// A client whose user answers every question with `accept`.
#[derive(Clone)]
struct User {
    accept: bool,
    asked: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for User {
    fn get_info(&self) -> ClientConfig {
        let mut capabilities = ClientCapabilities::default();
        capabilities.elicitation =
            Some(ElicitationCapability::new().with_form(FormElicitationCapability::new()));
        ClientConfig::new(capabilities, Implementation::new("asking-client", "1"))
            .with_protocol_version(ProtocolVersion::V_2025_11_25)
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        if let ElicitRequestParams::FormElicitationParams { message, .. } = request {
            self.asked.lock().unwrap().push(message);
        }
        Ok(if self.accept {
            ElicitResult::new(ElicitationAction::Accept).with_content(json!({"confirm": true}))
        } else {
            ElicitResult::new(ElicitationAction::Decline)
        })
    }
}

async fn session(
    sdk: &aws_sdk_medicalimaging::Client,
    accept: bool,
) -> (
    rmcp::service::RunningService<RoleClient, User>,
    Arc<Mutex<Vec<String>>>,
) {
    session_with(sdk, accept, healthimaging_e2e::Setup::default()).await
}

async fn session_with(
    sdk: &aws_sdk_medicalimaging::Client,
    accept: bool,
    setup: healthimaging_e2e::Setup,
) -> (
    rmcp::service::RunningService<RoleClient, User>,
    Arc<Mutex<Vec<String>>>,
) {
    let server = setup.server(sdk.clone(), AuditLog::to_writer(std::io::sink()));
    let asked = Arc::new(Mutex::new(Vec::new()));
    let user = User {
        accept,
        asked: asked.clone(),
    };
    (healthimaging_e2e::serve_with(server, user).await, asked)
}

#[tokio::test]
async fn the_users_answer_in_the_client_completes_or_stops_a_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let (_emulator, sdk, ds) = healthimaging_e2e::ci_emulator(dir.path()).await;
    let sets = all_image_sets(&sdk, &ds).await;
    let (first, second) = (sets[0].image_set_id(), sets[1].image_set_id());

    // Declined: nothing changes, and no token is handed out.
    let (client, asked) = session(&sdk, false).await;
    let answer = client
        .call_tool(request(
            "delete_image_set",
            json!({"datastore_id": ds, "image_set_id": first}),
        ))
        .await
        .unwrap();
    let out = structured(&answer);
    assert_eq!(out["phase"], "refused");
    assert!(out["summary"].as_str().unwrap().contains("declined"));
    assert!(out.get("confirmation_token").is_none());
    assert_eq!(asked.lock().unwrap().len(), 1);
    assert!(
        asked.lock().unwrap()[0].contains(first),
        "the preview is what the user sees"
    );
    assert_eq!(all_image_sets(&sdk, &ds).await.len(), sets.len());

    // Accepted: executed in the same call.
    let (client, asked) = session(&sdk, true).await;
    let answer = client
        .call_tool(request(
            "delete_image_set",
            json!({"datastore_id": ds, "image_set_id": second}),
        ))
        .await
        .unwrap();
    let out = structured(&answer);
    assert_eq!(out["phase"], "executed", "{}", out["summary"]);
    assert_eq!(asked.lock().unwrap().len(), 1);
    assert_eq!(all_image_sets(&sdk, &ds).await.len(), sets.len() - 1);
}

#[tokio::test]
async fn a_datastore_deletion_and_an_identified_export_are_asked_too() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, sdk, ds) = healthimaging_e2e::ci_emulator(dir.path()).await;
    let empty = healthimaging_e2e::create_active_datastore(&sdk, "to-go").await;
    // Declined, then accepted: the datastore goes only after a yes.
    let (client, _) = session(&sdk, false).await;
    let out = structured(
        &client
            .call_tool(request("delete_datastore", json!({"datastore_id": empty})))
            .await
            .unwrap(),
    );
    assert_eq!(out["phase"], "refused", "{out}");
    let (client, asked) = session(&sdk, true).await;
    let out = structured(
        &client
            .call_tool(request("delete_datastore", json!({"datastore_id": empty})))
            .await
            .unwrap(),
    );
    assert_eq!(out["phase"], "executed", "{out}");
    assert!(asked.lock().unwrap()[0].contains("to-go"));

    // Identified data to another archive: the user says no, nothing is sent.
    let url = format!("{}/datastore/{empty}/studies", emulator.url());
    let setup = || healthimaging_e2e::Setup {
        export: healthimaging_mcp::config::ExportPolicy {
            allowed: vec![healthimaging_mcp::export::Destination::parse(&url).unwrap()],
            ..Default::default()
        },
        ..healthimaging_e2e::Setup::for_emulator(&emulator)
    };
    let sets = all_image_sets(&sdk, &ds).await;
    let study = sets[0]
        .dicom_tags()
        .unwrap()
        .dicom_study_instance_uid()
        .unwrap()
        .to_owned();
    let (client, asked) = session_with(&sdk, false, setup()).await;
    let out = structured(
        &client
            .call_tool(request(
                "start_dicom_export_job",
                json!({"datastore_id": ds, "study_instance_uid": study, "destination": url, "de_identify": false}),
            ))
            .await
            .unwrap(),
    );
    assert_eq!(out["phase"], "refused", "{out}");
    assert!(out.get("job").is_none());
    assert!(asked.lock().unwrap()[0].contains("WITHOUT de-identification"));
}
