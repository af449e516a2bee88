"""Model repositories of jobs (kqi_services.jobs.gitmodel) against real git repositories.

Bare repositories are built in a temp dir and reached by file:// URLs, and over
real HTTP through ``git http-backend`` behind a small handler that demands the
token in ``Authorization: Basic``. Fixtures of this module:

- ``repos``: the bare repositories (module scope), by name: ``main_only``,
  ``master_dev`` (HEAD on dev), ``trunk`` (default branch trunk), ``detached``,
  ``empty``; each with its URL and commit ids.
- ``git_http``: the HTTP server (module scope): ``url(name)``, ``v0_url(name)``
  (the server speaks only protocol v0, which serves no unadvertised commit), ``token``.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kqi_services.errors import InvalidInput
from kqi_services.jobs.gitmodel import GitModel, GitModelError, clone, clone_url, resolve, resolve_commit

TOKEN = "glpat-Secret-Token-0123456789"
IDENTITY = {"GIT_AUTHOR_NAME": "kqi", "GIT_AUTHOR_EMAIL": "kqi@example.org",
            "GIT_COMMITTER_NAME": "kqi", "GIT_COMMITTER_EMAIL": "kqi@example.org"}


def git(*args, cwd=None, input=None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")} | IDENTITY
    return subprocess.run(["git", *args], cwd=cwd, env=env, input=input, check=True,
                          capture_output=True, text=True).stdout.strip()


@dataclass
class BareRepo:
    path: str
    commits: dict[str, str] = field(default_factory=dict)  # label -> commit id

    @property
    def url(self) -> str:
        return f"file://{self.path}"

    def commit(self, label: str, files: dict[str, str], parent: str | None = None, branch: str | None = None) -> str:
        entries = "".join(f"100644 blob {git('hash-object', '-w', '--stdin', cwd=self.path, input=content)}\t{name}\n"
                          for name, content in sorted(files.items()))
        tree = git("mktree", cwd=self.path, input=entries)
        parents = ["-p", self.commits[parent]] if parent else []
        sha = git("commit-tree", tree, *parents, "-m", label, cwd=self.path)
        self.commits[label] = sha
        if branch:
            git("update-ref", f"refs/heads/{branch}", sha, cwd=self.path)
        return sha


def bare_repo(root: str, name: str, head: str = "main") -> BareRepo:
    path = os.path.join(root, f"{name}.git")
    git("init", "-q", "--bare", "--template=", path)
    git("symbolic-ref", "HEAD", f"refs/heads/{head}", cwd=path)
    return BareRepo(path)


@pytest.fixture(scope="module")
def repos(tmp_path_factory) -> dict[str, BareRepo]:
    root = str(tmp_path_factory.mktemp("repos"))
    main_only = bare_repo(root, "main_only", head="main")
    main_only.commit("main1", {"README.md": "main 1\n"}, branch="main")
    main_only.commit("main2", {"README.md": "main 2\n", "train.py": "print('main')\n"}, "main1", "main")

    master_dev = bare_repo(root, "master_dev", head="dev")
    master_dev.commit("master1", {"train.py": "print('master 1')\n"}, branch="master")
    master_dev.commit("master2", {"train.py": "print('master 2')\n"}, "master1", "master")
    master_dev.commit("dev1", {"train.py": "print('dev 1')\n", "dev.txt": "dev\n"}, "master1", "dev")
    git("tag", "-a", "v1", master_dev.commits["master1"], "-m", "release 1", cwd=master_dev.path)

    trunk = bare_repo(root, "trunk", head="trunk")
    trunk.commit("trunk1", {"train.py": "print('trunk')\n"}, branch="trunk")
    trunk.commit("feature1", {"train.py": "print('feature')\n"}, "trunk1", "feature")

    detached = bare_repo(root, "detached", head="other")
    detached.commit("other1", {"a": "a\n"}, branch="other")
    git("update-ref", "--no-deref", "HEAD", detached.commits["other1"], cwd=detached.path)

    empty = bare_repo(root, "empty")
    return {"main_only": main_only, "master_dev": master_dev, "trunk": trunk, "detached": detached, "empty": empty,
            "root": root}


class _GitHttpHandler(BaseHTTPRequestHandler):
    """``git http-backend`` as CGI, behind Basic auth with the token as password."""

    def do_GET(self):
        self._serve()

    def do_POST(self):
        self._serve()

    def _serve(self):
        expected = "Basic " + base64.b64encode(f"oauth2:{TOKEN}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        if path.startswith("/v0/"):
            path = path[3:]
        elif self.headers.get("Git-Protocol"):
            env["HTTP_GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        env.update(GIT_PROJECT_ROOT=self.server.root, GIT_HTTP_EXPORT_ALL="1", PATH_INFO=path,
                   QUERY_STRING=query, REQUEST_METHOD=self.command, REMOTE_USER="oauth2",
                   REMOTE_ADDR=self.client_address[0], CONTENT_TYPE=self.headers.get("Content-Type", ""))
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        body = self._body()
        env["CONTENT_LENGTH"] = str(len(body))
        out = subprocess.run(["git", "http-backend"], env=env, input=body, capture_output=True).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        headers = [line.split(": ", 1) for line in head.decode("latin-1").split("\r\n") if ": " in line]
        status = next((int(v.split()[0]) for k, v in headers if k.lower() == "status"), 200)
        self.send_response(status)
        for key, value in headers:
            if key.lower() not in ("status", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> bytes:
        if self.command != "POST":
            return b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def log_message(self, format, *args):
        pass


@dataclass
class GitHttp:
    base: str
    token: str = TOKEN

    def url(self, name: str) -> str:
        return f"{self.base}/{name}.git"

    def v0_url(self, name: str) -> str:
        return f"{self.base}/v0/{name}.git"


@pytest.fixture(scope="module")
def git_http(repos):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GitHttpHandler)
    server.root = repos["root"]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield GitHttp(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def checkout_state(dest) -> dict:
    """What a run sees in /kqi/git: files, HEAD, whether it is detached and clean, origin's URL."""
    files = {}
    for dirpath, dirnames, filenames in os.walk(dest):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            path = os.path.join(dirpath, name)
            with open(path) as f:
                files[os.path.relpath(path, dest)] = f.read()
    return {
        "files": files,
        "head": git("rev-parse", "HEAD", cwd=dest),
        "detached": subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=dest).returncode == 1,
        "clean": git("status", "--porcelain", cwd=dest) == "",
        "origin": git("remote", "get-url", "origin", cwd=dest),
    }


