"""QIDO-RS and WADO-RS driven by dicomweb-client, answers read by pydicom:
independent clients of the emulator's DICOMweb API.

Run by server/tests/python_clients.rs against `healthimaging-mcp emulator`
whose S3 folder holds the ci fixture set under s3://fixtures/ci/ (its
manifest beside it). Argument: the manifest's path.
Exits non-zero on the first failure.
"""

import json
import os
import sys
import zlib

import boto3
import pydicom
from dicomweb_client.api import DICOMwebClient
from imaging import active_datastore, import_and_wait

manifest = json.load(open(sys.argv[1]))
endpoint = os.environ["AWS_ENDPOINT_URL_MEDICAL_IMAGING"]
sdk = boto3.client("medical-imaging")

datastore_id = active_datastore(sdk, "dicomweb")
import_and_wait(sdk, datastore_id, "s3://fixtures/ci/dicom/", "s3://fixtures/dicomweb-out/")

client = DICOMwebClient(url=f"{endpoint}/datastore/{datastore_id}")

primaries = [s for s in manifest["expected_import"]["image_sets"] if s["primary"]]
expected_studies = {s["study_instance_uid"] for s in primaries}

# QIDO-RS: every study, each as pydicom reads it.
studies = client.search_for_studies()
found = {pydicom.Dataset.from_json(s).StudyInstanceUID for s in studies}
assert found == expected_studies, (found, expected_studies)
patient = manifest["patients"][0]
mine = client.search_for_studies(search_filters={"PatientID": patient["patient_id"]})
want = {s["study_instance_uid"] for s in primaries if s["patient_id"] == patient["patient_id"]}
assert {pydicom.Dataset.from_json(s).StudyInstanceUID for s in mine} == want
page = client.search_for_studies(limit=1, offset=1)
assert len(page) == 1 and page[0] == studies[1], page

instances_by_uid = {
    i["sop_instance_uid"]: i
    for p in manifest["patients"]
    for st in p["studies"]
    for se in st["series"]
    for i in se["instances"]
}

checked = 0
for image_set in primaries:
    study, series = image_set["study_instance_uid"], image_set["series_instance_uid"]
    listed = client.search_for_series(study)
    assert series in {pydicom.Dataset.from_json(s).SeriesInstanceUID for s in listed}
    instances = client.search_for_instances(study, series)
    sops = {pydicom.Dataset.from_json(i).SOPInstanceUID for i in instances}
    assert set(image_set["sop_instance_uids"]) <= sops, (sops, image_set)
    metadata = client.retrieve_series_metadata(study, series)
    assert {pydicom.Dataset.from_json(m).SOPInstanceUID for m in metadata} == sops
    for sop in image_set["sop_instance_uids"][:2]:
        entry = instances_by_uid[sop]
        meta = pydicom.Dataset.from_json(client.retrieve_instance_metadata(study, series, sop))
        assert meta.SOPClassUID == entry["sop_class_uid"], meta
        assert meta.StudyInstanceUID == study
        # The instance in Explicit VR Little Endian: pixels equal to the
        # imported file's, frame by frame.
        native = client.retrieve_instance(
            study, series, sop, media_types=(("application/dicom", "1.2.840.10008.1.2.1"),)
        )
        assert native.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
        assert native.SOPInstanceUID == sop
        if entry.get("pixels"):
            data = native.PixelData
            n = len(entry["frame_crc32"])
            size = len(data) // n
            crcs = [zlib.crc32(data[k * size:(k + 1) * size]) for k in range(n)]
            assert crcs == entry["frame_crc32"], (entry["path"], crcs, entry["frame_crc32"])
            assert native.pixel_array.size > 0
            # As stored (the client's default asks for transfer-syntax=*).
            stored = client.retrieve_instance(study, series, sop)
            assert stored.SOPInstanceUID == sop
            frames = client.retrieve_instance_frames(study, series, sop, frame_numbers=[1])
            assert len(frames) == 1 and len(frames[0]) > 0
            raw = client.retrieve_instance_frames(
                study, series, sop, frame_numbers=[1],
                media_types=(("application/octet-stream", "1.2.840.10008.1.2.1"),),
            )
            assert zlib.crc32(raw[0]) == entry["frame_crc32"][0]
        checked += 1

assert checked >= 5, checked

# STOW-RS: the files of one series stored into a second datastore by
# dicomweb-client, then found and read back.
second = active_datastore(sdk, "dicomweb-stow")
root = os.path.dirname(sys.argv[1])
target = primaries[0]
paths = [os.path.join(root, instances_by_uid[sop]["path"]) for sop in target["sop_instance_uids"]]
stow = DICOMwebClient(url=f"{endpoint}/datastore/{second}")
answer = stow.store_instances(datasets=[pydicom.dcmread(p) for p in paths])
stored = {item.ReferencedSOPInstanceUID for item in answer.ReferencedSOPSequence}
assert stored == set(target["sop_instance_uids"]), (stored, target)
assert "FailedSOPSequence" not in answer, answer
again = stow.search_for_instances(target["study_instance_uid"], target["series_instance_uid"])
assert {pydicom.Dataset.from_json(i).SOPInstanceUID for i in again} == stored
back = stow.retrieve_instance(
    target["study_instance_uid"], target["series_instance_uid"], target["sop_instance_uids"][0],
    media_types=(("application/dicom", "1.2.840.10008.1.2.1"),),
)
assert back.SOPInstanceUID == target["sop_instance_uids"][0]
print(f"dicomweb: all checks passed ({len(studies)} studies, {checked} instances)")
