"""The ``%kqi`` line magic: the ``kqi`` CLI inside a notebook, returning values instead of printing tables.

``%load_ext kqi_services`` registers it. Any ``kqi`` command line works
(``%kqi data list --name cats``, ``%kqi training get 3``) and returns what
the command produced (lists and dicts of the API's JSON, ids), plus three
short forms:

- ``%kqi train …``: ``kqi training create …`` (the same options); the new id.
- ``%kqi wait ID``: prints the log live until the training ends; its final status.
- ``%kqi download ID [DIR]``: the training's ``/kqi/output`` into DIR
  (default ``training-ID``, created if missing); the local paths.

The commands are the CLI's own click commands run in quiet mode, so the
options and behaviour are those of ``kqi``. The client comes from the
environment (``KQI_SERVER`` with ``KQI_TOKEN`` or the notebook's
``JUPYTERHUB_API_TOKEN``, else ``~/.kqi/config.json``).
"""

from __future__ import annotations

import os
import shlex
import sys

import click
from IPython.core.magic import Magics, line_magic, magics_class

from kqi_services.cli import invoke
from kqi_services.cli.output import State
from kqi_services.client import KqiApiError, KqiConfigError


def expand(words: list[str]) -> list[str]:
    """The ``kqi`` command line a ``%kqi`` line stands for (the short forms spelt out)."""
    if not words:
        return ["--help"]
    verb, rest = words[0], words[1:]
    if verb == "train":
        return ["training", "create", *rest]
    if verb == "wait":
        return ["training", "logs", "--follow", *rest]
    if verb == "download" and rest and not rest[0].startswith("-"):
        run_id, rest = rest[0], rest[1:]
        directory = f"training-{run_id}"
        if rest and not rest[0].startswith("-"):
            directory, rest = rest[0], rest[1:]
        os.makedirs(directory, exist_ok=True)
        return ["training", "download-container-files", run_id, "--destination", directory, *rest]
    return words


@magics_class
class KqiMagics(Magics):
    """``%kqi``; :attr:`client` may be set (tests, other servers), else it comes from the environment."""

    client = None

    @line_magic
    def kqi(self, line: str):
        """Run a ``kqi`` command (``%kqi data list``, ``%kqi train -n …``, ``%kqi wait 3``, ``%kqi download 3``)."""
        try:
            args = expand(shlex.split(line))
        except ValueError as e:
            print(f"[ERROR] {e}", file=sys.stderr)
            return None
        state = State(self.client, quiet=True)
        try:
            result = invoke(args, state, prog_name="%kqi")
            return None if {"-h", "--help"} & set(args) else result
        except click.exceptions.Abort:
            print("Aborted!", file=sys.stderr)
        except click.ClickException as e:
            e.show(file=sys.stderr)
        except KqiApiError as e:
            print(f"[ERROR] {e.status} {e.message}" if e.status else f"[ERROR] {e.message}", file=sys.stderr)
        except (KqiConfigError, OSError, ValueError) as e:
            print(f"[ERROR] {e}", file=sys.stderr)
        return None


def load_ipython_extension(ipython) -> None:
    """``%load_ext kqi_services``: register ``%kqi``."""
    ipython.register_magics(KqiMagics)