def files_containing(root, needles: list[str]) -> list[str]:
    found = []
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                data = f.read()
            found += [f"{path}: {n}" for n in needles if n.encode() in data]
    return found


# --- clone_url -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("repository_url, owner, repository, expected", [
    ("https://github.com", "kqi", "model", "https://github.com/kqi/model.git"),
    ("http://gitlab.local:8080/", "group/sub", "model.git", "http://gitlab.local:8080/group/sub/model.git"),
    ("ssh://git@git.local:2222", "o", "r_1.x", "ssh://git@git.local:2222/o/r_1.x.git"),
    ("git@github.com:", "kqi", "model", "git@github.com:kqi/model.git"),
    ("git@git.local:base", "kqi", "model", "git@git.local:base/kqi/model.git"),
    ("file:///srv/git", "kqi", "model", "file:///srv/git/kqi/model.git"),
    ("file:///", "kqi", "model", "file:///kqi/model.git"),
])
def test_clone_url(repository_url, owner, repository, expected):
    assert clone_url(repository_url, owner, repository) == expected


@pytest.mark.parametrize("repository_url, owner, repository, message", [
    ("ftp://host", "o", "r", "http://, https://, ssh://, file://"),
    ("ext::sh -c touch% /tmp/pwned", "o", "r", "spaces"),
    ("ext::sh", "o", "r", "http://, https://, ssh://, file://"),
    ("-oProxyCommand=touch /tmp/pwned", "o", "r", "start with '-'"),
    ("ssh://-oProxyCommand=evil/x", "o", "r", "host name"),
    ("git@-oProxyCommand=evil:x", "o", "r", "http://, https://"),
    ("https://host/a b", "o", "r", "spaces"),
    ("https://host\n", "o", "r", "spaces"),
    ("https://host\t/x", "o", "r", "spaces"),
    ("https://user:secret@host", "o", "r", "credentials"),
    ("https://secret@host", "o", "r", "credentials"),
    ("https://host?x=1", "o", "r", "'?'"),
    ("file://otherhost/srv", "o", "r", "file:///"),
    ("https://host:port", "o", "r", "not a valid URL"),
    ("", "o", "r", "non-empty"),
    ("https://host", "..", "r", "owner"),
    ("https://host", "a/../b", "r", "owner"),
    ("https://host", "-o", "r", "owner"),
    ("https://host", ".hidden", "r", "owner"),
    ("https://host", "o", "..", "repository"),
    ("https://host", "o", "a..b", "repository"),
    ("https://host", "o", "r/x", "repository"),
    ("https://host", "o", "-r", "repository"),
    ("https://host", "o", "r r", "repository"),
])
def test_clone_url_refuses(repository_url, owner, repository, message):
    with pytest.raises(GitModelError) as info:
        clone_url(repository_url, owner, repository)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, InvalidInput)
    assert info.value.status == 400
    assert "secret" not in str(info.value)


