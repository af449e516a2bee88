"""Hostile input at the API's edge (issue 10, hole 5): a 4xx with a JSON message, and nothing half-written.

Each test sends the attack through the hub's proxy, as a client would, and
checks the status, the JSON body ``{"status": N, "message": …}`` and that no
row was created or changed. Also here: the service's cookies are
``SameSite=Lax``, and a client-sent ``X-Forwarded-Host`` is not believed for
the same-origin check nor for the URLs handed to a browser.
"""

import os
from types import SimpleNamespace

import pytest
import requests
from conftest import hub_login, unique
from tornado import httputil, web

from handlers.base import APIHandler

pytestmark = pytest.mark.platform

INT64_MAX = 2**63 - 1
EVIL = "evil.example"


@pytest.fixture
def member(platform, new_tenant, new_user):
    """A fresh tenant (so its lists start empty) and a logged-in member of it."""
    tenant = new_tenant()
    user = new_user([{"id": tenant["id"]}])
    api = platform.api().login(user["name"], user["password"])
    api.tenant, api.user = tenant, user
    return api


def refused(r, status=400) -> str:
    """The message of a JSON error answer with ``status``."""
    assert r.status_code == status, r.text[:500]
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["status"] == status and isinstance(body["message"], str) and body["message"]
    return body["message"]


def names(api, path) -> list[str]:
    return [row["name"] for row in api.get(path).json()]


# --- bodies --------------------------------------------------------------------------------------------------


def test_deeply_nested_json_is_400_and_creates_nothing(member):
    body = '{"name": "deep", "memo": ' + "[" * 2500 + "]" * 2500 + "}"
    r = member.post("/data", data=body, headers={"Content-Type": "application/json"})
    assert "nested too deeply" in refused(r)
    assert member.get("/data").json() == []


def test_body_over_the_limit_is_413_json_and_creates_nothing(member):
    body = b'{"name": "big", "memo": "' + b"x" * (70 * 1024 * 1024) + b'"}'
    r = member.post("/data", data=body, headers={"Content-Type": "application/json"})
    assert "larger than" in refused(r, 413)
    # without a Content-Length (chunked): cut off as it arrives, same answer
    chunks = (body[i:i + 1024 * 1024] for i in range(0, len(body), 1024 * 1024))
    r = member.post("/data", data=chunks, headers={"Content-Type": "application/json"})
    assert "larger than" in refused(r, 413)
    assert member.get("/data").json() == []
    assert member.post("/data", {"name": "small"}).status_code == 201


def test_upload_parts_over_16_mib_still_stream_through_the_proxy(member):
    payload = os.urandom(20 * 1024 * 1024)
    ticket = member.get("/upload/parameter", params={"fileName": "big.bin", "partSum": 1, "type": "Data"}).json()
    r = requests.put(ticket["uris"][0], data=payload, headers={"Content-Type": "application/x-www-form-urlencoded"},
                     timeout=120)
    assert r.status_code == 200, r.text
    r = member.post("/upload/complete", {"key": ticket["key"], "uploadId": ticket["uploadId"],
                                         "partETags": [f"1+{r.headers['ETag']}"]})
    assert r.status_code == 200 and r.json()["size"] == len(payload)


# --- integers beyond int64 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("number", [2**63, -(2**63) - 1, 10**30])
def test_ids_beyond_int64_in_bodies_are_400(admin, member, number):
    r = member.post("/datasets", {"name": unique("ds"), "entries": {"training": [{"id": number}]}})
    assert "out of range" in refused(r)
    r = member.post("/datasets", {"name": unique("ds"), "isFlat": True, "flatEntries": [{"id": number}]})
    assert "out of range" in refused(r)
    assert member.get("/datasets").json() == []

    name = unique("u")
    r = admin.post("/admin/users", {"name": name, "password": "user-pass-123", "tenants": [{"id": number}]})
    assert "out of range" in refused(r)
    r = admin.post("/admin/tenants", {"tenantName": unique("t"), "displayName": "x", "gitIds": [number],
                                      "registryIds": [1], "storageId": 1})
    assert "out of range" in refused(r)
    assert name not in names(admin, "/admin/users")


@pytest.mark.parametrize("path", ["/datasets/9223372036854775808", "/data/9223372036854775808",
                                  "/data/99999999999999999999999/files"])
def test_ids_beyond_int64_in_paths_are_400(member, path):
    assert "out of range" in refused(member.get(path))


# --- list filters and paging ---------------------------------------------------------------------------------


BAD_LIST_ARGUMENTS = [
    ({"withTotal": "7.28e+307"}, "withTotal"),
    ({"Id": "1\n2"}, "Id filter"),
    ({"Id": "99999999999999999999"}, "out of range"),
    ({"Id": ">"}, "Id filter"),
    ({"Id": "<=1e5"}, "Id filter"),
    ({"CreatedAt": "2026-01-01\n>"}, "CreatedAt filter"),
    ({"CreatedAt": ">=yesterday"}, "CreatedAt filter"),
    ({"page": "99999999999999999999", "perPage": "10"}, "page"),
    ({"page": "2147483648", "perPage": "10"}, "page"),
    ({"perPage": "7.28e+307"}, "perPage"),
]


