"""``kqi notebook``: upstream's ``halt``, plus list, get, endpoint, delete of notebook records."""

from __future__ import annotations

import click

from .output import emit, id_command, json_option, pp_table, show_model, state


@click.group()
def notebook():
    """Create and manage KAMONOHASHI notebook"""


@notebook.command("list")
@click.option("--count", type=click.IntRange(1, 10000), default=1000, show_default=True,
              help="Maximum number of notebooks to list")
@click.option("--id", help="id")
@click.option("--name", help="name")
@click.option("--created-at", help="created at")
@click.option("--created-by", help="created by")
@click.option("--memo", help="memo")
@click.option("--status", help="status")
@json_option
def list_notebooks(count, id, name, created_at, created_by, memo, status, as_json):
    """List notebooks filtered by conditions"""
    result = state().client.notebooks.list(count=count, id=id, name=name, created_at=created_at,
                                           created_by=created_by, memo=memo, status=status)
    return emit(result, lambda: pp_table(["id", "name", "created_at", "created_by", "memo", "status"],
                                         [[x["id"], x["name"], x.get("createdAt"), x.get("createdBy"),
                                           x.get("memo"), x.get("status")] for x in result]), as_json)


@notebook.command()
@click.argument("id", type=int)
@json_option
def get(id, as_json):
    """Get details of a notebook"""
    return show_model(state().client.notebooks.get(id), as_json)


@notebook.command()
@click.argument("id", type=int)
@json_option
def endpoint(id, as_json):
    """Get the endpoint of a running notebook"""
    return show_model(state().client.notebooks.endpoint(id), as_json)


halt = id_command(notebook, "halt", lambda c, id: c.notebooks.halt(id), "halted", "Halt notebook")
delete = id_command(notebook, "delete", lambda c, id: c.notebooks.delete(id), "deleted", "Delete a notebook record")
