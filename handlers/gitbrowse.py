"""Git API: what a git endpoint of the tenant holds, for the forms' repository, branch and commit pickers.

``GET /api/v2/git/{gitId}/repos`` (``RepositoryModel`` list), ``…/repos/{owner}/
{repositoryName}/branches`` (``BranchModel`` list), ``…/commits?branch=&page=``
(``CommitModel`` list, newest first, 30 a page) and ``…/commits/{commitId}``
(one ``CommitModel``). An owner may hold ``/`` (GitLab subgroups: ``group/sub``),
which the contract's ``{segments}`` path stands for. The endpoint must be one of
the caller's tenant (else 404); the caller's own git token for it (``PUT
/account/gits``) is sent to the service. The work is ``jobs.gitbrowse``'s, in a
worker thread; its errors map to 400 (bad names, refused token), 404 and 502.
"""

from __future__ import annotations

import asyncio

from kqi_services import validation as v
from kqi_services.errors import NotFound
from kqi_services.jobs import gitbrowse
from kqi_services.orm import GitEndpoint

from .base import APIHandler


class GitBrowseHandler(APIHandler):
    def browser(self, git_id: str) -> gitbrowse.GitBrowser:
        """The browser of endpoint ``git_id`` of the caller's tenant, with the caller's git token."""
        tenant = self.require_tenant()
        gid = v.path_id(git_id, "gitId")
        git = self.db.get(GitEndpoint, gid)
        if git is None or gid not in [link.git_id for link in tenant.gits]:
            raise NotFound(f"Git endpoint {git_id} is not available in this tenant")
        token = self.settings["engine"].user_secret(self.db, self.principal.user.id, "git", gid)
        return gitbrowse.browser_for(git, token)

    async def answer(self, call, *args) -> None:
        self.write_json(await asyncio.get_running_loop().run_in_executor(None, call, *args))


class RepositoriesHandler(GitBrowseHandler):
    async def get(self, git_id):
        await self.answer(self.browser(git_id).repositories)


class BranchesHandler(GitBrowseHandler):
    async def get(self, git_id, owner, repository):
        await self.answer(self.browser(git_id).branches, owner, repository)


class CommitsHandler(GitBrowseHandler):
    async def get(self, git_id, owner, repository):
        browser = self.browser(git_id)
        branch = self.raw_query_argument("branch") or None
        await self.answer(browser.commits, owner, repository, branch, self.raw_query_argument("page") or None)


class CommitHandler(GitBrowseHandler):
    async def get(self, git_id, owner, repository, commit_id):
        await self.answer(self.browser(git_id).commit, owner, repository, commit_id)


default_handlers = [
    (r"api/v2/git/([^/]+)/repos", RepositoriesHandler),
    (r"api/v2/git/([^/]+)/repos/(.+)/([^/]+)/branches", BranchesHandler),
    (r"api/v2/git/([^/]+)/repos/(.+)/([^/]+)/commits", CommitsHandler),
    (r"api/v2/git/([^/]+)/repos/(.+)/([^/]+)/commits/([^/]+)", CommitHandler),
]