@pytest.mark.parametrize("path", ["/data", "/datasets", "/training"])
@pytest.mark.parametrize("params, message", BAD_LIST_ARGUMENTS, ids=[str(p) for p, _ in BAD_LIST_ARGUMENTS])
def test_lists_answer_400_to_arguments_they_cannot_read(member, path, params, message):
    if path == "/training" and "CreatedAt" in params:
        params = {"StartedAt": params["CreatedAt"]}  # the run lists' date filter (its CreatedAt is ignored)
    assert message in refused(member.get(path, params=params))


@pytest.mark.parametrize("params", [{"CreatedAt": "9999-12-31"}, {"CreatedAt": ">9999-12-31"},
                                    {"CreatedAt": "<=9999/12/31"}, {"withTotal": "true"}, {"Id": ">= 1"}])
def test_lists_take_edge_values_that_are_not_bad(member, params):
    new = member.post("/data", {"name": unique("data")}).json()
    r = member.get("/data", params=params)
    assert r.status_code == 200, r.text
    expected = [] if params.get("CreatedAt") in ("9999-12-31", ">9999-12-31") else [new["id"]]
    assert [d["id"] for d in r.json()] == expected


# --- control characters --------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    {"name": "a\x00b"}, {"name": "a\x1b[31mb"}, {"name": "a\nb"}, {"name": "a\u0085b"}, {"name": "a\ud800b"},
    {"name": "ok", "memo": "a\x00b"}, {"name": "ok", "memo": "a\x07b"},
    {"name": "ok", "tags": ["a\x00b"]}, {"name": "ok", "tags": ["a\tb"]},
])
def test_nul_and_control_characters_in_data_are_refused(member, body):
    assert "control characters" in refused(member.post("/data", body))
    assert member.get("/data").json() == []


def test_memos_keep_their_line_breaks_while_edits_with_control_characters_are_refused(member):
    data = member.post("/data", {"name": "plain", "memo": "line 1\n\tline 2\r\n", "tags": ["t"]})
    assert data.status_code == 201 and data.json()["memo"] == "line 1\n\tline 2"
    data_id = data.json()["id"]
    assert "control characters" in refused(member.put(f"/data/{data_id}", {"name": "x\x00"}))
    assert "control characters" in refused(member.put(f"/data/{data_id}/tags/a%00b"))
    assert "control characters" in refused(member.post("/datasets", {"name": "d\x01", "isFlat": True,
                                                                      "flatEntries": [{"id": data_id}]}))
    after = member.get(f"/data/{data_id}").json()
    assert after["name"] == "plain" and after["tags"] == ["t"]
    assert member.get("/datasets").json() == []


@pytest.mark.parametrize("path, body", [
    ("/admin/git/endpoints", {"serviceType": 0, "repositoryUrl": "https://git.example/x\x00", "apiUrl": "http://x"}),
    ("/admin/git/endpoints", {"serviceType": 0, "repositoryUrl": "https://git.example", "apiUrl": "http://x\x01"}),
    ("/admin/storage/endpoints", {"serverUrl": "http://127.0.0.1:9000\x7f", "accessKey": "k", "secretKey": "s"}),
    ("/admin/registry/endpoints", {"host": "r.example", "portNo": 443, "serviceType": 1,
                                   "registryUrl": "https://r.example\x00", "apiUrl": "https://r.example"}),
])
def test_control_characters_in_endpoint_urls_are_refused(admin, path, body):
    name = unique("e")
    assert "control characters" in refused(admin.post(path, {"name": name, **body}))
    assert name not in names(admin, path)


# --- git URLs that git would read as options -----------------------------------------------------------------


OPTION_URLS = ["ssh://-oProxyCommand=touch%20/tmp/pwned/", "git@-oProxyCommand=touch:x", "ssh://host/-x",
               "ssh://git@host:2222/-u/x", "git@host:-x", "https://user:secret@git.example"]


@pytest.mark.parametrize("url", OPTION_URLS)
def test_git_endpoint_urls_git_could_misread_are_refused_when_registered(admin, url):
    name = unique("git")
    r = admin.post("/admin/git/endpoints", {"name": name, "serviceType": 0, "repositoryUrl": url,
                                            "apiUrl": "https://api.git.example"})
    message = refused(r)
    assert "repositoryUrl" in message and "secret" not in message
    assert name not in names(admin, "/admin/git/endpoints")

    good = admin.post("/admin/git/endpoints", {"name": name, "serviceType": 0, "repositoryUrl": "ssh://git@host",
                                               "apiUrl": "https://api.git.example"}).json()
    r = admin.put(f"/admin/git/endpoints/{good['id']}", {"name": name, "serviceType": 0, "repositoryUrl": url,
                                                          "apiUrl": "https://api.git.example"})
    refused(r)
    assert admin.get(f"/admin/git/endpoints/{good['id']}").json()["repositoryUrl"] == "ssh://git@host"
    assert admin.delete(f"/admin/git/endpoints/{good['id']}").status_code == 204


