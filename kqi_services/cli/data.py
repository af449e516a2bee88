"""``kqi data``: list, get, create, update, delete, and the files of data (upstream's commands)."""

from __future__ import annotations

import click

from .output import emit, files_table, id_command, json_option, pp_table, progress_for, show_model, state

MAX_FILES_PER_DATA = 10000

count_option = click.option("--count", type=click.IntRange(1, 10000), default=1000, show_default=True,
                            help="Maximum number of data to list")
destination_option = click.option("-d", "--destination", type=click.Path(dir_okay=False),
                                  help="A file path of the output as a json file")


def check_upload_files(file_count: int) -> None:
    if file_count > MAX_FILES_PER_DATA:
        raise click.UsageError(f"Maximum number of files per data is {MAX_FILES_PER_DATA}.")


@click.group()
def data():
    """Create and manage KAMONOHASHI data"""


@data.command("list")
@count_option
@click.option("--id", help="id")
@click.option("--name", help="name")
@click.option("--memo", help="memo")
@click.option("--created-at", help="created at")
@click.option("--created-by", help="created by")
@click.option("--tag", multiple=True, help="tag  [multiple]")
@json_option
def list_data(count, id, name, memo, created_at, created_by, tag, as_json):
    """List data filtered by conditions"""
    result = state().client.data.list(count=count, id=id, name=name, memo=memo, created_at=created_at,
                                      created_by=created_by, tags=tag)
    return emit(result, lambda: pp_table(["id", "name", "created_at", "created_by", "memo", "tags"],
                                         [[x["id"], x["name"], x.get("createdAt"), x.get("createdBy"),
                                           x.get("memo"), x.get("tags")] for x in result]), as_json)


@data.command()
@click.argument("id", type=int)
@destination_option
@json_option
def get(id, destination, as_json):
    """Get details of data"""
    return show_model(state().client.data.get(id), as_json, destination)


@data.command()
@click.option("-n", "--name", required=True, help="A name of the data")
@click.option("-f", "--file", type=click.Path(exists=True, dir_okay=False), required=True, multiple=True,
              help="A file path you want to upload  [multiple]")
@click.option("-m", "--memo", help="Free text that can helpful to explain the data")
@click.option("-t", "--tags", multiple=True, help="Attributes to the data  [multiple]")
def create(name, file, memo, tags):
    """Create new data"""
    client = state().client
    check_upload_files(len(file))
    result = client.data.create(name, memo=memo, tags=tags)
    client.data.upload_files(result["id"], file, progress_for=progress_for)
    emit(result, lambda: click.echo(f"created {result['id']}"))
    return result["id"]


@data.command()
@click.argument("id", type=int)
@click.option("-n", "--name", help="A name of the data")
@click.option("-m", "--memo", help="Free text that can helpful to explain the data")
@click.option("-t", "--tags", multiple=True, help="Attributes to the data  [multiple]")
def update(id, name, memo, tags):
    """Update data"""
    result = state().client.data.update(id, name=name, memo=memo, tags=tags or None)  # no -t: the tags stay
    return emit(result, lambda: click.echo(f"updated {result['id']}"))


delete = id_command(data, "delete", lambda c, id: c.data.delete(id), "deleted", "Delete data")


@data.command("list-files")
@click.argument("id", type=int)
@json_option
def list_files(id, as_json):
    """List files of data"""
    result = state().client.data.files(id)
    return emit(result, lambda: files_table(result), as_json)


@data.command("download-files")
@click.argument("id", type=int)
@click.option("-d", "--destination", type=click.Path(exists=True, file_okay=False), required=True,
              help="A path to the output files")
def download_files(id, destination):
    """Download files of data"""
    paths = state().client.data.download_files(id, destination, progress_for=progress_for)
    return emit(paths, lambda: None)


@data.command("upload-files")
@click.argument("id", type=int)
@click.option("-f", "--file", type=click.Path(exists=True, dir_okay=False), required=True, multiple=True,
              help="A file path you want to upload  [multiple]")
def upload_files(id, file):
    """Upload files to data"""
    client = state().client
    check_upload_files(len(client.data.files(id)) + len(file))
    result = client.data.upload_files(id, file, progress_for=progress_for)
    return emit(result, lambda: None)


@data.command("delete-file")
@click.argument("id", type=int)
@click.option("-f", "--file-id", type=int, required=True, help="A file id you want to delete")
def delete_file(id, file_id):
    """Delete a file of data"""
    state().client.data.delete_file(id, file_id)
    return emit(file_id, lambda: click.echo(f"deleted {file_id}"))
