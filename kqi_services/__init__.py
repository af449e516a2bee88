"""KQI Hub: the kqi service, its client library, the ``kqi`` CLI and the ``%kqi`` magics.

This package is also what Jupyter loads by name:

- ``%load_ext kqi_services`` registers the ``%kqi`` magics (``cli/magics.py``);
- the jupyter-server extension behind the JupyterLab panels is
  ``kqi_services.labserver``;
- the prebuilt JupyterLab extension ships under ``labextension/`` here.

Importing the package itself loads nothing of the server side.
"""

from __future__ import annotations


def load_ipython_extension(ipython) -> None:
    """``%load_ext kqi_services``: register the ``%kqi`` line magic."""
    from kqi_services.cli.magics import load_ipython_extension as load

    load(ipython)


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": "kqi_services.labserver"}]


def _jupyter_labextension_paths() -> list[dict]:
    return [{"src": "labextension", "dest": "kqi-hub"}]
