//! Routing: from method and path to one HealthImaging operation.
//!
//! The service is rest-json: an operation is named by its method and URI
//! template, never by `Host` (the SDKs send `runtime-` hosts for data-plane
//! operations) nor by a header. Path labels arrive percent-encoded, `/` as
//! `%2F`, so the path is split on literal `/` first and each label decoded
//! after.

use axum::http::{Method, StatusCode};
use serde::{Serialize, Serializer};

/// An operation of the HealthImaging API that the emulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `POST /datastore`
    CreateDatastore,
    /// `GET /datastore/{datastoreId}`
    GetDatastore,
    /// `GET /datastore`
    ListDatastores,
    /// `DELETE /datastore/{datastoreId}`
    DeleteDatastore,
    /// `POST /tags/{resourceArn}`
    TagResource,
    /// `GET /tags/{resourceArn}`
    ListTagsForResource,
    /// `DELETE /tags/{resourceArn}`
    UntagResource,
    /// `POST /startDICOMImportJob/datastore/{datastoreId}`
    StartDICOMImportJob,
    /// `GET /getDICOMImportJob/datastore/{datastoreId}/job/{jobId}`
    GetDICOMImportJob,
    /// `GET /listDICOMImportJobs/datastore/{datastoreId}`
    ListDICOMImportJobs,
    /// `POST /datastore/{datastoreId}/searchImageSets`
    SearchImageSets,
    /// `POST /datastore/{datastoreId}/imageSet/{imageSetId}/getImageSet`
    GetImageSet,
    /// `POST /datastore/{datastoreId}/imageSet/{imageSetId}/getImageSetMetadata`
    GetImageSetMetadata,
    /// `POST /datastore/{datastoreId}/imageSet/{imageSetId}/getImageFrame`
    GetImageFrame,
    /// `POST /datastore/{datastoreId}/imageSet/{imageSetId}/listImageSetVersions`
    ListImageSetVersions,
    /// `POST /datastore/{datastoreId}/imageSet/{imageSetId}/updateImageSetMetadata`
    UpdateImageSetMetadata,
    /// `POST /datastore/{datastoreId}/imageSet/{sourceImageSetId}/copyImageSet`
    CopyImageSet,
    /// `POST /datastore/{datastoreId}/imageSet/{imageSetId}/deleteImageSet`
    DeleteImageSet,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 18] = [
        Operation::CreateDatastore,
        Operation::GetDatastore,
        Operation::ListDatastores,
        Operation::DeleteDatastore,
        Operation::TagResource,
        Operation::ListTagsForResource,
        Operation::UntagResource,
        Operation::StartDICOMImportJob,
        Operation::GetDICOMImportJob,
        Operation::ListDICOMImportJobs,
        Operation::SearchImageSets,
        Operation::GetImageSet,
        Operation::GetImageSetMetadata,
        Operation::GetImageFrame,
        Operation::ListImageSetVersions,
        Operation::UpdateImageSetMetadata,
        Operation::CopyImageSet,
        Operation::DeleteImageSet,
    ];

    /// The operation's name in the model.
    pub fn name(self) -> &'static str {
        match self {
            Operation::CreateDatastore => "CreateDatastore",
            Operation::GetDatastore => "GetDatastore",
            Operation::ListDatastores => "ListDatastores",
            Operation::DeleteDatastore => "DeleteDatastore",
            Operation::TagResource => "TagResource",
            Operation::ListTagsForResource => "ListTagsForResource",
            Operation::UntagResource => "UntagResource",
            Operation::StartDICOMImportJob => "StartDICOMImportJob",
            Operation::GetDICOMImportJob => "GetDICOMImportJob",
            Operation::ListDICOMImportJobs => "ListDICOMImportJobs",
            Operation::SearchImageSets => "SearchImageSets",
            Operation::GetImageSet => "GetImageSet",
            Operation::GetImageSetMetadata => "GetImageSetMetadata",
            Operation::GetImageFrame => "GetImageFrame",
            Operation::ListImageSetVersions => "ListImageSetVersions",
            Operation::UpdateImageSetMetadata => "UpdateImageSetMetadata",
            Operation::CopyImageSet => "CopyImageSet",
            Operation::DeleteImageSet => "DeleteImageSet",
        }
    }

    /// The largest request body the operation takes, from the model's
    /// limits: UpdateImageSetMetadata carries two blobs of up to 30,000
    /// bytes (base64 on the wire), CopyImageSet up to 260,000 characters of
    /// copiable attributes (escaped in JSON), StartDICOMImportJob up to
    /// 1,000 metadata mappings; everything else a few kilobytes.
    pub fn body_limit(self) -> usize {
        match self {
            Operation::UpdateImageSetMetadata => 256 * 1024,
            Operation::CopyImageSet => 2 * 1024 * 1024,
            Operation::StartDICOMImportJob => MAX_BODY_LIMIT,
            _ => 64 * 1024,
        }
    }

    /// The operation with the model name `name`.
    pub fn from_name(name: &str) -> Option<Operation> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }
}

