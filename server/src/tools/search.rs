//! `search_image_sets`, and the paging every search-based tool shares.
//!
//! Every search pages through `nextToken` with at most 50 results a page
//! (the API's limit) up to a stated cap, and says when the cap cut the
//! result. Filters follow the API exactly: at most two, EQUAL with one value
//! on an identifier or `isPrimary`, BETWEEN with two bounds on `createdAt`,
//! `updatedAt` or `DICOMStudyDateAndTime`.

use aws_sdk_medicalimaging::Client;
use aws_sdk_medicalimaging::types::{
    DicomStudyDateAndTime, Operator, SearchByAttributeValue, SearchCriteria, SearchFilter, Sort,
    SortField, SortOrder,
};
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::views::ImageSetSummaryView;
use crate::args::{DatastoreId, DicomUid, NextToken, PatientId, ShortText};
use crate::audit;
use crate::errors::ToolError;
use crate::server::HealthImagingServer;

/// SearchImageSets' largest page.
const API_PAGE: usize = 50;
/// The default cap of a search tool.
pub(crate) const DEFAULT_LIMIT: usize = 100;
/// The largest cap a caller may ask for.
pub(crate) const MAX_LIMIT: usize = 1000;

/// An attribute image sets can be searched by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum SearchAttribute {
    /// PatientID (EQUAL).
    #[serde(rename = "DICOMPatientId")]
    PatientId,
    /// AccessionNumber (EQUAL).
    #[serde(rename = "DICOMAccessionNumber")]
    AccessionNumber,
    /// StudyID (EQUAL).
    #[serde(rename = "DICOMStudyId")]
    StudyId,
    /// StudyInstanceUID (EQUAL).
    #[serde(rename = "DICOMStudyInstanceUID")]
    StudyInstanceUid,
    /// SeriesInstanceUID (EQUAL).
    #[serde(rename = "DICOMSeriesInstanceUID")]
    SeriesInstanceUid,
    /// Whether the image set is the primary one of its series (EQUAL true or false).
    #[serde(rename = "isPrimary")]
    IsPrimary,
    /// Creation time (BETWEEN two RFC 3339 times or epoch seconds).
    #[serde(rename = "createdAt")]
    CreatedAt,
    /// Last update time (BETWEEN two RFC 3339 times or epoch seconds).
    #[serde(rename = "updatedAt")]
    UpdatedAt,
    /// Study date and time (BETWEEN two values "YYYYMMDD" or "YYYYMMDD HHMMSS").
    #[serde(rename = "DICOMStudyDateAndTime")]
    StudyDateAndTime,
}

/// EQUAL or BETWEEN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FilterOperator {
    /// One value, matched exactly.
    Equal,
    /// Two values: lower and upper bound, both inclusive.
    Between,
}

/// One search filter.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterArg {
    pub attribute: SearchAttribute,
    pub operator: FilterOperator,
    /// One for EQUAL; lower and upper bound for BETWEEN.
    pub values: Vec<Value>,
}

/// Which field orders the results.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
pub enum SortFieldArg {
    /// Last update (the default, newest first).
    #[serde(rename = "updatedAt")]
    UpdatedAt,
    /// Creation.
    #[serde(rename = "createdAt")]
    CreatedAt,
    /// Study date and time.
    #[serde(rename = "DICOMStudyDateAndTime")]
    StudyDateAndTime,
}

/// Ascending or descending.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SortOrderArg {
    /// Oldest first.
    Asc,
    /// Newest first.
    Desc,
}

/// Arguments of `search_image_sets`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchImageSetsArgs {
    pub datastore_id: DatastoreId,
    /// At most two, all of which must hold; omit to list all.
    #[serde(default)]
    pub filters: Vec<FilterArg>,
    /// Default updatedAt.
    pub sort_field: Option<SortFieldArg>,
    /// Default DESC; needs sort_field.
    pub sort_order: Option<SortOrderArg>,
    /// Most image sets, 1–1000 (default 100).
    pub limit: Option<usize>,
    /// From a result that limit cut short; same filters and sort.
    pub next_token: Option<NextToken>,
}

/// A search's result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SearchOutput {
    /// One sentence on what was found.
    pub summary: String,
    /// The image sets, in the requested order.
    pub image_sets: Vec<ImageSetSummaryView>,
    /// How many were returned.
    pub count: usize,
    /// True when the limit cut the result short; call again with next_token to continue.
    pub truncated: bool,
    /// Where to continue, when truncated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

