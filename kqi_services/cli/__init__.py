"""The ``kqi`` command: a drop-in for the upstream kamonohashi-cli 4.0.2, on the one kqi client.

Same command groups, names, options and argument order as upstream, the same
``~/.kqi/config.json``; added: ``KQI_SERVER``/``KQI_TOKEN`` (and a notebook's
``JUPYTERHUB_API_TOKEN``) before the config file, ``--json`` on every list
and get, tqdm bars on transfers, ``log [-f]`` of trainings, inferences and
preprocessing histories, a JSON body (``-f``) for ``training``/``inference
create``. Each command returns its result, so the ``%kqi`` magics run these
very commands.
"""

from __future__ import annotations

import sys

import click

from kqi_services.client import KqiApiError, KqiConfigError

from . import account, data, dataset, inference, notebook, preprocessing, tenant, training
from .output import State


@click.group(context_settings={"help_option_names": ["-h", "--help"]},
             help="KQI Hub command line interface (compatible with kamonohashi-cli 4.0.2).")
@click.pass_context
def kqi(ctx):
    ctx.ensure_object(State)


kqi.add_command(account.account)
kqi.add_command(dataset.data_set, "dataset")
kqi.add_command(data.data)
kqi.add_command(inference.inference)
kqi.add_command(notebook.notebook)
kqi.add_command(preprocessing.preprocessing)
kqi.add_command(tenant.tenant)
kqi.add_command(training.training)


def invoke(args: list[str], state: State | None = None, prog_name: str = "kqi"):
    """Run one command line; its result. Errors propagate (click's, KqiApiError, KqiConfigError)."""
    return kqi.main(args=list(args), prog_name=prog_name, standalone_mode=False, obj=state or State())


def main(argv: list[str] | None = None) -> None:
    """The console script: exit 0 on success, 1 on an API or configuration error, 2 on a usage error."""
    try:
        invoke(sys.argv[1:] if argv is None else argv)
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(1)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KqiApiError as e:
        click.echo(f"[ERROR] {e.status} {e.message}" if e.status else f"[ERROR] {e.message}", err=True)
        sys.exit(1)
    except (KqiConfigError, OSError, ValueError) as e:
        click.echo(f"[ERROR] {e}", err=True)
        sys.exit(1)
    sys.exit(0)
