"""A tenant whose storage endpoint is S3 (a real SeaweedFS): the same v2 protocol with presigned URLs,
and staging by parallel streaming downloads."""

import hashlib
import os

import pytest
import requests
from conftest import unique, upload

from kqi_services.jobs.staging import StagedFile, stage

pytestmark = pytest.mark.platform


def test_upload_download_and_stage_through_s3(platform, admin, new_tenant, new_user, s3_server, tmp_path):
    bucket = unique("kqi").lower()
    r = admin.post("/admin/storage/endpoints", {
        "name": "seaweed", "serverUrl": s3_server.endpoint_url, "accessKey": s3_server.access_key,
        "secretKey": s3_server.secret_key, "nfsServer": "", "nfsRoot": bucket})
    assert r.status_code == 201 and s3_server.secret_key not in r.text
    storage = r.json()
    assert storage["kind"] == "s3"
    tenant = new_tenant(storageId=storage["id"])
    user = new_user([{"id": tenant["id"]}])
    api = platform.api().login(user["name"], user["password"])

    payload = os.urandom(6 * 1024 * 1024 + 5)  # two parts: S3 wants >= 5 MiB but for the last
    ticket = upload(api, "weights.bin", payload, part_size=5 * 1024 * 1024)
    assert all(s3_server.endpoint_url.split("//")[1] in u for u in ticket["uris"])  # straight to S3
    small = upload(api, "note.txt", b"hello s3")
    data = api.post("/data", {"name": "on-s3"}).json()
    r = api.post(f"/data/{data['id']}/files", {"files": [
        {"fileName": "weights.bin", "storedPath": ticket["storedPath"]},
        {"fileName": "note.txt", "storedPath": small["storedPath"]}]})
    assert r.status_code == 201

    files = api.get(f"/data/{data['id']}/files", params={"withUrl": "true"}).json()
    got = requests.get(files[0]["url"], timeout=60)
    assert got.status_code == 200 and hashlib.sha256(got.content).digest() == hashlib.sha256(payload).digest()
    assert requests.get(files[0]["url"], headers={"Range": "bytes=0-3"}, timeout=60).content == payload[:4]
    assert files[0]["fileSize"] == len(payload)

    # the object is really in the bucket, under the tenant's prefix
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_server.endpoint_url, aws_access_key_id=s3_server.access_key,
                      aws_secret_access_key=s3_server.secret_key, region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert ticket["storedPath"] in keys and all(k.startswith(tenant["name"] + "/") for k in keys)

    # staging from S3 streams the files in parallel into the layout
    store = s3_server.store(bucket)
    layout = [StagedFile(f"training/{data['id']}/{f['fileName']}", f["key"], f["fileName"], f["fileSize"])
              for f in files]
    assert stage(layout, store, str(tmp_path / "input")) == 2
    assert (tmp_path / "input" / "training" / str(data["id"]) / "note.txt").read_bytes() == b"hello s3"
    assert (tmp_path / "input" / "training" / str(data["id"]) / "weights.bin").stat().st_size == len(payload)
    assert "X-Amz-Signature=" not in platform.log().replace("X-Amz-Signature=[secret]", "")
