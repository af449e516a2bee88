"""The kqi client library against the real platform: errors, uploads with a failing part, downloads, logs."""

import hashlib
import json
import os
import threading

import pytest
import requests
from conftest import unique
from requests.adapters import HTTPAdapter

from kqi_services.client import KqiApiError, KqiClient, KqiConfigError, update_config

pytestmark = pytest.mark.platform

MiB = 1024 * 1024


def sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MiB), b""):
            digest.update(block)
    return digest.hexdigest()


def random_file(path, size: int) -> str:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 4 * MiB)
            f.write(os.urandom(n))
            left -= n
    return str(path)


@pytest.fixture
def member_client(platform, new_tenant, new_user) -> KqiClient:
    tenant = new_tenant()
    user = new_user([{"id": tenant["id"]}])
    token = platform.api().login(user["name"], user["password"]).token
    return KqiClient(platform.url + "/services/kqi", token)


class FlakyParts(HTTPAdapter):
    """A transport that answers the first PUT of part ``fail_part`` with a 503, after sending it."""

    def __init__(self, fail_part: int):
        super().__init__(pool_maxsize=8)
        self.fail_part = fail_part
        self.puts: list[int] = []
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def send(self, request, **kwargs):
        response = super().send(request, **kwargs)
        if request.method == "PUT" and "/storage/parts/" in request.url:
            part = int(request.url.split("?")[0].rsplit("/", 1)[1])
            with self.lock:
                self.threads.add(threading.current_thread().name)
                first = part not in self.puts
                self.puts.append(part)
            assert "Authorization" not in request.headers
            if part == self.fail_part and first:
                response.status_code = 503
                response.reason = "Service Unavailable"
                del response.headers["ETag"]
        return response


