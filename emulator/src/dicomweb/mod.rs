//! The DICOMweb API of HealthImaging, under `/datastore/{datastoreId}/`:
//!
//! - WADO-RS ([`wado`]): GetDICOMInstance, GetDICOMInstanceFrames,
//!   GetDICOMInstanceMetadata, GetDICOMSeriesMetadata, GetDICOMBulkdata;
//! - QIDO-RS ([`qido`]): SearchDICOMStudies, SearchDICOMSeries,
//!   SearchDICOMInstances;
//! - STOW-RS ([`stow`]): StoreDICOM, StoreDICOMStudy.
//!
//! Without `?imageSetId=` only primary image sets are addressed; with it,
//! that image set alone (primary or not). Everything is read from what the
//! SDK operations read: the image set's latest metadata document and its
//! stored frames. Errors are the API's (`x-amzn-ErrorType` and a JSON
//! message): 400, 404, 406, never an HTML page.

pub(crate) mod dataset;
mod documents;
pub mod media;
mod part10;
mod qido;
mod stow;
mod wado;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value as Json;

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::router::NoRoute;
use crate::service::Service;
use crate::store::{DicomTags, ImageSet, Reader};
use crate::validate;
use crate::wire::Query;

pub use documents::Documents;
pub use stow::MAX_BODY as MAX_STORE_BODY;

/// A DICOMweb action (the IAM action names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `GET /studies`
    SearchDICOMStudies,
    /// `GET /studies/{study}/series`
    SearchDICOMSeries,
    /// `GET /studies/{study}/series/{series}/instances`,
    /// `GET /studies/{study}/instances`, `GET /instances`
    SearchDICOMInstances,
    /// `GET /studies/{study}/series/{series}/metadata`
    GetDICOMSeriesMetadata,
    /// `GET /studies/{study}/series/{series}/instances/{instance}`
    GetDICOMInstance,
    /// `GET …/instances/{instance}/metadata`
    GetDICOMInstanceMetadata,
    /// `GET …/instances/{instance}/frames/{frameList}`
    GetDICOMInstanceFrames,
    /// `GET …/instances/{instance}/bulkdata/{bulkdataUriHash}`
    GetDICOMBulkdata,
    /// `POST /studies`
    StoreDICOM,
    /// `POST /studies/{study}`
    StoreDICOMStudy,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 10] = [
        Action::SearchDICOMStudies,
        Action::SearchDICOMSeries,
        Action::SearchDICOMInstances,
        Action::GetDICOMSeriesMetadata,
        Action::GetDICOMInstance,
        Action::GetDICOMInstanceMetadata,
        Action::GetDICOMInstanceFrames,
        Action::GetDICOMBulkdata,
        Action::StoreDICOM,
        Action::StoreDICOMStudy,
    ];

    /// The action's name.
    pub fn name(self) -> &'static str {
        match self {
            Action::SearchDICOMStudies => "SearchDICOMStudies",
            Action::SearchDICOMSeries => "SearchDICOMSeries",
            Action::SearchDICOMInstances => "SearchDICOMInstances",
            Action::GetDICOMSeriesMetadata => "GetDICOMSeriesMetadata",
            Action::GetDICOMInstance => "GetDICOMInstance",
            Action::GetDICOMInstanceMetadata => "GetDICOMInstanceMetadata",
            Action::GetDICOMInstanceFrames => "GetDICOMInstanceFrames",
            Action::GetDICOMBulkdata => "GetDICOMBulkdata",
            Action::StoreDICOM => "StoreDICOM",
            Action::StoreDICOMStudy => "StoreDICOMStudy",
        }
    }

    /// Whether the action stores instances (a POST with a DICOM body).
    pub fn stores(self) -> bool {
        matches!(self, Action::StoreDICOM | Action::StoreDICOMStudy)
    }
}

/// A DICOMweb request matched to its action, with its path labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The action.
    pub action: Action,
    /// `datastoreId`.
    pub datastore: String,
    /// The study UID, when the path names one.
    pub study: Option<String>,
    /// The series UID, when the path names one.
    pub series: Option<String>,
    /// The SOP instance UID, when the path names one.
    pub instance: Option<String>,
    /// The frame list or the bulk data hash.
    pub last: Option<String>,
}

