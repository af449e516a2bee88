"""The ``%kqi`` line magic: the ``kqi`` CLI inside a notebook, returning values instead of printing tables.

``%load_ext kqi_services`` registers it. Any ``kqi`` command line works
(``%kqi data list --name cats``, ``%kqi training get 3``) and returns what
the command produced (lists and dicts of the API's JSON, ids), plus these
short forms:

- ``%kqi train …``: ``kqi training create …`` (the same options); the new id.
- ``%kqi wait ID``: prints the log live until the training ends; its final status.
- ``%kqi download ID [DIR]``: the training's ``/kqi/output`` into DIR
  (default ``training-ID``, created if missing); the local paths.
- ``%kqi infer [--wait] …``: ``kqi inference create …``; the new id. With
  ``--wait`` it prints the log live until the inference ends and returns its
  ``outputValue`` (the first line of its ``/kqi/output/value.txt``, else None).
- ``%kqi preprocess [--wait] ID -did DATA [-did DATA …] -c 1 -mem 1 -g 0``:
  ``kqi preprocessing run …``; the new histories' run ids. With ``--wait`` it
  prints each history's log live until it ends and returns the ids of the data
  they produced (in ``-did`` order).

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
    if verb == "infer":
        return ["inference", "create", *rest]
    if verb == "preprocess":
        return ["preprocessing", "run", *rest]
    if verb == "wait":
        return ["training", "log", "--follow", *rest]
    if verb == "download" and rest and not rest[0].startswith("-"):
        run_id, rest = rest[0], rest[1:]
        directory = f"training-{run_id}"
        if rest and not rest[0].startswith("-"):
            directory, rest = rest[0], rest[1:]
        os.makedirs(directory, exist_ok=True)
        return ["training", "download-container-files", run_id, "--destination", directory, *rest]
    return words


def run_line(words: list[str], state: State):
    """What a ``%kqi`` line returns: its command's result, or what a short form makes of it."""

    def run(args):
        return invoke(args, state, prog_name="%kqi")

    verb = words[0] if words else None
    wait = verb in ("infer", "preprocess") and "--wait" in words
    args = expand([w for w in words if w != "--wait"] if wait else words)
    result = run(args)
    if {"-h", "--help"} & set(args):
        return None
    if verb == "infer" and wait:
        run(["inference", "log", "--follow", str(result)])
        return run(["inference", "get", str(result)]).get("outputValue")
    if verb == "preprocess" and not wait:
        return [h["runId"] for h in result]
    if verb == "preprocess":
        for h in result:
            run(["preprocessing", "log", str(h["preprocessId"]), "--data-id", str(h["dataId"]), "--follow"])
        ended = {h["dataId"]: h for h in run(["preprocessing", "list-histories", str(result[0]["preprocessId"])])}
        return [data_id for h in result for data_id in ended[h["dataId"]].get("outputDataIds") or []]
    return result


@magics_class
class KqiMagics(Magics):
    """``%kqi``; :attr:`client` may be set (tests, other servers), else it comes from the environment."""

    client = None

    @line_magic
    def kqi(self, line: str):
        """Run a ``kqi`` command: ``%kqi data list``, ``%kqi training get 3``, or a short form.

        Short forms: ``%kqi train …`` (the new training's id), ``%kqi wait ID``
        (the log live; the final status), ``%kqi download ID [DIR]`` (the
        training's /kqi/output; the local paths), ``%kqi infer [--wait] …``
        (the inference's id; with --wait, the log live and its outputValue),
        ``%kqi preprocess [--wait] ID -did DATA … -c 1 -mem 1 -g 0`` (the
        histories' run ids; with --wait, the logs live and the produced data ids).
        """
        try:
            words = shlex.split(line)
        except ValueError as e:
            print(f"[ERROR] {e}", file=sys.stderr)
            return None
        state = State(self.client, quiet=True)
        try:
            return run_line(words, state)
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
