"""Commands of runs in their own images: the platform's tools installed at start, only when missing, offline.

The container executor runs a command with nothing from the image but a
shell (clone and staging happen outside). As the guide describes, the
``kqi`` CLI is there for the run to use, and a notebook's image gets
JupyterLab and the hub's single-user server: each is installed at start
*only when the image lacks it*, with the image's own ``python3 -m pip``,
from the platform's wheels (``kqi_services/wheelhouse.py``, served at
``{KQI_SERVER}/wheels/simple/``) — no internet needed. The guide's caveat
stays: a notebook image needs python3 and pip; an image without them gets
a log line that says so. A job's command runs whatever the install did (the
CLI is a convenience); a notebook whose server cannot be installed ends
with the reason in its log.

These are pure functions of strings (golden-tested); nothing here runs.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from ..wheelhouse import CLIENT_PROJECTS, NOTEBOOK_PROJECTS, PLATFORM_PROJECT, pinned

#: the variable holding the index URL inside the run (set only for the install, not the user's pip)
INDEX_VARIABLE = "KQI_WHEEL_INDEX"
PIP = ('python3 -m pip install --disable-pip-version-check --no-input --progress-bar off --quiet '
       '--root-user-action=ignore --index-url "$' + INDEX_VARIABLE + '"')


@dataclass(frozen=True)
class ImageTools:
    """How runs in images get the platform's tools.

    Attributes:
        index_url: the PEP 503 index as the run reaches it (``{KQI_SERVER}/wheels/simple/``).
        install: False leaves images as they are (the command runs alone).
        notebook_requirements: the notebook server's pins (this platform's JupyterHub and JupyterLab).
        client_requirements: the CLI's libraries.
        platform_requirement: this platform's package (installed without its server-side dependencies).
    """

    index_url: str
    install: bool = True
    notebook_requirements: tuple[str, ...] = tuple(pinned(NOTEBOOK_PROJECTS))
    client_requirements: tuple[str, ...] = tuple(pinned(CLIENT_PROJECTS))
    platform_requirement: str = pinned((PLATFORM_PROJECT,))[0]

    @classmethod
    def for_server(cls, server_url: str, install: bool = True) -> ImageTools:
        return cls(server_url.rstrip("/") + "/wheels/simple/", install)

    def _install(self, requirements: tuple[str, ...]) -> str:
        """Install ``requirements`` and then this platform's package without dependencies (two pip calls)."""
        return (f"{INDEX_VARIABLE}={shlex.quote(self.index_url)} && export {INDEX_VARIABLE} && "
                f"{PIP} {shlex.join(requirements)} && {PIP} --no-deps {shlex.quote(self.platform_requirement)}")

    def job_command(self, command: str) -> str:
        """A job's command, after installing the kqi CLI when the image has python3 with pip but no ``kqi``.

        The install runs in a subshell: nothing of it stays in the command's shell.
        """
        if not self.install:
            return command
        prelude = ("if ! command -v kqi >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then ("
                   "echo '[kqi] installing the kqi CLI from the platform'\"'\"'s wheels' && "
                   f"{self._install(self.client_requirements)} >/dev/null"
                   " || echo '[kqi] the kqi CLI could not be installed; the command runs without it'); fi")
        return f"{prelude}\n{command}"

    def notebook_server(self, cmd: list[str]) -> list[str]:
        """The single-user server's command in an image: the image's python runs the hub's server module.

        ``cmd`` is the spawner's (this host's ``jupyterhub-singleuser`` and its arguments); the image has its
        own, found by its python3 wherever pip put it. The server runs as root there (``--allow-root``).
        """
        args = list(cmd[1:])
        if "--allow-root" not in args:
            args.insert(0, "--allow-root")
        return ["python3", "-m", "jupyterhub.singleuser", *args]

    def notebook_prelude(self) -> str:
        """Install JupyterLab, the hub's single-user server and the kqi CLI when the image lacks them.

        A notebook needs python3 with pip; without them, or when the install fails, the server cannot
        start: the log says why and the run ends (its status is the exit code).
        """
        check = "import jupyterhub.singleuser, jupyterlab, kqi_services.labserver, click, requests, tqdm"
        if not self.install:
            return (f"python3 -c {shlex.quote(check)} 2>/dev/null || "
                    "echo '[kqi] this image lacks JupyterLab or the hub'\"'\"'s single-user server "
                    "(installing them is turned off)'")
        return "\n".join([
            f"if ! python3 -c {shlex.quote(check)} >/dev/null 2>&1; then",
            "  if ! python3 -m pip --version >/dev/null 2>&1; then",
            "    echo '[kqi] a notebook image needs python3 and pip: this image has no python3 -m pip'; exit 127",
            "  fi",
            "  echo '[kqi] installing JupyterLab, the hub'\"'\"'s single-user server and the kqi CLI "
            "from the platform'\"'\"'s wheels'",
            f"  ({self._install(self.notebook_requirements + self.client_requirements)}) || "
            "{ echo '[kqi] installing the notebook server failed (above)'; exit 1; }",
            "  echo '[kqi] installed'",
            "fi",
        ])