/// Matches a DICOMweb path; `None` when the path is not a DICOMweb one
/// (the SDK routes are tried then).
pub fn route(method: &Method, path: &str) -> Option<Result<Route, NoRoute>> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["datastore", datastore, rest @ ..] = segments.as_slice() else {
        return None;
    };
    if !matches!(rest.first(), Some(&"studies" | &"instances")) {
        return None;
    }
    let s = |i: usize| Some(rest[i].to_owned());
    let post = *method == Method::POST;
    let (action, study, series, instance, last) = match rest {
        ["studies"] if post => (Action::StoreDICOM, None, None, None, None),
        ["studies", _] if post => (Action::StoreDICOMStudy, s(1), None, None, None),
        _ if post => return Some(Err(NoRoute::WrongMethod)),
        ["studies"] => (Action::SearchDICOMStudies, None, None, None, None),
        ["studies", _] => return Some(Err(NoRoute::WrongMethod)),
        ["instances"] => (Action::SearchDICOMInstances, None, None, None, None),
        ["studies", _, "series"] => (Action::SearchDICOMSeries, s(1), None, None, None),
        ["studies", _, "instances"] => (Action::SearchDICOMInstances, s(1), None, None, None),
        ["studies", _, "series", _, "instances"] => {
            (Action::SearchDICOMInstances, s(1), s(3), None, None)
        }
        ["studies", _, "series", _, "metadata"] => {
            (Action::GetDICOMSeriesMetadata, s(1), s(3), None, None)
        }
        ["studies", _, "series", _, "instances", _] => {
            (Action::GetDICOMInstance, s(1), s(3), s(5), None)
        }
        ["studies", _, "series", _, "instances", _, "metadata"] => {
            (Action::GetDICOMInstanceMetadata, s(1), s(3), s(5), None)
        }
        ["studies", _, "series", _, "instances", _, "frames", _] => {
            (Action::GetDICOMInstanceFrames, s(1), s(3), s(5), s(7))
        }
        ["studies", _, "series", _, "instances", _, "bulkdata", _] => {
            (Action::GetDICOMBulkdata, s(1), s(3), s(5), s(7))
        }
        _ => return Some(Err(NoRoute::UnknownPath)),
    };
    if !post && *method != Method::GET && *method != Method::HEAD {
        return Some(Err(NoRoute::WrongMethod));
    }
    let labels = [&study, &series, &instance, &last];
    if datastore.is_empty() || labels.iter().any(|l| l.as_deref() == Some("")) {
        return Some(Err(NoRoute::UnknownPath));
    }
    Some(Ok(Route {
        action,
        datastore: (*datastore).to_owned(),
        study,
        series,
        instance,
        last,
    }))
}

/// What a DICOMweb handler is given.
#[derive(Debug)]
pub struct Call {
    /// The matched route.
    pub route: Route,
    /// The query string.
    pub query: Query,
    /// The `Accept` header's media ranges.
    pub accept: Vec<media::MediaRange>,
    /// The base URL the client used (`http://host`), for the URIs it is
    /// given back.
    pub base: String,
    /// An OIDC bearer token the request carries.
    pub bearer: Option<String>,
}

/// Answers one DICOMweb request.
pub async fn dispatch(
    service: &Arc<Service>,
    route: Route,
    request: axum::extract::Request,
) -> Response {
    let injection = service.faults.inject(route.action.name());
    if !injection.delay.is_zero() {
        tokio::time::sleep(injection.delay).await;
    }
    if let Some(error) = injection.error {
        return error.into_response();
    }
    let (parts, body) = if route.action.stores() {
        match crate::service::read_body(request, stow::MAX_BODY).await {
            Ok(read) => read,
            Err(refused) => return refused,
        }
    } else {
        let (parts, _) = request.into_parts();
        (parts, Bytes::new())
    };
    let headers = parts.headers;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let call = Call {
        route,
        query: Query::parse(parts.uri.query()),
        accept: media::accept(headers.get(header::ACCEPT).and_then(|h| h.to_str().ok())),
        base: format!("http://{host}"),
        bearer: bearer_token(&headers).map(str::to_owned),
    };
    let worker = service.clone();
    let action = call.route.action;
    tokio::task::spawn_blocking(move || {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            handle(&worker, &call, &headers, body)
        }));
        match outcome {
            Ok(result) => result.unwrap_or_else(IntoResponse::into_response),
            Err(_) => {
                tracing::error!(action = action.name(), "DICOMweb handler panicked");
                failed(action)
            }
        }
    })
    .await
    .unwrap_or_else(|_| failed(action))
}

fn failed(action: Action) -> Response {
    ApiError::new(
        ErrorCode::InternalServer,
        format!("The service failed while handling {}", action.name()),
    )
    .into_response()
}

