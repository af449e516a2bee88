"""What a git endpoint holds, for the forms' repository, branch and commit pickers.

:func:`browser_for` turns a git endpoint (``orm.GitEndpoint``) and the caller's
git token (None when unset) into a browser of one of these kinds:

* :class:`LocalBrowser` for a ``file://`` endpoint (any service type): the bare
  repositories ``{root}/{owner}/{repository}.git`` read with git itself
  (``for-each-ref refs/heads``, ``log`` with a fixed format), run as
  ``gitmodel`` runs git — names checked by its rules, no user value in an
  option's place, git's messages without secrets;
* :class:`GitHubBrowser` (REST v3), :class:`GitLabBrowser` (API v4, GitLab and
  GitLab.com) and :class:`GiteaBrowser` (API v1) over the endpoint's ``apiUrl``
  with the token (``Authorization: token …``; GitLab ``PRIVATE-TOKEN``). They are
  tested against a stand-in HTTP server that answers those APIs' documented JSON
  shapes, not against the real services.

Each answers the contract's models (``Nssol.Platypus.ServiceModels.Git``):
``RepositoryModel`` ``{owner, name, fullName}``, ``BranchModel``
``{branchName, commitId}`` and ``CommitModel`` ``{commitId, committerName,
commitAt, comment, display}``. As the original reads GitHub, ``committerName``
and ``commitAt`` are the commit's author and author date (UTC, ISO 8601) on
every backend; ``display`` is ``"{committerName} {commitAt}\\n{comment}"``.
Commits come newest first, :data:`PER_PAGE` a page. Without a token the
services' repository lists are empty, as the original has them.

Errors are domain errors the handlers map: a bad name or page is
:class:`~kqi_services.errors.InvalidInput` (400), as is a refused token (the
message says so); an unknown repository, branch or commit is
:class:`~kqi_services.errors.NotFound` (404); a service that cannot be reached
or answers nonsense is :class:`GitServiceUnreachable` (502). No message holds
the token: the services' own words are quoted with it blanked out. Every call
blocks (git, HTTP): run it in a worker thread.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit

import requests

from kqi_services.errors import InvalidInput, KqiError, NotFound

from .gitmodel import GitModelError, _Remote, check_branch, check_commit, check_owner, check_repository, check_url

PER_PAGE = 30
"""Commits a page of the commit list holds."""
MAX_PAGE = 100_000
TIMEOUT = 15
"""Seconds for one request to a git service (connect, and each read)."""
GIT_TIMEOUT = 30.0
"""Seconds for one git command on a file:// repository."""
LIST_PAGES = 20
"""Pages of a service's repository or branch list read at most (100 items each; 50 on Gitea)."""
MAX_DEPTH = 4
"""Directory levels of owners (GitLab-like groups) a file:// endpoint is searched to."""
MAX_REPOSITORIES = 2000
_REDIRECTS = 3
_LOG_FORMAT = "--format=%H%n%an%n%at%n%B"  # with -z: NUL between commits; a name holds no newline


class GitServiceUnreachable(KqiError):
    """The git service cannot be reached, or answers what the browser cannot read."""

    status = 502


def repository_model(owner: str, name: str, full_name: str) -> dict:
    """The contract's ``RepositoryModel``."""
    return {"owner": owner, "name": name, "fullName": full_name}


def branch_model(name: str, commit_id: str | None) -> dict:
    """The contract's ``BranchModel``."""
    return {"branchName": name, "commitId": commit_id}


def commit_model(commit_id: str, committer: str | None, at: str | None, comment: str | None) -> dict:
    """The contract's ``CommitModel``; ``at`` is an ISO 8601 time, written as UTC."""
    when = _utc(at)
    return {"commitId": commit_id, "committerName": committer, "commitAt": when, "comment": comment,
            "display": f"{committer or ''} {when or ''}\n{comment or ''}"}