def test_from_environment_order(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    for key in ("KQI_SERVER", "KQI_TOKEN", "JUPYTERHUB_API_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(KqiConfigError, match="kqi account login"):
        KqiClient.from_environment()
    update_config(server="http://config/services/kqi/", token="config-token")
    with open(tmp_path / ".kqi" / "config.json") as f:
        assert json.load(f) == {"server": "http://config/services/kqi/", "token": "config-token"}
    c = KqiClient.from_environment()
    assert (c.server, c.token) == ("http://config/services/kqi", "config-token")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "hub-token")
    assert KqiClient.from_environment().token == "config-token"  # the hub token pairs only with KQI_SERVER
    monkeypatch.setenv("KQI_SERVER", "http://env/services/kqi")
    c = KqiClient.from_environment()
    assert (c.server, c.token) == ("http://env/services/kqi", "hub-token")
    monkeypatch.setenv("KQI_TOKEN", "env-token")
    assert KqiClient.from_environment().token == "env-token"
    assert c.url("/training/3") == "http://env/services/kqi/api/v2/training/3"


def test_errors_carry_the_services_status_and_message(platform, member_client):
    with pytest.raises(KqiApiError) as e:
        member_client.data.get(987654321)
    assert e.value.status == 404 and "987654321" in e.value.message
    with pytest.raises(KqiApiError) as e:
        member_client.request("POST", "/data", json={"memo": "no name"})
    assert e.value.status == 400 and e.value.message
    with pytest.raises(KqiApiError) as e:
        KqiClient(member_client.server, "not-a-token").account.get()
    assert e.value.status in (401, 403)
    with pytest.raises(KqiApiError) as e:
        KqiClient("http://127.0.0.1:9", "x", timeout=2).account.get()
    assert e.value.status == 0 and "Cannot reach" in e.value.message
    assert member_client.request("GET", "/account")["userName"]


def test_login_returns_a_token_and_saves_nothing(platform, new_tenant, new_user, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    tenant = new_tenant()
    user = new_user([{"id": tenant["id"]}])
    anonymous = KqiClient(platform.url + "/services/kqi", None)
    result = anonymous.account.login(user["name"], user["password"], tenant=tenant["id"])
    assert result["tenantId"] == tenant["id"] and result["token"]
    assert not (tmp_path / ".kqi").exists()
    client = KqiClient(anonymous.server, result["token"])
    assert client.account.get()["selectedTenant"]["id"] == tenant["id"]
    with pytest.raises(KqiApiError) as e:
        anonymous.account.login(user["name"], "wrong")
    assert e.value.status == 401


def test_parallel_upload_retries_a_failed_part_and_downloads_the_same_bytes(member_client, tmp_path):
    client = member_client
    source = random_file(tmp_path / "big.bin", 2 * 16 * MiB + 12345)  # three 16 MiB parts
    flaky = FlakyParts(fail_part=2)
    client.storage_session.mount("http://", flaky)
    calls = []
    data = client.data.create(unique("data"), memo="upload test", tags=["t1"])
    added = client.data.upload_files(data["id"], [source],
                                     progress_for=lambda name: lambda done, total: calls.append((name, done, total)))
    assert [f["fileName"] for f in added["files"]] == ["big.bin"]
    assert sorted(flaky.puts) == [1, 2, 2, 3]  # part 2 sent again
    assert len(flaky.threads) >= 2  # parts went in parallel
    assert calls[-1] == ("big.bin", os.path.getsize(source), os.path.getsize(source))

    out = tmp_path / "out"
    downloaded = client.data.download_files(data["id"], str(out))
    assert downloaded == [str(out / "big.bin")]
    assert sha256(downloaded[0]) == sha256(source)
    assert os.listdir(out) == ["big.bin"]  # no partial files left
    assert client.data.files(data["id"])[0]["fileSize"] == os.path.getsize(source)


def test_a_part_that_keeps_failing_fails_the_upload(member_client, tmp_path):
    class Broken(HTTPAdapter):
        def send(self, request, **kwargs):
            if request.method == "PUT":
                raise requests.ConnectionError("injected")
            return super().send(request, **kwargs)

    member_client.storage_session.mount("http://", Broken())
    source = random_file(tmp_path / "small.bin", 1000)
    with pytest.raises(KqiApiError, match="part 1"):
        member_client.upload(source, "Data", retries=2, backoff=0.01)


def test_empty_file_and_dataset_download(member_client, tmp_path):
    client = member_client
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    data = client.data.create(unique("data"))
    client.data.upload_files(data["id"], [str(empty), random_file(tmp_path / "a.bin", 5000)])
    ds = client.datasets.create({"name": "ds", "entries": {"training": [{"id": data["id"]}]}})
    paths = client.datasets.download_files(ds["id"], str(tmp_path / "ds"))
    assert sorted(os.path.relpath(p, tmp_path / "ds") for p in paths) == [
        f"training/{data['id']}/a.bin", f"training/{data['id']}/empty.txt"]
    assert os.path.getsize(tmp_path / "ds" / "training" / str(data["id"]) / "empty.txt") == 0
    assert [d["id"] for d in client.datasets.list(name="ds")] == [ds["id"]]
    assert client.data.list(tags=["nope"]) == []


def test_training_follow_log_ends_with_the_final_status(platform, lab, tmp_path):  # noqa: F811
    client = KqiClient(platform.url + "/services/kqi", lab["api"].token)
    run = client.trainings.create({
        "name": unique("run")[:30], "containerImage": {"image": "python", "tag": "3.11"},
        "dataSetId": lab["dataset"]["id"], "gitModel": {"gitId": lab["git"]["id"], "owner": "kqi",
                                                        "repository": "model"},
        "entryPoint": "for i in 1 2 3; do echo line $i; sleep 0.4; done; echo ok > /kqi/output/r.txt; echo ünï",
        "cpu": 1, "memory": 1, "gpu": 0})
    text = "".join(client.trainings.follow_log(run["id"]))
    assert "line 1\nline 2\nline 3\n" in text and "ünï" in text
    final = client.trainings.get(run["id"])
    assert final["status"] == "Completed"
    assert "line 3" in "".join(client.trainings.follow_log(run["id"], offset=0))  # an ended run: returns at once
    paths = client.trainings.download_container_files(run["id"], str(tmp_path / "out"))
    assert [open(p).read() for p in paths] == ["ok\n"]
    log_files = [f for f in client.trainings.files(run["id"]) if f["fileName"].endswith(".log")]
    assert log_files and client.trainings.wait(run["id"])["status"] == "Completed"


def test_notebook_records_when_the_service_has_them(member_client):
    listed = member_client.notebooks.list()
    assert listed == []  # a fresh tenant
    with pytest.raises(KqiApiError) as e:
        member_client.notebooks.get(987654321)
    assert e.value.status == 404