/// The largest body any operation takes.
pub const MAX_BODY_LIMIT: usize = 4 * 1024 * 1024;

impl Serialize for Operation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// A request matched to an operation, with its decoded path labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The operation.
    pub operation: Operation,
    /// The path labels in template order (`datastoreId`, `resourceArn`, …).
    pub labels: Vec<String>,
}

/// Why a request matched no operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRoute {
    /// No URI template matches the path.
    UnknownPath,
    /// A template matches, but not with this method.
    WrongMethod,
}

impl NoRoute {
    /// The HTTP status of the answer.
    pub fn status(self) -> StatusCode {
        match self {
            NoRoute::UnknownPath => StatusCode::NOT_FOUND,
            NoRoute::WrongMethod => StatusCode::METHOD_NOT_ALLOWED,
        }
    }
}

/// Matches `method` and the raw `path` to an operation.
pub fn route(method: &Method, path: &str) -> Result<Route, NoRoute> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let decoded = |segment: &str| percent_decode(segment).filter(|label| !label.is_empty());
    let labels = |segments: &[&&str]| -> Result<Vec<String>, NoRoute> {
        segments
            .iter()
            .map(|s| decoded(s).ok_or(NoRoute::UnknownPath))
            .collect()
    };
    let (candidates, labels): (&[(Method, Operation)], Vec<String>) = match segments.as_slice() {
        ["datastore"] => (
            &[
                (Method::POST, Operation::CreateDatastore),
                (Method::GET, Operation::ListDatastores),
            ],
            vec![],
        ),
        ["datastore", id] => {
            let Some(id) = decoded(id) else {
                return Err(NoRoute::UnknownPath);
            };
            (
                &[
                    (Method::GET, Operation::GetDatastore),
                    (Method::DELETE, Operation::DeleteDatastore),
                ],
                vec![id],
            )
        }
        ["tags", arn] => {
            let Some(arn) = decoded(arn) else {
                return Err(NoRoute::UnknownPath);
            };
            (
                &[
                    (Method::POST, Operation::TagResource),
                    (Method::GET, Operation::ListTagsForResource),
                    (Method::DELETE, Operation::UntagResource),
                ],
                vec![arn],
            )
        }
        ["startDICOMImportJob", "datastore", id] => (
            &[(Method::POST, Operation::StartDICOMImportJob)],
            labels(&[id])?,
        ),
        ["getDICOMImportJob", "datastore", id, "job", job] => (
            &[(Method::GET, Operation::GetDICOMImportJob)],
            labels(&[id, job])?,
        ),
        ["listDICOMImportJobs", "datastore", id] => (
            &[(Method::GET, Operation::ListDICOMImportJobs)],
            labels(&[id])?,
        ),
        ["datastore", id, "searchImageSets"] => (
            &[(Method::POST, Operation::SearchImageSets)],
            labels(&[id])?,
        ),
        ["datastore", id, "imageSet", set, action] => {
            let candidates: &[(Method, Operation)] = match *action {
                "getImageSet" => &[(Method::POST, Operation::GetImageSet)],
                "getImageSetMetadata" => &[(Method::POST, Operation::GetImageSetMetadata)],
                "getImageFrame" => &[(Method::POST, Operation::GetImageFrame)],
                "listImageSetVersions" => &[(Method::POST, Operation::ListImageSetVersions)],
                "updateImageSetMetadata" => &[(Method::POST, Operation::UpdateImageSetMetadata)],
                "copyImageSet" => &[(Method::POST, Operation::CopyImageSet)],
                "deleteImageSet" => &[(Method::POST, Operation::DeleteImageSet)],
                _ => return Err(NoRoute::UnknownPath),
            };
            (candidates, labels(&[id, set])?)
        }
        _ => return Err(NoRoute::UnknownPath),
    };
    candidates
        .iter()
        .find(|(m, _)| m == method)
        .map(|(_, operation)| Route {
            operation: *operation,
            labels,
        })
        .ok_or(NoRoute::WrongMethod)
}

