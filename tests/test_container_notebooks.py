"""Notebooks and the kqi CLI in container images (KQI_EXECUTOR=docker), against a real Podman, offline.

The image is a user's ``python:3.11`` stand-in: busybox and this test's own
Python with only pip (``podman.build_python_image``) — no JupyterLab, no hub
server, no kqi. The platform installs them at start from its own wheels (the
PEP 503 index it serves at ``/services/kqi/wheels/simple/``); nothing here
can reach the internet. A notebook of an image without python3 ends with the
guide's caveat in its log.
"""

from __future__ import annotations

import pytest
import requests
from conftest import lab_get, make_lab, run_notebook, submit, wait_answering, wait_for, wait_notebook, wait_until
from podman import IMAGE, PYTHON_IMAGE, PodmanService, require_podman

pytestmark = pytest.mark.platform

PYTHON = {"image": PYTHON_IMAGE.split(":")[0], "tag": PYTHON_IMAGE.split(":")[1]}
BUSYBOX = {"image": IMAGE.split(":")[0], "tag": IMAGE.split(":")[1]}
ENDED = ("Completed", "Failed", "Killed", "Error", "UserCanceled", "OOMKilled")


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    require_podman()
    service = PodmanService(str(tmp_path_factory.mktemp("podman"))).start()
    service.build_image()
    service.build_python_image()
    yield service
    service.stop()


@pytest.fixture
def container_lab(podman, start_platform, tmp_path):
    platform = start_platform(extra_env={"KQI_EXECUTOR": "docker", "DOCKER_HOST": podman.url})
    return platform, make_lab(platform, tmp_path / "lab")


def test_the_wheel_index_serves_the_platforms_wheels_without_a_token(container_lab):
    platform, _ = container_lab
    base = f"{platform.url}/services/kqi/wheels"
    projects = requests.get(f"{base}/simple/", timeout=30)
    assert projects.status_code == 200 and 'href="jupyterlab/"' in projects.text and 'href="kqi-hub/"' in projects.text
    page = requests.get(f"{base}/simple/kqi-hub/", timeout=30)
    assert page.status_code == 200 and "kqi_hub-" in page.text and "#sha256=" in page.text
    assert requests.get(f"{base}/simple/KQI_Hub/", timeout=30, allow_redirects=False).status_code == 301
    wheel = page.text.split('href="../../files/')[1].split("#")[0]
    r = requests.get(f"{base}/files/{wheel}", timeout=30)
    assert r.status_code == 200 and r.content[:2] == b"PK"
    for bad in ("..%2F..%2Fsecrets", "%2Fetc%2Fpasswd", "nothing.whl", ".built"):
        r = requests.get(f"{base}/files/{bad}", timeout=30)
        assert r.status_code == 404 and r.json()["status"] == 404, (bad, r.text)
    assert requests.get(f"{base}/simple/no-such-project/", timeout=30).status_code == 404


def test_a_notebook_in_an_image_without_jupyterlab_gets_it_offline(container_lab, podman):
    """The image has python3 and pip only: JupyterLab, the hub's server and the kqi panels' extension are installed
    from the platform's wheels; JupyterLab opens in /kqi/output with its links, kept across a rerun; the kqi CLI
    works in a training."""
    platform, lab = container_lab
    api = lab["api"]
    nb = run_notebook(lab, containerImage=PYTHON)
    nb = wait_notebook(api, nb["id"], ("Running",) + ENDED, timeout=420)
    log = api.get(f"/notebook/{nb['id']}/log").text if nb["status"] != "Running" else ""
    assert nb["status"] == "Running", (nb, log)
    wait_answering(platform, api, nb)
    listing = lab_get(platform, api, nb, "api/contents/").json()
    assert {"input", "git", "parent"} <= {c["name"] for c in listing["content"]}, listing
    staged = lab_get(platform, api, nb, "api/contents/input/training").json()
    assert [c["name"] for c in staged["content"]] == [str(lab["data"]["id"])]
    # the panels' server extension (installed with the kqi package) reaches the service from the container
    data = lab_get(platform, api, nb, "kqi/api/data")
    assert data.status_code == 200 and lab["data"]["name"] in {d["name"] for d in data.json()}, data.text
    names = [c.name for c in _client(podman).containers.list()]
    assert f"notebook-{nb['name']}-{nb['id']}" in names, names
    base = platform.url + nb["url"].removesuffix("lab")
    r = requests.put(base + "api/contents/keep.txt", headers={"Authorization": f"token {api.token}"}, timeout=30,
                     json={"type": "file", "format": "text", "content": "kept"})
    assert r.status_code == 201, r.text
    assert api.post(f"/notebook/{nb['id']}/halt").status_code == 200
    assert wait_notebook(api, nb["id"], ENDED)["status"] == "Killed"
    wait_until(lambda: f"notebook-{nb['name']}-{nb['id']}" not in [c.name for c in _client(podman).containers.list()],
               30, "the notebook's container to stop")

    # rerun: a new container of the image, /kqi/output kept
    assert api.post(f"/notebook/{nb['id']}/rerun", {"cpu": 1}).status_code == 201
    nb = wait_notebook(api, nb["id"], ("Running",) + ENDED, timeout=420)
    assert nb["status"] == "Running", nb
    wait_answering(platform, api, nb)
    assert lab_get(platform, api, nb, "api/contents/keep.txt").json()["content"] == "kept"
    assert api.post(f"/notebook/{nb['id']}/halt").status_code == 200
    wait_notebook(api, nb["id"], ENDED)

    # a training in the same image gets the kqi CLI, which talks to the service with the run's own token
    run = submit(lab, "kqi data list", containerImage=PYTHON)
    done = wait_for(api, run["id"], timeout=300)
    log = api.get(f"/training/{run['id']}/log").text
    assert done["status"] == "Completed", (done, log)
    assert log.startswith("[kqi] installing the kqi CLI from the platform's wheels\n") and lab["data"]["name"] in log, log


def test_a_notebook_image_without_python_says_so(container_lab):
    platform, lab = container_lab
    api = lab["api"]
    nb = wait_notebook(api, run_notebook(lab, containerImage=BUSYBOX)["id"], ENDED, timeout=120)
    assert nb["status"] in ("Failed", "Error"), nb
    assert "a notebook image needs python3 and pip" in nb["conditionNote"], nb
    # a job in an image without python runs as it is (nothing to install, nothing said)
    run = wait_for(api, submit(lab, "echo plain", containerImage=BUSYBOX)["id"])
    assert run["status"] == "Completed" and api.get(f"/training/{run['id']}/log").text == "plain\n"


def _client(podman):
    import docker

    return docker.DockerClient(base_url=podman.url)