# --- resolve over file:// --------------------------------------------------------------------------------------

def test_resolve_default_branch_when_no_master(repos):
    repo = repos["main_only"]
    assert resolve(repo.url) == GitModel(repo.url, repo.commits["main2"], "main")
    assert resolve(repos["trunk"].url) == GitModel(repos["trunk"].url, repos["trunk"].commits["trunk1"], "trunk")


def test_resolve_master_before_default_branch(repos):
    repo = repos["master_dev"]  # HEAD points at dev
    assert resolve(repo.url) == GitModel(repo.url, repo.commits["master2"], "master")


def test_resolve_branch_head(repos):
    repo = repos["master_dev"]
    assert resolve(repo.url, branch="dev") == GitModel(repo.url, repo.commits["dev1"], "dev")
    assert resolve_commit(repo.url, branch="refs/heads/master") == repo.commits["master2"]
    assert resolve_commit(repos["trunk"].url, branch="feature") == repos["trunk"].commits["feature1"]


def test_resolve_commit_wins(repos):
    repo = repos["master_dev"]
    old = repo.commits["master1"]
    assert resolve(repo.url, branch="dev", commit=old) == GitModel(repo.url, old, "dev")
    assert resolve_commit(repo.url, commit=old.upper()) == old
    # a full id is taken as given; clone checks that it exists
    unknown = "0123456789abcdef0123456789abcdef01234567"
    assert resolve_commit(repo.url, commit=unknown) == unknown


def test_resolve_abbreviated_commit(repos):
    repo = repos["master_dev"]
    assert resolve_commit(repo.url, commit=repo.commits["dev1"][:7]) == repo.commits["dev1"]  # a branch tip
    assert resolve_commit(repo.url, commit=repo.commits["master1"][:8]) == repo.commits["master1"]  # tag v1's commit
    main_only = repos["main_only"]
    assert resolve_commit(main_only.url, commit=main_only.commits["main1"][:7]) == main_only.commits["main1"]  # history


def test_resolve_detached_default_head(repos):
    repo = repos["detached"]
    assert resolve(repo.url) == GitModel(repo.url, repo.commits["other1"], None)


@pytest.mark.parametrize("repo, kwargs, message", [
    ("master_dev", {"branch": "nope"}, "branch 'nope' not found"),
    ("master_dev", {"commit": "abcdef0"}, "commit abcdef0 not found"),
    ("master_dev", {"commit": "not-a-sha"}, "hex digits"),
    ("master_dev", {"branch": "-x"}, "not a valid branch name"),
    ("master_dev", {"branch": "a..b"}, "not a valid branch name"),
    ("master_dev", {"branch": "a b"}, "not a valid branch name"),
    ("empty", {}, "no master branch and no default branch"),
    ("missing", {}, "not found"),
])
def test_resolve_errors(repos, repo, kwargs, message):
    url = repos[repo].url if repo in repos else f"file://{repos['root']}/missing.git"
    with pytest.raises(GitModelError) as info:
        resolve(url, **kwargs)
    assert message in str(info.value)


