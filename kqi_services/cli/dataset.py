"""``kqi dataset``: list, get, create/update from a JSON file, update-meta-info, delete, files."""

from __future__ import annotations

import click

from .data import count_option, destination_option
from .output import emit, id_command, json_option, pp_table, progress_for, read_body, show_model, state

BODY_HELP = """{
  "name": @name,
  "memo": @memo,
  "entries": {
    "training": [{"id": @dataId}],
    "validation": [{"id": @dataId}],
    "testing": [{"id": @dataId}]
  }
}"""


@click.group()
def data_set():
    """Create and manage KAMONOHASHI datasets"""


@data_set.command("list")
@count_option
@click.option("--id", help="id")
@click.option("--name", help="name")
@click.option("--memo", help="memo")
@click.option("--created-at", help="created at")
@json_option
def list_datasets(count, id, name, memo, created_at, as_json):
    """List datasets filtered by conditions"""
    result = state().client.datasets.list(count=count, id=id, name=name, memo=memo, created_at=created_at)
    return emit(result, lambda: pp_table(["id", "name", "created_at", "memo"],
                                         [[x["id"], x["name"], x.get("createdAt"), x.get("memo")] for x in result]),
                as_json)


@data_set.command()
@click.argument("id", type=int)
@destination_option
@json_option
def get(id, destination, as_json):
    """Get details of a detaset"""
    return show_model(state().client.datasets.get(id), as_json, destination)


@data_set.command()
@click.option("-f", "--file", required=True, type=click.Path(exists=True, dir_okay=False), help=BODY_HELP)
def create(file):
    """Create a new dataset"""
    result = state().client.datasets.create(read_body(file))
    emit(result, lambda: click.echo(f"created {result['id']}"))
    return result["id"]


@data_set.command()
@click.argument("id", type=int)
@click.option("-f", "--file", required=True, type=click.Path(exists=True, dir_okay=False), help=BODY_HELP)
def update(id, file):
    """Update a dataset"""
    result = state().client.datasets.update(id, read_body(file))
    return emit(result, lambda: click.echo(f"updated {result['id']}"))


@data_set.command("update-meta-info")
@click.argument("id", type=int)
@click.option("-n", "--name", help="A new name")
@click.option("-m", "--memo", help="A new memo")
def update_meta_info(id, name, memo):
    """Update meta information of a dataset"""
    result = state().client.datasets.update_meta_info(id, name=name, memo=memo)
    return emit(result, lambda: click.echo(f"meta-info updated {result['id']}"))


delete = id_command(data_set, "delete", lambda c, id: c.datasets.delete(id), "deleted", "Delete a dataset")


@data_set.command("download-files")
@click.argument("id", type=int)
@click.option("-d", "--destination", type=click.Path(exists=True, file_okay=False), required=True,
              help="An output directory path")
@click.option("-t", "--type", "data_type", type=click.Choice(["training", "testing", "validation"]), multiple=True,
              help="A data type to download  [multiple]")
def download_files(id, destination, data_type):
    """Download files of a dataset"""
    paths = state().client.datasets.download_files(id, destination, types=data_type, progress_for=progress_for)
    return emit(paths, lambda: None)


@data_set.command("list-path-pairs")
@click.argument("id", type=int)
@json_option
def list_path_pairs(id, as_json):
    """List path pairs of a dataset"""
    result = state().client.datasets.path_pairs(id)

    def human():
        for x in result:
            click.echo(repr(x["dataPath"])[1:-1])
            click.echo(repr(x["storedPath"])[1:-1])

    return emit(result, human, as_json)


@data_set.command("list-data-types")
@json_option
def list_data_types(as_json):
    """List data types of a dataset"""
    result = state().client.datasets.data_types()
    return emit(result, lambda: [click.echo(x["name"]) for x in result], as_json)