fn handle(service: &Service, call: &Call, headers: &HeaderMap, body: Bytes) -> ApiResult<Response> {
    validate::resource_id("datastoreId", &call.route.datastore)?;
    for (name, uid) in [
        ("StudyInstanceUID", &call.route.study),
        ("SeriesInstanceUID", &call.route.series),
        ("SOPInstanceUID", &call.route.instance),
    ] {
        if let Some(uid) = uid {
            check_uid(name, uid)?;
        }
    }
    if let Some(token) = &call.bearer {
        check_bearer(service, call, token)?;
    }
    match call.route.action {
        Action::SearchDICOMStudies | Action::SearchDICOMSeries | Action::SearchDICOMInstances => {
            qido::search(service, call)
        }
        Action::GetDICOMSeriesMetadata => wado::series_metadata(service, call),
        Action::GetDICOMInstance => wado::instance(service, call),
        Action::GetDICOMInstanceMetadata => wado::instance_metadata(service, call),
        Action::GetDICOMInstanceFrames => wado::frames(service, call),
        Action::GetDICOMBulkdata => wado::bulk_data(service, call),
        Action::StoreDICOM | Action::StoreDICOMStudy => stow::store(service, call, headers, body),
    }
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// An OIDC bearer token is accepted by a datastore created with
/// `lambdaAuthorizerArn`, when it checks against `--oidc-jwks`.
fn check_bearer(service: &Service, call: &Call, token: &str) -> ApiResult<()> {
    let datastore = &call.route.datastore;
    let found = service
        .store()
        .read(|r| crate::ops::find_live_datastore(service, r, datastore))?;
    let denied = |why: String| ApiError::new(ErrorCode::AccessDenied, why);
    if found.lambda_authorizer_arn.is_none() {
        return Err(denied(format!(
            "Datastore {datastore} was created without lambdaAuthorizerArn, so it accepts no bearer tokens; sign the request with SigV4"
        )));
    }
    let Some(jwks) = &service.config.oidc_jwks else {
        return Err(denied(
            "This emulator was started without --oidc-jwks, so it cannot check bearer tokens"
                .into(),
        ));
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    jwks.check(token, now)
        .map_err(|why| denied(format!("The bearer token is refused: {why}")))
}

/// A UID in a path: at most 64 characters of digits and dots.
fn check_uid(name: &str, uid: &str) -> ApiResult<()> {
    if uid.len() > 64 || uid.is_empty() || !uid.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(ApiError::new(
            ErrorCode::Validation,
            format!("The {name} in the path is not a valid UID: at most 64 digits and dots"),
        ));
    }
    Ok(())
}

/// An image set and its latest metadata document.
#[derive(Debug, Clone)]
pub struct Source {
    /// The image set.
    pub set: ImageSet,
    /// Its document.
    pub document: Arc<Json>,
}

/// The image sets a call addresses, most recently updated first: the one
/// `?imageSetId=` names, or the primary image sets of the route's study, of
/// `studies`, or of the whole datastore.
fn source_sets(
    r: &Reader<'_>,
    service: &Service,
    call: &Call,
    studies: Option<&BTreeSet<String>>,
) -> ApiResult<Vec<ImageSet>> {
    let datastore = &call.route.datastore;
    crate::ops::find_live_datastore(service, r, datastore)?;
    if let Some(id) = call.query.get("imageSetId") {
        validate::resource_id("imageSetId", id)?;
        let set = r
            .image_set(datastore, id)?
            .filter(|set| !set.is_deleted())
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "Image set {id} does not exist in datastore {datastore}"
                ))
            })?;
        return Ok(vec![set]);
    }
    let mut sets = match (&call.route.study, studies) {
        (Some(study), _) => r.study_primaries(datastore, study)?,
        // Only these studies can hold what is asked for.
        (None, Some(studies)) => {
            let mut sets = Vec::new();
            for study in studies {
                sets.extend(r.study_primaries(datastore, study)?);
            }
            sets
        }
        (None, None) => r.primaries_by_update(datastore)?,
    };
    sort_by_update(&mut sets);
    Ok(sets)
}

fn sort_by_update(sets: &mut [ImageSet]) {
    sets.sort_by(|a, b| b.updated_at().cmp(&a.updated_at()).then(b.row.cmp(&a.row)));
}

/// `set` with its metadata document (`None` for an image set without one).
fn source(service: &Service, set: ImageSet) -> ApiResult<Option<Source>> {
    let Some(blob) = set.latest().metadata.clone() else {
        return Ok(None);
    };
    match service.documents.get(service.store().blobs(), &blob) {
        Some(document) => Ok(Some(Source { set, document })),
        None => {
            tracing::error!(image_set = %set.id, "a metadata document the store refers to is missing");
            Err(ApiError::new(
                ErrorCode::InternalServer,
                "The image set's metadata could not be read",
            ))
        }
    }
}