def page_number(page: str | None) -> int:
    """The commit list's ``page`` query parameter: 1 when absent."""
    if page is None or page == "":
        return 1
    try:
        number = int(page)
    except ValueError:
        raise InvalidInput(f"page {page!r} must be a whole number from 1") from None
    if not 1 <= number <= MAX_PAGE:
        raise InvalidInput(f"page must be from 1 to {MAX_PAGE}")
    return number


def browser_for(git: Any, token: str | None) -> GitBrowser:
    """The browser of a git endpoint row (``service_type``, ``repository_url``, ``api_url``) for the caller."""
    if git.repository_url.lower().startswith("file:"):
        return LocalBrowser(git.repository_url)
    kinds: dict[int, type[ServiceBrowser]] = {1: GitLabBrowser, 2: GitHubBrowser, 3: GitLabBrowser, 4: GiteaBrowser}
    kind = kinds.get(git.service_type)
    if kind is None:
        raise InvalidInput(f"Git endpoint {git.name!r} has no service type (GitHub, GitLab, Gitea) whose API "
                           "lists repositories; give its repository, branch and commit by hand")
    return kind(git.api_url, token)


class GitBrowser:
    """Repositories, branches and commits of one git endpoint as the caller may read them."""

    def repositories(self) -> list[dict]:  # pragma: no cover - abstract
        raise NotImplementedError

    def branches(self, owner: str, repository: str) -> list[dict]:  # pragma: no cover - abstract
        raise NotImplementedError

    def commits(self, owner: str, repository: str, branch: str | None = None,
                page: str | None = None) -> list[dict]:  # pragma: no cover - abstract
        """A page of the commits of ``branch`` (else the default branch), newest first."""
        raise NotImplementedError

    def commit(self, owner: str, repository: str, commit_id: str) -> dict:  # pragma: no cover - abstract
        """One commit, by its id or a prefix of it (4 or more hex digits)."""
        raise NotImplementedError


# file:// -------------------------------------------------------------------------------------


class LocalBrowser(GitBrowser):
    """The bare repositories ``{owner}/{repository}.git`` under a ``file://`` endpoint's directory."""

    def __init__(self, repository_url: str):
        self.url = check_url(repository_url, what="repositoryUrl", base=True)
        self.root = os.path.abspath(unquote(urlsplit(self.url).path))

    def repositories(self) -> list[dict]:
        if not os.path.isdir(self.root):
            raise GitServiceUnreachable(f"The git endpoint's directory {self.root} cannot be read")
        found = []
        for path, dirs, _ in os.walk(self.root):
            relative = os.path.relpath(path, self.root)
            depth = 0 if relative == "." else relative.count(os.sep) + 1
            descend = []
            for name in sorted(dirs):
                if name.endswith(".git") and _is_bare(os.path.join(path, name)):
                    owner = relative.replace(os.sep, "/")
                    if depth and _valid(check_owner, owner) and _valid(check_repository, name):
                        found.append(repository_model(owner, name[:-4], f"{owner}/{name[:-4]}"))
                elif depth < MAX_DEPTH and _valid(check_repository, name):
                    descend.append(name)
            dirs[:] = descend
            if len(found) >= MAX_REPOSITORIES:
                break
        return sorted(found, key=lambda r: r["fullName"])[:MAX_REPOSITORIES]

    def branches(self, owner: str, repository: str) -> list[dict]:
        git = _LocalRepository(self, owner, repository)
        out = git.run("for-each-ref", "--format=%(refname)%00%(objectname)", "refs/heads")
        refs = (line.split("\0") for line in out.splitlines() if "\0" in line)
        return [branch_model(ref.removeprefix("refs/heads/"), commit) for ref, commit in refs]

    def commits(self, owner: str, repository: str, branch: str | None = None, page: str | None = None) -> list[dict]:
        number = page_number(page)
        git = _LocalRepository(self, owner, repository)
        if branch:
            tip = git.resolve(f"refs/heads/{check_branch(branch)}")
            if tip is None:
                raise NotFound(f"Branch {branch!r} not found in {git.name}")
        else:
            tip = git.resolve("HEAD")
            if tip is None:
                return []  # an empty repository
        return git.log(f"--skip={(number - 1) * PER_PAGE}", f"--max-count={PER_PAGE}", tip)

    def commit(self, owner: str, repository: str, commit_id: str) -> dict:
        wanted = check_commit(commit_id)
        git = _LocalRepository(self, owner, repository)
        full = git.resolve(wanted)
        # a short id git read as a branch or tag name is not that commit
        if full is None or not full.startswith(wanted):
            raise NotFound(f"Commit {wanted} not found in {git.name} (or it is ambiguous: give more digits)")
        return git.log("--max-count=1", full)[0]


