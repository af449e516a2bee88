"""The commands the run kinds share: one body each, added to ``kqi training`` and ``kqi inference`` per kind.

:func:`add_run_commands` gives a group upstream's ``list``, ``get``,
``create``, ``update``, ``upload-file``, ``list-files``, ``download-files``,
``list-container-files``, ``download-container-files``, ``delete-file``,
``delete``, ``halt`` and ``complete`` (names, options and printed lines as
kamonohashi-cli 4.0.2), plus ``log [-f]`` (alias ``logs``). A :class:`RunKind`
says what differs: the resource, the list's last-but-one column, the parent
options of ``create``. :func:`print_log` also serves ``kqi preprocessing log``.
"""

from __future__ import annotations

import codecs
import copy
import posixpath
import sys
from collections.abc import Callable
from dataclasses import dataclass

import click
from click.core import ParameterSource

from kqi_services.client import FINISHED

from .data import count_option
from .output import emit, files_table, id_command, json_option, pp_table, progress_for, read_body, show_model, state

CREATE_FILE_HELP = """A JSON file of the run's CreateInputModel ({"name", "containerImage": {"registryId", "image",
"tag"}, "dataSetId", "entryPoint", "gitModel": {"gitId", "owner", "repository", "branch", "commitId"}, "cpu",
"memory", "gpu", "partition", "memo", "tags", "zip", "localDataSet", "parentIds", "options": {K: V}}); the other
options override its fields, and the options upstream requires may then be left out."""


@dataclass(frozen=True)
class RunKind:
    """What a run kind's commands need to know.

    Args:
        noun: ``training`` or ``inference``, as the help texts say it.
        resource: the client's :class:`~kqi_services.client.resources.Runs` of the kind.
        column: the list table's column before ``status`` and its cell (``tags``; inference: ``value``).
        parents: ``create``'s parent options: (short flag, long flag, the body's field, help).
    """

    noun: str
    resource: Callable
    column: tuple[str, Callable[[dict], object]]
    parents: tuple[tuple[str, str, str, str], ...]


def print_log(runs, run_id: int, follow: bool, final_status: Callable[[], str]) -> str:
    """Print a run's log to stdout; the run's status.

    ``follow``: live until the run ends, then ``final_status()`` (the status
    the run ended with) on stderr. Else what the log holds now, and the status
    on stderr when the run has ended.
    """
    if follow:
        for text in runs.follow_log(run_id):
            sys.stdout.write(text)
            sys.stdout.flush()
        status = final_status()
    else:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        offset = 0
        while True:
            chunk, offset, status = runs.log(run_id, offset)
            sys.stdout.write(decoder.decode(chunk, final=not chunk))
            if not chunk:
                break
    sys.stdout.flush()
    if follow or status in FINISHED:
        click.echo(f"status: {status}", err=True)
    return status


def _create_options(kind: RunKind):
    noun = kind.noun
    options = [
        click.option("-f", "--file", type=click.Path(exists=True, dir_okay=False), help=CREATE_FILE_HELP),
        click.option("-n", "--name", help=f"A name of the {noun}"),
        click.option("-rid", "--registry-id", type=int, help="A docker registry id"),
        click.option("-rim", "--registry-image", help="A docker image name you want to run"),
        click.option("-rt", "--registry-tag", help="A tag of the docker image"),
        click.option("-d", "--data-set-id", type=int, help=f"A dataset id you want to use for the {noun}"),
        click.option("-e", "--entry-point", help=f"{noun.capitalize()} execution command"),
        click.option("-gid", "--git-id", type=int, help="A git id"),
        click.option("-go", "--git-owner",
                     help="The owner of the repository which contains source codes you want to execute, "
                          "e.g. kamonohashi in https://github.com/kamonohashi/kamonohashi-cli."),
        click.option("-gr", "--git-repository",
                     help="The name of the repository which contains your source codes, "
                          "e.g. kamonohashi-cli in https://github.com/kamonohashi/kamonohashi-cli."),
        click.option("-gb", "--git-branch",
                     help="The branch of your git repository. If you omit this option, master branch is used."),
        click.option("-gc", "--git-commit",
                     help="The git commit of your source code. If you omit this option, the latest one is used."),
        click.option("-c", "--cpu", type=int, help=f"A number of core you want to assign to this {noun}"),
        click.option("-mem", "--memory", type=int, help=f"How much memory(GB) you want to assign to this {noun}"),
        click.option("-g", "--gpu", type=int, help=f"A number of GPUs you want to assign to this {noun}"),
        click.option("-p", "--partition", help="A cluster partition. Partition is an arbitrary string but "
                                               "typically is a type of GPU or cluster."),
        click.option("-m", "--memo", help=f"A memo of this {noun}."),
        click.option("-t", "--tags", multiple=True, help=f"Attributes to the {noun}  [multiple]"),
        click.option("-zip/-unzip", "--zip/--un-zip", default=True, show_default=True,
                     help=f"Do you want to zip the {noun} results"),
        click.option("-ld", "--local-data-set", is_flag=True, default=False, show_default=False,
                     help="Whether to create the local data set or not. If this option is not set, "
                          "create the symbolic links of the data set."),
        *[click.option(short, long, field, type=int, multiple=True, help=text) for short, long, field, text in
          kind.parents],
        click.option("-o", "--options", type=(str, str), multiple=True,
                     help=f"Options of this {noun}. The options are stored in the environment variables  [multiple]"),
    ]

    def apply(f):
        for option in reversed(options):
            f = option(f)
        return f

    return apply