impl SearchOutput {
    /// The output for `image_sets`, described as `what`.
    pub(crate) fn new(
        what: &str,
        image_sets: Vec<ImageSetSummaryView>,
        next_token: Option<String>,
    ) -> Self {
        let count = image_sets.len();
        let truncated = next_token.is_some();
        let summary = match (count, truncated) {
            (0, _) => format!("No image sets match {what}."),
            (n, false) => format!("Found {n} image sets matching {what}."),
            (n, true) => format!(
                "Showing the first {n} image sets matching {what}; more exist. Call again with next_token (or a larger limit) to continue."
            ),
        };
        Self {
            summary,
            image_sets,
            count,
            truncated,
            next_token,
        }
    }
}

#[tool_router(router = search_tools, vis = "pub(crate)")]
impl HealthImagingServer {
    /// Search image sets with the API's filters: at most two, EQUAL on identifiers and
    /// isPrimary, BETWEEN on createdAt, updatedAt and DICOMStudyDateAndTime. Results carry
    /// patient, study and series attributes, version and primary flag.
    #[tool(
        name = "search_image_sets",
        annotations(
            title = "Search image sets",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn search_image_sets(
        &self,
        Parameters(args): Parameters<SearchImageSetsArgs>,
    ) -> Result<Json<SearchOutput>, ToolError> {
        audit::touch(args.datastore_id.as_str());
        let limit = limit(args.limit)?;
        let criteria = criteria(&args.filters, args.sort_field, args.sort_order)?;
        let (image_sets, next_token) = search(
            &self.client,
            args.datastore_id.as_str(),
            criteria,
            limit,
            args.next_token.map(String::from),
        )
        .await?;
        let what = if args.filters.is_empty() {
            "no filter".to_owned()
        } else {
            format!("{} filter(s)", args.filters.len())
        };
        Ok(Json(SearchOutput::new(&what, image_sets, next_token)))
    }
}

/// A caller's `limit`, checked.
pub(crate) fn limit(limit: Option<usize>) -> Result<usize, ToolError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(ToolError::new(
            "InvalidArgument",
            format!("limit must be between 1 and {MAX_LIMIT}, not {limit}"),
            "Pass a smaller limit and continue with next_token.",
        ))
    }
}

fn invalid(message: impl Into<String>) -> ToolError {
    ToolError::new(
        "InvalidArgument",
        message,
        "Correct the filter: EQUAL takes one value (a string, or true/false for isPrimary); BETWEEN takes two bounds of createdAt, updatedAt (RFC 3339 or epoch seconds) or DICOMStudyDateAndTime (\"YYYYMMDD\" or \"YYYYMMDD HHMMSS\"); at most two filters.",
    )
}

/// The API's SearchCriteria for the tool's filters and sort.
pub(crate) fn criteria(
    filters: &[FilterArg],
    sort_field: Option<SortFieldArg>,
    sort_order: Option<SortOrderArg>,
) -> Result<Option<SearchCriteria>, ToolError> {
    if filters.len() > 2 {
        return Err(invalid(format!(
            "{} filters given; the API takes at most two",
            filters.len()
        )));
    }
    let mut builder = SearchCriteria::builder();
    for filter in filters {
        builder = builder.filters(search_filter(filter)?);
    }
    match (sort_field, sort_order) {
        (None, Some(_)) => return Err(invalid("sort_order needs sort_field")),
        (Some(field), order) => {
            let sort = Sort::builder()
                .sort_field(match field {
                    SortFieldArg::UpdatedAt => SortField::UpdatedAt,
                    SortFieldArg::CreatedAt => SortField::CreatedAt,
                    SortFieldArg::StudyDateAndTime => SortField::DicomStudyDateAndTime,
                })
                .sort_order(match order.unwrap_or(SortOrderArg::Desc) {
                    SortOrderArg::Asc => SortOrder::Asc,
                    SortOrderArg::Desc => SortOrder::Desc,
                })
                .build()
                .map_err(|e| invalid(e.to_string()))?;
            builder = builder.sort(sort);
        }
        (None, None) => {}
    }
    Ok((!filters.is_empty() || sort_field.is_some()).then(|| builder.build()))
}

fn search_filter(filter: &FilterArg) -> Result<SearchFilter, ToolError> {
    use SearchAttribute as A;
    let name = format!("{:?}", filter.attribute);
    let values: Vec<SearchByAttributeValue> = match (filter.operator, filter.attribute) {
        (FilterOperator::Equal, A::CreatedAt | A::UpdatedAt | A::StudyDateAndTime) => {
            return Err(invalid(format!(
                "{name} is searched with BETWEEN and two bounds, not EQUAL"
            )));
        }
        (FilterOperator::Between, A::CreatedAt | A::UpdatedAt | A::StudyDateAndTime) => {
            let [low, high] = filter.values.as_slice() else {
                return Err(invalid(format!(
                    "BETWEEN on {name} takes exactly two values"
                )));
            };
            [low, high]
                .into_iter()
                .map(|v| bound(filter.attribute, v))
                .collect::<Result<_, _>>()?
        }
        (FilterOperator::Between, _) => {
            return Err(invalid(format!(
                "{name} is searched with EQUAL and one value, not BETWEEN"
            )));
        }
        (FilterOperator::Equal, attribute) => {
            let [value] = filter.values.as_slice() else {
                return Err(invalid(format!("EQUAL on {name} takes exactly one value")));
            };
            vec![equal(attribute, value)?]
        }
    };
    SearchFilter::builder()
        .set_values(Some(values))
        .operator(match filter.operator {
            FilterOperator::Equal => Operator::Equal,
            FilterOperator::Between => Operator::Between,
        })
        .build()
        .map_err(|e| invalid(e.to_string()))
}

