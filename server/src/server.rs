//! The MCP server: tools, resources and instructions over one SDK client.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_medicalimaging::Client;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListResourceTemplatesResult,
    ListResourcesResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool_handler};

use crate::audit::AuditLog;
use crate::confirm::Confirmations;
use crate::dicomweb::DicomWeb;
use crate::loading::{Gate, Loading, Need};
use crate::metadata_cache::MetadataCache;
use crate::permissions::Grant;
use crate::{resources, tools};
use rmcp::handler::server::tool::IntoCallToolResult;

/// How one server instance behaves.
#[derive(Debug)]
pub struct ServerOptions {
    /// Which tool levels are available.
    pub grant: Grant,
    /// How long a confirmation token stays valid.
    pub confirmation_ttl: Duration,
    /// The most image sets one call of a bulk tool may change.
    pub bulk_ceiling: usize,
    /// Where audit records go.
    pub audit: AuditLog,
    /// One sentence naming the backend.
    pub backend_description: String,
    /// Whether the backend holds only synthetic data.
    pub synthetic: bool,
    /// The local folder standing for S3, when the backend is an emulator in
    /// this process: import job outputs are read from it.
    pub local_s3_root: Option<std::path::PathBuf>,
    /// The DICOMweb client for the same backend (`serve` always has one; a
    /// server embedded without one answers DICOMweb tools with an error).
    pub dicomweb: Option<DicomWeb>,
    /// Where export jobs are kept; in memory only when `None`. Its
    /// `exports` folder is always an allowed export destination.
    pub state_dir: Option<std::path::PathBuf>,
    /// The destinations exports may write to, and the AE title.
    pub export: crate::config::ExportPolicy,
    /// The S3 client `s3://` export destinations use when there is no
    /// local S3 folder.
    pub s3: Option<aws_sdk_s3::Client>,
    /// The key confirmation tokens are sealed with (shared by replicas);
    /// made at start when `None`.
    pub confirmation_key: Option<Vec<u8>>,
    /// The fixture set loading into the backend while the server answers.
    pub loading: Option<Arc<Loading>>,
    /// How long a call that needs the loading set waits for it before
    /// answering that it is still loading.
    pub loading_wait: Duration,
}

/// The HealthImaging MCP server. Cheap to clone: every clone shares the
/// client, the confirmation tokens and the audit log.
#[derive(Debug, Clone)]
pub struct HealthImagingServer {
    pub(crate) client: Client,
    pub(crate) confirmations: Arc<Confirmations>,
    pub(crate) local_s3_root: Option<Arc<std::path::Path>>,
    pub(crate) bulk_ceiling: usize,
    /// Parsed metadata documents by image set version.
    pub(crate) metadata: Arc<MetadataCache>,
    /// DICOMweb requests to the same backend.
    pub(crate) dicomweb: Option<Arc<DicomWeb>>,
    /// Export jobs (`None` without DICOMweb).
    pub(crate) exports: Option<Arc<crate::export::Runner>>,
    pub(crate) export_policy: Arc<crate::config::ExportPolicy>,
    /// The state directory's `exports` folder, always an allowed destination.
    pub(crate) exports_folder: Option<Arc<std::path::Path>>,
    audit: Arc<AuditLog>,
    instructions: Arc<Instructions>,
    loading: Option<Arc<Loading>>,
    loading_wait: Duration,
    tool_router: ToolRouter<HealthImagingServer>,
}

impl HealthImagingServer {
    /// A server calling HealthImaging through `client`.
    pub fn new(client: Client, options: ServerOptions) -> Self {
        let dicomweb = options.dicomweb.clone().map(Arc::new);
        let exports = dicomweb.as_ref().map(|dicomweb| {
            Arc::new(crate::export::Runner {
                dicomweb: dicomweb.clone(),
                jobs: Arc::new(crate::export::ExportJobs::open(
                    options.state_dir.as_deref(),
                )),
                local_s3_root: options.local_s3_root.clone(),
                s3: options.s3.clone(),
                calling_ae: options.export.ae_title.clone(),
                folder_roots: options
                    .export
                    .allowed
                    .iter()
                    .filter_map(|allowed| match allowed {
                        crate::export::Destination::Folder(root) => Some(root.clone()),
                        _ => None,
                    })
                    .chain(options.state_dir.as_ref().map(|dir| dir.join("exports")))
                    .collect(),
            })
        });
        // Jobs a previous server left running go on (they need a runtime).
        if let Some(runner) = &exports
            && tokio::runtime::Handle::try_current().is_ok()
        {
            let resumed = runner.resume_all();
            if resumed > 0 {
                tracing::info!(resumed, "export jobs resumed");
            }
        }
        Self {
            exports,
            export_policy: Arc::new(options.export.clone()),
            exports_folder: options
                .state_dir
                .as_ref()
                .map(|dir| Arc::from(dir.join("exports").as_path())),
            dicomweb,
            client,
            confirmations: Arc::new(match &options.confirmation_key {
                Some(key) => Confirmations::with_key(options.confirmation_ttl, key),
                None => Confirmations::new(options.confirmation_ttl),
            }),
            instructions: Arc::new(Instructions {
                backend: options.backend_description.clone(),
                grant: options.grant.describe().to_owned(),
                synthetic: options.synthetic,
                ttl: options.confirmation_ttl,
            }),
            loading: options.loading.clone(),
            loading_wait: options.loading_wait,
            local_s3_root: options.local_s3_root.map(Into::into),
            bulk_ceiling: options.bulk_ceiling,
            metadata: Arc::default(),
            audit: Arc::new(options.audit),
            tool_router: tools::router(options.grant),
        }
    }
}

