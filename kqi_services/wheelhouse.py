"""The platform's own wheels: what a run in a container image installs without the internet.

A run in its own image (the container executor) needs nothing from the image
but a shell; where the image has python3 with pip but lacks them, the ``kqi``
CLI and, for a notebook, JupyterLab and the hub's single-user server are
installed at its start from these wheels (``jobs/imagetools.py`` writes the
commands). ``make setup`` builds the wheelhouse once::

    python -m kqi_services.wheelhouse build --constraints requirements.lock DIR

— the wheels of JupyterHub, JupyterLab and the CLI's libraries at the
versions this platform runs (``pip wheel``, so an sdist-only dependency is
built here, not in the image), and this package's own wheel. The kqi
service serves ``DIR`` as a PEP 503 simple index (``handlers/wheels.py``) at
``{KQI_SERVER}/wheels/simple/``, which a run reaches through its relay.

Wheels with compiled parts are this host's (its Python version and
platform): an image whose python differs gets the pure-Python ones from here
and needs the rest from its own network.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

#: what a notebook's server needs in the image, besides the CLI (pinned to this platform's versions)
NOTEBOOK_PROJECTS = ("jupyterhub", "jupyterlab")
#: what the kqi CLI and the %kqi magics import (the platform's own package is installed without its
#: server-side dependencies)
CLIENT_PROJECTS = ("click", "requests", "tqdm")
#: this platform's distribution
PLATFORM_PROJECT = "kqi-hub"

FILE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+!-]*\.(whl|tar\.gz|zip)$")


def normalized(name: str) -> str:
    """PEP 503's normalised project name (``Jupyter_Server`` → ``jupyter-server``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project_of(file_name: str) -> str:
    """The normalised project a distribution file belongs to (a wheel's or sdist's name part)."""
    if file_name.endswith(".whl"):
        return normalized(file_name.split("-")[0])
    stem = re.sub(r"\.(tar\.gz|zip)$", "", file_name)
    return normalized(stem.rsplit("-", 1)[0])


def pinned(projects: tuple[str, ...]) -> list[str]:
    """``name==version`` of each project as installed here (the wheelhouse holds these versions)."""
    pins = []
    for project in projects:
        try:
            pins.append(f"{project}=={version(project)}")
        except PackageNotFoundError:
            pins.append(project)
    return pins


@dataclass(frozen=True)
class Wheelhouse:
    """A directory of distribution files, read as a PEP 503 index."""

    root: str

    def files(self) -> list[str]:
        """The distribution files, sorted; other entries are ignored."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if FILE_PATTERN.match(n) and os.path.isfile(os.path.join(self.root, n)))

    def projects(self) -> dict[str, list[str]]:
        """Normalised project name → its files."""
        found: dict[str, list[str]] = {}
        for name in self.files():
            found.setdefault(project_of(name), []).append(name)
        return found

    def path_of(self, file_name: str) -> str | None:
        """The file's path when it is one of this wheelhouse's files (never anything else)."""
        if not FILE_PATTERN.match(file_name) or file_name not in self.files():
            return None
        return os.path.join(self.root, file_name)

    def has_platform_wheel(self) -> bool:
        return normalized(PLATFORM_PROJECT) in self.projects()


def default_root() -> str:
    """Where ``make setup`` builds it: ``share/kqi-hub/wheels`` of this Python environment."""
    return os.path.join(sys.prefix, "share", "kqi-hub", "wheels")


def build(root: str, project_dir: str, constraints: str | None = None) -> list[str]:
    """Build the wheelhouse: the notebook's and the CLI's wheels with their dependencies, and this package's.

    Returns the files it holds. Files of earlier builds of this package are replaced.
    """
    os.makedirs(root, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--wheel-dir", root]
    constraint_args = ["--constraint", constraints] if constraints else []
    subprocess.run([*pip, *constraint_args, *pinned(NOTEBOOK_PROJECTS + CLIENT_PROJECTS)], check=True)
    for old in Wheelhouse(root).projects().get(normalized(PLATFORM_PROJECT), []):
        os.unlink(os.path.join(root, old))
    subprocess.run([*pip, "--no-deps", project_dir], check=True)
    return Wheelhouse(root).files()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kqi_services.wheelhouse", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_command = commands.add_parser("build", help="build the wheelhouse (needs the package index once)")
    build_command.add_argument("root", nargs="?", default=default_root())
    build_command.add_argument("--project", default=".", help="this platform's source tree")
    build_command.add_argument("--constraints", help="a pip constraints file (requirements.lock)")
    args = parser.parse_args(argv)
    files = build(args.root, args.project, args.constraints)
    print(f"{len(files)} distribution files in {args.root}")


if __name__ == "__main__":
    main()
