"""The emulator's control plane, driven by boto3: an independent client.

Run by server/tests/python_clients.rs against `healthimaging-mcp emulator`,
with AWS_ENDPOINT_URL_MEDICAL_IMAGING pointing at it and
AWS_DISABLE_HOST_PREFIX_INJECTION=true. Exits non-zero on the first failure.
"""

import datetime
import time

import boto3
import botocore.exceptions

client = boto3.client("medical-imaging")


def error_code(call, **kwargs):
    try:
        call(**kwargs)
    except botocore.exceptions.ClientError as error:
        return error.response["Error"]["Code"], error.response["Error"]["Message"]
    raise AssertionError(f"{call.__name__} succeeded but should have failed")


def wait_for(datastore_id, status):
    for _ in range(100):
        props = client.get_datastore(datastoreId=datastore_id)["datastoreProperties"]
        if props["datastoreStatus"] == status:
            return props
        time.sleep(0.02)
    raise AssertionError(f"{datastore_id} never became {status}")


created = client.create_datastore(
    datastoreName="boto3-store",
    tags={"origin": "boto3"},
    losslessStorageFormat="JPEG_2000_LOSSLESS",
)
assert created["datastoreStatus"] == "CREATING", created
assert created["ResponseMetadata"]["RequestId"], created
datastore_id = created["datastoreId"]
assert len(datastore_id) == 32

code, _ = error_code(client.delete_datastore, datastoreId=datastore_id)
assert code == "ConflictException", code

props = wait_for(datastore_id, "ACTIVE")
assert props["datastoreName"] == "boto3-store"
assert props["losslessStorageFormat"] == "JPEG_2000_LOSSLESS"
assert isinstance(props["createdAt"], datetime.datetime), props
assert props["updatedAt"] >= props["createdAt"]
arn = props["datastoreArn"]
assert arn == f"arn:aws:medical-imaging:us-east-1:123456789012:datastore/{datastore_id}", arn

retry = client.create_datastore(datastoreName="other", clientToken="fixed-token")
again = client.create_datastore(datastoreName="other", clientToken="fixed-token")
assert retry["datastoreId"] == again["datastoreId"]
code, _ = error_code(client.create_datastore, datastoreName="changed", clientToken="fixed-token")
assert code == "ConflictException", code

for i in range(5):
    client.create_datastore(datastoreName=f"paged-{i}")
pages = client.get_paginator("list_datastores").paginate(PaginationConfig={"PageSize": 2})
ids = [s["datastoreId"] for page in pages for s in page["datastoreSummaries"]]
assert len(ids) == 7 and len(set(ids)) == 7, ids

active = client.list_datastores(datastoreStatus="ACTIVE")["datastoreSummaries"]
assert datastore_id in [s["datastoreId"] for s in active]

code, message = error_code(client.list_datastores, maxResults=51)
assert code == "ValidationException" and "maxResults" in message, (code, message)
code, message = error_code(client.create_datastore, datastoreName="bad name")
assert code == "ValidationException" and "datastoreName" in message, (code, message)
code, _ = error_code(client.get_datastore, datastoreId="0123456789abcdef0123456789abcdef")
assert code == "ResourceNotFoundException", code
code, message = error_code(client.get_datastore, datastoreId="UPPERCASE")
assert code == "ValidationException" and "datastoreId" in message, (code, message)

client.tag_resource(resourceArn=arn, tags={"team": "imaging", "cost-center": "7"})
tags = client.list_tags_for_resource(resourceArn=arn)["tags"]
assert tags == {"origin": "boto3", "team": "imaging", "cost-center": "7"}, tags
client.untag_resource(resourceArn=arn, tagKeys=["origin", "team"])
tags = client.list_tags_for_resource(resourceArn=arn)["tags"]
assert tags == {"cost-center": "7"}, tags
code, message = error_code(client.tag_resource, resourceArn=arn, tags={"aws:owner": "x"})
assert code == "ValidationException", (code, message)
code, _ = error_code(
    client.list_tags_for_resource,
    resourceArn=f"{arn}/imageset/0123456789abcdef0123456789abcdef",
)
assert code == "ResourceNotFoundException", code

deleted = client.delete_datastore(datastoreId=datastore_id)
assert deleted["datastoreStatus"] == "DELETING", deleted
wait_for(datastore_id, "DELETED")
code, _ = error_code(client.list_tags_for_resource, resourceArn=arn)
assert code == "ResourceNotFoundException", code

print("control plane: all checks passed")
