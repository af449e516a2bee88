"""``kqi account``: login, get, switch-tenant (as upstream; the token goes to ``~/.kqi/config.json``)."""

from __future__ import annotations

import os

import click

from kqi_services.client import KqiClient, read_config, update_config

from .output import emit, json_option, state


def expires_in(config: dict) -> int | None:
    """The token lifetime the config's ``expireDays`` asks for (upstream's setting)."""
    days = config.get("expireDays")
    return days * 24 * 3600 if days is not None else None


@click.group()
def account():
    """Manage your KAMONOHASHI account"""


@account.command()
@click.option("-s", "--server", help="API server url like http://platypus")
@click.option("-u", "--user", prompt=True, confirmation_prompt=False, help="User name")
@click.option("-p", "--password", prompt=True, confirmation_prompt=False, hide_input=True, help="Password")
@click.option("-t", "--tenant", type=int, help="A tenant id")
@click.option("--proxy", help="HTTP proxy in the form http://user:password@host:port")
@json_option
def login(server, user, password, tenant, proxy, as_json):
    """Login to KAMONOHASHI system"""
    config = read_config()
    if not server and not proxy and config.get("server"):
        server, proxy = config["server"], config.get("proxy")
    else:
        server = server or os.environ.get("KQI_SERVER") or click.prompt("Server")
    server = server.rstrip("/")
    client = KqiClient(server, None, timeout=config.get("timeout") or 30, proxy=proxy)
    result = client.account.login(user, password, tenant=tenant, expires_in=expires_in(config))
    update_config(server=server, proxy=proxy, token=result["token"])

    def human():
        click.echo(f"user name: {result['userName']}")
        click.echo(f"tenant: {result['tenantName']}")
        click.echo(f"expires in: {result['expiresIn']} seconds")
        click.echo(f"token: {result['token']}")

    return emit(result, human, as_json)


@account.command("switch-tenant")
@click.argument("tenant-id", type=int)
@json_option
def switch_tenant(tenant_id, as_json):
    """Switch to another tenant"""
    result = state().client.account.switch_tenant(tenant_id, expires_in=expires_in(read_config()))
    update_config(token=result["token"])
    state().client.token = result["token"]

    def human():
        click.echo(f"user name: {result['userName']}")
        click.echo(f"selected tenant: {result['tenantId']} {result['tenantName']}")
        click.echo(f"expires in: {result['expiresIn']} seconds")

    return emit(result, human, as_json)


@account.command("get")
@json_option
def get_account(as_json):
    """Get a summary of your account"""
    result = state().client.account.get()

    def human():
        selected = result.get("selectedTenant") or {}
        click.echo(f"user name: {result['userName']}")
        click.echo(f"selected tenant: {selected.get('id')} {selected.get('displayName')}")
        click.echo("assigned tenant:")
        for t in result.get("tenants") or []:
            mark = "*" if t["id"] == selected.get("id") else " "
            click.echo(f"    {mark} {t['id']} {t['displayName']}")

    return emit(result, human, as_json)