/// What the instructions say, kept to write them when a client asks: the
/// state of a loading fixture set changes after the server starts.
#[derive(Debug)]
struct Instructions {
    backend: String,
    grant: String,
    synthetic: bool,
    ttl: Duration,
}

impl HealthImagingServer {
    /// Waits for a loading fixture set when the call needs it; the answer to
    /// give instead of calling, when it is still loading or failed.
    async fn wait_for_fixtures(
        &self,
        tool: &str,
        arguments: Option<&serde_json::Map<String, serde_json::Value>>,
        progress: Option<&tools::plan::Progress>,
    ) -> Option<crate::errors::ToolError> {
        let loading = self.loading.as_ref()?;
        let mut need = loading.need(tool, arguments);
        if need == Need::Datastore {
            loading.wait_for_datastore(self.loading_wait).await;
            need = match loading.need(tool, arguments) {
                Need::Datastore => Need::Load,
                need => need,
            };
        }
        if need != Need::Load {
            return None;
        }
        let mut last: Option<usize> = None;
        let gate = loading
            .wait(self.loading_wait, move |fraction, words| {
                // In per mille, and only rising: progress must increase.
                let value = (fraction * 1000.0) as usize;
                let send = progress.is_some() && last.is_none_or(|l| value > l);
                if send {
                    last = Some(value);
                }
                async move {
                    if let (true, Some(progress)) = (send, progress) {
                        progress.report(value, 1000, words).await;
                    }
                }
            })
            .await;
        match gate {
            Gate::Proceed => None,
            Gate::Refuse(error) => Some(error),
        }
    }
}

fn instructions(parts: &Instructions, loading: Option<&Loading>) -> String {
    let holding = loading.map_or_else(String::new, |l| format!("; {}", l.describe()));
    let data = if parts.synthetic {
        "All patients here are synthetic test data; nothing here is a real person."
    } else {
        "This may be real clinical data: never repeat patient identifiers beyond what the user needs."
    };
    format!(
        "This server connects to {backend}{holding}. Permissions: {grant}. {data}\n\
         HealthImaging keeps DICOM data in datastores; inside a datastore each image set holds one \
         DICOM series of one study. Start with list_datastores, find image sets with the search \
         tools, read get_image_set_metadata for frame IDs, and look at frames with \
         get_image_frame. IDs are 32 lowercase letters or digits; datastore_id comes from \
         list_datastores, image_set_id from a search.\n\
         A series' primary image set (isPrimary) is the one a viewer shows; non-primary ones \
         hold instances that conflicted on import. Tools that find image sets by patient, study \
         or series include both. Searches and listings read every page up to limit and return \
         next_token when cut short.\n\
         Every change makes a new image set version; older versions stay readable by version_id \
         (default: the latest), so an edit can be reverted.\n\
         Destructive tools work in two phases: a first call without confirmation_token changes \
         nothing and returns a preview and a confirmation_token. Show the preview to the user, and \
         call again with the token only after they agree. Tokens work once, expire after {ttl} \
         seconds, and are refused if the data changed in between (a fresh preview follows). Tools \
         that change many image sets change at most max_image_sets per call (default 25): call \
         again while more_remain is true.\n\
         Failed calls return an error that starts with the AWS error code and ends with what to do. \
         Arguments named as the AWS Labs reference server names them (max_results, \
         search_criteria, …) are accepted too.",
        backend = parts.backend,
        grant = parts.grant,
        ttl = parts.ttl.as_secs(),
    )
}
#[tool_handler(router = self.tool_router)]
impl ServerHandler for HealthImagingServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new(
            "healthimaging-mcp",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(instructions(&self.instructions, self.loading.as_deref()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let tool = request.name.to_string();
        let mut request = request;
        let call = async {
            if let Some(arguments) = request.arguments.as_mut() {
                tools::translate_aliases(&tool, arguments)
                    .map_err(|message| ErrorData::invalid_params(message, None))?;
            }
            let progress = tools::plan::Progress::new(&context.meta, context.peer.clone());
            if let Some(error) = self
                .wait_for_fixtures(&tool, request.arguments.as_ref(), Some(&progress))
                .await
            {
                return error.into_call_tool_result();
            }
            self.tool_router
                .call(ToolCallContext::new(self, request, context))
                .await
        };
        self.audit
            .record_call(&tool, call, |result| match result {
                Ok(CallToolResponse::Complete(result)) => result.is_error == Some(true),
                Ok(_) => false,
                Err(_) => true,
            })
            .await
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(resources::list()))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(
            resources::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = serde_json::Map::from_iter([(
            "uri".to_owned(),
            serde_json::Value::String(request.uri.clone()),
        )]);
        if let Some(error) = self
            .wait_for_fixtures("resources/read", Some(&uri), None)
            .await
        {
            return Err(ErrorData::resource_not_found(error.to_string(), None));
        }
        resources::read(self, &request.uri)
            .await
            .map(ReadResourceResponse::from)
    }
}
