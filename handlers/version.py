"""GET /api/v2/version: the platform's version, without a token."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import jupyterhub

from .base import APIHandler


def platform_version() -> str:
    try:
        return version("kqi-hub")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


class VersionHandler(APIHandler):
    auth_required = False

    def get(self):
        self.write_json({
            "version": platform_version(),
            "messages": [],
            # added
            "jupyterhub": jupyterhub.__version__,
            "apiVersion": "v2",
        })


default_handlers = [(r"api/v2/version", VersionHandler)]
