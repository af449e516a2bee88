"""Hostile runs against the service's reading of their output (issue 10, holes 1 and 3, parts of 4 and 5).

Each platform test is an attack a tenant's run can make from /kqi/output:
swap a directory with a symlink to a host directory while the service serves
a signed download URL of it; leave a FIFO with zip on (one run, and six at
once while another tenant works); name a file with bytes that are not UTF-8;
link a host file and / from /kqi/output and ask for them (listed as skipped
symlinks, never followed by the listing nor by a validly signed download URL).
Plus the log's offset at its limits and the result pool's per-tenant cap.
"""

import asyncio
import base64
import io
import os
import threading
import time
import zipfile

import pytest
import requests
from conftest import submit, unique, upload, wait_for

from kqi_services.jobs.results import ResultPool
from kqi_services.storage import signing

SWAPPER = """\
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
os.makedirs("/kqi/output/d")
with open("/kqi/output/d/secret.txt", "w") as f:
    f.write({harmless!r})  # as long as the secret: a size check cannot tell them apart
os.symlink({host!r}, "/kqi/output/swap")
print("swapping", flush=True)
end = time.time() + 60
while time.time() < end:
    libc.renameat2(-100, b"/kqi/output/d", -100, b"/kqi/output/swap", 2)  # RENAME_EXCHANGE
"""


def python_command(script: str) -> str:
    return f"python3 -c \"import base64; exec(base64.b64decode('{base64.b64encode(script.encode()).decode()}'))\""


def files_of(api, run_id) -> dict:
    return {f["fileName"]: f for f in api.get(f"/training/{run_id}/files", params={"withUrl": "true"}).json()}


@pytest.mark.platform
def test_swapping_a_directory_with_a_symlink_never_serves_host_files(lab, tmp_path):
    """Hole 1: the signed container-files URL and the listing, raced by renameat2(RENAME_EXCHANGE)."""
    api = lab["api"]
    secret = unique("host-secret").encode()
    host = tmp_path / "host"
    host.mkdir()
    (host / "secret.txt").write_bytes(secret)
    (host / "host-only.txt").write_bytes(secret)
    harmless = b"harmless".ljust(len(secret), b"-")
    run = submit(lab, python_command(SWAPPER.format(host=str(host), harmless=harmless.decode())))
    try:
        wait_for(api, run["id"], statuses=("Running",))

        def signed_url():
            listing = api.get(f"/training/{run['id']}/container-files", params={"path": "/d", "withUrl": "true"})
            return listing.status_code == 200 and next(
                (f["url"] for f in listing.json()["files"] if f["fileName"] == "secret.txt"), None)

        deadline = time.monotonic() + 30
        url = None
        while url is None and time.monotonic() < deadline:
            url = signed_url() or None
        assert url, "the run never showed /d/secret.txt"
        bodies, statuses, names = set(), set(), set()
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            try:
                r = requests.get(url, timeout=5)
                statuses.add(r.status_code)
                bodies.add(r.content)
            except requests.RequestException as e:  # a response cut short
                statuses.add(type(e).__name__)
            listing = api.get(f"/training/{run['id']}/container-files", params={"path": "/d"})
            statuses.add(listing.status_code)
            if listing.status_code == 200:
                names.update(f["fileName"] for f in listing.json()["files"])
        assert secret not in bodies and not any(secret in b for b in bodies)
        assert "host-only.txt" not in names
        assert statuses <= {200, 404}, statuses
        assert harmless in bodies and 404 in statuses  # the swaps did race the reads
    finally:
        api.post(f"/training/{run['id']}/halt")
    assert wait_for(api, run["id"], timeout=30)["status"] == "Killed"


@pytest.mark.platform
def test_a_fifo_in_the_output_with_zip_on_completes_and_is_marked(lab):
    """Hole 3: a FIFO used to block the zip for ever (the run stayed Running)."""
    api = lab["api"]
    run = submit(lab, "mkfifo /kqi/output/pipe && echo kept > /kqi/output/ok.txt", zip=True)
    done = wait_for(api, run["id"], timeout=60)
    assert done["status"] == "Completed", done
    assert "leaves out 1 entries" in done["conditionNote"]
    listing = api.get(f"/training/{run['id']}/container-files").json()
    assert [f["fileName"] for f in listing["files"]] == ["ok.txt"]
    (pipe,) = listing["skipped"]
    assert (pipe["fileName"], pipe["key"], pipe["type"]) == ("pipe", "/pipe", "fifo")
    assert "not a regular file" in pipe["reason"]
    files = files_of(api, run["id"])
    archive = zipfile.ZipFile(io.BytesIO(requests.get(files["output.zip"]["url"], timeout=30).content))
    assert archive.namelist() == ["ok.txt"] and archive.read("ok.txt") == b"kept\n"
    assert "/pipe: a fifo, not a regular file" in archive.comment.decode()
    assert set(files) == {f"training_stdout_stderr_{run['id']}.log", "output.zip"}  # the log is kept too


