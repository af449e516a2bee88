"""``kqi training``: upstream's commands, plus ``user-cancel`` and ``logs [-f]``."""

from __future__ import annotations

import codecs
import posixpath
import sys

import click

from kqi_services.client import FINISHED

from .output import emit, files_table, id_command, json_option, pp_table, progress_for, show_model, state


@click.group()
def training():
    """Create and manage KAMONOHASHI training"""


@training.command("list")
@click.option("--count", type=click.IntRange(1, 10000), default=1000, show_default=True,
              help="Maximum number of data to list")
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
def list_training(count, id, name, started_at, started_by, data_set, memo, status, entry_point, tag, as_json):
    """List training filtered by conditions"""
    result = state().client.trainings.list(count=count, id=id, name=name, started_at=started_at,
                                           started_by=started_by, data_set=data_set, memo=memo, status=status,
                                           entry_point=entry_point, tags=tag)
    return emit(result, lambda: pp_table(
        ["id", "name", "started_at", "started_by", "dataset", "memo", "tags", "status"],
        [[x["id"], x["name"], x.get("createdAt"), x.get("createdBy"), (x.get("dataSet") or {}).get("name"),
          x.get("memo"), x.get("tags"), x.get("status")] for x in result]), as_json)


@training.command()
@click.argument("id", type=int)
@json_option
def get(id, as_json):
    """Get details of training"""
    return show_model(state().client.trainings.get(id), as_json)


@training.command()
@click.option("-n", "--name", required=True, help="A name of the training")
@click.option("-rid", "--registry-id", type=int, help="A docker registry id")
@click.option("-rim", "--registry-image", required=True, help="A docker image name you want to run")
@click.option("-rt", "--registry-tag", required=True, help="A tag of the docker image")
@click.option("-d", "--data-set-id", type=int, required=True, help="A dataset id you want to use for the training")
@click.option("-e", "--entry-point", help="Training execution command")
@click.option("-gid", "--git-id", type=int, help="A git id")
@click.option("-go", "--git-owner", required=True,
              help="The owner of the repository which contains source codes you want to execute, "
                   "e.g. kamonohashi in https://github.com/kamonohashi/kamonohashi-cli.")
@click.option("-gr", "--git-repository", required=True,
              help="The name of the repository which contains your source codes, "
                   "e.g. kamonohashi-cli in https://github.com/kamonohashi/kamonohashi-cli.")
@click.option("-gb", "--git-branch",
              help="The branch of your git repository. If you omit this option, master branch is used.")
@click.option("-gc", "--git-commit",
              help="The git commit of your source code. If you omit this option, the latest one is used.")
@click.option("-c", "--cpu", type=int, required=True, help="A number of core you want to assign to this training")
@click.option("-mem", "--memory", type=int, required=True,
              help="How much memory(GB) you want to assign to this training")
@click.option("-g", "--gpu", type=int, required=True, help="A number of GPUs you want to assign to this training")
@click.option("-p", "--partition",
              help="A cluster partition. Partition is an arbitrary string but typically is a type of GPU or cluster.")
@click.option("-m", "--memo", help="A memo of this training.")
@click.option("-t", "--tags", multiple=True, help="Attributes to the training  [multiple]")
@click.option("-zip/-unzip", "--zip/--un-zip", default=True, show_default=True,
              help="Do you want to zip the training results")
@click.option("-ld", "--local-data-set", is_flag=True, default=False, show_default=False,
              help="Whether to create the local data set or not. If this option is not set, "
                   "create the symbolic links of the data set.")
@click.option("-pid", "--parent-ids", multiple=True, help="A parent id of this training  [multiple]")
@click.option("-o", "--options", type=(str, str), multiple=True,
              help="Options of this training. The options are stored in the environment variables  [multiple]")
def create(name, registry_image, registry_tag, data_set_id, entry_point, git_owner, git_repository, git_branch,
           git_commit, cpu, memory, gpu, partition, memo, tags, zip, local_data_set, parent_ids, options,
           registry_id, git_id):
    """Submit new training"""
    body = {
        "name": name,
        "containerImage": {"image": registry_image, "registryId": registry_id, "tag": registry_tag},
        "dataSetId": data_set_id,
        "entryPoint": entry_point,
        "gitModel": {"branch": git_branch, "commitId": git_commit, "gitId": git_id, "owner": git_owner,
                     "repository": git_repository},
        "cpu": cpu, "memory": memory, "gpu": gpu, "partition": partition, "memo": memo, "tags": list(tags),
        "zip": zip, "localDataSet": local_data_set, "parentIds": [int(p) for p in parent_ids],
        "options": dict(options) if options else None,
    }
    result = state().client.trainings.create(body)
    emit(result, lambda: click.echo(f"created {result['id']}"))
    return result["id"]