/// Decodes `%XX` escapes; `None` when the result is not UTF-8 or an escape is
/// malformed.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_on_method_and_path() {
        let r = route(&Method::POST, "/datastore").unwrap();
        assert_eq!(r.operation, Operation::CreateDatastore);
        let r = route(&Method::DELETE, "/datastore/abc").unwrap();
        assert_eq!(
            (r.operation, r.labels),
            (Operation::DeleteDatastore, vec!["abc".to_owned()])
        );
    }

    #[test]
    fn arn_labels_are_one_percent_encoded_segment() {
        let path = "/tags/arn%3Aaws%3Amedical-imaging%3Aus-east-1%3A123456789012%3Adatastore%2Fabc";
        let r = route(&Method::GET, path).unwrap();
        assert_eq!(r.operation, Operation::ListTagsForResource);
        assert_eq!(
            r.labels[0],
            "arn:aws:medical-imaging:us-east-1:123456789012:datastore/abc"
        );
    }

    #[test]
    fn data_plane_and_import_routes_carry_their_labels() {
        let r = route(&Method::POST, "/datastore/ds/imageSet/is/getImageFrame").unwrap();
        assert_eq!(r.operation, Operation::GetImageFrame);
        assert_eq!(r.labels, vec!["ds", "is"]);
        let r = route(&Method::GET, "/getDICOMImportJob/datastore/ds/job/j1").unwrap();
        assert_eq!(
            (r.operation, r.labels),
            (Operation::GetDICOMImportJob, vec!["ds".into(), "j1".into()])
        );
        assert_eq!(
            route(&Method::GET, "/datastore/ds/searchImageSets"),
            Err(NoRoute::WrongMethod)
        );
        assert_eq!(
            route(&Method::POST, "/datastore/ds/imageSet/is/nothing"),
            Err(NoRoute::UnknownPath)
        );
    }

    #[test]
    fn unknown_paths_and_methods_are_told_apart() {
        assert_eq!(route(&Method::GET, "/nothing"), Err(NoRoute::UnknownPath));
        assert_eq!(route(&Method::PUT, "/datastore"), Err(NoRoute::WrongMethod));
        assert_eq!(
            route(&Method::GET, "/datastore/"),
            Err(NoRoute::UnknownPath)
        );
        assert_eq!(route(&Method::GET, "/tags/%zz"), Err(NoRoute::UnknownPath));
    }

    #[test]
    fn operation_names_round_trip() {
        for op in Operation::ALL {
            assert_eq!(Operation::from_name(op.name()), Some(op));
        }
        assert_eq!(Operation::from_name("Nope"), None);
    }
}
