"""``kqi preprocessing``: upstream's commands, plus ``--json``, upload bars and ``log [-f]`` of a history.

A preprocessing is a definition; each run of it on one input data is a
history, named ``{preprocessId}.{dataId}`` as upstream prints it. ``run``
takes several ``-did`` and sends them in one request, so every history is
made or none is (upstream makes one at a time and stops at the first error).
"""

from __future__ import annotations

import click

from kqi_services.client import Preprocessings

from .data import count_option, destination_option
from .output import emit, id_command, json_option, pp_table, progress_for, read_body, show_model, state
from .runs import print_log

BODY_HELP = """{
  "name": @name,
  "entryPoint": @entryPoint,
  "containerImage": {
    "registryId": @registryId,
    "image": @image,
    "tag": @tag
  },
  "gitModel": {
    "gitId": @gitId,
    "repository": @repository,
    "owner": @owner,
    "branch": @branch,
    "commitId": @commitId
  },
  "memo": @memo,
  "cpu": @cpu,
  "memory": @memory,
  "gpu": @gpu
}"""

data_id_option = click.option("-did", "--data-id", type=int, required=True, help="A source data id")


def preprocessings() -> Preprocessings:
    return state().client.preprocessings


def history_name(history: dict) -> str:
    return f"{history['preprocessId']}.{history['dataId']}"


@click.group()
def preprocessing():
    """Create and manage KAMONOHASHI preprocessings"""


@preprocessing.command("list")
@count_option
@click.option("--id", help="id")
@click.option("--name", help="name")
@click.option("--created-at", help="created at")
@click.option("--memo", help="memo")
@json_option
def list_preprocessings(count, id, name, created_at, memo, as_json):
    """List preprocessings filtered by conditions"""
    result = preprocessings().list(count=count, id=id, name=name, memo=memo, created_at=created_at)
    return emit(result, lambda: pp_table(["id", "name", "created_at", "memo"],
                                         [[x["id"], x["name"], x.get("createdAt"), x.get("memo")] for x in result]),
                as_json)


@preprocessing.command()
@click.argument("id", type=int)
@destination_option
@json_option
def get(id, destination, as_json):
    """Get details of a preprocessing"""
    return show_model(preprocessings().get(id), as_json, destination)


@preprocessing.command()
@click.option("-f", "--file", required=True, type=click.Path(exists=True, dir_okay=False), help=BODY_HELP)
@json_option
def create(file, as_json):
    """Create a new preprocessing"""
    result = preprocessings().create(read_body(file))
    emit(result, lambda: click.echo(f"created {result['id']}"), as_json)
    return result["id"]


@preprocessing.command()
@click.argument("id", type=int)
@click.option("-f", "--file", required=True, type=click.Path(exists=True, dir_okay=False), help=BODY_HELP)
def update(id, file):
    """Update a preprocessing"""
    result = preprocessings().update(id, read_body(file))
    return emit(result, lambda: click.echo(f"updated {result['id']}"))


@preprocessing.command("update-meta-info")
@click.argument("id", type=int)
@click.option("-n", "--name", help="A name to update")
@click.option("-m", "--memo", help="A memo to update")
@click.option("-c", "--cpu", type=int, help="A cpu to update")
@click.option("-mem", "--memory", type=int, help="A memory to update")
@click.option("-g", "--gpu", type=int, help="A gpu to update")
def update_meta_info(id, name, memo, cpu, memory, gpu):
    """Update meta information of a preprocessing"""
    result = preprocessings().update_meta_info(id, name=name, memo=memo, cpu=cpu, memory=memory, gpu=gpu)
    return emit(result, lambda: click.echo(f"meta-info updated {result['id']}"))


delete = id_command(preprocessing, "delete", lambda c, id: c.preprocessings.delete(id), "deleted",
                    "Delete a preprocessing")


