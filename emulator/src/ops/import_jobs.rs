//! StartDICOMImportJob, GetDICOMImportJob and ListDICOMImportJobs.
//!
//! - `POST /startDICOMImportJob/datastore/{datastoreId}`: the datastore must be
//!   `ACTIVE` (`ConflictException` otherwise); idempotent on `clientToken`
//!   like CreateDatastore. The job is queued for the import worker
//!   ([`crate::import`]) and answered `SUBMITTED`.
//! - `GET /getDICOMImportJob/datastore/{datastoreId}/job/{jobId}`.
//! - `GET /listDICOMImportJobs/datastore/{datastoreId}?jobStatus=&maxResults=&nextToken=`,
//!   newest first (the service's order is undocumented; the console shows
//!   the newest first).
//!
//! The `outputS3Uri` a job reports is the caller's prefix plus
//! `{datastoreId}-DicomImport-{jobId}/`, as the service reports it.

use axum::response::Response;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::s3::S3Uri;
use crate::service::Service;
use crate::store::{DatastoreStatus, ImportJob, JobStatus, TokenKind};
use crate::validate;
use crate::wire::{self, JsonBody};

use super::{Request, find_live_datastore, paging};

const MAX_MAPPINGS: usize = 1000;

pub(super) fn start(service: &Service, request: &Request) -> ApiResult<Response> {
    let datastore_id = request.label(0);
    let body = JsonBody::parse(&request.body)?;
    // Every member is checked before the first violation is answered.
    let mut v = validate::Violations::default();
    v.check(validate::resource_id("datastoreId", datastore_id))?;
    let name = v.check(body.string("jobName"))?.flatten();
    if let Some(name) = &name {
        v.check(validate::string(
            "jobName",
            name,
            1,
            64,
            &validate::JOB_NAME,
        ))?;
    }
    let role = v
        .check(body.required_string("dataAccessRoleArn"))?
        .unwrap_or_default();
    v.check(validate::string(
        "dataAccessRoleArn",
        &role,
        20,
        2048,
        &validate::ROLE_ARN,
    ))?;
    let client_token = v
        .check(body.required_string("clientToken"))?
        .unwrap_or_default();
    v.check(validate::string(
        "clientToken",
        &client_token,
        1,
        64,
        &validate::CLIENT_TOKEN,
    ))?;
    let input = v
        .check(body.required_string("inputS3Uri"))?
        .unwrap_or_default();
    let output = v
        .check(body.required_string("outputS3Uri"))?
        .unwrap_or_default();
    for (member, uri) in [("inputS3Uri", &input), ("outputS3Uri", &output)] {
        let checked = validate::string(member, uri, 1, 1024, &validate::S3_URI).and_then(|()| {
            S3Uri::parse(uri).map(|_| ()).map_err(|problem| {
                ApiError::validation(member, format!("Member must be an S3 location: {problem}"))
            })
        });
        v.check(checked)?;
    }
    let owner = v.check(body.string("inputOwnerAccountId"))?.flatten();
    if let Some(owner) = &owner {
        v.check(validate::string(
            "inputOwnerAccountId",
            owner,
            12,
            12,
            &validate::ACCOUNT_ID,
        ))?;
    }
    let configuration = body.value("importConfiguration").cloned();
    if let Some(configuration) = &configuration {
        v.check(validate_configuration(configuration))?;
    }
    v.finish()?;
    let fingerprint =
        format!("{datastore_id}|{name:?}|{role}|{input}|{output}|{owner:?}|{configuration:?}");

    let now = service.now();
    let started = service.store().write(|w| -> ApiResult<_> {
        let datastore = find_live_datastore(service, w, datastore_id)?;
        if let Some(used) = w.client_token(TokenKind::Job, &client_token)? {
            if used.fingerprint != fingerprint {
                return Err(ApiError::conflict(format!(
                    "clientToken {client_token} was already used to start an import job with different parameters"
                )));
            }
            if let Some(job) = w.job(&used.resource_id)? {
                return Ok((job, false));
            }
        }
        let status = datastore.status(now, service.config.transition_delay);
        if status != DatastoreStatus::Active {
            return Err(ApiError::conflict(format!(
                "Datastore {datastore_id} is {}; imports need an ACTIVE datastore",
                status.as_str()
            )));
        }
        let id = loop {
            let id = service.resource_ids.resource_id();
            if w.job(&id)?.is_none() {
                break id;
            }
        };
        let prefix = if output.ends_with('/') {
            output.clone()
        } else {
            format!("{output}/")
        };
        let job = ImportJob {
            // The service's name for an unnamed job is undocumented; the
            // emulator derives one so that the required output member is present.
            name: name.unwrap_or_else(|| format!("import-{}", &id[..8])),
            output_s3_uri: format!("{prefix}{datastore_id}-DicomImport-{id}/"),
            id: id.clone(),
            datastore_id: datastore_id.to_owned(),
            seq: w.next_seq()?,
            status: JobStatus::Submitted,
            data_access_role_arn: role,
            input_s3_uri: input,
            input_owner_account_id: owner,
            import_configuration: configuration,
            submitted_at: now,
            ended_at: None,
            message: None,
        };
        w.insert_job(&job)?;
        w.insert_client_token(TokenKind::Job, &client_token, &fingerprint, &id)?;
        Ok((job, true))
    });
    let (job, new) = started?;
    if new {
        service.queue_import(&job.id);
    }
    Ok(wire::json(&json!({
        "datastoreId": job.datastore_id,
        "jobId": job.id,
        "jobStatus": job.status.as_str(),
        "submittedAt": job.submitted_at,
    })))
}

