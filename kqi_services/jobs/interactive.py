"""What differs for interactive runs (notebooks): the spawner's request, the command, the workspace.

A notebook is a run of the ``notebook`` kind that JupyterHub's spawner asks
for: it sends the single-user server's command, environment (its hub token,
OAuth client, URLs) and port, which live only in memory here (the token is
a secret) until the engine starts the run. The run's JupyterLab opens in
``/kqi/output``, which keeps its files across halts and reruns and holds
links to the other ``/kqi`` directories, as the guide describes.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field

#: links in /kqi/output (JupyterLab's root) to the directories a notebook gets afresh at each start
WORKSPACE_LINKS = {"input": "/kqi/input", "git": "/kqi/git", "parent": "/kqi/parent"}

#: variables of the spawner's environment a notebook keeps (the rest is the run's own environment)
SPAWNER_VARIABLE_PREFIXES = ("JUPYTERHUB_", "JPY_", "JUPYTER_")


@dataclass
class SpawnRequest:
    """A spawner's request to start a notebook's server.

    Attributes:
        cmd: the single-user server's command and arguments.
        env: the spawner's environment (JUPYTERHUB_API_TOKEN and the other JUPYTERHUB_* variables).
        port: the port the server listens on (the host network is shared).
        run_here: start it with this service's executor (the local flavour);
            False when the spawner runs the prepared spec itself (Kubernetes).
        spec: the prepared spec, for a spawner that runs it itself.
        stopping_by_hub: the hub asked to stop it (it need not be told when it ends).
    """

    cmd: list[str]
    env: dict[str, str]
    port: int
    run_here: bool = True
    spec: dict | None = field(default=None, repr=False)
    stopping_by_hub: bool = False

    @property
    def server_token(self) -> str:
        return self.env.get("JUPYTERHUB_API_TOKEN", "")


#: every kernel of a notebook loads the %kqi magics (HOME is fresh at each start)
PRELOAD_MAGICS = ('mkdir -p "$HOME/.ipython/profile_default" && '
                  'echo "c.InteractiveShellApp.extensions = [\'kqi_services\']" '
                  '> "$HOME/.ipython/profile_default/ipython_kernel_config.py"')


def notebook_command(entry_point: str, cmd: list[str], prelude: str = "") -> str:
    """The shell command of a notebook: ``prelude`` (installing the server in an image), the magics preloaded,
    its startup script (if any), then the server."""
    lines = [prelude] if prelude else []
    lines.append(PRELOAD_MAGICS)
    if entry_point and entry_point.strip():
        lines.append(entry_point)
    lines.append("exec " + shlex.join(cmd))
    return "\n".join(lines)


def notebook_path(cmd: list[str], default: str) -> str:
    """PATH inside a notebook: the server's own bin directory first (the kqi CLI, jupyter, pip)."""
    if cmd and os.path.isabs(cmd[0]):
        return f"{os.path.dirname(cmd[0])}:{default}"
    return default


def spawner_variables(env: dict[str, str]) -> dict[str, str]:
    """The variables of the spawner's environment the server needs."""
    return {k: v for k, v in env.items() if k.startswith(SPAWNER_VARIABLE_PREFIXES) and isinstance(v, str)}


def link_workspace(output_dir: str) -> None:
    """Make input/, git/ and parent/ in JupyterLab's root point at the fresh /kqi directories.

    A user's own file or directory of the same name is left alone.
    """
    for name, target in WORKSPACE_LINKS.items():
        path = os.path.join(output_dir, name)
        if os.path.islink(path):
            if os.readlink(path) == target:
                continue
            os.unlink(path)
        elif os.path.exists(path):
            continue
        os.symlink(target, path)


def software_paths() -> tuple[str, ...]:
    """Host paths a notebook's server needs read-only at the same place: this Python and its environment, this package.

    Paths under ``/usr`` are in every sandbox already.
    """
    import kqi_services

    package = os.path.dirname(os.path.abspath(kqi_services.__file__))
    paths: list[str] = []
    interpreter_home = os.path.realpath(sys.base_prefix)  # a venv's python links into it (pyenv, conda)
    for path in (interpreter_home, os.path.realpath(sys.prefix), os.path.abspath(sys.prefix), package):
        if path.startswith("/usr/") or not os.path.isdir(path):
            continue
        if not any(path == p or path.startswith(p + "/") for p in paths):
            paths.append(path)
    return tuple(paths)