@preprocessing.command(short_help="Run a preprocessing")
@click.argument("id", type=int)
@click.option("-did", "--data-id", type=int, required=True, multiple=True, help="A source data id  [multiple]")
@click.option("-c", "--cpu", type=int, required=True, help="A number of core you want to assign to this preprocessing")
@click.option("-mem", "--memory", type=int, required=True,
              help="How much memory(GB) you want to assign to this preprocessing")
@click.option("-g", "--gpu", type=int, required=True, help="A number of GPUs you want to assign to this preprocessing")
@click.option("-p", "--partition",
              help="A cluster partition. Partition is an arbitrary string but typically is a type of GPU or cluster.")
@click.option("-o", "--options", type=(str, str), multiple=True,
              help="Options of this preprocessing. The options are stored in the environment variables  [multiple]")
@json_option
def run(id, data_id, cpu, memory, gpu, partition, options, as_json):
    """Run a preprocessing on each source data (all the histories are made, or none)"""
    result = preprocessings().run(id, data_id, cpu=cpu, memory=memory, gpu=gpu, partition=partition,
                                  options=options)
    return emit(result, lambda: [click.echo(f"started {history_name(x)}") for x in result], as_json)


@preprocessing.command("list-histories")
@click.argument("id", type=int)
@json_option
def list_histories(id, as_json):
    """List histories of a preprocessing"""
    result = preprocessings().histories(id)
    return emit(result, lambda: pp_table(["data_id", "data_name", "created_at", "status"],
                                         [[x["dataId"], x.get("dataName"), x.get("createdAt"), x.get("status")]
                                          for x in result]), as_json)


build_options = [
    data_id_option,
    click.option("-s", "--source", type=click.Path(exists=True, file_okay=False), required=True,
                 help="A directory path to the processed data"),
    click.option("-m", "--memo", help="Free text that can helpful to explain the data"),
    click.option("-t", "--tags", multiple=True, help="Attributes to the data  [multiple]"),
]


def _build(id, data_id, source, memo, tags, existing: bool) -> dict:
    return preprocessings().build_history(id, data_id, source, memo=memo, tags=tags, existing=existing,
                                          progress_for=progress_for)


def with_build_options(f):
    for option in reversed(build_options):
        f = option(f)
    return f


@preprocessing.command("build-history", short_help="Build history structure of a preprocessing")
@click.argument("id", type=int)
@with_build_options
def build_history(id, data_id, source, memo, tags):
    """Build history structure of a preprocessing (each directory of the source becomes one data)"""
    result = _build(id, data_id, source, memo, tags, existing=False)
    return emit(result, lambda: click.echo(f"built {history_name(result)}"))


@preprocessing.command("build-history-files")
@click.argument("id", type=int)
@with_build_options
def build_history_files(id, data_id, source, memo, tags):
    """Build file structure for existing history"""
    result = _build(id, data_id, source, memo, tags, existing=True)
    return emit(result, lambda: None)


@preprocessing.command("delete-history", short_help="Delete a history of a preprocessing")
@click.argument("id", type=int)
@data_id_option
def delete_history(id, data_id):
    """Delete a history of a preprocessing (and the data it made)"""
    made = preprocessings().delete_history(id, data_id)
    also = f" and the data it made: {', '.join(map(str, made))}" if made else ""
    return emit({"history": f"{id}.{data_id}", "deletedDataIds": made},
                lambda: click.echo(f"deleted {id}.{data_id}{also}"))


@preprocessing.command("halt-history")
@click.argument("id", type=int)
@data_id_option
def halt_history(id, data_id):
    """Halt a preprocessing of a history"""
    result = preprocessings().halt_history(id, data_id)
    return emit(result, lambda: click.echo(f"halted {history_name(result)}"))


@preprocessing.command(short_help="Print the log of a history (-f: follow it live)")
@click.argument("id", type=int)
@data_id_option
@click.option("-f", "--follow", is_flag=True, help="Follow the log live until the history's run ends")
def log(id, data_id, follow):
    """Print the log (stdout and stderr) of a history; with -f, follow it live and end with its final status"""
    client = preprocessings()
    return print_log(client.runs, client.run_id(id, data_id), follow,
                     lambda: client.history(id, data_id)["status"])