class _LocalRepository:
    """One bare repository of a :class:`LocalBrowser`; git runs on it by ``--git-dir``."""

    def __init__(self, browser: LocalBrowser, owner: str, repository: str):
        check_owner(owner)
        check_repository(repository)
        repository = repository.removesuffix(".git") or repository
        self.name = f"{owner}/{repository}"
        self.path = os.path.join(browser.root, *owner.split("/"), f"{repository}.git")
        if not _is_bare(self.path):
            raise NotFound(f"Repository {self.name} not found")
        self.remote = _Remote(browser.url, None)

    def run(self, *args: str) -> str:
        try:
            return self.remote.run([f"--git-dir={self.path}", *args], action=f"git {args[0]}", timeout=GIT_TIMEOUT)
        except GitModelError as e:
            raise GitServiceUnreachable(f"Cannot read repository {self.name}: {e.message}") from None

    def resolve(self, revision: str) -> str | None:
        """The commit ``revision`` names, None when it names none."""
        try:
            out = self.remote.run([f"--git-dir={self.path}", "rev-parse", "--verify", "-q", f"{revision}^{{commit}}"],
                                  action="git rev-parse", timeout=GIT_TIMEOUT)
        except GitModelError:
            return None
        return out.strip() or None

    def log(self, *args: str) -> list[dict]:
        out = self.run("log", "-z", _LOG_FORMAT, *args, "--")
        commits = []
        for record in out.split("\0"):
            if not record.strip():
                continue
            commit_id, author, seconds, message = (record.split("\n", 3) + [""])[:4]
            at = datetime.fromtimestamp(int(seconds), UTC).isoformat() if seconds.isdigit() else None
            commits.append(commit_model(commit_id, author, at, message.rstrip()))
        return commits


def _is_bare(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "HEAD")) and os.path.isdir(os.path.join(path, "objects"))


def _valid(check, name: str) -> bool:
    try:
        check(name)
    except GitModelError:
        return False
    return True


# GitHub, GitLab, Gitea ----------------------------------------------------------------------


