"""The platform's wheels as a PEP 503 simple index, for pip inside container images (no token needed).

``GET wheels/simple/`` lists the projects, ``wheels/simple/{project}/`` the
files of one (with their SHA-256, which pip checks), ``wheels/files/{file}``
sends one. They are open-source packages and this platform's own wheel —
nothing of a tenant — so runs fetch them without credentials (a token in an
index URL would show on pip's command line and in its logs). Only files of
the wheelhouse directory (``KqiService.wheelhouse_dir``, built by ``make
setup``; ``kqi_services/wheelhouse.py``) are ever sent.
"""

from __future__ import annotations

import html
import os
from urllib.parse import quote

from kqi_services.errors import NotFound
from kqi_services.wheelhouse import Wheelhouse, normalized

from .base import APIHandler
from .files import FileSender, sha256_of

INDEX_PAGE = "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\"><title>{title}</title>" \
             "</head><body>\n{links}\n</body></html>\n"


class WheelIndexBase(APIHandler):
    auth_required = False

    @property
    def wheelhouse(self) -> Wheelhouse:
        return Wheelhouse(self.settings["kqi"].wheelhouse_dir)

    def write_page(self, title: str, links: list[str]) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(INDEX_PAGE.format(title=html.escape(title), links="\n".join(links)))


class ProjectListHandler(WheelIndexBase):
    """``wheels/simple/``: every project of the wheelhouse."""

    def get(self):
        links = [f'<a href="{quote(p)}/">{html.escape(p)}</a><br>' for p in sorted(self.wheelhouse.projects())]
        self.write_page("Simple index", links)


class ProjectHandler(WheelIndexBase):
    """``wheels/simple/{project}/``: its files, linked with their SHA-256."""

    def get(self, project):
        name = normalized(project)
        if name != project:  # PEP 503: redirect to the normalised name
            self.redirect(f"../{quote(name)}/", permanent=True)
            return
        files = self.wheelhouse.projects().get(name)
        if not files:
            raise NotFound(f"The platform's wheels hold no project {project!r}")
        root = self.wheelhouse.root
        links = [f'<a href="../../files/{quote(f)}#sha256={sha256_of(os.path.join(root, f))}">{html.escape(f)}</a><br>'
                 for f in files]
        self.write_page(f"Links for {name}", links)


class WheelFileHandler(FileSender, WheelIndexBase):
    """``wheels/files/{file}``: one file of the wheelhouse."""

    async def get(self, file_name):
        path = self.wheelhouse.path_of(file_name)
        if path is None:
            raise NotFound(f"The platform's wheels hold no file {file_name!r}")
        self.set_header("Cache-Control", "public, max-age=3600")
        span = self.file_headers(path, file_name)
        if span is not None:
            await self.send_file(path, *span)


default_handlers = [
    (r"wheels/simple/?", ProjectListHandler),
    (r"wheels/simple/([^/]+)/?", ProjectHandler),
    (r"wheels/files/([^/]+)", WheelFileHandler),
]
