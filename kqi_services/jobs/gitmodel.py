"""Model repositories of jobs: clone URLs, commit resolution and the ``/kqi/git`` checkout.

The job engine calls this module in a worker thread, outside the sandbox,
before a run's command starts:

1. :func:`clone_url` builds ``{repositoryUrl}/{owner}/{repository}.git`` from a
   git server's URL and the user's choice, refusing anything git could read as
   an option or as a transport other than http(s), ssh and file;
2. :func:`resolve` (or :func:`resolve_commit`) picks the commit by the
   contract's rule — the given commit, else the branch's HEAD, else
   ``master``'s, else the repository's default branch — with ``git ls-remote``,
   so nothing is cloned to decide;
3. :func:`clone` makes ``dest`` a work tree detached at exactly that commit,
   shallow where the server allows it.

The user's token reaches git only as an ``Authorization`` header set through
the ``GIT_CONFIG_COUNT`` environment (never argv, never the URL), so it is not
in ``ps``, in ``dest/.git`` nor in any error message. Every git process gets a
new session (no terminal to prompt on), ``GIT_TERMINAL_PROMPT=0``, no askpass
and no credential helper, so a missing or wrong token fails at once.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from kqi_services.errors import InvalidInput

ALLOWED_PROTOCOLS = "file:http:https:ssh"
TOKEN_USER = "oauth2"
"""User name sent with the token in Basic auth; GitHub ignores it, GitLab wants ``oauth2`` for OAuth tokens."""
RESOLVE_TIMEOUT = 60.0
CLONE_TIMEOUT = 600.0

FULL_SHA = re.compile(r"^[0-9a-f]{40}$|^[0-9a-f]{64}$")
_HEX = re.compile(r"^[0-9a-f]{4,64}$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
_SCP = re.compile(r"^(?P<user>[A-Za-z0-9_][A-Za-z0-9_.-]*)@(?P<host>[A-Za-z0-9_.\[\]-]+):(?P<path>.*)$")
_BAD_CHAR = re.compile(r"[\x00-\x20\x7f-\x9f]")
_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|^[-/.]|/\.|[/.]$|\.lock$|\.lock/")
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/@:\s]*):[^/@\s]*@")
# git's own environment of the service is not passed on, except what an admin sets for ssh and TLS
_GIT_ENV_KEPT = {"GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSH_VARIANT", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH"}
# what git says when the repository cannot be reached or read; another fetch would fail alike
_REASONS = (
    ("auth", ("terminal prompts disabled", "authentication failed", "could not read username",
              "could not read password", "permission denied", "http 401", "http 403",
              "the requested url returned error: 401", "the requested url returned error: 403")),
    ("not-found", ("does not appear to be a git repository", "not found", "the requested url returned error: 404")),
    ("unreachable", ("unable to access", "could not resolve host", "connection refused", "connection timed out")),
)


class GitModelError(InvalidInput, ValueError):
    """A model repository that cannot be used: bad URL, missing branch or commit, no access.

    ``reason`` is ``"auth"``, ``"not-found"`` or ``"unreachable"`` when git could not read the
    repository at all, else None.
    """

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class GitModel:
    """A resolved model repository: what a run sees as ``MODEL_REPOSITORY`` and ``COMMIT_ID``."""

    url: str
    """The clone URL without credentials (``MODEL_REPOSITORY``)."""
    commit: str
    """The full commit id (``COMMIT_ID``)."""
    branch: str | None
    """The branch given or chosen by the rule (``master``, the default branch); None for a detached HEAD."""


def clone_url(repository_url: str, owner: str, repository: str) -> str:
    """``{repositoryUrl}/{owner}/{repository}.git``, every part checked.

    Args:
        repository_url: the git server's URL: ``https://github.com``, ``ssh://git@host:2222``,
            ``git@github.com:`` (scp-like) or ``file:///srv/git`` (a directory of bare repositories).
        owner: the user, organisation or group (GitLab subgroups as ``group/sub``).
        repository: the repository name; a trailing ``.git`` is not doubled.

    Raises:
        GitModelError: with a message naming what to fix.
    """
    base = check_server_url(repository_url)
    check_owner(owner)
    check_repository(repository)
    if repository.endswith(".git") and len(repository) > 4:
        repository = repository[:-4]
    if _SCP.match(base) and base.endswith(":"):
        return f"{base}{owner}/{repository}.git"
    prefix = base.rstrip("/")
    if prefix.endswith(":"):  # file:///
        prefix += "//"
    return f"{prefix}/{owner}/{repository}.git"


def check_server_url(repository_url: str, what: str = "repositoryUrl") -> str:
    """A git server's URL as a git endpoint registers it and :func:`clone_url` builds on it.

    The rules of :func:`check_url` for a base URL, and no credentials in it.
    """
    base = check_url(repository_url, what=what, base=True)
    if _url_credentials(base)[1] is not None:
        raise GitModelError(f"{what} must not contain credentials (user:token@): "
                            "register the token as your git token instead")
    return base


def check_url(url: str, what: str = "repository URL", base: bool = False) -> str:
    """``url`` if it is an http(s), ssh, scp-like (``git@host:path``) or file URL git cannot misread.

    ``base`` accepts a server URL without a repository path (``https://host``, ``git@host:``).
    """
    if not isinstance(url, str) or not url:
        raise GitModelError(f"{what} must be a non-empty string")
    if len(url) > 2048:
        raise GitModelError(f"{what} must be at most 2048 characters")
    if url.startswith("-"):
        raise GitModelError(f"{what} must not start with '-'")
    if _BAD_CHAR.search(url) or any(c.isspace() for c in url):
        raise GitModelError(f"{what} must not contain spaces or control characters")
    allowed = f"{what} must be an http://, https://, ssh://, file:// or git@host:path URL"
    scp = _SCP.match(url)
    if scp:
        if scp["host"].startswith("-") or (not scp["path"] and not base):
            raise GitModelError(allowed)
        _check_ssh_path(scp["path"], what)
        return url
    scheme, separator, _ = url.partition("://")
    if scheme.lower() not in ("http", "https", "ssh", "file") or not separator:
        raise GitModelError(allowed)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise GitModelError(f"{what} {_redact(url, ())!r} is not a valid URL") from None
    if parts.query or parts.fragment:
        raise GitModelError(f"{what} must not contain '?' or '#'")
    if scheme.lower() == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise GitModelError(f"{what} must be file:///absolute/path")
        return url
    host = parts.hostname or ""
    if not host or host.startswith("-") or (parts.username or "").startswith("-"):
        raise GitModelError(f"{what} needs a host name that does not start with '-'")
    if not base and parts.path.strip("/") == "":
        raise GitModelError(f"{what} has no repository path")
    if scheme.lower() == "ssh":
        _check_ssh_path(unquote(parts.path), what)
    return url


def _check_ssh_path(path: str, what: str) -> None:
    """ssh hands the path to a command on the server: no part of it may read as an option."""
    if any(part.startswith("-") for part in path.split("/")):
        raise GitModelError(f"{what} must not have a path part that starts with '-'")


def resolve(url: str, branch: str | None = None, commit: str | None = None, token: str | None = None,
            timeout: float = RESOLVE_TIMEOUT) -> GitModel:
    """The commit a run uses: ``commit`` if given, else ``branch``'s HEAD, else ``master``'s, else the default branch's.

    A full commit id is accepted as given (:func:`clone` checks that it exists);
    an abbreviated one is expanded against the branch and tag tips, else against
    the repository's history.

    Raises:
        GitModelError: no such repository, branch or commit, or no access (the message never holds the token).
    """
    remote = _Remote(url, token)
    branch = check_branch(branch) if branch else None
    if commit:
        return GitModel(remote.url, _expand_commit(remote, check_commit(commit), timeout), branch)
    wanted = f"refs/heads/{branch or 'master'}"
    refs, head_target = _ls_remote(remote, ["HEAD", wanted], timeout)
    if branch:
        if wanted not in refs:
            raise GitModelError(f"branch {branch!r} not found in {remote.url}")
        return GitModel(remote.url, refs[wanted], branch)
    if wanted in refs:
        return GitModel(remote.url, refs[wanted], "master")
    if "HEAD" in refs:
        default = head_target.removeprefix("refs/heads/") if head_target else None
        return GitModel(remote.url, refs["HEAD"], default)
    raise GitModelError(f"{remote.url} has no master branch and no default branch (is it empty?)")


def resolve_commit(url: str, branch: str | None = None, commit: str | None = None, token: str | None = None,
                   timeout: float = RESOLVE_TIMEOUT) -> str:
    """The full commit id :func:`resolve` picks."""
    return resolve(url, branch, commit, token, timeout).commit


def clone(url: str, commit: str | None, dest: str | os.PathLike, token: str | None = None,
          timeout: float = CLONE_TIMEOUT, branch: str | None = None) -> GitModel:
    """Make ``dest`` a work tree of ``url`` detached at exactly ``commit``.

    Fetches only that commit (depth 1) where the server serves commits by id,
    else all branches and tags. The remote ``origin`` keeps the URL without
    credentials; the token is in no file under ``dest``.

    Args:
        commit: a full commit id; an abbreviated one or None is resolved first with ``branch`` (see :func:`resolve`).
        dest: a directory that does not exist or is empty; on failure it is left so again.
        timeout: seconds for the whole clone.
        branch: the branch the commit was chosen from, recorded in the result.
    """
    deadline = time.monotonic() + timeout
    remote = _Remote(url, token)
    if commit is not None and FULL_SHA.match(commit.lower()):
        model = GitModel(remote.url, commit.lower(), check_branch(branch) if branch else None)
    else:
        model = resolve(url, branch, commit, token, timeout)
    dest = os.path.abspath(os.fspath(dest))
    existed = os.path.lexists(dest)
    if existed and (not os.path.isdir(dest) or os.path.islink(dest) or os.listdir(dest)):
        raise GitModelError(f"cannot clone into {dest}: it is not an empty directory")

    def git(*args, action):
        left = deadline - time.monotonic()
        if left <= 0:
            raise GitModelError(f"cloning {remote.url} timed out after {timeout:g}s")
        return remote.run(["-C", dest, *args], action=action, timeout=left)

    try:
        remote.run(["init", "-q", "--template=", dest], action="git init", timeout=deadline - time.monotonic())
        git("remote", "add", "origin", remote.url, action="git remote add")
        shallow = _try(lambda: git("fetch", "-q", "--depth", "1", "--no-tags", "--no-recurse-submodules",
                                   "origin", model.commit, action="git fetch"))
        if shallow is not None:
            if shallow.reason:
                raise shallow
            # the server does not serve commits by id: fetch what it advertises
            git("fetch", "-q", "--no-recurse-submodules", "origin", "+refs/heads/*:refs/remotes/origin/*",
                "+refs/tags/*:refs/tags/*", action="git fetch")
            if _try(lambda: git("cat-file", "-e", f"{model.commit}^{{commit}}", action="git cat-file")):
                raise GitModelError(f"commit {model.commit} not found in {remote.url}")
        git("checkout", "-q", "--detach", model.commit, action="git checkout")
    except BaseException:
        _empty(dest, keep=existed)
        raise
    return model


def check_owner(owner: str) -> str:
    """``owner`` if it is a user, organisation or group name (GitLab subgroups as ``group/sub``) git cannot misread."""
    if not isinstance(owner, str) or not owner or not all(_safe_name(part) for part in owner.split("/")):
        raise GitModelError(f"owner {owner!r} may only contain letters, digits, '-', '_' and '.' (and '/' between "
                            "groups), must not start with '-' or '.', must not contain '..' and is at most 100 "
                            "characters per part")
    return owner


def check_repository(repository: str) -> str:
    """``repository`` if it is a repository name (a trailing ``.git`` allowed) git cannot misread."""
    if not isinstance(repository, str) or not _safe_name(repository):
        raise GitModelError(f"repository {repository!r} may only contain letters, digits, '-', '_' and '.', "
                            "must not start with '-' or '.', must not contain '..' and is at most 100 characters")
    return repository


def check_branch(branch: str) -> str:
    """``branch`` (``refs/heads/`` optional) if git accepts it as a branch name and it cannot be read as an option."""
    if not isinstance(branch, str):
        raise GitModelError("branch must be a string")
    name = branch.removeprefix("refs/heads/")
    if not name or len(name) > 255 or _BAD_REF.search(name) or name == "@":
        raise GitModelError(f"branch {branch!r} is not a valid branch name")
    return name


def check_commit(commit: str) -> str:
    """``commit`` in lower case if it is a commit id of 4 to 64 hex digits."""
    value = commit.strip().lower() if isinstance(commit, str) else ""
    if not _HEX.match(value):
        raise GitModelError(f"commit {commit!r} must be a commit id (4 to 64 hex digits)")
    return value


class _Remote:
    """A repository URL split into what git may see (URL, environment) and what it must not show (secrets)."""

    def __init__(self, url: str, token: str | None):
        url = check_url(url)
        user, password = _url_credentials(url)
        secrets = [token] if token else []
        if password is not None:
            parts = urlsplit(url)
            url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
            secrets += [password, unquote(password)]
        self.url = url
        self.env = _git_environment()
        config = {
            "protocol.ext.allow": "never",
            "credential.helper": "",
            "advice.detachedHead": "false",
            "maintenance.auto": "false",
            "gc.auto": "0",
            "fetch.unpackLimit": "1",  # keep what is fetched as one pack: twice as fast as loose objects
        }
        if url.lower().startswith(("http://", "https://")):
            if token:
                basic = _basic(TOKEN_USER, token)
            elif password is not None:
                basic = _basic(unquote(user) if user else TOKEN_USER, unquote(password))
            else:
                basic = None
            if basic:
                config["http.extraHeader"] = f"Authorization: Basic {basic}"
                secrets.append(basic)
        for i, (key, value) in enumerate(config.items()):
            self.env[f"GIT_CONFIG_KEY_{i}"] = key
            self.env[f"GIT_CONFIG_VALUE_{i}"] = value
        self.env["GIT_CONFIG_COUNT"] = str(len(config))
        self.secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    def run(self, args: list[str], action: str, timeout: float, cwd: str = "/") -> str:
        """Run git; its stdout, or GitModelError with git's message less any secret."""
        proc = subprocess.Popen(["git", *args], cwd=cwd, env=self.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=max(timeout, 0.001))
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise GitModelError(f"{action} {self.url} timed out after {timeout:.0f}s") from None
        except BaseException:
            _kill_group(proc)
            raise
        if proc.returncode:
            raise self._error(action, err.decode("utf-8", "replace"))
        return out.decode("utf-8", "replace")

    def _error(self, action: str, stderr: str) -> GitModelError:
        lines = [line.strip() for line in _redact(stderr, self.secrets).splitlines() if line.strip()]
        lines = [line for line in lines if line.startswith(("fatal:", "error:", "remote:"))] or lines
        detail = "; ".join(lines)[:1000] or "no message"
        lowered = detail.lower()
        reason = next((r for r, markers in _REASONS if any(m in lowered for m in markers)), None)
        if reason == "auth":
            return GitModelError(f"cannot read {self.url}: authentication failed; check that your git token "
                                 f"is set and can read this repository (git: {detail})", reason)
        if reason == "not-found":
            return GitModelError(f"repository {self.url} not found or not readable (git: {detail})", reason)
        return GitModelError(f"{action} {self.url} failed: {detail}", reason)


def _ls_remote(remote: _Remote, patterns: list[str], timeout: float) -> tuple[dict[str, str], str | None]:
    """Refs (name → commit) of ``remote`` matching ``patterns`` exactly, and where its HEAD points."""
    out = remote.run(["ls-remote", "--symref", "--", remote.url, *patterns], action="git ls-remote", timeout=timeout)
    refs: dict[str, str] = {}
    head_target = None
    for line in out.splitlines():
        value, _, name = line.partition("\t")
        if value.startswith("ref: "):
            if name == "HEAD":
                head_target = value[5:]
        elif not patterns or name in patterns:
            refs[name] = value
    return refs, head_target


def _expand_commit(remote: _Remote, commit: str, timeout: float) -> str:
    if FULL_SHA.match(commit):
        return commit
    refs, _ = _ls_remote(remote, [], timeout)
    annotated = {name[:-3] for name in refs if name.endswith("^{}")}  # their own ids are tag objects
    tips = {sha for name, sha in refs.items() if sha.startswith(commit) and name not in annotated}
    if len(tips) == 1:
        return tips.pop()
    with tempfile.TemporaryDirectory(prefix="kqi-gitmodel-") as scratch:
        deadline = time.monotonic() + timeout
        remote.run(["init", "-q", "--bare", "--template=", scratch], action="git init", timeout=timeout)
        remote.run(["-C", scratch, "fetch", "-q", "--filter=tree:0", "--no-tags", "--", remote.url,
                    "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
                   action="git fetch", timeout=deadline - time.monotonic())
        try:
            out = remote.run(["-C", scratch, "rev-parse", "--verify", "-q", f"{commit}^{{commit}}"],
                             action="git rev-parse", timeout=deadline - time.monotonic())
        except GitModelError:
            raise GitModelError(f"commit {commit} not found in {remote.url}, or it is ambiguous: "
                                "give more digits") from None
    return out.strip()


def _git_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in _GIT_ENV_KEPT}
    env.pop("SSH_ASKPASS", None)
    env.update({
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "",  # empty: no askpass program, not even core.askPass
        "GIT_ALLOW_PROTOCOL": ALLOWED_PROTOCOLS,
        "LC_ALL": "C",
        "LANGUAGE": "",
    })
    if "GIT_SSH" not in env and "GIT_SSH_COMMAND" not in env:
        env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"
    return env


def _url_credentials(url: str) -> tuple[str | None, str | None]:
    """(user, password) of an http(s) URL's userinfo; ssh user names are not credentials."""
    if not url.lower().startswith(("http://", "https://")):
        return None, None
    netloc = urlsplit(url).netloc
    if "@" not in netloc:
        return None, None
    userinfo = netloc.rpartition("@")[0]
    user, colon, password = userinfo.partition(":")
    if not colon:  # https://TOKEN@host: the token as user name
        return None, user or None
    return user or None, password


def _redact(text: str, secrets) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return _URL_PASSWORD.sub(r"\1:***@", text)


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _safe_name(name: str) -> bool:
    return bool(_NAME.match(name)) and ".." not in name


def _try(step):
    """None if ``step`` succeeds, else its GitModelError."""
    try:
        step()
    except GitModelError as e:
        return e
    return None


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def _empty(dest: str, keep: bool) -> None:
    if not keep:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for entry in os.scandir(dest):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            os.unlink(entry.path)