class ServiceBrowser(GitBrowser):
    """A git service's REST API at the endpoint's ``apiUrl``, asked with the caller's token."""

    api_suffix = ""
    """What the API's root adds to ``apiUrl`` unless it ends so already (``/api/v4``)."""
    size_parameter = "per_page"
    list_size = 100

    def __init__(self, api_url: str, token: str | None):
        if not isinstance(api_url, str) or not api_url.lower().startswith(("http://", "https://")):
            raise GitServiceUnreachable("The git endpoint's apiUrl is not an http(s) URL; ask an admin to fix it")
        base = api_url.rstrip("/")
        if self.api_suffix and not base.endswith(self.api_suffix):
            base += self.api_suffix
        self.base = base
        self.token = token or None

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"} if self.token else {}

    def get(self, path: str, params: dict | None = None, what: str = "") -> Any:
        """The JSON answer to ``GET {base}{path}``; None on HTTP 409 (GitHub's and Gitea's empty repository)."""
        response = self._request(self.base + path, params)
        status = response.status_code
        detail = self._detail(response)
        if status in (401, 403):
            whose = "your git token" if self.token else "the request without a git token"
            raise InvalidInput(f"The git service refused {whose} (HTTP {status}{detail}): set a token that can "
                               "read the repository for this endpoint (account git settings)")
        if status in (404, 422):
            raise NotFound(f"{what or 'That'} was not found on the git service, or your token cannot read it "
                           f"(HTTP {status}{detail})")
        if status == 409:
            return None
        if status != 200:
            raise GitServiceUnreachable(f"The git service answered HTTP {status}{detail}")
        try:
            return response.json()
        except ValueError:
            raise GitServiceUnreachable("The git service's answer is not JSON") from None

    def get_list(self, path: str, params: dict | None = None, what: str = "") -> list[dict]:
        answer = self.get(path, params, what)
        if answer is None:
            return []
        if not isinstance(answer, list):
            raise GitServiceUnreachable("The git service answered something other than a list")
        return [item for item in answer if isinstance(item, dict)]

    def get_all(self, path: str, params: dict | None = None, what: str = "") -> list[dict]:
        """Every item of a paged list, :data:`LIST_PAGES` pages at most."""
        items: list[dict] = []
        for page in range(1, LIST_PAGES + 1):
            batch = self.get_list(path, {**(params or {}), self.size_parameter: self.list_size, "page": page}, what)
            items += batch
            if len(batch) < self.list_size:
                break
        return items

    def get_object(self, path: str, what: str) -> dict:
        answer = self.get(path, what=what)
        if answer is None:
            raise NotFound(f"{what} was not found on the git service")
        if not isinstance(answer, dict):
            raise GitServiceUnreachable("The git service answered something other than an object")
        return answer

    def _request(self, url: str, params: dict | None) -> requests.Response:
        """GET ``url``, following redirects only within the API's origin (the token goes nowhere else)."""
        headers = {"Accept": "application/json", "User-Agent": "kqi-hub", **self.auth_headers()}
        origin = urlsplit(self.base)[:2]
        try:
            for _ in range(_REDIRECTS + 1):
                response = requests.get(url, params=params, headers=headers, timeout=TIMEOUT, allow_redirects=False)
                if not response.is_redirect:
                    return response
                url, params = urljoin(url, response.headers["Location"]), None
                if urlsplit(url)[:2] != origin:
                    raise GitServiceUnreachable("The git service redirected to another host; the token is not sent "
                                                "there")
        except (requests.RequestException, ValueError) as e:
            raise GitServiceUnreachable(f"The git service at {self.base} cannot be reached: "
                                        f"{type(e).__name__}") from None
        raise GitServiceUnreachable("The git service redirected too often")

    def _detail(self, response: requests.Response) -> str:
        """``": {the service's message}"``, without the token, when it gave one."""
        try:
            message = response.json().get("message") if response.status_code != 200 else None
        except (ValueError, AttributeError):
            message = None
        if not isinstance(message, str) or not message.strip():
            return ""
        if self.token:
            message = message.replace(self.token, "***")
        return ": " + " ".join(message.split())[:200]


class GitHubBrowser(ServiceBrowser):
    """GitHub's REST API v3 (``apiUrl`` ``https://api.github.com``, or GitHub Enterprise's ``…/api/v3``)."""

    commit_path = "/repos/{repo}/commits/{sha}"

    def repositories(self) -> list[dict]:
        if not self.token:
            return []
        found = self.get_all("/user/repos", {"sort": "full_name"}, "The repository list")
        models = [repository_model(_object(r.get("owner")).get("login") or r.get("full_name", "").partition("/")[0],
                                   r.get("name", ""), r.get("full_name", "")) for r in found]
        return sorted(models, key=lambda r: r["fullName"])

    def branches(self, owner: str, repository: str) -> list[dict]:
        repo = _repo_path(owner, repository)
        found = self.get_all(f"/repos/{repo}/branches", what=f"Repository {owner}/{repository}")
        # GitHub names the tip's id "sha", Gitea "id"
        return [branch_model(b.get("name", ""), _tip(b, "sha") or _tip(b, "id")) for b in found]

    def commits(self, owner: str, repository: str, branch: str | None = None, page: str | None = None) -> list[dict]:
        params: dict[str, Any] = {self.size_parameter: PER_PAGE, "page": page_number(page)}
        if branch:
            params["sha"] = check_branch(branch)
        what = f"Branch {branch!r} of {owner}/{repository}" if branch else f"Repository {owner}/{repository}"
        found = self.get_list(f"/repos/{_repo_path(owner, repository)}/commits", params, what)
        return [_github_commit(c) for c in found]

    def commit(self, owner: str, repository: str, commit_id: str) -> dict:
        sha = check_commit(commit_id)
        path = self.commit_path.format(repo=_repo_path(owner, repository), sha=sha)
        return _github_commit(self.get_object(path, f"Commit {sha} of {owner}/{repository}"))