@training.command()
@click.argument("id", type=int)
@click.option("-n", "--name", help="A name to update")
@click.option("-m", "--memo", help="A memo to update")
@click.option("-fav/-unfav", "--favorite/--un-favorite", default=None, help="A favorite to update")
@click.option("-t", "--tags", multiple=True, help="Attributes to the training  [multiple]")
def update(id, name, memo, favorite, tags):
    """Update training"""
    result = state().client.trainings.update(id, name=name, memo=memo, favorite=favorite, tags=tags or None)
    return emit(result, lambda: click.echo(f"updated {result['id']}"))


@training.command("upload-file")
@click.argument("id", type=int)
@click.option("-f", "--file-path", type=click.Path(exists=True, dir_okay=False), required=True,
              help="A file path you want to upload")
def upload_file(id, file_path):
    """Upload a file to training"""
    result = state().client.trainings.upload_file(id, file_path, progress=progress_for(file_path))
    return emit(result, lambda: None)


@training.command("list-files")
@click.argument("id", type=int)
@json_option
def list_files(id, as_json):
    """List files of training"""
    result = state().client.trainings.files(id)
    return emit(result, lambda: files_table(result), as_json)


@training.command("download-files")
@click.argument("id", type=int)
@click.option("-f", "--file-id", type=int, multiple=True, help="A file id you want to download  [multiple]")
@click.option("-d", "--destination", type=click.Path(exists=True, file_okay=False), required=True,
              help="A path to the output files")
def download_files(id, file_id, destination):
    """Download files of training"""
    paths = state().client.trainings.download_files(id, destination, file_ids=file_id, progress_for=progress_for)
    return emit(paths, lambda: None)


@training.command("list-container-files")
@click.argument("id", type=int)
@click.option("-s", "--source", help="A path to the source root in the container")
@json_option
def list_container_files(id, source, as_json):
    """List files in a container"""
    walk = state().client.trainings.walk_container_files(id, posixpath.join("/", source or ""))
    if as_json or state().quiet:
        return emit([{**f, "path": path} for path, f in walk], None, True)
    paths = []
    for path, _ in walk:
        click.echo(path)
        paths.append(path)
    return paths


@training.command("download-container-files")
@click.argument("id", type=int)
@click.option("-d", "--destination", type=click.Path(exists=True, file_okay=False), required=True,
              help="A path to the output files")
@click.option("-s", "--source", help="A path to the source root in the container")
@click.option("-f", "--file-path", multiple=True, help="A file path in the container  [multiple]")
def download_container_files(id, destination, source, file_path):
    """Download files in a container"""
    paths = state().client.trainings.download_container_files(id, destination, source=source, file_paths=file_path,
                                                              progress_for=progress_for)
    return emit(paths, lambda: None)


@training.command("delete-file")
@click.argument("id", type=int)
@click.option("-f", "--file-id", type=int, required=True, help="A file id you want to delete")
def delete_file(id, file_id):
    """Delete a file of training"""
    state().client.trainings.delete_file(id, file_id)
    return emit(file_id, lambda: click.echo(f"deleted {file_id}"))


delete = id_command(training, "delete", lambda c, id: c.trainings.delete(id), "deleted", "Delete training")
halt = id_command(training, "halt", lambda c, id: c.trainings.halt(id), "halted", "Halt training")
complete = id_command(training, "complete", lambda c, id: c.trainings.complete(id), "completed", "Complete training")
user_cancel = id_command(training, "user-cancel", lambda c, id: c.trainings.user_cancel(id), "canceled",
                         "Cancel training (it ends as UserCanceled)")
tensorboard_halt = id_command(training, "tensorboard-halt", lambda c, id: c.trainings.tensorboard_halt(id), "halted",
                              "Halt tensorboard")


@training.command()
@click.argument("id", type=int)
@click.option("-f", "--follow", is_flag=True, help="Follow the log live until the training ends")
def logs(id, follow):
    """Print the log (stdout and stderr) of training; with -f, follow it and end with its final status"""
    trainings = state().client.trainings
    if follow:
        for text in trainings.follow_log(id):
            sys.stdout.write(text)
            sys.stdout.flush()
        status = trainings.get(id)["status"]
    else:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        offset = 0
        while True:
            chunk, offset, status = trainings.log(id, offset)
            sys.stdout.write(decoder.decode(chunk, final=not chunk))
            if not chunk:
                break
    sys.stdout.flush()
    if follow or status in FINISHED:
        click.echo(f"status: {status}", err=True)
    return status