/// The image sets a call addresses with their documents, most recently
/// updated first.
fn sources(
    service: &Service,
    call: &Call,
    studies: Option<&BTreeSet<String>>,
) -> ApiResult<Vec<Source>> {
    let sets = service
        .store()
        .read(|r| source_sets(r, service, call, studies))?;
    let mut found = Vec::new();
    for set in sets {
        found.extend(source(service, set)?);
    }
    Ok(found)
}

/// How many rows of the datastore's listing [`Studies`] reads at a time.
const STUDY_LISTING_PAGE: usize = 256;

/// The studies a call addresses, one at a time, in the order of their most
/// recently updated image set, each with all its addressed image sets, most
/// recently updated first. Without a study, a list of studies or an image
/// set to go by, the datastore's primary image sets are listed a page at a
/// time from the index, and a study's image sets are read when it is met;
/// a search that stops early reads no further.
struct Studies {
    /// Studies already gathered (a route's study, a list, one image set).
    given: std::collections::VecDeque<Vec<ImageSet>>,
    /// Listing the whole datastore: where the next page starts.
    listing: Option<Listing>,
}

struct Listing {
    after: Option<(i64, i64)>,
    buffer: std::collections::VecDeque<(i64, i64, Option<String>)>,
    exhausted: bool,
    seen: std::collections::HashSet<String>,
}

impl Studies {
    fn new(
        r: &Reader<'_>,
        service: &Service,
        call: &Call,
        studies: Option<&BTreeSet<String>>,
    ) -> ApiResult<Self> {
        let whole = call.route.study.is_none()
            && studies.is_none()
            && call.query.get("imageSetId").is_none();
        if whole {
            crate::ops::find_live_datastore(service, r, &call.route.datastore)?;
            return Ok(Self {
                given: Default::default(),
                listing: Some(Listing {
                    after: None,
                    buffer: Default::default(),
                    exhausted: false,
                    seen: Default::default(),
                }),
            });
        }
        let mut order: Vec<String> = Vec::new();
        let mut groups: std::collections::HashMap<String, Vec<ImageSet>> = Default::default();
        for set in source_sets(r, service, call, studies)? {
            let study = set
                .latest()
                .tags
                .study_instance_uid
                .clone()
                .unwrap_or_default();
            groups
                .entry(study.clone())
                .or_insert_with(|| {
                    order.push(study);
                    Vec::new()
                })
                .push(set);
        }
        Ok(Self {
            given: order
                .into_iter()
                .filter_map(|study| groups.remove(&study))
                .collect(),
            listing: None,
        })
    }

    /// The next study's image sets, among the studies whose image sets'
    /// summaries `keep` accepts: a study it refuses is passed over without
    /// its image sets being read.
    fn next(
        &mut self,
        r: &Reader<'_>,
        call: &Call,
        keep: &dyn Fn(&[DicomTags]) -> bool,
    ) -> ApiResult<Option<Vec<ImageSet>>> {
        let Some(listing) = &mut self.listing else {
            while let Some(sets) = self.given.pop_front() {
                if keep(&summaries_of(&sets)) {
                    return Ok(Some(sets));
                }
            }
            return Ok(None);
        };
        let datastore = &call.route.datastore;
        loop {
            if listing.buffer.is_empty() {
                if listing.exhausted {
                    return Ok(None);
                }
                let page =
                    r.primary_rows_by_update(datastore, listing.after, STUDY_LISTING_PAGE)?;
                listing.exhausted = page.len() < STUDY_LISTING_PAGE;
                let Some(&(updated, row, _)) = page.last() else {
                    return Ok(None);
                };
                listing.after = Some((updated, row));
                listing.buffer.extend(page);
            }
            let Some((_, row, study)) = listing.buffer.pop_front() else {
                continue;
            };
            match study.filter(|uid| !uid.is_empty()) {
                Some(uid) => {
                    if !listing.seen.insert(uid.clone()) {
                        continue;
                    }
                    if !keep(&r.study_summaries(datastore, &uid)?) {
                        continue;
                    }
                    let mut sets = r.study_primaries(datastore, &uid)?;
                    sort_by_update(&mut sets);
                    return Ok(Some(sets));
                }
                // An image set whose study is not indexed: alone.
                None => {
                    let sets = r.image_sets_at(&[row])?;
                    if keep(&summaries_of(&sets)) {
                        return Ok(Some(sets));
                    }
                }
            }
        }
    }
}

/// The summaries of `sets`' latest versions.
fn summaries_of(sets: &[ImageSet]) -> Vec<DicomTags> {
    sets.iter().map(|set| set.latest().tags.clone()).collect()
}

/// The study UID of a document.
fn study_uid(document: &Json) -> &str {
    document["Study"]["DICOM"]["StudyInstanceUID"]
        .as_str()
        .unwrap_or_default()
}