# --- user names ----------------------------------------------------------------------------------------------


def test_user_names_with_a_slash_are_400_on_the_admin_user_api(admin):
    r = admin.post("/admin/users", {"name": "a/b", "password": "user-pass-123", "tenants": [{"id": 1}]})
    assert "name" in refused(r)
    assert "a/b" not in names(admin, "/admin/users")


def test_login_names_with_a_slash_are_400(platform):
    assert "userName" in refused(platform.api().post("/account/login", {"userName": "a/b", "password": "x"}))


# --- cookies and X-Forwarded-Host ----------------------------------------------------------------------------


@pytest.fixture
def browser(platform, member):
    """A requests session signed in through the hub's login page and the service's OAuth, as a browser is."""
    s = hub_login(platform, member.user["name"], member.user["password"])
    landing = s.get(platform.url + "/services/kqi/", timeout=30)
    assert landing.status_code == 200, landing.text
    s.landing = landing
    return s


def test_every_cookie_of_the_service_is_samesite_lax(platform, browser):
    responses = browser.landing.history + [browser.landing]
    set_by_service = [c for r in responses if r.url.startswith(platform.url + "/services/kqi/")
                      for c in r.raw.headers.getlist("Set-Cookie")]
    cookies = [c for c in set_by_service if c.split(";")[0].split("=", 1)[1] not in ("", '""')]  # not cleared ones
    assert len(cookies) >= 2  # the OAuth state cookie, then the token cookie (and _xsrf)
    assert all("samesite=lax" in c.lower() for c in cookies), cookies


def test_a_forwarded_host_does_not_make_a_foreign_origin_same_origin(platform, member, browser):
    api = platform.api_base
    r = browser.post(api + "/data", json={"name": "csrf"}, headers={"Origin": f"http://{EVIL}",
                                                                    "X-Forwarded-Host": EVIL}, timeout=10)
    assert "Cross-origin" in refused(r, 403)
    assert member.get("/data").json() == []
    r = browser.post(api + "/data", json={"name": "same-origin"}, headers={"Origin": platform.url}, timeout=10)
    assert r.status_code == 201, r.text


def test_urls_for_a_browser_ignore_a_forwarded_host_while_token_callers_may_name_theirs(platform, member, browser):
    params = {"fileName": "a.bin", "partSum": 1, "type": "Data"}
    r = browser.get(platform.api_base + "/upload/parameter", params=params, headers={"X-Forwarded-Host": EVIL},
                    timeout=10)
    assert r.status_code == 200 and r.json()["uris"][0].startswith(platform.url + "/services/kqi/storage/parts/")
    # the lab server asks for URLs on the browser's host this way (kqi_services/labserver)
    r = member.get("/upload/parameter", params=params, headers={"X-Forwarded-Host": "lab.example:8888"})
    assert r.json()["uris"][0].startswith("http://lab.example:8888/services/kqi/storage/parts/")
    assert member.get("/upload/parameter", params=params).json()["uris"][0].startswith(platform.url)


def handler_for(headers: dict, trust: bool) -> APIHandler:
    """An APIHandler of a bare application, for a request with ``headers`` (no platform needed)."""
    kqi = SimpleNamespace(trust_forwarded_host=trust, public_url="", service_prefix="/services/kqi/")
    app = web.Application(kqi=kqi)
    connection = SimpleNamespace(set_close_callback=lambda callback: None)
    request = httputil.HTTPServerRequest("GET", "/services/kqi/api/v2/data", headers=httputil.HTTPHeaders(headers),
                                         host="hub.example", connection=connection)
    return APIHandler(app, request)


@pytest.mark.parametrize("trust, vouched, expected", [
    (False, True, "hub.example"), (False, False, "browser.example"),
    (True, True, "browser.example"), (True, False, "browser.example"),
])
def test_client_host_believes_x_forwarded_host_only_where_it_may(trust, vouched, expected):
    handler = handler_for({"Host": "hub.example", "X-Forwarded-Host": "browser.example"}, trust)
    assert handler.client_host(proxy_vouches_only=vouched) == expected
    assert handler_for({"Host": "hub.example"}, trust).client_host(proxy_vouches_only=vouched) == "hub.example"


def test_digits_that_are_not_ascii_are_not_ids(platform, member):
    """``"³".isdigit()`` is true but ``int("³")`` fails: found by the contract fuzz as a 500."""
    r = member.put("/account", params={"DefaultTenant": "³"})
    assert r.status_code == 404 and r.json()["message"] == "Tenant ³ not found"
    r = member.put("/account", params={"DefaultTenant": "9" * 30})
    assert r.status_code == 404 and r.headers["Content-Type"].startswith("application/json")
