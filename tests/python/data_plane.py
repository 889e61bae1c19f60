"""Import, search, metadata, frames and writes, driven by boto3: an independent client.

Run by server/tests/python_clients.rs against `healthimaging-mcp emulator`
whose S3 folder holds the ci fixture set under s3://fixtures/ci/. Arguments:
the number of image sets the import must give.
Exits non-zero on the first failure.
"""

import gzip
import json
import sys
import time

import boto3
import botocore.exceptions

EXPECTED_SETS = int(sys.argv[1])
client = boto3.client("medical-imaging")


def error_code(call, **kwargs):
    try:
        call(**kwargs)
    except botocore.exceptions.ClientError as error:
        return error.response["Error"]["Code"]
    raise AssertionError(f"{call.__name__} succeeded but should have failed")


datastore_id = client.create_datastore(datastoreName="boto3-data")["datastoreId"]
for _ in range(200):
    if client.get_datastore(datastoreId=datastore_id)["datastoreProperties"]["datastoreStatus"] == "ACTIVE":
        break
    time.sleep(0.02)

job = client.start_dicom_import_job(
    datastoreId=datastore_id,
    dataAccessRoleArn="arn:aws:iam::123456789012:role/ImportRole",
    inputS3Uri="s3://fixtures/ci/dicom/",
    outputS3Uri="s3://fixtures/boto3-out/",
)
assert job["jobStatus"] == "SUBMITTED", job
for _ in range(1200):
    props = client.get_dicom_import_job(datastoreId=datastore_id, jobId=job["jobId"])["jobProperties"]
    if props["jobStatus"] in ("COMPLETED", "FAILED"):
        break
    time.sleep(0.05)
assert props["jobStatus"] == "COMPLETED", props
assert props["outputS3Uri"].endswith(f"{datastore_id}-DicomImport-{job['jobId']}/"), props
listed = client.list_dicom_import_jobs(datastoreId=datastore_id)["jobSummaries"]
assert [j["jobId"] for j in listed] == [job["jobId"]], listed

# Search: the paginator reads every page.
paginator = client.get_paginator("search_image_sets")
summaries = [
    s
    for page in paginator.paginate(datastoreId=datastore_id, PaginationConfig={"PageSize": 4})
    for s in page["imageSetsMetadataSummaries"]
]
assert len(summaries) == EXPECTED_SETS, len(summaries)
assert len({s["imageSetId"] for s in summaries}) == EXPECTED_SETS
first = summaries[0]
patient = first["DICOMTags"]["DICOMPatientId"]
found = client.search_image_sets(
    datastoreId=datastore_id,
    searchCriteria={
        "filters": [
            {"values": [{"DICOMPatientId": patient}], "operator": "EQUAL"},
            {"values": [{"isPrimary": True}], "operator": "EQUAL"},
        ],
        "sort": {"sortField": "createdAt", "sortOrder": "ASC"},
    },
)
assert found["imageSetsMetadataSummaries"], found
assert all(s["isPrimary"] and s["DICOMTags"]["DICOMPatientId"] == patient for s in found["imageSetsMetadataSummaries"])
assert found["sort"] == {"sortField": "createdAt", "sortOrder": "ASC"}
assert error_code(
    client.search_image_sets,
    datastoreId=datastore_id,
    searchCriteria={"filters": [{"values": [{"DICOMPatientId": "a"}, {"DICOMPatientId": "b"}], "operator": "BETWEEN"}]},
) == "ValidationException"

# One image set: properties, versions (ImageSetWorkflowStatus, capital I), metadata, a frame.
image_set_id = first["imageSetId"]
got = client.get_image_set(datastoreId=datastore_id, imageSetId=image_set_id)
assert got["versionId"] == "1" and got["imageSetState"] == "ACTIVE", got
versions = client.list_image_set_versions(datastoreId=datastore_id, imageSetId=image_set_id)
assert versions["imageSetPropertiesList"][0]["ImageSetWorkflowStatus"] == "IMPORTED", versions
response = client.get_image_set_metadata(datastoreId=datastore_id, imageSetId=image_set_id)
assert response["contentEncoding"] == "gzip" and response["contentType"] == "application/json", response
document = json.loads(gzip.decompress(response["imageSetMetadataBlob"].read()))
assert document["ImageSetID"] == image_set_id and document["DatastoreID"] == datastore_id
frames = [
    frame
    for series in document["Study"]["Series"].values()
    for instance in series["Instances"].values()
    for frame in instance.get("ImageFrames", [])
]
if frames:
    frame = client.get_image_frame(
        datastoreId=datastore_id, imageSetId=image_set_id, imageFrameInformation={"imageFrameId": frames[0]["ID"]}
    )
    assert frame["contentType"] == "image/jph", frame["contentType"]
    body = frame["imageFrameBlob"].read()
    assert len(body) == frames[0]["FrameSizeInBytes"]
    assert body[:4] == b"\xff\x4f\xff\x51", "a J2K codestream"