fn equal(attribute: SearchAttribute, value: &Value) -> Result<SearchByAttributeValue, ToolError> {
    use SearchAttribute as A;
    if attribute == A::IsPrimary {
        return value
            .as_bool()
            .map(SearchByAttributeValue::IsPrimary)
            .ok_or_else(|| invalid("isPrimary takes true or false"));
    }
    let text = value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| invalid(format!("{attribute:?} takes a string value")))?;
    // The DICOM limits of each attribute, checked before any call.
    let checked = match attribute {
        A::PatientId => PatientId::parse(&text).map(String::from),
        A::AccessionNumber | A::StudyId => ShortText::parse(&text).map(String::from),
        _ => DicomUid::parse(&text).map(String::from),
    }
    .map_err(|why| invalid(format!("{attribute:?}: {why}")))?;
    Ok(match attribute {
        A::PatientId => SearchByAttributeValue::DicomPatientId(checked),
        A::AccessionNumber => SearchByAttributeValue::DicomAccessionNumber(checked),
        A::StudyId => SearchByAttributeValue::DicomStudyId(checked),
        A::StudyInstanceUid => SearchByAttributeValue::DicomStudyInstanceUid(checked),
        _ => SearchByAttributeValue::DicomSeriesInstanceUid(checked),
    })
}

fn bound(attribute: SearchAttribute, value: &Value) -> Result<SearchByAttributeValue, ToolError> {
    if attribute == SearchAttribute::StudyDateAndTime {
        let text = value.as_str().ok_or_else(|| {
            invalid("DICOMStudyDateAndTime bounds are strings, \"YYYYMMDD\" or \"YYYYMMDD HHMMSS\"")
        })?;
        let (date, time) = text.split_once([' ', 'T']).unwrap_or((text, ""));
        if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(format!("{text:?} is not a study date YYYYMMDD")));
        }
        let value = DicomStudyDateAndTime::builder()
            .dicom_study_date(date)
            .set_dicom_study_time((!time.is_empty()).then(|| time.replace(':', "")))
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        return Ok(SearchByAttributeValue::DicomStudyDateAndTime(value));
    }
    let time = match value {
        Value::Number(n) => n.as_f64().map(DateTime::from_secs_f64),
        Value::String(s) => DateTime::from_str(s, Format::DateTime).ok(),
        _ => None,
    }
    .ok_or_else(|| {
        invalid(format!(
            "{value} is not a time: use RFC 3339 (2026-01-31T12:00:00Z) or epoch seconds"
        ))
    })?;
    Ok(if attribute == SearchAttribute::CreatedAt {
        SearchByAttributeValue::CreatedAt(time)
    } else {
        SearchByAttributeValue::UpdatedAt(time)
    })
}

/// Every image set matching `criteria`, up to `cap`, from `start`; returns
/// where to continue when more remain.
pub(crate) async fn search(
    client: &Client,
    datastore_id: &str,
    criteria: Option<SearchCriteria>,
    cap: usize,
    start: Option<String>,
) -> Result<(Vec<ImageSetSummaryView>, Option<String>), ToolError> {
    let mut found = Vec::new();
    let mut token = start;
    loop {
        let page_size = (cap - found.len()).min(API_PAGE);
        let page = client
            .search_image_sets()
            .datastore_id(datastore_id)
            .set_search_criteria(criteria.clone())
            .max_results(page_size as i32)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(ToolError::from_sdk)?;
        found.extend(
            page.image_sets_metadata_summaries()
                .iter()
                .map(ImageSetSummaryView::from),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() || found.len() >= cap {
            return Ok((found, token));
        }
    }
}

/// A criteria of EQUAL filters on `values`.
pub(crate) fn equal_criteria(values: Vec<SearchByAttributeValue>) -> SearchCriteria {
    let mut builder = SearchCriteria::builder();
    for value in values {
        if let Ok(filter) = SearchFilter::builder()
            .values(value)
            .operator(Operator::Equal)
            .build()
        {
            builder = builder.filters(filter);
        }
    }
    builder.build()
}
