"""SigV4 verification: requests signed by botocore (the SDK operations
through boto3, DICOMweb through botocore's SigV4Auth) pass; unsigned and
wrongly signed ones get the service's errors.

Run by server/tests/python_clients.rs against `healthimaging-mcp emulator
--verify-sigv4` started with the same AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY as this process. Exits non-zero on the first failure.
"""

import os
import urllib.error
import urllib.request

import boto3
import botocore.auth
import botocore.exceptions
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

endpoint = os.environ["AWS_ENDPOINT_URL_MEDICAL_IMAGING"]
sdk = boto3.client("medical-imaging")
datastore_id = sdk.create_datastore(datastoreName="signed")["datastoreId"]
arn = sdk.get_datastore(datastoreId=datastore_id)["datastoreProperties"]["datastoreArn"]
# A path with an ARN label (encoded twice in the canonical request) and a query.
sdk.tag_resource(resourceArn=arn, tags={"team": "a b", "x": "1"})
sdk.untag_resource(resourceArn=arn, tagKeys=["x"])
assert sdk.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "a b"}
assert sdk.list_datastores(maxResults=5)["datastoreSummaries"]


def code_of(call, **kwargs):
    try:
        call(**kwargs)
    except botocore.exceptions.ClientError as error:
        return error.response["Error"]["Code"]
    raise AssertionError("the call should have been refused")


wrong = boto3.client(
    "medical-imaging",
    aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
    aws_secret_access_key="not-the-secret",
)
assert code_of(wrong.list_datastores) == "InvalidSignatureException"
stranger = boto3.client(
    "medical-imaging", aws_access_key_id="AKIDSTRANGER", aws_secret_access_key="x"
)
assert code_of(stranger.list_datastores) == "UnrecognizedClientException"


def fetch(url, signed):
    request = AWSRequest(method="GET", url=url, headers={"Accept": "application/dicom+json"})
    if signed:
        credentials = Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
        botocore.auth.SigV4Auth(credentials, "medical-imaging", os.environ["AWS_DEFAULT_REGION"]).add_auth(request)
    prepared = urllib.request.Request(url, headers=dict(request.headers))
    try:
        with urllib.request.urlopen(prepared) as response:
            return response.status, response.headers.get("x-amzn-ErrorType")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("x-amzn-ErrorType")


studies = f"{endpoint}/datastore/{datastore_id}/studies?PatientID=SYN0001000&limit=5"
assert fetch(studies, signed=True) == (200, None), fetch(studies, signed=True)
assert fetch(studies, signed=False) == (403, "MissingAuthenticationTokenException")
print("sigv4: all checks passed")
