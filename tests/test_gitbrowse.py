"""The git browsing API (``GET /api/v2/git/{gitId}/repos…``) and its core, ``kqi_services.jobs.gitbrowse``.

The file:// backend is tested for real: bare repositories built here (two
branches, 31 commits on master so the list has a second page, a subgroup
owner, an empty repository), read through the platform's API by a member of a
tenant that has the endpoint, and refused (404) to a member of one that has
not. No real GitHub, GitLab or Gitea can run here: their backends are tested
against ``StandIn``, a small local HTTP server answering the documented JSON
shapes of those APIs (GitHub REST v3, GitLab API v4, Gitea API v1) for the
token ``TOKEN`` only; one platform test sends a user's token through it.

Fixtures of this module:

- ``repos``: the bare repositories under one directory (module scope): ``root``,
  ``url`` and the commit ids by label.
- ``browse_lab``: that directory registered by ``admin`` as a file:// git endpoint,
  a tenant with it and a logged-in member (module scope): ``{api, git_id, tenant}``.
- ``stand_in``: the stand-in git service (module scope).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import unique

from kqi_services.errors import InvalidInput, NotFound
from kqi_services.jobs.gitbrowse import (
    PER_PAGE,
    GiteaBrowser,
    GitHubBrowser,
    GitLabBrowser,
    GitServiceUnreachable,
    LocalBrowser,
)

TOKEN = "ghp-Secret-Token-0123456789"
IDENTITY = {"GIT_AUTHOR_NAME": "Ann Author", "GIT_AUTHOR_EMAIL": "ann@example.org",
            "GIT_COMMITTER_NAME": "Carl Committer", "GIT_COMMITTER_EMAIL": "carl@example.org"}
SHA_MASTER = "1" * 40
SHA_DEV = "2" * 40
SHA_OLD = "3" * 40


def git(*args, cwd=None, env=None) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")} | IDENTITY
    return subprocess.run(["git", *args], cwd=cwd, env=base | (env or {}), check=True,
                          capture_output=True, text=True).stdout.strip()


def when(n: int) -> dict:
    """Author and committer dates of the n-th commit: one minute apart, in +09:00."""
    stamp = f"2024-01-02T03:{n:02d}:00+09:00"
    return {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    base = tmp_path_factory.mktemp("gitbrowse")
    work, root = base / "work", base / "repos"
    git("init", "-q", "-b", "master", str(work))
    commits = {}
    (work / "train.py").write_text("print('v1')\n")
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "first\n\nwith a body", cwd=work, env=when(0))
    commits["first"] = git("rev-parse", "HEAD", cwd=work)
    for n in range(1, 31):
        git("commit", "-q", "--allow-empty", "-m", f"step {n}", cwd=work, env=when(n))
    commits["master"] = git("rev-parse", "HEAD", cwd=work)
    git("checkout", "-q", "-b", "feature/x", cwd=work)
    (work / "train.py").write_text("print('v2')\n")
    git("commit", "-q", "-am", "on the feature", cwd=work, env=when(40))
    commits["feature"] = git("rev-parse", "HEAD", cwd=work)
    git("checkout", "-q", "master", cwd=work)
    (root / "team").mkdir(parents=True)
    (root / "group" / "sub").mkdir(parents=True)
    git("clone", "-q", "--bare", str(work), str(root / "team" / "app.git"))
    git("clone", "-q", "--bare", str(work), str(root / "group" / "sub" / "lib.git"))
    git("init", "-q", "--bare", str(root / "team" / "empty.git"))
    (root / "team" / "notes").mkdir()  # a directory that is no repository
    return {"root": root, "url": f"file://{root}", "commits": commits}


# the file:// backend, in the core ------------------------------------------------------------


def test_local_lists_repositories_branches_and_commits(repos):
    browser = LocalBrowser(repos["url"])
    c = repos["commits"]
    assert browser.repositories() == [
        {"owner": "group/sub", "name": "lib", "fullName": "group/sub/lib"},
        {"owner": "team", "name": "app", "fullName": "team/app"},
        {"owner": "team", "name": "empty", "fullName": "team/empty"},
    ]
    assert browser.branches("team", "app") == [{"branchName": "feature/x", "commitId": c["feature"]},
                                               {"branchName": "master", "commitId": c["master"]}]
    newest = browser.commits("team", "app", "feature/x")[0]
    assert newest == {"commitId": c["feature"], "committerName": "Ann Author", "commitAt": "2024-01-01T18:40:00Z",
                      "comment": "on the feature", "display": "Ann Author 2024-01-01T18:40:00Z\non the feature"}
    assert browser.commit("group/sub", "lib.git", c["first"][:7])["comment"] == "first\n\nwith a body"
    assert browser.commits("team", "empty") == [] and browser.branches("team", "empty") == []


def test_local_refusals(repos):
    browser = LocalBrowser(repos["url"])
    with pytest.raises(NotFound, match="team/nothing"):
        browser.branches("team", "nothing")
    with pytest.raises(NotFound, match="team/notes"):
        browser.branches("team", "notes")
    with pytest.raises(NotFound, match="'nope'"):
        browser.commits("team", "app", "nope")
    with pytest.raises(NotFound, match="Commit abcdef"):
        browser.commit("team", "app", "abcdef")
    for owner, repository in (("..", "app"), ("team/..", "app"), ("-team", "app"), ("team", "--all"), ("team", ".")):
        with pytest.raises(InvalidInput):
            browser.branches(owner, repository)
    for branch in ("-x", "--all", "a..b", "HEAD@{1}"):
        with pytest.raises(InvalidInput):
            browser.commits("team", "app", branch)
    with pytest.raises(InvalidInput):
        browser.commit("team", "app", "--not")
    with pytest.raises(InvalidInput):
        browser.commits("team", "app", page="0")
    with pytest.raises(GitServiceUnreachable):
        LocalBrowser(f"file://{repos['root']}/missing").repositories()


# the file:// backend through the platform -----------------------------------------------------


@pytest.fixture(scope="module")
def browse_lab(platform, admin, repos):
    r = admin.post("/admin/git/endpoints", {"name": unique("local"), "serviceType": 0,
                                            "repositoryUrl": repos["url"], "apiUrl": repos["url"]})
    assert r.status_code == 201, r.text
    git_id = r.json()["id"]
    r = admin.post("/admin/tenants", {"tenantName": unique("t"), "displayName": "Git browsing", "gitIds": [1, git_id],
                                      "defaultGitId": git_id, "registryIds": [1], "storageId": 1})
    assert r.status_code == 201, r.text
    tenant = r.json()
    user = {"name": unique("u"), "password": "user-pass-123"}
    r = admin.post("/admin/users", {**user, "systemRoles": [], "tenants": [{"id": tenant["id"]}]})
    assert r.status_code == 201, r.text
    return {"api": platform.api().login(user["name"], user["password"]), "git_id": git_id, "tenant": tenant}


@pytest.mark.platform
def test_pickers_through_the_api(browse_lab, repos):
    api, gid, c = browse_lab["api"], browse_lab["git_id"], repos["commits"]
    r = api.get(f"/git/{gid}/repos")
    assert r.status_code == 200, r.text
    assert [repo["fullName"] for repo in r.json()] == ["group/sub/lib", "team/app", "team/empty"]
    assert r.json()[0] == {"owner": "group/sub", "name": "lib", "fullName": "group/sub/lib"}

    r = api.get(f"/git/{gid}/repos/team/app/branches")
    assert r.status_code == 200, r.text
    assert r.json() == [{"branchName": "feature/x", "commitId": c["feature"]},
                        {"branchName": "master", "commitId": c["master"]}]

    first_page = api.get(f"/git/{gid}/repos/team/app/commits", params={"branch": "master"}).json()
    assert len(first_page) == PER_PAGE == 30
    assert first_page[0] == {"commitId": c["master"], "committerName": "Ann Author",
                             "commitAt": "2024-01-01T18:30:00Z", "comment": "step 30",
                             "display": "Ann Author 2024-01-01T18:30:00Z\nstep 30"}
    assert [x["comment"] for x in first_page[:3]] == ["step 30", "step 29", "step 28"]
    second = api.get(f"/git/{gid}/repos/team/app/commits", params={"branch": "master", "page": "2"}).json()
    assert [x["commitId"] for x in second] == [c["first"]]
    assert api.get(f"/git/{gid}/repos/team/app/commits", params={"branch": "master", "page": "3"}).json() == []
    feature = api.get(f"/git/{gid}/repos/team/app/commits", params={"branch": "feature/x"}).json()
    assert [x["commitId"] for x in feature[:2]] == [c["feature"], c["master"]]

    # a subgroup owner (the contract's {segments}), and a commit by a short id
    r = api.get(f"/git/{gid}/repos/group/sub/lib/commits/{c['first'][:8]}")
    assert r.status_code == 200, r.text
    assert r.json()["commitId"] == c["first"] and r.json()["comment"] == "first\n\nwith a body"
    assert api.get(f"/git/{gid}/repos/team/empty/commits").json() == []


@pytest.mark.platform
@pytest.mark.parametrize("path, status, words", [
    ("/repos/team/nothing/branches", 404, "team/nothing"),
    ("/repos/team/app/commits?branch=nope", 404, "'nope'"),
    ("/repos/team/app/commits/abcdef12", 404, "abcdef12"),
    ("/repos/-team/app/branches", 400, "owner"),
    ("/repos/a..b/app/branches", 400, "owner"),
    ("/repos/team/.git/branches", 400, "repository"),
    ("/repos/team/app/commits?branch=--all", 400, "branch"),
    ("/repos/team/app/commits?page=first", 400, "page"),
    ("/repos/team/app/commits/HEAD", 400, "commit"),
])
def test_bad_names_and_missing_things(browse_lab, path, status, words):
    r = browse_lab["api"].get(f"/git/{browse_lab['git_id']}{path}")
    assert r.status_code == status, r.text
    assert r.json()["status"] == status and words in r.json()["message"]


@pytest.mark.platform
def test_endpoints_of_other_tenants_are_not_found(browse_lab, platform, new_tenant, new_user, lab):
    outsider = new_user([{"id": new_tenant()["id"]}])  # a tenant with endpoint 1 only
    api = platform.api().login(outsider["name"], outsider["password"])
    for path in ("/repos", "/repos/team/app/branches", "/repos/team/app/commits",
                 f"/repos/team/app/commits/{'0' * 40}"):
        r = api.get(f"/git/{browse_lab['git_id']}{path}")
        assert r.status_code == 404, r.text
        assert "not available in this tenant" in r.json()["message"]
    assert api.get("/git/999999999/repos").status_code == 404
    assert api.get("/git/abc/repos").status_code == 400
    # the suite's own file:// endpoint, in the lab's tenant: kqi/model on master
    r = lab["api"].get(f"/git/{lab['git']['id']}/repos/kqi/model/commits", params={"branch": "master"})
    assert r.status_code == 200, r.text
    assert r.json()[0]["commitId"] == lab["git"]["commit"]
    assert {"owner": "kqi", "name": "model", "fullName": "kqi/model"} in lab["api"].get(
        f"/git/{lab['git']['id']}/repos").json()
    assert lab["api"].get(f"/git/{browse_lab['git_id']}/repos").status_code == 404


# GitHub, GitLab and Gitea against a stand-in ------------------------------------------------


def github_commit(sha: str, message: str, date: str = "2024-01-02T03:04:05Z") -> dict:
    person = {"name": "Ann Author", "email": "ann@example.org", "date": date}
    return {"sha": sha, "url": f"https://api.example/commits/{sha}",
            "commit": {"message": message, "author": person, "committer": {**person, "name": "GitHub"}},
            "author": {"login": "ann"}, "parents": []}


def gitlab_commit(sha: str, message: str) -> dict:
    return {"id": sha, "short_id": sha[:8], "title": message.splitlines()[0], "message": message,
            "author_name": "Ann Author", "author_email": "ann@example.org",
            "authored_date": "2024-01-02T12:04:05.000+09:00", "committer_name": "Carl Committer",
            "committed_date": "2024-01-03T00:00:00.000+09:00"}


COMMITS = {"master": [github_commit(SHA_MASTER, "fix: master"), github_commit(SHA_OLD, "initial")],
           "dev": [github_commit(SHA_DEV, "dev work"), github_commit(SHA_OLD, "initial")]}


class StandIn(BaseHTTPRequestHandler):
    """GitHub under ``/gh``, GitLab under ``/gl/api/v4``, Gitea under ``/gt/api/v1``; records every request."""

    seen: list[dict] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self.seen.append({"path": url.path, "query": query, "headers": dict(self.headers)})
        flavour, _, rest = url.path[1:].partition("/")
        token = {"gh": self.headers.get("Authorization", "").removeprefix("token "),
                 "gt": self.headers.get("Authorization", "").removeprefix("token "),
                 "gl": self.headers.get("PRIVATE-TOKEN", "")}.get(flavour, "")
        if token != TOKEN:
            # a service that echoes what it was sent: the browser must not pass that on
            return self.reply(401, {"message": f"Bad credentials {token}"})
        answer = getattr(self, flavour, lambda *a: None)("/" + rest, query)
        if answer is None:
            return self.reply(404, {"message": "Not Found"})
        self.reply(*answer)

    def reply(self, status, body, headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def gh(self, path, query):
        if path == "/user/repos":
            size, page = int(query["per_page"]), int(query["page"])
            names = [f"repo-{n:03d}" for n in range(101)]  # two pages of 100
            return 200, [{"name": n, "full_name": f"kqi/{n}", "owner": {"login": "kqi"}, "private": True}
                         for n in names[(page - 1) * size:page * size]]
        return self.github_like(path, query, detail="/repos/kqi/model/commits/")

    def gt(self, path, query):
        path = path.removeprefix("/api/v1")
        if path == "/user/repos":
            return 200, [{"name": "model", "full_name": "kqi/model", "owner": {"login": "kqi"}}]
        if path == "/repos/kqi/model/branches":  # Gitea names the tip "id"
            return 200, [{"name": b, "commit": {"id": c[0]["sha"], "message": c[0]["commit"]["message"]}}
                         for b, c in COMMITS.items()]
        return self.github_like(path, query, detail="/repos/kqi/model/git/commits/")

    def github_like(self, path, query, detail):
        if path == "/repos/kqi/model/branches":
            return 200, [{"name": b, "commit": {"sha": c[0]["sha"]}, "protected": False} for b, c in COMMITS.items()]
        if path == "/repos/kqi/moved/branches":
            return 301, b"", [("Location", urlsplit(self.path).path.replace("moved", "model"))]
        if path == "/repos/kqi/elsewhere/branches":
            port = self.server.server_address[1]
            return 302, b"", [("Location", f"http://localhost:{port}/gh/repos/kqi/model/branches")]
        if path == "/repos/kqi/broken/branches":
            return 200, b"<html>not json</html>"
        if path == "/repos/kqi/failing/branches":
            return 500, {"message": "Server Error"}
        if path == "/repos/kqi/empty/commits":
            return 409, {"message": "Git Repository is empty."}
        if path == "/repos/kqi/model/commits":
            commits = COMMITS.get(query.get("sha", "master"))
            return (200, commits if query.get("page") == "1" else []) if commits else \
                (404, {"message": f"No commit found for SHA: {query.get('sha')}"})
        if path.startswith(detail):
            sha = path.removeprefix(detail)
            found = [c for cs in COMMITS.values() for c in cs if c["sha"].startswith(sha)]
            return (200, found[0]) if found else (422, {"message": f"No commit found for SHA: {sha}"})
        return None

    def gl(self, path, query):
        path = path.removeprefix("/api/v4")
        project = "/projects/group%2Fsub%2Fmodel/repository"
        if path == "/projects":
            assert query["membership"] == "true"
            return 200, [{"id": 7, "path": "model", "name": "My Model", "path_with_namespace": "group/sub/model",
                          "namespace": {"full_path": "group/sub"}}]
        if path == f"{project}/branches":
            return 200, [{"name": b, "commit": {"id": c[0]["sha"]}} for b, c in COMMITS.items()]
        if path == f"{project}/commits":
            commits = COMMITS.get(query.get("ref_name", "master"), [])
            return 200, [gitlab_commit(c["sha"], c["commit"]["message"]) for c in commits]
        if path.startswith(f"{project}/commits/"):
            sha = path.rpartition("/")[2]
            found = [c for cs in COMMITS.values() for c in cs if c["sha"].startswith(sha)]
            return (200, gitlab_commit(sha, found[0]["commit"]["message"])) if found else \
                (404, {"message": "404 Commit Not Found"})
        return None


@pytest.fixture(scope="module")
def stand_in():
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def seen():
    StandIn.seen.clear()
    return StandIn.seen


def test_github_lists_what_the_token_reads(stand_in, seen):
    browser = GitHubBrowser(f"{stand_in}/gh", TOKEN)
    repositories = browser.repositories()
    assert len(repositories) == 101 and repositories[0] == {"owner": "kqi", "name": "repo-000",
                                                            "fullName": "kqi/repo-000"}
    assert browser.branches("kqi", "model") == [{"branchName": "master", "commitId": SHA_MASTER},
                                                {"branchName": "dev", "commitId": SHA_DEV}]
    assert browser.commits("kqi", "model", "dev") == [
        {"commitId": SHA_DEV, "committerName": "Ann Author", "commitAt": "2024-01-02T03:04:05Z",
         "comment": "dev work", "display": "Ann Author 2024-01-02T03:04:05Z\ndev work"},
        {"commitId": SHA_OLD, "committerName": "Ann Author", "commitAt": "2024-01-02T03:04:05Z",
         "comment": "initial", "display": "Ann Author 2024-01-02T03:04:05Z\ninitial"}]
    assert browser.commits("kqi", "model", page="2") == []
    assert browser.commit("kqi", "model", SHA_DEV[:7])["commitId"] == SHA_DEV
    assert browser.commits("kqi", "empty") == []
    assert browser.branches("kqi", "moved")[0]["branchName"] == "master"  # a renamed repository, same host
    assert all(s["headers"]["Authorization"] == f"token {TOKEN}" for s in seen)
    commits = [s["query"] for s in seen if s["path"] == "/gh/repos/kqi/model/commits"]
    assert commits[0] == {"sha": "dev", "per_page": "30", "page": "1"}
    assert [s["query"]["page"] for s in seen if s["path"] == "/gh/user/repos"] == ["1", "2"]


def test_gitlab_asks_projects_by_path(stand_in, seen):
    browser = GitLabBrowser(f"{stand_in}/gl", TOKEN)
    assert browser.repositories() == [{"owner": "group/sub", "name": "model", "fullName": "group/sub/model"}]
    assert browser.branches("group/sub", "model")[1] == {"branchName": "dev", "commitId": SHA_DEV}
    assert browser.commits("group/sub", "model", "dev", "1")[0] == {
        "commitId": SHA_DEV, "committerName": "Ann Author", "commitAt": "2024-01-02T03:04:05Z",
        "comment": "dev work", "display": "Ann Author 2024-01-02T03:04:05Z\ndev work"}
    assert browser.commit("group/sub", "model", SHA_OLD)["comment"] == "initial"
    with pytest.raises(NotFound, match="Commit abcd"):
        browser.commit("group/sub", "model", "abcd")
    assert all(s["headers"]["PRIVATE-TOKEN"] == TOKEN and "Authorization" not in s["headers"] for s in seen)
    assert {"ref_name": "dev", "per_page": "30", "page": "1"} in [s["query"] for s in seen]
    assert GitLabBrowser(f"{stand_in}/gl/api/v4/", TOKEN).repositories()[0]["name"] == "model"


def test_gitea_has_its_own_paths(stand_in, seen):
    browser = GiteaBrowser(f"{stand_in}/gt", TOKEN)
    assert browser.repositories() == [{"owner": "kqi", "name": "model", "fullName": "kqi/model"}]
    assert browser.branches("kqi", "model") == [{"branchName": "master", "commitId": SHA_MASTER},
                                                {"branchName": "dev", "commitId": SHA_DEV}]
    assert [c["commitId"] for c in browser.commits("kqi", "model", "master")] == [SHA_MASTER, SHA_OLD]
    assert browser.commit("kqi", "model", SHA_MASTER)["comment"] == "fix: master"
    assert "/gt/api/v1/repos/kqi/model/git/commits/" + SHA_MASTER in [s["path"] for s in seen]
    assert {"sha": "master", "limit": "30", "page": "1"} in [s["query"] for s in seen]
    assert all(s["headers"]["Authorization"] == f"token {TOKEN}" for s in seen)


@pytest.mark.parametrize("kind, prefix", [(GitHubBrowser, "gh"), (GitLabBrowser, "gl"), (GiteaBrowser, "gt")])
def test_a_refused_token_is_a_400_that_never_shows_it(stand_in, kind, prefix):
    wrong = "wrong-Secret-9876"
    with pytest.raises(InvalidInput) as refused:
        kind(f"{stand_in}/{prefix}", wrong).branches("kqi", "model")
    assert "refused your git token (HTTP 401" in refused.value.message
    assert wrong not in refused.value.message and "Bad credentials ***" in refused.value.message
    # without a token the repository lists are empty, as the original has them; the rest is refused
    assert kind(f"{stand_in}/{prefix}", None).repositories() == []
    with pytest.raises(InvalidInput, match="without a git token"):
        kind(f"{stand_in}/{prefix}", None).commits("kqi", "model")


def test_missing_things_and_bad_names(stand_in):
    browser = GitHubBrowser(f"{stand_in}/gh", TOKEN)
    with pytest.raises(NotFound, match="Repository kqi/nothing"):
        browser.branches("kqi", "nothing")
    with pytest.raises(NotFound, match="'nope'"):
        browser.commits("kqi", "model", "nope")
    with pytest.raises(NotFound, match="No commit found for SHA: abcd"):
        browser.commit("kqi", "model", "abcd")
    for call in (lambda: browser.branches("..", "model"), lambda: browser.branches("kqi", "-x"),
                 lambda: browser.commits("kqi", "model", "--all"), lambda: browser.commit("kqi", "model", "HEAD~1"),
                 lambda: browser.commits("kqi", "model", page="-1")):
        with pytest.raises(InvalidInput):
            call()


def test_unreachable_and_unreadable_services_are_502(stand_in, seen):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with pytest.raises(GitServiceUnreachable, match="cannot be reached: ConnectionError") as e:
        GitHubBrowser(f"http://127.0.0.1:{closed}", TOKEN).branches("kqi", "model")
    assert e.value.status == 502 and TOKEN not in e.value.message
    browser = GitHubBrowser(f"{stand_in}/gh", TOKEN)
    with pytest.raises(GitServiceUnreachable, match="not JSON"):
        browser.branches("kqi", "broken")
    with pytest.raises(GitServiceUnreachable, match="HTTP 500: Server Error"):
        browser.branches("kqi", "failing")
    with pytest.raises(GitServiceUnreachable, match="another host"):
        browser.branches("kqi", "elsewhere")
    assert not [s for s in seen if s["headers"].get("Host", "").startswith("localhost")]  # the token stayed home


@pytest.mark.platform
def test_a_users_token_reaches_the_service(platform, admin, new_tenant, new_user, stand_in, seen):
    r = admin.post("/admin/git/endpoints", {"name": unique("github"), "serviceType": 2,
                                            "repositoryUrl": "https://github.example", "apiUrl": f"{stand_in}/gh"})
    assert r.status_code == 201, r.text
    gid = r.json()["id"]
    user = new_user([{"id": new_tenant(gitIds=[gid], defaultGitId=gid)["id"]}])
    api = platform.api().login(user["name"], user["password"])
    assert api.get(f"/git/{gid}/repos").json() == []  # no token yet
    r = api.get(f"/git/{gid}/repos/kqi/model/branches")
    assert r.status_code == 400 and "without a git token" in r.json()["message"]

    assert api.put("/account/gits", {"id": gid, "token": "wrong-Secret-9876"}).status_code == 200
    r = api.get(f"/git/{gid}/repos/kqi/model/branches")
    assert r.status_code == 400 and "refused your git token" in r.json()["message"]
    assert "wrong-Secret-9876" not in r.text

    assert api.put("/account/gits", {"id": gid, "token": TOKEN}).status_code == 200
    r = api.get(f"/git/{gid}/repos")
    assert r.status_code == 200 and len(r.json()) == 101 and TOKEN not in r.text
    r = api.get(f"/git/{gid}/repos/kqi/model/commits/{SHA_DEV}")
    assert r.status_code == 200 and r.json()["comment"] == "dev work"
    r = api.get(f"/git/{gid}/repos/kqi/model/commits/abcd")
    assert r.status_code == 404 and r.json()["status"] == 404
    assert f"token {TOKEN}" in [s["headers"].get("Authorization") for s in seen]