#: the options upstream's ``create`` requires (needed here unless ``-f`` gives a body)
REQUIRED = ("name", "registry_image", "registry_tag", "data_set_id", "git_owner", "git_repository", "cpu", "memory",
            "gpu")


def create_body(ctx: click.Context, kind: RunKind, file: str | None, values: dict) -> dict:
    """The CreateInputModel of a ``create`` line: ``-f``'s body with the options given on the line over it."""
    if file is None:
        for param in ctx.command.params:
            if param.name in REQUIRED and values.get(param.name) is None:
                raise click.MissingParameter(ctx=ctx, param=param)
    body = read_body(file) if file else {}

    def given(name):
        return file is None or ctx.get_parameter_source(name) is not ParameterSource.DEFAULT

    def put(target: dict, key: str, name: str, convert=lambda v: v):
        value = values[name]
        if value is not None and given(name):
            target[key] = convert(value)

    for key, name in (("name", "name"), ("dataSetId", "data_set_id"), ("entryPoint", "entry_point"), ("cpu", "cpu"),
                      ("memory", "memory"), ("gpu", "gpu"), ("partition", "partition"), ("memo", "memo"),
                      ("zip", "zip"), ("localDataSet", "local_data_set")):
        put(body, key, name)
    put(body, "tags", "tags", list)
    for _, _, field, _ in kind.parents:
        put(body, field, field, list)
    if values["options"]:
        body["options"] = {**(body.get("options") or {}), **dict(values["options"])}
    image = dict(body.get("containerImage") or {})
    for key, name in (("image", "registry_image"), ("registryId", "registry_id"), ("tag", "registry_tag")):
        put(image, key, name)
    git = dict(body.get("gitModel") or {})
    for key, name in (("branch", "git_branch"), ("commitId", "git_commit"), ("gitId", "git_id"),
                      ("owner", "git_owner"), ("repository", "git_repository")):
        put(git, key, name)
    body.update(containerImage=image, gitModel=git)
    return body