class GiteaBrowser(GitHubBrowser):
    """Gitea's API v1 (``apiUrl`` the server, ``/api/v1`` added): GitHub's shapes, ``limit`` for page sizes."""

    api_suffix = "/api/v1"
    size_parameter = "limit"
    list_size = 50
    commit_path = "/repos/{repo}/git/commits/{sha}"


class GitLabBrowser(ServiceBrowser):
    """GitLab's API v4 (``apiUrl`` the server, ``/api/v4`` added); projects by their URL-encoded path."""

    api_suffix = "/api/v4"

    def auth_headers(self) -> dict[str, str]:
        return {"PRIVATE-TOKEN": self.token} if self.token else {}

    def repositories(self) -> list[dict]:
        if not self.token:
            return []
        found = self.get_all("/projects", {"membership": "true", "simple": "true", "order_by": "path",
                                           "sort": "asc"}, "The project list")
        models = []
        for p in found:
            full = p.get("path_with_namespace", "")
            owner = _object(p.get("namespace")).get("full_path") or full.rpartition("/")[0]
            models.append(repository_model(owner, p.get("path", ""), full))
        return sorted(models, key=lambda r: r["fullName"])

    def branches(self, owner: str, repository: str) -> list[dict]:
        found = self.get_all(f"/projects/{_project_id(owner, repository)}/repository/branches",
                             what=f"Project {owner}/{repository}")
        return [branch_model(b.get("name", ""), _tip(b, "id")) for b in found]

    def commits(self, owner: str, repository: str, branch: str | None = None, page: str | None = None) -> list[dict]:
        params: dict[str, Any] = {"per_page": PER_PAGE, "page": page_number(page)}
        if branch:
            params["ref_name"] = check_branch(branch)
        what = f"Branch {branch!r} of {owner}/{repository}" if branch else f"Project {owner}/{repository}"
        found = self.get_list(f"/projects/{_project_id(owner, repository)}/repository/commits", params, what)
        return [_gitlab_commit(c) for c in found]

    def commit(self, owner: str, repository: str, commit_id: str) -> dict:
        sha = check_commit(commit_id)
        path = f"/projects/{_project_id(owner, repository)}/repository/commits/{sha}"
        return _gitlab_commit(self.get_object(path, f"Commit {sha} of {owner}/{repository}"))


def _repo_path(owner: str, repository: str) -> str:
    return f"{quote(check_owner(owner), safe='/')}/{quote(check_repository(repository), safe='')}"


def _project_id(owner: str, repository: str) -> str:
    return quote(f"{check_owner(owner)}/{check_repository(repository)}", safe="")


def _tip(branch: dict, key: str) -> str | None:
    return _object(branch.get("commit")).get(key)


def _object(value: Any) -> dict:
    """``value`` if the service answered an object there, else an empty one."""
    return value if isinstance(value, dict) else {}


def _github_commit(c: dict) -> dict:
    """A GitHub or Gitea commit (``{sha, commit: {message, author: {name, date}}}``) as the contract's."""
    detail = _object(c.get("commit"))
    author = _object(detail.get("author"))
    return commit_model(c.get("sha", ""), author.get("name"), author.get("date"), detail.get("message"))


def _gitlab_commit(c: dict) -> dict:
    return commit_model(c.get("id", ""), c.get("author_name"), c.get("authored_date"), c.get("message"))


def _utc(at: str | None) -> str | None:
    """``at`` as ``YYYY-MM-DDTHH:MM:SSZ`` (the platform's format for times); as given if it is no ISO time."""
    if not at:
        return None
    try:
        moment = datetime.fromisoformat(at)
    except (TypeError, ValueError):
        return at
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
