"""``kqi tenant``: list, get, create, update, delete (system admins; ``/admin/tenants``)."""

from __future__ import annotations

import click

from .output import emit, json_option, pp_dict, pp_table, show_model, state


@click.group()
def tenant():
    """Create and manage KAMONOHASHI tenants"""


@tenant.command("list")
@json_option
def list_tenants(as_json):
    """List tenants"""
    result = state().client.tenants.list()
    return emit(result, lambda: pp_table(["id", "name", "display_name", "storage_path"],
                                         [[x.get("id"), x.get("name"), x.get("displayName"), x.get("storagePath")]
                                          for x in result]), as_json)


@tenant.command()
@click.argument("id", type=int)
@json_option
def get(id, as_json):
    """Get details of a tenant"""
    return show_model(state().client.tenants.get(id), as_json)


def settings_options(command):
    """The options ``create`` and ``update`` share, as upstream declares them."""
    for option in reversed([
        click.option("-dn", "--display-name", required=True, help="A display name of the tenant"),
        click.option("-gid", "--git-ids", type=int, multiple=True, required=True, help="Git id  [multiple]"),
        click.option("-dgid", "--default-git-id", type=int, help="A default gid id"),
        click.option("-rid", "--registry-ids", type=int, multiple=True, required=True,
                     help="Registry id  [multiple]"),
        click.option("-drid", "--default-registry-id", type=int, help="A default registry id"),
        click.option("-sid", "--storage-id", type=int, required=True, help="A storage id"),
        click.option("-ugid", "--user-group-ids", type=int, multiple=True, help="UserGroup id  [multiple]"),
    ]):
        command = option(command)
    return command


def settings_body(display_name, git_ids, default_git_id, registry_ids, default_registry_id, storage_id,
                  user_group_ids) -> dict:
    return {"displayName": display_name, "gitIds": list(git_ids), "defaultGitId": default_git_id,
            "registryIds": list(registry_ids), "defaultRegistryId": default_registry_id, "storageId": storage_id,
            "userGroupIds": list(user_group_ids)}


@tenant.command()
@click.option("-n", "--name", required=True, help="A name of the tenant")
@settings_options
def create(name, **settings):
    """Create a new tenant"""
    result = state().client.tenants.create({"tenantName": name, **settings_body(**settings)})
    emit(result, lambda: click.echo(f"created {result['id']}"))
    return result["id"]


@tenant.command()
@click.argument("id", type=int)
@settings_options
def update(id, **settings):
    """Update a tenant"""
    result = state().client.tenants.update(id, settings_body(**settings))
    return emit(result, lambda: click.echo(f"updated {result['id']}"))


@tenant.command()
@click.argument("id", type=int)
def delete(id):
    """Delete a tenant"""
    result = state().client.tenants.delete(id) or {}

    def human():
        click.echo(f"deleted {id}")
        pp_dict(result)

    return emit(result, human)