def add_run_commands(group: click.Group, kind: RunKind) -> None:
    """Add the shared run commands to ``group`` (see the module docstring)."""
    noun = kind.noun

    def runs():
        return kind.resource(state().client)

    @group.command("list", help=f"List {noun} filtered by conditions")
    @count_option
    @click.option("--id", help="id")
    @click.option("--name", help="name")
    @click.option("--started-at", help="started at")
    @click.option("--started-by", help="started by")
    @click.option("--data-set", help="data set")
    @click.option("--memo", help="memo")
    @click.option("--status", help="status")
    @click.option("--entry-point", help="entry point")
    @click.option("--tag", multiple=True, help="tag  [multiple]")
    @json_option
    def list_runs(count, id, name, started_at, started_by, data_set, memo, status, entry_point, tag, as_json):
        result = runs().list(count=count, id=id, name=name, started_at=started_at, started_by=started_by,
                             data_set=data_set, memo=memo, status=status, entry_point=entry_point, tags=tag)
        column, cell = kind.column
        return emit(result, lambda: pp_table(
            ["id", "name", "started_at", "started_by", "dataset", "memo", column, "status"],
            [[x["id"], x["name"], x.get("createdAt"), x.get("createdBy"), (x.get("dataSet") or {}).get("name"),
              x.get("memo"), cell(x), x.get("status")] for x in result]), as_json)

    @group.command(help=f"Get details of {noun}")
    @click.argument("id", type=int)
    @json_option
    def get(id, as_json):
        return show_model(runs().get(id), as_json)

    @group.command(help=f"Submit new {noun}")
    @_create_options(kind)
    @json_option
    @click.pass_context
    def create(ctx, file, as_json, **values):
        result = runs().create(create_body(ctx, kind, file, values))
        emit(result, lambda: click.echo(f"created {result['id']}"), as_json)
        return result["id"]

    @group.command(help=f"Update {noun}")
    @click.argument("id", type=int)
    @click.option("-n", "--name", help="A name to update")
    @click.option("-m", "--memo", help="A memo to update")
    @click.option("-fav/-unfav", "--favorite/--un-favorite", default=None, help="A favorite to update")
    @click.option("-t", "--tags", multiple=True, help=f"Attributes to the {noun}  [multiple]")
    def update(id, name, memo, favorite, tags):
        result = runs().update(id, name=name, memo=memo, favorite=favorite, tags=tags or None)
        return emit(result, lambda: click.echo(f"updated {result['id']}"))

    @group.command("upload-file", help=f"Upload a file to {noun}")
    @click.argument("id", type=int)
    @click.option("-f", "--file-path", type=click.Path(exists=True, dir_okay=False), required=True,
                  help="A file path you want to upload")
    def upload_file(id, file_path):
        result = runs().upload_file(id, file_path, progress=progress_for(file_path))
        return emit(result, lambda: None)

    @group.command("list-files", help=f"List files of {noun}")
    @click.argument("id", type=int)
    @json_option
    def list_files(id, as_json):
        result = runs().files(id)
        return emit(result, lambda: files_table(result), as_json)

    @group.command("download-files", help=f"Download files of {noun}")
    @click.argument("id", type=int)
    @click.option("-f", "--file-id", type=int, multiple=True, help="A file id you want to download  [multiple]")
    @click.option("-d", "--destination", type=click.Path(exists=True, file_okay=False), required=True,
                  help="A path to the output files")
    def download_files(id, file_id, destination):
        paths = runs().download_files(id, destination, file_ids=file_id, progress_for=progress_for)
        return emit(paths, lambda: None)

    @group.command("list-container-files", help="List files in a container")
    @click.argument("id", type=int)
    @click.option("-s", "--source", help="A path to the source root in the container")
    @json_option
    def list_container_files(id, source, as_json):
        walk = runs().walk_container_files(id, posixpath.join("/", source or ""))
        if as_json or state().quiet:
            return emit([{**f, "path": path} for path, f in walk], None, True)
        paths = []
        for path, _ in walk:
            click.echo(path)
            paths.append(path)
        return paths

    @group.command("download-container-files", help="Download files in a container")
    @click.argument("id", type=int)
    @click.option("-d", "--destination", type=click.Path(exists=True, file_okay=False), required=True,
                  help="A path to the output files")
    @click.option("-s", "--source", help="A path to the source root in the container")
    @click.option("-f", "--file-path", multiple=True, help="A file path in the container  [multiple]")
    def download_container_files(id, destination, source, file_path):
        paths = runs().download_container_files(id, destination, source=source, file_paths=file_path,
                                                progress_for=progress_for)
        return emit(paths, lambda: None)

    @group.command("delete-file", help=f"Delete a file of {noun}")
    @click.argument("id", type=int)
    @click.option("-f", "--file-id", type=int, required=True, help="A file id you want to delete")
    def delete_file(id, file_id):
        runs().delete_file(id, file_id)
        return emit(file_id, lambda: click.echo(f"deleted {file_id}"))

    id_command(group, "delete", lambda c, id: kind.resource(c).delete(id), "deleted", f"Delete {noun}")
    id_command(group, "halt", lambda c, id: kind.resource(c).halt(id), "halted", f"Halt {noun}")
    id_command(group, "complete", lambda c, id: kind.resource(c).complete(id), "completed", f"Complete {noun}")
    id_command(group, "user-cancel", lambda c, id: kind.resource(c).user_cancel(id), "canceled",
               f"Cancel {noun} (it ends as UserCanceled)")

    @group.command(short_help=f"Print the log of {noun} (-f: follow it live)",
                   help=f"Print the log (stdout and stderr) of {noun}; with -f, follow it live and end with its "
                        "final status")
    @click.argument("id", type=int)
    @click.option("-f", "--follow", is_flag=True, help=f"Follow the log live until the {noun} ends")
    def log(id, follow):
        return print_log(runs(), id, follow, lambda: runs().get(id)["status"])

    group.add_command(copy.copy(log), "logs")
    group.commands["logs"].hidden = True