@pytest.mark.platform
def test_six_fifo_runs_do_not_stall_another_tenants_work(lab, platform, new_tenant, new_user, git_endpoint):
    """Hole 3: six such runs used to hold every worker thread; the other tenant's upload and training go on."""
    api = lab["api"]
    hostile = [submit(lab, f"mkfifo /kqi/output/p{i} /kqi/output/q{i} && echo {i} > /kqi/output/r.txt", zip=True)
               for i in range(6)]
    tenant = new_tenant(gitIds=[1, git_endpoint["id"]], defaultGitId=git_endpoint["id"])
    user = new_user([{"id": tenant["id"]}])
    other = platform.api().login(user["name"], user["password"])
    data = other.post("/data", {"name": "other"}).json()
    ticket = upload(other, "y.csv", b"y\n" * 1000)
    r = other.post(f"/data/{data['id']}/files", {"files": [{"fileName": "y.csv", "storedPath": ticket["storedPath"]}]})
    assert r.status_code in (200, 201), r.text
    dataset = other.post("/datasets", {"name": "ds", "entries": {"training": [{"id": data["id"]}]}}).json()
    theirs = submit({**lab, "api": other, "dataset": dataset}, "cat /kqi/input/training/*/y.csv > /kqi/output/t.txt",
                    zip=True)
    assert wait_for(other, theirs["id"], timeout=120)["status"] == "Completed"
    assert "output.zip" in files_of(other, theirs["id"])
    for run in hostile:
        done = wait_for(api, run["id"], timeout=120)
        assert done["status"] == "Completed", done
        skipped = api.get(f"/training/{run['id']}/container-files").json()["skipped"]
        assert sorted(s["type"] for s in skipped) == ["fifo", "fifo"]


@pytest.mark.platform
def test_a_name_that_is_not_utf8_is_listed_served_and_zipped_byte_exact(lab):
    """Hole 4: b"\\xff\\xfe.bin" used to make container-files answer 500 and the run lose its log and zip."""
    api = lab["api"]
    payload = bytes(range(256)) * 4
    script = ("import os\n"
              f"open(b'/kqi/output/\\xff\\xfe.bin', 'wb').write({payload!r})\n"
              "os.mkdir(b'/kqi/output/dir\\xe9')\n"
              "open(b'/kqi/output/dir\\xe9/in.txt', 'wb').write(b'inside')\n"
              "open('/kqi/output/100%25.txt', 'w').write('percent')\n"
              "print('written', flush=True)\n")
    run = submit(lab, python_command(script), zip=True)
    done = wait_for(api, run["id"])
    assert done["status"] == "Completed" and done["conditionNote"] is None, done
    r = api.get(f"/training/{run['id']}/container-files", params={"withUrl": "true"})
    assert r.status_code == 200, r.text
    listing = r.json()
    files = {f["fileName"]: f for f in listing["files"]}
    assert set(files) == {"%FF%FE.bin", "100%25.txt"}
    assert files["%FF%FE.bin"]["key"] == "/%FF%FE.bin" and files["%FF%FE.bin"]["encodedPath"] == "%FF%FE.bin"
    assert files["100%25.txt"]["encodedPath"] == "100%2525.txt"
    assert requests.get(files["%FF%FE.bin"]["url"], timeout=30).content == payload
    assert requests.get(files["100%25.txt"]["url"], timeout=30).content == b"percent"
    (directory,) = listing["dirs"]
    assert (directory["dirName"], directory["dirPath"], directory["encodedPath"]) == ("dir%E9", "/dir%E9", "dir%E9")
    # the directory is found by the name as listed (what clients send back) and by its raw bytes
    shown = api.get(f"/training/{run['id']}/container-files", params={"path": directory["dirPath"], "withUrl": "true"})
    raw = api.get(f"/training/{run['id']}/container-files?path=/{directory['encodedPath']}")
    assert shown.status_code == raw.status_code == 200
    assert [f["key"] for f in shown.json()["files"]] == [f["key"] for f in raw.json()["files"]] == ["/dir%E9/in.txt"]
    assert requests.get(shown.json()["files"][0]["url"], timeout=30).content == b"inside"
    attached = files_of(api, run["id"])
    assert "written" in requests.get(attached[f"training_stdout_stderr_{run['id']}.log"]["url"], timeout=30).text
    archive = zipfile.ZipFile(io.BytesIO(requests.get(attached["output.zip"]["url"], timeout=30).content))
    assert sorted(archive.namelist()) == ["%FF%FE.bin", "100%25.txt", "dir%E9/in.txt"]
    assert archive.read("%FF%FE.bin") == payload