assert error_code(client.get_image_set, datastoreId=datastore_id, imageSetId="0" * 32) == "ResourceNotFoundException"
assert error_code(client.get_image_set, datastoreId=datastore_id, imageSetId=image_set_id, versionId="9") == "ResourceNotFoundException"
assert error_code(
    client.get_image_frame, datastoreId=datastore_id, imageSetId=image_set_id, imageFrameInformation={"imageFrameId": "0" * 32}
) == "ResourceNotFoundException"

# Writes: update (boto3 base64-encodes the blob), revert, copy, delete.
def settled(image_set_id):
    for _ in range(500):
        got = client.get_image_set(datastoreId=datastore_id, imageSetId=image_set_id)
        if got["imageSetState"] != "LOCKED":
            return got
        time.sleep(0.02)
    raise AssertionError(f"{image_set_id} stayed LOCKED")


def description(text):
    change = {"SchemaVersion": 1.1, "Study": {"DICOM": {"StudyDescription": text}}}
    return {"DICOMUpdates": {"updatableAttributes": json.dumps(change).encode()}}


updated = client.update_image_set_metadata(
    datastoreId=datastore_id, imageSetId=image_set_id, latestVersionId="1", updateImageSetMetadataUpdates=description("BOTO3 EDIT")
)
assert updated["latestVersionId"] == "2" and updated["imageSetState"] in ("LOCKED", "ACTIVE"), updated
assert settled(image_set_id)["imageSetWorkflowStatus"] == "UPDATED"
response = client.get_image_set_metadata(datastoreId=datastore_id, imageSetId=image_set_id, versionId="2")
assert json.loads(gzip.decompress(response["imageSetMetadataBlob"].read()))["Study"]["DICOM"]["StudyDescription"] == "BOTO3 EDIT"
assert error_code(
    client.update_image_set_metadata,
    datastoreId=datastore_id, imageSetId=image_set_id, latestVersionId="1", updateImageSetMetadataUpdates=description("STALE"),
) == "ConflictException"
reverted = client.update_image_set_metadata(
    datastoreId=datastore_id, imageSetId=image_set_id, latestVersionId="2", updateImageSetMetadataUpdates={"revertToVersionId": "1"}
)
assert reverted["latestVersionId"] == "3", reverted
settled(image_set_id)
assert error_code(
    client.update_image_set_metadata,
    datastoreId=datastore_id, imageSetId=image_set_id, latestVersionId="3",
    updateImageSetMetadataUpdates={"revertToVersionId": "9"},
) == "ValidationException"
copied = client.copy_image_set(
    datastoreId=datastore_id, sourceImageSetId=image_set_id, copyImageSetInformation={"sourceImageSet": {"latestVersionId": "3"}}
)
assert copied["sourceImageSetProperties"]["latestVersionId"] == "3", copied
copy_id = copied["destinationImageSetProperties"]["imageSetId"]
assert settled(copy_id)["imageSetWorkflowStatus"] == "COPIED"
assert error_code(
    client.copy_image_set, datastoreId=datastore_id, sourceImageSetId=image_set_id, force=True,
    copyImageSetInformation={"sourceImageSet": {"latestVersionId": "3"}, "destinationImageSet": {"imageSetId": image_set_id, "latestVersionId": "3"}},
) == "ValidationException"
assert error_code(
    client.copy_image_set, datastoreId=datastore_id, sourceImageSetId=image_set_id,
    copyImageSetInformation={"sourceImageSet": {"latestVersionId": "1"}},
) == "ConflictException"
assert error_code(
    client.copy_image_set, datastoreId=datastore_id, sourceImageSetId="0" * 32,
    copyImageSetInformation={"sourceImageSet": {"latestVersionId": "1"}},
) == "ResourceNotFoundException"
assert error_code(
    client.update_image_set_metadata,
    datastoreId=datastore_id, imageSetId="0" * 32, latestVersionId="1", updateImageSetMetadataUpdates=description("X"),
) == "ResourceNotFoundException"
deleted = client.delete_image_set(datastoreId=datastore_id, imageSetId=copy_id)
assert deleted["imageSetWorkflowStatus"] in ("DELETING", "DELETED"), deleted
assert settled(copy_id)["imageSetState"] == "DELETED"
assert error_code(client.delete_image_set, datastoreId=datastore_id, imageSetId="0" * 32) == "ResourceNotFoundException"
print("data plane: all checks passed")