@pytest.mark.parametrize("url", ["ext::sh -c id", "ext::sh", "-uhelp", "ftp://host/x.git",
                                 "https://host", "file://otherhost/x.git", "git@host:"])
def test_resolve_refuses_urls(url):
    with pytest.raises(GitModelError):
        resolve(url)


# --- clone over file:// ----------------------------------------------------------------------------------------

def test_clone_exact_commit(repos, tmp_path):
    repo = repos["master_dev"]
    old = repo.commits["master1"]  # not a branch tip
    model = clone(repo.url, old, tmp_path / "git", branch="master")
    assert model == GitModel(repo.url, old, "master")
    assert checkout_state(tmp_path / "git") == {
        "files": {"train.py": "print('master 1')\n"}, "head": old, "detached": True, "clean": True,
        "origin": repo.url}
    assert os.path.exists(tmp_path / "git" / ".git" / "shallow")


def test_clone_resolves_branch(repos, tmp_path):
    repo = repos["master_dev"]
    model = clone(repo.url, None, tmp_path / "git", branch="dev")
    assert model == GitModel(repo.url, repo.commits["dev1"], "dev")
    assert checkout_state(tmp_path / "git")["files"] == {"train.py": "print('dev 1')\n", "dev.txt": "dev\n"}
    default = clone(repos["trunk"].url, None, tmp_path / "trunk")
    assert default == GitModel(repos["trunk"].url, repos["trunk"].commits["trunk1"], "trunk")


def test_clone_into_existing_empty_directory(repos, tmp_path):
    repo = repos["main_only"]
    (tmp_path / "git").mkdir()
    clone(repo.url, repo.commits["main1"], tmp_path / "git")
    assert checkout_state(tmp_path / "git")["files"] == {"README.md": "main 1\n"}


def test_clone_unknown_commit_leaves_nothing(repos, tmp_path):
    repo = repos["main_only"]
    unknown = "0123456789abcdef0123456789abcdef01234567"
    with pytest.raises(GitModelError, match=f"commit {unknown} not found"):
        clone(repo.url, unknown, tmp_path / "new")
    assert not os.path.exists(tmp_path / "new")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GitModelError, match="not found"):
        clone(repo.url, unknown, tmp_path / "empty")
    assert os.listdir(tmp_path / "empty") == []