@pytest.mark.platform
def test_log_offsets_at_and_past_the_limits(lab):
    """Hole 5: offset=99999999999999999999 used to answer 500."""
    api = lab["api"]
    run = submit(lab, "echo hello-log", containerImage=None)  # no image: the log is the command's output alone
    wait_for(api, run["id"])
    r = api.get(f"/training/{run['id']}/log", params={"offset": "99999999999999999999"})
    assert r.status_code == 400 and r.json() == {"status": 400, "message": r.json()["message"]}
    assert "offset" in r.json()["message"]
    assert api.get(f"/training/{run['id']}/log", params={"offset": "x"}).status_code == 400
    end = api.get(f"/training/{run['id']}/log", params={"offset": str(2**63 - 1)})
    assert end.status_code == 200 and end.content == b"" and end.headers["X-Log-Offset"] == str(2**63 - 1)
    start = api.get(f"/training/{run['id']}/log", params={"offset": "-5"})
    assert start.text == "hello-log\n" and start.headers["X-Log-Offset"] == "10"


async def test_result_pool_keeps_slots_for_other_tenants():
    """One tenant's slow result collections take at most ``per_tenant`` threads; another tenant's still run."""
    pool = ResultPool(workers=3, per_tenant=2)
    release = threading.Event()
    busy = [asyncio.ensure_future(pool.run("hostile", release.wait, 30)) for _ in range(6)]
    try:
        assert await asyncio.wait_for(pool.run("other", lambda: "done"), 5) == "done"
    finally:
        release.set()
        await asyncio.gather(*busy)
        pool.shutdown()


def signed_output_url(platform, base: str, run_id: int, path: str) -> str:
    """A download URL of ``path`` in training ``run_id``'s output, validly signed with the platform's own key.

    What an attacker who could sign would hold: the service then checks only what the path leads to.
    """
    with open(os.path.join(platform.state_dir, "secrets", "storage-url-key")) as f:
        secret = f.read().strip().encode()
    query = signing.sign(secret, "GET", f"training-{run_id}/{path}", 3600)
    return f"{base}/storage/runs/training-{run_id}/{path}?expires={query['expires']}&signature={query['signature']}"


@pytest.mark.platform
def test_symlinks_out_of_the_output_are_listed_as_skipped_and_never_followed(platform, lab, tmp_path):
    """A run links /kqi/output/leak to a host file and /kqi/output/rootlink to /: listed, never served."""
    api = lab["api"]
    secret = unique("host-secret").encode()
    host_file = tmp_path / "secret.txt"
    host_file.write_bytes(secret)
    with open("/etc/hostname", "rb") as f:
        hostname = f.read()
    run = submit(lab, f"ln -s /etc/hostname /kqi/output/leak; ln -s / /kqi/output/rootlink; "
                      f"ln -s {host_file} /kqi/output/secret-link; echo ok > /kqi/output/real.txt")
    done = wait_for(api, run["id"])
    assert done["status"] == "Completed", done

    for params in ({}, {"withUrl": "true"}):
        r = api.get(f"/training/{run['id']}/container-files", params=params)
        assert r.status_code == 200, r.text
        listing = r.json()
        assert [f["fileName"] for f in listing["files"]] == ["real.txt"] and listing["dirs"] == []
        skipped = {s["fileName"]: s for s in listing["skipped"]}
        assert set(skipped) == {"leak", "rootlink", "secret-link"}, listing  # listed, not dropped
        for name, entry in skipped.items():
            assert (entry["key"], entry["type"]) == (f"/{name}", "symlink"), entry
            assert entry["reason"] == "a symlink: not followed" and "url" not in entry, entry
    real_url = listing["files"][0]["url"]
    assert requests.get(real_url, timeout=30).content == b"ok\n"

    # the link to / is no directory of the output: nothing of the host is listed through it
    for path in ("/rootlink", "/rootlink/etc", "/rootlink/"):
        r = api.get(f"/training/{run['id']}/container-files", params={"path": path, "withUrl": "true"})
        assert r.status_code == 404, (path, r.text)
        assert r.json()["status"] == 404 and "hostname" not in r.text and "passwd" not in r.text

    base = real_url.split("/storage/runs/")[0]
    # the forged signatures are valid: the same signing of real.txt is served
    assert requests.get(signed_output_url(platform, base, run["id"], "real.txt"), timeout=30).content == b"ok\n"
    for path in ("leak", "secret-link", "rootlink/etc/hostname", f"rootlink{host_file}"):
        r = requests.get(signed_output_url(platform, base, run["id"], path), timeout=30)
        assert r.status_code == 404, (path, r.status_code, r.text)
        assert secret not in r.content and (not hostname.strip() or hostname.strip() not in r.content), path
    # and the URL of real.txt with its path changed is refused by its signature
    r = requests.get(real_url.replace("/real.txt?", "/leak?"), timeout=30)
    assert r.status_code in (403, 404) and secret not in r.content and r.content != hostname
