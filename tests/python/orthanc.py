"""Orthanc (with its DICOMweb plugin) against the emulator's DICOMweb API:
Orthanc searches it as a remote DICOMweb server, retrieves instances from
it, and stores them by STOW-RS into another datastore, where they are read
back. An independent DICOMweb client and server.

Run by server/tests/python_clients.rs against `healthimaging-mcp emulator`
whose S3 folder holds the ci fixture set under s3://fixtures/ci/. Starts
Orthanc itself on loopback with a temporary configuration. Exits non-zero
on the first failure.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3
from imaging import active_datastore, import_and_wait

ORTHANC = "/usr/sbin/Orthanc"
PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"

endpoint = os.environ["AWS_ENDPOINT_URL_MEDICAL_IMAGING"]
sdk = boto3.client("medical-imaging")


source = active_datastore(sdk, "orthanc-source")
target = active_datastore(sdk, "orthanc-target")
import_and_wait(sdk, source, "s3://fixtures/ci/dicom/", "s3://fixtures/orthanc-out/")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


work = tempfile.mkdtemp(prefix="orthanc-")
port = free_port()
config = {
    "Name": "emulator-test",
    "StorageDirectory": os.path.join(work, "storage"),
    "IndexDirectory": os.path.join(work, "index"),
    "HttpPort": port,
    "RemoteAccessAllowed": False,
    "AuthenticationEnabled": False,
    "DicomServerEnabled": False,
    "Plugins": [PLUGIN],
    "DicomWeb": {
        "Enable": True,
        "Root": "/dicom-web/",
        "Servers": {
            "source": {"Url": f"{endpoint}/datastore/{source}/"},
            "target": {"Url": f"{endpoint}/datastore/{target}/"},
        },
    },
}
with open(os.path.join(work, "orthanc.json"), "w") as f:
    json.dump(config, f)
log = open(os.path.join(work, "orthanc.log"), "w")
orthanc = subprocess.Popen([ORTHANC, os.path.join(work, "orthanc.json")], stdout=log, stderr=log)
base = f"http://127.0.0.1:{port}"


def first(record, tag):
    """A tag's value in a QIDO record: standard DICOM JSON from the remote
    server, or the form Orthanc's qido proxy gives it ({"Value": "…"})."""
    value = record[tag]["Value"]
    return value[0] if isinstance(value, list) else value


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    with urllib.request.urlopen(request, timeout=60) as response:
        text = response.read()
        return json.loads(text) if text else None


try:
    for _ in range(300):
        try:
            call("GET", "/system")
            break
        except OSError:
            time.sleep(0.1)
    else:
        raise AssertionError("Orthanc did not start: " + open(os.path.join(work, "orthanc.log")).read())

    # QIDO-RS through Orthanc.
    studies = call("POST", "/dicom-web/servers/source/qido", {"Uri": "/studies"})
    study_uids = {first(s, "0020000D") for s in studies}
    assert study_uids, studies
    study = sorted(study_uids)[0]
    series = call("POST", "/dicom-web/servers/source/qido", {"Uri": f"/studies/{study}/series"})
    series_uid = first(series[0], "0020000E")
    instances = call(
        "POST", "/dicom-web/servers/source/qido", {"Uri": f"/studies/{study}/series/{series_uid}/instances"}
    )
    sops = [first(i, "00080018") for i in instances]
    assert sops, instances

    # WADO-RS: Orthanc retrieves the instances and stores them.
    call(
        "POST",
        "/dicom-web/servers/source/retrieve",
        {"Resources": [{"Study": study, "Series": series_uid, "Instance": sop} for sop in sops]},
    )
    stored = call("GET", "/instances")
    assert len(stored) == len(sops), (stored, sops)
    tags = call("GET", f"/instances/{stored[0]}/simplified-tags")
    assert tags["StudyInstanceUID"] == study, tags

    # STOW-RS: Orthanc sends them to the other datastore.
    call("POST", "/dicom-web/servers/target/stow", {"Resources": stored})
    found = call(
        "POST", "/dicom-web/servers/target/qido", {"Uri": f"/studies/{study}/series/{series_uid}/instances"}
    )
    assert sorted(first(i, "00080018") for i in found) == sorted(sops), found
    summaries = sdk.search_image_sets(datastoreId=target)["imageSetsMetadataSummaries"]
    assert summaries and all(s["DICOMTags"]["DICOMStudyInstanceUID"] == study for s in summaries), summaries
    print(f"orthanc: all checks passed ({len(study_uids)} studies, {len(sops)} instances round trip)")
finally:
    orthanc.terminate()
    orthanc.wait(timeout=30)
