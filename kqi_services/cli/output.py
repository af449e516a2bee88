"""What the ``kqi`` commands print: the upstream CLI's tables and key/value trees, ``--json``, tqdm bars.

Every command hands its result to :func:`emit`, which prints it (as the
upstream kamonohashi-cli 4.0.2 would, or as JSON with ``--json``) unless
the invocation is quiet (the ``%kqi`` magics), and returns it unchanged so
the magics get the same value a script would parse.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata

import click
from tqdm import tqdm

json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (machine-readable)")


class State:
    """Per-invocation settings: the client (made on first use) and whether to print results."""

    def __init__(self, client=None, *, quiet: bool = False, progress: bool = True):
        self._client = client
        self.quiet = quiet
        self.progress = progress

    @property
    def client(self):
        if self._client is None:
            from kqi_services.client import KqiClient

            self._client = KqiClient.from_environment()
        return self._client


def state() -> State:
    return click.get_current_context().ensure_object(State)


def emit(result, human=None, as_json: bool = False):
    """Print ``result`` (``human()`` prints it the upstream way; else JSON); return it."""
    if state().quiet:
        return result
    if as_json or human is None:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        human()
    return result


def id_command(group: click.Group, name: str, action, done: str, doc: str) -> click.Command:
    """Add ``NAME ID`` to ``group``: ``action(client, id)``, then print ``{done} {id}``.

    The command returns what the service answered (or the id when it answers nothing).
    """

    @group.command(name, help=doc)
    @click.argument("id", type=int)
    def command(id):
        result = action(state().client, id)
        return emit(id if result is None else result, lambda: click.echo(f"{done} {id}"))

    return command


def read_body(path: str) -> dict:
    """The JSON object of a ``-f/--file`` option; a usage error when the file holds something else."""
    with open(path, encoding="utf-8") as f:
        try:
            body = json.load(f)
        except ValueError as e:
            raise click.BadParameter(f"{path} is not JSON: {e}", param_hint="'-f' / '--file'") from None
    if not isinstance(body, dict):
        raise click.BadParameter(f"{path} holds no JSON object", param_hint="'-f' / '--file'")
    return body


def files_table(result: list) -> None:
    """The upstream ``list-files`` table."""
    pp_table(["file_id", "file_name"], [[x["fileId"], x["fileName"]] for x in result])


def progress_for(name: str):
    """A ``progress(bytes_done, bytes_total)`` that draws one tqdm bar on stderr (None when turned off)."""
    if not state().progress:
        return None
    bar = None

    def update(done: int, total: int | None) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                       dynamic_ncols=True, leave=True)
        bar.update(done - bar.n)
        if total is not None and done >= total:
            bar.close()

    return update


# the upstream printers --------------------------------------------------------------------

def snake(key: str) -> str:
    """``createdAt`` → ``created_at`` (the upstream SDK's attribute names)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower()


def snake_keys(value):
    if isinstance(value, dict):
        return {snake(k): snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snake_keys(v) for v in value]
    return value


def text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(text(x) for x in value)
    return str(value)


def width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in ("F", "W", "A") else 1 for c in s)


def pp_table(header: list, rows: list) -> None:
    """Columns padded to the widest cell (east-Asian wide characters count 2), multi-line cells split."""
    lines = []
    for row in [header] + rows:
        cells = [text(c).splitlines() or [""] for c in row]
        for i in range(max(len(c) for c in cells)):
            lines.append([c[i] if i < len(c) else "" for c in cells])
    widths = [max(width(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        click.echo(" ".join(cell + " " * (w - width(cell)) for cell, w in zip(line, widths, strict=True)))


def _scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def pp_dict(model: dict, level: int = 0) -> None:
    """The upstream ``key: value`` tree, keys in snake_case, nested models indented, lists as ``- ``."""
    for key, value in snake_keys(model).items():
        _pp_key_value("  " * level, key, value, level)


def _pp_key_value(padding: str, key, value, level: int) -> None:
    if isinstance(value, dict):
        click.echo(f"{padding}{key}:")
        pp_dict(value, level + 1)
    elif isinstance(value, list):
        click.echo(f"{padding}{key}:")
        _pp_list(value, level + 1)
    else:
        click.echo(f"{padding}{key}: {_scalar(value)}")


def _pp_list(items: list, level: int) -> None:
    for element in items:
        if isinstance(element, dict):
            padding = "  " * level + "- "
            for key, value in element.items():
                _pp_key_value(padding, key, value, level + 1)
                padding = "  " * (level + 1)
        elif isinstance(element, list):
            _pp_list(element, level + 1)
        else:
            click.echo("  " * level + "- " + _scalar(element))


def show_model(result: dict, as_json: bool, destination: str | None = None):
    """A ``get`` command's output: the tree, ``--json``, or the JSON saved to ``destination``."""
    if destination:
        with open(destination, "w", encoding="utf-8") as f:
            json.dump(result, f, ensure_ascii=False, indent=2)
        return emit(result, lambda: click.echo(f"save {result.get('id')} as {destination}"))
    return emit(result, lambda: pp_dict(result), as_json)
