"""What the DICOMweb scripts share: an ACTIVE datastore, and an import job
run to its end."""

import time


def active_datastore(sdk, name):
    """Creates a datastore and waits until it is ACTIVE; answers its ID."""
    datastore_id = sdk.create_datastore(datastoreName=name)["datastoreId"]
    for _ in range(200):
        if sdk.get_datastore(datastoreId=datastore_id)["datastoreProperties"]["datastoreStatus"] == "ACTIVE":
            return datastore_id
        time.sleep(0.02)
    raise AssertionError(f"datastore {datastore_id} did not become ACTIVE")


def import_and_wait(sdk, datastore_id, input_uri, output_uri):
    """Runs an import job to its end; fails unless it COMPLETED."""
    job = sdk.start_dicom_import_job(
        datastoreId=datastore_id,
        dataAccessRoleArn="arn:aws:iam::123456789012:role/ImportRole",
        inputS3Uri=input_uri,
        outputS3Uri=output_uri,
    )
    for _ in range(1200):
        status = sdk.get_dicom_import_job(datastoreId=datastore_id, jobId=job["jobId"])["jobProperties"]["jobStatus"]
        if status in ("COMPLETED", "FAILED"):
            break
        time.sleep(0.05)
    assert status == "COMPLETED", status