/// `ImportConfiguration`: a union with the one member
/// `dicomJsonMetadataImportConfiguration`.
fn validate_configuration(configuration: &Value) -> ApiResult<()> {
    let field = "importConfiguration";
    let object = configuration
        .as_object()
        .ok_or_else(|| ApiError::validation(field, "Member must be a structure"))?;
    if object.len() != 1 {
        return Err(ApiError::validation(
            field,
            "Exactly one member of the union must be set",
        ));
    }
    let mappings = object
        .get("dicomJsonMetadataImportConfiguration")
        .and_then(|c| c["dicomMetadataMappings"].as_array())
        .ok_or_else(|| {
            ApiError::validation(
                field,
                "Member must be {\"dicomJsonMetadataImportConfiguration\":{\"dicomMetadataMappings\":[…]}}",
            )
        })?;
    if mappings.is_empty() || mappings.len() > MAX_MAPPINGS {
        return Err(ApiError::validation(
            &format!("{field}.dicomJsonMetadataImportConfiguration.dicomMetadataMappings"),
            format!("Member must have between 1 and {MAX_MAPPINGS} items"),
        ));
    }
    let prefix = "importConfiguration.dicomJsonMetadataImportConfiguration.dicomMetadataMappings";
    for mapping in mappings {
        let text = |member: &str| -> ApiResult<Option<&str>> {
            match &mapping[member] {
                Value::Null => Ok(None),
                Value::String(text) => Ok(Some(text)),
                _ => Err(ApiError::validation(
                    &format!("{prefix}.member.{member}"),
                    "Member must be a string",
                )),
            }
        };
        let path = text("metadataFilePath")?.ok_or_else(|| {
            ApiError::validation(
                &format!("{prefix}.member.metadataFilePath"),
                "Member must not be null",
            )
        })?;
        validate::string(
            &format!("{prefix}.member.metadataFilePath"),
            path,
            1,
            1024,
            &validate::METADATA_FILE_PATH,
        )?;
        let study = text("studyInstanceUID")?.ok_or_else(|| {
            ApiError::validation(
                &format!("{prefix}.member.studyInstanceUID"),
                "Member must not be null",
            )
        })?;
        for (member, uid) in [
            ("studyInstanceUID", Some(study)),
            ("seriesInstanceUID", text("seriesInstanceUID")?),
        ] {
            if let Some(uid) = uid {
                validate::string(
                    &format!("{prefix}.member.{member}"),
                    uid,
                    0,
                    512,
                    &validate::MAPPING_UID,
                )?;
            }
        }
    }
    Ok(())
}

pub(super) fn get(service: &Service, request: &Request) -> ApiResult<Response> {
    let (datastore_id, job_id) = (request.label(0), request.label(1));
    let job = service.store().read(|r| -> ApiResult<_> {
        find_live_datastore(service, r, datastore_id)?;
        validate::string("jobId", job_id, 1, 32, &validate::JOB_ID)?;
        r.job(job_id)?
            .filter(|job| job.datastore_id == datastore_id)
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "Import job {job_id} does not exist in datastore {datastore_id}"
                ))
            })
    })?;
    let mut properties = summary(&job);
    properties["inputS3Uri"] = json!(job.input_s3_uri);
    properties["outputS3Uri"] = json!(job.output_s3_uri);
    if let Some(configuration) = &job.import_configuration {
        properties["importConfiguration"] = configuration.clone();
    }
    Ok(wire::json(&json!({ "jobProperties": properties })))
}

pub(super) fn list(service: &Service, request: &Request) -> ApiResult<Response> {
    let datastore_id = request.label(0);
    let mut v = validate::Violations::default();
    let status = v
        .check(
            request
                .query
                .get("jobStatus")
                .map(|s| validate::enumeration("jobStatus", s, &JobStatus::ALL))
                .transpose(),
        )?
        .flatten();
    let page_size = v.check(paging::page_size(&request.query))?.unwrap_or(1);
    let after = v
        .check(paging::after_seq(&request.query, "ListDICOMImportJobs"))?
        .flatten();
    v.finish()?;
    let page = service.store().read(|r| -> ApiResult<_> {
        find_live_datastore(service, r, datastore_id)?;
        Ok(r.jobs(datastore_id, after, status, page_size + 1)?)
    })?;
    let more = page.len() > page_size;
    let page = &page[..page.len().min(page_size)];
    let mut body = json!({ "jobSummaries": page.iter().map(summary).collect::<Vec<_>>() });
    if let (true, Some(last)) = (more, page.last()) {
        body["nextToken"] = json!(paging::seq_token("ListDICOMImportJobs", last.seq));
    }
    Ok(wire::json(&body))
}

/// `DICOMImportJobSummary`.
fn summary(job: &ImportJob) -> Value {
    let mut value = json!({
        "jobId": job.id,
        "jobName": job.name,
        "jobStatus": job.status.as_str(),
        "datastoreId": job.datastore_id,
        "dataAccessRoleArn": job.data_access_role_arn,
        "submittedAt": job.submitted_at,
    });
    if let Some(ended) = job.ended_at {
        value["endedAt"] = json!(ended);
    }
    if let Some(message) = &job.message {
        value["message"] = json!(message);
    }
    value
}