def test_clone_errors(repos, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(GitModelError, match="not an empty directory"):
        clone(repos["main_only"].url, repos["main_only"].commits["main1"], tmp_path / "busy")
    with pytest.raises(GitModelError, match="not found") as info:
        clone(f"file://{repos['root']}/missing.git", "0" * 40, tmp_path / "git")
    assert info.value.reason == "not-found"
    with pytest.raises(GitModelError, match="branch 'nope' not found"):
        clone(repos["main_only"].url, None, tmp_path / "git", branch="nope")
    assert not os.path.exists(tmp_path / "git")


def test_clone_local_is_fast(repos, tmp_path):
    repo = repos["main_only"]
    times = []
    for i in range(5):
        start = time.perf_counter()
        clone(repo.url, repo.commits["main2"], tmp_path / str(i))
        times.append(time.perf_counter() - start)
    assert statistics.median(times) < 1.0


# --- the token, over HTTP --------------------------------------------------------------------------------------

def test_http_token_resolve_and_clone(repos, git_http, tmp_path):
    repo = repos["master_dev"]
    url = git_http.url("master_dev")
    assert resolve(url, token=TOKEN) == GitModel(url, repo.commits["master2"], "master")
    assert resolve_commit(url, commit=repo.commits["dev1"][:7], token=TOKEN) == repo.commits["dev1"]
    model = clone(url, repo.commits["master1"], tmp_path / "git", token=TOKEN)
    assert model == GitModel(url, repo.commits["master1"], None)
    state = checkout_state(tmp_path / "git")
    assert (state["head"], state["origin"], state["clean"]) == (repo.commits["master1"], url, True)
    basic = base64.b64encode(f"oauth2:{TOKEN}".encode()).decode()
    assert files_containing(tmp_path / "git", [TOKEN, basic, "Authorization"]) == []


@pytest.mark.parametrize("token", [None, "wrong-token-abcdef"])
def test_http_without_right_token_fails_fast(repos, git_http, tmp_path, token):
    url = git_http.url("master_dev")
    for attempt in (lambda: resolve(url, token=token),
                    lambda: clone(url, repos["master_dev"].commits["master1"], tmp_path / "git", token=token)):
        start = time.monotonic()
        with pytest.raises(GitModelError) as info:
            attempt()
        assert time.monotonic() - start < 10
        message = str(info.value)
        assert info.value.reason == "auth"
        assert "authentication failed" in message and "git token" in message
        for secret in (TOKEN, token or TOKEN, base64.b64encode(f"oauth2:{token}".encode()).decode()):
            assert secret not in message
    assert not os.path.exists(tmp_path / "git")


def test_http_credentials_in_url_are_moved_out(repos, git_http, tmp_path):
    repo = repos["main_only"]
    clean = git_http.url("main_only")
    with_credentials = clean.replace("http://", f"http://oauth2:{TOKEN}@")
    model = clone(with_credentials, None, tmp_path / "git")
    assert model == GitModel(clean, repo.commits["main2"], "main")
    assert checkout_state(tmp_path / "git")["origin"] == clean
    assert files_containing(tmp_path / "git", [TOKEN]) == []
    with pytest.raises(GitModelError) as info:
        resolve(with_credentials.replace(TOKEN, "wrong-secret"), branch="main")
    assert "wrong-secret" not in str(info.value)


def test_http_protocol_v0_falls_back_to_full_fetch(repos, git_http, tmp_path):
    repo = repos["master_dev"]
    url = git_http.v0_url("master_dev")
    clone(url, repo.commits["master1"], tmp_path / "old", token=TOKEN)  # not advertised: fetched with all branches
    assert checkout_state(tmp_path / "old")["head"] == repo.commits["master1"]
    clone(url, repo.commits["dev1"], tmp_path / "tip", token=TOKEN)
    assert checkout_state(tmp_path / "tip")["head"] == repo.commits["dev1"]
    with pytest.raises(GitModelError, match="not found"):
        clone(url, "0123456789abcdef0123456789abcdef01234567", tmp_path / "none", token=TOKEN)


def test_token_not_in_argv_nor_traces(repos, git_http, tmp_path, monkeypatch):
    """A git on PATH that logs its argv; GIT_* of the caller (traces, GIT_DIR) do not reach git."""
    real_git = shutil.which("git")
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "git").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {tmp_path}/argv.log\nexec {real_git} "$@"\n')
    (shim / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("GIT_TRACE", str(tmp_path / "trace.log"))
    monkeypatch.setenv("GIT_TRACE_CURL", str(tmp_path / "curl.log"))
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "nowhere"))
    url = git_http.url("master_dev")
    clone(url, None, tmp_path / "git", token=TOKEN)
    with open(tmp_path / "argv.log") as f:
        argv = f.read()
    assert "fetch" in argv and TOKEN not in argv and "Authorization" not in argv
    assert not os.path.exists(tmp_path / "trace.log") and not os.path.exists(tmp_path / "curl.log")


def test_timeout_kills_git(tmp_path):
    """A server that accepts and never answers: GitModelError after the timeout, no git left behind."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/model.git"
        start = time.monotonic()
        with pytest.raises(GitModelError, match="timed out"):
            resolve(url, token=TOKEN, timeout=1)
        with pytest.raises(GitModelError, match="timed out"):
            clone(url, "0" * 40, tmp_path / "git", token=TOKEN, timeout=1)
        assert time.monotonic() - start < 5
    assert not os.path.exists(tmp_path / "git")
